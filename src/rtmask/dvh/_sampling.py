"""Sampling the dose in an ROI's calculation voxels: sub-slabs, chunks, frame planes.

The machinery of :func:`rtmask.dvh.compute_dvh` (see :mod:`rtmask.dvh._compute` for the
method): :func:`_sample` cuts every contour plane's slab into sub-slabs no thicker than
the dose grid's slice spacing, interpolates the dose (a blend of two dose frames, then
bilinear in-plane, :class:`PlaneDoseSampler`) at the covered voxels of every sub-slab in
chunks of a few thousand samples, and returns each sample's dose, weight (covered
fraction x voxel volume) and spread across its voxel.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from rtmask.dose import DoseGrid
from rtmask.dvh._planes import PlaneDoseSampler
from rtmask.geometry import ImageGrid
from rtmask.raster._partial import PartialVoxels

__all__ = ["_sample"]

FloatArray = NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class _Samples:
    """Dose samples of an ROI, ``(N,)`` each.

    Dose (Gy, NaN outside the dose grid), volume (cm3), dose spread across the voxel (Gy)
    and whether the voxel is fully covered.
    """

    doses: FloatArray
    weights: FloatArray
    spreads: FloatArray
    full: NDArray[np.bool_]


@dataclass(frozen=True, slots=True)
class _Frames:
    """Dose frames of plane positions, ``(S,)`` each.

    The plane at position ``s`` is ``(1 - weight[s])`` x frame ``low[s]`` + ``weight[s]``
    x frame ``high[s]``, or NaN where not ``inside`` (see
    :meth:`PlaneDoseSampler.frame_indices`).
    """

    low: NDArray[np.intp]
    high: NDArray[np.intp]
    weight: FloatArray
    inside: NDArray[np.bool_]

    @classmethod
    def at(cls, sampler: PlaneDoseSampler, positions_mm: FloatArray) -> _Frames:
        """The frames of ``(S,)`` positions along the normal, mm."""
        low, high, weight, inside = sampler.frame_indices(positions_mm)
        return cls(low, high, weight, inside)


@dataclass(frozen=True, slots=True)
class _SubSlabs:
    """The sub-slabs of all contour planes, ``(S,)`` each, in plane order.

    Contour plane index, thickness (mm), and the dose frames of the centre and of the
    lower and upper face; per sub-slab, the dose frames it blends where it lies inside
    the dose grid.
    """

    plane: NDArray[np.intp]
    step_mm: FloatArray
    centre: _Frames
    lower: _Frames
    upper: _Frames
    used: list[set[int]]

    @classmethod
    def of(
        cls, sampler: PlaneDoseSampler, lower: FloatArray, upper: FloatArray, frame_mm: float
    ) -> _SubSlabs:
        """Cut every slab into sub-slabs no thicker than ``frame_mm``."""
        thickness = upper - lower
        n_sub = np.maximum(np.ceil(thickness / frame_mm - 1e-9), 1).astype(np.intp)
        plane = np.repeat(np.arange(lower.size), n_sub)
        steps = (thickness / n_sub)[plane]
        within = np.arange(plane.size) - (np.cumsum(n_sub) - n_sub)[plane]  # 0 .. n_sub - 1
        centres = lower[plane] + (within + 0.5) * steps
        positions = (centres, centres - steps / 2, centres + steps / 2)
        at = [_Frames.at(sampler, position) for position in positions]
        used: list[set[int]] = [set() for _ in range(plane.size)]
        for where in at:
            inside = np.flatnonzero(where.inside)
            lows, highs = where.low[inside].tolist(), where.high[inside].tolist()
            for s, low, high in zip(inside.tolist(), lows, highs, strict=True):
                used[s].update((low, high))
        centre_at, lower_at, upper_at = at
        return cls(plane, steps, centre_at, lower_at, upper_at, used)

    def lowest_frame(self, first: int, last: int) -> int:
        """The lowest dose frame that sub-slabs ``first:last`` use."""
        return min(int(where.low[first:last].min()) for where in (self.lower, self.centre))


def _sample(
    dose: DoseGrid,
    lattice: ImageGrid,
    fractions: NDArray[np.float32] | NDArray[np.bool_],
    lower: FloatArray,
    upper: FloatArray,
    *,
    partial: PartialVoxels | None = None,
) -> _Samples:
    """Sample the dose in every covered voxel of every sub-slab of every contour plane.

    ``fractions``: ``(planes, rows, columns)`` covered share of each lattice voxel
    (float32, or bool for whole voxels); ``partial``: where the partly covered ones are
    covered (their dose is taken at the centroid of the covered part and spread over
    that part only). Each dose frame's lattice planes are interpolated
    once (:meth:`PlaneDoseSampler.frame_planes`), where covered voxels need them; the
    samples of many sub-slabs at a time gather the planes of their frames and blend
    them. Samples are ordered by sub-slab (so by plane), then voxel.
    """
    sampler = PlaneDoseSampler(dose, lattice)
    frame_mm = float(dose.grid.spacing_mm[0]) if dose.grid.shape[0] > 1 else math.inf
    area_cm2 = lattice.spacing_mm[1] * lattice.spacing_mm[2] / 100.0
    slabs = _SubSlabs.of(sampler, lower, upper, frame_mm)
    covered = _Covered.of(fractions, partial)
    per_slab = covered.counts[slabs.plane]  # (S,) samples of each sub-slab
    total = int(per_slab.sum())
    found = _Samples(np.empty(total), np.empty(total), np.empty(total), np.empty(total, dtype=bool))
    boxes = _frame_boxes(slabs, covered)
    plane_shape = (fractions.shape[1], fractions.shape[2])
    frames = _FramePlanes(sampler, boxes, plane_shape, dose.grid.shape[0])
    at = 0  # first sample of the chunk
    for first, last in _chunks(per_slab):
        frames.forget_below(slabs.lowest_frame(first, last))
        chunk = _Chunk.of(covered, slabs, per_slab, first, last)
        out = slice(at, at + chunk.voxels.size)
        step_cm3 = chunk.each(slabs.step_mm) * (area_cm2 / 10.0)
        np.multiply(chunk.fractions, step_cm3, out=found.weights[out])
        np.greater_equal(chunk.fractions, 1.0, out=found.full[out])
        _dose_and_spread(frames, slabs, chunk, found.doses[out], found.spreads[out])
        at = out.stop
    return found


#: Lattice rows and columns ``(first row, last row + 1, first column, last column + 1)``.
_Box = tuple[int, int, int, int]

#: Samples computed together: bounds the ``(n,)`` temporaries of a chunk (about 20 of
#: 64 kB), which the allocator recycles from chunk to chunk. Larger chunks were no
#: faster, and their memory went back to the kernel and was faulted in again.
_CHUNK_SAMPLES = 1 << 13
#: Sub-slabs with this many samples are sampled one at a time: their frames' planes are
#: gathered at the plane's voxels directly, and shared by the centre and the faces.
_SINGLE_SAMPLES = 4096


@dataclass(frozen=True, slots=True)
class _Covered:
    """The covered voxels of the lattice planes, in plane order, ``(N,)`` each.

    Flat in-plane index and covered fraction of each, and the position of its moments
    in ``moments`` (``(5, n_partial)``, see :class:`PartialVoxels`; -1 for a voxel
    without); per plane ``(P,)`` the first voxel's position and the count; per plane the
    rows and columns they span (first, last + 1 of each; None for an empty plane).
    """

    voxels: NDArray[np.intp]
    fractions: FloatArray
    starts: NDArray[np.intp]
    counts: NDArray[np.intp]
    boxes: list[_Box | None]
    partial_of: NDArray[np.intp]
    moments: FloatArray

    @classmethod
    def of(
        cls,
        fractions: NDArray[np.float32] | NDArray[np.bool_],
        partial: PartialVoxels | None = None,
    ) -> _Covered:
        """The covered voxels of ``(planes, rows, columns)`` fractions."""
        n_planes = fractions.shape[0]
        flat = fractions.reshape(-1)
        found = np.flatnonzero(flat)
        plane_size = fractions[0].size
        counts = np.count_nonzero(fractions.reshape(n_planes, -1), axis=1)
        starts = np.cumsum(counts) - counts
        voxels = found - np.repeat(np.arange(n_planes) * plane_size, counts)
        # Each plane's box from where its rows and columns hold covered voxels.
        rows_used: NDArray[np.bool_] = np.asarray(fractions.any(axis=2))  # (planes, rows)
        columns_used: NDArray[np.bool_] = np.asarray(fractions.any(axis=1))  # (planes, columns)
        boxes: list[_Box | None] = [None] * n_planes
        used = np.flatnonzero(counts)
        if used.size:
            rows_used, columns_used = rows_used[used], columns_used[used]
            n_rows, n_columns = rows_used.shape[1], columns_used.shape[1]
            low_rows = rows_used.argmax(axis=1)
            high_rows = n_rows - rows_used[:, ::-1].argmax(axis=1)
            low_columns = columns_used.argmax(axis=1)
            high_columns = n_columns - columns_used[:, ::-1].argmax(axis=1)
            for k, box in zip(
                used.tolist(),
                zip(
                    low_rows.tolist(),
                    high_rows.tolist(),
                    low_columns.tolist(),
                    high_columns.tolist(),
                    strict=True,
                ),
                strict=True,
            ):
                boxes[k] = box
        values = flat[found].astype(np.float64)
        partial_of = np.full(found.size, -1, dtype=np.intp)
        moments = np.empty((5, 0))
        if partial is not None and partial.by_slice:
            planes = sorted(partial.by_slice)
            at = np.concatenate([k * plane_size + partial.by_slice[k][0] for k in planes])
            moments = np.concatenate([partial.by_slice[k][1] for k in planes], axis=1)
            partial_of[np.searchsorted(found, at)] = np.arange(at.size)
        return cls(voxels, values, starts, counts, boxes, partial_of, moments.astype(np.float64))


def _chunks(per_slab: NDArray[np.intp]) -> Iterator[tuple[int, int]]:
    """``(first, last)`` runs of sub-slabs of about _CHUNK_SAMPLES samples (at least one).

    A sub-slab of _SINGLE_SAMPLES or more is a chunk of its own.
    """
    first, size = 0, 0
    for s, count in enumerate(per_slab.tolist()):
        if size and (size + count > _CHUNK_SAMPLES or count >= _SINGLE_SAMPLES):
            yield first, s
            first, size = s, 0
        size += count
    if first < per_slab.size:
        yield first, per_slab.size


@dataclass(frozen=True, slots=True)
class _Chunk:
    """The samples of sub-slabs ``first:last``, ``(n,)`` each.

    Sub-slab (of several; empty for a single one), flat in-plane voxel index and covered
    fraction of each sample; the samples of partly covered voxels (``(m,)`` positions)
    and their ``(5, m)`` moments; the sub-slabs ``first:last``.
    """

    sub: NDArray[np.intp]
    voxels: NDArray[np.intp]
    fractions: FloatArray
    partial: NDArray[np.intp]
    moments: FloatArray
    first: int
    last: int

    @property
    def single(self) -> int | None:
        """The sub-slab when the chunk has only one."""
        return self.first if self.last == self.first + 1 else None

    def each(self, per_slab: NDArray[Any]) -> Any:
        """A per-sub-slab ``(S,)`` array's values at the samples.

        ``(n,)``, or a scalar for a single sub-slab.
        """
        return per_slab[self.first] if self.last == self.first + 1 else per_slab[self.sub]

    @classmethod
    def of(
        cls,
        covered: _Covered,
        slabs: _SubSlabs,
        per_slab: NDArray[np.intp],
        first: int,
        last: int,
    ) -> _Chunk:
        counts = per_slab[first:last]
        where: NDArray[np.intp] | slice
        if last == first + 1:  # the plane's run of covered voxels
            sub = np.empty(0, dtype=np.intp)
            start = int(covered.starts[slabs.plane[first]])
            where = slice(start, start + int(counts[0]))
        else:
            sub = np.repeat(np.arange(first, last), counts)
            # The position of each sample in its plane's run of covered voxels.
            rank = np.arange(sub.size) - np.repeat(np.cumsum(counts) - counts, counts)
            where = covered.starts[slabs.plane[sub]] + rank
        moments_at = covered.partial_of[where]
        partial = np.flatnonzero(moments_at >= 0)
        moments = covered.moments[:, moments_at[partial]]
        voxels, fractions = covered.voxels[where], covered.fractions[where]
        return cls(sub, voxels, fractions, partial, moments, first, last)


def _dose_and_spread(
    frames: _FramePlanes, slabs: _SubSlabs, chunk: _Chunk, doses: FloatArray, spreads: FloatArray
) -> None:
    """Dose and spread at a chunk's samples, Gy, ``(n,)`` each.

    Written to ``doses`` (NaN outside the dose grid) and ``spreads``. The spread is the
    root sum of squares of the central differences across the voxel in rows and columns
    and of the difference between the sub-slab's faces; parts that would need a point
    outside the dose grid count as 0. Faces between the same two frames as the centre
    reuse its frames' values.
    """
    frames.load(slabs, chunk.first, chunk.last)
    values = _ChunkValues(frames, chunk)
    low = values.planes(slabs.centre.low)  # (3, n)
    step = values.planes(slabs.centre.high) - low  # from the frame below to the one above
    centre = step * chunk.each(slabs.centre.weight)
    centre += low
    doses[...] = centre[0]
    np.multiply(centre[1], centre[1], out=spreads)
    spreads += centre[2] * centre[2]
    spreads *= 0.25  # rows 1 and 2 hold twice the central differences
    if chunk.partial.size:
        _at_covered_part(chunk, centre, doses, spreads)
    along = step[0]
    along *= chunk.each(slabs.upper.weight - slabs.lower.weight)
    shared = (slabs.lower.low == slabs.centre.low) & (slabs.upper.low == slabs.centre.low)
    if not np.all(chunk.each(shared)):
        other = np.flatnonzero(np.broadcast_to(~chunk.each(shared), along.shape))
        along[other] = values.blend(slabs.upper, other) - values.blend(slabs.lower, other)
    faces = np.broadcast_to(chunk.each(slabs.lower.inside & slabs.upper.inside), along.shape)
    if not faces.all():
        along[~faces] = 0.0
    along *= along
    spreads += along
    inside = np.broadcast_to(chunk.each(slabs.centre.inside), along.shape)
    if not inside.all():
        doses[~inside] = np.nan
        spreads[~inside] = along[~inside]
    outside = frames.sampler.outside
    if outside is not None:
        doses[outside[chunk.voxels]] = np.nan
    np.sqrt(spreads, out=spreads)


class _ChunkValues:
    """The frame planes a chunk's samples use, gathered at its voxels.

    For a chunk of a single sub-slab, each frame's planes are taken at the plane's
    voxels once and shared by the centre and the faces.
    """

    def __init__(self, frames: _FramePlanes, chunk: _Chunk) -> None:
        self._frames = frames
        self._chunk = chunk
        self._taken: dict[int, FloatArray] = {}  # frame: (rows, n), single sub-slab only

    def planes(self, frame_of: NDArray[np.intp], rows: int = 3) -> FloatArray:
        """``(rows, n)``: sub-slab ``s`` uses frame ``frame_of[s]``. Not to be modified."""
        chunk = self._chunk
        if chunk.single is None:
            return self._frames.gather(frame_of, chunk.sub, chunk.voxels)[:rows]
        frame = int(frame_of[chunk.single])
        taken = self._taken.get(frame)
        if taken is None or taken.shape[0] < rows:
            taken = self._frames.planes_of(frame)[:rows].take(chunk.voxels, axis=1)
            self._taken[frame] = taken
        return taken[:rows]

    def blend(self, where: _Frames, samples: NDArray[np.intp]) -> FloatArray:
        """``(m,)`` dose (Gy) of ``samples`` (positions in the chunk) on positions ``where``."""
        chunk = self._chunk
        if chunk.single is None:
            return self._frames.blend(where, chunk.sub[samples], chunk.voxels[samples])
        weight = float(where.weight[chunk.single])
        below = self.planes(where.low, rows=1)[0]
        above = self.planes(where.high, rows=1)[0]
        return np.asarray((below + weight * (above - below))[samples])


def _at_covered_part(
    chunk: _Chunk, centre: FloatArray, doses: FloatArray, spreads: FloatArray
) -> None:
    """Move the partly covered voxels' samples to the covered part of the voxel.

    The dose goes to the part's centroid (along the voxel's dose gradient), and the
    squared spread (without the faces' share) becomes 12 x the dose variance over the
    part: a uniform spread of the same variance, which for a whole voxel is the usual
    squared gradient across it.
    """
    partial = chunk.partial
    row_shift, column_shift, row_variance, column_variance, covariance = chunk.moments
    along_rows = centre[1, partial] * 0.5  # Gy per lattice row
    along_columns = centre[2, partial] * 0.5
    doses[partial] += row_shift * along_rows + column_shift * along_columns
    variance = along_rows * along_rows * row_variance
    variance += along_columns * along_columns * column_variance
    variance += 2.0 * along_rows * along_columns * covariance
    spreads[partial] = 12.0 * np.maximum(variance, 0.0)


def _frame_boxes(slabs: _SubSlabs, covered: _Covered) -> dict[int, _Box]:
    """The lattice rows and columns covered on the planes that use each dose frame.

    Only there are the frame's planes needed.
    """
    boxes: dict[int, _Box] = {}
    for s, k in enumerate(slabs.plane.tolist()):
        box = covered.boxes[k]
        if box is None:
            continue
        for frame in slabs.used[s]:
            old = boxes.get(frame, box)
            boxes[frame] = (
                min(old[0], box[0]),
                max(old[1], box[1]),
                min(old[2], box[2]),
                max(old[3], box[3]),
            )
    return boxes


class _FramePlanes:
    """The ``(3, rows * columns)`` :meth:`PlaneDoseSampler.frame_planes` in use.

    Held in the slots of one array, so that samples of several frames gather from it at
    once; slots of frames no longer needed are reused.
    """

    def __init__(
        self,
        sampler: PlaneDoseSampler,
        boxes: dict[int, _Box],
        plane_shape: tuple[int, int],
        n_frames: int,
    ) -> None:
        self.sampler = sampler
        self._boxes = boxes  # the part of each frame's planes in use
        self._plane_shape = plane_shape
        self._whole: _Box = (0, plane_shape[0], 0, plane_shape[1])
        plane_size = plane_shape[0] * plane_shape[1]
        self._plane_size = plane_size
        self._slots = np.zeros((1, 3, plane_size))  # slot 0 also serves frames not loaded
        self._slot_of: dict[int, int] = {}
        self._free: list[int] = [0]
        #: ``(frames,)`` the slot of every dose frame (0 for a frame not loaded).
        self.slot = np.zeros(n_frames, dtype=np.intp)

    def load(self, slabs: _SubSlabs, first: int, last: int) -> None:
        """Make sure the frames that sub-slabs ``first:last`` blend are in their slots."""
        missing = sorted(set().union(*slabs.used[first:last]) - self._slot_of.keys())
        if not missing:
            return
        if len(missing) > len(self._free):
            self._grow(len(missing) - len(self._free))
        slots = [self._free.pop() for _ in missing]
        # All at once, on the union of their boxes.
        boxes = [self._boxes.get(frame, self._whole) for frame in missing]
        box = (
            min(b[0] for b in boxes),
            max(b[1] for b in boxes),
            min(b[2] for b in boxes),
            max(b[3] for b in boxes),
        )
        rows, columns = slice(box[0], box[1]), slice(box[2], box[3])
        shaped = self._slots.reshape(self._slots.shape[0], 3, *self._plane_shape)
        shaped[slots, :, rows, columns] = self.sampler.frames_planes(missing, box)
        for frame, slot in zip(missing, slots, strict=True):
            self._slot_of[frame] = slot
            self.slot[frame] = slot

    def _grow(self, at_least: int) -> None:
        """Add ``at_least`` slots or more (at least doubling them), in one reallocation."""
        old = self._slots.shape[0]
        grown = np.zeros((old + max(old, at_least), 3, self._plane_size))
        grown[:old] = self._slots
        self._slots = grown
        self._free.extend(range(grown.shape[0] - 1, old - 1, -1))

    def forget_below(self, frame: int) -> None:
        """Free the slots of frames below ``frame`` (no longer needed)."""
        for old in [old for old in self._slot_of if old < frame]:
            self._free.append(self._slot_of.pop(old))

    def planes_of(self, frame: int) -> FloatArray:
        """``(3, rows * columns)`` planes of a loaded frame."""
        return np.asarray(self._slots[self.slot[frame]])

    def gather(
        self, frame_of: NDArray[np.intp], sub: NDArray[np.intp], voxels: NDArray[np.intp]
    ) -> FloatArray:
        """``(3, n)`` frame planes at samples: sub-slab ``sub`` uses frame ``frame_of[sub]``.

        Row 0 the dose, rows 1 and 2 its differences along lattice rows and columns
        (:meth:`PlaneDoseSampler.frame_planes`), at in-plane voxels ``voxels``.
        """
        size = self._plane_size
        first = self.slot[frame_of][sub] * (3 * size) + voxels
        index = first[None, :] + np.array([[0], [size], [2 * size]])
        return np.asarray(self._slots.reshape(-1).take(index))

    def blend(self, where: _Frames, sub: NDArray[np.intp], voxels: NDArray[np.intp]) -> FloatArray:
        """``(n,)`` dose (Gy) at samples on positions ``where``: a blend of two frames."""
        flat = self._slots.reshape(-1)
        stride = 3 * self._plane_size
        below = flat.take(self.slot[where.low[sub]] * stride + voxels)
        above = flat.take(self.slot[where.high[sub]] * stride + voxels)
        above -= below
        above *= where.weight[sub]
        above += below
        return above
