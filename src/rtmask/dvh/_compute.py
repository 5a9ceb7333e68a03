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
gradient), which removes the staircase of a grid aligned with the gradient. Dmin and
Dmax come from the fully covered voxels and the contour vertices (on their plane and on
their slab faces), which all lie in the structure.
"""

from __future__ import annotations

import itertools
import logging
import math
import warnings
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from rtmask._errors import GeometryWarning, InvalidInputError, OnInvalid, RtmaskError
from rtmask._parallel import default_workers, ordered_map
from rtmask.dose import DoseGrid
from rtmask.dvh._histogram import DVH, cumulative_curve
from rtmask.dvh._planes import PlaneDoseSampler, sample_shifted
from rtmask.dvh._slabs import EndCaps, slab_faces, uneven_gap_warning
from rtmask.geometry import ImageGrid
from rtmask.raster import CombinationRule, rasterize
from rtmask.rtstruct import ROI

__all__ = ["compute_dvh", "compute_dvhs"]

logger = logging.getLogger(__name__)

FloatArray = NDArray[np.float64]

#: In-plane voxels wanted across the largest contour plane when choosing the spacing.
TARGET_PLANE_VOXELS = 2000
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
    """The closed contours of an ROI.

    ``(M, 3)`` vertices of all (LPS mm) and, ``(K,)`` each, the index of each contour's
    first vertex and its position along the normal (mm).
    """

    points: FloatArray
    starts: NDArray[np.intp]
    positions: FloatArray

    @property
    def counts(self) -> NDArray[np.intp]:
        """``(K,)`` vertices of each contour."""
        return np.diff(np.append(self.starts, self.points.shape[0]))


def _plane_positions(roi: ROI, normal: FloatArray) -> tuple[FloatArray, _Contours]:
    """Distinct contour plane positions along ``normal`` (increasing) and the contours."""
    closed = [
        c.points_mm for c in roi.contours if c.geometric_type.encloses_volume and c.n_points >= 3
    ]
    if not closed:
        raise InvalidInputError(
            f"ROI {roi.number} {roi.name!r} has no closed contour; a DVH needs a structure "
            "that encloses volume"
        )
    positions = np.array([float((points @ normal).mean()) for points in closed])
    along = np.sort(positions)
    keep = np.concatenate([[True], np.diff(along) > _MERGE_MM])
    starts = np.cumsum([0, *(len(points) for points in closed[:-1])])
    return np.asarray(along[keep]), _Contours(np.concatenate(closed), starts, positions)


def _largest_area(contours: _Contours, normal: FloatArray) -> float:
    """Area of the largest of the planar contours with unit normal ``normal``, mm2."""
    points, starts = contours.points, contours.starts
    following = np.arange(1, points.shape[0] + 1)
    following[np.append(starts[1:], points.shape[0]) - 1] = starts  # last vertex -> first
    twice = np.add.reduceat(np.cross(points, points[following]), starts, axis=0) @ normal
    return float(np.abs(twice).max() / 2)


def _extreme_points(points: FloatArray, grid: ImageGrid) -> FloatArray:
    """The ``(6, 3)`` least and greatest of ``(M, 3)`` points along each axis of ``grid``.

    Their bounding box in the grid's axes is that of all the points.
    """
    axes = np.stack([grid.normal, grid.column_direction, grid.row_direction])
    coordinates = np.einsum("ij,nj->in", axes, points)  # (3, M), without BLAS threads
    extremes = np.concatenate([coordinates.argmin(axis=1), coordinates.argmax(axis=1)])
    return np.asarray(points[extremes])


def _plane_lattice(
    dose: DoseGrid,
    planes: FloatArray,
    contours: _Contours,
    resolution_mm: float | None,
) -> ImageGrid:
    """A grid with one slice per contour plane and the dose grid's orientation."""
    grid = dose.grid
    normal = grid.normal
    _, dose_row_mm, dose_column_mm = grid.spacing_mm
    if resolution_mm is not None:
        if not resolution_mm > 0:
            raise ValueError(f"resolution_mm must be positive, got {resolution_mm}")
        spacing = float(resolution_mm)
    else:
        largest = _largest_area(contours, normal)
        wanted = math.sqrt(largest / TARGET_PLANE_VOXELS)
        spacing = min(dose_row_mm, dose_column_mm, max(wanted, MIN_SPACING_MM))
    in_plane = ImageGrid.covering(
        _extreme_points(contours.points, grid),
        spacing_mm=(spacing, spacing, spacing),
        orientation=grid.orientation,
        margin_mm=spacing,
    )
    origin = in_plane.origin_mm
    positions = origin[None, :] + np.outer(planes - float(origin @ normal), normal)
    return ImageGrid.from_slices(
        positions_mm=positions,
        orientation=grid.orientation,
        pixel_spacing_mm=(spacing, spacing),
        rows=in_plane.shape[1],
        columns=in_plane.shape[2],
        frame_of_reference_uid=grid.frame_of_reference_uid,
    )


