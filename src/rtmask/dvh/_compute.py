"""DVH of an ROI in an RT Dose: partial-volume sampling on a calculation grid.

The calculation grid has the dose grid's orientation. Along the normal its slices are
aligned with the contour stack so that every contour slab (half-way to the neighbouring
planes, half a gap beyond the end planes: half-slice end caps) holds an even number of
whole slices; in-plane the spacing is the dose grid's or finer for small structures. The
ROI is rasterised there by :func:`rtmask.raster.rasterize` (``slice_mode="slab"``,
fractional), the dose interpolated trilinearly at the voxel centres, and each voxel
weighted by its covered fraction x voxel volume. Dmin and Dmax come from the fully
covered voxels and the contour vertices (on their plane and on their slab faces), which
all lie in the structure.
"""

from __future__ import annotations

import logging
import math
import warnings

import numpy as np
from numpy.typing import NDArray

from rtmask._errors import GeometryWarning, InvalidInputError, OnInvalid
from rtmask.dose import DoseGrid, sample_dose
from rtmask.dvh._histogram import DVH, cumulative_curve
from rtmask.dvh._volume import EndCaps
from rtmask.geometry import ImageGrid
from rtmask.raster import CombinationRule, rasterize
from rtmask.rtstruct import ROI

__all__ = ["compute_dvh"]

logger = logging.getLogger(__name__)

FloatArray = NDArray[np.float64]

#: In-plane voxels wanted across the largest contour plane when choosing the spacing.
TARGET_PLANE_VOXELS = 4000
#: Finest automatic in-plane spacing, mm.
MIN_SPACING_MM = 0.25
#: Contour planes closer than this (mm) along the normal are one plane.
_MERGE_MM = 0.01


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


def _calculation_grid(
    roi: ROI,
    dose: DoseGrid,
    planes: FloatArray,
    closed: list[FloatArray],
    resolution_mm: float | None,
) -> tuple[ImageGrid, FloatArray]:
    """The calculation grid and its slice positions along the normal (mm)."""
    grid = dose.grid
    normal = grid.normal
    dose_slice_mm, dose_row_mm, dose_column_mm = grid.spacing_mm
    gaps = np.diff(planes)
    gap = float(np.median(gaps)) if gaps.size else float(dose_slice_mm)
    per_slab = 2 * max(1, math.ceil(gap / (2 * dose_slice_mm)))
    slice_mm = gap / per_slab
    if resolution_mm is not None:
        if not resolution_mm > 0:
            raise ValueError(f"resolution_mm must be positive, got {resolution_mm}")
        spacing = float(resolution_mm)
    else:
        largest = max(_polygon_area(points, normal) for points in closed)
        wanted = math.sqrt(largest / TARGET_PLANE_VOXELS)
        spacing = min(dose_row_mm, dose_column_mm, max(wanted, MIN_SPACING_MM))
    first_gap = float(gaps[0]) if gaps.size else gap
    last_gap = float(gaps[-1]) if gaps.size else gap
    low = planes[0] - first_gap / 2
    high = planes[-1] + last_gap / 2
    n_slices = max(1, round((high - low) / slice_mm))
    positions = low + (np.arange(n_slices) + 0.5) * slice_mm
    points = np.concatenate(closed)
    in_plane = ImageGrid.covering(
        points,
        spacing_mm=(slice_mm, spacing, spacing),
        orientation=grid.orientation,
        margin_mm=spacing,
    )
    origin = in_plane.origin_mm + (positions[0] - float(in_plane.origin_mm @ normal)) * normal
    calc = ImageGrid.from_explicit(
        origin_mm=origin.tolist(),
        spacing_mm=(slice_mm, spacing, spacing),
        shape=(n_slices, in_plane.shape[1], in_plane.shape[2]),
        orientation=grid.orientation,
        frame_of_reference_uid=grid.frame_of_reference_uid,
    )
    return calc, positions


