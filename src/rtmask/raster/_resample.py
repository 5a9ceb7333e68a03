"""Moving a mask (or an image) from its native slices onto a uniform grid (``--resample``)."""

from __future__ import annotations

from typing import Any, cast

import numpy as np
from numpy.typing import NDArray

from rtmask._errors import GeometryError
from rtmask.geometry import ImageGrid
from rtmask.raster._mask import Mask, slab_thicknesses_mm
from rtmask.raster._memory import sparse_zeros

__all__ = ["interpolate_slices", "resample_slices"]


def resample_slices(mask: Mask, target: ImageGrid) -> Mask:
    """Nearest-slice resampling of ``mask`` onto ``target`` along the plane normal.

    Each target slice takes the native slice whose slab (half the gap to each neighbour)
    holds its plane; target slices beyond the native slabs are empty. The in-plane grid
    must be the same (this changes slice positions only).

    Raises
    ------
    GeometryError
        When the in-plane geometry of ``target`` differs from the mask's grid.
    """
    source = mask.grid
    _check_same_plane(source, target)
    positions = source.slice_positions_mm
    half = slab_thicknesses_mm(source) / 2
    edges = np.concatenate(
        [[positions[0] - half[0]], (positions[1:] + positions[:-1]) / 2, [positions[-1] + half[-1]]]
    )
    source_index = np.searchsorted(edges, target.slice_positions_mm, side="right") - 1
    valid = (source_index >= 0) & (source_index < positions.size)
    array = cast(
        "NDArray[np.bool_] | NDArray[np.float32]", sparse_zeros(target.shape, mask.array.dtype)
    )
    # Slice by slice, and only from slices that hold voxels: no temporary the size of the
    # target, and the untouched slices of the sparse array cost no memory.
    filled = np.flatnonzero(valid)
    filled = filled[mask.voxels_per_slice[source_index[filled]] > 0]
    for k in filled.tolist():
        array[k] = mask.array[source_index[k]]
    note = (
        f"ROI {mask.roi.number} {mask.roi.name!r}: resampled from {source.shape[0]} native "
        f"slices to {target.shape[0]} uniform slices of {target.spacing_mm[0]:.3g} mm "
        "(nearest slice)"
    )
    counts = np.zeros(target.shape[0])
    counts[valid] = mask.voxels_per_slice[source_index[valid]]
    return Mask(
        array=array,
        grid=target,
        roi=mask.roi,
        warnings=(*mask.warnings, note),
        slice_counts=counts,
    )


def _check_same_plane(source: ImageGrid, target: ImageGrid) -> None:
    if (
        source.shape[1:] != target.shape[1:]
        or not np.allclose(source.affine[:3, 1:3], target.affine[:3, 1:3], atol=1e-6)
        or not np.allclose(source.normal, target.normal, atol=1e-6)
    ):
        raise GeometryError("resampling changes slice positions only: in-plane grids differ")


def interpolate_slices(
    values: NDArray[Any], source: ImageGrid, target: ImageGrid
) -> NDArray[np.float32]:
    """Linear interpolation of an image along the plane normal onto ``target``'s slices.

    The image counterpart of :func:`resample_slices` (same in-plane grid, new slice
    positions): each target slice is the linear blend of the two native slices around its
    plane; a target plane beyond the first or last native slice takes that slice.

    Parameters
    ----------
    values
        ``source.shape`` image values, ``(slice, row, column)``.
    source, target
        The native grid and the uniform grid (``source.with_uniform_slices(mm)``).

    Returns
    -------
    numpy.ndarray
        ``target.shape`` float32.

    Raises
    ------
    GeometryError
        When the in-plane geometry of ``target`` differs from ``source``.
    """
    _check_same_plane(source, target)
    positions = source.slice_positions_mm
    wanted = target.slice_positions_mm
    result = np.empty(target.shape, dtype=np.float32)
    if positions.size == 1:
        result[:] = values[0]
        return result
    upper = np.clip(np.searchsorted(positions, wanted, side="right"), 1, positions.size - 1)
    lower = upper - 1
    weight = np.clip((wanted - positions[lower]) / (positions[upper] - positions[lower]), 0.0, 1.0)
    for k in range(target.shape[0]):
        below = np.asarray(values[lower[k]], dtype=np.float64)
        above = np.asarray(values[upper[k]], dtype=np.float64)
        result[k] = below + weight[k] * (above - below)
    return result
