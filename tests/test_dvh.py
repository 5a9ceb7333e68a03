"""DVH calculation against analytic DVHs in a linear dose gradient (Nelms et al. 2015 style).

The dose is D = 16 Gy + 1 Gy/mm x (distance from the structure centre along one axis).
References are closed forms with half-slice end caps: a cylinder (radius 12 mm, length
24 mm, contours every s mm) is a cylinder of length 24 + s, whose cumulative DVH across the
gradient is (24 + s) x the circular-segment area beyond the threshold; a finely contoured
sphere is compared with the exact spherical-cap volumes. D-values are the inverse of the
analytic V(D), found by bisection here.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable

import numpy as np
import pytest

from conftest import HFS, SAGITTAL
from rtmask._errors import GeometryWarning, InvalidInputError
from rtmask.dose import DoseGrid
from rtmask.dvh import DVH, compute_dvh, cumulative_curve
from rtmask.geometry import ImageGrid
from rtmask.rtstruct import ROI, Contour

X0, Y0, Z0 = 3.3, -7.1, 12.4  # structure centre, off every grid origin
R = 12.0
N_VERTICES = 256
STATS = (99.0, 95.0, 5.0, 1.0)


def _linear_dose(spacing: float, axis: int, *, x_from: float | None = None) -> DoseGrid:
    """D = 16 + (coordinate - centre) along ``axis`` on a cubic grid around the centre."""
    centre = np.array([X0, Y0, Z0])
    n = round(64 / spacing) + 1
    origin = centre - 32 + 0.37  # dose voxels not aligned with the structure
    shape = [n, n, n]
    if x_from is not None:
        origin[0] = x_from
        shape[2] = round(40 / spacing) + 1
    grid = ImageGrid.from_explicit(
        origin_mm=origin.tolist(), spacing_mm=(spacing,) * 3, shape=shape
    )
    index = np.stack(np.meshgrid(*[np.arange(k) for k in shape], indexing="ij"), -1)
    points = grid.index_to_patient(index.reshape(-1, 3))
    dose = 16.0 + (points[:, axis] - centre[axis])
    return DoseGrid(dose_gy=dose.reshape(shape), grid=grid)


def _ring(radius: float, z: float) -> np.ndarray:
    angles = 2 * np.pi * np.arange(N_VERTICES) / N_VERTICES
    return np.column_stack(
        [X0 + radius * np.cos(angles), Y0 + radius * np.sin(angles), np.full(N_VERTICES, z)]
    )


def _cylinder(gap: float) -> ROI:
    planes = Z0 + np.arange(-R, R + 1e-9, gap)
    return ROI(
        number=3,
        name="Cylinder",
        color=(255, 0, 0),
        contours=tuple(Contour(points_mm=_ring(R, z)) for z in planes),
    )


def _sphere(gap: float) -> ROI:
    offsets = np.arange(-R + gap / 2, R, gap)  # planes symmetric, none at the poles
    return ROI(
        number=4,
        name="Sphere",
        contours=tuple(Contour(points_mm=_ring(math.sqrt(R * R - t * t), Z0 + t)) for t in offsets),
    )


def _ngon_factor() -> float:
    """Area of the 256-gon over the area of its circumscribed circle."""
    return N_VERTICES / (2 * math.pi) * math.sin(2 * math.pi / N_VERTICES)


def _segment_area(t: float) -> float:
    """Area (mm2) of the disc of radius R where the offset from the centre is >= t."""
    t = min(max(t, -R), R)
    return R * R * math.acos(t / R) - t * math.sqrt(R * R - t * t)


def _inverse(volume_of: Callable[[float], float], volume_cm3: float) -> float:
    """Dose (Gy) where the decreasing analytic V(D) equals ``volume_cm3`` (bisection)."""
    low, high = 0.0, 50.0
    for _ in range(80):
        middle = (low + high) / 2
        low, high = (middle, high) if volume_of(middle) >= volume_cm3 else (low, middle)
    return (low + high) / 2


def _check_d_values(dvh: DVH, volume_of: Callable[[float], float], total: float) -> None:
    for percent in STATS:
        expected = _inverse(volume_of, total * percent / 100)
        assert dvh.dose_at_percent(percent) == pytest.approx(expected, rel=0.01), percent
        assert dvh.statistic(f"D{percent:g}") == dvh.dose_at_percent(percent)
    expected = _inverse(volume_of, 0.03)
    assert dvh.statistic("D0.03cc") == pytest.approx(expected, rel=0.01)


@pytest.mark.parametrize(("gap", "spacing"), [(1.0, 1.0), (1.0, 3.0), (0.2, 2.0)])
def test_cylinder_across_gradient_matches_analytic(gap: float, spacing: float) -> None:
    length = 2 * R + gap  # half-slice end caps
    scale = length * _ngon_factor() / 1000.0

    def volume_of(dose: float) -> float:
        return scale * _segment_area(dose - 16.0)

    total = volume_of(0.0)
    dvh = compute_dvh(_cylinder(gap), _linear_dose(spacing, axis=0))
    assert dvh.total_cm3 == pytest.approx(total, rel=0.002)
    assert dvh.mean_gy == pytest.approx(16.0, abs=0.01)
    assert dvh.min_gy == pytest.approx(4.0, rel=0.01)
    assert dvh.max_gy == pytest.approx(28.0, rel=0.01)
    assert dvh.statistic("Dmin") == dvh.dose_at_percent(100) == dvh.min_gy
    assert dvh.dose_at_volume(0.0) == dvh.max_gy
    _check_d_values(dvh, volume_of, total)
    assert dvh.outside_cm3 == 0.0
    assert dvh.warnings == ()


def test_cylinder_along_gradient_is_linear() -> None:
    gap = 1.0
    half = R + gap / 2
    area = math.pi * R * R * _ngon_factor()

    def volume_of(dose: float) -> float:
        return area * min(max(half - (dose - 16.0), 0.0), 2 * half) / 1000.0

    total = volume_of(0.0)
    dvh = compute_dvh(_cylinder(gap), _linear_dose(2.0, axis=2))
    assert dvh.total_cm3 == pytest.approx(total, rel=0.002)
    assert dvh.statistic("D50") == pytest.approx(16.0, rel=0.005)
    assert dvh.statistic("Dmedian") == dvh.statistic("D50")
    assert dvh.mean_gy == pytest.approx(16.0, abs=0.01)
    assert dvh.min_gy == pytest.approx(16.0 - half, rel=0.01)
    assert dvh.max_gy == pytest.approx(16.0 + half, rel=0.01)
    _check_d_values(dvh, volume_of, total)
    assert dvh.statistic("D95") == pytest.approx(16.0 + half - 0.95 * 2 * half, rel=0.01)


def test_sphere_across_gradient_matches_exact_sphere() -> None:
    def volume_of(dose: float) -> float:
        h = R - min(max(dose - 16.0, -R), R)
        return math.pi * h * h * (3 * R - h) / 3 / 1000.0

    total = volume_of(0.0)
    dvh = compute_dvh(_sphere(0.2), _linear_dose(2.0, axis=0))
    assert dvh.total_cm3 == pytest.approx(total, rel=0.01)
    assert dvh.mean_gy == pytest.approx(16.0, abs=0.01)
    assert dvh.min_gy == pytest.approx(4.0, rel=0.01)
    assert dvh.max_gy == pytest.approx(28.0, rel=0.01)
    for percent in STATS:
        expected = _inverse(volume_of, total * percent / 100)
        assert dvh.dose_at_percent(percent) == pytest.approx(expected, rel=0.01), percent
    assert dvh.statistic("D0.03cc") == pytest.approx(_inverse(volume_of, 0.03), rel=0.01)


def test_curve_invariants_and_differential() -> None:
    dvh = compute_dvh(_cylinder(2.0), _linear_dose(3.0, axis=0), bin_width_gy=0.05)
    assert dvh.dose_gy[0] == 0.0
    assert np.all(np.diff(dvh.dose_gy) > 0)
    assert np.all(np.diff(dvh.volume_cm3) <= 0)
    assert dvh.volume_cm3[-1] == 0.0
    assert dvh.dose_gy.shape == dvh.volume_cm3.shape
    differential = dvh.differential()
    centres, per_bin = differential.dose_centres, differential.volume
    assert centres.shape == (dvh.dose_gy.size - 1,)
    assert per_bin.sum() == pytest.approx(dvh.total_cm3)
    assert np.all(per_bin >= -1e-12)
    assert dvh.relative_volume().volume[0] == pytest.approx(100.0)
    assert dvh.percent_at_dose(16.0) == pytest.approx(50.0, abs=0.5)
    with pytest.raises(ValueError, match="read-only"):
        dvh.dose_gy[0] = 1.0


def test_cumulative_curve_of_point_and_spread_samples() -> None:
    edges, volume = cumulative_curve([1.0, 3.0], [2.0, 1.0], bin_width_gy=0.5)
    np.testing.assert_allclose(edges, np.arange(8) * 0.5)
    np.testing.assert_allclose(volume, [3, 3, 3, 1, 1, 1, 1, 0])
    # one sample spread uniformly over 1-3 Gy: V falls linearly from 2 to 0
    edges, volume = cumulative_curve([2.0], [2.0], bin_width_gy=0.5, spreads_gy=[2.0])
    np.testing.assert_allclose(volume, [2, 2, 2, 1.5, 1, 0.5, 0, 0][: edges.size])


def _small_dvh(prescription: float | None = None) -> DVH:
    return DVH(
        dose_gy=np.array([0.0, 10.0, 20.0, 30.0]),
        volume_cm3=np.array([10.0, 10.0, 5.0, 0.0]),
        min_gy=10.0,
        max_gy=30.0,
        mean_gy=20.0,
        roi_number=7,
        roi_name="PTV",
        prescription_gy=prescription,
    )


def test_statistic_parsing_interpolates() -> None:
    dvh = _small_dvh(prescription=20.0)
    assert dvh.statistic("D50") == pytest.approx(20.0)
    assert dvh.statistic("D75") == pytest.approx(15.0)
    assert dvh.statistic("D2.5cc") == pytest.approx(25.0)
    assert dvh.statistic("V25Gy") == pytest.approx(2.5)
    assert dvh.statistic("V125") == pytest.approx(2.5)  # >= 25 Gy, 125 % of 20 Gy
    assert dvh.statistic("V125%") == pytest.approx(2.5)
    assert dvh.statistic("Dmean") == 20.0
    assert dvh.statistic("Dmax") == 30.0
    assert dvh.statistic("D100") == 10.0
    assert dvh.statistic("D0") == 30.0
    np.testing.assert_allclose(dvh.relative_dose().dose_edges, [0, 50, 100, 150])


@pytest.mark.parametrize("name", ["D", "X95", "D95Gy", "Vcc", "", "D-5"])
def test_unknown_statistic_names_the_accepted_forms(name: str) -> None:
    with pytest.raises(ValueError, match="accepted forms: Dmin"):
        _small_dvh().statistic(name)


def test_v_percent_needs_a_prescription() -> None:
    with pytest.raises(InvalidInputError, match="prescription"):
        _small_dvh().statistic("V95")


def test_invalid_curves_are_refused() -> None:
    with pytest.raises(InvalidInputError, match="cumulative"):
        DVH(
            dose_gy=np.array([0.0, 1.0]),
            volume_cm3=np.array([1.0, 2.0]),
            min_gy=0.0,
            max_gy=1.0,
            mean_gy=0.5,
            roi_number=1,
            roi_name="X",
        )


def test_to_dict_has_the_json_shape() -> None:
    entry = _small_dvh().to_dict(["D50", "V20Gy"])
    assert list(entry) == [
        "number",
        "name",
        "volume_cm3",
        "min_gy",
        "mean_gy",
        "max_gy",
        "stats",
        "curve",
    ]
    assert entry["number"] == 7
    assert entry["name"] == "PTV"
    assert entry["volume_cm3"] == 10.0
    assert entry["stats"] == {"D50": pytest.approx(20.0), "V20Gy": pytest.approx(5.0)}
    assert entry["curve"] == {"dose_gy": [0, 10, 20, 30], "volume_cm3": [10, 10, 5, 0]}
    json.dumps(entry)


def test_roi_half_outside_the_dose_grid_is_reported() -> None:
    dose = _linear_dose(2.0, axis=0, x_from=X0)
    roi = _cylinder(2.0)
    total = (2 * R + 2.0) * math.pi * R * R * _ngon_factor() / 1000.0
    with pytest.warns(GeometryWarning, match=r"'Cylinder'.*outside the dose grid.*left out"):
        dvh = compute_dvh(roi, dose)
    assert dvh.outside_cm3 == pytest.approx(total / 2, rel=0.02)
    assert dvh.total_cm3 == pytest.approx(total / 2, rel=0.02)
    assert dvh.min_gy == pytest.approx(16.0, abs=0.01)
    assert "%" in dvh.warnings[-1]
    with pytest.warns(GeometryWarning, match="counted at 0 Gy"):
        counted = compute_dvh(roi, dose, count_outside=True)
    assert counted.total_cm3 == pytest.approx(total, rel=0.002)
    assert counted.min_gy == 0.0


def test_end_caps_none_drops_the_half_slabs() -> None:
    dvh = compute_dvh(_cylinder(2.0), _linear_dose(3.0, axis=0), end_caps="none")
    expected = 2 * R * math.pi * R * R * _ngon_factor() / 1000.0
    assert dvh.total_cm3 == pytest.approx(expected, rel=0.002)


def test_wide_gap_between_planes_is_warned_and_bridged_half_way() -> None:
    """Two cylinders 20 mm apart along the gradient: reported, slabs meet half-way."""
    planes = [Z0 - 16.0, Z0 - 14.0, Z0 - 12.0, Z0 + 8.0, Z0 + 10.0, Z0 + 12.0]
    roi = ROI(
        number=7, name="Pieces", contours=tuple(Contour(points_mm=_ring(R, z)) for z in planes)
    )
    with pytest.warns(GeometryWarning, match="uncontoured plane or a structure in separate"):
        dvh = compute_dvh(roi, _linear_dose(2.0, axis=2))
    assert any("the widest 20.00 mm" in message for message in dvh.warnings)
    length = 6 * 2.0 + 2 * 9.0  # 2 mm slabs, and the planes beside the gap reach 10 mm in
    assert dvh.total_cm3 == pytest.approx(
        math.pi * R * R * _ngon_factor() * length / 1000, rel=0.002
    )


def test_roi_without_closed_contours_is_refused() -> None:
    with pytest.raises(InvalidInputError, match="no closed contour"):
        compute_dvh(ROI(number=1, name="Empty"), _linear_dose(3.0, axis=0))


def _smooth_dose(grid: ImageGrid) -> DoseGrid:
    """A smooth, non-linear dose on ``grid`` (trilinear interpolation is not exact on it)."""
    index = np.stack(np.meshgrid(*[np.arange(k) for k in grid.shape], indexing="ij"), -1)
    points = grid.index_to_patient(index.reshape(-1, 3))
    values = 20 + 10 * np.sin(points[:, 0] / 7) * np.cos(points[:, 1] / 5) + points[:, 2] / 3
    return DoseGrid(dose_gy=values.reshape(grid.shape), grid=grid)


@pytest.mark.parametrize(
    "orientation",
    [HFS, SAGITTAL],
    ids=["axial", "sagittal"],
)
def test_plane_sampler_equals_trilinear_sampling(orientation: tuple[float, ...]) -> None:
    """The separable plane sampler gives sample_dose's trilinear values, NaN outside."""
    from rtmask.dose import sample_dose
    from rtmask.dvh._planes import PlaneDoseSampler

    dose_grid = ImageGrid.from_explicit(
        origin_mm=(-20.0, -15.0, -12.0),
        spacing_mm=(3.0, 2.5, 2.0),
        shape=(9, 13, 17),
        orientation=orientation,
    )
    dose = _smooth_dose(dose_grid)
    # A finer lattice, offset from the dose voxels and reaching beyond the dose grid.
    origin = dose_grid.index_to_patient([[0.0, -1.3, 2.7]])[0]
    lattice = ImageGrid.from_explicit(
        origin_mm=origin.tolist(),
        spacing_mm=(1.0, 0.7, 0.9),
        shape=(1, 40, 30),
        orientation=orientation,
    )
    sampler = PlaneDoseSampler(dose, lattice)
    normal = dose_grid.normal
    rows, columns = np.meshgrid(np.arange(40), np.arange(30), indexing="ij")
    for position in (float(dose_grid.slice_positions_mm[0]) + 0.4, 5.3, 100.0):
        plane = sampler.plane(position)
        index = np.column_stack([np.zeros(rows.size), rows.ravel(), columns.ravel()])
        points = lattice.index_to_patient(index)
        points += np.outer(position - points @ normal, normal)
        expected = sample_dose(dose, points).reshape(rows.shape)
        np.testing.assert_array_equal(np.isnan(plane), np.isnan(expected))
        np.testing.assert_allclose(plane[~np.isnan(plane)], expected[~np.isnan(expected)])
    low, high = 1.0, 4.5
    np.testing.assert_allclose(
        sampler.difference(low, high), sampler.plane(high) - sampler.plane(low), equal_nan=True
    )


