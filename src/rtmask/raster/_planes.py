"""Assigning contours to the image planes of a grid.

Two modes:

- ``"exact"`` (image grids): a contour belongs to the slice whose plane it lies in, within
  a tolerance. Contours between slices, outside the volume or not parallel to the planes
  are reported and left out; nothing is wrapped, clamped or silently dropped.
- ``"slab"`` (grids not drawn on, e.g. a dose grid): each contour plane stands for the slab
  halfway to its neighbours (half a gap beyond the end planes), and every grid slice whose
  centre falls in a slab takes that plane's contours (the prism model of a contour stack).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
from numpy.typing import NDArray

from rtmask.geometry import ImageGrid
from rtmask.rtstruct import ROI, Contour

__all__ = [
    "PlacedContour",
    "PlaneAssignment",
    "SliceMode",
    "assign_planes",
    "default_plane_tolerance_mm",
]

SliceMode = Literal["exact", "slab"]

#: Largest spread of a contour's vertices along the normal (mm) that still counts as planar.
PLANARITY_TOLERANCE_MM = 0.1


@dataclass(frozen=True, slots=True)
class PlacedContour:
    """A closed contour in in-plane pixel coordinates, ready to fill."""

    contour: Contour
    index: int  # position of the contour in the ROI, 0-based
    polygon: NDArray[np.float64]  # (N, 2) continuous (row, column) indices
    plane_mm: float  # position of its plane along the grid normal
    low: NDArray[np.float64]  # (2,) smallest (row, column) of the polygon
    high: NDArray[np.float64]  # (2,) largest (row, column) of the polygon


@dataclass
class PlaneAssignment:
    """Closed contours grouped by grid slice, and what could not be placed."""

    by_slice: dict[int, list[PlacedContour]] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)


def default_plane_tolerance_mm(grid: ImageGrid) -> float:
    """A quarter of the smallest slice gap, at most 0.5 mm."""
    gaps = grid.slice_gaps_mm
    smallest = float(gaps.min()) if gaps.size else grid.spacing_mm[0]
    return min(0.5, 0.25 * smallest)


def _describe(roi: ROI, index: int, point_mm: NDArray[np.float64]) -> str:
    x, y, z = (float(v) for v in point_mm)
    return f"ROI {roi.number} {roi.name!r}, contour {index + 1} at ({x:.2f}, {y:.2f}, {z:.2f}) mm"


def _slab_edges(planes: NDArray[np.float64]) -> NDArray[np.float64]:
    """Edges of the slabs of sorted unique contour planes, ``(M + 1,)`` mm."""
    if planes.size == 1:
        return np.array([-np.inf, np.inf])
    middles = (planes[1:] + planes[:-1]) / 2
    first = planes[0] - (planes[1] - planes[0]) / 2
    last = planes[-1] + (planes[-1] - planes[-2]) / 2
    return np.concatenate([[first], middles, [last]])


def assign_planes(
    roi: ROI,
    grid: ImageGrid,
    *,
    mode: SliceMode = "exact",
    tolerance_mm: float | None = None,
    supersample: int = 1,
) -> PlaneAssignment:
    """Group an ROI's closed contours by the grid slice they belong to.

    Parameters
    ----------
    roi
        The ROI; POINT and OPEN_* contours are skipped (they enclose no volume).
    grid
        Target grid.
    mode
        ``"exact"`` or ``"slab"`` (module docstring).
    tolerance_mm
        Largest distance between a contour's plane and a slice plane (exact mode);
        default :func:`default_plane_tolerance_mm`.
    supersample
        In-plane samples per pixel side; polygons are returned in the supersampled
        pixel coordinates ``fine = coarse * s + (s - 1) / 2``.
    """
    tolerance = default_plane_tolerance_mm(grid) if tolerance_mm is None else tolerance_mm
    normal = grid.normal
    positions = grid.slice_positions_mm
    result = PlaneAssignment()
    placed: list[PlacedContour] = []
    closed = [(i, c) for i, c in enumerate(roi.contours) if c.geometric_type.encloses_volume]
    if not closed:
        return result
    # One coordinate transform for all vertices of the ROI, then split per contour.
    all_points = np.concatenate([c.points_mm for _, c in closed])
    all_in_plane = grid.patient_to_index(all_points)[:, 1:] * supersample + (supersample - 1) / 2
    all_distances = all_points @ normal
    counts = np.array([c.n_points for _, c in closed], dtype=np.intp)
    ends = np.cumsum(counts)
    # Per-contour extremes in one reduction each (segments of at least one point).
    starts = np.minimum(ends - counts, max(all_points.shape[0] - 1, 0))
    lowest = np.minimum.reduceat(all_distances, starts)
    highest = np.maximum.reduceat(all_distances, starts)
    mean_distance = np.add.reduceat(all_distances, starts) / np.maximum(counts, 1)
    low = np.minimum.reduceat(all_in_plane, starts, axis=0)
    high = np.maximum.reduceat(all_in_plane, starts, axis=0)
    for n, ((index, contour), end) in enumerate(zip(closed, ends, strict=True)):
        points = contour.points_mm
        if points.shape[0] < 3:
            result.problems.append(
                f"{_describe(roi, index, points[0])}: fewer than 3 points; "
                "it encloses no area and was left out"
            )
            continue
        spread = float(highest[n] - lowest[n])
        if spread > PLANARITY_TOLERANCE_MM:
            result.problems.append(
                f"{_describe(roi, index, points[0])}: not parallel to the image planes "
                f"(spans {spread:.2f} mm along the slice normal); left out"
            )
            continue
        polygon = all_in_plane[end - points.shape[0] : end]
        placed.append(
            PlacedContour(contour, index, polygon, float(mean_distance[n]), low[n], high[n])
        )
    if not placed:
        return result
    planes = np.array([p.plane_mm for p in placed])
    if mode == "exact":
        _assign_exact(
            roi,
            grid,
            placed,
            planes=planes,
            positions=positions,
            tolerance=tolerance,
            result=result,
        )
    else:
        _assign_slab(
            roi,
            grid,
            placed,
            planes=planes,
            positions=positions,
            tolerance=tolerance,
            result=result,
        )
    return result


def _assign_exact(
    roi: ROI,
    grid: ImageGrid,
    placed: Sequence[PlacedContour],
    *,
    planes: NDArray[np.float64],
    positions: NDArray[np.float64],
    tolerance: float,
    result: PlaneAssignment,
) -> None:
    index = np.clip(grid.slice_index_of(planes), 0, positions.size - 1)  # then no overflow
    nearest = np.rint(index).astype(np.int64)
    offsets = planes - positions[nearest]
    for item, slice_index, offset in zip(placed, nearest, offsets, strict=True):
        if abs(offset) <= tolerance:
            result.by_slice.setdefault(int(slice_index), []).append(item)
            continue
        where = _describe(roi, item.index, item.contour.points_mm[0])
        if item.plane_mm < positions[0] - tolerance or item.plane_mm > positions[-1] + tolerance:
            result.problems.append(
                f"{where}: outside the image volume (plane {item.plane_mm:.2f} mm along the "
                f"normal; slices span {positions[0]:.2f} to {positions[-1]:.2f} mm); left out"
            )
        else:
            result.problems.append(
                f"{where}: lies {offset:+.2f} mm off the nearest slice {int(slice_index)} "
                f"(tolerance {tolerance:.2f} mm), between image planes; left out"
            )


def _assign_slab(
    roi: ROI,
    grid: ImageGrid,
    placed: Sequence[PlacedContour],
    *,
    planes: NDArray[np.float64],
    positions: NDArray[np.float64],
    tolerance: float,
    result: PlaneAssignment,
) -> None:
    order = np.argsort(planes, kind="stable")
    sorted_planes = planes[order]
    # Merge contour planes closer than the tolerance into one plane.
    starts = np.concatenate([[True], np.diff(sorted_planes) > tolerance])
    group_of_sorted = np.cumsum(starts) - 1
    unique_planes = np.array(
        [sorted_planes[group_of_sorted == g].mean() for g in range(int(group_of_sorted[-1]) + 1)]
    )
    group = np.empty_like(group_of_sorted)
    group[order] = group_of_sorted
    edges = _slab_edges(unique_planes)
    if unique_planes.size == 1:
        # A lone plane stands for one grid slice thickness.
        half = grid.spacing_mm[0] / 2
        edges = np.array([unique_planes[0] - half, unique_planes[0] + half])
    slab_of_slice = np.searchsorted(edges, positions, side="right") - 1
    members: dict[int, list[PlacedContour]] = {}
    for item, g in zip(placed, group, strict=True):
        members.setdefault(int(g), []).append(item)
    used: set[int] = set()
    for slice_index, slab in enumerate(slab_of_slice):
        if 0 <= slab < unique_planes.size:
            result.by_slice[slice_index] = list(members[int(slab)])
            used.add(int(slab))
    for g in sorted(set(members) - used):
        first = members[g][0]
        result.problems.append(
            f"{_describe(roi, first.index, first.contour.points_mm[0])}: its slab "
            f"({edges[g]:.2f} to {edges[g + 1]:.2f} mm) holds no grid slice centre; "
            "left out"
        )
