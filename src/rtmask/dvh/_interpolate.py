"""Contour shapes interpolated between contour planes (for coarse contour spacing).

Between two neighbouring contour planes the shape is blended through signed distance
maps: each plane's region (its contours, nested ones as holes) gives the signed distance
to its outline (negative inside) on a common in-plane lattice; at the fraction ``t`` of
the way from plane A to plane B the shape is where ``(1 - t) d_A + t d_B < 0``, its
outline traced by marching squares with linear interpolation along the lattice edges.
A cone's linear taper is thus followed exactly between its planes (up to the lattice),
where stacked slabs give a staircase; a shape that splits or merges between planes is
handled too. The two shapes are blended centred on their centroids, the result moved
along the line between them, so a shape that shifts by more than its width between
planes keeps its size. Shapely measures the distances and joins the traced pieces
into rings.

With half end caps, the end planes keep reaching half the *original* gap outward:
copies of the end shapes are added out to there, and the stack is then computed without
end caps (:func:`interpolate_roi` says which end caps to use).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import reduce

import numpy as np
import shapely
from numpy.typing import NDArray

from rtmask._errors import InvalidInputError
from rtmask.dvh._slabs import EndCaps
from rtmask.geometry import ImageGrid
from rtmask.rtstruct import ROI, Contour

__all__ = ["interpolate_roi", "planes_between"]

FloatArray = NDArray[np.float64]

#: Lattice cells across the larger in-plane extent of two neighbouring shapes.
LATTICE_CELLS = 200
#: Gap (mm) that automatic interpolation (``interpolate=True``) splits the gaps into.
AUTO_GAP_MM = 1.0
#: Contour planes closer than this (mm) along the normal are one plane.
_MERGE_MM = 0.01
#: Most contour planes an interpolated ROI may have.
MAX_PLANES = 20_000

# Marching squares: lattice cell corners a (i, j), b (i, j+1), c (i+1, j+1), d (i+1, j);
# case = a + 2b + 4c + 8d (1 = inside). Edges: 0 = a-b, 1 = b-c, 2 = d-c, 3 = a-d.
# Saddles (5, 10) list both pairings: [centre outside, centre inside].
_SEGMENTS: dict[int, tuple[tuple[int, int], ...]] = {
    1: ((3, 0),),
    2: ((0, 1),),
    3: ((3, 1),),
    4: ((1, 2),),
    6: ((0, 2),),
    7: ((2, 3),),
    8: ((2, 3),),
    9: ((0, 2),),
    11: ((1, 2),),
    12: ((1, 3),),
    13: ((0, 1),),
    14: ((3, 0),),
}
_SADDLES = {
    5: (((3, 0), (1, 2)), ((0, 1), (2, 3))),
    10: (((0, 1), (2, 3)), ((3, 0), (1, 2))),
}


@dataclass(frozen=True, slots=True)
class _Frame:
    """Orthonormal in-plane axes ``u``, ``v`` and the normal ``n`` (LPS unit vectors)."""

    u: FloatArray
    v: FloatArray
    n: FloatArray

    def to_uvw(self, points: FloatArray) -> FloatArray:
        """``(N, 3)`` patient points as ``(N, 3)`` (u, v, w) coordinates, mm."""
        return np.asarray(points @ np.stack([self.u, self.v, self.n]).T)

    def to_patient(self, uv: FloatArray, w: float) -> FloatArray:
        """``(N, 2)`` in-plane coordinates on the plane at ``w`` as ``(N, 3)`` LPS mm."""
        return np.asarray(np.outer(uv[:, 0], self.u) + np.outer(uv[:, 1], self.v) + w * self.n)


def _region(rings: list[FloatArray]) -> shapely.Geometry:
    """The region of a plane's ``(K, 2)`` rings: nesting parity (even-odd), as ``auto`` does."""
    polygons = [shapely.make_valid(shapely.Polygon(ring)) for ring in rings]
    return reduce(shapely.symmetric_difference, polygons)


def _changes(inside: NDArray[np.bool_]) -> NDArray[np.bool_]:
    """Lattice points with a 4-neighbour on the other side of the outline."""
    change = np.zeros_like(inside)
    rows = inside[1:, :] != inside[:-1, :]
    columns = inside[:, 1:] != inside[:, :-1]
    change[1:, :] |= rows
    change[:-1, :] |= rows
    change[:, 1:] |= columns
    change[:, :-1] |= columns
    return change


