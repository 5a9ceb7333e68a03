"""Shapes whose axis lies in the image plane: issue 15 defect 6.

A cylinder and a cone (radius 12 mm, length 24 mm) with their axis along x, so that the
axial contours are rectangles and hyperbola-bounded sections, in a linear dose of 1 Gy/mm
(16 Gy at the centre) along the axis (``u``), across it in-plane (``v``) and across it
along the plane normal (``normal``). References: :class:`rtmask.synthetic.SectionStack`,
the exact solid of the contour stack with half-slice end caps (area beyond a half-plane
cut by polygon clipping; never looks at the DVH engine). Before the fix the cylinder's D99
came out 1.08 % high along the axis with every dose grid (sub-sampled coverage put the
edge across the gradient 0.05 mm off on every plane); now every value is within 0.5 %.
"""

from __future__ import annotations

import functools
import math

import numpy as np
import pytest
import shapely.geometry

from rtmask.dose import DoseGrid
from rtmask.dvh import DVH, compute_dvh
from rtmask.dvh._coverage import polygon_moments
from rtmask.geometry import ImageGrid
from rtmask.rtstruct import ROI, Contour
from rtmask.synthetic import SectionStack, SlabStack

CENTRE = np.array([3.3, -7.1, 12.4])  # off every grid origin
R = 12.0
LENGTH = 24.0
TOLERANCE = 0.005
QUANTITIES = (
    "volume_cm3", "mean_gy", "min_gy", "max_gy", "D99", "D95", "D50", "D5", "D2", "D1",
    "D0.03cc", "V_low", "V_high",
)  # fmt: skip
AXES = {"u": 0, "v": 1, "normal": 2}


@functools.cache
def _stack(shape: str, gap: float) -> SectionStack:
    """Planes symmetric about the axis, none at the rim (the caps end there exactly)."""
    planes = np.round(np.arange(-R + gap / 2, R, gap), 9)
    if shape == "cylinder":
        return SectionStack.lying_cylinder(R, LENGTH, planes)
    return SectionStack.lying_cone(R, LENGTH, planes)


def _roi(stack: SectionStack) -> ROI:
    middles = (stack.lower_mm + stack.upper_mm) / 2
    contours = tuple(
        Contour(
            points_mm=np.column_stack(
                [
                    CENTRE[0] + section[:, 0],
                    CENTRE[1] + section[:, 1],
                    np.full(len(section), CENTRE[2] + z),
                ]
            )
        )
        for z, section in zip(middles, stack.sections, strict=True)
    )
    return ROI(number=1, name="lying", contours=contours)


@functools.cache
def _dose(spacing: float, axis: int, shift: float) -> DoseGrid:
    """D = 16 Gy + 1 Gy/mm x (coordinate ``axis`` - centre) on a 64 mm cube."""
    n = round(64 / spacing) + 1
    origin = CENTRE - (n - 1) // 2 * spacing + shift * spacing
    grid = ImageGrid.from_explicit(
        origin_mm=origin.tolist(), spacing_mm=(spacing,) * 3, shape=(n, n, n)
    )
    index = np.stack(np.meshgrid(*[np.arange(n)] * 3, indexing="ij"), -1)
    points = grid.index_to_patient(index.reshape(-1, 3))
    return DoseGrid(dose_gy=(16.0 + points[:, axis] - CENTRE[axis]).reshape(n, n, n), grid=grid)


@functools.cache
def _reference(shape: str, gap: float, direction: str) -> dict[str, float]:
    return _stack(shape, gap).reference_values(direction=direction)


def _values(dvh: DVH, reference: dict[str, float]) -> dict[str, float]:
    found = {
        "volume_cm3": dvh.total_cm3,
        "mean_gy": dvh.mean_gy,
        "min_gy": dvh.min_gy,
        "max_gy": dvh.max_gy,
    }
    found.update({name: dvh.statistic(name) for name in QUANTITIES[4:11]})
    low, high = reference["min_gy"], reference["max_gy"]
    found["V_low"] = dvh.volume_at_dose(low + 0.25 * (high - low))
    found["V_high"] = dvh.volume_at_dose(low + 0.75 * (high - low))
    return found


