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
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

__all__ = [
    "PixelBox",
    "fill_parity_stack",
    "polygon_box",
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
    low = _first_pixel_at_or_after(low_corner)
    high = _first_pixel_at_or_after(high_corner)
    return PixelBox(
        max(int(low[0]), 0),
        min(int(high[0]), shape[0]),
        max(int(low[1]), 0),
        min(int(high[1]), shape[1]),
    )


def _edges(
    polygons: Sequence[NDArray[np.float64]],
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.intp]]:
    """Start and end points ``(E, 2)`` of every polygon edge, and the polygon of each edge."""
    lengths = np.array([len(p) for p in polygons], dtype=np.intp)
    start = np.concatenate(polygons) if len(polygons) > 1 else polygons[0]
    following = np.arange(1, start.shape[0] + 1)
    first = np.cumsum(lengths) - lengths
    following[first + lengths - 1] = first  # each polygon closes on its first vertex
    owner = np.repeat(np.arange(len(polygons)), lengths)
    return start, start[following], owner


def _crossings(
    start: NDArray[np.float64], end: NDArray[np.float64], box: PixelBox
) -> tuple[NDArray[np.intp], NDArray[np.int64], NDArray[np.int64]]:
    """Edge, row and first-inside column (clipped to the box) of every edge/row crossing."""
    v_low = np.minimum(start[:, 0], end[:, 0])
    v_high = np.maximum(start[:, 0], end[:, 0])
    row_first = np.maximum(_first_pixel_at_or_after(v_low), box.row0)
    row_stop = np.minimum(_first_pixel_at_or_after(v_high), box.row1)
    counts = np.maximum(row_stop - row_first, 0)
    total = int(counts.sum())
    edge = np.repeat(np.arange(start.shape[0]), counts)
    offsets = np.arange(total) - np.repeat(np.cumsum(counts) - counts, counts)
    rows = row_first[edge] + offsets
    v0, u0 = start[edge, 0], start[edge, 1]
    dv = end[edge, 0] - v0
    du = end[edge, 1] - u0
    u = u0 + (rows - v0) * (du / dv)
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
