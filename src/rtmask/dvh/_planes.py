"""Dose on calculation planes parallel to the dose grid's planes.

A calculation plane shares the dose grid's row and column directions, so its rows map to
one fractional dose row each and its columns to one fractional dose column each:
trilinear interpolation separates into a blend of two dose frames (along the normal)
followed by two one-dimensional interpolations (rows, then columns). A whole plane costs
a few array operations of the plane's size, instead of eight gathers per point.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from rtmask.dose import DoseGrid
from rtmask.geometry import ImageGrid

__all__ = ["PlaneDoseSampler"]

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.intp]

#: Index positions this close beyond the outermost dose voxel centres still count as inside
#: (the same tolerance as :func:`rtmask.dose.sample_dose`).
EDGE_TOLERANCE = 1e-6


@dataclass(frozen=True, slots=True)
class _Axis:
    """Interpolation of one in-plane axis: lower/upper neighbour, weight, outside flags."""

    low: IntArray
    high: IntArray
    weight: FloatArray
    outside: NDArray[np.bool_]
    first: int  # first dose index used (the dose array is cropped to first..last)
    last: int


def _axis(position: FloatArray, size: int) -> _Axis:
    """Neighbours and weights of fractional dose indices ``position`` on an axis of ``size``."""
    outside = (position < -EDGE_TOLERANCE) | (position > size - 1 + EDGE_TOLERANCE)
    clipped = np.clip(position, 0.0, size - 1)
    low = np.minimum(np.floor(clipped).astype(np.intp), max(size - 2, 0))
    high = np.minimum(low + 1, size - 1)
    weight = clipped - low
    first, last = int(low.min()), int(high.max())
    return _Axis(low - first, high - first, weight, outside, first, last)


class PlaneDoseSampler:
    """Dose (Gy) on the voxel centres of planes of a calculation lattice.

    Parameters
    ----------
    dose
        The dose grid.
    lattice
        A grid with the dose grid's orientation; only its in-plane geometry (rows,
        columns, spacing, origin) is used. Plane positions are given per call, as
        distances along the dose grid's normal (mm).
    """

    def __init__(self, dose: DoseGrid, lattice: ImageGrid) -> None:
        grid = dose.grid
        n_frames, n_rows, n_columns = grid.shape
        origin = lattice.origin_mm
        row_points = origin + np.outer(np.arange(lattice.shape[1]), lattice.affine[:3, 1])
        column_points = origin + np.outer(np.arange(lattice.shape[2]), lattice.affine[:3, 2])
        self._rows = _axis(grid.patient_to_index(row_points)[:, 1], n_rows)
        self._columns = _axis(grid.patient_to_index(column_points)[:, 2], n_columns)
        values = dose.dose_gy[
            :,
            self._rows.first : self._rows.last + 1,
            self._columns.first : self._columns.last + 1,
        ]
        self._values = np.ascontiguousarray(values, dtype=np.float64)
        self._frame_positions = np.asarray(grid.slice_positions_mm, dtype=np.float64)
        self._n_frames = n_frames
        self._tolerance_mm = (
            EDGE_TOLERANCE * float(np.min(np.abs(np.diff(self._frame_positions))))
            if n_frames > 1
            else EDGE_TOLERANCE
        )

    def _frame(self, position_mm: float) -> FloatArray | None:
        """The dose frame blended at ``position_mm`` along the normal (cropped), or None."""
        positions = self._frame_positions
        if not (
            positions[0] - self._tolerance_mm <= position_mm <= positions[-1] + self._tolerance_mm
        ):
            return None
        if self._n_frames == 1:
            only: FloatArray = self._values[0]
            return only
        index = float(np.interp(position_mm, positions, np.arange(self._n_frames)))
        low = min(int(np.floor(index)), self._n_frames - 2)
        weight = index - low
        below: FloatArray = self._values[low]
        above: FloatArray = self._values[low + 1]
        if weight == 0.0:
            return below
        if weight == 1.0:
            return above
        return (1.0 - weight) * below + weight * above

    def _in_plane(self, frame: FloatArray) -> FloatArray:
        """Bilinear interpolation of a cropped frame onto the lattice plane, NaN outside."""
        rows, columns = self._rows, self._columns
        along_rows = frame[rows.low] + rows.weight[:, None] * (frame[rows.high] - frame[rows.low])
        plane: FloatArray = along_rows[:, columns.low] + columns.weight[None, :] * (
            along_rows[:, columns.high] - along_rows[:, columns.low]
        )
        if rows.outside.any():
            plane[rows.outside, :] = np.nan
        if columns.outside.any():
            plane[:, columns.outside] = np.nan
        return plane

    def plane(self, position_mm: float) -> FloatArray:
        """``(rows, columns)`` dose on the lattice plane at ``position_mm``; NaN outside."""
        frame = self._frame(position_mm)
        if frame is None:
            return np.full((self._rows.low.size, self._columns.low.size), np.nan)
        return self._in_plane(frame)

    def difference(self, low_mm: float, high_mm: float) -> FloatArray:
        """``(rows, columns)`` dose at ``high_mm`` minus dose at ``low_mm``; NaN outside."""
        low, high = self._frame(low_mm), self._frame(high_mm)
        if low is None or high is None:
            return np.full((self._rows.low.size, self._columns.low.size), np.nan)
        return self._in_plane(high - low)
