"""Rasterisation against an independent truth: shapely point-in-polygon at voxel centres.

Voxel centres and contour vertices are placed in patient space from DICOM-style numbers
(origin, cosines, spacings) computed here by hand, never through the grid's own methods,
and the expected mask comes from shapely. Centres within 1e-6 mm of an edge are ignored.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable

import numpy as np
import pytest
import shapely
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import ORIENTATIONS
from rtmask import ImageGrid
from rtmask._errors import ContourWarning, InvalidInputError, OverlapWarning
from rtmask.raster import rasterize
from rtmask.raster._rasterize import rasterize_with_partial
from rtmask.rtstruct import ROI, Contour, GeometricType

# Awkward defaults: non-square, anisotropic, off-origin, uneven numbers.
ROWS, COLUMNS, SLICES = 47, 53, 11
PIXEL_MM = (0.7, 1.3)  # between rows, between columns
SLICE_MM = 2.5
ORIGIN = np.array([-123.4, 56.7, -300.2])


class Scene:
    """A series described by DICOM numbers, with an independent patient-space model."""

    def __init__(
        self,
        orientation: tuple[float, ...],
        *,
        reverse: bool = True,
        gaps: np.ndarray | None = None,
    ) -> None:
        self.row_dir = np.array(orientation[:3], float)
        self.col_dir = np.array(orientation[3:], float)
        self.normal = np.cross(self.row_dir, self.col_dir)
        offsets = (
            np.arange(SLICES) * SLICE_MM
            if gaps is None
            else np.concatenate([[0.0], np.cumsum(gaps)])
        )
        self.offsets = offsets
        positions = ORIGIN + np.outer(offsets, self.normal)
        # Files come in reverse order: the grid must sort them by geometry.
        given_positions = positions[::-1] if reverse else positions
        self.grid = ImageGrid.from_slices(
            positions_mm=given_positions,
            orientation=orientation,
            pixel_spacing_mm=PIXEL_MM,
            rows=ROWS,
            columns=COLUMNS,
        )

    def to_patient(self, slice_index: int, uv: np.ndarray) -> np.ndarray:
        """In-plane mm (u along rows' direction, v down the columns) -> LPS on a slice."""
        origin = ORIGIN + self.offsets[slice_index] * self.normal
        return origin + np.outer(uv[:, 0], self.row_dir) + np.outer(uv[:, 1], self.col_dir)

    def centres_uv(self) -> tuple[np.ndarray, np.ndarray]:
        """Voxel centre in-plane coordinates (mm), each ``(ROWS, COLUMNS)``."""
        rows, columns = np.mgrid[0:ROWS, 0:COLUMNS]
        return columns * PIXEL_MM[1], rows * PIXEL_MM[0]

    def expected(
        self, geometry_by_slice: dict[int, shapely.Geometry]
    ) -> tuple[np.ndarray, np.ndarray]:
        """Expected mask and the 'too close to an edge to judge' mask."""
        u, v = self.centres_uv()
        truth = np.zeros(self.grid.shape, bool)
        ambiguous = np.zeros(self.grid.shape, bool)
        for k, geometry in geometry_by_slice.items():
            truth[k] = shapely.contains_xy(geometry, u, v)
            ambiguous[k] = shapely.distance(geometry.boundary, shapely.points(u, v)) < 1e-6
        return truth, ambiguous


def circle(cx: float, cy: float, r: float, n: int = 48, start: float = 0.3) -> np.ndarray:
    angles = start + np.linspace(0, 2 * np.pi, n, endpoint=False)
    return np.column_stack([cx + r * np.cos(angles), cy + r * np.sin(angles)])


def rectangle(u0: float, v0: float, u1: float, v1: float) -> np.ndarray:
    return np.array([[u0, v0], [u1, v0], [u1, v1], [u0, v1]], float)


# A shape: per slice, list of (uv polygon, geometric type); expected geometry per slice.
ShapeBuilder = Callable[
    [], tuple[dict[int, list[tuple[np.ndarray, str]]], dict[int, shapely.Geometry]]
]
CENTRE = (COLUMNS * PIXEL_MM[1] / 2 + 0.17, ROWS * PIXEL_MM[0] / 2 - 0.23)


def _solid(radius_of_slice: Callable[[float], float]) -> ShapeBuilder:
    def build() -> tuple[dict, dict]:
        contours, truth = {}, {}
        for k in range(SLICES):
            r = radius_of_slice((k - SLICES / 2 + 0.5) * SLICE_MM)
            if r > 0.05:
                poly = circle(*CENTRE, r, n=64)
                contours[k] = [(poly, "CLOSED_PLANAR")]
                truth[k] = shapely.Polygon(poly)
        return contours, truth

    return build


def _planar(*rings: tuple[np.ndarray, str], combine: str = "xor") -> ShapeBuilder:
    def build() -> tuple[dict, dict]:
        geometry = shapely.Polygon(rings[0][0])
        for poly, _ in rings[1:]:
            other = shapely.Polygon(poly)
            geometry = (
                geometry.symmetric_difference(other) if combine == "xor" else geometry.union(other)
            )
        return {4: list(rings), 5: list(rings)}, {4: geometry, 5: geometry}

    return build


def _keyhole() -> ShapeBuilder:
    # One polygon: the outer ring, a zero-width cut to the inner ring, the inner ring
    # backwards, and the cut back (the closing edge).
    outer = circle(*CENTRE, 12.0, n=60)
    inner = circle(*CENTRE, 6.0, n=60)
    polygon = np.concatenate([outer, outer[:1], inner[:1], inner[:0:-1], inner[:1]])

    def build() -> tuple[dict, dict]:
        truth = shapely.Polygon(circle(*CENTRE, 12.0, n=60), [circle(*CENTRE, 6.0, n=60)])
        return {3: [(polygon, "CLOSED_PLANAR")]}, {3: truth}

    return build


SHAPES: dict[str, ShapeBuilder] = {
    "sphere": _solid(lambda z: np.sqrt(max(11.0**2 - z**2, 0.0))),
    "cylinder": _solid(lambda z: 9.3 if abs(z) <= 10 else 0.0),
    "cone": _solid(lambda z: max(0.0, 12.0 * (0.5 - z / 24.0)) if abs(z) <= 12 else 0.0),
    "sphere_3mm": _solid(lambda z: np.sqrt(max(1.5**2 - z**2, 0.0))),
    "annulus": _planar(
        (circle(*CENTRE, 13.0), "CLOSED_PLANAR"), (circle(*CENTRE, 7.0), "CLOSED_PLANAR")
    ),
    "island_in_hole": _planar(
        (circle(*CENTRE, 14.0), "CLOSED_PLANAR"),
        (circle(*CENTRE, 9.0), "CLOSED_PLANAR"),
        (circle(*CENTRE, 4.0), "CLOSED_PLANAR"),
    ),
    "two_islands": _planar(
        (circle(CENTRE[0] - 12, CENTRE[1], 6.0), "CLOSED_PLANAR"),
        (circle(CENTRE[0] + 12, CENTRE[1], 5.0), "CLOSED_PLANAR"),
    ),
    "xor_pair": _planar(
        (circle(CENTRE[0] - 4, CENTRE[1], 8.0), "CLOSEDPLANAR_XOR"),
        (circle(CENTRE[0] + 4, CENTRE[1], 8.0), "CLOSEDPLANAR_XOR"),
    ),
    "c_shape": _planar(
        (
            np.array(
                [[10, 5], [40, 5], [40, 12], [18, 12], [18, 18], [40, 18], [40, 24.4], [10, 24.4]],
                float,
            ),
            "CLOSED_PLANAR",
        )
    ),
    "keyhole": _keyhole(),
}


def _roi(
    contours: dict[int, list[tuple[np.ndarray, str]]], scene: Scene, plane_offset_mm: float = 0.0
) -> ROI:
    items = []
    for k, polys in contours.items():
        for uv, kind in polys:
            points = scene.to_patient(k, uv) + plane_offset_mm * scene.normal
            items.append(Contour(points_mm=points, geometric_type=GeometricType(kind)))
    return ROI(number=7, name="shape", contours=tuple(items))


def _assert_matches(mask: np.ndarray, truth: np.ndarray, ambiguous: np.ndarray) -> None:
    wrong = (mask != truth) & ~ambiguous
    assert truth.any()
    assert not wrong.any(), f"{wrong.sum()} wrong voxels of {truth.sum()}"


@pytest.mark.parametrize("orientation", sorted(ORIENTATIONS))
@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_shapes_match_shapely_in_every_orientation(shape: str, orientation: str) -> None:
    scene = Scene(ORIENTATIONS[orientation])
    contours, geometry = SHAPES[shape]()
    truth, ambiguous = scene.expected(geometry)
    # A few hundredths of a mm off the plane is within tolerance.
    mask = rasterize(_roi(contours, scene, plane_offset_mm=0.03), scene.grid)
    _assert_matches(mask.array, truth, ambiguous)
    assert mask.array.dtype == np.bool_
    assert mask.array.shape == (SLICES, ROWS, COLUMNS)
    # The counts the rasteriser hands over equal a plain count of the array.
    assert np.array_equal(mask.voxels_per_slice, mask.array.sum(axis=(1, 2)))


OVERLAP = (circle(CENTRE[0] - 5, CENTRE[1], 9.0), circle(CENTRE[0] + 5, CENTRE[1], 9.0))
NESTED = (circle(*CENTRE, 14.0), circle(*CENTRE, 9.0), circle(*CENTRE, 4.0))


@pytest.mark.parametrize(
    ("rule", "rings", "combine"),
    [
        ("auto", NESTED, "xor"),
        ("xor", NESTED, "xor"),
        ("union", NESTED, "union"),
        ("xor", OVERLAP, "xor"),
        ("union", OVERLAP, "union"),
    ],
)
def test_combination_rules(rule: str, rings: tuple[np.ndarray, ...], combine: str) -> None:
    scene = Scene(ORIENTATIONS["HFS"])
    contours, geometry = _planar(*[(r, "CLOSED_PLANAR") for r in rings], combine=combine)()
    truth, ambiguous = scene.expected(geometry)
    mask = rasterize(_roi(contours, scene), scene.grid, rule=rule)
    _assert_matches(mask.array, truth, ambiguous)


def test_auto_unites_overlapping_contours_and_warns() -> None:
    scene = Scene(ORIENTATIONS["HFS"])
    contours, geometry = _planar(*[(r, "CLOSED_PLANAR") for r in OVERLAP], combine="union")()
    truth, ambiguous = scene.expected(geometry)
    with pytest.warns(OverlapWarning, match=r"ROI 7 'shape': contours \d+ and \d+ overlap"):
        mask = rasterize(_roi(contours, scene), scene.grid)
    _assert_matches(mask.array, truth, ambiguous)
    assert any("overlap" in w for w in mask.warnings)


def test_xor_type_contours_are_xored_whatever_the_rule() -> None:
    scene = Scene(ORIENTATIONS["HFS"])
    contours, geometry = SHAPES["xor_pair"]()
    truth, ambiguous = scene.expected(geometry)
    for rule in ("auto", "union", "xor"):
        mask = rasterize(_roi(contours, scene), scene.grid, rule=rule)
        _assert_matches(mask.array, truth, ambiguous)


def test_half_open_edges_on_pixel_centres() -> None:
    grid = ImageGrid.from_explicit(origin_mm=(0, 0, 0), spacing_mm=(1, 1, 1), shape=(1, 8, 9))
    left = np.array([[2, 1, 0], [5, 1, 0], [5, 6, 0], [2, 6, 0]], float)  # x = column
    right = np.array([[5, 1, 0], [7, 1, 0], [7, 6, 0], [5, 6, 0]], float)
    a = rasterize(ROI(number=1, name="a", contours=(Contour(points_mm=left),)), grid).array
    b = rasterize(ROI(number=2, name="b", contours=(Contour(points_mm=right),)), grid).array
    # Centres on the left/top edges are inside, on the right/bottom edges outside.
    assert a[0, 1:6, 2:5].all()
    assert a.sum() == 5 * 3
    assert not (a & b).any()
    both = rasterize(
        ROI(
            number=3,
            name="ab",
            contours=(
                Contour(points_mm=np.array([[2, 1, 0], [7, 1, 0], [7, 6, 0], [2, 6, 0]], float)),
            ),
        ),
        grid,
    ).array
    assert np.array_equal(a | b, both)


def test_point_and_open_contours_are_never_filled() -> None:
    scene = Scene(ORIENTATIONS["HFS"])
    square = scene.to_patient(3, rectangle(10, 5, 30, 20))
    roi = ROI(
        number=1,
        name="open",
        contours=(
            Contour(points_mm=square, geometric_type=GeometricType.OPEN_PLANAR),
            Contour(points_mm=square[:1], geometric_type=GeometricType.POINT),
        ),
    )
    assert not roi.encloses_volume
    assert not rasterize(roi, scene.grid).array.any()


def test_off_plane_outside_and_tilted_contours_are_reported() -> None:
    scene = Scene(ORIENTATIONS["HFS"])
    square = rectangle(10, 5, 30, 20)
    between = scene.to_patient(3, square) + 1.0 * scene.normal
    outside = scene.to_patient(0, square) - 10.0 * scene.normal
    tilted = scene.to_patient(3, square)
    tilted[2] += 2.0 * scene.normal
    good = scene.to_patient(5, square)
    roi = ROI(
        number=4,
        name="Cord",
        contours=tuple(Contour(points_mm=p) for p in (between, outside, tilted, good)),
    )
    with pytest.warns(ContourWarning) as caught:
        mask = rasterize(roi, scene.grid)
    messages = [str(w.message) for w in caught]
    assert any("contour 1" in m and "between image planes" in m for m in messages)
    assert any("contour 2" in m and "outside the image volume" in m for m in messages)
    assert any("contour 3" in m and "not parallel" in m for m in messages)
    assert all(m.startswith("ROI 4 'Cord'") for m in messages)
    assert mask.array[5].any()
    assert not np.delete(mask.array, 5, axis=0).any()
    with pytest.raises(InvalidInputError, match="left out"):
        rasterize(roi, scene.grid, on_invalid="raise")


def test_contour_partly_beyond_the_image_is_clipped_and_reported() -> None:
    scene = Scene(ORIENTATIONS["HFS"])
    big = rectangle(-20, -20, 30, 10)
    roi = ROI(number=1, name="big", contours=(Contour(points_mm=scene.to_patient(2, big)),))
    with pytest.warns(ContourWarning, match="extend beyond the image"):
        mask = rasterize(roi, scene.grid)
    truth, ambiguous = scene.expected({2: shapely.Polygon(big)})
    _assert_matches(mask.array, truth, ambiguous)


def test_non_uniform_slices_follow_native_planes() -> None:
    gaps = np.array([2.5, 2.5, 5.0, 2.5, 1.25, 1.25, 2.5, 2.5, 2.5])  # a missing slice
    scene = Scene(ORIENTATIONS["HFS"], gaps=gaps)
    assert not scene.grid.is_uniform
    assert any("missing" in m for m in scene.grid.irregularities())
    contours, geometry = SHAPES["annulus"]()
    contours = dict.fromkeys(range(scene.grid.shape[0]), contours[4])
    truth, ambiguous = scene.expected(dict.fromkeys(contours, geometry[4]))
    mask = rasterize(_roi(contours, scene), scene.grid)
    _assert_matches(mask.array, truth, ambiguous)


def test_fractional_mask_measures_area() -> None:
    scene = Scene(ORIENTATIONS["oblique"])
    disc = circle(*CENTRE, 10.0, n=400)
    roi = ROI(number=1, name="disc", contours=(Contour(points_mm=scene.to_patient(4, disc)),))
    mask = rasterize(roi, scene.grid, fractional=8)
    assert mask.array.dtype == np.float32
    assert np.allclose(mask.voxels_per_slice, mask.array.sum(axis=(1, 2), dtype=np.float64))
    area_mm2 = float(mask.array[4].sum()) * PIXEL_MM[0] * PIXEL_MM[1]
    exact = shapely.Polygon(disc).area
    assert area_mm2 == pytest.approx(exact, rel=0.01)
    binary = rasterize(roi, scene.grid).array[4]
    assert np.all(mask.array[4][~binary] < 1)
    assert np.all(mask.array[4][binary] > 0)


def test_mask_volume_convention_voxel_count() -> None:
    scene = Scene(ORIENTATIONS["HFS"])
    contours, _ = SHAPES["cylinder"]()
    mask = rasterize(_roi(contours, scene), scene.grid)
    voxel_mm3 = PIXEL_MM[0] * PIXEL_MM[1] * SLICE_MM
    assert mask.volume_cm3 == pytest.approx(mask.array.sum() * voxel_mm3 / 1000)


@settings(max_examples=30, deadline=None)
@given(
    shift=st.tuples(st.integers(-5, 5), st.integers(-5, 5)),
    radius=st.floats(2.0, 9.0),
    start=st.floats(0.0, 6.28),
)
def test_translation_by_whole_pixels_shifts_the_mask(
    shift: tuple[int, int], radius: float, start: float
) -> None:
    scene = Scene(ORIENTATIONS["oblique"], reverse=False)
    disc = circle(*CENTRE, radius, n=23, start=start)
    moved = disc + np.array([shift[1] * PIXEL_MM[1], shift[0] * PIXEL_MM[0]])
    a = rasterize(
        ROI(number=1, name="a", contours=(Contour(points_mm=scene.to_patient(2, disc)),)),
        scene.grid,
    ).array[2]
    b = rasterize(
        ROI(number=1, name="b", contours=(Contour(points_mm=scene.to_patient(2, moved)),)),
        scene.grid,
    ).array[2]
    assert np.array_equal(np.roll(a, shift, axis=(0, 1)), b)


@settings(max_examples=30, deadline=None)
@given(
    gap=st.floats(0.01, 5.0),
    radius_a=st.floats(1.0, 8.0),
    radius_b=st.floats(1.0, 8.0),
)
def test_disjoint_polygons_add_up(gap: float, radius_a: float, radius_b: float) -> None:
    scene = Scene(ORIENTATIONS["HFS"])
    a_uv = circle(CENTRE[0] - radius_a - gap / 2, CENTRE[1], radius_a, n=31)
    b_uv = circle(CENTRE[0] + radius_b + gap / 2, CENTRE[1], radius_b, n=31)
    a, b = (
        rasterize(
            ROI(number=1, name="x", contours=(Contour(points_mm=scene.to_patient(1, p)),)),
            scene.grid,
        ).array
        for p in (a_uv, b_uv)
    )
    both = rasterize(
        ROI(
            number=1,
            name="ab",
            contours=(
                Contour(points_mm=scene.to_patient(1, a_uv)),
                Contour(points_mm=scene.to_patient(1, b_uv)),
            ),
        ),
        scene.grid,
    ).array
    assert not (a & b).any()
    assert np.array_equal(a | b, both)


CIRCLES = st.lists(
    st.tuples(st.floats(-12.0, 12.0), st.floats(-12.0, 12.0), st.floats(1.0, 14.0)),
    min_size=1,
    max_size=4,
)


def _discs_and_finer_grid(
    scene: Scene, circles: list[tuple[float, float, float]], samples: int
) -> tuple[ROI, ImageGrid]:
    """Discs on slice 3, and the grid whose pixel centres are the s x s voxel samples."""
    polygons = [circle(CENTRE[0] + du, CENTRE[1] + dv, r, n=29) for du, dv, r in circles]
    roi = ROI(
        number=1,
        name="discs",
        contours=tuple(Contour(points_mm=scene.to_patient(3, p)) for p in polygons),
    )
    half = (samples - 1) / (2 * samples)
    shift = half * (PIXEL_MM[1] * scene.row_dir + PIXEL_MM[0] * scene.col_dir)
    finer = ImageGrid.from_slices(
        positions_mm=ORIGIN - shift + np.outer(scene.offsets, scene.normal),
        orientation=(*scene.row_dir, *scene.col_dir),
        pixel_spacing_mm=(PIXEL_MM[0] / samples, PIXEL_MM[1] / samples),
        rows=ROWS * samples,
        columns=COLUMNS * samples,
    )
    return roi, finer


@settings(max_examples=25, deadline=None)
@given(samples=st.integers(2, 5), rule=st.sampled_from(["xor", "auto", "union"]), circles=CIRCLES)
def test_fractional_mask_counts_the_pixel_centres_of_a_finer_grid(
    samples: int, rule: str, circles: list[tuple[float, float, float]]
) -> None:
    # The s x s samples of a voxel are the pixel centres of a grid s times finer, so the
    # covered fraction times s * s is the binary mask of that grid summed over s x s blocks.
    scene = Scene(ORIENTATIONS["oblique"], reverse=False)
    roi, finer = _discs_and_finer_grid(scene, circles, samples)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fraction = rasterize(roi, scene.grid, fractional=samples, rule=rule).array[3]
        fine = rasterize(roi, finer, rule=rule).array[3]
    blocks = fine.reshape(ROWS, samples, COLUMNS, samples).sum(axis=(1, 3))
    assert np.array_equal(np.rint(fraction * samples**2), blocks)


@settings(max_examples=20, deadline=None)
@given(samples=st.integers(2, 5), rule=st.sampled_from(["xor", "auto"]), circles=CIRCLES)
def test_partial_voxel_moments_are_those_of_a_finer_grid(
    samples: int, rule: str, circles: list[tuple[float, float, float]]
) -> None:
    # The centroid and (co)variances of the covered part of each partly covered voxel,
    # from the pixel centres of a grid s times finer inside that voxel.
    scene = Scene(ORIENTATIONS["HFS"], reverse=False)
    roi, finer = _discs_and_finer_grid(scene, circles, samples)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mask, partial = rasterize_with_partial(roi, scene.grid, fractional=samples, rule=rule)
        fine = rasterize(roi, finer, rule=rule).array[3]
    blocks = fine.reshape(ROWS, samples, COLUMNS, samples).transpose(0, 2, 1, 3)
    count = blocks.sum(axis=(2, 3))
    expected_partial = np.flatnonzero((count > 0) & (count < samples**2))
    found, moments = partial.by_slice.get(3, (np.empty(0, dtype=np.intp), np.empty((5, 0))))
    assert np.array_equal(found, expected_partial)
    # Sub-sample centres in voxel units from the voxel centre.
    offsets = (np.arange(samples) + 0.5) / samples - 0.5
    q, o = np.meshgrid(offsets, offsets, indexing="ij")
    own = 1 / (12 * samples**2)  # each sub-sample's own square
    for index, values in zip(found, moments.T, strict=True):
        inside = blocks.reshape(-1, samples, samples)[index]
        rows, columns = q[inside], o[inside]
        expected = [
            rows.mean(),
            columns.mean(),
            rows.var() + own,
            columns.var() + own,
            np.mean((rows - rows.mean()) * (columns - columns.mean())),
        ]
        assert np.allclose(values, expected, atol=1e-5)
    assert mask.array[3].reshape(-1)[found].max(initial=0) < 1