def test_cumulative_curve_decides_ties_at_edges_by_comparison() -> None:
    """Point samples exactly on a bin edge count as receiving that edge's dose."""
    doses, weights = [0.0, 0.03, 0.05, 0.07], [1.0, 2.0, 4.0, 8.0]
    edges, curve = cumulative_curve(doses, weights, bin_width_gy=0.01)
    expected = [sum(w for d, w in zip(doses, weights, strict=True) if d >= edge) for edge in edges]
    expected[-1] = 0.0  # the curve ends at 0 above the largest dose
    np.testing.assert_array_equal(curve, expected)
    assert curve[0] == 15.0


def test_compute_dvhs_keeps_order_and_reports_failures() -> None:
    from rtmask.dvh import compute_dvhs

    dose = _linear_dose(2.0, axis=0)
    empty = ROI(number=9, name="no contours")
    rois = [_cylinder(2.0), empty, _sphere(1.0)]
    results = list(compute_dvhs(rois, dose, workers=2))
    assert isinstance(results[1], InvalidInputError)
    for roi, result in zip([rois[0], rois[2]], [results[0], results[2]], strict=True):
        assert isinstance(result, DVH)
        single = compute_dvh(roi, dose)
        assert result.roi_name == roi.name
        np.testing.assert_array_equal(result.volume_cm3, single.volume_cm3)