def _check(shape: str, gap: float, direction: str, spacing: float, shift: float) -> None:
    dvh = compute_dvh(_roi(_stack(shape, gap)), _dose(spacing, AXES[direction], shift))
    expected = _reference(shape, gap, direction)
    found = _values(dvh, expected)
    deviations = {q: found[q] / expected[q] - 1.0 for q in QUANTITIES}
    worst = max(deviations, key=lambda q: abs(deviations[q]))
    assert abs(deviations[worst]) <= TOLERANCE, (worst, found[worst], expected[worst])


@pytest.mark.parametrize("shift", [0.0, 0.5])
@pytest.mark.parametrize("spacing", [1.0, 2.0, 3.0])
@pytest.mark.parametrize("direction", list(AXES))
@pytest.mark.parametrize("shape", ["cylinder", "cone"])
def test_fine_contours_every_value_within_half_a_percent(
    shape: str, direction: str, spacing: float, shift: float
) -> None:
    _check(shape, 0.2, direction, spacing, shift)


@pytest.mark.parametrize("gap", [1.0, 2.0, 3.0])
@pytest.mark.parametrize("direction", list(AXES))
@pytest.mark.parametrize("shape", ["cylinder", "cone"])
def test_coarse_contours_every_value_within_half_a_percent(
    shape: str, direction: str, gap: float
) -> None:
    _check(shape, gap, direction, 2.0, 0.5)


def test_section_stack_against_textbook_formulas() -> None:
    """The lying cylinder converges on pi R^2 L; its DVHs on the standing one's."""
    planes = np.arange(-R + 0.002, R, 0.004)
    cylinder = SectionStack.lying_cylinder(R, LENGTH, planes)
    assert cylinder.volume_cm3 == pytest.approx(math.pi * R * R * LENGTH / 1000, rel=1e-6)
    standing = SlabStack.of_solid(lambda t: np.full_like(t, R), -LENGTH / 2, LENGTH / 2)
    for dose in (6.0, 16.0, 25.0):
        along = cylinder.volume_at_least(dose, direction="u")
        assert along == pytest.approx(standing.volume_at_least(dose, along=True), rel=1e-6)
        for direction in ("v", "normal"):
            across = cylinder.volume_at_least(dose, direction=direction)
            expected = standing.volume_at_least(dose, along=False)
            assert across == pytest.approx(expected, rel=1e-5)
    assert cylinder.mean_dose(direction="u") == pytest.approx(16.0)
    assert cylinder.dose_range(direction="normal") == pytest.approx((4.0, 28.0), abs=1e-3)
    cone = SectionStack.lying_cone(R, LENGTH, planes[::10], points=257)
    assert cone.volume_cm3 == pytest.approx(math.pi * R * R * LENGTH / 3 / 1000, rel=1e-4)
    # The centroid of a cone lies a quarter of the way from the base to the apex.
    assert cone.mean_dose(direction="u") == pytest.approx(16.0 - LENGTH / 2 + LENGTH / 4, rel=1e-4)
    with pytest.raises(ValueError, match="one section per plane"):
        SectionStack.of_contours([0.0], (np.zeros((3, 2)),))


def test_section_stack_clipping_against_shapely() -> None:
    """The area beyond a cut, for a star-shaped section in both orientations."""
    rng = np.random.default_rng(3)
    angles = np.sort(rng.uniform(0, 2 * np.pi, 30))
    radii = rng.uniform(2, 6, 30)
    star = np.column_stack([radii * np.cos(angles), radii * np.sin(angles)])
    stack = SectionStack.of_contours([0.0, 1.0], (star, star[::-1].copy()))
    outline = shapely.geometry.Polygon(star)
    for t in np.linspace(-7, 7, 29):
        for direction, box in (
            ("u", shapely.geometry.box(t, -99, 99, 99)),
            ("v", shapely.geometry.box(-99, t, 99, 99)),
        ):
            expected = 2 * outline.intersection(box).area / 1000  # two 1 mm slabs
            found = stack.volume_at_least(16.0 + t, direction=direction)
            assert found == pytest.approx(expected, abs=1e-12)


