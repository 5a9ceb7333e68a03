"""``get_dvh``: one call from files or Datasets to a DVH; contours interpolated between planes.

Expected values are closed forms: a box in a linear dose (its cumulative DVH falls
linearly), a square drawn on one plane (area x slab thickness), and a truncated cone
(frustum) contoured every 6 mm, whose volume and DVH along its axis are integrals of
the section area ``pi r(z)^2`` with ``r`` linear in ``z``.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import math
from pathlib import Path

import numpy as np
import pydicom
import pytest

from conftest import run_cli
from rtmask import ImageGrid, get_dvh
from rtmask.dose import DoseGrid, read_dose
from rtmask.dvh import cap_dose, compute_dvh, contour_volume
from rtmask.dvh._interpolate import interpolate_roi, planes_between
from rtmask.dvh._slabs import EndCaps
from rtmask.errors import GeometryWarning, InvalidInputError, StructureSetWarning
from rtmask.rtstruct import ROI, Contour, read_rtstruct
from rtmask.synthetic import RoiSpec, write_ct_series, write_rtdose, write_rtstruct

GRADIENT = 0.5  # Gy/mm along x
BASE = 10.0  # Gy at x = 0
BOX_MM = 20.0  # side of the box, centred on x = y = 0
BOX_PLANES = np.arange(-8.0, 8.0, 3.0)  # CT slices -8, -5, ..., 7 (6 planes)
BOX_CM3 = BOX_MM**2 * 3.0 * BOX_PLANES.size / 1000  # half end caps: 6 slabs of 3 mm
#: A lattice whose voxel edges fall on the squares' edges: the automatic one (0.63 mm for
#: the box) measures axis-aligned edges with a systematic partial-volume error (0.8 %
#: here; rectangles are issue 15's defect 6, worked on separately).
EXACT = {"resolution_mm": 0.5}


def _square(half: float, z: float, x0: float = 0.0) -> np.ndarray:
    return np.array(
        [[x0 - half, -half, z], [x0 + half, -half, z], [x0 + half, half, z], [x0 - half, half, z]]
    )


@dataclasses.dataclass(frozen=True)
class Case:
    rtstruct: Path
    dose: Path
    ct: Path


@pytest.fixture(scope="module")
def case(tmp_path_factory: pytest.TempPathFactory) -> Case:
    """CT every 3 mm; Box, a square on one plane (Lone), an ROI half outside the dose (Far)."""
    folder = tmp_path_factory.mktemp("get_dvh")
    ct_grid = ImageGrid.from_explicit(
        origin_mm=(-40.0, -30.0, -20.0), spacing_mm=(3.0, 1.0, 1.0), shape=(14, 60, 80)
    )
    ct = write_ct_series(folder / "ct", ct_grid)
    rois = [
        RoiSpec(
            number=1,
            name="Box",
            contours=tuple((_square(BOX_MM / 2, z), "CLOSED_PLANAR") for z in BOX_PLANES),
        ),
        RoiSpec(number=2, name="Areola"),  # empty: warned about only when asked for
        RoiSpec(number=3, name="Lone", contours=((_square(5.0, -5.0), "CLOSED_PLANAR"),)),
        RoiSpec(
            number=4,
            name="Far",
            contours=tuple((_square(5.0, z, x0=25.0), "CLOSED_PLANAR") for z in BOX_PLANES),
        ),
    ]
    rtstruct = write_rtstruct(folder / "RS.dcm", rois, ct)
    # 2.5 mm dose grid from x = -20 to 25 mm: Far (x 20-30 mm) sticks out by half.
    dose_grid = ImageGrid.from_explicit(
        origin_mm=(-20.0, -20.0, -15.0), spacing_mm=(2.5, 2.5, 2.5), shape=(13, 17, 19)
    )
    index = np.stack(np.meshgrid(*[np.arange(k) for k in dose_grid.shape], indexing="ij"), -1)
    points = dose_grid.index_to_patient(index.reshape(-1, 3)).reshape(*dose_grid.shape, 3)
    dose = write_rtdose(folder / "RD.dcm", dose_grid, BASE + GRADIENT * points[..., 0], ct)
    return Case(rtstruct=rtstruct, dose=dose, ct=ct.folder)


def test_box_in_a_linear_dose_matches_the_closed_form(case: Case) -> None:
    calls: list[tuple[int, int]] = []
    dvh = get_dvh(case.rtstruct, case.dose, "Box", **EXACT, progress=lambda *a: calls.append(a))
    assert calls == [(1, 2), (2, 2)]
    assert dvh.total_cm3 == pytest.approx(BOX_CM3, rel=1e-3)
    low, high = BASE - GRADIENT * BOX_MM / 2, BASE + GRADIENT * BOX_MM / 2  # 5 and 15 Gy
    assert dvh.mean_gy == pytest.approx(BASE, abs=0.01)
    assert dvh.min_gy == pytest.approx(low, abs=0.01)
    assert dvh.max_gy == pytest.approx(high, abs=0.01)
    for dose in (6.0, 10.0, 13.5):
        expected = 100 * (high - dose) / (high - low)
        assert float(dvh.statistic_value(f"V{dose:g}Gy%")) == pytest.approx(expected, abs=0.2)
    assert float(dvh.D50) == pytest.approx(BASE, abs=0.02)


def test_datasets_numbers_and_read_objects_give_the_same_dvh(case: Case) -> None:
    reference = get_dvh(case.rtstruct, case.dose, "Box", **EXACT)
    for structure_set, dose, roi in (
        (pydicom.dcmread(case.rtstruct), pydicom.dcmread(case.dose), 1),
        (read_rtstruct(case.rtstruct, on_invalid="ignore"), read_dose(case.dose), "box"),
        (str(case.rtstruct), str(case.dose), "1"),
    ):
        assert get_dvh(structure_set, dose, roi, **EXACT).equals(reference, atol=1e-9)


def test_an_unknown_roi_lists_numbers_and_names(case: Case) -> None:
    with pytest.raises(InvalidInputError, match=r"no ROI 'Heart'.*1 'Box'.*4 'Far'"):
        get_dvh(case.rtstruct, case.dose, "Heart", **EXACT)
    with pytest.raises(InvalidInputError, match="no ROI 9"):
        get_dvh(case.rtstruct, case.dose, 9, **EXACT)


def test_dicompyler_core_keywords_get_rtmask_s_names(case: Case) -> None:
    """A keyword get_dvh does not take names get_dvh (not an inner function) and the fix."""
    with pytest.raises(TypeError, match=r"^get_dvh\(\) .* 'limit'; rtmask's is limit_gy"):
        get_dvh(case.rtstruct, case.dose, "Box", limit=10)
    with pytest.raises(TypeError, match="'count_outside'; rtmask's is calculate_full_volume"):
        get_dvh(case.rtstruct, case.dose, "Box", count_outside=True)
    with pytest.raises(TypeError, match=r"'colour'$"):
        get_dvh(case.rtstruct, case.dose, "Box", colour=1)


def test_the_chosen_roi_s_read_problems_are_warned(case: Case) -> None:
    with (
        pytest.warns(StructureSetWarning, match="Areola"),
        pytest.raises(InvalidInputError, match="no closed contour"),
    ):
        get_dvh(case.rtstruct, case.dose, "Areola", **EXACT)


def test_dose_limit_counts_the_volume_above_at_the_limit(case: Case) -> None:
    limit = 12.0
    with pytest.warns(GeometryWarning, match="dose limit of 12 Gy"):
        dvh = get_dvh(case.rtstruct, case.dose, "Box", **EXACT, limit_gy=limit)
    low, high = 5.0, 15.0
    assert dvh.max_gy == limit
    assert dvh.total_cm3 == pytest.approx(BOX_CM3, rel=1e-3)
    above = BOX_CM3 * (high - limit) / (high - low)
    assert dvh.volume_at_dose(limit) == pytest.approx(above, rel=0.01)
    assert dvh.volume_at_dose(limit + 0.01) == 0.0
    # mean of min(D, 12) for D uniform in 5-15 Gy: ((12^2 - 5^2) / 2 + 3 x 12) / 10
    assert dvh.mean_gy == pytest.approx(
        ((limit**2 - low**2) / 2 + (high - limit) * limit) / 10, abs=0.01
    )
    assert float(dvh.D0_03cc) == limit
    assert "dose limit" in dvh.warnings[-1]
    plain = get_dvh(
        case.rtstruct, case.dose, "Box", **EXACT, limit_gy=20.0
    )  # above Dmax: unchanged
    assert plain.max_gy == pytest.approx(15.0, abs=0.01)
    with pytest.raises(InvalidInputError, match="limit_gy"):
        cap_dose(plain, 0.0)


def test_single_plane_slab_thickness_and_where_it_comes_from(case: Case) -> None:
    area_cm3 = 10.0 * 10.0 / 1000
    with pytest.warns(GeometryWarning, match="contour planes"):
        dvh = get_dvh(case.rtstruct, case.dose, "Lone", **EXACT)
    assert dvh.total_cm3 == pytest.approx(area_cm3 * 3.0, rel=1e-3)  # the CT slices' 3 mm
    assert "single plane" in dvh.warnings[-1]
    with pytest.warns(GeometryWarning, match="image series' slice spacing"):
        dvh = get_dvh(case.rtstruct, case.dose, "Lone", **EXACT, image=case.ct)
    assert dvh.total_cm3 == pytest.approx(area_cm3 * 3.0, rel=1e-3)
    dvh = get_dvh(case.rtstruct, case.dose, "Lone", **EXACT, slab_thickness_mm=5.0)
    assert dvh.total_cm3 == pytest.approx(area_cm3 * 5.0, rel=1e-3)
    assert dvh.mean_gy == pytest.approx(BASE, abs=0.01)
    alone = read_rtstruct(case.rtstruct, on_invalid="ignore")
    alone = dataclasses.replace(alone, rois=(alone.roi("Lone"),))
    with pytest.warns(GeometryWarning, match="dose grid's slice spacing"):
        dvh = get_dvh(alone, case.dose, 3, **EXACT)
    assert dvh.total_cm3 == pytest.approx(area_cm3 * 2.5, rel=1e-3)


def test_calculate_full_volume_counts_the_part_outside_at_zero(case: Case) -> None:
    full_cm3 = 10.0 * 10.0 * 18.0 / 1000
    with pytest.warns(GeometryWarning, match="left out"):
        inside = get_dvh(case.rtstruct, case.dose, "Far", **EXACT)
    with pytest.warns(GeometryWarning, match="counted at 0 Gy"):
        full = get_dvh(case.rtstruct, case.dose, "Far", **EXACT, calculate_full_volume=True)
    assert full.total_cm3 == pytest.approx(full_cm3, rel=1e-3)
    assert inside.total_cm3 + inside.outside_cm3 == pytest.approx(full_cm3, rel=1e-3)
    assert full.min_gy == 0.0


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"limit_gy": -1.0}, "limit_gy must be a positive"),
        ({"slab_thickness_mm": 0.0}, "slab_thickness_mm must be a positive"),
        ({"interpolate": -1}, "interpolate must be"),
        ({"interpolate": "yes"}, "interpolate must be"),
    ],
)
def test_invalid_options_are_refused(case: Case, options: dict[str, object], message: str) -> None:
    with pytest.raises(InvalidInputError, match=message):
        get_dvh(case.rtstruct, case.dose, "Box", **EXACT, **options)  # type: ignore[arg-type]


def test_interpolating_a_prism_changes_nothing_and_reports_progress(case: Case) -> None:
    calls: list[tuple[int, int]] = []
    dvh = get_dvh(
        case.rtstruct, case.dose, "Box", **EXACT, interpolate=2, progress=lambda *a: calls.append(a)
    )
    gaps = BOX_PLANES.size - 1
    assert calls == [(k, gaps + 2) for k in range(1, gaps + 3)]
    assert dvh.total_cm3 == pytest.approx(BOX_CM3, rel=2e-3)  # end caps kept at 1.5 mm
    assert dvh.mean_gy == pytest.approx(BASE, abs=0.01)
    none = get_dvh(case.rtstruct, case.dose, "Box", **EXACT, interpolate=True, end_caps="none")
    assert none.total_cm3 == pytest.approx(BOX_MM**2 * 15.0 / 1000, rel=2e-3)


# ------------------------------------------------------------- interpolation of shapes
R_BASE, R_TOP, HEIGHT = 20.0, 5.0, 30.0  # frustum radii (mm) at z = 0 and z = HEIGHT
N_VERTICES = 256
NGON = N_VERTICES / (2 * math.pi) * math.sin(2 * math.pi / N_VERTICES)  # area factor


def _radius(z: float | np.ndarray) -> float | np.ndarray:
    return R_BASE + (R_TOP - R_BASE) * np.asarray(z) / HEIGHT


def _frustum(gap_mm: float) -> ROI:
    angles = 2 * np.pi * (np.arange(N_VERTICES) + 0.5) / N_VERTICES
    contours = []
    for z in np.arange(0.0, HEIGHT + 1e-9, gap_mm):
        r = float(_radius(z))
        contours.append(
            Contour(
                points_mm=np.column_stack(
                    [r * np.cos(angles) + 0.3, r * np.sin(angles) - 0.2, np.full(N_VERTICES, z)]
                )
            )
        )
    return ROI(number=5, name="Frustum", contours=tuple(contours))


def _z_dose() -> DoseGrid:
    """D = 10 Gy + 0.5 Gy/mm x z on a 2 mm grid around the frustum."""
    grid = ImageGrid.from_explicit(
        origin_mm=(-24.1, -24.3, -6.2), spacing_mm=(2.0, 2.0, 2.0), shape=(23, 25, 25)
    )
    index = np.stack(np.meshgrid(*[np.arange(k) for k in grid.shape], indexing="ij"), -1)
    z = grid.index_to_patient(index.reshape(-1, 3))[:, 2].reshape(grid.shape)
    return DoseGrid(dose_gy=BASE + GRADIENT * z, grid=grid)


def _volume_above(z: float) -> float:
    """Frustum volume (cm3) above height ``z`` (0-HEIGHT), no end caps, as the 256-gon."""
    slope = (R_TOP - R_BASE) / HEIGHT
    return NGON * math.pi * (R_TOP**3 - float(_radius(z)) ** 3) / (3 * slope) / 1000


def test_interpolated_contours_follow_a_cone_between_coarse_planes() -> None:
    dose = _z_dose()
    roi = _frustum(6.0)
    stack = compute_dvh(roi, dose, end_caps="none")
    shaped, caps = interpolate_roi(roi, dose.grid, True, EndCaps.NONE)
    assert caps is EndCaps.NONE
    assert len(shaped.contours) == 31  # 6 planes, 5 more in each of the 5 gaps
    interpolated = compute_dvh(shaped, dose, end_caps=caps)
    exact = _volume_above(0.0)
    stack_error = abs(stack.total_cm3 / exact - 1)
    interpolated_error = abs(interpolated.total_cm3 / exact - 1)
    assert stack_error > 0.005  # the slabs' staircase: about 0.9 %
    assert interpolated_error < 0.001
    assert interpolated_error < stack_error / 10
    worst = {"stack": 0.0, "interpolated": 0.0}
    for z in (3.0, 9.0, 14.0, 21.0, 27.0):
        expected = _volume_above(z)
        for name, dvh in (("stack", stack), ("interpolated", interpolated)):
            found = dvh.volume_at_dose(BASE + GRADIENT * z)
            worst[name] = max(worst[name], abs(found - expected) / exact)
    assert worst["interpolated"] < 0.002
    assert worst["interpolated"] < worst["stack"] / 3


def test_half_end_caps_keep_the_original_extent() -> None:
    dose = _z_dose()
    shaped, caps = interpolate_roi(_frustum(6.0), dose.grid, 2, EndCaps.HALF)
    assert caps is EndCaps.NONE
    dvh = compute_dvh(shaped, dose, end_caps=caps)
    caps_cm3 = NGON * math.pi * (R_BASE**2 + R_TOP**2) * 3.0 / 1000  # half of 6 mm each end
    assert dvh.total_cm3 == pytest.approx(_volume_above(0.0) + caps_cm3, rel=2e-3)
    assert dvh.min_gy == pytest.approx(BASE - GRADIENT * 3.0, abs=0.02)
    assert dvh.max_gy == pytest.approx(BASE + GRADIENT * (HEIGHT + 3.0), abs=0.02)


def test_a_shape_that_splits_between_planes_is_traced_in_pieces() -> None:
    dose = _z_dose()
    angles = 2 * np.pi * np.arange(64) / 64

    def ring(radius: float, x0: float, z: float) -> Contour:
        points = np.column_stack(
            [x0 + radius * np.cos(angles), radius * np.sin(angles), np.full(64, z)]
        )
        return Contour(points_mm=points)

    roi = ROI(
        number=6,
        name="Split",
        contours=(ring(12.0, 0.0, 0.0), ring(4.0, -8.0, 10.0), ring(4.0, 8.0, 10.0)),
    )
    shaped, _ = interpolate_roi(roi, dose.grid, 3, EndCaps.NONE)
    by_plane: dict[float, int] = {}
    for contour in shaped.contours:
        z = round(float(contour.points_mm[0, 2]), 3)
        by_plane[z] = by_plane.get(z, 0) + 1
    assert by_plane[0.0] == 1
    assert by_plane[10.0] == 2
    assert by_plane[7.5] == 2  # near B: two pieces
    assert set(by_plane) == {0.0, 2.5, 5.0, 7.5, 10.0}


def test_a_thin_shape_shifting_by_more_than_its_width_keeps_its_size() -> None:
    """A 2 x 20 mm bar moving 6 mm sideways between planes 6 mm apart: a sheared prism."""

    def bar(x0: float, z: float) -> Contour:
        return Contour(points_mm=_square(1.0, z, x0=x0) * [1.0, 10.0, 1.0])

    roi = ROI(number=9, name="Bar", contours=(bar(0.0, 0.0), bar(6.0, 6.0)))
    shaped, caps = interpolate_roi(roi, _z_dose().grid, True, EndCaps.NONE)
    middle = [c.points_mm for c in shaped.contours if abs(c.points_mm[0, 2] - 3.0) < 1e-9]
    assert len(middle) == 1
    assert middle[0][:, 0].mean() == pytest.approx(3.0, abs=0.05)  # half-way across
    volume = contour_volume(shaped, end_caps=caps).volume_cm3
    assert volume == pytest.approx(2.0 * 20.0 * 6.0 / 1000, rel=0.01)  # shear keeps volume


def test_holes_are_interpolated_as_holes() -> None:
    dose = _z_dose()
    angles = 2 * np.pi * np.arange(128) / 128

    def ring(radius: float, z: float) -> Contour:
        points = np.column_stack(
            [radius * np.cos(angles), radius * np.sin(angles), np.full(128, z)]
        )
        return Contour(points_mm=points)

    roi = ROI(
        number=7,
        name="Annulus",
        contours=(ring(15.0, 0.0), ring(5.0, 0.0), ring(15.0, 10.0), ring(9.0, 10.0)),
    )
    shaped, caps = interpolate_roi(roi, dose.grid, True, EndCaps.NONE)
    dvh = compute_dvh(shaped, dose, end_caps=caps, resolution_mm=0.25)
    factor = 128 / (2 * math.pi) * math.sin(2 * math.pi / 128)
    # outer radius 15; inner radius 5 -> 9 linearly: pi (15^2 h - integral of r_in^2)
    inner = math.pi * 10.0 * (5.0**2 + 5.0 * 9.0 + 9.0**2) / 3
    expected = (math.pi * 15.0**2 * 10.0 - inner) * factor / 1000
    stack = compute_dvh(roi, dose, end_caps="none", resolution_mm=0.25)
    assert abs(contour_volume(shaped, end_caps="none").volume_cm3 / expected - 1) < 5e-4
    assert abs(dvh.total_cm3 / expected - 1) < 5e-4
    assert abs(stack.total_cm3 / expected - 1) > 0.01  # the slabs: about 2 %


def test_planes_between_and_the_limit_on_planes() -> None:
    assert planes_between(5.0, True) == 4  # 1 mm gaps
    assert planes_between(0.8, True) == 0
    assert planes_between(5.0, 3) == 3
    assert planes_between(5.0, False) == 0
    with pytest.raises(InvalidInputError, match="more than"):
        interpolate_roi(_frustum(6.0), _z_dose().grid, 10_000, EndCaps.HALF)
    empty = ROI(number=8, name="Points", contours=())
    with pytest.raises(InvalidInputError, match="no closed contour"):
        interpolate_roi(empty, _z_dose().grid, 1, EndCaps.HALF)


# ------------------------------------------------------------- the command line
def test_cli_takes_roi_numbers_percent_volumes_and_counts_outside(
    case: Case, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    table = tmp_path / "dvh.csv"
    base = ["dvh", str(case.rtstruct), str(case.dose), "--resolution", "0.5"]
    stats = "--stats=D50,V10Gy,V10Gy%"
    code, out, _ = run_cli(capsys, *base, stats, "--roi", "1", "--json")
    assert code == 0
    (box,) = json.loads(out)["rois"]
    assert (box["number"], box["name"]) == (1, "Box")
    assert box["stats"]["V10Gy%"] == pytest.approx(50.0, abs=0.2)
    assert box["stats"]["V10Gy"] == pytest.approx(BOX_CM3 / 2, rel=0.01)
    code, out, err = run_cli(capsys, *base, stats, "--roi", "Far", "--csv", str(table))
    assert code == 0
    assert "V10Gy% (%)" in out
    assert "lies outside the dose grid and is left out" in " ".join(err.split())
    rows = list(csv.DictReader(table.read_text(encoding="utf-8").splitlines()))
    assert "V10Gy%_percent" in rows[0]
    assert float(rows[0]["volume_cm3"]) < 1.8 * 0.6  # about half of it is left out
    code, out, _ = run_cli(capsys, *base, "--roi", "4", "--count-outside", "--json")
    assert code == 0
    (far,) = json.loads(out)["rois"]
    assert far["volume_cm3"] == pytest.approx(1.8, rel=0.01)
    assert far["min_gy"] == 0.0
