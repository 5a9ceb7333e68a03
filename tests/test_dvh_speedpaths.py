"""The fast paths of the DVH calculation against independent references.

Frame planes, their blends along the normal and the shifted boundary samples are compared
with :func:`rtmask.dose.sample_dose` (8-corner trilinear interpolation); the cumulative
curve with a direct evaluation of its defining sum; slabs reaching beyond the dose frames
and structures sampled by whole voxels with their analytic volumes.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from conftest import HFS, SAGITTAL
from rtmask._errors import GeometryWarning
from rtmask.dose import DoseGrid, sample_dose
from rtmask.dvh import compute_dvh, cumulative_curve
from rtmask.dvh._planes import PlaneDoseSampler, sample_shifted
from rtmask.geometry import ImageGrid
from rtmask.rtstruct import ROI, Contour

ORIENTATIONS = pytest.mark.parametrize(
    "orientation",
    [HFS, SAGITTAL],
    ids=["axial", "sagittal"],
)


def _smooth_dose(grid: ImageGrid) -> DoseGrid:
    """A smooth, non-linear dose on ``grid`` (trilinear interpolation is not exact on it)."""
    index = np.stack(np.meshgrid(*[np.arange(k) for k in grid.shape], indexing="ij"), -1)
    points = grid.index_to_patient(index.reshape(-1, 3))
    values = 20 + 10 * np.sin(points[:, 0] / 7) * np.cos(points[:, 1] / 5) + points[:, 2] / 3
    return DoseGrid(dose_gy=values.reshape(grid.shape), grid=grid)


def _dose_grid(orientation: tuple[float, ...], frames: int = 9) -> ImageGrid:
    return ImageGrid.from_explicit(
        origin_mm=(-20.0, -15.0, -12.0),
        spacing_mm=(3.0, 2.5, 2.0),
        shape=(frames, 13, 17),
        orientation=orientation,
    )


def _lattice(
    dose_grid: ImageGrid, offset: tuple[float, float], spacing: tuple[float, float], size: int
) -> ImageGrid:
    """One lattice plane with the dose grid's orientation, from dose index ``offset``."""
    origin = dose_grid.index_to_patient([[0.0, *offset]])[0]
    return ImageGrid.from_explicit(
        origin_mm=origin.tolist(),
        spacing_mm=(1.0, *spacing),
        shape=(1, size, size + 3),
        orientation=dose_grid.orientation,
    )


# A finer lattice, and one with the dose grid's spacing; both reach beyond the dose grid.
LATTICES = pytest.mark.parametrize(
    ("offset", "spacing", "size"),
    [((-1.3, 2.7), (0.7, 0.9), 30), ((-2.6, 0.4), (2.5, 2.0), 16)],
    ids=["finer", "dose-spacing"],
)


def _expected_plane(dose: DoseGrid, lattice: ImageGrid, position_mm: float) -> np.ndarray:
    """``(rows, columns)`` sample_dose at the lattice voxel centres moved to a plane."""
    _, rows, columns = lattice.shape
    row, column = np.meshgrid(np.arange(rows), np.arange(columns), indexing="ij")
    points = lattice.index_to_patient(
        np.column_stack([np.zeros(row.size), row.ravel(), column.ravel()])
    )
    normal = dose.grid.normal
    points += np.outer(position_mm - points @ normal, normal)
    return sample_dose(dose, points).reshape(rows, columns)


@ORIENTATIONS
@LATTICES
def test_frame_planes_match_trilinear_sampling(
    orientation: tuple[float, ...],
    offset: tuple[float, float],
    spacing: tuple[float, float],
    size: int,
) -> None:
    """Dose and clipped neighbour differences of a frame, 0 where a point is outside."""
    dose = _smooth_dose(_dose_grid(orientation))
    lattice = _lattice(dose.grid, offset, spacing, size)
    sampler = PlaneDoseSampler(dose, lattice)
    rows, columns = lattice.shape[1:]
    up, down = np.maximum(np.arange(rows) - 1, 0), np.minimum(np.arange(rows) + 1, rows - 1)
    left = np.maximum(np.arange(columns) - 1, 0)
    right = np.minimum(np.arange(columns) + 1, columns - 1)
    for frame in (0, 4, 8):
        expected = _expected_plane(dose, lattice, float(dose.grid.slice_positions_mm[frame]))
        assert np.isnan(expected).any()
        across_rows = expected[down] - expected[up]
        across_columns = expected[:, right] - expected[:, left]
        planes = sampler.frame_planes(frame).reshape(3, rows, columns)
        for found, wanted in zip(planes, (expected, across_rows, across_columns), strict=True):
            np.testing.assert_allclose(found, np.nan_to_num(wanted), rtol=1e-12, atol=1e-12)
        box = (3, rows - 4, 2, columns - 5)
        part = sampler.frame_planes(frame, out=np.full(3 * rows * columns, 7.0), box=box)
        inner = (slice(None), slice(box[0], box[1]), slice(box[2], box[3]))
        np.testing.assert_array_equal(part.reshape(3, rows, columns)[inner], planes[inner])


