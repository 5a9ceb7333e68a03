"""Dose on calculation planes parallel to the dose grid's planes.

A calculation plane shares the dose grid's row and column directions, so its rows map to
one fractional dose row each and its columns to one fractional dose column each:
trilinear interpolation separates into a blend of two dose frames (along the normal)
followed by two one-dimensional interpolations (rows, then columns). A whole plane costs
a few array operations of the plane's size, instead of eight gathers per point.

Everything sampled here is linear in the dose frames, so a plane between two frames is the
blend of the two frames' planes: :meth:`PlaneDoseSampler.frame_planes` gives each frame's
plane (with its in-plane dose differences) once, to be gathered at the covered voxels and
blended for every plane position that needs it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from rtmask.dose import DoseGrid
from rtmask.geometry import ImageGrid

__all__ = ["PlaneDoseSampler", "sample_shifted"]

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.intp]

#: Index positions this close beyond the outermost dose voxel centres still count as inside
#: (the same tolerance as :func:`rtmask.dose.sample_dose`).
EDGE_TOLERANCE = 1e-6
#: Points per block in :func:`sample_shifted` (keeps its temporaries small).
_BLOCK_POINTS = 8192

#: Lattice rows and columns ``(first row, last row + 1, first column, last column + 1)``.
_Box = tuple[int, int, int, int]


@dataclass(frozen=True, slots=True)
class _Axis:
    """Interpolation along one in-plane axis of the lattice.

    ``low`` and ``high``: the neighbouring dose indices (of the cropped dose, a slice when
    consecutive) and ``weight`` of ``high``, for the lattice indices ``inside``;
    ``outside``: the lattice indices beyond the dose grid (a prefix and a suffix);
    ``first`` and ``last``: the dose indices used (the dose is cropped to first..last).
    """

    low: IntArray | slice
    high: IntArray | slice
    weight: FloatArray
    inside: slice
    outside: NDArray[np.bool_]
    first: int
    last: int

    def part(
        self, start: int, stop: int
    ) -> tuple[slice, IntArray | slice, IntArray | slice, FloatArray]:
        """The inside ones of lattice indices ``start:stop``, and their neighbours.

        Returns the inside lattice indices and their ``low``, ``high`` and ``weight``.
        """
        first = min(max(start, self.inside.start), self.inside.stop)
        last = max(min(stop, self.inside.stop), first)
        own = slice(first - self.inside.start, last - self.inside.start)
        return slice(first, last), _part(self.low, own), _part(self.high, own), self.weight[own]


def _part(index: IntArray | slice, part: slice) -> IntArray | slice:
    """``index[part]`` for an index array or a slice (of a step of one)."""
    if isinstance(index, slice):
        return slice(index.start + part.start, index.start + part.stop)
    return index[part]


def _pick(values: FloatArray, index: IntArray | slice, axis: int) -> FloatArray:
    """``values`` at ``index`` along ``axis``: a view for a slice."""
    if isinstance(index, slice):
        return values[(slice(None),) * axis + (index,)]
    return values.take(index, axis=axis)


def _axis(position: FloatArray, size: int) -> _Axis:
    """Neighbours and weights of fractional dose indices ``position`` on an axis of ``size``."""
    outside = (position < -EDGE_TOLERANCE) | (position > size - 1 + EDGE_TOLERANCE)
    kept = np.flatnonzero(~outside)
    inside = (
        slice(int(kept[0]), int(kept[-1]) + 1) if kept.size else slice(outside.size, outside.size)
    )
    clipped = np.clip(position[inside], 0.0, size - 1)
    low = np.minimum(np.floor(clipped).astype(np.intp), max(size - 2, 0))
    high = np.minimum(low + 1, size - 1)
    weight = clipped - low
    first, last = (int(low.min()), int(high.max())) if kept.size else (0, 0)
    return _Axis(
        _as_slice(low - first), _as_slice(high - first), weight, inside, outside, first, last
    )


def _as_slice(index: IntArray) -> IntArray | slice:
    """``index`` as a slice if it counts up by one, else unchanged."""
    if index.size and np.all(np.diff(index) == 1):
        return slice(int(index[0]), int(index[-1]) + 1)
    return index


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
        self._values = np.asarray(values, dtype=np.float64)  # a view: frames are read once
        self._frame_positions = np.asarray(grid.slice_positions_mm, dtype=np.float64)
        self._n_frames = n_frames
        self._shape = (lattice.shape[1], lattice.shape[2])
        self._whole: _Box = (0, lattice.shape[1], 0, lattice.shape[2])
        outside = self._rows.outside[:, None] | self._columns.outside[None, :]
        self._outside = np.asarray(outside.reshape(-1)) if outside.any() else None
        self._nan_strips = _nan_strips(self._rows, self._columns) if outside.any() else []
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

    def plane(self, position_mm: float) -> FloatArray:
        """``(rows, columns)`` dose on the lattice plane at ``position_mm``; NaN outside."""
        frame = self._frame(position_mm)
        if frame is None:
            return np.full(self._shape, np.nan)
        return np.asarray(self._in_planes(frame[None], self._whole)[0])

    def difference(self, low_mm: float, high_mm: float) -> FloatArray:
        """``(rows, columns)`` dose at ``high_mm`` minus dose at ``low_mm``; NaN outside."""
        low, high = self._frame(low_mm), self._frame(high_mm)
        if low is None or high is None:
            return np.full(self._shape, np.nan)
        return np.asarray(self._in_planes((high - low)[None], self._whole)[0])

    @property
    def outside(self) -> NDArray[np.bool_] | None:
        """``(rows * columns,)`` lattice voxels outside the dose grid in-plane, or None."""
        return self._outside

    def frame_indices(
        self, positions_mm: FloatArray
    ) -> tuple[IntArray, IntArray, FloatArray, NDArray[np.bool_]]:
        """Dose frames of plane positions (mm along the normal), ``(N,)`` each.

        The plane at each position is ``(1 - weight)`` x frame ``low`` + ``weight`` x frame
        ``high``; ``inside`` is False where the position lies beyond the outermost frames
        (the plane is NaN there). ``high`` equals ``low`` for a dose of a single frame.
        """
        positions = self._frame_positions
        inside = (positions[0] - self._tolerance_mm <= positions_mm) & (
            positions_mm <= positions[-1] + self._tolerance_mm
        )
        if self._n_frames == 1:
            zero = np.zeros(positions_mm.shape, dtype=np.intp)
            return zero, zero, np.zeros(positions_mm.shape), inside
        index = np.interp(positions_mm, positions, np.arange(self._n_frames, dtype=np.float64))
        low = np.minimum(np.floor(index).astype(np.intp), self._n_frames - 2)
        return low, low + 1, index - low, inside

    def frame_planes(
        self, frame: int, out: FloatArray | None = None, box: _Box | None = None
    ) -> FloatArray:
        """``(3, rows * columns)`` lattice plane of dose frame ``frame``, in Gy.

        Row 0: the dose. Rows 1 and 2: the dose at the next minus the dose at the previous
        lattice row (1) or column (2), indices clipped at the lattice's edges (twice the
        central difference). All are 0 where they would need a voxel outside the dose
        grid (NaN in :meth:`plane`). Written to ``out`` if given. With ``box`` (first row,
        last row + 1, first column, last column + 1), only that part is computed; the
        rest is left as it was.
        """
        row_start, row_stop, column_start, column_stop = box or self._whole
        result = np.empty((3, *self._shape)) if out is None else out.reshape(3, *self._shape)
        result[:, row_start:row_stop, column_start:column_stop] = self.frames_planes([frame], box)[
            0
        ]
        return result.reshape(3, -1)

    def frames_planes(self, frames: Sequence[int], box: _Box | None = None) -> FloatArray:
        """``(F, 3, box rows, box columns)``: :meth:`frame_planes` of several frames at once.

        Over ``box`` (first row, last row + 1, first column, last column + 1; default the
        whole plane): a few array operations for all the frames together.
        """
        n_rows, n_columns = self._shape
        row_start, row_stop, column_start, column_stop = box or self._whole
        # The frames on the box and one more row and column on each side (for the differences).
        top, left = max(row_start - 1, 0), max(column_start - 1, 0)
        margin = (top, min(row_stop + 1, n_rows), left, min(column_stop + 1, n_columns))
        planes = self._in_planes(self._values[list(frames)], margin)
        result = np.empty((len(frames), 3, row_stop - row_start, column_stop - column_start))
        rows = slice(row_start - top, row_stop - top)
        columns = slice(column_start - left, column_stop - left)
        result[:, 0] = planes[:, rows, columns]
        _stack_differences(
            planes[:, :, columns], result[:, 1], row_start, row_stop, size=n_rows, first=top
        )
        _stack_differences(
            planes[:, rows].swapaxes(1, 2),
            result[:, 2].swapaxes(1, 2),
            column_start,
            column_stop,
            size=n_columns,
            first=left,
        )
        for k, strip_rows, strip_columns in self._nan_strips:
            within_rows = _within(strip_rows, row_start, row_stop, n_rows)
            within_columns = _within(strip_columns, column_start, column_stop, n_columns)
            if within_rows is not None and within_columns is not None:
                result[:, k, within_rows, within_columns] = 0.0
        return result

    def _in_planes(self, frames: FloatArray, box: _Box) -> FloatArray:
        """``(F, box rows, box columns)`` bilinear interpolation of cropped frames on ``box``.

        NaN outside the dose grid.
        """
        row_start, row_stop, column_start, column_stop = box
        planes = np.empty((frames.shape[0], row_stop - row_start, column_stop - column_start))
        rows, row_low, row_high, row_weight = self._rows.part(row_start, row_stop)
        columns, column_low, column_high, column_weight = self._columns.part(
            column_start, column_stop
        )
        if row_weight.size and column_weight.size:
            first = _pick(frames, row_low, axis=1)
            along_rows = np.subtract(_pick(frames, row_high, axis=1), first)
            along_rows *= row_weight[:, None]
            along_rows += first  # first + weight * (following - first), rows
            block = planes[
                :,
                rows.start - row_start : rows.stop - row_start,
                columns.start - column_start : columns.stop - column_start,
            ]
            first = _pick(along_rows, column_low, axis=2)
            np.subtract(_pick(along_rows, column_high, axis=2), first, out=block)
            block *= column_weight
            block += first  # the same along columns
        if self._outside is not None:
            planes[:, self._rows.outside[row_start:row_stop], :] = np.nan
            planes[:, :, self._columns.outside[column_start:column_stop]] = np.nan
        return planes


def _stack_differences(
    planes: FloatArray, out: FloatArray, start: int, stop: int, *, size: int, first: int
) -> None:
    """``out[:, i - start] = planes[:, i + 1 - first] - planes[:, i - 1 - first]``.

    Along axis 1, for the lattice indices ``i`` in ``start:stop`` of an axis of ``size``
    (indices beyond its ends clipped to them); ``planes`` holds that axis from index
    ``first`` on.
    """
    inner = slice(max(start, 1), max(min(stop, size - 1), 1))
    if inner.stop > inner.start:
        np.subtract(
            planes[:, inner.start + 1 - first : inner.stop + 1 - first],
            planes[:, inner.start - 1 - first : inner.stop - 1 - first],
            out=out[:, inner.start - start : inner.stop - start],
        )
    if start == 0 < stop:
        np.subtract(planes[:, min(1, size - 1) - first], planes[:, -first], out=out[:, 0])
    if start <= size - 1 < stop:
        np.subtract(
            planes[:, size - 1 - first],
            planes[:, max(size - 2, 0) - first],
            out=out[:, size - 1 - start],
        )


def _within(strip: slice, start: int, stop: int, size: int) -> slice | None:
    """The part of ``strip`` (a slice of ``range(size)``) in ``start:stop``, from ``start``.

    None when empty.
    """
    first, last, _ = strip.indices(size)
    first, last = max(first, start), min(last, stop)
    return slice(first - start, last - start) if last > first else None


def _nan_strips(rows: _Axis, columns: _Axis) -> list[tuple[int, slice, slice]]:
    """Where :meth:`PlaneDoseSampler.frame_planes` would be NaN: ``(plane, rows, columns)``.

    Beyond the dose grid, and for the differences also next to it along their axis.
    """
    strips = []
    everything = slice(None)
    for k, (row_reach, column_reach) in enumerate([(0, 0), (1, 0), (0, 1)]):
        for axis, reach in ((rows, row_reach), (columns, column_reach)):
            start, stop, size = axis.inside.start, axis.inside.stop, axis.outside.size
            start += reach if start > 0 else 0
            stop = max(stop - (reach if stop < size else 0), 0)
            before, after = slice(0, start), slice(stop, None)
            if axis is rows:
                strips += [(k, before, everything), (k, after, everything)]
            else:
                strips += [(k, everything, before), (k, everything, after)]
    return strips


def _differences(plane: FloatArray, out: FloatArray, start: int, stop: int) -> None:
    """``out[i] = plane[i + 1] - plane[i - 1]`` along axis 0 for ``i`` in ``start:stop``.

    Indices beyond the ends are clipped to them.
    """
    last = plane.shape[0] - 1
    inner = slice(max(start, 1), max(min(stop, last), 1))
    np.subtract(
        plane[inner.start + 1 : inner.stop + 1],
        plane[inner.start - 1 : inner.stop - 1],
        out=out[inner],
    )
    if start == 0 < stop:
        np.subtract(plane[min(1, last)], plane[0], out=out[0])
    if start <= last < stop:
        np.subtract(plane[last], plane[max(last - 1, 0)], out=out[last])


def sample_shifted(dose: DoseGrid, points_mm: FloatArray, shifts_mm: FloatArray) -> FloatArray:
    """Dose (Gy) at ``(M, 3)`` LPS points moved along the dose grid's normal, ``(M, C)``.

    Point ``i`` moved by ``shifts_mm[i, j]`` (mm, ``(M, C)``) gets ``result[i, j]``: the
    trilinear interpolation of :func:`rtmask.dose.sample_dose`, NaN outside the box of the
    dose voxel centres. The copies of a point share its in-plane interpolation, so each
    dose frame a point needs is interpolated in-plane once.
    """
    grid = dose.grid
    flat = np.asarray(dose.dose_gy, dtype=np.float64).reshape(-1)
    result = np.empty(shifts_mm.shape)
    for start in range(0, points_mm.shape[0], _BLOCK_POINTS):
        block = slice(start, start + _BLOCK_POINTS)
        points = points_mm[block]
        in_plane = grid.patient_to_index(points)[:, 1:]
        along = np.einsum("ij,j->i", points, grid.normal)  # not BLAS, whose threads would spin
        slices = grid.slice_index_of((shifts_mm[block].T + along).T)
        result[block] = _shifted_block(flat, grid.shape, in_plane, slices)
    return result


def _shifted_block(
    flat: FloatArray, shape: tuple[int, int, int], in_plane: FloatArray, slices: FloatArray
) -> FloatArray:
    """Trilinear values at ``(M, 2)`` row/column and ``(M, C)`` slice indices, NaN outside."""
    n_frames, n_rows, n_columns = shape
    rows, columns = _axis_at(in_plane[:, 0], n_rows), _axis_at(in_plane[:, 1], n_columns)
    frames = _axis_at(slices, n_frames)
    inside = frames.inside & (rows.inside & columns.inside)[:, None]
    row_step = n_columns if n_rows > 1 else 0
    column_step = 1 if n_columns > 1 else 0
    corner = rows.low * n_columns + columns.low
    first = frames.low[:, 0].copy()
    for column in range(1, frames.low.shape[1]):
        np.minimum(first, frames.low[:, column], out=first)
    # In-plane values of every frame from the lowest one a point needs to the highest.
    offsets = frames.low - first[:, None]
    n_offsets = int(offsets.max()) + 2 if offsets.size else 0
    in_frames = np.empty((n_offsets, first.size))
    for offset in range(n_offsets):
        start = np.minimum(first + offset, n_frames - 1) * (n_rows * n_columns) + corner
        near = _lerp(flat.take(start), flat.take(start + column_step), columns.weight)
        start += row_step
        far = _lerp(flat.take(start), flat.take(start + column_step), columns.weight)
        in_frames[offset] = _lerp(near, far, rows.weight)
    at = offsets * first.size
    at += np.arange(first.size)[:, None]  # (M, C) positions in in_frames
    near = in_frames.reshape(-1).take(at)
    far = in_frames.reshape(-1).take(at + first.size)
    result = _lerp(near, far, frames.weight)
    result[~inside] = np.nan
    return result


@dataclass(frozen=True, slots=True)
class _Interpolation:
    """Lower neighbour, weight and inside flags of fractional indices, each their shape."""

    low: IntArray
    weight: FloatArray
    inside: NDArray[np.bool_]


def _axis_at(position: FloatArray, size: int) -> _Interpolation:
    """Neighbours of fractional indices on an axis of ``size`` (as ``sample_dose``)."""
    inside = (position >= -EDGE_TOLERANCE) & (position <= size - 1 + EDGE_TOLERANCE)
    clipped = np.minimum(np.maximum(position, 0.0), size - 1)
    low = np.minimum(clipped.astype(np.intp), max(size - 2, 0))  # clipped >= 0: floor
    return _Interpolation(low, clipped - low, inside)


def _lerp(first: FloatArray, second: FloatArray, weight: FloatArray) -> FloatArray:
    """``first + weight * (second - first)``, elementwise."""
    result = second - first
    result *= weight
    result += first
    return result
