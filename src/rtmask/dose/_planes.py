"""Dose planes, isodose lines and the dose on a grid's faces.

A plane is cut from a dose grid along one of the patient axes (axial: constant z, coronal:
constant y, sagittal: constant x), on a grid whose axes lie along the patient axes.
Between two frames the plane is interpolated linearly (exact for a dose linear along the
axis), or snapped to the nearest frame when it lies within ``snap_mm`` (as
dicompyler-core's ``GetDoseGrid`` does with its threshold).

Isodose lines are traced by marching squares on the plane: each crossing of the level is
placed by linear interpolation along a cell edge, and saddle cells are split by the mean
of their four corners. The plane is surrounded by a margin below the level first, so
every line is a closed ring (a region touching the grid's border is closed along it).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

from rtmask._errors import GeometryError, InvalidInputError
from rtmask.dose._model import DoseGrid
from rtmask.geometry import ImageGrid

__all__ = [
    "BOUNDARY_DOSE_SHARE",
    "DosePlane",
    "PlaneAxis",
    "boundary_dose_note",
    "dose_plane",
    "image_plane",
    "isodose_lines",
    "max_boundary_dose_gy",
]

FloatArray = NDArray[np.float64]
PlaneAxis = Literal["axial", "coronal", "sagittal"]

#: The patient coordinate (LPS x, y, z) held constant on a plane of each kind.
_AXIS_COORDINATE = {"sagittal": 0, "coronal": 1, "axial": 2}
#: A grid axis within this of a patient axis (1 - cosine) counts as along it.
_ALIGNED = 1e-3
#: Index tolerance at the outermost frames.
_EDGE = 1e-6
#: Share of the maximum dose on the grid's faces above which ``rtmask dvh`` warns.
BOUNDARY_DOSE_SHARE = 0.10


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class DosePlane:
    """A 2D dose plane in Gy with the positions of its samples in patient space.

    Parameters
    ----------
    dose_gy
        ``(rows, columns)`` dose in Gy.
    origin_mm
        LPS position (mm) of sample ``[0, 0]``, ``(3,)``.
    row_direction
        Unit LPS vector along which the column index grows, ``(3,)``.
    column_direction
        Unit LPS vector along which the row index grows, ``(3,)``.
    row_offsets_mm
        ``(rows,)`` distance (mm) of each row from ``origin_mm`` along
        ``column_direction``, increasing (not necessarily evenly: dose frames may not be).
    column_offsets_mm
        ``(columns,)`` distance (mm) of each column along ``row_direction``, increasing.
    axis
        ``"axial"``, ``"coronal"`` or ``"sagittal"``.
    position_mm
        The plane's patient coordinate (z, y or x in mm).
    frame_of_reference_uid
        The dose's frame of reference, if known.
    """

    dose_gy: FloatArray
    origin_mm: FloatArray
    row_direction: FloatArray
    column_direction: FloatArray
    row_offsets_mm: FloatArray
    column_offsets_mm: FloatArray
    axis: PlaneAxis
    position_mm: float
    frame_of_reference_uid: str | None = None

    def __post_init__(self) -> None:
        for name in (
            "dose_gy",
            "origin_mm",
            "row_direction",
            "column_direction",
            "row_offsets_mm",
            "column_offsets_mm",
        ):
            array = np.array(getattr(self, name), dtype=np.float64, copy=True)
            array.flags.writeable = False
            object.__setattr__(self, name, array)
        rows, columns = self.dose_gy.shape
        if self.row_offsets_mm.shape != (rows,) or self.column_offsets_mm.shape != (columns,):
            raise InvalidInputError(
                f"a dose plane of shape {self.dose_gy.shape} needs {rows} row and {columns} "
                f"column offsets, got {self.row_offsets_mm.size} and "
                f"{self.column_offsets_mm.size}"
            )

    @property
    def shape(self) -> tuple[int, int]:
        """``(rows, columns)``."""
        rows, columns = self.dose_gy.shape
        return rows, columns

    @property
    def max_gy(self) -> float:
        """Largest dose on the plane in Gy."""
        return float(self.dose_gy.max())

    def index_to_patient(self, indices: NDArray[np.float64]) -> FloatArray:
        """LPS points (mm) of ``(N, 2)`` continuous ``(row, column)`` indices, ``(N, 3)``.

        Offsets between samples are interpolated linearly (uneven rows are honoured).
        """
        index = np.asarray(indices, dtype=np.float64).reshape(-1, 2)
        rows, columns = self.shape
        down = np.interp(index[:, 0], np.arange(rows), self.row_offsets_mm)
        across = np.interp(index[:, 1], np.arange(columns), self.column_offsets_mm)
        return np.asarray(
            self.origin_mm
            + down[:, None] * self.column_direction
            + across[:, None] * self.row_direction
        )

    def points_mm(self) -> FloatArray:
        """LPS position (mm) of every sample, ``(rows, columns, 3)``."""
        return np.asarray(
            self.origin_mm
            + self.row_offsets_mm[:, None, None] * self.column_direction
            + self.column_offsets_mm[None, :, None] * self.row_direction
        )


def _grid_axes(grid: ImageGrid) -> tuple[FloatArray, FloatArray]:
    """Unit directions of the slice, row and column index axes ``(3, 3)``, and steps (mm)."""
    directions = np.stack([grid.normal, grid.column_direction, grid.row_direction])
    _, row_mm, column_mm = grid.spacing_mm
    return directions, np.array([0.0, row_mm, column_mm])


def _offsets(grid: ImageGrid, index_axis: int, step_mm: float) -> FloatArray:
    """Distances (mm) of the samples along ``index_axis`` from the first one."""
    if index_axis == 0:
        positions = np.asarray(grid.slice_positions_mm, dtype=np.float64)
        return np.asarray(positions - positions[0])
    return np.arange(grid.shape[index_axis], dtype=np.float64) * step_mm


def _aligned_axis(grid: ImageGrid, axis: str, where: str) -> int:
    """The grid index axis along the patient coordinate held constant on ``axis`` planes."""
    if axis not in _AXIS_COORDINATE:
        raise InvalidInputError(f"axis must be axial, coronal or sagittal, got {axis!r}")
    coordinate = _AXIS_COORDINATE[axis]
    directions, _ = _grid_axes(grid)
    along = int(np.argmax(np.abs(directions[:, coordinate])))
    if abs(directions[along, coordinate]) < 1 - _ALIGNED:
        raise GeometryError(
            f"{where}the grid's axes are oblique to the patient axes, so it has no "
            f"{axis} planes; resample it onto an axis-aligned grid first"
        )
    return along


def _continuous_index(grid: ImageGrid, along: int, coordinate: int, position: float) -> float:
    """Continuous index along ``along`` of the plane at patient ``coordinate`` = position."""
    centre = grid.index_to_patient((np.asarray(grid.shape) - 1) / 2.0)[0]
    centre[coordinate] = position
    return float(grid.patient_to_index(centre[None, :])[0, along])


def _plane(
    values: NDArray[Any], grid: ImageGrid, t: float, along: int, *, axis: PlaneAxis, position: float
) -> DosePlane:
    """The plane at continuous index ``t`` along ``along`` (linear between frames)."""
    n = grid.shape[along]
    if t == round(t) or n == 1:
        cut = np.take(values, min(max(round(t), 0), n - 1), axis=along)
    else:
        low = min(int(np.floor(t)), n - 2)
        first = np.take(values, low, axis=along)
        cut = first + (t - low) * (np.take(values, low + 1, axis=along) - first)
    directions, steps = _grid_axes(grid)
    rows_axis, columns_axis = (k for k in range(3) if k != along)
    start = np.zeros(3)
    start[along] = t
    return DosePlane(
        dose_gy=cut,
        origin_mm=grid.index_to_patient(start)[0],
        row_direction=directions[columns_axis],
        column_direction=directions[rows_axis],
        row_offsets_mm=_offsets(grid, rows_axis, float(steps[rows_axis])),
        column_offsets_mm=_offsets(grid, columns_axis, float(steps[columns_axis])),
        axis=axis,
        position_mm=position,
        frame_of_reference_uid=grid.frame_of_reference_uid,
    )


def dose_plane(
    dose: DoseGrid,
    position_mm: float,
    axis: PlaneAxis = "axial",
    *,
    snap_mm: float = 0.0,
    interpolate: bool = True,
) -> DosePlane:
    """The dose on the ``axis`` plane at patient coordinate ``position_mm``.

    Parameters
    ----------
    dose
        A dose grid whose axes lie along the patient axes (any order and sign).
    position_mm
        z (axial), y (coronal) or x (sagittal) of the plane, LPS mm.
    axis
        ``"axial"``, ``"coronal"`` or ``"sagittal"``.
    snap_mm
        When the nearest frame lies within this distance (mm), it is returned as it is.
    interpolate
        Between frames farther than ``snap_mm``, interpolate linearly (True) or refuse.

    Raises
    ------
    InvalidInputError
        Unknown ``axis``, a position outside the grid, or no frame within ``snap_mm``
        with ``interpolate=False``.
    GeometryError
        The grid's axes are oblique to the patient axes.
    """
    where = f"{dose.source}: " if dose.source else ""
    along = _aligned_axis(dose.grid, axis, where)
    coordinate = _AXIS_COORDINATE[axis]
    position = float(position_mm)
    t = _continuous_index(dose.grid, along, coordinate, position)
    n = dose.grid.shape[along]
    frames = _frame_coordinates(dose.grid, along, coordinate)
    if not -_EDGE <= t <= n - 1 + _EDGE:
        low, high = sorted(frames[[0, -1]])
        raise InvalidInputError(
            f"{where}{axis} position {position:g} mm is outside the dose grid, which spans "
            f"{low:.4g} to {high:.4g} mm; give a position inside it"
        )
    t = min(max(t, 0.0), n - 1.0)
    nearest = round(t)
    if abs(frames[nearest] - position) <= snap_mm or n == 1:
        return _plane(
            dose.dose_gy, dose.grid, float(nearest), along, axis=axis, position=frames[nearest]
        )
    if not interpolate:
        raise InvalidInputError(
            f"{where}no {axis} dose frame lies within {snap_mm:g} mm of {position:g} mm "
            f"(nearest at {frames[nearest]:.4g} mm); allow interpolation or a larger snap"
        )
    return _plane(dose.dose_gy, dose.grid, t, along, axis=axis, position=position)


def image_plane(
    values: NDArray[np.floating[Any]], grid: ImageGrid, position_mm: float, axis: PlaneAxis
) -> DosePlane | None:
    """The nearest plane of an image volume (e.g. CT in HU) to ``position_mm``, or None.

    ``values`` is ``grid.shape``; the samples are returned as they are (in
    ``DosePlane.dose_gy``, whatever their unit). None when the position lies more than half
    a sample beyond the volume.

    Raises
    ------
    InvalidInputError, GeometryError
        Unknown ``axis``; the grid's axes are oblique to the patient axes.
    """
    along = _aligned_axis(grid, axis, "image: ")
    coordinate = _AXIS_COORDINATE[axis]
    t = _continuous_index(grid, along, coordinate, float(position_mm))
    n = grid.shape[along]
    if not -0.5 <= t <= n - 0.5:
        return None
    nearest = min(max(round(t), 0), n - 1)
    frames = _frame_coordinates(grid, along, coordinate)
    return _plane(values, grid, float(nearest), along, axis=axis, position=float(frames[nearest]))


def _frame_coordinates(grid: ImageGrid, along: int, coordinate: int) -> FloatArray:
    """Patient coordinate ``coordinate`` of each frame along index axis ``along``."""
    n = grid.shape[along]
    index = np.zeros((n, 3))
    index[:, along] = np.arange(n)
    return np.asarray(grid.index_to_patient(index)[:, coordinate])


# --------------------------------------------------------------------- marching squares
#: Corner bits: [i, j] = 1, [i, j+1] = 2, [i+1, j+1] = 4, [i+1, j] = 8. Edges: T(op),
#: R(ight), B(ottom), L(eft). Segments per case; the saddles 5 and 10 are split below.
_SEGMENTS: dict[int, tuple[tuple[str, str], ...]] = {
    1: (("L", "T"),),
    2: (("T", "R"),),
    3: (("L", "R"),),
    4: (("R", "B"),),
    6: (("T", "B"),),
    7: (("L", "B"),),
    8: (("L", "B"),),
    9: (("T", "B"),),
    11: (("R", "B"),),
    12: (("L", "R"),),
    13: (("T", "R"),),
    14: (("L", "T"),),
}
#: Saddles by whether the cell's mean is at or above the level.
_SADDLES = {
    (5, True): (("T", "R"), ("L", "B")),
    (5, False): (("L", "T"), ("R", "B")),
    (10, True): (("L", "T"), ("R", "B")),
    (10, False): (("T", "R"), ("L", "B")),
}


def _edge_points(values: FloatArray, level: float) -> tuple[FloatArray, FloatArray]:
    """Crossing ``(row, column)`` on every horizontal and vertical edge (NaN: none)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        across = (level - values[:, :-1]) / (values[:, 1:] - values[:, :-1])
        down = (level - values[:-1, :]) / (values[1:, :] - values[:-1, :])
    rows, columns = values.shape
    i, j = np.meshgrid(np.arange(rows), np.arange(columns - 1), indexing="ij")
    horizontal = np.stack([i, j + across], axis=-1).astype(np.float64)
    i, j = np.meshgrid(np.arange(rows - 1), np.arange(columns), indexing="ij")
    vertical = np.stack([i + down, j], axis=-1).astype(np.float64)
    return horizontal, vertical


