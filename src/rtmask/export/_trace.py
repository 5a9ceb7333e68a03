"""Binary mask -> closed planar contours traced along voxel edges (an exact round trip).

Every contour runs along pixel edges: its vertices are pixel corners, at index
coordinates ``(row ± 0.5, column ± 0.5)`` on the slice's plane, so no voxel centre lies on
a contour, and rasterising the contours by the pixel-centre rule (:mod:`rtmask.raster`)
gives the mask back voxel for voxel, under the ``auto`` and the ``xor`` rule alike. Only
corners are kept (no collinear vertices).

How the boundary splits into loops: every boundary edge is directed with the mask on its
right (viewing the plane with rows going down and columns going right). At a vertex where
two mask pixels touch only at their corners, the loop turns toward the mask, so each outer
loop encloses one face-connected (4-connected) region, and loops meeting at such a corner
touch there without crossing. Holes are the loops running the other way round; an island
inside a hole is an outer loop again, so loops nest by depth parity.

How it is computed, without a Python loop per pixel: maximal runs of horizontal boundary
edges are read from pixel differences, block of planes by block; the corners the runs end
on are paired along each vertical grid line (each pair is a vertical run), which gives each
run its successor; pointer jumping labels the cycles of the successor array and ranks the
runs within them. Python loops once per contour only, to build the contour objects (and
per hole for keyhole cuts).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import shapely
from numpy.typing import NDArray

from rtmask._errors import GeometryError, InvalidInputError
from rtmask.geometry import ImageGrid
from rtmask.raster._box import bounding_box
from rtmask.rtstruct import Contour, GeometricType

__all__ = ["contours_from_mask"]

IntArray = NDArray[np.int64]
FloatArray = NDArray[np.float64]

#: Voxels of a block of planes traced in one pass (keeps temporaries small and reused).
_BLOCK_VOXELS = 1 << 22
#: Where a keyhole cut crosses its row of pixels: a quarter pixel below the row's top edge,
#: so that it runs through no pixel centre and along no pixel edge.
_CUT_OFFSET = 0.25


@dataclass(frozen=True, slots=True)
class _Runs:
    """Maximal runs of horizontal boundary edges, in padded vertex coordinates.

    Vertex ``(i, j)`` is the top-left corner of pixel ``(i - 1, j - 1)`` of the cropped
    array. ``sign`` is +1 for top edges of mask pixels (traversed left to right) and -1 for
    bottom edges (right to left). Runs are sorted by (plane, line, left).
    """

    plane: IntArray
    line: IntArray  # vertex row
    left: IntArray  # vertex column of the left end
    right: IntArray  # vertex column of the right end
    sign: IntArray

    @property
    def size(self) -> int:
        return int(self.plane.size)

    @property
    def start_column(self) -> IntArray:
        return np.where(self.sign > 0, self.left, self.right)

    @property
    def end_column(self) -> IntArray:
        return np.where(self.sign > 0, self.right, self.left)


def _block_runs(block: NDArray[np.bool_], plane_offset: int) -> list[IntArray]:
    """Horizontal runs of one block of planes ``(n, rows, columns)`` (see :class:`_Runs`)."""
    n, rows, columns = block.shape
    width = columns + 2
    padded = np.zeros((n, rows + 2, width), dtype=np.int8)
    padded[:, 1:-1, 1:-1] = block
    # step[k, i - 1, c] = padded pixel (i, c) - padded pixel (i - 1, c): +1 where vertex
    # row i holds a top edge of the mask, -1 a bottom edge.
    step = padded[:, 1:, :] - padded[:, :-1, :]
    changes = np.flatnonzero(step[:, :, 1:] != step[:, :, :-1])
    line, column = np.divmod(changes, width - 1)
    column += 1  # the vertex column where the step value changes
    value = step.reshape(-1)[line * width + column]
    run = np.flatnonzero(value[:-1] != 0)  # a run from change m to change m + 1
    plane, line_in_plane = np.divmod(line[run], rows + 1)
    return [
        plane + plane_offset,
        line_in_plane + 1,
        column[run],
        column[run + 1],
        value[run].astype(np.int64),
    ]


def _horizontal_runs(array: NDArray[np.bool_]) -> _Runs:
    """Runs of every plane of the cropped ``array``, computed block of planes by block."""
    n, rows, columns = array.shape
    per_block = max(1, _BLOCK_VOXELS // ((rows + 2) * (columns + 2)))
    parts = [_block_runs(array[k : k + per_block], k) for k in range(0, n, per_block)]
    return _Runs(*(np.concatenate([part[f] for part in parts]) for f in range(5)))


def _cycles(successor: IntArray) -> tuple[IntArray, IntArray]:
    """Label each run with its cycle's smallest run and rank it from there (pointer jumping).

    Returns ``(leader, position)``: ``position[leader] == 0`` and
    ``position[successor[r]] == position[r] + 1`` around each cycle.
    """
    n = successor.size
    index = np.arange(n, dtype=np.int64)
    leader = index.copy()
    jump = successor.copy()
    while True:  # after t rounds: the smallest run among the next 2**t
        smaller = np.minimum(leader, leader[jump])
        if np.array_equal(smaller, leader):
            break
        leader = smaller
        jump = jump[jump]
    is_leader = leader == index
    distance = (~is_leader).astype(np.int64)  # steps from r to jump[r] (the leader stops)
    jump = np.where(is_leader, index, successor)
    while not bool(is_leader[jump].all()):
        distance += distance[jump]
        jump = jump[jump]
    length = np.bincount(leader, minlength=n)[leader]
    return leader, (length - distance) % length


@dataclass(frozen=True, slots=True)
class _Loops:
    """Traced loops of a cropped block, vertices in padded vertex coordinates."""

    plane: IntArray  # (loops,) plane of each loop in the block
    bounds: IntArray  # (loops + 1,) vertex offsets of the loops
    rows: IntArray  # (vertices,) vertex rows
    columns: IntArray  # (vertices,) vertex columns
    loop_of_run: IntArray  # (runs,) loop of each run
    position: IntArray  # (runs,) rank of each run in its loop
    keys: IntArray  # sorted corner-record keys
    records: IntArray  # corner records in key order: r < runs ends run r, else starts r - runs
    shape: tuple[int, int]  # (rows, columns) of the cropped block

    @property
    def count(self) -> int:
        return int(self.plane.size)

    def vertices(self, loop: int) -> FloatArray:
        """``(m, 2)`` (row, column) vertex coordinates of one loop."""
        start, stop = int(self.bounds[loop]), int(self.bounds[loop + 1])
        return np.column_stack([self.rows[start:stop], self.columns[start:stop]]).astype(np.float64)

    def twice_signed_areas(self) -> IntArray:
        """Twice each loop's signed area: positive for outer loops, negative for holes."""
        following = np.arange(1, self.rows.size + 1)
        following[self.bounds[1:] - 1] = self.bounds[:-1]
        cross = self.columns * self.rows[following] - self.columns[following] * self.rows
        return np.asarray(np.add.reduceat(cross, self.bounds[:-1]))

    def record_key(self, plane: int, column: int, row: int, tie: int) -> int:
        """Sort key of a corner record (plane, vertical grid line, row, tie-break)."""
        height, width = self.shape[0] + 3, self.shape[1] + 3
        return ((plane * width + column) * height + row) * 2 + tie

    def vertical_run(self, plane: int, column: int, row: int) -> tuple[int, int]:
        """Locate the vertical run on grid ``column`` spanning vertex rows ``row`` to ``row + 1``.

        Returns its loop and the loop's vertex index after which it lies.
        """
        at = int(np.searchsorted(self.keys, self.record_key(plane, column, row + 1, 0)))
        runs = self.loop_of_run.size
        first, second = int(self.records[at - 1]), int(self.records[at])
        ending = first if first < runs else second
        return int(self.loop_of_run[ending]), 2 * int(self.position[ending]) + 1