def test_polygon_moments_against_shapely() -> None:
    """Area and centroid of every crossed voxel, a star and its mirror image."""
    rng = np.random.default_rng(7)
    angles = np.sort(rng.uniform(0, 2 * np.pi, 40))
    radii = rng.uniform(2, 6, 40)
    star = np.column_stack([8 + radii * np.sin(angles), 9 + radii * np.cos(angles)])
    polygons = [star, star[::-1].copy()]
    cells, moments, valid, sizes = polygon_moments(polygons, (20, 20))
    assert valid.tolist() == [True, True]
    outline = shapely.geometry.Polygon(star[:, ::-1] + 0.5)  # (x, y) = (column, row) + 0.5
    assert sizes[0] == pytest.approx([outline.area] * 2)
    assert sizes[1] == pytest.approx([outline.length] * 2)
    for cell, values in zip(cells.tolist(), moments.T, strict=True):
        row, column = divmod(cell % 400, 20)
        part = outline.intersection(shapely.geometry.box(column, row, column + 1, row + 1))
        assert values[0] == pytest.approx(part.area, abs=1e-12)
        if part.area > 1e-9:
            assert values[1] / values[0] == pytest.approx(part.centroid.x - column, abs=1e-9)
            assert values[2] / values[0] == pytest.approx(part.centroid.y - row, abs=1e-9)
    # A whole voxel: area 1, moments of the unit square.
    square = np.array([[0.0, 0.0], [0.0, 3.0], [3.0, 3.0], [3.0, 0.0]])  # rows 0.5 .. 3.5
    cells, moments, _, _ = polygon_moments([square], (5, 5))
    assert 2 * 5 + 2 not in cells.tolist()  # no outline crosses the middle voxel
    corner = moments[:, cells.tolist().index(0)]  # voxel [0, 0]: x and y from 0.5 to 1
    expected = [0.25, 0.1875, 0.1875, 7 / 48, 7 / 48, 0.140625]
    assert corner == pytest.approx(expected)


def test_polygon_moments_refuse_what_they_cannot_measure() -> None:
    """Bow-ties (symmetric or not), a polygon leaving the plane, two vertices."""
    bow_tie = np.array([[1.0, 1.0], [1.0, 4.0], [4.0, 1.0], [4.0, 4.0]])
    lopsided = np.array([[1.0, 1.0], [1.0, 5.0], [3.0, 2.0], [3.0, 4.0]])
    outside = np.array([[1.0, 1.0], [1.0, 9.0], [3.0, 9.0]])
    polygons = [bow_tie, lopsided, outside, bow_tie[:2], bow_tie[[0, 1, 3]]]
    _, _, valid, _ = polygon_moments(polygons, (7, 7))
    assert valid.tolist() == [False, False, False, False, True]


def test_a_bow_tie_contour_keeps_the_rasterisers_coverage() -> None:
    """A contour the exact coverage cannot measure: the sub-sampled one, all the same."""
    square = np.array([[0.0, 0.0], [6.0, 0.0], [6.0, 6.0], [0.0, 6.0]])
    tie = np.array([[0.0, 0.0], [6.0, 6.0], [6.0, 0.0], [0.0, 6.0]])
    contours = [
        Contour(points_mm=np.column_stack([CENTRE[:2] + shape, np.full(4, CENTRE[2] + z)]))
        for z, shape in ((0.0, square), (1.0, tie), (2.0, square))
    ]
    dose = _dose(2.0, 0, 0.0)
    dvh = compute_dvh(ROI(number=3, name="tie", contours=tuple(contours)), dose)
    # Squares of 36 mm2 and the tie's two triangles of 9 mm2 each (even-odd fill), each
    # plane on a 1 mm slab (the end planes' half-slice caps included).
    assert dvh.total_cm3 == pytest.approx((36 * 2 + 18) / 1000, rel=0.02)


def test_a_lone_bow_tie_plane_keeps_the_rasterisers_coverage() -> None:
    """No plane can be measured exactly: the sub-sampled coverage as it was."""
    tie = np.array([[0.0, 0.0], [6.0, 6.0], [6.0, 0.0], [0.0, 6.0]])
    contour = Contour(points_mm=np.column_stack([CENTRE[:2] + tie, np.full(4, CENTRE[2])]))
    dvh = compute_dvh(ROI(number=4, name="tie", contours=(contour,)), _dose(2.0, 0, 0.0))
    # Two triangles of 9 mm2 on a slab of the dose grid's 2 mm slice spacing.
    assert dvh.total_cm3 == pytest.approx(18 * 2.0 / 1000, rel=0.02)