def _segments(values: FloatArray, level: float) -> NDArray[np.int64]:
    """``(S, 2)`` edge keys joined by each marching-squares segment."""
    above = values >= level
    case = (
        above[:-1, :-1] * 1 + above[:-1, 1:] * 2 + above[1:, 1:] * 4 + above[1:, :-1] * 8
    ).astype(np.int64)
    columns = values.shape[1]
    mean_above = (values[:-1, :-1] + values[:-1, 1:] + values[1:, 1:] + values[1:, :-1]) >= (
        4 * level
    )
    pieces: list[NDArray[np.int64]] = []
    for code in range(1, 15):
        ci, cj = np.nonzero(case == code)
        if ci.size == 0:
            continue
        keys = {
            "T": 2 * (ci * columns + cj),
            "B": 2 * ((ci + 1) * columns + cj),
            "L": 2 * (ci * columns + cj) + 1,
            "R": 2 * (ci * columns + cj + 1) + 1,
        }
        if code in (5, 10):
            high = mean_above[ci, cj]
            for flag, chosen in ((True, high), (False, ~high)):
                for a, b in _SADDLES[(code, flag)]:
                    pieces.append(np.stack([keys[a][chosen], keys[b][chosen]], axis=1))
            continue
        for a, b in _SEGMENTS[code]:
            pieces.append(np.stack([keys[a], keys[b]], axis=1))
    if not pieces:
        return np.zeros((0, 2), dtype=np.int64)
    return np.concatenate(pieces).astype(np.int64)