def _signed_distances(
    region_a: shapely.Geometry, region_b: shapely.Geometry, u: FloatArray, v: FloatArray
) -> tuple[FloatArray, FloatArray]:
    """Signed distances (mm, negative inside) to the outlines of A and B on the lattice.

    Exact where any blend of the two can cross zero along a lattice edge: where A and B
    disagree, and next to either outline. Elsewhere both have one sign, and so has every
    blend; the magnitude there (one lattice step) is never used by the tracing.
    """
    fields = []
    insides = [shapely.contains_xy(r, u, v) for r in (region_a, region_b)]
    needed = (insides[0] != insides[1]) | _changes(insides[0]) | _changes(insides[1])
    points = shapely.points(u[needed], v[needed])
    step = float(u[0, 1] - u[0, 0])
    for region, inside in zip((region_a, region_b), insides, strict=True):
        boundary = shapely.boundary(region)
        shapely.prepare(boundary)
        field = np.where(inside, -step, step)
        distance = shapely.distance(boundary, points)
        field[needed] = np.where(inside[needed], -distance, distance)
        fields.append(np.asarray(field, dtype=np.float64))
    return fields[0], fields[1]


def _crossings(field: FloatArray, u0: float, v0: float, step: float) -> tuple[FloatArray, ...]:
    """Zero crossings of ``field`` ``(ny, nx)`` on horizontal and vertical lattice edges.

    Returns ``(ny, nx - 1, 2)`` and ``(ny - 1, nx, 2)`` (u, v) points (NaN-free; values
    where an edge has no crossing are not used).
    """
    with np.errstate(divide="ignore", invalid="ignore"):
        t_h: FloatArray = np.asarray(field[:, :-1] / (field[:, :-1] - field[:, 1:]))
        t_v: FloatArray = np.asarray(field[:-1, :] / (field[:-1, :] - field[1:, :]))
    grids: FloatArray = np.indices(field.shape, dtype=np.float64)
    rows, columns = grids[0], grids[1]
    horizontal = np.stack(
        [u0 + (columns[:, :-1] + np.nan_to_num(t_h)) * step, v0 + rows[:, :-1] * step], axis=-1
    )
    vertical = np.stack(
        [u0 + columns[:-1, :] * step, v0 + (rows[:-1, :] + np.nan_to_num(t_v)) * step], axis=-1
    )
    return horizontal, vertical


def _trace(field: FloatArray, u0: float, v0: float, step: float) -> list[FloatArray]:
    """Closed outlines (``(K, 2)`` u, v each) of ``field < 0`` by marching squares.

    The field must be positive on the lattice's border, so that every outline closes.
    """
    inside = field < 0
    case = (
        inside[:-1, :-1] * 1 + inside[:-1, 1:] * 2 + inside[1:, 1:] * 4 + inside[1:, :-1] * 8
    ).astype(np.intp)
    centre = (field[:-1, :-1] + field[:-1, 1:] + field[1:, 1:] + field[1:, :-1]) < 0
    horizontal, vertical = _crossings(field, u0, v0, step)
    lines: list[tuple[FloatArray, FloatArray]] = []
    for i, j in zip(*np.nonzero((case > 0) & (case < 15)), strict=True):
        k = int(case[i, j])
        pairs = _SADDLES[k][int(centre[i, j])] if k in _SADDLES else _SEGMENTS[k]
        edges = (horizontal[i, j], vertical[i, j + 1], horizontal[i + 1, j], vertical[i, j])
        lines.extend((edges[a], edges[b]) for a, b in pairs)
    if not lines:
        return []
    merged = shapely.line_merge(shapely.multilinestrings([np.stack(p) for p in lines]))
    parts = shapely.get_parts(merged)
    return [np.asarray(shapely.get_coordinates(p))[:-1] for p in parts if len(p.coords) >= 4]


def _blend(
    rings_a: list[FloatArray], rings_b: list[FloatArray], fractions: FloatArray
) -> list[list[FloatArray]]:
    """Outlines of the shapes at each of ``fractions`` (0-1) of the way from A to B.

    Both shapes are blended centred on their centroids, and the blend is moved to the
    centroid interpolated linearly: a shape that shifts between planes by more than its
    width (a thin structure drawn obliquely) keeps its size instead of fading out midway.
    """
    centre_a = np.asarray(shapely.get_coordinates(shapely.centroid(_region(rings_a))))[0]
    centre_b = np.asarray(shapely.get_coordinates(shapely.centroid(_region(rings_b))))[0]
    region_a = _region([r - centre_a for r in rings_a])
    region_b = _region([r - centre_b for r in rings_b])
    low = np.minimum(shapely.bounds(region_a)[:2], shapely.bounds(region_b)[:2])
    high = np.maximum(shapely.bounds(region_a)[2:], shapely.bounds(region_b)[2:])
    step = max(float(np.max(high - low)) / LATTICE_CELLS, 1e-3)
    low -= 2 * step
    counts = np.ceil((high + 2 * step - low) / step).astype(int) + 1
    v, u = np.meshgrid(
        low[1] + step * np.arange(counts[1]), low[0] + step * np.arange(counts[0]), indexing="ij"
    )
    distance_a, distance_b = _signed_distances(region_a, region_b, u, v)
    tolerance = step / 50
    result = []
    for t in fractions:
        field = (1 - t) * distance_a + t * distance_b
        rings = _trace(field, float(low[0]), float(low[1]), step)
        simplified = [
            np.asarray(shapely.get_coordinates(shapely.simplify(shapely.LinearRing(r), tolerance)))[
                :-1
            ]
            for r in rings
        ]
        centre = (1 - t) * centre_a + t * centre_b
        result.append([r + centre for r in simplified if len(r) >= 3])
    return result


