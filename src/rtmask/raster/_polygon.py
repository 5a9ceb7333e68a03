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

__all__ = ["PixelBox", "fill_parity", "points_in_polygon", "polygon_area", "polygon_box"]

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


def polygon_box(polygon: NDArray[np.float64], shape: tuple[int, int]) -> PixelBox:
    """Pixels whose centres could be inside ``polygon``, clipped to a ``(rows, cols)`` plane."""
    low = _first_pixel_at_or_after(polygon.min(axis=0))
    high = _first_pixel_at_or_after(polygon.max(axis=0))
    return PixelBox(
        max(int(low[0]), 0),
        min(int(high[0]), shape[0]),
        max(int(low[1]), 0),
        min(int(high[1]), shape[1]),
    )


def _crossings(
    polygon: NDArray[np.float64], box: PixelBox
) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """Rows and first-inside columns (clipped to the box) of every edge/row crossing."""
    start = polygon
    end = np.roll(polygon, -1, axis=0)
    v_low = np.minimum(start[:, 0], end[:, 0])
    v_high = np.maximum(start[:, 0], end[:, 0])
    row_first = np.maximum(_first_pixel_at_or_after(v_low), box.row0)
    row_stop = np.minimum(_first_pixel_at_or_after(v_high), box.row1)
    counts = np.maximum(row_stop - row_first, 0)
    total = int(counts.sum())
    if total == 0:
        return np.empty(0, np.int64), np.empty(0, np.int64)
    edge = np.repeat(np.arange(polygon.shape[0]), counts)
    offsets = np.arange(total) - np.repeat(np.cumsum(counts) - counts, counts)
    rows = row_first[edge] + offsets
    v0, u0 = start[edge, 0], start[edge, 1]
    dv = end[edge, 0] - v0
    du = end[edge, 1] - u0
    u = u0 + (rows - v0) * (du / dv)
    columns = np.clip(_first_pixel_at_or_after(u), box.col0, box.col1)
    return rows, columns


def fill_parity(polygons: Sequence[NDArray[np.float64]], box: PixelBox) -> NDArray[np.bool_]:
    """Even-odd fill of all ``polygons`` together, over the pixels of ``box``.

    Parameters
    ----------
    polygons
        ``(N, 2)`` continuous ``(row, column)`` vertex arrays (closing edge implied).
    box
        The pixel rectangle to evaluate.

    Returns
    -------
    numpy.ndarray
        ``(box rows, box columns)`` bool: True where an odd number of polygons (counted
        with their own self-overlaps) cover the pixel centre.
    """
    n_rows, n_cols = box.row1 - box.row0, box.col1 - box.col0
    if n_rows <= 0 or n_cols <= 0:
        return np.zeros((max(n_rows, 0), max(n_cols, 0)), dtype=np.bool_)
    all_rows, all_cols = [], []
    for polygon in polygons:
        rows, columns = _crossings(polygon, box)
        all_rows.append(rows)
        all_cols.append(columns)
    rows = np.concatenate(all_rows) - box.row0
    columns = np.concatenate(all_cols) - box.col0
    width = n_cols + 1  # column n_cols collects toggles right of the box (never seen)
    toggles = np.bincount(rows * width + columns, minlength=n_rows * width)
    toggled = (toggles & 1).astype(np.bool_).reshape(n_rows, width)
    inside: NDArray[np.bool_] = np.logical_xor.accumulate(toggled, axis=1)[:, :n_cols]
    return inside


def points_in_polygon(
    points: NDArray[np.float64], polygon: NDArray[np.float64]
) -> NDArray[np.bool_]:
    """Even-odd test of ``(M, 2)`` points against one ``(N, 2)`` polygon (same rule as fill)."""
    start = polygon[None, :, :]
    end = np.roll(polygon, -1, axis=0)[None, :, :]
    v = points[:, None, 0]
    u = points[:, None, 1]
    v0, v1 = start[..., 0], end[..., 0]
    spans = np.minimum(v0, v1) <= v
    spans &= v < np.maximum(v0, v1)
    with np.errstate(divide="ignore", invalid="ignore"):
        u_cross = start[..., 1] + (v - v0) * (end[..., 1] - start[..., 1]) / (v1 - v0)
    left_of_point = spans & (u_cross <= u)
    result: NDArray[np.bool_] = (np.count_nonzero(left_of_point, axis=1) % 2).astype(np.bool_)
    return result


def polygon_area(polygon: NDArray[np.float64]) -> float:
    """Unsigned shoelace area of an ``(N, 2)`` polygon, in squared input units."""
    v, u = polygon[:, 0], polygon[:, 1]
    return 0.5 * abs(float(np.dot(u, np.roll(v, -1)) - np.dot(v, np.roll(u, -1))))