def _rings(segments: NDArray[np.int64]) -> list[NDArray[np.int64]]:
    """Chain segments sharing edge keys into closed rings of keys."""
    order = np.argsort(segments.ravel(), kind="stable")
    ends = segments.ravel()[order]
    # On a closed level set every key is shared by exactly two segment ends.
    partner = np.empty(ends.size, dtype=np.int64)
    partner[order[0::2]] = order[1::2]
    partner[order[1::2]] = order[0::2]
    if not np.array_equal(ends[0::2], ends[1::2]):  # pragma: no cover - padding closes all
        raise GeometryError("isodose tracing found an open line")
    visited = np.zeros(segments.shape[0], dtype=bool)
    rings: list[NDArray[np.int64]] = []
    flat = segments.ravel()
    for start in range(segments.shape[0]):
        if visited[start]:
            continue
        keys: list[int] = []
        segment, end = start, 1
        while not visited[segment]:
            visited[segment] = True
            keys.append(int(flat[2 * segment + end]))
            other = int(partner[2 * segment + end])  # the other end sharing this key
            segment, end = other // 2, 1 - other % 2
        rings.append(np.asarray(keys, dtype=np.int64))
    return rings


def isodose_lines(level_gy: float, plane: DosePlane) -> list[FloatArray]:
    """Closed isodose rings of ``level_gy`` on ``plane``, each ``(N, 3)`` LPS points (mm).

    The ring encloses the samples at or above the level; a region cut by the plane's
    border is closed along the border. Rings around a hole (a cold spot inside a hot
    region) are returned as rings too; nesting tells holes from islands.

    Raises
    ------
    InvalidInputError
        ``level_gy`` is not a finite number.
    """
    level = float(level_gy)
    if not np.isfinite(level):
        raise InvalidInputError(f"isodose level must be a finite number of Gy, got {level_gy}")
    values = plane.dose_gy
    below = min(float(values.min()), level) - 1.0
    padded = np.pad(values, 1, constant_values=below)
    segments = _segments(padded, level)
    if segments.shape[0] == 0:
        return []
    horizontal, vertical = _edge_points(padded, level)
    columns = padded.shape[1]
    lines: list[FloatArray] = []
    limits = np.array(plane.shape, dtype=np.float64) - 1
    for keys in _rings(segments):
        cell, kind = keys // 2, keys % 2
        ii, jj = cell // columns, cell % columns
        points = np.empty((keys.size, 2))
        is_h = kind == 0
        points[is_h] = horizontal[ii[is_h], np.minimum(jj[is_h], columns - 2)]
        points[~is_h] = vertical[np.minimum(ii[~is_h], padded.shape[0] - 2), jj[~is_h]]
        index = np.clip(points - 1.0, 0.0, limits)  # back to the plane; margin onto border
        lines.append(plane.index_to_patient(index))
    return lines