@ORIENTATIONS
def test_several_frames_at_once_equal_one_at_a_time(orientation: tuple[float, ...]) -> None:
    dose = _smooth_dose(_dose_grid(orientation))
    lattice = _lattice(dose.grid, (-1.3, 2.7), (0.7, 0.9), 30)
    sampler = PlaneDoseSampler(dose, lattice)
    rows, columns = lattice.shape[1:]
    frames = [0, 3, 4, 8]
    single = np.stack([sampler.frame_planes(k).reshape(3, rows, columns) for k in frames])
    # Boxes inside, on every edge, and one row or one column wide.
    for box in [
        (3, rows - 4, 2, columns - 5),
        (0, rows, 0, columns),
        (0, 1, 0, columns),
        (rows - 1, rows, 4, 9),
        (5, 9, columns - 1, columns),
        (2, 3, 0, 1),
    ]:
        found = sampler.frames_planes(frames, box)
        wanted = single[:, :, box[0] : box[1], box[2] : box[3]]
        np.testing.assert_array_equal(found, wanted)


@ORIENTATIONS
def test_frame_blends_reproduce_sample_dose_along_the_normal(
    orientation: tuple[float, ...],
) -> None:
    dose = _smooth_dose(_dose_grid(orientation))
    lattice = _lattice(dose.grid, (-1.3, 2.7), (0.7, 0.9), 30)
    sampler = PlaneDoseSampler(dose, lattice)
    first, last = dose.grid.slice_positions_mm[[0, -1]]
    middle = (first + last) / 2 + 0.3
    positions = np.array(
        [first - 1, first - 1e-9, first + 0.4, middle, last, last + 1e-9, last + 1]
    )
    low, high, weight, inside = sampler.frame_indices(positions)
    np.testing.assert_array_equal(inside, [False, True, True, True, True, True, False])
    for i, position in enumerate(positions):
        expected = _expected_plane(dose, lattice, float(position))
        if not inside[i]:
            assert np.isnan(expected).all()
            continue
        blend = (1 - weight[i]) * sampler.frame_planes(int(low[i]))[0]
        blend += weight[i] * sampler.frame_planes(int(high[i]))[0]
        known = ~np.isnan(expected.ravel())
        np.testing.assert_allclose(blend[known], expected.ravel()[known], rtol=1e-12)


def test_a_single_frame_is_its_own_blend() -> None:
    dose = _smooth_dose(_dose_grid(HFS, frames=1))
    lattice = _lattice(dose.grid, (0.5, 0.5), (1.0, 1.0), 10)
    sampler = PlaneDoseSampler(dose, lattice)
    plane = float(dose.grid.slice_positions_mm[0])
    low, high, weight, inside = sampler.frame_indices(np.array([plane, plane + 1.0]))
    np.testing.assert_array_equal(inside, [True, False])
    assert low[0] == high[0] == 0
    assert weight[0] == 0.0
    expected = _expected_plane(dose, lattice, plane).ravel()
    np.testing.assert_allclose(sampler.frame_planes(0)[0], expected, rtol=1e-12)


def _non_uniform_grid() -> ImageGrid:
    positions = np.array([[-20.0, -15.0, z] for z in (-12.0, -10.0, -5.0, -4.0, 2.0, 3.5)])
    return ImageGrid.from_slices(
        positions_mm=positions,
        orientation=HFS,
        pixel_spacing_mm=(2.5, 2.0),
        rows=13,
        columns=17,
    )


