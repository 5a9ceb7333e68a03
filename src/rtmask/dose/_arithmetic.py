"""Dose arithmetic: trilinear sampling, resampling onto any grid, sum, scaling, difference.

Sampling is trilinear in index space: a point is mapped to continuous ``(slice, row,
column)`` indices with ``grid.patient_to_index`` (which honours non-uniform slice
positions), then the 8 surrounding voxel values are weighted. A linear dose field is
therefore reproduced exactly. The grid's extent is the box spanned by its voxel *centres*:
points beyond the first or last centre along any axis (even by less than half a voxel) are
outside and get NaN, never an extrapolated or clamped value.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Sequence

import numpy as np
from numpy.typing import ArrayLike, NDArray

from rtmask._errors import DoseWarning, GeometryError, GeometryWarning, InvalidInputError
from rtmask.dose._model import DoseGrid
from rtmask.geometry import ImageGrid

__all__ = [
    "add_doses",
    "check_dose_kinds",
    "combined_dose_type",
    "dose_difference",
    "resample_dose",
    "sample_dose",
    "scale_dose",
]

logger = logging.getLogger(__name__)

FloatArray = NDArray[np.float64]

#: Points handled per block, to bound the memory of the 8-corner gathers.
_CHUNK_POINTS = 1 << 20
#: Index tolerance: a point this close to the outermost voxel centre still counts as inside.
_EDGE_TOLERANCE = 1e-6
#: Grids whose affines and slice positions agree within this (mm) are the same grid.
_SAME_GRID_ATOL_MM = 1e-4


def _label(dose: DoseGrid, fallback: str) -> str:
    return dose.source or fallback


def _check_frame_of_reference(first: str | None, second: str | None, what: str) -> None:
    if first and second and first != second:
        raise GeometryError(
            f"{what}: frames of reference differ ({first} vs {second}); doses from different "
            "frames of reference cannot be combined without a registration"
        )


def _same_geometry(a: ImageGrid, b: ImageGrid) -> bool:
    return bool(
        a.shape == b.shape
        and np.allclose(a.affine, b.affine, rtol=0.0, atol=_SAME_GRID_ATOL_MM)
        and np.allclose(
            a.slice_positions_mm, b.slice_positions_mm, rtol=0.0, atol=_SAME_GRID_ATOL_MM
        )
    )


def _trilinear(values: FloatArray, index: FloatArray) -> FloatArray:
    """Trilinear interpolation of ``values`` at ``(N, 3)`` continuous indices; NaN outside."""
    shape = np.asarray(values.shape, dtype=np.float64)
    inside = np.all((index >= -_EDGE_TOLERANCE) & (index <= shape - 1 + _EDGE_TOLERANCE), axis=1)
    result = np.full(index.shape[0], np.nan)
    if not inside.any():
        return result
    position = np.clip(index[inside], 0.0, shape - 1)
    last = np.asarray(values.shape, dtype=np.intp) - 1
    low = np.minimum(np.floor(position).astype(np.intp), np.maximum(last - 1, 0))
    fraction = position - low  # in [0, 1]; 0 along an axis of length 1
    flat = np.ascontiguousarray(values, dtype=np.float64).reshape(-1)
    strides = np.array([values.shape[1] * values.shape[2], values.shape[2], 1], dtype=np.intp)
    step_slice, step_row, step_column = np.where(last > 0, strides, 0)
    base = low @ strides

    def along_columns(start: NDArray[np.intp]) -> FloatArray:
        first: FloatArray = flat.take(start)
        following: FloatArray = flat.take(start + step_column)
        return first + fraction[:, 2] * (following - first)

    def along_rows(start: NDArray[np.intp]) -> FloatArray:
        first = along_columns(start)
        return first + fraction[:, 1] * (along_columns(start + step_row) - first)

    near = along_rows(base)
    result[inside] = near + fraction[:, 0] * (along_rows(base + step_slice) - near)
    return result


def sample_dose(dose: DoseGrid, points_mm: ArrayLike) -> FloatArray:
    """Dose in Gy at ``(N, 3)`` LPS points (mm), by trilinear interpolation, ``(N,)``.

    Points outside the box spanned by the dose grid's voxel centres give NaN (no
    extrapolation); use ``numpy.isnan`` to find them.
    """
    points = np.asarray(points_mm, dtype=np.float64)
    if points.ndim == 1 and points.size == 3:
        points = points.reshape(1, 3)
    if points.ndim != 2 or points.shape[1] != 3:
        raise InvalidInputError(f"points_mm must be an (N, 3) array, got shape {points.shape}")
    result = np.empty(points.shape[0])
    for start in range(0, points.shape[0], _CHUNK_POINTS):
        block = points[start : start + _CHUNK_POINTS]
        result[start : start + block.shape[0]] = _trilinear(
            dose.dose_gy, dose.grid.patient_to_index(block)
        )
    return result


def _sample_on_grid(dose: DoseGrid, grid: ImageGrid) -> FloatArray:
    """``dose`` at every voxel centre of ``grid``, ``grid.shape``, NaN outside the dose."""
    if _same_geometry(dose.grid, grid):
        return np.array(dose.dose_gy, copy=True)
    slices, rows, columns = grid.shape
    row_index, column_index = np.meshgrid(np.arange(rows), np.arange(columns), indexing="ij")
    plane = np.column_stack([row_index.ravel(), column_index.ravel()]).astype(np.float64)
    per_block = max(1, _CHUNK_POINTS // (rows * columns))
    result = np.empty(grid.shape)
    for first in range(0, slices, per_block):
        ks = np.arange(first, min(slices, first + per_block), dtype=np.float64)
        index = np.column_stack([np.repeat(ks, plane.shape[0]), np.tile(plane, (ks.size, 1))])
        values = _trilinear(dose.dose_gy, dose.grid.patient_to_index(grid.index_to_patient(index)))
        result[first : first + ks.size] = values.reshape(ks.size, rows, columns)
    return result


def resample_dose(dose: DoseGrid, grid: ImageGrid) -> DoseGrid:
    """``dose`` trilinearly interpolated at the voxel centres of ``grid``.

    Target voxels outside the dose grid (see :func:`sample_dose`) get 0 Gy, with a
    GeometryWarning naming their fraction.

    Raises
    ------
    GeometryError
        Both grids name a frame of reference and they differ.
    """
    label = _label(dose, "dose")
    _check_frame_of_reference(
        dose.grid.frame_of_reference_uid, grid.frame_of_reference_uid, f"resampling {label}"
    )
    values = _sample_on_grid(dose, grid)
    outside = np.isnan(values)
    notes: list[str] = []
    if outside.any():
        notes.append(
            f"{label}: {100 * float(outside.mean()):.3g} % of the target grid's voxels lie "
            "outside the dose grid and were given 0 Gy"
        )
        values[outside] = 0.0
        warnings.warn(notes[-1], GeometryWarning, stacklevel=2)
    return DoseGrid(
        dose_gy=values,
        grid=grid,
        dose_type=dose.dose_type,
        summation_type=dose.summation_type,
        source=dose.source,
        warnings=dose.warnings + tuple(notes),
    )


def _b_on_a(a: DoseGrid, b: DoseGrid, what: str, outside_means: str) -> tuple[FloatArray, str]:
    """``b`` on ``a``'s grid (NaN outside b), and the note describing any resampling."""
    label_a, label_b = _label(a, "the first dose"), _label(b, "the second dose")
    _check_frame_of_reference(
        a.grid.frame_of_reference_uid,
        b.grid.frame_of_reference_uid,
        f"{what} {label_a} and {label_b}",
    )
    if _same_geometry(a.grid, b.grid):
        return np.array(b.dose_gy, copy=True), ""
    values = _sample_on_grid(b, a.grid)
    note = f"{label_b}: resampled onto the grid of {label_a} by trilinear interpolation"
    outside = np.isnan(values)
    if outside.any():
        note += (
            f"; {100 * float(outside.mean()):.3g} % of the voxels lie outside {label_b}'s grid "
            f"and {outside_means}"
        )
    return values, note


