"""ImageGrid: where the voxels of a (slice, row, column) array sit in patient space.

Conventions
-----------
- Arrays are indexed ``[slice, row, column]`` (C order); slices increase along the plane
  normal ``row_direction x column_direction``.
- ``row_direction`` is the DICOM row cosine: the patient direction in which the *column*
  index grows (along a row). ``column_direction`` is the DICOM column cosine: the direction
  in which the *row* index grows.
- ``affine`` maps an array index ``(slice, row, column, 1)`` to patient LPS millimetres
  ``(x, y, z, 1)``. Points are ``(N, 3)`` arrays with coordinates last.
- Slices may be non-uniformly spaced: ``slice_positions_mm`` holds each slice's signed
  distance along the normal, and the affine then uses the mean spacing (``is_uniform`` is
  False). Index <-> patient conversions always honour the true slice positions.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import ArrayLike, NDArray

from rtmask._errors import GeometryError
from rtmask._gaps import median, wide_gaps
from rtmask._limits import MAX_COORDINATE_MM, MAX_EXTENT_MM, MAX_GRID_VOXELS, voxel_count

__all__ = ["ImageGrid", "slice_order"]

FloatArray = NDArray[np.float64]

#: Relative tolerance (fraction of the mean spacing) below which slice gaps count as equal.
UNIFORM_SPACING_RTOL = 1e-3
#: Absolute tolerance in mm below which slice gaps count as equal.
UNIFORM_SPACING_ATOL_MM = 1e-3


#: Slice positions within this distance (mm) of the affine's are taken from the affine.
AFFINE_POSITION_ATOL_MM = 1e-7
#: The last row of an affine.
_LAST_ROW = np.array([0.0, 0.0, 0.0, 1.0])


def _affine_map(points: FloatArray, matrix: FloatArray, offset: FloatArray) -> FloatArray:
    """``(N, 3)`` ``points @ matrix + offset``, the offset added column by column.

    Broadcasting a ``(3,)`` offset over ``(N, 3)`` runs numpy's inner loop three values at
    a time, several times slower than the matrix product itself.
    """
    result: FloatArray = points @ matrix
    for axis, value in enumerate(offset.tolist()):
        result[:, axis] += value
    return result


def _readonly(array: ArrayLike) -> FloatArray:
    result = np.array(array, dtype=np.float64, copy=True)
    result.flags.writeable = False
    return result


def _cross(u: FloatArray, v: FloatArray) -> FloatArray:
    """Cross product of two ``(3,)`` vectors (``np.cross`` costs ~25x more for one pair)."""
    u0, u1, u2 = u.tolist()
    v0, v1, v2 = v.tolist()
    return np.array([u1 * v2 - u2 * v1, u2 * v0 - u0 * v2, u0 * v1 - u1 * v0])


def _check_reach(affine: FloatArray, shape: tuple[int, ...]) -> None:
    """Refuse a grid whose corner voxel centres lie where no patient can be."""
    k, r, c = (n - 1 for n in shape)
    corners = np.array([[i, j, m, 1.0] for i in (0, k) for j in (0, r) for m in (0, c)])
    reach = float(np.abs(corners @ affine[:3].T).max())
    limit = MAX_COORDINATE_MM + MAX_EXTENT_MM
    if not reach <= limit:
        raise GeometryError(
            f"the grid's voxels reach {reach:.3g} mm from the origin, beyond the {limit:g} mm "
            "any image of a patient stays within; check the position and spacing"
        )


def _unit_directions(orientation: ArrayLike) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Split a DICOM ImageOrientationPatient (6,) into row, column and normal unit vectors."""
    values = np.asarray(orientation, dtype=np.float64).reshape(-1)
    if values.shape != (6,) or not np.all(np.isfinite(values)):
        raise GeometryError(f"image orientation must be 6 finite numbers, got {values.tolist()}")
    row, column = values[:3], values[3:]
    row_norm, column_norm = np.linalg.norm(row), np.linalg.norm(column)
    if row_norm < 1e-6 or column_norm < 1e-6:
        raise GeometryError(f"image orientation has a zero direction: {values.tolist()}")
    row, column = row / row_norm, column / column_norm
    if abs(float(row @ column)) > 1e-3:
        raise GeometryError(
            f"image orientation is not orthogonal (row . column = {float(row @ column):.4f})"
        )
    normal = _cross(row, column)
    normal /= np.linalg.norm(normal)
    return row, column, normal