@pytest.mark.parametrize(
    "grid",
    [
        _dose_grid(HFS),
        _dose_grid((0.0, 1.0, 0.0, 0.0, 0.0, -1.0)),
        _non_uniform_grid(),
        _dose_grid(HFS, frames=1),
    ],
    ids=["axial", "sagittal", "non-uniform", "one-frame"],
)
def test_shifted_points_match_sample_dose(grid: ImageGrid) -> None:
    """Points moved along the normal: trilinear values, NaN outside (several blocks)."""
    dose = _smooth_dose(grid)
    rng = np.random.default_rng(7)
    corners = grid.index_to_patient(np.array([[0, 0, 0], np.array(grid.shape) - 1]))
    low, high = corners.min(axis=0) - 3, corners.max(axis=0) + 3
    points = rng.uniform(low, high, size=(9000, 3))
    shifts = rng.uniform(-4, 4, size=(9000, 3))
    shifts[::7] = 0.0
    if grid.shape[0] == 1:  # points on the only plane, some moved off it
        points += np.outer(grid.slice_positions_mm[0] - points @ grid.normal, grid.normal)
    found = sample_shifted(dose, points, shifts)
    for j in range(shifts.shape[1]):
        expected = sample_dose(dose, points + np.outer(shifts[:, j], grid.normal))
        np.testing.assert_array_equal(np.isnan(found[:, j]), np.isnan(expected))
        known = ~np.isnan(expected)
        assert known.sum() > 100
        np.testing.assert_allclose(found[known, j], expected[known], rtol=1e-12)


def _direct_curve(
    doses: np.ndarray, weights: np.ndarray, spreads: np.ndarray, bin_width: float
) -> tuple[np.ndarray, np.ndarray]:
    """The cumulative curve evaluated edge by edge from its definition."""
    low = np.maximum(doses - np.abs(spreads) / 2, 0.0)
    high = np.maximum(doses + np.abs(spreads) / 2, 0.0)
    point = high - low < 1e-3 * bin_width
    edges = np.arange(math.floor(high.max() / bin_width) + 2) * bin_width
    share = np.where(
        point[None, :],
        (low[None, :] >= edges[:, None]).astype(float),
        np.clip((high[None, :] - edges[:, None]) / np.where(point, 1.0, high - low), 0.0, 1.0),
    )
    volume = np.maximum(np.minimum.accumulate(share @ weights), 0.0)
    volume[-1] = 0.0
    return edges, volume


def test_cumulative_curve_matches_its_definition() -> None:
    """Spread samples, points (zero and tiny spreads), ties at edges, negative doses."""
    rng = np.random.default_rng(3)
    n = 40_000  # several blocks
    bin_width = 0.05
    doses = rng.uniform(-0.2, 2.0, n)
    doses[:2000] = bin_width * rng.integers(0, 40, 2000)  # exactly on edges
    spreads = rng.uniform(0.0, 0.5, n) * rng.choice([-1.0, 1.0], n)
    spreads[:3000] = 0.0
    spreads[3000:4000] = 1e-6  # far below a bin: points
    weights = rng.uniform(0.1, 1.0, n)
    edges, volume = cumulative_curve(doses, weights, bin_width_gy=bin_width, spreads_gy=spreads)
    expected_edges, expected = _direct_curve(doses, weights, spreads, bin_width)
    np.testing.assert_allclose(edges, expected_edges, rtol=0, atol=1e-12)
    np.testing.assert_allclose(volume, expected, rtol=0, atol=1e-10 * weights.sum())


def _cylinder_roi(radius: float, centre: tuple[float, float], planes: list[float]) -> ROI:
    angles = 2 * np.pi * np.arange(128) / 128
    ring = np.column_stack(
        [centre[0] + radius * np.cos(angles), centre[1] + radius * np.sin(angles)]
    )
    return ROI(
        number=5,
        name="Rod",
        contours=tuple(
            Contour(points_mm=np.column_stack([ring, np.full(len(ring), z)])) for z in planes
        ),
    )