#: DoseType of a forced sum of different types: the label that covers every part (a
#: physical dose is an effective dose with RBE 1; anything with an ERROR part is an error).
_TYPE_PRECEDENCE = ("ERROR", "EFFECTIVE", "PHYSICAL")


def combined_dose_type(types: Sequence[str | None]) -> str | None:
    """DoseType of a sum of doses of ``types``: shared, or the covering one, or None.

    The same type throughout stays; PHYSICAL with EFFECTIVE is EFFECTIVE (the physical part
    counts with RBE 1); any ERROR part makes ERROR; an unknown type (None) makes None.
    """
    if not types or not all(types):
        return None
    known = {t.upper() for t in types if t}
    if len(known) == 1:
        return known.pop()
    return next((t for t in _TYPE_PRECEDENCE if t in known), None)


def check_dose_kinds(a: DoseGrid, b: DoseGrid, *, force: bool = False) -> list[str]:
    """Refuse adding doses of different DoseType or units; notes for what is let through.

    Returns the sentences to warn about: a forced DoseType mismatch and a DoseSummationType
    mismatch (a PLAN with a BEAM dose is a sum, but not a plan dose any more).

    Raises
    ------
    InvalidInputError
        DoseType or units differ (both known) and ``force`` is False.
    """
    label_a, label_b = _label(a, "the first dose"), _label(b, "the second dose")
    notes: list[str] = []
    for attribute, first, second in (
        ("DoseUnits", a.units, b.units),
        ("DoseType", a.dose_type, b.dose_type),
    ):
        if first and second and first.upper() != second.upper():
            problem = f"adding {label_a} and {label_b}: {attribute} differs ({first} vs {second})"
            if not force:
                raise InvalidInputError(
                    f"{problem}; such doses do not add up to a dose of either kind (pass "
                    "force=True to add them anyway)"
                )
            notes.append(f"{problem}; added anyway as asked")
    first_sum, second_sum = a.summation_type, b.summation_type
    if first_sum and second_sum and first_sum.upper() != second_sum.upper():
        notes.append(
            f"adding {label_a} and {label_b}: DoseSummationType differs ({first_sum} vs "
            f"{second_sum}); the sum is labelled MULTI_PLAN, a composite that no single "
            "plan's or beam's dose describes"
        )
    return notes


