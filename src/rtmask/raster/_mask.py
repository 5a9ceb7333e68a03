"""Mask: a rasterised ROI together with the grid that places it in patient space."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

import numpy as np
from numpy.typing import NDArray

from rtmask.errors import GeometryError, InvalidInputError
from rtmask.geometry import ImageGrid
from rtmask.rtstruct import ROI

__all__ = ["CombinationRule", "Mask", "slab_thicknesses_mm"]

#: The array types of a mask: binary and fractional.
_DTYPES = (np.dtype(np.bool_), np.dtype(np.float32))


class CombinationRule(str, Enum):
    """How several closed contours on one plane combine (DESIGN.md, rule 2).

    ``AUTO``: nesting depth parity (holes, islands in holes), union of overlapping ones.
    ``XOR``: even-odd over all contours of the plane. ``UNION``: every contour filled,
    then OR-ed. CLOSEDPLANAR_XOR contours are XOR-ed among themselves under every rule.
    """

    AUTO = "auto"
    XOR = "xor"
    UNION = "union"


def slab_thicknesses_mm(grid: ImageGrid) -> NDArray[np.float64]:
    """Thickness each slice stands for, ``(slices,)`` mm: half the gap to each neighbour.

    The end slices take their single neighbour gap, so a uniform grid gives its spacing
    everywhere.
    """
    gaps = grid.slice_gaps_mm
    if gaps.size == 0:
        return np.array([grid.spacing_mm[0]])
    before = np.concatenate([[gaps[0]], gaps])
    after = np.concatenate([gaps, [gaps[-1]]])
    return np.asarray((before + after) / 2)


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class Mask:
    """A rasterised ROI on an image grid.

    Parameters
    ----------
    array
        ``(slices, rows, columns)``: bool for binary masks, float32 in [0, 1] for
        fractional (partial-volume) masks. The mask keeps a read-only view of it (the
        caller's array stays writeable; do not change it while the mask is in use).
    grid
        The grid that places ``array`` in patient space.
    roi
        The ROI that was rasterised.
    warnings
        What was not used as written (contours off-plane, outside the grid, overlapping),
        one sentence each naming the ROI and the position.
    slice_counts
        ``(slices,)`` voxels inside per slice (summed fractions for fractional masks), when
        the producer already knows them (the rasteriser does); counted from ``array`` on
        first use otherwise.

    Raises
    ------
    InvalidInputError
        ``array`` is neither bool nor float32, or ``slice_counts`` does not have one value
        per slice.
    GeometryError
        ``array`` does not have the grid's shape.
    """

    array: NDArray[np.bool_] | NDArray[np.float32]
    grid: ImageGrid
    roi: ROI
    warnings: tuple[str, ...] = ()
    slice_counts: NDArray[np.float64] | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        label = f"mask of ROI {self.roi.number} {self.roi.name!r}"
        array = np.asarray(self.array)
        if array.dtype not in _DTYPES:
            raise InvalidInputError(
                f"{label}: the array must be bool (binary) or float32 (fractional), got "
                f"{array.dtype}; convert it, e.g. array.astype(bool)"
            )
        if array.shape != self.grid.shape:
            raise GeometryError(
                f"{label}: array shape {array.shape} differs from its grid's {self.grid.shape}"
            )
        view = array.view()  # read-only here; the caller's own array stays as it was
        view.flags.writeable = False
        object.__setattr__(self, "array", view)
        object.__setattr__(self, "warnings", tuple(self.warnings))
        if self.slice_counts is not None:
            counts = np.array(self.slice_counts, dtype=np.float64).reshape(-1)
            if counts.shape != (array.shape[0],):
                raise InvalidInputError(
                    f"{label}: {counts.size} slice counts for {array.shape[0]} slices"
                )
            counts.flags.writeable = False
            object.__setattr__(self, "slice_counts", counts)

    def _counts(self) -> NDArray[np.float64]:
        """Voxels (or summed fractions) inside per slice, counted once on first use."""
        if self.slice_counts is None:
            flat = self.array.reshape(self.array.shape[0], -1)
            counts = (
                flat.sum(axis=1, dtype=np.float64)
                if self.is_fractional
                else np.count_nonzero(flat, axis=1).astype(np.float64)
            )
            counts.flags.writeable = False
            object.__setattr__(self, "slice_counts", counts)  # a cache of derived data
        assert self.slice_counts is not None
        return self.slice_counts

    @property
    def is_fractional(self) -> bool:
        """True for a partial-volume (float) mask."""
        return self.array.dtype != np.bool_

    @property
    def voxels_per_slice(self) -> NDArray[np.float64]:
        """``(slices,)`` voxels inside per slice (summed fractions for fractional masks)."""
        return self._counts()

    @property
    def voxel_count(self) -> float:
        """Voxels inside (for fractional masks, the sum of the fractions)."""
        return float(self._counts().sum())

    @property
    def volume_cm3(self) -> float:
        """Volume by the voxel-count convention: voxels inside x voxel volume, in cm3.

        On a non-uniform grid each slice counts with its own slab thickness
        (:func:`slab_thicknesses_mm`).
        """
        if self.grid.is_uniform:
            return self.voxel_count * self.grid.voxel_volume_mm3 / 1000.0
        _, row_mm, column_mm = self.grid.spacing_mm
        thickness = slab_thicknesses_mm(self.grid)
        return float(self._counts() @ thickness * row_mm * column_mm / 1000.0)

    def equals(self, other: object, *, atol: float = 0.0) -> bool:
        """True when ``other`` is a mask of the same ROI number, kind, grid and values.

        Parameters
        ----------
        other
            Any object; only a :class:`Mask` can be equal.
        atol
            Largest difference of two fractional masks' values (binary masks compare
            exactly). Grids compare as :meth:`ImageGrid.equals` does.
        """
        if not (
            isinstance(other, Mask)
            and self.roi.number == other.roi.number
            and self.grid.equals(other.grid)
            and self.array.dtype == other.array.dtype
        ):
            return False
        if self.is_fractional and atol > 0:
            return bool(np.allclose(self.array, other.array, rtol=0.0, atol=atol))
        return bool(np.array_equal(self.array, other.array))

    def __repr__(self) -> str:
        kind = "fractional" if self.is_fractional else "binary"
        return (
            f"Mask(roi={self.roi.name!r}, {kind}, voxels={self.voxel_count:.0f}, "
            f"volume_cm3={self.volume_cm3:.3f})"
        )
