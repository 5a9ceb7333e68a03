"""Mask -> contour tracing, checked against independent truths.

- The rasteriser (``rtmask.raster``, independent code) must give every traced mask back
  voxel for voxel under the ``auto`` and ``xor`` rules, with and without keyholes.
- shapely's point-in-polygon (even-odd over a plane's contours) at voxel centres placed
  by hand from DICOM-style numbers must give the mask back too.
- scipy's connected-component labelling predicts how many contours there are.
- Vertices must be pixel corners: checked with patient -> index maps built here by hand.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import pytest
import shapely
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from scipy import ndimage

from conftest import ORIENTATIONS, unit
from rtmask._errors import GeometryError, InvalidInputError
from rtmask.export._trace import contours_from_mask
from rtmask.geometry import ImageGrid
from rtmask.raster import rasterize
from rtmask.rtstruct import ROI, Contour, GeometricType


@dataclass(frozen=True)
class Scene:
    """A grid described by DICOM numbers, with a hand-made patient -> index map."""

    grid: ImageGrid
    origin: np.ndarray  # LPS of voxel (0, 0, 0)
    row_dir: np.ndarray  # direction of increasing column index
    col_dir: np.ndarray  # direction of increasing row index
    normal: np.ndarray
    spacing: tuple[float, float, float]  # (between slices, rows, columns)
    offsets: np.ndarray  # slice positions along the normal, relative to the origin

    def to_index(self, points: np.ndarray) -> np.ndarray:
        """(N, 3) LPS -> (N, 3) (slice, row, column), by projection, not by the grid."""
        d = points - self.origin
        along = d @ self.normal
        slice_index = np.interp(along, self.offsets, np.arange(self.offsets.size))
        return np.column_stack(
            [slice_index, d @ self.col_dir / self.spacing[1], d @ self.row_dir / self.spacing[2]]
        )

    def centre(self, k: int, rows: np.ndarray, columns: np.ndarray) -> np.ndarray:
        """LPS of voxel centres of slice ``k``."""
        return (
            self.origin
            + self.offsets[k] * self.normal
            + np.outer(rows * self.spacing[1], self.col_dir)
            + np.outer(columns * self.spacing[2], self.row_dir)
        )


def make_scene(
    orientation: tuple[float, ...],
    shape: tuple[int, int, int],
    spacing: tuple[float, float, float],
    origin: tuple[float, float, float],
    gaps: list[float] | None = None,
) -> Scene:
    row_dir = unit(np.array(orientation[:3]))
    col_dir = unit(np.array(orientation[3:]))
    normal = np.cross(row_dir, col_dir)
    origin_array = np.array(origin, dtype=float)
    if gaps is None:
        offsets = np.arange(shape[0]) * spacing[0]
        grid = ImageGrid.from_explicit(
            origin_mm=origin, spacing_mm=spacing, shape=shape, orientation=orientation
        )
    else:
        offsets = np.concatenate([[0.0], np.cumsum(gaps)])
        grid = ImageGrid.from_slices(
            positions_mm=origin_array + np.outer(offsets, normal)[::-1],
            orientation=orientation,
            pixel_spacing_mm=spacing[1:],
            rows=shape[1],
            columns=shape[2],
        )
    return Scene(grid, origin_array, row_dir, col_dir, normal, spacing, offsets)


def touches_border(mask: np.ndarray) -> bool:
    return bool(
        mask[:, 0].any() or mask[:, -1].any() or mask[:, :, 0].any() or mask[:, :, -1].any()
    )


def rasterize_checked(
    contours: tuple[Contour, ...], grid: ImageGrid, rule: str, mask: np.ndarray
) -> np.ndarray:
    """Rasterise; fail on any warning (contours on the grid's outer edge included)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = rasterize(ROI(number=1, name="x", contours=contours), grid, rule=rule)
    assert [str(w.message) for w in caught] == [], f"border: {touches_border(mask)}"
    return np.asarray(result.array)


# ----------------------------------------------------------------------------- strategies
def _pattern(kind: str, shape: tuple[int, int, int], width: int, shift: int) -> np.ndarray:
    _, rows, columns = shape
    r, c = np.meshgrid(np.arange(rows), np.arange(columns), indexing="ij")
    if kind == "rings":  # concentric square rings: holes, islands in holes, ...
        depth = np.minimum(np.minimum(r, c), np.minimum(rows - 1 - r, columns - 1 - c))
        plane = ((depth + shift) // width) % 2 == 0
    elif kind == "checker":  # pixels touching only at corners
        plane = ((r // width + c // width + shift) % 2) == 0
    elif kind == "full":
        plane = np.ones((rows, columns), dtype=bool)
    elif kind == "annulus":
        cy, cx = (rows - 1) / 2 + shift / 3, (columns - 1) / 2
        radius = np.hypot(r - cy, c - cx)
        plane = (radius <= max(rows, columns) / 2.2) & (radius > width)
    else:
        plane = np.zeros((rows, columns), dtype=bool)
    return np.broadcast_to(plane, shape).copy()


@st.composite
def masks(draw: st.DrawFn) -> np.ndarray:
    shape = (draw(st.integers(1, 3)), draw(st.integers(1, 13)), draw(st.integers(1, 13)))
    kind = draw(st.sampled_from(["random", "rings", "checker", "full", "annulus"]))
    pattern = _pattern(kind, shape, draw(st.integers(1, 2)), draw(st.integers(0, 3)))
    noise = draw(arrays(np.bool_, shape))
    if kind == "random":
        return noise
    if draw(st.booleans()):
        pattern ^= noise & draw(arrays(np.bool_, shape))  # sparse flips
    return pattern


@st.composite
def scenes(draw: st.DrawFn, shape: tuple[int, int, int]) -> Scene:
    orientation = ORIENTATIONS[draw(st.sampled_from(sorted(ORIENTATIONS)))]
    spacing = (
        draw(st.floats(0.5, 5.0)),
        draw(st.floats(0.3, 3.0)),
        draw(st.floats(0.3, 3.0)),
    )
    x, y, z = (draw(st.floats(-600.0, 600.0)) for _ in range(3))
    gaps = None
    if shape[0] > 1 and draw(st.booleans()):
        gaps = [draw(st.floats(0.8, 4.0)) for _ in range(shape[0] - 1)]
    return make_scene(orientation, shape, spacing, (x, y, z), gaps)


@st.composite
def cases(draw: st.DrawFn) -> tuple[Scene, np.ndarray]:
    mask = draw(masks())
    return draw(scenes(mask.shape)), mask


# ----------------------------------------------------------------------------- properties
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cases())
def test_rasterising_the_contours_gives_the_mask_back(case: tuple[Scene, np.ndarray]) -> None:
    scene, mask = case
    for keyholes in (False, True):
        contours = contours_from_mask(mask, scene.grid, keyholes=keyholes)
        for rule in ("auto", "xor"):
            back = rasterize_checked(contours, scene.grid, rule, mask)
            assert np.array_equal(back, mask), (keyholes, rule)


@settings(max_examples=80, deadline=None)
@given(cases())
def test_vertices_are_pixel_corners_on_the_slice_plane(case: tuple[Scene, np.ndarray]) -> None:
    scene, mask = case
    uids = [f"1.2.3.{k}" for k in range(mask.shape[0])]
    for contour in contours_from_mask(mask, scene.grid, sop_instance_uids=uids):
        assert contour.geometric_type is GeometricType.CLOSED_PLANAR
        index = scene.to_index(contour.points_mm)
        k = round(float(index[0, 0]))
        np.testing.assert_allclose(index[:, 0], k, atol=1e-6)
        assert contour.referenced_sop_instance_uid == uids[k]
        np.testing.assert_allclose(index[:, 1:] % 1.0, 0.5, atol=1e-6)
        # Only corners: every vertex turns (consecutive edges are not parallel).
        edges = np.diff(np.vstack([index[:, 1:], index[:1, 1:]]), axis=0)
        turn = (
            edges[:, 0] * np.roll(edges, -1, axis=0)[:, 1]
            - edges[:, 1] * np.roll(edges, -1, axis=0)[:, 0]
        )
        assert np.all(np.abs(turn) > 1e-6)


@settings(max_examples=60, deadline=None)
@given(cases(), st.booleans())
def test_even_odd_of_the_contours_is_the_mask_shapely(
    case: tuple[Scene, np.ndarray], keyholes: bool
) -> None:
    scene, mask = case
    contours = contours_from_mask(mask, scene.grid, keyholes=keyholes)
    rows, columns = np.meshgrid(np.arange(mask.shape[1]), np.arange(mask.shape[2]), indexing="ij")
    expected_parity = np.zeros(mask.shape, dtype=int)
    for contour in contours:
        index = scene.to_index(contour.points_mm)
        k = round(float(index[0, 0]))
        polygon = shapely.Polygon(index[:, 1:])
        expected_parity[k] += shapely.contains_xy(polygon, rows, columns)
    assert np.array_equal(expected_parity % 2 == 1, mask)


@settings(max_examples=80, deadline=None)
@given(masks())
def test_contour_count_follows_connected_components(mask: np.ndarray) -> None:
    scene = make_scene(ORIENTATIONS["HFS"], mask.shape, (2.0, 1.0, 1.0), (0.0, 0.0, 0.0))
    cross = ndimage.generate_binary_structure(2, 1)  # 4-connected mask regions
    square = ndimage.generate_binary_structure(2, 2)  # 8-connected background
    regions = holes = 0
    for plane in mask:
        regions += ndimage.label(plane, structure=cross)[1]
        padded = np.pad(~plane, 1, constant_values=True)
        holes += ndimage.label(padded, structure=square)[1] - 1  # minus the outside
    assert len(contours_from_mask(mask, scene.grid)) == regions + holes
    assert len(contours_from_mask(mask, scene.grid, keyholes=True)) == regions


# ----------------------------------------------------------------------------- examples
@pytest.fixture
def scene() -> Scene:
    return make_scene(ORIENTATIONS["FFS"], (3, 9, 11), (2.5, 0.7, 1.3), (-123.4, 56.7, -300.2))


def _plane(shape: tuple[int, int, int], k: int, rows: list[str]) -> np.ndarray:
    mask = np.zeros(shape, dtype=bool)
    for r, text in enumerate(rows):
        for c, char in enumerate(text):
            mask[k, r, c] = char == "#"
    return mask


def test_empty_mask_gives_no_contours(scene: Scene) -> None:
    assert contours_from_mask(np.zeros(scene.grid.shape, dtype=bool), scene.grid) == ()


def test_single_pixel_is_a_square_of_its_corners(scene: Scene) -> None:
    mask = np.zeros(scene.grid.shape, dtype=bool)
    mask[1, 4, 6] = True
    (contour,) = contours_from_mask(mask, scene.grid)
    corners = {(r, c) for r in (3.5, 4.5) for c in (5.5, 6.5)}
    expected = {tuple(p) for p in scene.centre(1, *map(np.array, zip(*corners, strict=True)))}
    got = contour.points_mm
    assert contour.n_points == 4
    for point in expected:
        assert np.min(np.linalg.norm(got - np.array(point), axis=1)) < 1e-9


def test_rectangle_keeps_only_its_four_corners(scene: Scene) -> None:
    mask = np.zeros(scene.grid.shape, dtype=bool)
    mask[0, 2:7, 1:9] = True
    (contour,) = contours_from_mask(mask, scene.grid)
    index = scene.to_index(contour.points_mm)
    assert sorted(map(tuple, np.round(index[:, 1:], 9))) == [
        (1.5, 0.5),
        (1.5, 8.5),
        (6.5, 0.5),
        (6.5, 8.5),
    ]


def test_pixels_touching_at_a_corner_become_two_loops(scene: Scene) -> None:
    mask = _plane(scene.grid.shape, 0, ["#.", ".#"])
    contours = contours_from_mask(mask, scene.grid)
    assert [c.n_points for c in contours] == [4, 4]
    shared = {tuple(np.round(p, 9)) for p in contours[0].points_mm} & {
        tuple(np.round(p, 9)) for p in contours[1].points_mm
    }
    assert len(shared) == 1  # they touch at one corner, without crossing
    for rule in ("auto", "xor"):
        assert np.array_equal(rasterize_checked(contours, scene.grid, rule, mask), mask)


def test_hole_and_island_nest_and_keyholes_join_them(scene: Scene) -> None:
    rows = [
        "#########",
        "#.......#",
        "#.#####.#",
        "#.#...#.#",
        "#.#.#.#.#",
        "#.#...#.#",
        "#.#####.#",
        "#.......#",
        "#########",
    ]
    mask = _plane(scene.grid.shape, 2, rows)
    nested = contours_from_mask(mask, scene.grid)
    assert len(nested) == 5  # outer, hole, island, its hole, the inner island
    joined = contours_from_mask(mask, scene.grid, keyholes=True)
    assert len(joined) == 3
    pixel_mm2 = 0.7 * 1.3
    areas = [abs(shapely.Polygon(scene.to_index(c.points_mm)[:, 1:]).area) for c in joined]
    # Each keyhole polygon's area is exactly its region's pixels (the cuts have no width).
    assert sorted(areas) == pytest.approx([1.0, 16.0, 32.0])
    assert sum(areas) * pixel_mm2 == pytest.approx(np.count_nonzero(mask) * pixel_mm2)
    for contours in (nested, joined):
        for rule in ("auto", "xor"):
            assert np.array_equal(rasterize_checked(contours, scene.grid, rule, mask), mask)


def test_keyhole_cuts_to_several_holes_in_a_row(scene: Scene) -> None:
    mask = _plane(
        scene.grid.shape,
        1,
        ["###########", "#.#.#.#.#.#", "###.#######", "#.#.#.#...#", "###########"],
    )
    joined = contours_from_mask(mask, scene.grid, keyholes=True)
    assert len(joined) == 1
    for rule in ("auto", "xor"):
        assert np.array_equal(rasterize_checked(joined, scene.grid, rule, mask), mask)


def test_contours_reference_their_slice_images(scene: Scene) -> None:
    mask = np.zeros(scene.grid.shape, dtype=bool)
    mask[0, 1, 1] = mask[2, 3, 3] = True
    contours = contours_from_mask(mask, scene.grid, sop_instance_uids=["a", "b", "c"])
    assert [c.referenced_sop_instance_uid for c in contours] == ["a", "c"]
    assert [c.number for c in contours] == [1, 2]


def test_integer_masks_are_accepted(scene: Scene) -> None:
    mask = np.zeros(scene.grid.shape, dtype=np.uint8)
    mask[1, 2:4, 2:5] = 1
    assert len(contours_from_mask(mask, scene.grid)) == 1


def test_bad_input_is_refused(scene: Scene) -> None:
    with pytest.raises(InvalidInputError, match="binary"):
        contours_from_mask(np.zeros(scene.grid.shape, dtype=np.float32), scene.grid)
    with pytest.raises(GeometryError, match="shape"):
        contours_from_mask(np.zeros((1, 2, 3), dtype=bool), scene.grid)
    with pytest.raises(GeometryError, match="UIDs"):
        contours_from_mask(np.ones(scene.grid.shape, bool), scene.grid, sop_instance_uids=["a"])
    with pytest.raises(InvalidInputError, match="simplify_mm"):
        contours_from_mask(np.ones(scene.grid.shape, bool), scene.grid, simplify_mm=-1.0)


def test_non_uniform_slices_put_contours_on_their_planes() -> None:
    scene = make_scene(
        ORIENTATIONS["HFS"], (3, 6, 7), (2.0, 0.8, 0.9), (10.0, -20.0, 30.0), gaps=[1.0, 3.5]
    )
    mask = np.zeros(scene.grid.shape, dtype=bool)
    mask[:, 2:4, 3:6] = True
    contours = contours_from_mask(mask, scene.grid)
    heights = sorted(
        {
            round(float(c.points_mm[0] @ scene.normal - scene.origin @ scene.normal), 9)
            for c in contours
        }
    )
    assert heights == pytest.approx([0.0, 1.0, 4.5])
    assert np.array_equal(rasterize_checked(contours, scene.grid, "auto", mask), mask)


def _disc(shape: tuple[int, int, int], radius: float) -> np.ndarray:
    _, rows, columns = shape
    r, c = np.meshgrid(np.arange(rows), np.arange(columns), indexing="ij")
    plane = np.hypot(r - (rows - 1) / 2, c - (columns - 1) / 2) <= radius
    plane &= ~(np.hypot(r - (rows - 1) / 2, c - (columns - 1) / 2) <= radius / 3)
    return np.broadcast_to(plane, shape).copy()


@pytest.mark.parametrize("keyholes", [False, True])
def test_simplify_stays_within_its_tolerance(keyholes: bool) -> None:
    scene = make_scene(ORIENTATIONS["oblique"], (1, 61, 57), (2.0, 0.7, 0.9), (5.0, 6.0, 7.0))
    mask = _disc(scene.grid.shape, 25.0)
    exact = contours_from_mask(mask, scene.grid, keyholes=keyholes)
    simple = contours_from_mask(mask, scene.grid, keyholes=keyholes, simplify_mm=1.0)
    assert len(simple) == len(exact)
    assert sum(c.n_points for c in simple) < 0.5 * sum(c.n_points for c in exact)
    mm = np.array([0.7, 0.9])
    for before, after in zip(exact, simple, strict=True):
        a = shapely.LinearRing(scene.to_index(before.points_mm)[:, 1:] * mm)
        b = shapely.LinearRing(scene.to_index(after.points_mm)[:, 1:] * mm)
        assert shapely.hausdorff_distance(a, b) <= 1.0 + 1e-6
        assert np.all(np.abs(scene.to_index(after.points_mm)[:, 0]) < 1e-6)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # simplified loops may touch: not exact any more
        back = rasterize(ROI(number=1, name="x", contours=simple), scene.grid, rule="xor").array
    assert np.count_nonzero(back != mask) < 0.1 * np.count_nonzero(mask)