def _trace(array: NDArray[np.bool_]) -> _Loops:
    """Trace every boundary loop of a cropped ``(planes, rows, columns)`` mask."""
    runs = _horizontal_runs(array)
    n = runs.size
    # Corner records: the end (r < n) and the start (r >= n) of every run. Sorted along
    # vertical grid lines, consecutive pairs are the vertical runs. Where two runs end (or
    # start) at one vertex, the bottom-edge run's record sorts first and pairs with the
    # vertical run above: the loops turn toward the mask there.
    plane = np.concatenate([runs.plane, runs.plane])
    line = np.concatenate([runs.line, runs.line])
    column = np.concatenate([runs.end_column, runs.start_column])
    tie = np.concatenate([runs.sign > 0, runs.sign > 0]).astype(np.int64)
    height, width = array.shape[1] + 3, array.shape[2] + 3
    keys = ((plane * width + column) * height + line) * 2 + tie
    records = np.argsort(keys, kind="stable")
    first, second = records[0::2], records[1::2]
    ending = np.where(first < n, first, second)
    successor = np.empty(n, dtype=np.int64)
    successor[ending] = np.where(first < n, second, first) - n

    leader, position = _cycles(successor)
    leaders = np.flatnonzero(leader == np.arange(n))
    loop_of_leader = np.empty(n, dtype=np.int64)
    loop_of_leader[leaders] = np.arange(leaders.size)
    loop_of_run = loop_of_leader[leader]
    lengths = np.bincount(loop_of_run, minlength=leaders.size)
    run_bounds = np.concatenate([[0], np.cumsum(lengths)])
    ordered = np.empty(n, dtype=np.int64)
    ordered[run_bounds[loop_of_run] + position] = np.arange(n)
    ends = np.column_stack([runs.start_column[ordered], runs.end_column[ordered]])
    return _Loops(
        plane=runs.plane[leaders],
        bounds=2 * run_bounds,
        rows=np.repeat(runs.line[ordered], 2),
        columns=ends.reshape(-1),
        loop_of_run=loop_of_run,
        position=position,
        keys=keys[records],
        records=records,
        shape=(array.shape[1], array.shape[2]),
    )


