"""DVH of an ROI in an RT Dose: partial-volume sampling on calculation planes.

Every contour plane stands for a slab along the normal (half-way to its neighbours; the
end planes reach half a gap outward with half-slice end caps). The ROI is rasterised once
per contour plane by :func:`rtmask.raster.rasterize` (fractional: the covered share of
each in-plane voxel) on a lattice with the dose grid's orientation, whose spacing is the
dose grid's or finer for small structures. Each slab is cut into sub-slabs no thicker
than the dose grid's slice spacing; the dose is interpolated trilinearly at every
sub-slab's voxel centres (a blend of two dose frames, then bilinear in-plane:
:class:`PlaneDoseSampler`), and each voxel weighted by covered fraction x voxel volume.
Each sample's volume is spread over the dose range across its voxel (from the local
gradient), which removes the staircase of a grid aligned with the gradient. A partly
covered voxel is sampled where its covered part is: its dose is moved to that part's
centroid along the local gradient and spread over that part only (the rasteriser's
sub-sample moments, :class:`rtmask.raster._partial.PartialVoxels`), so boundary voxels do
not reach beyond the structure and a coarser lattice gives the same accuracy. Dmin and
Dmax come from the fully covered voxels and the contour vertices (on their plane and on
their slab faces), which all lie in the structure.
"""

from __future__ import annotations

import logging
import math
import warnings
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from rtmask._errors import (
    GeometryError,
    GeometryWarning,
    InvalidInputError,
    OnInvalid,
    RtmaskError,
)
from rtmask._limits import MAX_DVH_LATTICE_VOXELS, MAX_DVH_SAMPLES
from rtmask._parallel import ordered_map
from rtmask.dose import DoseGrid
from rtmask.dvh._histogram import DVH, cumulative_curve
from rtmask.dvh._planes import PlaneDoseSampler, sample_shifted
from rtmask.dvh._slabs import EndCaps, slab_faces, uneven_gap_warning
from rtmask.geometry import ImageGrid
from rtmask.raster import CombinationRule, rasterize
from rtmask.raster._partial import PartialVoxels
from rtmask.raster._rasterize import rasterize_with_partial
from rtmask.rtstruct import ROI

__all__ = ["compute_dvh", "compute_dvhs"]

logger = logging.getLogger(__name__)

FloatArray = NDArray[np.float64]

#: In-plane voxels wanted across the largest contour plane when choosing the spacing.
TARGET_PLANE_VOXELS = 1000
#: Finest automatic in-plane spacing, mm.
MIN_SPACING_MM = 0.25
#: Contour planes closer than this (mm) along the normal are one plane.
_MERGE_MM = 0.01
#: Most partial-volume sub-samples per ROI: very large structures (a body outline) get
#: fewer samples per voxel side, down to 1 (the pixel-centre rule); their boundary voxels
#: are a small share of their volume.
MAX_SUBSAMPLES = 8_000_000


