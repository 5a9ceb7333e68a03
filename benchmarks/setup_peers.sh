#!/usr/bin/env bash
# Install the peer tools that benchmarks/bench_convert.py and bench_dvh.py compare rtmask with.
#
#   bash benchmarks/setup_peers.sh [VENV]      (default VENV: /work/bench/peers-venv)
#
# - plastimatch and GNU time from Debian packages (apt-get, needs root);
# - rt-utils and dcmrtstruct2nii from PyPI in a separate virtual environment, with
#   pydicom<3 (dcmrtstruct2nii and its dependencies need the pydicom 2 API), nibabel to
#   write rt-utils' masks as NIfTI, SimpleITK (dcmrtstruct2nii reads the CT with it) and
#   dicompyler-core (bench_dvh.py's peer; it no longer imports with pydicom 3).
# Idempotent: what is already there is left alone.
set -euo pipefail

VENV="${1:-${PEERS_VENV:-/work/bench/peers-venv}}"
PYTHON="${PYTHON:-python3}"

missing=()
command -v plastimatch >/dev/null 2>&1 || missing+=(plastimatch)
[ -x /usr/bin/time ] || missing+=(time)
if [ "${#missing[@]}" -gt 0 ]; then
    echo "installing ${missing[*]} with apt-get"
    SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}"
fi
echo "plastimatch: $(plastimatch --version 2>&1 | head -n 1)"

if [ ! -x "$VENV/bin/python" ]; then
    echo "creating $VENV"
    "$PYTHON" -m venv "$VENV"
fi
"$VENV/bin/python" -m pip install --quiet --upgrade pip
"$VENV/bin/python" -m pip install --quiet \
    "rt-utils" "dcmrtstruct2nii" "dicompyler-core" "pydicom<3" "nibabel" "SimpleITK"
"$VENV/bin/python" - <<'PY'
from importlib.metadata import version

for name in (
    "rt-utils", "dcmrtstruct2nii", "dicompyler-core", "pydicom", "nibabel", "SimpleITK", "numpy"
):
    print(f"{name}: {version(name)}")
import rt_utils  # noqa: F401
import dcmrtstruct2nii  # noqa: F401
import dicompylercore.dvhcalc  # noqa: F401
PY
echo "peers ready in $VENV"