# --------------------------------------------------------------------------- keyholes
@dataclass(slots=True)
class _Ring:
    """One loop's vertices ``(m, 2)`` with the keyhole cut points inserted and pinned.

    ``pins`` maps a tag to a vertex index: ``-1`` for the loop's own cut point (holes),
    a hole's loop number for the point where that hole's cut meets this loop.
    """

    vertices: FloatArray
    pins: dict[int, int]


def _insert(vertices: FloatArray, points: list[tuple[int, float, float, int]]) -> _Ring:
    """Insert ``(after vertex, row, column, tag)`` points into a loop's vertices.

    Several points after one vertex go bottom to top (they lie on upward vertical runs).
    """
    if not points:
        return _Ring(vertices, {})
    points = sorted(points, key=lambda p: (p[0], -p[1]))
    after = np.array([p[0] for p in points], dtype=np.int64)
    where = after + 1
    coordinates = np.array([[p[1], p[2]] for p in points], dtype=np.float64)
    result = np.insert(vertices, where, coordinates, axis=0)
    indices = where + np.arange(len(points))
    return _Ring(result, {p[3]: int(i) for p, i in zip(points, indices, strict=True)})


def _keyhole_rings(loops: _Loops, array: NDArray[np.bool_], holes: list[int]) -> list[_Ring]:
    """Every loop's ring, with one cut per hole from its top-left pixel leftwards.

    The cut runs along the hole's top row of pixels, a quarter pixel below its top edge,
    through mask pixels only, to the first pixel outside the mask on its left: that pixel
    lies outside the enclosing region or in another of its holes whose top-left pixel comes
    earlier, so the cuts join every hole to the outer loop in a tree and cross nothing.
    """
    inserted: list[list[tuple[int, float, float, int]]] = [[] for _ in range(loops.count)]
    for hole in holes:
        start = int(loops.bounds[hole])
        plane = int(loops.plane[hole])
        row = int(loops.rows[start])  # the loop starts with the hole's top edge ...
        column = int(loops.columns[start + 1])  # ... which ends at its top-left corner
        left_of_hole = array[plane, row - 1, : column - 1]
        outside = np.flatnonzero(~left_of_hole)
        target_column = int(outside[-1]) + 2 if outside.size else 1
        target, target_after = loops.vertical_run(plane, target_column, row)
        own, hole_after = loops.vertical_run(plane, column, row)
        if own != hole:  # pragma: no cover - guards the invariant stated above
            raise AssertionError("keyhole cut does not start on its hole")
        cut_row = row + _CUT_OFFSET
        inserted[hole].append((hole_after, cut_row, float(column), -1))
        inserted[target].append((target_after, cut_row, float(target_column), hole))
    return [_insert(loops.vertices(loop), points) for loop, points in enumerate(inserted)]


