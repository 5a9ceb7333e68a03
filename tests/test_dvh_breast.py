"""Real plan (dicompyler-core breast example): rtmask DVHs against the embedded TPS DVHs.

The embedded curves are in Gy, but DVHMinimumDose/MaximumDose/MeanDose are percent of the
14 Gy prescription although labelled GY (see the data README), hence the 0.14 scale.
Targets for structures >= 10 cm3 inside the dose grid: volume within 2 %, mean dose within
1 %. The planning system's volumes lie between rtmask's two end-cap conventions: with
half-slice end caps Tumor Bed (18 planes, 3 mm) comes out +2.7 %, without end caps -0.6 %;
both conventions are asserted as measured, so a change in either shows up.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from rtmask.dose import read_dose
from rtmask.dvh import DVH, compute_dvh
from rtmask.dvh._embedded import EmbeddedDVH, read_embedded_dvhs
from rtmask.raster import rasterize
from rtmask.rtstruct import read_rtstruct

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "dicompyler-breast"
pytestmark = pytest.mark.skipif(
    not (DATA / "rtdose.dcm").is_file(), reason="../shared/data/dicompyler-breast absent"
)
STATS_SCALE = 14.0 / 100.0  # DVHMean/Min/MaximumDose: percent of 14 Gy
LARGE = ("Heart", "Lt Lung", "Breast", "Tumor Bed", "Tumor Bed Block")
#: Volume tolerance (fraction) with half-slice end caps, as measured; 2 % is the target.
HALF_CAPS_EXCEPTIONS = {"Tumor Bed": 0.03}


@pytest.fixture(scope="module")
def results() -> dict[str, tuple[DVH, DVH, DVH]]:
    """ROI name -> (rtmask half caps, rtmask no caps, embedded) for every ROI but BODY."""
    structure_set = read_rtstruct(DATA / "rtss.dcm", on_invalid="ignore")
    dose = read_dose(DATA / "rtdose.dcm")
    embedded: dict[int | None, EmbeddedDVH] = {
        e.roi_number: e for e in read_embedded_dvhs(DATA / "rtdose.dcm")
    }
    out = {}
    for roi in structure_set.rois:
        if not roi.encloses_volume or roi.name == "BODY":  # BODY: 1 % outside the dose grid
            continue
        half = compute_dvh(roi, dose, end_caps="half", on_invalid="ignore")
        none = compute_dvh(roi, dose, end_caps="none", on_invalid="ignore")
        reference = embedded[roi.number].to_dvh(stats_dose_scale=STATS_SCALE, roi_name=roi.name)
        out[roi.name] = (half, none, reference)
    return out


def _table(results: dict[str, tuple[DVH, DVH, DVH]]) -> str:
    lines = ["ROI: volume half/none/TPS cm3 (diff %), mean half/none/TPS Gy (diff %)"]
    for name, (half, none, tps) in results.items():
        dv = [100 * (d.total_cm3 / tps.total_cm3 - 1) for d in (half, none)]
        dm = [100 * (d.mean_gy / tps.mean_gy - 1) for d in (half, none)]
        lines.append(
            f"{name}: {half.total_cm3:.3f}/{none.total_cm3:.3f}/{tps.total_cm3:.3f} "
            f"({dv[0]:+.2f}/{dv[1]:+.2f}), {half.mean_gy:.4f}/{none.mean_gy:.4f}/"
            f"{tps.mean_gy:.4f} ({dm[0]:+.2f}/{dm[1]:+.2f})"
        )
    return "\n".join(lines)


def test_large_structures_match_the_embedded_dvhs(
    results: dict[str, tuple[DVH, DVH, DVH]],
) -> None:
    report = _table(results)
    print(report)
    assert set(LARGE) <= set(results), report
    for name in LARGE:
        half, none, tps = results[name]
        assert half.outside_cm3 == 0, f"{name} leaves the dose\n{report}"
        assert none.outside_cm3 == 0, f"{name} leaves the dose\n{report}"
        tolerance = HALF_CAPS_EXCEPTIONS.get(name, 0.02)
        assert half.total_cm3 == pytest.approx(tps.total_cm3, rel=tolerance), report
        assert none.total_cm3 == pytest.approx(tps.total_cm3, rel=0.02), report
        assert half.mean_gy == pytest.approx(tps.mean_gy, rel=0.01), report
        assert none.mean_gy == pytest.approx(tps.mean_gy, rel=0.01), report
    # The one exception is real: half caps put Tumor Bed beyond 2 %.
    half, _, tps = results["Tumor Bed"]
    assert abs(half.total_cm3 / tps.total_cm3 - 1) > 0.02, report


def _end_plane_areas_mm2(name: str) -> tuple[float, float]:
    """Gap between the contour planes (mm) and the area of the two end planes' contours
    (mm2), by shapely: independent of the sampling."""
    shapely = pytest.importorskip("shapely")
    roi = read_rtstruct(DATA / "rtss.dcm", on_invalid="ignore").roi(name)
    planes: dict[float, list[object]] = {}
    for contour in roi.contours:
        z = round(float(contour.points_mm[:, 2].mean()), 2)
        planes.setdefault(z, []).append(shapely.Polygon(contour.points_mm[:, :2]))
    positions = sorted(planes)
    gaps = np.diff(positions)
    assert np.allclose(gaps, gaps[0]), f"{name}: uneven planes {positions}"
    ends = sum(shapely.union_all(planes[z]).area for z in (positions[0], positions[-1]))
    return float(gaps[0]), float(ends)


def test_small_structures_are_reported(results: dict[str, tuple[DVH, DVH, DVH]]) -> None:
    report = _table(results)
    print(report)
    for name, tps_cm3 in (("Scar", 0.343), ("Nodes", 0.566), ("Borders", 0.745)):
        half, none, tps = results[name]
        assert tps.total_cm3 == pytest.approx(tps_cm3, abs=1e-3), report
        # The report states both conventions' volumes and mean doses next to the TPS's.
        volumes = f"{name}: {half.total_cm3:.3f}/{none.total_cm3:.3f}/{tps.total_cm3:.3f} "
        means = f"{half.mean_gy:.4f}/{none.mean_gy:.4f}/{tps.mean_gy:.4f} ("
        (line,) = [line for line in report.splitlines() if line.startswith(f"{name}: ")]
        assert line.startswith(volumes), report
        assert means in line, report
        # Half-slice end caps add half a gap over each end plane: (gap / 2) x the end
        # contours' area (two-plane Borders doubles). The TPS volumes of structures this
        # small differ from either convention by tens of percent; the mean doses agree
        # within 3 %.
        gap_mm, ends_mm2 = _end_plane_areas_mm2(name)
        caps_cm3 = gap_mm / 2 * ends_mm2 / 1000
        assert half.total_cm3 - none.total_cm3 == pytest.approx(caps_cm3, rel=0.005), report
        assert half.mean_gy == pytest.approx(tps.mean_gy, rel=0.03), report
        assert none.mean_gy == pytest.approx(tps.mean_gy, rel=0.03), report


#: Volumes (cm3) dicompyler-core 0.5.6 gives for this plan at its default settings
#: (``dvhcalc.get_dvh``, run by benchmarks/bench_dvh.py; Heart is also in its own test
#: suite, 440.23125 cc). Its rule: dose voxels whose centre lies inside the contour of
#: their frame's plane, holes subtracted.
DICOMPYLER_CORE_CM3 = {
    "BODY": 14882.1,
    "Borders": 1.2,
    "Breast": 400.3875,
    "Heart": 440.23125,
    "Lt Lung": 2004.525,
    "Nodes": 0.65625,
    "Scar": 0.4875,
    "Tumor Bed": 13.06875,
    "Tumor Bed Block": 63.3375,
}


def test_pixel_centre_masks_on_the_dose_grid_reproduce_dicompyler_core() -> None:
    """An independent implementation's voxel counts, to the voxel (0.01875 cm3).

    rtmask's binary mask on the dose grid counts the same voxels for all nine ROIs,
    Lt Lung's 77 holes included. The small structures' gap to the planning system
    (Scar, Nodes, Borders) is therefore the convention's, not the rasteriser's.
    """
    structure_set = read_rtstruct(DATA / "rtss.dcm", on_invalid="ignore")
    grid = read_dose(DATA / "rtdose.dcm").grid
    voxel_cm3 = float(np.prod(grid.spacing_mm)) / 1000.0
    for name, expected in DICOMPYLER_CORE_CM3.items():
        mask = rasterize(structure_set.roi(name), grid, slice_mode="exact", on_invalid="ignore")
        assert int(mask.array.sum()) == round(expected / voxel_cm3), name