def _frames_from(first_mm: float) -> DoseGrid:
    """Axial frames every mm from ``first_mm`` (7 frames), dose 10 Gy + 1 Gy/mm along x."""
    grid = ImageGrid.from_explicit(
        origin_mm=(-20.0, -20.0, first_mm), spacing_mm=(1.0, 1.0, 1.0), shape=(7, 41, 41)
    )
    index = np.stack(np.meshgrid(*[np.arange(k) for k in grid.shape], indexing="ij"), -1)
    points = grid.index_to_patient(index.reshape(-1, 3))
    return DoseGrid(dose_gy=(10.0 + points[:, 0]).reshape(grid.shape), grid=grid)


def test_sub_slabs_beyond_the_dose_frames_are_outside() -> None:
    """Planes 3 mm apart in 1 mm frames: 3 sub-slabs each; 3 of 9 lie beyond the frames."""
    roi = _cylinder_roi(6.0, (0.3, -0.2), [0.0, 3.0, 6.0])
    dose = _frames_from(0.2)  # frames at 0.2 .. 6.2 mm: sub-slab centres -1, 0 and 7 outside
    with pytest.warns(GeometryWarning, match="left out"):
        dvh = compute_dvh(roi, dose)
    assert dvh.outside_cm3 / (dvh.outside_cm3 + dvh.total_cm3) == pytest.approx(1 / 3, rel=1e-9)
    assert dvh.mean_gy == pytest.approx(10.3, abs=0.01)
    assert dvh.min_gy == pytest.approx(10.3 - 6.0, abs=0.05)
    assert dvh.max_gy == pytest.approx(10.3 + 6.0, abs=0.05)
    with pytest.warns(GeometryWarning, match="counted at 0 Gy"):
        counted = compute_dvh(roi, dose, count_outside=True)
    assert counted.total_cm3 == pytest.approx(dvh.total_cm3 * 1.5, rel=1e-9)
    assert counted.min_gy == 0.0
    assert counted.mean_gy == pytest.approx(dvh.mean_gy * 2 / 3, rel=1e-9)


def test_extremes_without_fully_covered_voxels_come_from_the_samples_inside() -> None:
    """A rod thinner than a calculation voxel, partly beyond the dose frames."""
    roi = _cylinder_roi(1.2, (0.3, -0.2), [0.0, 3.0, 6.0])
    dose = _frames_from(0.2)
    with pytest.warns(GeometryWarning, match="left out"):
        dvh = compute_dvh(roi, dose, resolution_mm=4.0)
    vertices = np.concatenate([c.points_mm for c in roi.contours])
    vertex_doses = sample_dose(dose, vertices)
    vertex_doses = vertex_doses[~np.isnan(vertex_doses)]
    assert dvh.min_gy <= vertex_doses.min()
    assert dvh.max_gy >= vertex_doses.max()
    assert 10.3 - 4.0 < dvh.min_gy < dvh.mean_gy < dvh.max_gy < 10.3 + 4.0


def test_structures_sampled_by_whole_voxels_match_the_analytic_volume(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Too many sub-samples: one sample per voxel (the pixel-centre rule, a binary mask)."""
    monkeypatch.setattr("rtmask.dvh._compute.MAX_SUBSAMPLES", 1)
    radius, planes = 12.0, [-6.0, -3.0, 0.0, 3.0, 6.0]
    roi = _cylinder_roi(radius, (0.3, -0.2), planes)
    grid = ImageGrid.from_explicit(
        origin_mm=(-20.0, -20.0, -8.0), spacing_mm=(1.0, 0.5, 0.5), shape=(17, 81, 81)
    )
    index = np.stack(np.meshgrid(*[np.arange(k) for k in grid.shape], indexing="ij"), -1)
    points = grid.index_to_patient(index.reshape(-1, 3))
    dose = DoseGrid(dose_gy=(10.0 + points[:, 0]).reshape(grid.shape), grid=grid)
    dvh = compute_dvh(roi, dose, resolution_mm=0.25)  # fine: the pixel-centre rule is < 1 % off
    area = 0.5 * 128 * radius**2 * math.sin(2 * math.pi / 128)  # the 128-gon
    assert dvh.total_cm3 == pytest.approx(area * 15.0 / 1000.0, rel=0.01)
    assert dvh.mean_gy == pytest.approx(10.3, abs=0.05)
    assert dvh.statistic("D50") == pytest.approx(10.3, abs=0.1)