def _assemble(root: int, rings: list[_Ring]) -> FloatArray:
    """One keyhole polygon: the outer ring ``root`` with its holes joined in by their cuts."""
    pieces: list[FloatArray] = []
    tasks: list[FloatArray | int] = [root]
    while tasks:
        task = tasks.pop()
        if not isinstance(task, int):
            pieces.append(task)
            continue
        ring = rings[task]
        shift = ring.pins.get(-1, 0)  # a hole starts at its own cut point
        vertices = np.roll(ring.vertices, -shift, axis=0)
        m = vertices.shape[0]
        children = sorted(((i - shift) % m, tag) for tag, i in ring.pins.items() if tag >= 0)
        sequence: list[FloatArray | int] = []
        previous = 0
        for index, child in children:
            sequence += [vertices[previous : index + 1], child, vertices[index : index + 1]]
            previous = index + 1
        sequence.append(vertices[previous:])
        if -1 in ring.pins:
            sequence.append(vertices[:1])  # back to the cut point, then back along the cut
        tasks.extend(reversed(sequence))
    return np.concatenate(pieces)


# --------------------------------------------------------------------------- simplify
def _simplify_ring(ring: _Ring, scale: FloatArray, tolerance: float) -> _Ring:
    """Douglas-Peucker (topology preserving) in plane mm, keeping the pinned points.

    The ring is cut at its pins into chains, each simplified with its ends kept.
    """
    mm = ring.vertices * scale
    pinned = sorted(ring.pins.items(), key=lambda item: item[1])
    first = pinned[0][1]
    rolled = np.roll(mm, -first, axis=0)
    starts = [index - first for _, index in pinned] + [mm.shape[0]]
    closed = np.vstack([rolled, rolled[:1]])
    parts: list[FloatArray] = []
    pins: dict[int, int] = {}
    for (tag, _), begin, end in zip(pinned, starts[:-1], starts[1:], strict=True):
        pins[tag] = sum(part.shape[0] for part in parts)
        chain = shapely.linestrings(closed[begin : end + 1])
        simple = shapely.get_coordinates(shapely.simplify(chain, tolerance, preserve_topology=True))
        parts.append(simple[:-1])
    return _Ring(np.concatenate(parts) / scale, pins)


def _simplify_all(rings: list[_Ring], scale: FloatArray, tolerance: float) -> list[_Ring]:
    """Simplify every ring; rings without pins in one vectorised shapely call."""
    plain = [i for i, ring in enumerate(rings) if not ring.pins]
    result = list(rings)
    if plain:
        coordinates = np.concatenate([rings[i].vertices for i in plain]) * scale
        owner = np.repeat(np.arange(len(plain)), [rings[i].vertices.shape[0] for i in plain])
        simple = shapely.simplify(
            shapely.linearrings(coordinates, indices=owner), tolerance, preserve_topology=True
        )
        points, index = shapely.get_coordinates(simple, return_index=True)
        splits = np.flatnonzero(np.diff(index)) + 1
        for i, part in zip(plain, np.split(points, splits), strict=True):
            result[i] = _Ring(part[:-1] / scale, {})
    for i, ring in enumerate(rings):
        if ring.pins:
            result[i] = _simplify_ring(ring, scale, tolerance)
    return result


# --------------------------------------------------------------------------- public
def _as_binary(array: NDArray[Any], grid: ImageGrid) -> NDArray[np.bool_]:
    values = np.asarray(array)
    if values.shape != grid.shape:
        raise GeometryError(f"mask shape {values.shape} differs from the grid's {grid.shape}")
    if values.dtype == np.bool_:
        return np.ascontiguousarray(values)
    if np.issubdtype(values.dtype, np.integer):
        return np.ascontiguousarray(values != 0)
    raise InvalidInputError(
        f"contours need a binary mask, got {values.dtype} values; threshold a fractional "
        "mask first (e.g. array >= 0.5)"
    )