@dataclass(frozen=True, slots=True)
class _Contours:
    """The closed contours of an ROI, projected once on the dose grid's axes.

    ``(M, 3)`` vertices of all (LPS mm) and their coordinates along the grid's normal,
    column direction and row direction (mm); ``(K,)`` each, the index of each contour's
    first vertex and its position along the normal (mm, the mean of its vertices').
    """

    points: FloatArray
    along_axes: FloatArray
    starts: NDArray[np.intp]
    positions: FloatArray

    @classmethod
    def of(cls, roi: ROI, grid: ImageGrid) -> _Contours:
        """The closed contours (3 or more vertices) of ``roi``, on the axes of ``grid``."""
        closed = [
            c.points_mm
            for c in roi.contours
            if c.geometric_type.encloses_volume and c.n_points >= 3
        ]
        if not closed:
            raise InvalidInputError(
                f"ROI {roi.number} {roi.name!r} has no closed contour; a DVH needs a "
                "structure that encloses volume"
            )
        points = np.concatenate(closed) if len(closed) > 1 else closed[0]
        counts = np.array([len(c) for c in closed], dtype=np.intp)
        starts = np.cumsum(counts) - counts
        axes = np.stack([grid.normal, grid.column_direction, grid.row_direction])
        along_axes = points @ np.ascontiguousarray(axes.T)
        positions = np.add.reduceat(along_axes[:, 0], starts) / counts
        return cls(points, along_axes, starts, positions)

    @property
    def counts(self) -> NDArray[np.intp]:
        """``(K,)`` vertices of each contour."""
        return np.diff(np.append(self.starts, self.points.shape[0]))

    def planes(self) -> FloatArray:
        """The distinct plane positions along the normal, increasing (mm)."""
        along = np.sort(self.positions)
        keep = np.concatenate([[True], np.diff(along) > _MERGE_MM])
        return np.asarray(along[keep])

    def largest_area(self) -> float:
        """Area of the largest contour (mm2), from the in-plane coordinates."""
        columns, rows = self.along_axes[:, 1], self.along_axes[:, 2]
        following = np.arange(1, columns.size + 1)
        following[np.append(self.starts[1:], columns.size) - 1] = self.starts  # last -> first
        twice = np.add.reduceat(columns * rows[following] - columns[following] * rows, self.starts)
        return float(np.abs(twice).max() / 2)

    def extreme_points(self) -> FloatArray:
        """The ``(6, 3)`` least and greatest vertices along each axis of the grid.

        Their bounding box in the grid's axes is that of all the vertices.
        """
        along = self.along_axes
        extremes = np.concatenate([along.argmin(axis=0), along.argmax(axis=0)])
        return np.asarray(self.points[extremes])


def _plane_lattice(
    dose: DoseGrid,
    planes: FloatArray,
    contours: _Contours,
    resolution_mm: float | None,
) -> ImageGrid:
    """A grid with one slice per contour plane and the dose grid's orientation.

    Automatic spacing: about ``sqrt(largest plane area / TARGET_PLANE_VOXELS)`` (at
    least MIN_SPACING_MM, at most the dose spacing). When the ROI reaches beyond the dose
    grid's outermost voxel centres in-plane, the lattice instead has a whole number of
    voxels per dose spacing, their edges on the dose voxel centres, so that no voxel
    straddles the edge of the dose grid and the outside part is measured exactly.
    """
    grid = dose.grid
    _, dose_row_mm, dose_column_mm = grid.spacing_mm
    extremes = contours.extreme_points()
    if resolution_mm is not None:
        if not resolution_mm > 0:
            raise ValueError(f"resolution_mm must be positive, got {resolution_mm}")
        spacing = float(resolution_mm)
    else:
        largest = contours.largest_area()
        wanted = max(math.sqrt(largest / TARGET_PLANE_VOXELS), MIN_SPACING_MM)
        index = grid.patient_to_index(extremes)[:, 1:]  # (6, [row, column]) dose indices
        if np.any(index < 0) or np.any(index > np.array(grid.shape[1:]) - 1):
            return _aligned_lattice(grid, planes, index, wanted)
        spacing = min(dose_row_mm, dose_column_mm, wanted)
    in_plane_mm = np.ptp(contours.along_axes[:, 1:], axis=0) + 2 * spacing
    _check_lattice_size(planes.size, in_plane_mm / spacing + 1)
    # Only the in-plane part is used: one voxel spans the normal (a grid that is sized).
    along_normal_mm = float(np.ptp(contours.along_axes[:, 0])) + 2 * spacing
    in_plane = ImageGrid.covering(
        extremes,
        spacing_mm=(along_normal_mm, spacing, spacing),
        orientation=grid.orientation,
        margin_mm=spacing,
    )
    return _with_planes(grid, planes, in_plane.origin_mm, (spacing, spacing), in_plane.shape)


def _check_lattice_size(n_planes: int, in_plane: FloatArray) -> None:
    """Refuse a lattice of ``n_planes`` x ``(2,)`` voxels beyond MAX_DVH_LATTICE_VOXELS."""
    if not float(np.prod(in_plane)) * n_planes <= MAX_DVH_LATTICE_VOXELS:
        raise GeometryError(
            f"the calculation grid would have {n_planes} x {in_plane[0]:.3g} x "
            f"{in_plane[1]:.3g} voxels, more than the limit of {MAX_DVH_LATTICE_VOXELS:.3g}"
        )


