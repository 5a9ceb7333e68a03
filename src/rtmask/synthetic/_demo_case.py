"""The demo phantom: a synthetic thorax CT with ten structures and a dose distribution.

Awkward on purpose, like real data: a non-square image (200 rows x 240 columns),
anisotropic pixels (1.8 mm between rows, 1.6 mm between columns), an origin far from 0,
50 axial slices 2.5 mm apart (HFS), lungs with vessels (holes) and islands inside them, a
keyhole vertebra, a C-shaped oesophagus wall and a 3 mm fiducial marker. HU values are
painted from the same analytic shapes (not from contours), and the dose lives on a
coarser 3 mm grid.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from rtmask._errors import InvalidInputError
from rtmask.geometry import ImageGrid
from rtmask.synthetic._shapes import (
    c_shape_uv,
    cylinder_contours,
    ellipse_uv,
    ellipsoid_contours,
    keyhole_annulus_uv,
    sphere_contours,
    to_patient,
    to_uv,
)
from rtmask.synthetic._writer import (
    CTSeries,
    RoiSpec,
    _file_name,
    write_ct_series,
    write_rtdose,
    write_rtstruct,
)

__all__ = ["DemoCase", "demo_grid", "write_demo_case"]

FloatArray = NDArray[np.float64]
BoolArray = NDArray[np.bool_]

RTSTRUCT_NAME = "RS_demo.dcm"
RTDOSE_NAME = "RD_demo.dcm"

_SHAPE = (50, 200, 240)
_SPACING_MM = (2.5, 1.8, 1.6)
_ORIGIN_MM = (-187.13, -190.19, -299.75)
_CX, _CY = 3.7, -11.3  # body centre (x, y), mm
_Z_MID = _ORIGIN_MM[2] + (_SHAPE[0] - 1) * _SPACING_MM[0] / 2
_Z_LUNG = _Z_MID - 10.0
_PTV_CENTER = (_CX - 88.0, _CY - 15.0, _Z_MID + 6.1)
_CORD_XY = (_CX, _CY + 80.0)
_ESOPHAGUS_XY = (_CX - 2.0, _CY + 50.0)
_HEART_CENTER = (_CX + 12.0, _CY - 45.0, _Z_MID - 20.0)
_HEART_AXES = (36.0, 38.0, 40.0)
_ESOPHAGUS_GAP_DEG = 70.0  # the C opens towards anterior (-y)
_MAX_DOSE_GY = 66.0
_DOSE_WIDTH_MM = 36.7  # 66 * exp(-(22 / 36.7) ** 4) = 58 Gy at the PTV surface


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class DemoCase:
    """What :func:`write_demo_case` wrote."""

    folder: Path
    ct: CTSeries
    rtstruct: Path
    rtdose: Path
    dose_grid: ImageGrid
    roi_names: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class _Circle:
    """An axial ellipse ``((x - x0) / a) ** 2 + ((y - y0) / b) ** 2 <= 1`` (mm)."""

    x: float
    y: float
    a: float
    b: float

    def inside(self, x: FloatArray, y: FloatArray) -> BoolArray:
        return np.asarray(((x - self.x) / self.a) ** 2 + ((y - self.y) / self.b) ** 2 <= 1.0)

    def contour(self, grid: ImageGrid, k: int, n: int, *, clockwise: bool = False) -> FloatArray:
        center = to_uv(grid, k, [self.x, self.y, 0.0])[0]
        uv = ellipse_uv(center, (self.a, self.b), n=n, clockwise=clockwise)
        return to_patient(grid, k, uv)


def demo_grid() -> ImageGrid:
    """The CT grid of the demo: ``(50, 200, 240)`` voxels of 2.5 x 1.8 x 1.6 mm, axial HFS."""
    return ImageGrid.from_explicit(origin_mm=_ORIGIN_MM, spacing_mm=_SPACING_MM, shape=_SHAPE)


def _body(z: float) -> _Circle:
    return _Circle(_CX, _CY, 166.0 + 0.08 * (z - _Z_MID), 118.0 + 0.05 * (z - _Z_MID))


def _lung(side: int, z: float) -> _Circle | None:
    """Left lung for ``side = +1`` (patient left is +x), right lung for ``-1``."""
    scale = float(np.sqrt(max(0.0, 1.0 - ((z - _Z_LUNG) / 70.0) ** 2)))
    if scale < 0.3:
        return None
    return _Circle(_CX + side * 90.0, _CY - 5.0, 50.0 * scale, 80.0 * scale)


def _vessel(side: int, z: float) -> tuple[_Circle | None, _Circle | None]:
    """The vessel (a hole in the lung) and the lung island inside it, where present."""
    if side < 0:
        x, y, z0, hole_r, hole_dz, island_r, island_dz = (
            _CX - 105.0,
            _CY + 35.0,
            _Z_LUNG,
            10.0,
            20.0,
            4.0,
            6.0,
        )
    else:
        x, y, z0, hole_r, hole_dz, island_r, island_dz = (
            _CX + 100.0,
            _CY - 40.0,
            _Z_LUNG - 12.0,
            9.0,
            15.0,
            3.5,
            5.0,
        )
    hole = _Circle(x, y, hole_r, hole_r) if abs(z - z0) <= hole_dz else None
    island = _Circle(x, y, island_r, island_r) if abs(z - z0) <= island_dz else None
    return hole, island


def _plane_xy(grid: ImageGrid, k: int) -> tuple[FloatArray, FloatArray]:
    """LPS x and y of every voxel centre of slice ``k``, each ``(rows, columns)``."""
    _, rows, columns = grid.shape
    _, row_spacing, column_spacing = grid.spacing_mm
    u = np.arange(columns) * column_spacing
    v = np.arange(rows) * row_spacing
    points = (
        grid.slice_origins_mm()[k]
        + u[None, :, None] * grid.row_direction
        + v[:, None, None] * grid.column_direction
    )
    return points[..., 0], points[..., 1]


def _hu_volume(grid: ImageGrid) -> NDArray[np.int16]:
    """Hounsfield units painted from the analytic shapes, ``(slices, rows, columns)``."""
    hu = np.full(grid.shape, -1000.0)
    noise = np.random.default_rng(7).normal(0.0, 8.0, grid.shape)
    marker = _marker_center(grid)
    for k, z in enumerate(grid.slice_positions_mm):
        x, y = _plane_xy(grid, k)
        plane = hu[k]
        body = _body(z).inside(x, y)
        plane[body] = 0.0
        for side in (-1, 1):
            lung = _lung(side, z)
            if lung is not None:
                plane[lung.inside(x, y)] = -800.0
            hole, island = _vessel(side, z)
            if hole is not None:
                plane[hole.inside(x, y)] = 40.0
            if island is not None:
                plane[island.inside(x, y)] = -800.0
        heart_scale = 1.0 - ((z - _HEART_CENTER[2]) / _HEART_AXES[2]) ** 2
        if heart_scale > 0:
            s = float(np.sqrt(heart_scale))
            heart = _Circle(
                _HEART_CENTER[0], _HEART_CENTER[1], _HEART_AXES[0] * s, _HEART_AXES[1] * s
            )
            plane[heart.inside(x, y)] = 40.0
        dx, dy = x - _ESOPHAGUS_XY[0], y - _ESOPHAGUS_XY[1]
        r_esophagus = np.hypot(dx, dy)
        in_gap = np.abs(np.arctan2(dy, dx) + np.pi / 2) < np.radians(_ESOPHAGUS_GAP_DEG / 2)
        plane[(r_esophagus <= 9.0) & ~in_gap] = 40.0
        plane[r_esophagus < 5.5] = -950.0
        r_cord = np.hypot(x - _CORD_XY[0], y - _CORD_XY[1])
        plane[r_cord <= 16.0] = 700.0
        plane[r_cord <= 7.5] = 30.0
        r_tumour = np.sqrt(
            (x - _PTV_CENTER[0]) ** 2 + (y - _PTV_CENTER[1]) ** 2 + (z - _PTV_CENTER[2]) ** 2
        )
        plane[r_tumour <= 14.0] = 30.0
        plane[body] += noise[k][body]
        r_marker = np.sqrt((x - marker[0]) ** 2 + (y - marker[1]) ** 2 + (z - marker[2]) ** 2)
        plane[r_marker <= 1.5] = 2500.0
    return np.asarray(np.rint(hu), dtype=np.int16)


def _marker_center(grid: ImageGrid) -> FloatArray:
    """A gold-seed position 0.6 mm above the slice nearest the PTV centre."""
    k = int(np.argmin(np.abs(grid.slice_positions_mm - _PTV_CENTER[2])))
    return np.array([_CX - 80.0, _CY - 20.0, float(grid.slice_positions_mm[k]) + 0.6])


def _rois(grid: ImageGrid) -> list[RoiSpec]:
    closed = "CLOSED_PLANAR"
    body: list[tuple[FloatArray, str]] = []
    lungs: dict[int, list[tuple[FloatArray, str]]] = {-1: [], 1: []}
    vertebra: list[tuple[FloatArray, str]] = []
    esophagus: list[tuple[FloatArray, str]] = []
    for k, z in enumerate(grid.slice_positions_mm):
        body.append((_body(z).contour(grid, k, 96), closed))
        for side in (-1, 1):
            lung = _lung(side, z)
            if lung is None:
                continue
            lungs[side].append((lung.contour(grid, k, 64), closed))
            hole, island = _vessel(side, z)
            # Right-lung holes run clockwise, left-lung ones counter-clockwise: files do both.
            if hole is not None:
                lungs[side].append((hole.contour(grid, k, 32, clockwise=side < 0), closed))
            if island is not None:
                lungs[side].append((island.contour(grid, k, 24), closed))
        cord_uv = to_uv(grid, k, [*_CORD_XY, 0.0])[0]
        vertebra.append((to_patient(grid, k, keyhole_annulus_uv(cord_uv, 16.0, 7.5, n=48)), closed))
        esophagus_uv = to_uv(grid, k, [*_ESOPHAGUS_XY, 0.0])[0]
        wall = c_shape_uv(
            esophagus_uv,
            9.0,
            5.5,
            gap_angle=np.radians(_ESOPHAGUS_GAP_DEG),
            opening_angle=-np.pi / 2,
            n=32,
        )
        esophagus.append((to_patient(grid, k, wall), closed))

    def closed_all(contours: list[FloatArray]) -> tuple[tuple[FloatArray, str], ...]:
        return tuple((points, closed) for points in contours)

    cord_center = (*_CORD_XY, _Z_MID)
    return [
        RoiSpec(
            number=1,
            name="BODY",
            contours=tuple(body),
            color=(0, 255, 0),
            interpreted_type="EXTERNAL",
        ),
        RoiSpec(number=2, name="Lung_L", contours=tuple(lungs[1]), color=(0, 128, 255)),
        RoiSpec(number=3, name="Lung_R", contours=tuple(lungs[-1]), color=(0, 210, 210)),
        RoiSpec(
            number=4,
            name="Heart",
            color=(220, 20, 60),
            contours=closed_all(ellipsoid_contours(grid, _HEART_CENTER, _HEART_AXES)),
        ),
        RoiSpec(
            number=5,
            name="SpinalCord",
            color=(255, 255, 0),
            contours=closed_all(cylinder_contours(grid, cord_center, 6.0, 400.0, n=32)),
        ),
        RoiSpec(number=6, name="Vertebra", contours=tuple(vertebra), color=(240, 230, 200)),
        RoiSpec(number=7, name="Esophagus", contours=tuple(esophagus), color=(160, 82, 45)),
        RoiSpec(
            number=10,
            name="GTV",
            color=(255, 128, 0),
            interpreted_type="GTV",
            contours=closed_all(sphere_contours(grid, _PTV_CENTER, 14.0)),
        ),
        RoiSpec(
            number=11,
            name="PTV",
            color=(255, 0, 255),
            interpreted_type="PTV",
            contours=closed_all(sphere_contours(grid, _PTV_CENTER, 22.0)),
        ),
        RoiSpec(
            number=20,
            name="Marker",
            color=(255, 255, 255),
            interpreted_type="MARKER",
            contours=closed_all(sphere_contours(grid, _marker_center(grid), 1.5, n=16)),
        ),
    ]


def _dose(ct: CTSeries) -> tuple[ImageGrid, FloatArray]:
    """A super-Gaussian dose around the PTV on a 3 mm grid covering the body."""
    grid = ImageGrid.from_explicit(
        origin_mm=(_CX - 174.9, _CY - 124.6, _ORIGIN_MM[2] + 1.15),
        spacing_mm=(3.0, 3.0, 3.0),
        shape=(41, 84, 117),
        frame_of_reference_uid=ct.frame_of_reference_uid,
    )
    points = grid.index_to_patient(np.argwhere(np.ones(grid.shape, dtype=bool)))
    distance = np.linalg.norm(points - np.asarray(_PTV_CENTER), axis=1).reshape(grid.shape)
    return grid, _MAX_DOSE_GY * np.exp(-((distance / _DOSE_WIDTH_MM) ** 4))


def _check_folder(folder: Path, names: set[str]) -> None:
    if not folder.exists():
        return
    if not folder.is_dir():
        raise InvalidInputError(f"{folder}: exists and is not a folder; choose another one")
    foreign = sorted(p.name for p in folder.iterdir() if p.name not in names)
    if foreign:
        raise InvalidInputError(
            f"{folder}: already holds other files (e.g. {foreign[0]}); choose an empty or "
            "new folder"
        )


def write_demo_case(folder: Path) -> DemoCase:
    """Write the demo CT series, RT Structure Set and RT Dose into ``folder``.

    Files from an earlier demo in the same folder are overwritten.

    Raises
    ------
    InvalidInputError
        When ``folder`` holds files the demo did not write (nothing is touched then).
    """
    folder = Path(folder)
    grid = demo_grid()
    names = {_file_name("ordered", k) for k in range(grid.shape[0])}
    _check_folder(folder, names | {RTSTRUCT_NAME, RTDOSE_NAME})
    ct = write_ct_series(
        folder, grid, hu=_hu_volume(grid), patient_id="RTMASK-DEMO", patient_name="Demo^Thorax"
    )
    rois = _rois(ct.grid)
    rtstruct = write_rtstruct(folder / RTSTRUCT_NAME, rois, ct, label="DEMO")
    dose_grid, dose = _dose(ct)
    rtdose = write_rtdose(folder / RTDOSE_NAME, dose_grid, dose, ct)
    return DemoCase(
        folder=folder,
        ct=ct,
        rtstruct=rtstruct,
        rtdose=rtdose,
        dose_grid=dose_grid,
        roi_names=tuple(roi.name for roi in rois),
    )
