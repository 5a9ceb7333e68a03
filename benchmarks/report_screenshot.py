"""Write a screenshot of ``rtmask report`` for a person to look at.

    python benchmarks/report_screenshot.py [--out OUT] [--work DIR] [--png FILE]

Without ``--out`` it builds a small cohort in ``DIR/archive`` (default
``/tmp/rtmask-report-screenshot``): the synthetic thorax of ``rtmask demo``, the real
LUNG1-001 case when ``../shared/data/lung1-001`` is there (copied into DIR), and a
truncated structure set that fails; converts it with ``rtmask convert`` into
``DIR/out``; writes ``DIR/report.html`` with ``rtmask report``; and takes a full-page
screenshot with headless Chromium (``--png``, default ``DIR/report.png``). With ``--out``
an existing converted cohort or data set is shown instead.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from rtmask.cli import main as rtmask
from rtmask.synthetic import write_demo_case

ROOT = Path(__file__).resolve().parents[1]
LUNG1 = ROOT.parent / "shared" / "data" / "lung1-001"


def _browser() -> str:
    for name in (os.environ.get("RTMASK_CHROMIUM"), "chromium", "chromium-browser"):
        found = name and shutil.which(name)
        if found:
            return found
    sys.exit("no Chromium found: apt-get install -y chromium (or set RTMASK_CHROMIUM)")


def _cohort(work: Path) -> Path:
    archive = work / "archive"
    shutil.rmtree(work / "archive", ignore_errors=True)
    shutil.rmtree(work / "out", ignore_errors=True)
    demo = write_demo_case(archive / "demo")
    broken = archive / "broken" / "RS_truncated.dcm"
    broken.parent.mkdir(parents=True)
    broken.write_bytes(demo.rtstruct.read_bytes()[:3000])
    if LUNG1.is_dir():
        shutil.copytree(LUNG1, archive / "lung1-001")  # a scratch copy, outside the repo
    out = work / "out"
    code = rtmask(
        ["convert", str(archive), "-o", str(out), "--jobs", "2", "-q", "--layout", "patient"]
    )
    print(f"rtmask convert: exit code {code} (1: the truncated file failed, as meant)")
    return out


def _screenshot(page: Path, png: Path, width: int, height: int) -> None:
    with tempfile.TemporaryDirectory() as profile:
        command = [
            _browser(),
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
            f"--user-data-dir={profile}",
            f"--window-size={width},{height}",
            f"--screenshot={png}",
            page.resolve().as_uri(),
        ]
        subprocess.run(command, check=True, capture_output=True, timeout=120)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, help="an existing converted cohort or data set")
    parser.add_argument("--work", type=Path, default=Path("/tmp/rtmask-report-screenshot"))
    parser.add_argument("--png", type=Path, help="the screenshot (default WORK/report.png)")
    parser.add_argument("--width", type=int, default=1400)
    parser.add_argument("--height", type=int, default=3000)
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    out = args.out or _cohort(args.work)
    page = args.work / "report.html"
    if rtmask(["report", str(out), "-o", str(page)]) != 0:
        return 1
    png = args.png or args.work / "report.png"
    _screenshot(page, png, args.width, args.height)
    print(f"{png}: screenshot of {page} ({page.stat().st_size / 1e6:.2f} MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