def _aligned_lattice(
    grid: ImageGrid, planes: FloatArray, index: FloatArray, wanted_mm: float
) -> ImageGrid:
    """A lattice whose voxel edges lie on the dose voxel centres, ``wanted_mm`` or finer.

    ``index``: ``(N, 2)`` dose row and column indices of the ROI's extreme points.
    """
    _, dose_row_mm, dose_column_mm = grid.spacing_mm
    per_voxel = np.maximum(np.ceil(np.array([dose_row_mm, dose_column_mm]) / wanted_mm - 1e-9), 1)
    low = np.floor(index.min(axis=0)) - 1.0  # a dose voxel centre, a voxel beyond the ROI
    high = np.ceil(index.max(axis=0)) + 1.0
    extent = (high - low) * per_voxel  # voxels along rows and columns: sized first
    _check_lattice_size(planes.size, extent)
    shape = np.rint(extent).astype(int)
    first = low + 0.5 / per_voxel  # dose index of the lattice's voxel [0, 0]
    origin = grid.index_to_patient([[0.0, first[0], first[1]]])[0]
    spacing = (dose_row_mm / float(per_voxel[0]), dose_column_mm / float(per_voxel[1]))
    return _with_planes(grid, planes, origin, spacing, (1, int(shape[0]), int(shape[1])))


def _with_planes(
    grid: ImageGrid,
    planes: FloatArray,
    origin: FloatArray,
    spacing: tuple[float, float],
    shape: tuple[int, int, int],
) -> ImageGrid:
    """The in-plane lattice at ``origin`` (LPS mm of voxel [0, 0]) with one slice per plane."""
    normal = grid.normal
    positions = origin[None, :] + np.outer(planes - float(origin @ normal), normal)
    return ImageGrid.from_slices(
        positions_mm=positions,
        orientation=grid.orientation,
        pixel_spacing_mm=spacing,
        rows=shape[1],
        columns=shape[2],
        frame_of_reference_uid=grid.frame_of_reference_uid,
    )


def _check_samples(
    label: str, fractions: NDArray[np.generic], thickness_mm: FloatArray, sub_slab_mm: float
) -> None:
    """Refuse an ROI whose dose samples (covered voxels x sub-slabs) exceed the limit.

    Each slab is sampled in sub-slabs no thicker than ``sub_slab_mm`` (:func:`_sample`):
    contour planes absurdly far apart would make billions.
    """
    sub_slabs = np.maximum(np.ceil(thickness_mm / sub_slab_mm - 1e-9), 1)
    if float(sub_slabs.sum()) * fractions.shape[1] * fractions.shape[2] <= MAX_DVH_SAMPLES:
        return  # even a fully covered lattice is small enough: no need to count
    covered = np.count_nonzero(fractions.reshape(fractions.shape[0], -1), axis=1)
    samples = float(sub_slabs @ covered)
    if samples > MAX_DVH_SAMPLES:
        raise InvalidInputError(
            f"{label}: no DVH: its slabs (up to {float(thickness_mm.max()):.4g} mm thick) "
            f"cut into dose frames need {samples:.3g} dose samples, more than the limit of "
            f"{MAX_DVH_SAMPLES:.3g}; check the positions of its contour planes"
        )


