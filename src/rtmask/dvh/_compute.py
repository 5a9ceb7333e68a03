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
from rtmask.dose import DoseGrid, sample_dose
from rtmask.dvh._histogram import DVH, cumulative_curve
from rtmask.dvh._planes import PlaneDoseSampler
from rtmask.dvh._volume import EndCaps
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


def _plane_positions(roi: ROI, normal: FloatArray) -> tuple[FloatArray, list[FloatArray]]:
    """Distinct contour plane positions along ``normal`` (increasing) and closed contours."""
    closed = [
        c.points_mm for c in roi.contours if c.geometric_type.encloses_volume and c.n_points >= 3
    ]
    if not closed:
        raise InvalidInputError(
            f"ROI {roi.number} {roi.name!r} has no closed contour; a DVH needs a structure "
            "that encloses volume"
        )
    along = np.sort(np.array([float((points @ normal).mean()) for points in closed]))
    keep = np.concatenate([[True], np.diff(along) > _MERGE_MM])
    return np.asarray(along[keep]), closed


def _polygon_area(points: FloatArray, normal: FloatArray) -> float:
    """Area of a planar polygon ``(N, 3)`` with the given unit normal, mm2."""
    following = np.roll(points, -1, axis=0)
    return float(abs(np.cross(points, following).sum(axis=0) @ normal) / 2)


def _slab_bounds(
    planes: FloatArray, end_caps: EndCaps, single_mm: float
) -> tuple[FloatArray, FloatArray]:
    """``(P,)`` lower and upper faces (mm along the normal) of each contour plane's slab.

    A lone plane gets a slab of ``single_mm`` (the dose grid's slice spacing), centred.
    """
    if planes.size == 1:
        return planes - single_mm / 2, planes + single_mm / 2
    half_gaps = np.diff(planes) / 2
    outward = half_gaps[[0, -1]] if end_caps is EndCaps.HALF else np.zeros(2)
    lower = planes - np.concatenate([[outward[0]], half_gaps])
    upper = planes + np.concatenate([half_gaps, [outward[1]]])
    return lower, upper


