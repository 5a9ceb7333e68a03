"""Placing a mask file's voxels on a reference ImageGrid: an exact axis permutation and flip.

A file is accepted when every one of its voxel centres coincides with a voxel centre of
the grid (within :data:`CENTRE_TOLERANCE_MM`) under a mapping that sends each file axis to
one grid axis, possibly reversed. The data are then re-indexed, never interpolated: a
file written by SimpleITK (``i = column, j = row, k = slice``), by nibabel after
``as_closest_canonical`` (axes flipped to RAS) or by rtmask itself all map back exactly.

Both index -> patient maps are separable (a sum of one term per axis: the in-plane affine
plus a per-slice offset along the normal for non-uniform slices), so the largest centre
distance is bounded by checking the first voxel and the three lines of voxels through it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from rtmask._errors import GeometryError
from rtmask.geometry import ImageGrid

__all__ = ["CENTRE_TOLERANCE_MM", "FileGeometry", "Placement", "place_on_grid"]

#: Largest distance (mm) between a file's voxel centre and the grid's voxel centre it maps to.
CENTRE_TOLERANCE_MM = 1e-3

#: What to do about a mismatch, shared by every message.
MISMATCH_ADVICE = (
    "pass the image series the masks were made on with --image, or resample the masks onto it"
)

IndexToPatient = Callable[[NDArray[np.float64]], NDArray[np.float64]]


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class FileGeometry:
    """Where a file's voxels are: its data shape and its index -> LPS mm map.

    Parameters
    ----------
    shape
        The data array's shape, in the array's own axis order.
    affine_lps
        ``(4, 4)`` map from the array's indices (same axis order) to LPS mm; for files with
        non-uniform slices the mean-spacing affine.
    index_to_patient
        The exact map of ``(N, 3)`` indices to ``(N, 3)`` LPS mm when it is not the affine
        (an ``.npz`` with non-uniform slice positions); None: the affine is exact.
    affine_only
        True when the format can hold only an affine (NIfTI, NRRD), so the true slice
        positions of a non-uniform grid cannot be checked.
    """

    shape: tuple[int, int, int]
    affine_lps: NDArray[np.float64]
    index_to_patient: IndexToPatient | None = None
    affine_only: bool = True

    def to_patient(self, indices: NDArray[np.float64]) -> NDArray[np.float64]:
        """LPS mm of ``(N, 3)`` array indices."""
        if self.index_to_patient is not None:
            return self.index_to_patient(indices)
        return np.asarray(indices @ self.affine_lps[:3, :3].T + self.affine_lps[:3, 3])


@dataclass(frozen=True, slots=True, kw_only=True)
class Placement:
    """How a file array maps onto the grid's ``(slice, row, column)`` array.

    Parameters
    ----------
    axes
        ``axes[g]`` is the file axis that becomes grid axis ``g`` (for ``numpy.transpose``).
    flips
        ``flips[g]`` is True when grid axis ``g`` runs opposite to its file axis.
    deviation_mm
        Upper bound of the distance between mapped voxel centres.
    slice_positions_unchecked
        True when the grid has non-uniform slices and the file only an affine: then the
        in-plane geometry, the first and last slice positions and the slice count were
        compared, not every slice position.
    """

    axes: tuple[int, int, int]
    flips: tuple[bool, bool, bool]
    deviation_mm: float
    slice_positions_unchecked: bool = False

    @property
    def is_identity(self) -> bool:
        """True when the file array is already in grid order."""
        return self.axes == (0, 1, 2) and not any(self.flips)

    def apply(self, data: NDArray[np.generic]) -> NDArray[np.generic]:
        """``data`` (3D, file axis order) as a view in grid ``(slice, row, column)`` order."""
        view = np.transpose(data, self.axes)
        index = tuple(slice(None, None, -1) if flip else slice(None) for flip in self.flips)
        return view[index]


def _assign_axes(rotation: NDArray[np.float64], shape: tuple[int, int, int]) -> tuple[int, ...]:
    """Grid axis of each file axis: the one its direction is closest to (a permutation)."""
    assigned: list[int | None] = [None, None, None]
    used: set[int] = set()
    # Longer axes first: their directions say most; one-voxel axes take what is left.
    for axis in sorted(range(3), key=lambda a: -shape[a]):
        weights = np.abs(rotation[:, axis])
        for grid_axis in np.argsort(-weights, kind="stable"):
            if int(grid_axis) not in used:
                assigned[axis] = int(grid_axis)
                used.add(int(grid_axis))
                break
    return tuple(int(a) for a in assigned if a is not None)


def _describe(
    shape: tuple[int, ...], spacing: tuple[float, ...], origin: NDArray[np.float64]
) -> str:
    size = "x".join(str(n) for n in shape)
    steps = "x".join(f"{s:.4g}" for s in spacing)
    first = ", ".join(f"{v:.2f}" for v in origin)
    return f"{size} voxels of {steps} mm, first voxel at ({first}) mm"


def _mismatch(
    path: Path,
    *,
    geometry: FileGeometry,
    grid: ImageGrid,
    axes_of_file: tuple[int, ...],
    flips_of_file: tuple[bool, ...],
    detail: str,
) -> GeometryError:
    """The one-line error for a file that does not fit the grid (both in grid axis order)."""
    order = tuple(axes_of_file.index(g) for g in range(3))
    spacing = tuple(float(np.linalg.norm(geometry.affine_lps[:3, a])) for a in order)
    shape = tuple(geometry.shape[a] for a in order)
    # The file voxel that would be the grid's voxel [0, 0, 0].
    corner = np.array(
        [[geometry.shape[a] - 1 if flips_of_file[a] else 0 for a in range(3)]], dtype=np.float64
    )
    origin = geometry.to_patient(corner)[0]
    grid_text = _describe(grid.shape, grid.spacing_mm, grid.origin_mm)
    return GeometryError(
        f"{path}: the mask's geometry ({_describe(shape, spacing, origin)}) does not match the "
        f"image grid ({grid_text}; slices x rows x columns){detail}; {MISMATCH_ADVICE}"
    )


def _deviation(
    geometry: FileGeometry,
    reference: IndexToPatient,
    axes_of_file: tuple[int, ...],
    flips_of_file: tuple[bool, ...],
    grid_shape: tuple[int, int, int],
) -> float:
    """Upper bound (mm) of the distance between every file voxel centre and its grid centre."""

    def grid_index(file_index: NDArray[np.float64]) -> NDArray[np.float64]:
        mapped = np.empty_like(file_index)
        for axis in range(3):
            grid_axis = axes_of_file[axis]
            values = file_index[:, axis]
            if flips_of_file[axis]:
                values = grid_shape[grid_axis] - 1 - values
            mapped[:, grid_axis] = values
        return mapped

    def offsets(file_index: NDArray[np.float64]) -> NDArray[np.float64]:
        return np.asarray(geometry.to_patient(file_index) - reference(grid_index(file_index)))

    first = offsets(np.zeros((1, 3)))[0]
    bound = float(np.linalg.norm(first))
    for axis in range(3):
        line = np.zeros((geometry.shape[axis], 3))
        line[:, axis] = np.arange(geometry.shape[axis], dtype=np.float64)
        along = offsets(line) - first
        bound += float(np.linalg.norm(along, axis=1).max())
    return bound


def place_on_grid(path: Path, geometry: FileGeometry, grid: ImageGrid) -> Placement:
    """Find the exact axis permutation and flips that put a file's voxels on ``grid``.

    Parameters
    ----------
    path
        The file (for messages).
    geometry
        The file's shape and index -> LPS map.
    grid
        The reference grid.

    Returns
    -------
    Placement
        Apply it to the file's array to get a ``grid.shape`` view.

    Raises
    ------
    GeometryError
        When no permutation and flip puts every file voxel centre within
        :data:`CENTRE_TOLERANCE_MM` of a grid voxel centre (one line: both geometries and
        what to do).
    """
    affine = np.asarray(geometry.affine_lps, dtype=np.float64)
    if affine.shape != (4, 4) or not np.all(np.isfinite(affine)):
        raise GeometryError(f"{path}: the file's voxel-to-patient matrix is not a finite 4x4")
    if abs(float(np.linalg.det(affine[:3, :3]))) < 1e-12:
        raise GeometryError(f"{path}: the file's voxel-to-patient matrix is singular")
    rotation = np.linalg.inv(grid.affine) @ affine
    axes_of_file = _assign_axes(rotation[:3, :3], geometry.shape)
    flips_of_file = tuple(bool(rotation[axes_of_file[a], a] < 0) for a in range(3))
    order = tuple(axes_of_file.index(g) for g in range(3))  # file axis of each grid axis
    mapped_shape = tuple(geometry.shape[a] for a in order)
    if mapped_shape != grid.shape:
        raise _mismatch(
            path,
            geometry=geometry,
            grid=grid,
            axes_of_file=axes_of_file,
            flips_of_file=flips_of_file,
            detail="",
        )
    compare_affine_only = geometry.affine_only and not grid.is_uniform
    reference: IndexToPatient
    if compare_affine_only:
        grid_affine = grid.affine

        def reference(index: NDArray[np.float64]) -> NDArray[np.float64]:
            return np.asarray(index @ grid_affine[:3, :3].T + grid_affine[:3, 3])

    else:
        reference = grid.index_to_patient
    deviation = _deviation(geometry, reference, axes_of_file, flips_of_file, grid.shape)
    if deviation > CENTRE_TOLERANCE_MM:
        raise _mismatch(
            path,
            geometry=geometry,
            grid=grid,
            axes_of_file=axes_of_file,
            flips_of_file=flips_of_file,
            detail=f"; voxel centres up to {deviation:.3g} mm apart",
        )
    flips = tuple(flips_of_file[a] for a in order)
    return Placement(
        axes=(order[0], order[1], order[2]),
        flips=(flips[0], flips[1], flips[2]),
        deviation_mm=deviation,
        slice_positions_unchecked=compare_affine_only,
    )