def planes_between(gap_mm: float, interpolate: int | bool) -> int:
    """Planes to add in a gap: ``interpolate`` itself, or (True) enough for AUTO_GAP_MM."""
    if interpolate is True:
        return max(math.ceil(gap_mm / AUTO_GAP_MM - 1e-9) - 1, 0)
    return int(interpolate)


def _planes(roi: ROI, frame: _Frame) -> tuple[FloatArray, list[list[FloatArray]]]:
    """The closed contours of ``roi`` grouped by plane: positions (mm) and (u, v) rings."""
    closed = [c for c in roi.contours if c.geometric_type.encloses_volume and c.n_points >= 3]
    if not closed:
        raise InvalidInputError(
            f"ROI {roi.number} {roi.name!r} has no closed contour; a DVH needs a "
            "structure that encloses volume"
        )
    uvw = [frame.to_uvw(c.points_mm) for c in closed]
    positions = np.array([float(p[:, 2].mean()) for p in uvw])
    order = np.argsort(positions, kind="stable")
    planes: list[float] = []
    rings: list[list[FloatArray]] = []
    for k in order:
        if planes and positions[k] - planes[-1] <= _MERGE_MM:
            rings[-1].append(uvw[k][:, :2])
        else:
            planes.append(float(positions[k]))
            rings.append([uvw[k][:, :2]])
    return np.array(planes), rings


def interpolate_roi(
    roi: ROI,
    grid: ImageGrid,
    interpolate: int | bool,
    end_caps: EndCaps,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[ROI, EndCaps]:
    """``roi`` with contours interpolated between its planes, and the end caps to use.

    Parameters
    ----------
    roi
        The ROI; its closed contours must be parallel to ``grid``'s planes.
    grid
        The grid whose orientation gives the planes (the dose grid).
    interpolate
        Planes added in every gap (an int), or True: as many as split each gap into
        pieces of at most AUTO_GAP_MM (1 mm).
    end_caps
        The end caps asked for. With HALF, copies of the end shapes reach half the
        original end gaps outward and NONE is returned, so that the interpolated stack
        has the original stack's extent.
    progress
        Called with (gaps done, gaps) after each gap.
    """
    frame = _Frame(grid.row_direction, grid.column_direction, grid.normal)
    planes, rings = _planes(roi, frame)
    gaps = np.diff(planes)
    added = [planes_between(float(g), interpolate) for g in gaps]
    if sum(added) + planes.size > MAX_PLANES:
        raise InvalidInputError(
            f"ROI {roi.number} {roi.name!r}: interpolation would give {sum(added) + planes.size} "
            f"contour planes, more than {MAX_PLANES}; interpolate fewer planes"
        )
    contours: list[Contour] = [
        c for c in roi.contours if c.geometric_type.encloses_volume and c.n_points >= 3
    ]
    for k, count in enumerate(added):
        fractions = np.arange(1, count + 1) / (count + 1)
        if count:
            shapes = _blend(rings[k], rings[k + 1], fractions)
            for t, shape in zip(fractions, shapes, strict=True):
                w = float(planes[k] + t * gaps[k])
                contours += [Contour(points_mm=frame.to_patient(r, w)) for r in shape]
        if progress is not None:
            progress(k + 1, gaps.size)
    if end_caps is EndCaps.HALF and planes.size > 1:
        for end, gap, new_gap, sign in (
            (0, gaps[0], gaps[0] / (added[0] + 1), -1.0),
            (-1, gaps[-1], gaps[-1] / (added[-1] + 1), 1.0),
        ):
            offsets = np.append(
                np.arange(1, math.ceil(gap / 2 / new_gap - 1e-9)) * new_gap, gap / 2
            )
            for offset in offsets:
                w = float(planes[end] + sign * offset)
                contours += [Contour(points_mm=frame.to_patient(r, w)) for r in rings[end]]
        end_caps = EndCaps.NONE
    return replace(roi, contours=tuple(contours)), end_caps