def contours_from_mask(
    array: NDArray[np.bool_] | NDArray[np.integer[Any]],
    grid: ImageGrid,
    *,
    sop_instance_uids: Sequence[str] | None = None,
    simplify_mm: float = 0.0,
    keyholes: bool = False,
) -> tuple[Contour, ...]:
    """Trace a binary mask into CLOSED_PLANAR contours along its voxel edges.

    Parameters
    ----------
    array
        ``(slices, rows, columns)`` bool (or integer 0/1) mask on ``grid``.
    grid
        The grid of ``array``; contour vertices are pixel corners mapped to LPS mm.
    sop_instance_uids
        ``(slices,)`` SOPInstanceUID of each slice's image; each contour references its
        slice's image when given.
    simplify_mm
        When > 0, simplify each loop (Douglas-Peucker, topology preserving, in the plane's
        mm) with at most this deviation: fewer points, but rasterising the contours no
        longer gives exactly ``array`` back, and nearby loops may then touch or cross.
        0 (default): exact, every corner kept.
    keyholes
        False (default): one contour per boundary loop, holes as separate contours nested
        in their outer contour (read by nesting, ``auto``, or even-odd, ``xor``). True: each
        hole joined to its enclosing outer contour by a zero-width cut, one contour per
        face-connected region, for software that does not nest contours.

    Returns
    -------
    tuple of Contour
        In slice order, then by their top-left corner; ``()`` for an empty mask.

    Raises
    ------
    GeometryError
        ``array`` and ``grid`` differ in shape, or ``sop_instance_uids`` in length.
    InvalidInputError
        ``array`` holds fractions (float), or ``simplify_mm`` is negative.
    """
    return trace_mask(
        array, grid, sop_instance_uids=sop_instance_uids, simplify_mm=simplify_mm, keyholes=keyholes
    )


def trace_mask(
    array: NDArray[np.bool_] | NDArray[np.integer[Any]],
    grid: ImageGrid,
    *,
    sop_instance_uids: Sequence[str] | None = None,
    simplify_mm: float = 0.0,
    keyholes: bool = False,
    occupied_slices: NDArray[np.intp] | None = None,
) -> tuple[Contour, ...]:
    """:func:`contours_from_mask`, told which slices hold voxels (``occupied_slices``).

    A mask fresh from the rasteriser knows its non-empty slices; skipping the others
    saves reading (and paging in) their memory.
    """
    mask = _as_binary(array, grid)
    if sop_instance_uids is not None and len(sop_instance_uids) != grid.shape[0]:
        raise GeometryError(
            f"{len(sop_instance_uids)} SOP instance UIDs given for {grid.shape[0]} slices"
        )
    if not simplify_mm >= 0 or not np.isfinite(simplify_mm):
        raise InvalidInputError(f"simplify_mm must be a number >= 0, got {simplify_mm}")
    occupied = None if occupied_slices is None else np.asarray(occupied_slices, dtype=np.intp)
    box = None if occupied is not None and occupied.size == 0 else bounding_box(mask, occupied)
    if box is None:
        return ()
    cropped = mask[box]
    loops = _trace(cropped)
    areas = loops.twice_signed_areas()
    if keyholes:
        rings = _keyhole_rings(loops, cropped, np.flatnonzero(areas < 0).tolist())
    else:
        rings = [_Ring(loops.vertices(loop), {}) for loop in range(loops.count)]
    if simplify_mm > 0:
        scale = np.array(grid.spacing_mm[1:], dtype=np.float64)
        rings = _simplify_all(rings, scale, float(simplify_mm))
    if keyholes:
        outer = np.flatnonzero(areas > 0).tolist()
        polygons = [_assemble(loop, rings) for loop in outer]
        planes = loops.plane[outer]
    else:
        polygons = [ring.vertices for ring in rings]
        planes = loops.plane
    return _contours(polygons, planes, box, grid, sop_instance_uids)


def _contours(
    polygons: list[FloatArray],
    planes: IntArray,
    box: tuple[slice, slice, slice],
    grid: ImageGrid,
    sop_instance_uids: Sequence[str] | None,
) -> tuple[Contour, ...]:
    """Map padded vertex coordinates of the cropped block to LPS mm contours."""
    sizes = [polygon.shape[0] for polygon in polygons]
    stacked = np.concatenate(polygons)
    slices = np.repeat(planes + box[0].start, sizes).astype(np.float64)
    index = np.column_stack(
        [slices, stacked[:, 0] + (box[1].start - 1.5), stacked[:, 1] + (box[2].start - 1.5)]
    )
    points = np.split(grid.index_to_patient(index), np.cumsum(sizes)[:-1])
    return tuple(
        Contour(
            points_mm=loop_points,
            geometric_type=GeometricType.CLOSED_PLANAR,
            number=number,
            referenced_sop_instance_uid=(
                None if sop_instance_uids is None else sop_instance_uids[int(plane) + box[0].start]
            ),
        )
        for number, (loop_points, plane) in enumerate(zip(points, planes, strict=True), start=1)
    )