def _samples_per_side(samples: int, lattice: ImageGrid) -> int:
    """``samples``, reduced so that a lattice gets at most MAX_SUBSAMPLES sub-samples."""
    voxels = math.prod(lattice.shape)
    affordable = math.isqrt(max(1, MAX_SUBSAMPLES // max(1, voxels)))
    return max(1, min(samples, affordable))


def _boundary_range(
    dose: DoseGrid, contours: _Contours, planes: FloatArray, lower: FloatArray, upper: FloatArray
) -> tuple[float, float] | None:
    """Least and greatest dose (Gy) at the contour vertices inside the dose grid.

    Each vertex on its plane and moved to both faces of its slab. None when every vertex
    lies outside the dose grid.
    """
    positions = contours.positions
    k = np.abs(positions[:, None] - planes[None, :]).argmin(axis=1)
    shifts = np.column_stack([np.zeros(k.size), lower[k] - positions, upper[k] - positions])
    moved = np.repeat(shifts, contours.counts, axis=0)
    doses = sample_shifted(dose, contours.points, moved)
    inside = doses[~np.isnan(doses)]
    return (float(inside.min()), float(inside.max())) if inside.size else None


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


def compute_dvh(
    roi: ROI,
    dose: DoseGrid,
    *,
    resolution_mm: float | None = None,
    samples: int = 4,
    end_caps: EndCaps | str = EndCaps.HALF,
    rule: CombinationRule | str = CombinationRule.AUTO,
    bin_width_gy: float = 0.01,
    count_outside: bool = False,
    prescription_gy: float | None = None,
    on_invalid: OnInvalid = "warn",
) -> DVH:
    """Cumulative DVH of an ROI in a dose grid (no image needed).

    Parameters
    ----------
    roi
        The ROI; its closed contours must be parallel to the dose grid's planes.
    dose
        The dose in Gy with its grid (same frame of reference as the ROI).
    resolution_mm
        In-plane spacing of the calculation grid, mm. Default: the dose grid's spacing,
        or finer (down to 0.25 mm) so that the largest contour plane holds about
        TARGET_PLANE_VOXELS (1000) voxels; for a structure reaching beyond the dose grid
        in-plane, a whole number of voxels per dose voxel, their edges on the dose voxel
        centres (the outside part is then measured exactly).
    samples
        Partial-volume samples per voxel side (``samples`` x ``samples`` per voxel);
        structures so large that this would exceed MAX_SUBSAMPLES sub-samples get fewer.
    end_caps
        ``"half"`` (default): the end planes reach half a gap outward; ``"none"``: the
        structure ends at its first and last contour planes (:class:`EndCaps`).
    rule
        Combination of several contours on one plane, as :func:`rtmask.raster.rasterize`.
    bin_width_gy
        Dose bin width of the curve, Gy.
    count_outside
        Count the part of the ROI outside the dose grid at 0 Gy (default: leave it out);
        it is reported in ``DVH.outside_cm3`` and a :class:`GeometryWarning` either way.
    prescription_gy
        Prescription dose, stored in the DVH for relative doses and V<x>% statistics.
    on_invalid
        Contours the rasteriser leaves out: ``"warn"``, ``"ignore"`` or ``"raise"``.

    Returns
    -------
    DVH
        The cumulative curve with Dmin, Dmax, Dmean and the outside volume.

    Warns
    -----
    GeometryWarning
        Part of the ROI lies outside the dose grid, or a gap between its contour planes
        is unusually wide (:func:`~rtmask.dvh._slabs.uneven_gap_warning`); both are in
        ``DVH.warnings`` too.
    """
    end_caps = EndCaps(end_caps)
    if samples < 1:
        raise ValueError(f"samples must be a positive number, got {samples}")
    contours = _Contours.of(roi, dose.grid)
    planes = contours.planes()
    frame_mm = float(dose.grid.spacing_mm[0])
    lower, upper = slab_faces(planes, end_caps, frame_mm)
    label = f"ROI {roi.number} {roi.name!r}"
    try:  # sized before anything is allocated
        lattice = _plane_lattice(dose, planes, contours, resolution_mm)
    except GeometryError as error:
        span = float(np.ptp(contours.along_axes[:, 1:], axis=0).max())
        raise InvalidInputError(
            f"{label}: no DVH: {error}; the structure spans {span:.4g} mm in-plane - check "
            "its coordinates, or give a coarser resolution_mm"
        ) from error
    boundary = _boundary_range(dose, contours, planes, lower, upper)
    del contours  # every vertex is done with: memory for the samples
    per_side = _samples_per_side(samples, lattice)
    options: dict[str, Any] = {
        "rule": rule,
        "slice_mode": "exact",
        "plane_tolerance_mm": max(_MERGE_MM, 0.5 * float(np.min(upper - lower))),
        "on_invalid": on_invalid,
    }
    partial: PartialVoxels | None = None
    if per_side > 1:
        mask, partial = rasterize_with_partial(roi, lattice, fractional=per_side, **options)
    else:  # 1 sample: the binary mask
        mask = rasterize(roi, lattice, **options)
    sub_slab_mm = frame_mm if dose.grid.shape[0] > 1 else math.inf
    _check_samples(label, mask.array, upper - lower, sub_slab_mm)
    messages = list(mask.warnings)
    gap_warning = uneven_gap_warning(planes, label)
    if gap_warning is not None:
        messages.append(gap_warning)
        warnings.warn(gap_warning, GeometryWarning, stacklevel=2)
    found = _sample(dose, lattice, mask.array, lower, upper, partial=partial)
    if found.doses.size == 0:
        raise InvalidInputError(
            f"{label}: no calculation voxel lies in the structure; give a finer resolution_mm"
        )
    outside = np.isnan(found.doses)
    any_outside = bool(outside.any())
    outside_cm3 = float(found.weights[outside].sum()) if any_outside else 0.0
    total_cm3 = float(found.weights.sum())
    if outside_cm3 > 0:
        share = 100.0 * outside_cm3 / total_cm3
        action = "counted at 0 Gy" if count_outside else "left out of the DVH"
        messages.append(
            f"{label}: {outside_cm3:.3f} cm3 ({share:.1f} %) lies outside the dose grid "
            f"and is {action}"
        )
        warnings.warn(messages[-1], GeometryWarning, stacklevel=2)
    doses, weights, spreads, full = found.doses, found.weights, found.spreads, found.full
    used_cm3 = total_cm3
    if any_outside:  # counted at 0 Gy, or left out with no volume (and never the extremes)
        if not count_outside and outside.all():
            raise InvalidInputError(
                f"{label} lies entirely outside the dose grid of {dose.source or 'the dose'}; "
                "check that both belong to one frame of reference, or use count_outside=True"
            )
        np.copyto(doses, 0.0, where=outside)
        if not count_outside:
            np.copyto(weights, 0.0, where=outside)
            np.copyto(full, False, where=outside)
            used_cm3 = float(weights.sum())
    if count_outside and any_outside:  # 0 Gy is one of the doses
        boundary = (min(boundary[0], 0.0), max(boundary[1], 0.0)) if boundary else (0.0, 0.0)
    # Extremes over the fully covered voxels (or all used ones) and the boundary.
    used: NDArray[np.bool_] | bool = full if np.any(full) else True
    if used is True and any_outside and not count_outside:
        used = ~outside
    extremes = (
        float(np.min(doses, where=used, initial=np.inf)),
        float(np.max(doses, where=used, initial=-np.inf)),
    )
    if boundary is not None:
        extremes = (min(extremes[0], boundary[0]), max(extremes[1], boundary[1]))
    try:
        edges, curve = cumulative_curve(
            doses, weights, bin_width_gy=bin_width_gy, spreads_gy=spreads
        )
    except InvalidInputError as error:
        raise InvalidInputError(f"{label}: {error}") from error
    for message in messages:
        logger.debug(message)
    return DVH(
        dose_gy=edges,
        volume_cm3=curve,
        min_gy=float(extremes[0]),
        max_gy=float(extremes[1]),
        mean_gy=float(np.einsum("i,i->", doses, weights) / used_cm3),  # no BLAS threads
        roi_number=roi.number,
        roi_name=roi.name,
        color=roi.color,
        prescription_gy=prescription_gy,
        outside_cm3=outside_cm3,
        warnings=tuple(messages),
    )


def compute_dvhs(
    rois: Iterable[ROI],
    dose: DoseGrid,
    *,
    workers: int = 1,
    **options: Any,
) -> Iterator[DVH | RtmaskError]:
    """:func:`compute_dvh` for several ROIs, yielded in ROI order.

    ``options`` are :func:`compute_dvh`'s keyword arguments. An ROI whose DVH cannot be
    computed yields its :class:`RtmaskError` instead, so one bad ROI never stops the rest.
    ``workers`` threads compute ROIs at once. The default is one: the sampling is many
    numpy calls on arrays of a few thousand to tens of thousands of values, between which
    the interpreter lock is held, and on two CPUs two threads were slower than one both
    on the breast plan (0.18 s against 0.165 s) and on the small analytic cases (by 20-80 %).
    """

    def one(roi: ROI) -> DVH | RtmaskError:
        try:
            return compute_dvh(roi, dose, **options)
        except RtmaskError as error:
            return error

    yield from ordered_map(one, rois, workers)