def slice_order(positions_mm: ArrayLike, orientation: ArrayLike) -> NDArray[np.intp]:
    """Return the indices that sort image slices along their plane normal.

    Parameters
    ----------
    positions_mm
        ``(N, 3)`` ImagePositionPatient of each slice, LPS mm.
    orientation
        ``(6,)`` ImageOrientationPatient shared by the slices.

    Returns
    -------
    numpy.ndarray
        ``(N,)`` indices; ``positions_mm[order]`` increases along ``row x column``.
    """
    _, _, normal = _unit_directions(orientation)
    distances = np.asarray(positions_mm, dtype=np.float64).reshape(-1, 3) @ normal
    return np.argsort(distances, kind="stable")


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class ImageGrid:
    """The geometry of a 3D image: shape, index -> patient affine, frame of reference.

    Parameters
    ----------
    shape
        ``(slices, rows, columns)``.
    affine
        ``(4, 4)`` matrix mapping ``(slice, row, column, 1)`` to LPS mm.
    frame_of_reference_uid
        DICOM FrameOfReferenceUID the coordinates refer to, if known.
    slice_positions_mm
        ``(slices,)`` signed distance of each slice plane along the unit normal, strictly
        increasing. Defaults to the positions implied by the affine (uniform spacing).

    Raises
    ------
    GeometryError
        An invalid shape or affine, more than :data:`rtmask._limits.MAX_GRID_VOXELS`
        voxels, or corner voxels beyond the coordinates any patient can have (200 m).
    """

    shape: tuple[int, int, int]
    affine: FloatArray
    frame_of_reference_uid: str | None = None
    slice_positions_mm: FloatArray = field(default_factory=lambda: np.empty(0))
    #: Row direction, column direction and normal, ``(3, 3)``, derived once.
    _directions: FloatArray = field(init=False, repr=False, compare=False)
    #: Whether the slices are evenly spaced, and the ``(4, 3)`` patient -> index map
    #: (transposed inverse of the affine's ``(3, 3)`` part, then its offset): derived
    #: once, on first use.
    _uniform: bool | None = field(default=None, init=False, repr=False, compare=False)
    _on_affine: bool | None = field(default=None, init=False, repr=False, compare=False)
    _to_index: FloatArray | None = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        shape = tuple(int(n) for n in self.shape)
        if len(shape) != 3 or min(shape) < 1:
            raise GeometryError(
                f"grid shape must be 3 positive numbers of (slices, rows, columns), got "
                f"{self.shape}; the image or dose header's Rows, Columns or frames are wrong"
            )
        if voxel_count(shape) > MAX_GRID_VOXELS:
            raise GeometryError(
                f"a grid of {' x '.join(map(str, shape))} voxels exceeds the limit of "
                f"{MAX_GRID_VOXELS:.3g} voxels; check the Rows, Columns and number of slices"
            )
        affine = np.asarray(self.affine, dtype=np.float64)
        if affine.shape != (4, 4) or not np.all(np.isfinite(affine)):
            raise GeometryError(
                "grid affine must be a finite 4x4 matrix; the position, orientation or "
                "spacing it was built from is not finite"
            )
        _check_reach(affine, shape)
        if np.any(np.abs(affine[3] - _LAST_ROW) > 1e-8 + 1e-5 * _LAST_ROW):  # as np.allclose
            raise GeometryError(f"grid affine's last row must be [0, 0, 0, 1], got {affine[3]}")
        if abs(np.linalg.det(affine[:3, :3])) < 1e-12:
            raise GeometryError("grid affine is singular (a zero or repeated axis)")
        object.__setattr__(self, "shape", shape)
        object.__setattr__(self, "affine", _readonly(affine))
        normal = _cross(affine[:3, 2], affine[:3, 1])
        normal /= np.linalg.norm(normal)
        if len(self.slice_positions_mm) == 0:
            start = float(affine[:3, 3] @ normal)
            step = float(affine[:3, 0] @ normal)
            positions = start + step * np.arange(shape[0], dtype=np.float64)
        else:
            positions = np.asarray(self.slice_positions_mm, dtype=np.float64).reshape(-1)
            if positions.shape != (shape[0],):
                raise GeometryError(f"{positions.size} slice positions given for {shape[0]} slices")
        if shape[0] > 1 and not np.all(np.diff(positions) > 0):
            raise GeometryError(
                "slice positions must increase strictly along the normal "
                "(duplicate slices, or slices given in the wrong order)"
            )
        object.__setattr__(self, "slice_positions_mm", _readonly(positions))
        row = affine[:3, 2] / np.linalg.norm(affine[:3, 2])
        column = affine[:3, 1] / np.linalg.norm(affine[:3, 1])
        object.__setattr__(self, "_directions", _readonly([row, column, normal]))

    # ----------------------------------------------------------------- construction
    @classmethod
    def from_slices(
        cls,
        *,
        positions_mm: ArrayLike,
        orientation: ArrayLike,
        pixel_spacing_mm: Sequence[float],
        rows: int,
        columns: int,
        frame_of_reference_uid: str | None = None,
    ) -> ImageGrid:
        """Build the grid of an image series from its per-slice header values.

        Parameters
        ----------
        positions_mm
            ``(N, 3)`` ImagePositionPatient of every slice, in any order.
        orientation
            ``(6,)`` ImageOrientationPatient (row cosine, then column cosine).
        pixel_spacing_mm
            DICOM PixelSpacing ``(between rows, between columns)`` in mm.
        rows, columns
            Rows and Columns of every slice.
        frame_of_reference_uid
            FrameOfReferenceUID of the series.

        Raises
        ------
        GeometryError
            When slices are duplicated, or not stacked along the normal (gantry tilt with
            non-uniform spacing).
        """
        row_dir, column_dir, normal = _unit_directions(orientation)
        positions = np.asarray(positions_mm, dtype=np.float64).reshape(-1, 3)
        if positions.shape[0] == 0 or not np.all(np.isfinite(positions)):
            raise GeometryError(
                "image positions (ImagePositionPatient) must be finite numbers, at least one"
            )
        spacing = np.asarray(pixel_spacing_mm, dtype=np.float64).reshape(-1)
        if spacing.shape != (2,) or not np.all(spacing > 0):
            raise GeometryError(f"pixel spacing must be 2 positive numbers, got {spacing}")
        positions = positions[slice_order(positions, orientation)]
        distances = positions @ normal
        if positions.shape[0] > 1 and np.any(np.diff(distances) < 1e-4):
            raise GeometryError(
                "two slices share the same plane position (duplicate images in the series?)"
            )
        n_slices = positions.shape[0]
        if n_slices > 1:
            step = (positions[-1] - positions[0]) / (n_slices - 1)
        else:
            # A single slice: give it a nominal thickness of one in-plane pixel.
            step = normal * float(spacing.min())
        affine = np.eye(4)
        affine[:3, 0] = step
        affine[:3, 1] = column_dir * spacing[0]
        affine[:3, 2] = row_dir * spacing[1]
        affine[:3, 3] = positions[0]
        if n_slices > 2:
            expected = positions[0] + np.outer(np.arange(n_slices), step)
            in_plane_error = (positions - expected) - np.outer(
                (positions - expected) @ normal, normal
            )
            if np.abs(in_plane_error).max() > 0.01 * float(spacing.min()) + 1e-3:
                raise GeometryError(
                    "slices are not stacked on a straight line (gantry tilt with uneven "
                    "spacing is not supported)"
                )
        return cls(
            shape=(n_slices, int(rows), int(columns)),
            affine=affine,
            frame_of_reference_uid=frame_of_reference_uid,
            slice_positions_mm=distances,
        )

    @classmethod
    def from_explicit(
        cls,
        *,
        origin_mm: Sequence[float],
        spacing_mm: Sequence[float],
        shape: Sequence[int],
        orientation: Sequence[float] = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0),
        frame_of_reference_uid: str | None = None,
    ) -> ImageGrid:
        """Build a uniform grid from numbers.

        Parameters
        ----------
        origin_mm
            LPS position of the centre of voxel ``[0, 0, 0]``.
        spacing_mm
            ``(slice, row, column)`` spacing in mm.
        shape
            ``(slices, rows, columns)``.
        orientation
            DICOM-style ``(6,)`` row cosine then column cosine; slices follow their cross
            product. Default: axial, head first supine.
        frame_of_reference_uid
            Frame of reference the grid lives in.
        """
        row_dir, column_dir, normal = _unit_directions(orientation)
        spacing = np.asarray(spacing_mm, dtype=np.float64).reshape(-1)
        if spacing.shape != (3,) or not np.all(spacing > 0):
            raise GeometryError(f"spacing must be 3 positive numbers, got {spacing.tolist()}")
        affine = np.eye(4)
        affine[:3, 0] = normal * spacing[0]
        affine[:3, 1] = column_dir * spacing[1]
        affine[:3, 2] = row_dir * spacing[2]
        affine[:3, 3] = np.asarray(origin_mm, dtype=np.float64).reshape(3)
        shape_tuple = tuple(int(n) for n in shape)
        if len(shape_tuple) != 3:
            raise GeometryError(f"grid shape must be 3 integers, got {tuple(shape)}")
        return cls(
            shape=(shape_tuple[0], shape_tuple[1], shape_tuple[2]),
            affine=affine,
            frame_of_reference_uid=frame_of_reference_uid,
        )

    @classmethod
    def covering(
        cls,
        points_mm: ArrayLike,
        *,
        spacing_mm: Sequence[float],
        orientation: Sequence[float] = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0),
        margin_mm: float = 0.0,
        frame_of_reference_uid: str | None = None,
    ) -> ImageGrid:
        """Build the smallest uniform grid whose voxels cover ``points_mm`` (plus a margin).

        Parameters
        ----------
        points_mm
            ``(N, 3)`` LPS points, e.g. every contour vertex of a structure set.
        spacing_mm
            ``(slice, row, column)`` spacing in mm.
        orientation
            Row and column cosines of the grid (default axial).
        margin_mm
            Extra distance added on every side.
        frame_of_reference_uid
            Frame of reference of the points.
        """
        row_dir, column_dir, normal = _unit_directions(orientation)
        points = np.asarray(points_mm, dtype=np.float64).reshape(-1, 3)
        if points.shape[0] == 0:
            raise GeometryError("cannot build a grid covering no points")
        spacing = np.asarray(spacing_mm, dtype=np.float64).reshape(3)
        if not np.all(spacing > 0):
            raise GeometryError(f"spacing must be 3 positive numbers, got {spacing.tolist()}")
        axes = np.stack([normal, column_dir, row_dir])  # (3 axes, xyz)
        coordinates = points @ np.ascontiguousarray(axes.T)  # (N, [slice, row, column]) mm
        low = coordinates.min(axis=0) - margin_mm
        high = coordinates.max(axis=0) + margin_mm
        counts = np.maximum(np.ceil((high - low) / spacing - 1e-9) + 1, 1)  # sized first
        if not float(np.prod(counts)) <= MAX_GRID_VOXELS:
            raise GeometryError(
                f"a grid covering points {(high - low).max():.4g} mm apart at "
                f"{spacing.min():g} mm spacing would have {float(np.prod(counts)):.3g} "
                f"voxels, more than the limit of {MAX_GRID_VOXELS:.3g}; check the points' "
                "coordinates or give a larger spacing_mm"
            )
        shape = counts.astype(int)
        centre = (low + high) / 2
        first = centre - (shape - 1) * spacing / 2
        return cls.from_explicit(
            origin_mm=first @ axes,
            spacing_mm=spacing.tolist(),
            shape=shape.tolist(),
            orientation=orientation,
            frame_of_reference_uid=frame_of_reference_uid,
        )

    # ----------------------------------------------------------------- properties
    @property
    def row_direction(self) -> FloatArray:
        """Unit LPS vector along which the column index grows (DICOM row cosine), ``(3,)``."""
        return np.asarray(self._directions[0])

    @property
    def column_direction(self) -> FloatArray:
        """Unit LPS vector along which the row index grows (DICOM column cosine), ``(3,)``."""
        return np.asarray(self._directions[1])

    @property
    def normal(self) -> FloatArray:
        """Unit plane normal ``row_direction x column_direction``, ``(3,)``."""
        return np.asarray(self._directions[2])

    @property
    def orientation(self) -> tuple[float, ...]:
        """DICOM ImageOrientationPatient of the planes (6 floats)."""
        return tuple(float(v) for v in (*self.row_direction, *self.column_direction))

    @property
    def origin_mm(self) -> FloatArray:
        """LPS centre of voxel ``[0, 0, 0]``, ``(3,)``."""
        return np.asarray(self.affine[:3, 3].copy())

    @property
    def spacing_mm(self) -> tuple[float, float, float]:
        """``(slice, row, column)`` spacing in mm; the slice value is the mean spacing."""
        slice_spacing = (
            float(np.mean(np.diff(self.slice_positions_mm)))
            if self.shape[0] > 1
            else float(np.linalg.norm(self.affine[:3, 0]))
        )
        return (
            slice_spacing,
            float(np.linalg.norm(self.affine[:3, 1])),
            float(np.linalg.norm(self.affine[:3, 2])),
        )

    @property
    def slice_gaps_mm(self) -> FloatArray:
        """Distances between consecutive slices along the normal, ``(slices - 1,)``."""
        return np.asarray(np.diff(self.slice_positions_mm))

    @property
    def is_uniform(self) -> bool:
        """True when every slice gap equals the mean gap (within 0.1 % or 0.001 mm)."""
        if self._uniform is None:
            gaps = self.slice_gaps_mm
            uniform = True
            if gaps.size >= 2:
                mean = float(gaps.mean())
                tolerance = max(UNIFORM_SPACING_ATOL_MM, UNIFORM_SPACING_RTOL * mean)
                uniform = bool(np.abs(gaps - mean).max() <= tolerance)
            object.__setattr__(self, "_uniform", uniform)
        return bool(self._uniform)

    @property
    def _slices_on_affine(self) -> bool:
        """True when the affine alone places every slice (within AFFINE_POSITION_ATOL_MM).

        Otherwise (uneven slices, or even within ``is_uniform``'s tolerance but not
        exactly) the conversions correct the affine's slice positions to the true ones.
        """
        if self._on_affine is None:
            start, step = self._affine_slices()
            implied = start + step * np.arange(self.shape[0], dtype=np.float64)
            deviation = float(np.abs(self.slice_positions_mm - implied).max())
            object.__setattr__(self, "_on_affine", deviation <= AFFINE_POSITION_ATOL_MM)
        return bool(self._on_affine)

    def _affine_slices(self) -> tuple[float, float]:
        """Where the affine puts slice 0 along the normal, and its step per slice (mm)."""
        normal = self.normal
        return float(self.affine[:3, 3] @ normal), float(self.affine[:3, 0] @ normal)

    @property
    def voxel_volume_mm3(self) -> float:
        """Volume of one voxel in mm3 (mean slice spacing for non-uniform grids)."""
        return (
            float(abs(np.linalg.det(self.affine[:3, :3])))
            if self.is_uniform
            else float(np.prod(self.spacing_mm))
        )

    @property
    def n_voxels(self) -> int:
        """Number of voxels."""
        return int(np.prod(self.shape))

    def irregularities(self) -> list[str]:
        """Describe non-uniform spacing and likely missing slices, one sentence each."""
        gaps = self.slice_gaps_mm
        if self.is_uniform or gaps.size == 0:
            return []
        usual, missing = wide_gaps(gaps)
        messages = []
        for index in missing[:5]:
            count = round(gaps[index] / usual) - 1
            messages.append(
                f"gap of {gaps[index]:.3g} mm between slices {index} and {index + 1} "
                f"(about {count} missing slice(s) at {usual:.3g} mm spacing)"
            )
        if missing.size > 5:
            messages.append(f"... and {missing.size - 5} more gaps")
        if missing.size == 0:
            messages.append(f"slice spacing varies from {gaps.min():.4g} to {gaps.max():.4g} mm")
        return messages

    # ----------------------------------------------------------------- conversions
    def index_to_patient(self, indices: ArrayLike) -> FloatArray:
        """Map ``(N, 3)`` continuous ``(slice, row, column)`` indices to LPS mm ``(N, 3)``."""
        index = np.asarray(indices, dtype=np.float64).reshape(-1, 3)
        # A C-ordered copy of the transpose: matmul with a transposed view is ~4x slower.
        points = _affine_map(index, np.ascontiguousarray(self.affine[:3, :3].T), self.affine[:3, 3])
        if not self._slices_on_affine:
            # Move each point along the normal from the affine's position to the true one.
            start, step = self._affine_slices()
            true_position = self._interp_positions(index[:, 0])
            points += np.outer(true_position - (start + index[:, 0] * step), self.normal)
        return np.asarray(points)

    def patient_to_index(self, points_mm: ArrayLike) -> FloatArray:
        """Map ``(N, 3)`` LPS mm points to continuous ``(slice, row, column)`` indices."""
        points = np.asarray(points_mm, dtype=np.float64).reshape(-1, 3)
        if self._to_index is None:
            inverse = np.linalg.inv(self.affine)
            object.__setattr__(self, "_to_index", _readonly([*inverse[:3, :3].T, inverse[:3, 3]]))
        assert self._to_index is not None
        index = _affine_map(points, self._to_index[:3], self._to_index[3])
        if not self._slices_on_affine:
            distances = points @ self.normal
            index[:, 0] = self._slice_index_of(distances)
        return np.asarray(index)

    def slice_index_of(self, distances_mm: ArrayLike) -> FloatArray:
        """Continuous slice index of plane positions (signed mm along the normal)."""
        return self._slice_index_of(np.asarray(distances_mm, dtype=np.float64))

    def _slice_index_of(self, distances: FloatArray) -> FloatArray:
        positions = self.slice_positions_mm
        if positions.size == 1:
            return np.asarray((distances - positions[0]) / self.spacing_mm[0])
        if self._slices_on_affine:  # evenly spaced: a straight line (and its extension)
            start, step = self._affine_slices()
            return np.asarray((distances - start) / step)
        index = np.interp(distances, positions, np.arange(positions.size, dtype=np.float64))
        # Extrapolate linearly with the end gaps, so outside points stay outside.
        below, above = distances < positions[0], distances > positions[-1]
        index[below] = (distances[below] - positions[0]) / (positions[1] - positions[0])
        index[above] = (
            positions.size
            - 1
            + (distances[above] - positions[-1]) / (positions[-1] - positions[-2])
        )
        return np.asarray(index)

    def _interp_positions(self, slice_index: FloatArray) -> FloatArray:
        positions = self.slice_positions_mm
        if positions.size == 1:
            return np.asarray(positions[0] + slice_index * self.spacing_mm[0])
        k = np.arange(positions.size, dtype=np.float64)
        result = np.interp(slice_index, k, positions)
        below, above = slice_index < 0, slice_index > positions.size - 1
        result[below] = positions[0] + slice_index[below] * (positions[1] - positions[0])
        result[above] = positions[-1] + (slice_index[above] - k[-1]) * (
            positions[-1] - positions[-2]
        )
        return np.asarray(result)

    def slice_origins_mm(self) -> FloatArray:
        """LPS position of voxel ``[k, 0, 0]`` of every slice, ``(slices, 3)``."""
        k = np.arange(self.shape[0], dtype=np.float64)
        return self.index_to_patient(np.column_stack([k, np.zeros_like(k), np.zeros_like(k)]))

    def ijk_affine_lps(self) -> FloatArray:
        """4x4 LPS affine for ``(column, row, slice)`` indices (ITK / NRRD order)."""
        affine = np.eye(4)
        affine[:3, 0] = self.affine[:3, 2]
        affine[:3, 1] = self.affine[:3, 1]
        affine[:3, 2] = self.affine[:3, 0]
        affine[:3, 3] = self.affine[:3, 3]
        return affine

    def nifti_affine(self) -> FloatArray:
        """4x4 RAS affine for ``(column, row, slice)`` indices, as SimpleITK writes NIfTI."""
        return np.diag([-1.0, -1.0, 1.0, 1.0]) @ self.ijk_affine_lps()

    # ----------------------------------------------------------------- derived grids
    def with_uniform_slices(self, spacing_mm: float | None = None) -> ImageGrid:
        """Return a uniform grid spanning the same slices (default: the median gap)."""
        gaps = self.slice_gaps_mm
        step = float(spacing_mm) if spacing_mm else median(gaps) if gaps.size else 1.0
        if not (np.isfinite(step) and step > 0):
            raise GeometryError(f"slice spacing must be a positive number of mm, got {step}")
        extent = float(self.slice_positions_mm[-1] - self.slice_positions_mm[0])
        slices = np.floor(extent / step + 1e-6) + 1  # sized before it becomes an integer
        if not slices * self.shape[1] * self.shape[2] <= MAX_GRID_VOXELS:
            raise GeometryError(
                f"resampling {extent:.4g} mm of slices {step:g} mm apart gives {slices:.3g} "
                f"slices of {self.shape[1]} x {self.shape[2]} voxels, more than the limit of "
                f"{MAX_GRID_VOXELS:.3g} voxels; give a larger slice spacing"
            )
        n_slices = int(slices)
        affine = np.array(self.affine, copy=True)
        affine[:3, 0] = self.normal * step
        affine[:3, 3] = self.index_to_patient([[0.0, 0.0, 0.0]])[0]
        return ImageGrid(
            shape=(n_slices, self.shape[1], self.shape[2]),
            affine=affine,
            frame_of_reference_uid=self.frame_of_reference_uid,
        )

    def equals(self, other: object, *, atol: float = 1e-4) -> bool:
        """True when ``other`` is a grid with the same shape, affine and slice positions."""
        if not isinstance(other, ImageGrid) or self.shape != other.shape:
            return False
        return bool(
            np.allclose(self.affine, other.affine, atol=atol)
            and np.allclose(self.slice_positions_mm, other.slice_positions_mm, atol=atol)
            and self.frame_of_reference_uid == other.frame_of_reference_uid
        )

    def mismatch(self, other: ImageGrid, *, atol: float = 1e-4) -> str | None:
        """How ``other`` differs from this grid, in words; None when it is the same grid.

        Shape, affine and slice positions (within ``atol`` mm) must agree; the frames of
        reference only when both grids name one.
        """
        frames = {self.frame_of_reference_uid, other.frame_of_reference_uid} - {None}
        if other.shape != self.shape:
            return f"its shape {other.shape} is not {self.shape}"
        if not np.allclose(other.affine, self.affine, rtol=0, atol=atol):
            offset = float(np.abs(other.affine - self.affine).max())
            return f"its affine differs by up to {offset:.4g} (mm per index)"
        if not np.allclose(other.slice_positions_mm, self.slice_positions_mm, rtol=0, atol=atol):
            return "its slice positions differ"
        if len(frames) > 1:
            return (
                f"its frame of reference {other.frame_of_reference_uid} is not "
                f"{self.frame_of_reference_uid}"
            )
        return None

    def __repr__(self) -> str:
        spacing = ", ".join(f"{s:.4g}" for s in self.spacing_mm)
        uniform = "" if self.is_uniform else ", non-uniform slices"
        return f"ImageGrid(shape={self.shape}, spacing_mm=({spacing}){uniform})"