def add_doses(a: DoseGrid, b: DoseGrid, *, force: bool = False) -> DoseGrid:
    """The sum ``a + b`` on ``a``'s grid (Gy).

    When the grids differ, ``b`` is trilinearly interpolated at ``a``'s voxel centres; voxels
    of ``a`` outside ``b``'s grid take ``b`` as 0 Gy. Either case is reported by a
    GeometryWarning.

    Doses of different DoseType (PHYSICAL, EFFECTIVE, ERROR) or units are refused unless
    ``force``; a forced sum is labelled with :func:`combined_dose_type` and warned about
    (DoseWarning). Different DoseSummationTypes (PLAN with BEAM) add with a DoseWarning
    and make a ``MULTI_PLAN`` sum (a composite); the summation type is kept when both
    agree, and None when either is unknown.

    Raises
    ------
    InvalidInputError
        DoseType or units differ and ``force`` is False.
    GeometryError
        Both grids name a frame of reference and they differ.
    """
    kinds = check_dose_kinds(a, b, force=force)
    values, note = _b_on_a(a, b, "adding", "count as 0 Gy there")
    for text in kinds:
        warnings.warn(text, DoseWarning, stacklevel=2)
    if note:
        warnings.warn(note, GeometryWarning, stacklevel=2)
    sums = ((a.summation_type or "").upper(), (b.summation_type or "").upper())
    summation = a.summation_type if sums[0] == sums[1] else None
    if all(sums) and sums[0] != sums[1]:
        summation = "MULTI_PLAN"
    return DoseGrid(
        dose_gy=a.dose_gy + np.nan_to_num(values, nan=0.0),
        grid=a.grid,
        dose_type=combined_dose_type([a.dose_type, b.dose_type]),
        summation_type=summation,
        source=None,
        warnings=a.warnings + b.warnings + tuple(kinds) + ((note,) if note else ()),
    )


def scale_dose(dose: DoseGrid, factor: float) -> DoseGrid:
    """``dose`` multiplied by ``factor`` (e.g. a number of fractions), same grid.

    Raises
    ------
    InvalidInputError
        ``factor`` is negative or not finite.
    """
    value = float(factor)
    if not np.isfinite(value) or value < 0:
        raise InvalidInputError(f"dose scale factor must be a finite number >= 0, got {factor}")
    return dose.with_dose(dose.dose_gy * value)


def dose_difference(a: DoseGrid, b: DoseGrid) -> FloatArray:
    """``a - b`` in Gy on ``a``'s grid, ``a.grid.shape``.

    When the grids differ, ``b`` is trilinearly interpolated at ``a``'s voxel centres (with
    a GeometryWarning); voxels of ``a`` outside ``b``'s grid are NaN.

    Raises
    ------
    GeometryError
        Both grids name a frame of reference and they differ.
    """
    values, note = _b_on_a(a, b, "subtracting", "are NaN in the difference")
    if note:
        warnings.warn(note, GeometryWarning, stacklevel=2)
    return np.asarray(a.dose_gy - values)