def _samples_per_side(samples: int, lattice: ImageGrid) -> int:
    """``samples``, reduced so that a lattice gets at most MAX_SUBSAMPLES sub-samples."""
    voxels = math.prod(lattice.shape)
    affordable = math.isqrt(max(1, MAX_SUBSAMPLES // max(1, voxels)))
    return max(1, min(samples, affordable))


def _boundary_doses(
    dose: DoseGrid, contours: _Contours, planes: FloatArray, lower: FloatArray, upper: FloatArray
) -> FloatArray:
    """Dose (Gy) at the contour vertices, ``(M,)`` without those outside the dose grid.

    Each vertex on its plane and moved to both faces of its slab.
    """
    positions = contours.positions
    k = np.abs(positions[:, None] - planes[None, :]).argmin(axis=1)
    shifts = np.column_stack([np.zeros(k.size), lower[k] - positions, upper[k] - positions])
    moved = np.repeat(shifts, contours.counts, axis=0)
    doses = sample_shifted(dose, contours.points, moved)
    return np.asarray(doses[~np.isnan(doses)])


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
    lower and upper face.
    """

    plane: NDArray[np.intp]
    step_mm: FloatArray
    centre: _Frames
    lower: _Frames
    upper: _Frames

    @classmethod
    def of(
        cls, sampler: PlaneDoseSampler, lower: FloatArray, upper: FloatArray, frame_mm: float
    ) -> _SubSlabs:
        """Cut every slab into sub-slabs no thicker than ``frame_mm``."""
        plane: list[int] = []
        step: list[float] = []
        centre: list[float] = []
        for k in range(lower.size):
            thickness = float(upper[k] - lower[k])
            n_sub = max(1, math.ceil(thickness / frame_mm - 1e-9))
            plane.extend([k] * n_sub)
            step.extend([thickness / n_sub] * n_sub)
            centre.extend(float(lower[k]) + (m + 0.5) * (thickness / n_sub) for m in range(n_sub))
        steps, centres = np.array(step), np.array(centre)
        return cls(
            plane=np.array(plane, dtype=np.intp),
            step_mm=steps,
            centre=_Frames.at(sampler, centres),
            lower=_Frames.at(sampler, centres - steps / 2),
            upper=_Frames.at(sampler, centres + steps / 2),
        )

    def lowest_frame(self, first: int, last: int) -> int:
        """The lowest dose frame that sub-slabs ``first:last`` use."""
        return min(int(where.low[first:last].min()) for where in (self.lower, self.centre))


def _sample(
    dose: DoseGrid,
    lattice: ImageGrid,
    fractions: NDArray[np.float32] | NDArray[np.bool_],
    lower: FloatArray,
    upper: FloatArray,
) -> _Samples:
    """Sample the dose in every covered voxel of every sub-slab of every contour plane.

    ``fractions``: ``(planes, rows, columns)`` covered share of each lattice voxel
    (float32, or bool for whole voxels). Each dose frame's lattice planes are interpolated
    once (:meth:`PlaneDoseSampler.frame_planes`), where covered voxels need them; every
    sub-slab gathers the planes of its frames at its covered voxels and blends them.
    Samples are ordered by plane, sub-slab, then voxel.
    """
    sampler = PlaneDoseSampler(dose, lattice)
    frame_mm = float(dose.grid.spacing_mm[0]) if dose.grid.shape[0] > 1 else math.inf
    area_cm2 = lattice.spacing_mm[1] * lattice.spacing_mm[2] / 100.0
    slabs = _SubSlabs.of(sampler, lower, upper, frame_mm)
    planes = fractions.reshape(fractions.shape[0], -1)
    covered_voxels, plane_boxes = _covered(fractions)
    counts = np.array([voxels.size for voxels in covered_voxels])
    total = int(counts[slabs.plane].sum())
    found = _Samples(np.empty(total), np.empty(total), np.empty(total), np.empty(total, dtype=bool))
    boxes = _frame_boxes(slabs, plane_boxes)
    gather = _Gather(_FramePlanes(sampler, boxes), min(_BLOCK_VOXELS, int(counts.max(initial=0))))
    at = 0  # first sample of the plane
    for first, last in _plane_runs(slabs.plane):
        k = int(slabs.plane[first])
        gather.frames.forget_below(slabs.lowest_frame(first, last))
        size = int(counts[k])
        for begin in range(0, size, _BLOCK_VOXELS):
            in_plane = covered_voxels[k][begin : begin + _BLOCK_VOXELS]
            gather.start(in_plane)
            covered = planes[k][in_plane].astype(np.float64)
            for m, s in enumerate(range(first, last)):
                out = slice(at + m * size + begin, at + m * size + begin + covered.size)
                step_cm3 = area_cm2 * float(slabs.step_mm[s]) / 10.0
                np.multiply(covered, step_cm3, out=found.weights[out])
                np.greater_equal(covered, 1.0, out=found.full[out])
                _sub_slab(gather, slabs, s, found.doses[out], found.spreads[out])
        at += size * (last - first)
    return found


#: Lattice rows and columns ``(first row, last row + 1, first column, last column + 1)``.
_Box = tuple[int, int, int, int]

#: Covered voxels of a plane sampled together: ``(n,)`` temporaries of 64 kB, which the
#: allocator recycles instead of mapping them afresh each time.
_BLOCK_VOXELS = 8192


def _sub_slab(
    gather: _Gather, slabs: _SubSlabs, s: int, doses: FloatArray, spreads: FloatArray
) -> None:
    """Dose and spread of sub-slab ``s`` at the gathered voxels, Gy, ``(n,)`` each.

    Written to ``doses`` (NaN outside the dose grid) and ``spreads``. The spread is the
    root sum of squares of the central differences across the voxel in rows and columns
    and of the difference between the sub-slab's faces; parts that would need a point
    outside the dose grid count as 0.
    """
    if slabs.centre.inside[s]:
        centre = gather.blend(slabs.centre, s, rows=3)
        doses[...] = centre[0]
        np.multiply(centre[1], centre[1], out=spreads)
        spreads += centre[2] * centre[2]
        spreads *= 0.25  # rows 1 and 2 hold twice the central differences
        if gather.outside is not None:
            doses[gather.outside] = np.nan
    else:
        doses[...] = np.nan
        spreads[...] = 0.0
    if slabs.lower.inside[s] and slabs.upper.inside[s]:
        along = gather.blend(slabs.upper, s, rows=1)[0]
        along -= gather.blend(slabs.lower, s, rows=1, face=True)[0]
        spreads += along * along
    np.sqrt(spreads, out=spreads)


def _covered(
    fractions: NDArray[np.float32] | NDArray[np.bool_],
) -> tuple[list[NDArray[np.intp]], list[_Box | None]]:
    """Flat in-plane indices ``(n_k,)`` of each lattice plane's covered voxels.

    And the rows and columns they span (first, last + 1 of each; None for an empty plane).
    """
    voxels, boxes = [], []
    for plane in fractions:
        covered = plane != 0
        voxels.append(np.flatnonzero(covered))
        rows, columns = np.flatnonzero(covered.any(axis=1)), np.flatnonzero(covered.any(axis=0))
        boxes.append(
            (int(rows[0]), int(rows[-1]) + 1, int(columns[0]), int(columns[-1]) + 1)
            if rows.size
            else None
        )
    return voxels, boxes


def _frame_boxes(slabs: _SubSlabs, plane_boxes: list[_Box | None]) -> dict[int, _Box]:
    """The lattice rows and columns covered on the planes that use each dose frame.

    Only there are the frame's planes needed.
    """
    boxes: dict[int, _Box] = {}
    for s, k in enumerate(slabs.plane.tolist()):
        box = plane_boxes[k]
        if box is None:
            continue
        for where in (slabs.centre, slabs.lower, slabs.upper):
            if where.inside[s]:
                for frame in (int(where.low[s]), int(where.high[s])):
                    old = boxes.get(frame, box)
                    boxes[frame] = (
                        min(old[0], box[0]),
                        max(old[1], box[1]),
                        min(old[2], box[2]),
                        max(old[3], box[3]),
                    )
    return boxes


def _plane_runs(plane: NDArray[np.intp]) -> Iterator[tuple[int, int]]:
    """``(first, last)`` ranges of the sub-slabs of each contour plane (``plane`` sorted)."""
    bounds = [0, *(np.flatnonzero(np.diff(plane)) + 1).tolist(), plane.size]
    yield from itertools.pairwise(bounds)


class _FramePlanes:
    """The ``(3, rows * columns)`` :meth:`PlaneDoseSampler.frame_planes` in use, by frame.

    Planes of frames no longer needed are recycled as buffers for the next ones.
    """

    def __init__(self, sampler: PlaneDoseSampler, boxes: dict[int, _Box]) -> None:
        self.sampler = sampler
        self._boxes = boxes  # the part of each frame's planes in use
        self._planes: dict[int, FloatArray] = {}
        self._free: list[FloatArray] = []

    def __getitem__(self, frame: int) -> FloatArray:
        found = self._planes.get(frame)
        if found is None:
            buffer = self._free.pop() if self._free else None
            box = self._boxes.get(frame)
            found = self._planes[frame] = self.sampler.frame_planes(frame, out=buffer, box=box)
        return found

    def forget_below(self, frame: int) -> None:
        """Recycle the planes of frames below ``frame`` (no longer needed)."""
        for old in [old for old in self._planes if old < frame]:
            self._free.append(self._planes.pop(old))


class _Gather:
    """Frame planes gathered at the covered voxels of one block of a lattice plane.

    ``(3, n)`` per frame and the blends of two frames, all in buffers reused from block
    to block (``size``: most voxels in a block).
    """

    def __init__(self, frames: _FramePlanes, size: int) -> None:
        self.frames = frames
        self.outside: NDArray[np.bool_] | None = None
        self._size = size
        self._in_plane: NDArray[np.intp] = np.empty(0, dtype=np.intp)
        self._gathered: dict[int, tuple[int, FloatArray]] = {}  # frame: rows, (3 * size,)
        self._free: list[FloatArray] = []
        self._blends = [np.empty(3 * size) for _ in range(3)]  # centre, lower face, product

    def start(self, in_plane: NDArray[np.intp]) -> None:
        """Begin a block: ``(n,)`` flat in-plane indices of its covered voxels."""
        self._free.extend(buffer for _, buffer in self._gathered.values())
        self._gathered.clear()
        self._in_plane = in_plane
        outside = self.frames.sampler.outside
        beyond = None if outside is None else outside[in_plane]
        self.outside = beyond if beyond is not None and beyond.any() else None

    def _values(self, frame: int, rows: int) -> FloatArray:
        """``(rows, n)``: dose (row 0) and differences (rows 1, 2) of ``frame``, Gy."""
        n = self._in_plane.size
        found = self._gathered.get(frame)
        if found is None or found[0] < rows:
            buffer = self._free.pop() if self._free else np.empty(3 * self._size)
            if found is not None:
                self._free.append(found[1])
            planes = self.frames[frame][:rows]
            planes.take(
                self._in_plane, axis=1, out=buffer[: rows * n].reshape(rows, n), mode="clip"
            )
            found = self._gathered[frame] = (rows, buffer)
        return found[1][: rows * n].reshape(rows, n)

    def blend(self, where: _Frames, s: int, rows: int, *, face: bool = False) -> FloatArray:
        """``(rows, n)`` values at position ``s`` of ``where``, a blend of two frames.

        The result is a buffer reused by the next call with the same ``face``.
        """
        n = self._in_plane.size
        weight = float(where.weight[s])
        result = self._blends[1 if face else 0][: rows * n].reshape(rows, n)
        product = self._blends[2][: rows * n].reshape(rows, n)
        np.multiply(self._values(int(where.low[s]), rows), 1.0 - weight, out=result)
        np.multiply(self._values(int(where.high[s]), rows), weight, out=product)
        result += product
        return result


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
        or finer (down to 0.25 mm) so that the largest contour plane holds about 2000
        voxels.
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
    normal = dose.grid.normal
    planes, contours = _plane_positions(roi, normal)
    frame_mm = float(dose.grid.spacing_mm[0])
    lower, upper = slab_faces(planes, end_caps, frame_mm)
    lattice = _plane_lattice(dose, planes, contours, resolution_mm)
    per_side = _samples_per_side(samples, lattice)
    mask = rasterize(
        roi,
        lattice,
        rule=rule,
        fractional=per_side if per_side > 1 else None,  # 1 sample: the binary mask
        slice_mode="exact",
        plane_tolerance_mm=max(_MERGE_MM, 0.5 * float(np.min(upper - lower))),
        on_invalid=on_invalid,
    )
    label = f"ROI {roi.number} {roi.name!r}"
    messages = list(mask.warnings)
    gap_warning = uneven_gap_warning(planes, label)
    if gap_warning is not None:
        messages.append(gap_warning)
        warnings.warn(gap_warning, GeometryWarning, stacklevel=2)
    found = _sample(dose, lattice, mask.array, lower, upper)
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
                f"{label} lies entirely outside the dose grid; check the frame of reference "
                "or use count_outside=True"
            )
        np.copyto(doses, 0.0, where=outside)
        if not count_outside:
            np.copyto(weights, 0.0, where=outside)
            np.copyto(full, False, where=outside)
            used_cm3 = float(weights.sum())
    boundary = _boundary_doses(dose, contours, planes, lower, upper)
    if count_outside and any_outside:
        boundary = np.append(boundary, 0.0)
    # Extremes over the fully covered voxels (or all used ones) and the boundary.
    used: NDArray[np.bool_] | bool = full if np.any(full) else True
    if used is True and any_outside and not count_outside:
        used = ~outside
    extremes = (
        float(np.min(doses, where=used, initial=np.inf)),
        float(np.max(doses, where=used, initial=-np.inf)),
    )
    if boundary.size:
        extremes = (min(extremes[0], boundary.min()), max(extremes[1], boundary.max()))
    edges, curve = cumulative_curve(doses, weights, bin_width_gy=bin_width_gy, spreads_gy=spreads)
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
    workers: int | None = None,
    **options: Any,
) -> Iterator[DVH | RtmaskError]:
    """:func:`compute_dvh` for several ROIs on worker threads, yielded in ROI order.

    ``options`` are :func:`compute_dvh`'s keyword arguments. An ROI whose DVH cannot be
    computed yields its :class:`RtmaskError` instead, so one bad ROI never stops the rest.
    ``workers`` defaults to the usable CPUs (at most 4); numpy releases the interpreter
    lock in the heavy array work, so threads run truly in parallel.
    """

    def one(roi: ROI) -> DVH | RtmaskError:
        try:
            return compute_dvh(roi, dose, **options)
        except RtmaskError as error:
            return error

    yield from ordered_map(one, rois, default_workers() if workers is None else workers)
