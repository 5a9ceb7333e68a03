"""Scan conversion of planar polygons onto a pixel grid, by the pixel-centre rule.

Polygons are ``(N, 2)`` arrays of continuous ``(row, column)`` pixel indices: pixel
``[r, c]`` has its centre at ``(r, c)``. A pixel is inside when its centre is inside the
polygon (even-odd), evaluated on unrounded coordinates, with a half-open rule on edges:
a centre on a left or top edge is inside, on a right or bottom edge outside. Two polygons
sharing an edge therefore never both claim a pixel.

How: each edge crosses the rows ``r`` with ``v_min <= r < v_max`` (half-open in the row
direction); at each crossing the pixel run from ``ceil(u)`` on toggles. A cumulative XOR
along the row turns the toggles into the inside mask. No Python loop over pixels or
vertices.

For partial volumes the pixels are sub-pixels of ``s x s`` per voxel, and only their count
per voxel is wanted: :class:`ParityCrossings` sorts each row's crossings, gives them
alternate signs (enter +1, leave -1; the running sum is the parity) and adds each
crossing's share of the sub-pixels right of it to its voxel and the next, so that one
cumulative sum over voxel columns yields the counts without the sub-pixel mask.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

__all__ = [
    "ParityCrossings",
    "PixelBox",
    "fill_parity_stack",
    "polygon_box",
    "polygons_box",
]

#: Coordinates within this many pixels of a whole number count as on it (float noise).
SNAP = 1e-9


@dataclass(frozen=True, slots=True)
class PixelBox:
    """A half-open pixel rectangle ``[row0, row1) x [col0, col1)`` on a plane."""

    row0: int
    row1: int
    col0: int
    col1: int

    @property
    def is_empty(self) -> bool:
        """True when the box holds no pixel."""
        return self.row1 <= self.row0 or self.col1 <= self.col0

    @property
    def slices(self) -> tuple[slice, slice]:
        """Index expression selecting the box from a ``(rows, columns)`` array."""
        return slice(self.row0, self.row1), slice(self.col0, self.col1)

    def union(self, other: PixelBox) -> PixelBox:
        """Smallest box holding both."""
        if self.is_empty:
            return other
        if other.is_empty:
            return self
        return PixelBox(
            min(self.row0, other.row0),
            max(self.row1, other.row1),
            min(self.col0, other.col0),
            max(self.col1, other.col1),
        )

    def intersects(self, other: PixelBox) -> bool:
        """True when the boxes share a pixel."""
        return (
            self.row0 < other.row1
            and other.row0 < self.row1
            and self.col0 < other.col1
            and other.col0 < self.col1
        )


def _first_pixel_at_or_after(values: NDArray[np.float64]) -> NDArray[np.int64]:
    """Smallest integer ``>= value`` (values within SNAP above an integer count as it)."""
    return np.ceil(values - SNAP).astype(np.int64)


def polygon_box(
    low_corner: NDArray[np.float64], high_corner: NDArray[np.float64], shape: tuple[int, int]
) -> PixelBox:
    """Pixels whose centres could be inside a polygon with the given ``(2,)`` extremes.

    ``low_corner`` and ``high_corner`` are the polygon's smallest and largest
    ``(row, column)``; the box is clipped to a ``(rows, cols)`` plane.
    """
    return polygons_box(low_corner[None, :], high_corner[None, :], shape)


def polygons_box(
    low_corners: NDArray[np.float64], high_corners: NDArray[np.float64], shape: tuple[int, int]
) -> PixelBox:
    """The union of :func:`polygon_box` of polygons with ``(K, 2)`` extremes."""
    # Clipped to just beyond the plane before they become integers: no overflow.
    limit = np.array(shape, dtype=np.float64) + 1.0
    low = np.maximum(_first_pixel_at_or_after(np.clip(low_corners, -1.0, limit)), 0)
    high = np.minimum(_first_pixel_at_or_after(np.clip(high_corners, -1.0, limit)), shape)
    kept = np.all(high > low, axis=1)  # boxes that hold a pixel
    if not kept.any():
        return PixelBox(0, 0, 0, 0)
    row0, col0 = low[kept].min(axis=0).tolist()
    row1, col1 = high[kept].max(axis=0).tolist()
    return PixelBox(row0, row1, col0, col1)


def _edges(
    polygons: Sequence[NDArray[np.float64]],
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.intp]]:
    """Start and end points ``(E, 2)`` of every polygon edge, and the polygon of each edge."""
    lengths = np.array([len(p) for p in polygons], dtype=np.intp)
    start = np.concatenate(polygons) if len(polygons) > 1 else polygons[0]
    first = np.cumsum(lengths) - lengths
    end = np.empty_like(start)  # the next vertex: a shifted copy (faster than a gather) ...
    end[:-1] = start[1:]
    end[first + lengths - 1] = start[first]  # ... and each polygon closes on its first
    owner = np.repeat(np.arange(len(polygons)), lengths)
    return start, end, owner


def _crossings(
    start: NDArray[np.float64], end: NDArray[np.float64], box: PixelBox
) -> tuple[NDArray[np.intp], NDArray[np.int64], NDArray[np.int64]]:
    """Edge, row and first-inside column (clipped to the box) of every edge/row crossing."""
    # Rows and columns are clipped to just beyond the box before they become integers,
    # so that no coordinate, however far, overflows the index arithmetic.
    v_low = np.clip(np.minimum(start[:, 0], end[:, 0]), box.row0 - 1, box.row1 + 1)
    v_high = np.clip(np.maximum(start[:, 0], end[:, 0]), box.row0 - 1, box.row1 + 1)
    row_first = np.maximum(_first_pixel_at_or_after(v_low), box.row0)
    row_stop = np.minimum(_first_pixel_at_or_after(v_high), box.row1)
    counts = np.maximum(row_stop - row_first, 0)
    total = int(counts.sum())
    edge = np.repeat(np.arange(start.shape[0]), counts)
    offsets = np.arange(total) - np.repeat(np.cumsum(counts) - counts, counts)
    rows = row_first[edge] + offsets
    # Per edge first (few), then per crossing (many): gathers from 1-D arrays.
    v0, u0 = start[:, 0], start[:, 1]
    with np.errstate(divide="ignore", invalid="ignore"):  # edges along a row never cross one
        slope = (end[:, 1] - u0) / (end[:, 0] - v0)  # columns per row
    u = u0[edge] + (rows - v0[edge]) * slope[edge]
    np.clip(u, box.col0 - 1, box.col1 + 1, out=u)
    columns = np.clip(_first_pixel_at_or_after(u), box.col0, box.col1)
    return edge, rows, columns


#: Largest toggle grid (pixels) counted with bincount; larger ones are counted by sorting.
_BINCOUNT_LIMIT = 1 << 22


def fill_parity_stack(
    polygons: Sequence[NDArray[np.float64]],
    plane_of_polygon: Sequence[int],
    n_planes: int,
    box: PixelBox,
) -> NDArray[np.bool_]:
    """Even-odd fill of polygons on several planes at once, over the pixels of ``box``.

    Parameters
    ----------
    polygons
        ``(N, 2)`` continuous ``(row, column)`` vertex arrays (closing edge implied).
    plane_of_polygon
        For each polygon, its plane in the returned stack (0 .. n_planes - 1).
    n_planes
        Number of planes in the stack.
    box
        The pixel rectangle to evaluate on every plane.

    Returns
    -------
    numpy.ndarray
        ``(n_planes, box rows, box columns)`` bool: True where an odd number of the
        plane's polygons (counted with their own self-overlaps) cover the pixel centre.
    """
    n_rows, n_cols = box.row1 - box.row0, box.col1 - box.col0
    if n_rows <= 0 or n_cols <= 0 or not polygons:
        return np.zeros((n_planes, max(n_rows, 0), max(n_cols, 0)), dtype=np.bool_)
    start, end, owner = _edges(polygons)
    edge, rows, columns = _crossings(start, end, box)
    planes = np.asarray(plane_of_polygon, dtype=np.int64)[owner[edge]]
    width = n_cols + 1  # column n_cols collects toggles right of the box (never seen)
    flat = (planes * n_rows + (rows - box.row0)) * width + (columns - box.col0)
    size = n_planes * n_rows * width
    if size <= _BINCOUNT_LIMIT:
        toggled = (np.bincount(flat, minlength=size) & 1).astype(np.bool_)
    else:
        toggled = np.zeros(size, dtype=np.bool_)
        positions, counts = np.unique(flat, return_counts=True)
        toggled[positions[(counts & 1).astype(np.bool_)]] = True
    stacked = toggled.reshape(n_planes, n_rows, width)
    inside: NDArray[np.bool_] = np.logical_xor.accumulate(stacked, axis=2)[:, :, :n_cols]
    return inside


@dataclass(frozen=True, slots=True)
class ParityCrossings:
    """Where polygons cross the sub-pixel rows of a box, for counts per voxel.

    The box is in sub-pixels and aligned to whole voxels of ``s x s`` sub-pixels (its
    bounds are multiples of ``samples``). Each sub-row's crossings are sorted and signed
    (enter +1, leave -1: their running sum is the even-odd parity). A crossing at
    sub-column ``c`` (voxel ``j = c // s``, offset ``p = c % s``) sets the sub-pixels
    ``c..`` of its sub-row: offsets ``p .. s - 1`` of voxel ``j`` and all ``s`` of every
    voxel after. Its step goes to voxel ``j`` and the rest of a whole voxel's share to
    ``j + 1``; a running sum along the voxel row adds them up. Every sub-row has an even
    number of crossings (closed polygons, half-open rows), so its steps sum to 0 and one
    flat running sum restarts at 0 on every voxel row.

    ``(n,)`` each: the voxel of each crossing (flat index into ``(planes, rows,
    columns + 2)``: two columns collect the crossings right of the box), its offset
    ``p`` and its sub-row's offset ``q`` in the voxel, and its sign.
    """

    shape: tuple[int, int, int]
    samples: int
    voxel: NDArray[np.int64]
    part: NDArray[np.float64]
    sub_row: NDArray[np.float64]
    sign: NDArray[np.float64]

    @classmethod
    def of(
        cls,
        polygons: Sequence[NDArray[np.float64]],
        plane_of_polygon: Sequence[int],
        n_planes: int,
        box: PixelBox,
        samples: int,
    ) -> ParityCrossings:
        """The crossings of ``(N, 2)`` sub-pixel polygons (see :func:`fill_parity_stack`)."""
        s = samples
        n_rows, n_cols = max(box.row1 - box.row0, 0), max(box.col1 - box.col0, 0)
        shape = (n_planes, n_rows // s, n_cols // s)
        if not (n_rows and n_cols and polygons):
            empty = np.empty(0)
            return cls(shape, s, np.empty(0, dtype=np.int64), empty, empty, empty)
        start, end, owner = _edges(polygons)
        edge, rows, columns = _crossings(start, end, box)
        planes = np.asarray(plane_of_polygon, dtype=np.int64)[owner[edge]]
        row_key = planes * n_rows + (rows - box.row0)  # (plane, sub-row)
        columns = columns - box.col0  # 0 .. n_cols (n_cols: right of the box)
        order = np.argsort(row_key * (n_cols + 1) + columns, kind="stable")  # by row, column
        row_key, columns = row_key[order], columns[order]
        first_in_row = np.flatnonzero(np.diff(row_key, prepend=-1))
        run = np.diff(np.append(first_in_row, row_key.size))
        rank = np.arange(row_key.size) - np.repeat(first_in_row, run)
        sign = 1.0 - 2.0 * (rank & 1)
        column, part = np.divmod(columns, s)
        plane, sub_row = np.divmod(row_key, n_rows)
        voxel = (plane * shape[1] + sub_row // s) * (shape[2] + 2) + column
        offset = np.asarray(sub_row % s, dtype=np.float64)
        return cls(shape, s, voxel, part.astype(np.float64), offset, np.asarray(sign))

    def counts(self) -> NDArray[np.float64]:
        """``(planes, rows, columns)`` sub-pixels inside per voxel: whole numbers 0 .. s * s.

        The sums of :func:`fill_parity_stack`'s mask over ``s x s`` blocks.
        """
        planes, rows, columns = self.shape
        size = planes * rows * (columns + 2)
        s = float(self.samples)
        steps = np.bincount(self.voxel, weights=self.sign * (s - self.part), minlength=size)
        steps += np.bincount(self.voxel + 1, weights=self.sign * self.part, minlength=size)
        counts = np.cumsum(steps).reshape(planes, rows, columns + 2)[:, :, :columns]
        return np.asarray(counts)

    def sums_at(self, voxels: NDArray[np.intp]) -> NDArray[np.float64]:
        """``(6, m)`` :data:`rtmask.raster._partial.SUMS` of ``(m,)`` voxels.

        ``voxels``: flat indices into ``(planes, rows, columns)``. A voxel's running sum
        is the whole-voxel share of every crossing before it in its voxel row plus its own
        crossings' shares; with the crossings sorted by voxel, both are differences of
        prefix sums. One sum at a time, so the temporaries stay a few ``(n,)`` arrays.
        The values are whole numbers, summed exactly in float64.
        """
        found = np.zeros((6, np.size(voxels)))
        if self.voxel.size == 0:
            return found
        order = np.argsort(self.voxel, kind="stable")
        keys = self.voxel[order]
        columns = self.shape[2]
        row, column = np.divmod(np.asarray(voxels, dtype=np.int64), columns)
        key = row * (columns + 2) + column
        before = np.searchsorted(keys, key, side="left")  # crossings in earlier voxels
        through = np.searchsorted(keys, key, side="right")  # ... and in the voxel itself
        s = float(self.samples)
        sign, p, q = self.sign[order], self.part[order], self.sub_row[order]
        count = s - p
        o = (s * (s - 1) - p * (p - 1)) / 2  # sum of the offsets p .. s - 1
        o2 = ((s - 1) * s * (2 * s - 1) - (p - 1) * p * (2 * p - 1)) / 6
        whole_o, whole_o2 = s * (s - 1) / 2, (s - 1) * s * (2 * s - 1) / 6
        prefix = np.zeros(keys.size + 1)
        # Every crossing before a voxel in its row adds a whole voxel's share of its
        # sub-row: the sums over offsets 0 .. s - 1 times 1, q or q^2.
        entered = []
        for weight in (sign, sign * q, sign * q * q):
            np.cumsum(weight, out=prefix[1:])
            entered.append(prefix[before])
        rows, rows_q, rows_q2 = entered
        found[0], found[1], found[2] = s * rows, s * rows_q, s * rows_q2
        found[3], found[4], found[5] = whole_o * rows, whole_o * rows_q, whole_o2 * rows
        # The voxel's own crossings add their share over offsets p .. s - 1.
        own = (count, q * count, q * q * count, o, q * o, o2)
        for k, share in enumerate(own):
            np.cumsum(sign * share, out=prefix[1:])
            found[k] += prefix[through]
            found[k] -= prefix[before]
        return found