def _plane_lattice(
    dose: DoseGrid,
    planes: FloatArray,
    closed: list[FloatArray],
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
        largest = max(_polygon_area(points, normal) for points in closed)
        wanted = math.sqrt(largest / TARGET_PLANE_VOXELS)
        spacing = min(dose_row_mm, dose_column_mm, max(wanted, MIN_SPACING_MM))
    in_plane = ImageGrid.covering(
        np.concatenate(closed),
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


def _boundary_points(
    closed: list[FloatArray],
    planes: FloatArray,
    lower: FloatArray,
    upper: FloatArray,
    normal: FloatArray,
) -> FloatArray:
    """Contour vertices on their plane and moved to both faces of their slab, ``(M, 3)``."""
    result = []
    for points in closed:
        along = float((points @ normal).mean())
        k = int(np.argmin(np.abs(planes - along)))
        result.extend(
            [
                points,
                points + (lower[k] - along) * normal,
                points + (upper[k] - along) * normal,
            ]
        )
    return np.concatenate(result)


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


def _sample(
    dose: DoseGrid,
    lattice: ImageGrid,
    fractions: NDArray[np.float32],
    lower: FloatArray,
    upper: FloatArray,
) -> _Samples:
    """Sample the dose in every covered voxel of every sub-slab of every contour plane."""
    sampler = PlaneDoseSampler(dose, lattice)
    frame_mm = float(dose.grid.spacing_mm[0]) if dose.grid.shape[0] > 1 else math.inf
    area_cm2 = lattice.spacing_mm[1] * lattice.spacing_mm[2] / 100.0
    doses, weights, spreads, full = [], [], [], []
    for k in range(fractions.shape[0]):
        index = np.nonzero(fractions[k])
        if index[0].size == 0:
            continue
        covered = fractions[k][index].astype(np.float64)
        thickness = float(upper[k] - lower[k])
        n_sub = max(1, math.ceil(thickness / frame_mm - 1e-9))
        step = thickness / n_sub
        rows, columns = index
        # Neighbours for the in-plane gradient (the lattice's one-voxel margin keeps covered
        # voxels off its edges; clipping only guards the rule).
        up, down = np.maximum(rows - 1, 0), np.minimum(rows + 1, fractions.shape[1] - 1)
        left, right = np.maximum(columns - 1, 0), np.minimum(columns + 1, fractions.shape[2] - 1)
        for m in range(n_sub):
            centre = float(lower[k]) + (m + 0.5) * step
            plane = sampler.plane(centre)
            along = sampler.difference(centre - step / 2, centre + step / 2)[index]
            across_rows = (plane[down, columns] - plane[up, columns]) / 2
            across_columns = (plane[rows, right] - plane[rows, left]) / 2
            spread_squared = (
                np.nan_to_num(across_rows) ** 2
                + np.nan_to_num(across_columns) ** 2
                + np.nan_to_num(along) ** 2
            )
            doses.append(plane[index])
            weights.append(covered * (area_cm2 * step / 10.0))
            spreads.append(np.sqrt(spread_squared))
            full.append(covered >= 1.0)
    if not doses:
        empty = np.empty(0)
        return _Samples(empty, empty, empty, np.empty(0, dtype=bool))
    return _Samples(
        np.concatenate(doses),
        np.concatenate(weights),
        np.concatenate(spreads),
        np.concatenate(full),
    )


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
    """
    end_caps = EndCaps(end_caps)
    if samples < 1:
        raise ValueError(f"samples must be a positive number, got {samples}")
    normal = dose.grid.normal
    planes, closed = _plane_positions(roi, normal)
    frame_mm = float(dose.grid.spacing_mm[0])
    lower, upper = _slab_bounds(planes, end_caps, frame_mm)
    lattice = _plane_lattice(dose, planes, closed, resolution_mm)
    per_side = _samples_per_side(samples, lattice)
    mask = rasterize(
        roi,
        lattice,
        rule=rule,
        fractional=per_side,
        slice_mode="exact",
        plane_tolerance_mm=max(_MERGE_MM, 0.5 * float(np.min(upper - lower))),
        on_invalid=on_invalid,
    )
    label = f"ROI {roi.number} {roi.name!r}"
    messages = list(mask.warnings)
    found = _sample(dose, lattice, np.asarray(mask.array, dtype=np.float32), lower, upper)
    if found.doses.size == 0:
        raise InvalidInputError(
            f"{label}: no calculation voxel lies in the structure; give a finer resolution_mm"
        )
    outside = np.isnan(found.doses)
    outside_cm3 = float(found.weights[outside].sum())
    total_cm3 = float(found.weights.sum())
    if outside_cm3 > 0:
        share = 100.0 * outside_cm3 / total_cm3
        action = "counted at 0 Gy" if count_outside else "left out of the DVH"
        messages.append(
            f"{label}: {outside_cm3:.3f} cm3 ({share:.1f} %) lies outside the dose grid "
            f"and is {action}"
        )
        warnings.warn(messages[-1], GeometryWarning, stacklevel=2)
    doses = found.doses
    if count_outside:
        doses = np.where(outside, 0.0, doses)
        inside = np.ones(doses.size, dtype=bool)
    else:
        inside = ~outside
    if not np.any(inside):
        raise InvalidInputError(
            f"{label} lies entirely outside the dose grid; check the frame of reference or "
            "use count_outside=True"
        )
    used_doses = doses[inside]
    used_weights = found.weights[inside]
    full = found.full[inside]
    extreme = used_doses[full] if np.any(full) else used_doses
    boundary = sample_dose(dose, _boundary_points(closed, planes, lower, upper, normal))
    boundary = boundary[~np.isnan(boundary)]
    if count_outside and np.any(outside):
        boundary = np.concatenate([boundary, [0.0]])
    candidates = np.concatenate([extreme, boundary])
    edges, curve = cumulative_curve(
        used_doses, used_weights, bin_width_gy=bin_width_gy, spreads_gy=found.spreads[inside]
    )
    for message in messages:
        logger.debug(message)
    return DVH(
        dose_gy=edges,
        volume_cm3=curve,
        min_gy=float(candidates.min()),
        max_gy=float(candidates.max()),
        mean_gy=float(np.average(used_doses, weights=used_weights)),
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
