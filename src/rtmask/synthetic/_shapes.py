"""Analytic contours lying exactly on the slice planes of an ImageGrid. Pure numpy.

In-plane coordinates ``(u, v)`` are millimetres on the plane of slice ``k``, measured
from the centre of voxel ``[k, 0, 0]``: ``u`` along ``grid.row_direction`` (the way the
column index grows), ``v`` along ``grid.column_direction`` (the way the row index grows).
So ``(u, v) = (column * column_spacing, row * row_spacing)`` at a voxel centre.

Orientation: "counter-clockwise" means a positive signed area in ``(u, v)``, i.e. a
positive turn about ``grid.normal``. Vertices are continuous (never rounded to the
pixel grid); the default start angle keeps them off voxel centres.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
from numpy.typing import ArrayLike, NDArray

from rtmask.geometry import ImageGrid

__all__ = [
    "c_shape_uv",
    "circle_uv",
    "cone_contours",
    "cylinder_contours",
    "ellipse_uv",
    "ellipsoid_contours",
    "keyhole_annulus_uv",
    "rectangle_uv",
    "sphere_contours",
    "to_patient",
    "to_uv",
]

FloatArray = NDArray[np.float64]

#: Default angle (radians) of the first vertex of round shapes; keeps vertices off-grid.
DEFAULT_START_ANGLE = 0.3
#: Cross-sections smaller than this radius (mm) are skipped.
MIN_SECTION_RADIUS_MM = 1e-3


def _check_slice(grid: ImageGrid, slice_index: int) -> int:
    index = int(slice_index)
    if not 0 <= index < grid.shape[0]:
        raise IndexError(f"slice index {slice_index} outside 0..{grid.shape[0] - 1}")
    return index


def to_patient(grid: ImageGrid, slice_index: int, uv_mm: ArrayLike) -> FloatArray:
    """Map in-plane ``(N, 2)`` ``(u, v)`` mm on slice ``slice_index`` to LPS mm ``(N, 3)``."""
    index = _check_slice(grid, slice_index)
    return _on_plane(grid, grid.slice_origins_mm()[index], uv_mm)


def _on_plane(grid: ImageGrid, origin_mm: FloatArray, uv_mm: ArrayLike) -> FloatArray:
    uv = np.asarray(uv_mm, dtype=np.float64).reshape(-1, 2)
    return np.asarray(
        origin_mm
        + np.outer(uv[:, 0], grid.row_direction)
        + np.outer(uv[:, 1], grid.column_direction)
    )


def to_uv(grid: ImageGrid, slice_index: int, points_mm: ArrayLike) -> FloatArray:
    """Project LPS points ``(N, 3)`` onto the plane of slice ``slice_index``: ``(N, 2)`` mm."""
    index = _check_slice(grid, slice_index)
    points = np.asarray(points_mm, dtype=np.float64).reshape(-1, 3)
    offset = points - grid.slice_origins_mm()[index]
    return np.column_stack([offset @ grid.row_direction, offset @ grid.column_direction])


def _orient(uv: FloatArray, clockwise: bool) -> FloatArray:
    return np.asarray(uv[::-1].copy() if clockwise else uv)


def ellipse_uv(
    center_uv: ArrayLike,
    semi_axes_mm: Sequence[float],
    *,
    n: int = 64,
    start_angle: float = DEFAULT_START_ANGLE,
    rotation: float = 0.0,
    clockwise: bool = False,
) -> FloatArray:
    """Regular polygon inscribed in an ellipse, ``(n, 2)`` ``(u, v)`` mm.

    Parameters
    ----------
    center_uv
        Centre ``(u, v)`` in mm.
    semi_axes_mm
        Semi-axes ``(a, b)`` in mm, along ``u`` and ``v`` before ``rotation``.
    n
        Number of vertices (at least 3).
    start_angle
        Parametric angle of the first vertex, radians.
    rotation
        Rotation of the ellipse about its centre, radians (counter-clockwise).
    clockwise
        Give the vertices clockwise instead of counter-clockwise.
    """
    if n < 3:
        raise ValueError(f"a polygon needs at least 3 vertices, got n={n}")
    a, b = (float(s) for s in semi_axes_mm)
    angles = start_angle + 2.0 * np.pi * np.arange(n) / n
    local = np.column_stack([a * np.cos(angles), b * np.sin(angles)])
    cos_r, sin_r = np.cos(rotation), np.sin(rotation)
    rotated = local @ np.array([[cos_r, sin_r], [-sin_r, cos_r]])
    return _orient(rotated + np.asarray(center_uv, dtype=np.float64).reshape(2), clockwise)


def circle_uv(
    center_uv: ArrayLike,
    radius_mm: float,
    *,
    n: int = 64,
    start_angle: float = DEFAULT_START_ANGLE,
    clockwise: bool = False,
) -> FloatArray:
    """Regular ``n``-gon inscribed in a circle (vertices at ``radius_mm``), ``(n, 2)`` mm."""
    return ellipse_uv(
        center_uv, (radius_mm, radius_mm), n=n, start_angle=start_angle, clockwise=clockwise
    )


def rectangle_uv(
    center_uv: ArrayLike,
    size_mm: Sequence[float],
    *,
    rotation: float = 0.0,
    clockwise: bool = False,
) -> FloatArray:
    """Rectangle of ``size_mm = (width along u, height along v)``, ``(4, 2)`` mm."""
    half_u, half_v = (float(s) / 2 for s in size_mm)
    local = np.array([[-half_u, -half_v], [half_u, -half_v], [half_u, half_v], [-half_u, half_v]])
    cos_r, sin_r = np.cos(rotation), np.sin(rotation)
    rotated = local @ np.array([[cos_r, sin_r], [-sin_r, cos_r]])
    return _orient(rotated + np.asarray(center_uv, dtype=np.float64).reshape(2), clockwise)


def _arc(center: FloatArray, radius: float, start: float, stop: float, n: int) -> FloatArray:
    angles = np.linspace(start, stop, n)
    return np.asarray(center + radius * np.column_stack([np.cos(angles), np.sin(angles)]))


def c_shape_uv(
    center_uv: ArrayLike,
    outer_radius_mm: float,
    inner_radius_mm: float,
    *,
    gap_angle: float = np.pi / 3,
    opening_angle: float = 0.0,
    n: int = 64,
    clockwise: bool = False,
) -> FloatArray:
    """A "C": an annulus with a sector of ``gap_angle`` radians cut out, ``(2 n, 2)`` mm.

    The outer arc (``n`` vertices) runs counter-clockwise from ``opening_angle +
    gap_angle / 2`` to ``opening_angle + 2 pi - gap_angle / 2``; the inner arc (``n``
    vertices) runs back. Its exact area is ``(2 pi - gap) (R^2 - r^2) / 2`` in the limit.
    """
    if not 0 < inner_radius_mm < outer_radius_mm:
        raise ValueError("need 0 < inner_radius_mm < outer_radius_mm")
    if not 0 < gap_angle < 2 * np.pi:
        raise ValueError("gap_angle must lie in (0, 2 pi)")
    if n < 2:
        raise ValueError(f"each arc needs at least 2 vertices, got n={n}")
    center = np.asarray(center_uv, dtype=np.float64).reshape(2)
    start = opening_angle + gap_angle / 2
    stop = opening_angle + 2 * np.pi - gap_angle / 2
    outer = _arc(center, outer_radius_mm, start, stop, n)
    inner = _arc(center, inner_radius_mm, stop, start, n)
    return _orient(np.concatenate([outer, inner]), clockwise)


def keyhole_annulus_uv(
    center_uv: ArrayLike,
    outer_radius_mm: float,
    inner_radius_mm: float,
    *,
    n: int = 64,
    start_angle: float = DEFAULT_START_ANGLE,
    clockwise: bool = False,
) -> FloatArray:
    """An annulus as ONE polygon with a zero-width cut, ``(2 n + 2, 2)`` mm.

    The outer ring (``n`` sides, closed by repeating its first vertex) runs
    counter-clockwise, a zero-width cut leads to the inner ring, which runs clockwise
    (closed likewise); the implied closing edge runs back along the cut. The enclosed
    area is that of the outer ``n``-gon minus the inner one.
    """
    if not 0 < inner_radius_mm < outer_radius_mm:
        raise ValueError("need 0 < inner_radius_mm < outer_radius_mm")
    if n < 3:
        raise ValueError(f"a ring needs at least 3 sides, got n={n}")
    center = np.asarray(center_uv, dtype=np.float64).reshape(2)
    angles = start_angle + 2.0 * np.pi * np.arange(n + 1) / n
    ring = np.column_stack([np.cos(angles), np.sin(angles)])
    ring[-1] = ring[0]  # close exactly, without round-off
    outer = center + outer_radius_mm * ring
    inner = center + inner_radius_mm * ring[::-1]
    return _orient(np.concatenate([outer, inner]), clockwise)


def _sections(
    grid: ImageGrid,
    axis_point_mm: ArrayLike,
    section_uv: Callable[[FloatArray, float], FloatArray | None],
) -> list[FloatArray]:
    """One contour per slice plane cutting a solid whose axis runs along the normal.

    ``section_uv(center_uv, distance)`` gives the polygon ``(N, 2)`` of the section at
    signed distance ``distance`` (mm, along the normal) from ``axis_point_mm``, whose
    projection on the plane is ``center_uv``; None where the plane misses the solid.
    """
    point = np.asarray(axis_point_mm, dtype=np.float64).reshape(3)
    origins = grid.slice_origins_mm()
    distances = grid.slice_positions_mm - float(point @ grid.normal)
    contours: list[FloatArray] = []
    for index, distance in enumerate(distances):
        offset = point - origins[index]
        center_uv = np.array([offset @ grid.row_direction, offset @ grid.column_direction])
        polygon = section_uv(center_uv, float(distance))
        if polygon is not None:
            contours.append(_on_plane(grid, origins[index], polygon))
    return contours


def _round_section(
    radius_at: Callable[[float], float], n: int, start_angle: float, clockwise: bool
) -> Callable[[FloatArray, float], FloatArray | None]:
    """A circular section of radius ``radius_at(distance)``, skipped when too small."""

    def section(center_uv: FloatArray, distance: float) -> FloatArray | None:
        radius = radius_at(distance)
        if not radius >= MIN_SECTION_RADIUS_MM:
            return None
        return circle_uv(center_uv, radius, n=n, start_angle=start_angle, clockwise=clockwise)

    return section


def ellipsoid_contours(
    grid: ImageGrid,
    center_mm: ArrayLike,
    semi_axes_mm: Sequence[float],
    *,
    n: int = 64,
    start_angle: float = DEFAULT_START_ANGLE,
    clockwise: bool = False,
) -> list[FloatArray]:
    """Sections of an ellipsoid by every slice plane that cuts it: ``(n, 3)`` LPS each.

    ``semi_axes_mm = (a_u, b_v, c_normal)``: along ``row_direction``, ``column_direction``
    and ``normal``. Every vertex lies on the ellipsoid surface; sections whose smaller
    semi-axis is below 1e-3 mm are skipped.
    """
    a_u, b_v, c_n = (float(s) for s in semi_axes_mm)

    def section(center_uv: FloatArray, distance: float) -> FloatArray | None:
        scale = float(np.sqrt(max(0.0, 1.0 - (distance / c_n) ** 2)))
        if not min(a_u, b_v) * scale >= MIN_SECTION_RADIUS_MM:
            return None
        return ellipse_uv(
            center_uv,
            (a_u * scale, b_v * scale),
            n=n,
            start_angle=start_angle,
            clockwise=clockwise,
        )

    return _sections(grid, center_mm, section)


def sphere_contours(
    grid: ImageGrid,
    center_mm: ArrayLike,
    radius_mm: float,
    *,
    n: int = 64,
    start_angle: float = DEFAULT_START_ANGLE,
    clockwise: bool = False,
) -> list[FloatArray]:
    """Sections of a sphere by every slice plane that cuts it: ``(n, 3)`` LPS each.

    Every vertex lies at ``radius_mm`` from ``center_mm``.
    """
    radius = float(radius_mm)
    return _sections(
        grid,
        center_mm,
        _round_section(
            lambda d: float(np.sqrt(max(0.0, radius**2 - d**2))), n, start_angle, clockwise
        ),
    )


def cylinder_contours(
    grid: ImageGrid,
    center_mm: ArrayLike,
    radius_mm: float,
    length_mm: float,
    *,
    n: int = 64,
    start_angle: float = DEFAULT_START_ANGLE,
    clockwise: bool = False,
) -> list[FloatArray]:
    """Sections of a cylinder with its axis along ``grid.normal``: ``(n, 3)`` LPS each.

    The cylinder is centred on ``center_mm`` and spans ``length_mm`` along the normal;
    planes at exactly ``length_mm / 2`` from the centre are included.
    """
    radius, half = float(radius_mm), float(length_mm) / 2

    def radius_at(distance: float) -> float:
        return radius if abs(distance) <= half + 1e-9 * max(1.0, half) else 0.0

    return _sections(grid, center_mm, _round_section(radius_at, n, start_angle, clockwise))


def cone_contours(
    grid: ImageGrid,
    apex_mm: ArrayLike,
    base_radius_mm: float,
    height_mm: float,
    *,
    n: int = 64,
    start_angle: float = DEFAULT_START_ANGLE,
    clockwise: bool = False,
) -> list[FloatArray]:
    """Sections of a right circular cone with its axis along ``grid.normal``.

    The apex is at ``apex_mm``; the base (radius ``base_radius_mm``) at ``apex_mm +
    height_mm * normal`` (a negative height points the cone the other way). At distance
    ``t`` from the apex the section radius is ``base_radius_mm * t / |height_mm|``; the
    base plane itself is included.
    """
    base, height = float(base_radius_mm), float(height_mm)
    if height == 0:
        raise ValueError("cone height must not be zero")

    def radius_at(distance: float) -> float:
        along = distance / height  # fraction of the height: apex 0, base 1
        return base * along if 0.0 <= along <= 1.0 + 1e-12 else 0.0

    return _sections(grid, apex_mm, _round_section(radius_at, n, start_angle, clockwise))