def max_boundary_dose_gy(dose: DoseGrid) -> float:
    """Largest dose (Gy) on the grid's six faces (its first and last slice, row, column)."""
    values = dose.dose_gy
    return float(
        max(
            values[0].max(),
            values[-1].max(),
            values[:, 0].max(),
            values[:, -1].max(),
            values[:, :, 0].max(),
            values[:, :, -1].max(),
        )
    )


def boundary_dose_note(dose: DoseGrid, *, share: float = BOUNDARY_DOSE_SHARE) -> str | None:
    """A warning sentence when the faces' dose exceeds ``share`` of the maximum, else None.

    A dose grid should reach the low-dose region all round; a face holding more than 10 %
    of the maximum means the grid may cut the dose off (dose outside it is unknown, so DVHs
    of ROIs reaching the face miss part of it).
    """
    largest = dose.max_gy
    boundary = max_boundary_dose_gy(dose)
    if largest <= 0 or boundary <= share * largest:
        return None
    where = f"{dose.source}: " if dose.source else ""
    return (
        f"{where}the dose on the grid's faces reaches {boundary:.4g} Gy, "
        f"{100 * boundary / largest:.3g} % of the maximum {largest:.4g} Gy: the grid may cut "
        "the dose off, so ROIs reaching its faces may miss dose; compute the dose on a larger "
        "grid"
    )
