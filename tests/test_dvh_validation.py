"""Validation of compute_dvh against analytic and independent references (issue 3, section 6).

- The same sphere in the same linear gradient in seven grid orientations (HFS, HFP, FFS,
  FFP, sagittal, coronal, oblique): every orientation agrees with the closed-form
  spherical-cap DVH and with the others.
- A cone along a linear gradient: the exact DVH of its prism stack (analytic section
  areas, half-slice end caps).
- A Gaussian dose field: the mean over a sphere against a seeded Monte Carlo integral over
  the analytic sphere (tests the dose interpolation).
- Coarse contours (2 and 3 mm): against an independent prism model of the same contour
  stack (shapely areas and centroids, a fine point lattice tested with shapely).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np
import pytest
import shapely
from numpy.typing import NDArray

from conftest import orientations, rotated
from rtmask.dose import DoseGrid
from rtmask.dvh import DVH, compute_dvh
from rtmask.geometry import ImageGrid
from rtmask.rtstruct import ROI, Contour
from rtmask.synthetic import cone_contours, sphere_contours, to_uv

FloatArray = NDArray[np.float64]

CENTRE = np.array([3.3, -7.1, 12.4])  # structure centre, off every grid origin
R = 12.0
N_VERTICES = 256
#: Unit direction of the 1 Gy/mm gradient (LPS), oblique to every grid here.
GRADIENT = np.array([0.48, -0.6, 0.64])


ORIENTATIONS = {
    **orientations("HFS", "HFP", "FFS", "FFP", "sagittal", "coronal"),
    "oblique": rotated(math.radians(20.0), math.radians(-35.0), math.radians(50.0)),
}


def _grid_around(
    orientation: Sequence[float],
    spacing_mm: Sequence[float],
    half_extent_mm: float,
    *,
    shift_mm: float = 0.37,
) -> ImageGrid:
    """A grid of the given orientation covering a cube of ``half_extent_mm`` about CENTRE."""
    shape = [round(2 * half_extent_mm / s) + 1 for s in spacing_mm]
    probe = ImageGrid.from_explicit(
        origin_mm=(0.0, 0.0, 0.0), spacing_mm=spacing_mm, shape=shape, orientation=orientation
    )
    directions = (probe.normal, probe.column_direction, probe.row_direction)
    origin = CENTRE.copy()
    for direction, step, n in zip(directions, spacing_mm, shape, strict=True):
        origin -= np.asarray(direction) * ((n - 1) / 2 * step - shift_mm)
    return ImageGrid.from_explicit(
        origin_mm=origin.tolist(), spacing_mm=spacing_mm, shape=shape, orientation=orientation
    )


def _dose_on(grid: ImageGrid, dose_of: Callable[[FloatArray], FloatArray]) -> DoseGrid:
    index = np.stack(np.meshgrid(*[np.arange(k) for k in grid.shape], indexing="ij"), -1)
    points = grid.index_to_patient(index.reshape(-1, 3))
    return DoseGrid(dose_gy=dose_of(points).reshape(grid.shape), grid=grid)


def _linear(points: FloatArray) -> FloatArray:
    """16 Gy at CENTRE, 1 Gy/mm along GRADIENT."""
    return np.asarray(16.0 + (points - CENTRE) @ GRADIENT)


def _roi(contours: list[FloatArray], name: str = "Shape") -> ROI:
    return ROI(number=1, name=name, contours=tuple(Contour(points_mm=c) for c in contours))


def _ngon_factor(n: int = N_VERTICES) -> float:
    """Area of the regular n-gon over the area of its circumscribed circle."""
    return n / (2 * math.pi) * math.sin(2 * math.pi / n)


def _inverse(volume_of: Callable[[float], float], volume_cm3: float) -> float:
    """Dose (Gy) where the decreasing V(D) equals ``volume_cm3`` (bisection)."""
    low, high = 0.0, 80.0
    for _ in range(80):
        middle = (low + high) / 2
        low, high = (middle, high) if volume_of(middle) >= volume_cm3 else (low, middle)
    return (low + high) / 2


def _sphere_volume_of(dose: float) -> float:
    """Exact volume (cm3) of the sphere at >= ``dose`` in the linear field (spherical cap)."""
    h = R - min(max(dose - 16.0, -R), R)
    return math.pi * h * h * (3 * R - h) / 3 / 1000.0


def _summary(dvh: DVH) -> dict[str, float]:
    return {
        "volume": dvh.total_cm3,
        "mean": dvh.mean_gy,
        "D95": dvh.dose_at_percent(95.0),
        "D5": dvh.dose_at_percent(5.0),
    }


@pytest.fixture(scope="module")
def sphere_by_orientation() -> dict[str, dict[str, float]]:
    results = {}
    for name, orientation in ORIENTATIONS.items():
        contour_grid = _grid_around(orientation, (0.5, 1.0, 1.0), R + 2, shift_mm=0.13)
        contours = sphere_contours(contour_grid, CENTRE, R, n=N_VERTICES)
        dose = _dose_on(_grid_around(orientation, (2.0, 2.0, 2.0), R + 4), _linear)
        results[name] = _summary(compute_dvh(_roi(contours, "Sphere"), dose))
    return results


@pytest.mark.parametrize("name", list(ORIENTATIONS))
def test_sphere_in_every_orientation_matches_analytic(
    sphere_by_orientation: dict[str, dict[str, float]], name: str
) -> None:
    total = _sphere_volume_of(0.0)
    expected = {
        "volume": total,
        "mean": 16.0,
        "D95": _inverse(_sphere_volume_of, 0.95 * total),
        "D5": _inverse(_sphere_volume_of, 0.05 * total),
    }
    assert sphere_by_orientation[name] == pytest.approx(expected, rel=0.01)


def test_sphere_orientations_agree_with_each_other(
    sphere_by_orientation: dict[str, dict[str, float]],
) -> None:
    reference = sphere_by_orientation["HFS"]
    for name, values in sphere_by_orientation.items():
        assert values == pytest.approx(reference, rel=0.01), name


def test_cone_along_gradient_matches_its_prism_stack() -> None:
    gap, height = 0.2, 24.0
    orientation = ORIENTATIONS["HFS"]
    contour_grid = _grid_around(orientation, (gap, 1.0, 1.0), height / 2 + 1, shift_mm=0.05)
    normal = contour_grid.normal
    apex = CENTRE - normal * height / 2  # the cone's mid-height is at CENTRE

    def dose_of(points: FloatArray) -> FloatArray:
        return np.asarray(16.0 + (points - CENTRE) @ normal)  # 1 Gy/mm along the axis

    contours = cone_contours(contour_grid, apex, R, height, n=N_VERTICES)
    dose = _dose_on(_grid_around(orientation, (2.0, 2.0, 2.0), height / 2 + 4), dose_of)
    dvh = compute_dvh(_roi(contours, "Cone"), dose)

    # Prism stack: plane k at distance t_k from the apex, section area A(t_k), slab half-way
    # to the neighbouring planes and half a gap beyond the end planes.
    along = np.array([float((c - apex).mean(axis=0) @ normal) for c in contours])
    areas = math.pi * (R * along / height) ** 2 * _ngon_factor()
    lower = along - gap / 2
    upper = along + gap / 2

    def volume_of(dose_gy: float) -> float:
        t = dose_gy - 16.0 + height / 2  # distance from the apex where the dose is dose_gy
        return float((areas * np.clip(upper - np.maximum(lower, t), 0.0, None)).sum()) / 1000

    total = volume_of(-100.0)
    mean = 16.0 + float((areas * gap * (along - height / 2)).sum()) / (total * 1000)
    assert total == pytest.approx(math.pi * R * R * height / 3 / 1000, rel=0.01)
    assert dvh.total_cm3 == pytest.approx(total, rel=0.01)
    assert dvh.mean_gy == pytest.approx(mean, rel=0.01)
    assert dvh.max_gy == pytest.approx(16.0 + float(upper[-1]) - height / 2, rel=0.01)
    for percent in (99.0, 95.0, 50.0, 5.0, 1.0):
        expected = _inverse(volume_of, total * percent / 100)
        assert dvh.dose_at_percent(percent) == pytest.approx(expected, rel=0.01), percent


def test_gaussian_mean_over_sphere_matches_monte_carlo() -> None:
    peak = CENTRE + np.array([8.0, -5.0, 4.0])
    sigma = 15.0

    def gaussian(points: FloatArray) -> FloatArray:
        squared = ((points - peak) ** 2).sum(axis=1)
        return np.asarray(60.0 * np.exp(-squared / (2 * sigma * sigma)))

    orientation = ORIENTATIONS["oblique"]
    contour_grid = _grid_around(orientation, (1.0, 1.0, 1.0), R + 2, shift_mm=0.21)
    contours = sphere_contours(contour_grid, CENTRE, R, n=N_VERTICES)
    dose = _dose_on(_grid_around(orientation, (3.0, 3.0, 3.0), R + 6), gaussian)
    dvh = compute_dvh(_roi(contours, "Sphere"), dose)

    rng = np.random.default_rng(20150815)
    cube = rng.uniform(-R, R, size=(400_000, 3))
    inside = cube[(cube**2).sum(axis=1) <= R * R][:200_000]
    assert inside.shape[0] == 200_000
    values = gaussian(CENTRE + inside)
    assert dvh.mean_gy == pytest.approx(float(values.mean()), rel=0.01)
    # Dmin is left out: the half-slice end caps reach beyond the analytic sphere.
    assert dvh.max_gy == pytest.approx(float(values.max()), rel=0.01)


def _prism_model(
    contours: list[FloatArray], grid: ImageGrid, gap: float, step_mm: float, layers: int
) -> tuple[float, float, FloatArray, FloatArray]:
    """Independent DVH of a prism stack in the linear field: volume (cm3), mean (Gy), doses.

    Volume and mean are exact (shapely areas; a linear dose averages to its value at a
    prism's centroid); the dose samples lie on a lattice of ``step_mm`` in-plane and
    ``layers`` midpoints across each slab, each weighted by its share of the slab's volume.
    """
    positions = grid.slice_positions_mm
    volume = 0.0
    dose_sum = 0.0
    doses = []
    weights = []
    for contour in contours:
        along = float(contour.mean(axis=0) @ grid.normal)
        k = int(np.argmin(np.abs(positions - along)))
        uv = to_uv(grid, k, contour)
        polygon = shapely.Polygon(uv)
        origin = grid.slice_origins_mm()[k]

        def to_lps(
            u: FloatArray, v: FloatArray, w: FloatArray, origin: FloatArray = origin
        ) -> FloatArray:
            return np.asarray(
                origin
                + np.outer(u, grid.row_direction)
                + np.outer(v, grid.column_direction)
                + np.outer(w, grid.normal)
            )

        slab_volume = polygon.area * gap
        volume += slab_volume
        centroid = polygon.centroid
        dose_sum += slab_volume * float(
            _linear(to_lps(np.array([centroid.x]), np.array([centroid.y]), np.zeros(1)))[0]
        )
        u_min, v_min, u_max, v_max = polygon.bounds
        u = np.arange(u_min + step_mm / 2, u_max, step_mm)
        v = np.arange(v_min + step_mm / 2, v_max, step_mm)
        uu, vv = (a.ravel() for a in np.meshgrid(u, v, indexing="ij"))
        keep = shapely.contains_xy(polygon, uu, vv)
        uu, vv = uu[keep], vv[keep]
        w = (np.arange(layers) + 0.5) / layers * gap - gap / 2
        in_plane = _linear(to_lps(uu, vv, np.zeros(uu.size)))
        slab_doses = (in_plane[:, None] + w[None, :] * float(grid.normal @ GRADIENT)).ravel()
        doses.append(slab_doses)
        weights.append(np.full(slab_doses.size, slab_volume / slab_doses.size))
    return (
        volume / 1000,
        dose_sum / volume,
        np.concatenate(doses),
        np.concatenate(weights) / 1000,
    )


def _dose_at_percent(doses: FloatArray, weights: FloatArray, percent: float) -> float:
    """Dose (Gy) that ``percent`` % of the weighted samples receive or exceed."""
    order = np.argsort(doses)[::-1]
    above = np.cumsum(weights[order])
    target = weights.sum() * percent / 100
    return float(doses[order][np.searchsorted(above, target)])


@pytest.mark.parametrize(("gap", "orientation"), [(2.0, "HFS"), (3.0, "oblique"), (3.0, "FFP")])
def test_coarse_contours_match_the_prism_model(gap: float, orientation: str) -> None:
    contour_grid = _grid_around(ORIENTATIONS[orientation], (gap, 1.0, 1.0), R + 4, shift_mm=0.7)
    contours = sphere_contours(contour_grid, CENTRE, R, n=N_VERTICES)
    dose = _dose_on(_grid_around(ORIENTATIONS[orientation], (2.0, 2.0, 2.0), R + 6), _linear)
    dvh = compute_dvh(_roi(contours, "Sphere"), dose)
    volume, mean, doses, weights = _prism_model(contours, contour_grid, gap, 0.1, 12)
    assert dvh.total_cm3 == pytest.approx(volume, rel=0.01)
    assert dvh.mean_gy == pytest.approx(mean, rel=0.01)
    for percent in (95.0, 5.0):
        expected = _dose_at_percent(doses, weights, percent)
        assert dvh.dose_at_percent(percent) == pytest.approx(expected, rel=0.01), percent