def _boundary_points(
    closed: list[FloatArray], planes: FloatArray, normal: FloatArray, end_caps: EndCaps
) -> FloatArray:
    """Contour vertices on their plane and moved to both faces of their slab, ``(M, 3)``."""
    gaps = np.diff(planes)
    if gaps.size:
        outward = gaps[[0, -1]] / 2 if end_caps is EndCaps.HALF else np.zeros(2)
        lower = planes - np.concatenate([[outward[0]], gaps / 2])
        upper = planes + np.concatenate([gaps / 2, [outward[1]]])
    else:
        lower = upper = planes
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


def _spreads(dose: DoseGrid, calc: ImageGrid, centres: FloatArray) -> FloatArray:
    """``(N,)`` dose range (Gy) across each calculation voxel, from its local gradient.

    The dose differences across the voxel along its three axes, combined in quadrature
    (the width of the uniform spread with the same variance); 0 where the voxel faces
    leave the dose grid.
    """
    axes = (calc.normal, calc.column_direction, calc.row_direction)
    squares = np.zeros(centres.shape[0])
    for axis, step in zip(axes, calc.spacing_mm, strict=True):
        offset = np.asarray(axis) * (step / 2)
        difference = sample_dose(dose, centres + offset) - sample_dose(dose, centres - offset)
        squares += np.nan_to_num(difference, nan=0.0) ** 2
    return np.sqrt(squares)


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
        or finer (down to 0.25 mm) so that the largest contour plane holds about 4000
        voxels.
    samples
        Partial-volume samples per voxel side (``samples`` x ``samples`` per voxel).
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
    normal = dose.grid.normal
    planes, closed = _plane_positions(roi, normal)
    calc, positions = _calculation_grid(roi, dose, planes, closed, resolution_mm)
    mask = rasterize(
        roi, calc, rule=rule, fractional=samples, slice_mode="slab", on_invalid=on_invalid
    )
    fractions = np.asarray(mask.array, dtype=np.float64)
    if end_caps is EndCaps.NONE and planes.size > 1:
        outside_stack = (positions < planes[0]) | (positions > planes[-1])
        fractions = fractions.copy()
        fractions[outside_stack] = 0.0
    index = np.nonzero(fractions > 0)
    label = f"ROI {roi.number} {roi.name!r}"
    messages = list(mask.warnings)
    if index[0].size == 0:
        raise InvalidInputError(
            f"{label}: no calculation voxel lies in the structure; give a finer resolution_mm"
        )
    weights = fractions[index] * (calc.voxel_volume_mm3 / 1000.0)
    centres = calc.index_to_patient(np.column_stack(index))
    doses = sample_dose(dose, centres)
    outside = np.isnan(doses)
    outside_cm3 = float(weights[outside].sum())
    total_cm3 = float(weights.sum())
    if outside_cm3 > 0:
        share = 100.0 * outside_cm3 / total_cm3
        action = "counted at 0 Gy" if count_outside else "left out of the DVH"
        messages.append(
            f"{label}: {outside_cm3:.3f} cm3 ({share:.1f} %) lies outside the dose grid "
            f"and is {action}"
        )
        warnings.warn(messages[-1], GeometryWarning, stacklevel=2)
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
    used_weights = weights[inside]
    full = fractions[index][inside] >= 1.0
    extreme = used_doses[full] if np.any(full) else used_doses
    boundary = sample_dose(dose, _boundary_points(closed, planes, normal, end_caps))
    boundary = boundary[~np.isnan(boundary)]
    if count_outside and np.any(outside):
        boundary = np.concatenate([boundary, [0.0]])
    candidates = np.concatenate([extreme, boundary])
    spreads = _spreads(dose, calc, centres[inside])
    edges, curve = cumulative_curve(
        used_doses, used_weights, bin_width_gy=bin_width_gy, spreads_gy=spreads
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
