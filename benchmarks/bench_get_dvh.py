"""``rtmask.get_dvh`` against dicompyler-core's ``dvhcalc.get_dvh``, and contour interpolation.

    python benchmarks/bench_get_dvh.py [--breast FOLDER] [--peers-venv VENV]

Two parts:

- ``breast``: ``../shared/data/dicompyler-breast``: per ROI, volume, mean, D95 and max of
  ``rtmask.get_dvh`` (default settings, and with ``interpolate=True``) beside
  dicompyler-core's (``peers/dicompyler_dvh.py`` run with the peers' venv, pydicom < 3),
  and the time of each (rtmask in this process after its imports; dicompyler-core's
  ``compute_s``: reading both files and every DVH).
- ``frustum``: a truncated cone (radii 20 and 5 mm, 30 mm high, 256-gons) contoured every
  2, 3, 5 and 6 mm in a dose rising 0.5 Gy/mm along its axis; the volume error of the slab
  stack and of the interpolated stack against the closed form (no end caps), and the
  largest error of V(d) at five doses, in % of the volume.
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import time
import warnings
from pathlib import Path

import numpy as np

from rtmask import get_dvh
from rtmask.dose import DoseGrid
from rtmask.dvh import compute_dvh
from rtmask.dvh._interpolate import interpolate_roi
from rtmask.dvh._slabs import EndCaps
from rtmask.geometry import ImageGrid
from rtmask.rtstruct import ROI, Contour, read_rtstruct

HERE = Path(__file__).resolve().parent
R0, R1, HEIGHT, N = 20.0, 5.0, 30.0, 256
NGON = N / (2 * math.pi) * math.sin(2 * math.pi / N)


def _breast(folder: Path, venv: Path) -> None:
    rs, rd = folder / "rtss.dcm", folder / "rtdose.dcm"
    if not rs.is_file():
        print(f"breast: {folder} not found, skipped")
        return
    peer = subprocess.run(
        [str(venv / "bin" / "python"), str(HERE / "peers" / "dicompyler_dvh.py"), str(rs), str(rd)],
        capture_output=True,
        text=True,
        check=True,
    )
    theirs = json.loads(peer.stdout)
    by_number = {entry["number"]: entry for entry in theirs["rois"]}
    rois = [r for r in read_rtstruct(rs, on_invalid="ignore").rois if r.encloses_volume]
    times = {"plain": 0.0, "interpolated": 0.0}
    print("ROI              volume cm3 (dc / rt / rt-int)   mean Gy   D95 Gy   max Gy (dc / rt)")
    for roi in rois:
        found = {}
        for name, interpolate in (("plain", False), ("interpolated", True)):
            start = time.perf_counter()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                found[name] = get_dvh(rs, rd, roi.number, interpolate=interpolate)
            times[name] += time.perf_counter() - start
        dc = by_number.get(roi.number, {})
        if "error" in dc or not dc:
            print(f"{roi.name:<16} dicompyler-core: {dc.get('error', 'no result')}")
            continue
        rt, ri = found["plain"], found["interpolated"]
        print(
            f"{roi.name:<16} {dc['volume_cm3']:9.2f} {rt.total_cm3:9.2f} {ri.total_cm3:9.2f}"
            f"   {dc['mean_gy']:6.3f} {rt.mean_gy:6.3f}"
            f"   {dc['stats'].get('D95', float('nan')):6.3f} {rt.statistic('D95'):6.3f}"
            f"   {dc['max_gy']:6.3f} {rt.max_gy:6.3f}"
        )
    plain, interpolated, peer_s = times["plain"], times["interpolated"], theirs["compute_s"]
    print(
        f"time: rtmask get_dvh {plain:.2f} s (interpolated {interpolated:.2f} s), "
        f"dicompyler-core {peer_s:.2f} s; ratio {plain / peer_s:.2f}"
    )


def _frustum(gap: float) -> ROI:
    angles = 2 * np.pi * (np.arange(N) + 0.5) / N
    contours = []
    for z in np.arange(0.0, HEIGHT + 1e-9, gap):
        r = R0 + (R1 - R0) * z / HEIGHT
        points = np.column_stack([r * np.cos(angles), r * np.sin(angles), np.full(N, z)])
        contours.append(Contour(points_mm=points))
    return ROI(number=1, name="Frustum", contours=tuple(contours))


def _above_cm3(z: float) -> float:
    slope = (R1 - R0) / HEIGHT
    r = R0 + slope * z
    return NGON * math.pi * (R1**3 - r**3) / (3 * slope) / 1000


def _frustum_part() -> None:
    grid = ImageGrid.from_explicit(
        origin_mm=(-24.1, -24.3, -6.2), spacing_mm=(2.0, 2.0, 2.0), shape=(23, 25, 25)
    )
    index = np.stack(np.meshgrid(*[np.arange(k) for k in grid.shape], indexing="ij"), -1)
    z = grid.index_to_patient(index.reshape(-1, 3))[:, 2].reshape(grid.shape)
    dose = DoseGrid(dose_gy=10.0 + 0.5 * z, grid=grid)
    exact = _above_cm3(0.0)
    print("gap mm   volume error % (stack / interpolated)   worst V(d) error % (stack / int.)")
    for gap in (2.0, 3.0, 5.0, 6.0):
        stack = compute_dvh(_frustum(gap), dose, end_caps="none")
        shaped, caps = interpolate_roi(_frustum(gap), grid, True, EndCaps.NONE)
        interpolated = compute_dvh(shaped, dose, end_caps=caps)
        errors = []
        for dvh in (stack, interpolated):
            worst = max(
                abs(dvh.volume_at_dose(10.0 + 0.5 * h) - _above_cm3(h)) / exact
                for h in (3.0, 9.0, 14.0, 21.0, 27.0)
            )
            errors.append((100 * (dvh.total_cm3 / exact - 1), 100 * worst))
        print(
            f"{gap:6.1f}   {errors[0][0]:+8.3f} / {errors[1][0]:+8.3f}"
            f"                  {errors[0][1]:7.3f} / {errors[1][1]:7.3f}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--breast", type=Path, default=HERE.parents[1] / "shared" / "data" / "dicompyler-breast"
    )
    parser.add_argument("--peers-venv", type=Path, default=HERE.parents[1] / "bench" / "peers-venv")
    args = parser.parse_args()
    _breast(args.breast, args.peers_venv)
    _frustum_part()


if __name__ == "__main__":
    main()
