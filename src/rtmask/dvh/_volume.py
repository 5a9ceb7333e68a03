"""Contour-based structure volume: plane areas x slab thickness, end caps named.

Planes are the distinct positions of an ROI's closed contours along their common normal
(Newell's method on the largest contour). Each plane stands for a slab reaching half-way
to its neighbours, from the actual (possibly non-uniform) plane positions; the end planes
reach half the adjacent gap outward (:attr:`EndCaps.HALF`) or not at all
(:attr:`EndCaps.NONE`). Plane areas follow the rasteriser's combination rules exactly,
with shapely's polygon booleans (imported on first use).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from rtmask._errors import InvalidInputError
from rtmask.dvh._slabs import EndCaps, slab_faces, uneven_gap_warning
from rtmask.raster import CombinationRule
from rtmask.rtstruct import ROI, Contour, GeometricType

__all__ = ["ContourVolume", "EndCaps", "contour_volume"]

logger = logging.getLogger(__name__)

#: Largest spread (mm) of a contour's vertices along the normal for it to count as planar
#: and parallel to the others.
PARALLEL_TOLERANCE_MM = 0.1
#: Contours whose plane positions differ by less than this (mm) share a plane.
MERGE_TOLERANCE_MM = 0.01
#: Relative area below which an intersection or difference counts as empty.
_AREA_RTOL = 1e-9

FloatArray = NDArray[np.float64]


_CONVENTIONS = {
    EndCaps.HALF: (
        "contour area x slab thickness, each plane standing for the slab half-way to its "
        "neighbours and the end planes extending half the adjacent gap outward (half-slice "
        "end caps)"
    ),
    EndCaps.NONE: (
        "contour area x slab thickness, each plane standing for the slab half-way to its "
        "neighbours and the end planes extending only inward (no end caps)"
    ),
}


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class ContourVolume:
    """The contour-based volume of one ROI and how it was obtained.

    Parameters
    ----------
    roi_number, roi_name
        The ROI.
    volume_cm3
        Sum of plane area x slab thickness, in cm3.
    end_caps
        The end-cap convention used.
    plane_positions_mm
        ``(P,)`` plane positions along the contour normal, increasing, mm.
    plane_areas_mm2
        ``(P,)`` enclosed area of each plane (holes removed), mm2.
    slab_thicknesses_mm
        ``(P,)`` thickness each plane stands for, mm.
    convention
        One sentence naming the convention.
    warnings
        Contours left out, overlapping contours, empty ROIs: one sentence each.
    """

    roi_number: int
    roi_name: str
    volume_cm3: float
    end_caps: EndCaps
    plane_positions_mm: FloatArray
    plane_areas_mm2: FloatArray
    slab_thicknesses_mm: FloatArray
    convention: str
    warnings: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "end_caps", EndCaps(self.end_caps))
        for name in ("plane_positions_mm", "plane_areas_mm2", "slab_thicknesses_mm"):
            array = np.array(getattr(self, name), dtype=np.float64).reshape(-1)
            array.flags.writeable = False
            object.__setattr__(self, name, array)
        object.__setattr__(self, "warnings", tuple(self.warnings))

    @property
    def n_planes(self) -> int:
        """Number of contour planes."""
        return int(self.plane_positions_mm.size)


def _shapely() -> Any:
    """shapely, imported on first use so that ``import rtmask`` stays light."""
    import shapely  # noqa: PLC0415 - lazy on purpose

    return shapely


def _newell(points: FloatArray) -> FloatArray:
    """Newell's area vector of a polygon ``(N, 3)``: normal x twice the area."""
    following = np.roll(points, -1, axis=0)
    return np.array(
        [
            np.sum((points[:, 1] - following[:, 1]) * (points[:, 2] + following[:, 2])),
            np.sum((points[:, 2] - following[:, 2]) * (points[:, 0] + following[:, 0])),
            np.sum((points[:, 0] - following[:, 0]) * (points[:, 1] + following[:, 1])),
        ]
    )


def _common_normal(contours: Sequence[Contour]) -> FloatArray | None:
    """Unit normal of the largest planar contour, its largest component positive.

    A contour that is not planar (one vertex moved off its plane) cannot set the normal
    for the others; when none is planar the largest sets it. None when all are flat.
    """
    vectors = [_newell(contour.points_mm) for contour in contours]
    lengths = [float(np.linalg.norm(v)) for v in vectors]
    planar = [
        length
        if length > 0.0 and np.ptp(contour.points_mm @ (v / length)) <= PARALLEL_TOLERANCE_MM
        else 0.0
        for contour, v, length in zip(contours, vectors, lengths, strict=True)
    ]
    chosen = int(np.argmax(planar)) if max(planar) > 0.0 else int(np.argmax(lengths))
    largest, length = vectors[chosen], lengths[chosen]
    if not length > 0.0:
        return None
    normal = largest / length
    if normal[int(np.argmax(np.abs(normal)))] < 0:
        normal = -normal
    return np.asarray(normal)


def _in_plane_axes(normal: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Two unit axes spanning the plane, right-handed with ``normal``."""
    helper = np.eye(3)[int(np.argmin(np.abs(normal)))]
    u = helper - (helper @ normal) * normal
    u /= np.linalg.norm(u)
    return u, np.cross(normal, u)


def _polygonal(geometry: Any) -> Any:
    """The polygonal part of a shapely geometry (make_valid may add lines or points)."""
    shapely = _shapely()

    if geometry.geom_type in ("Polygon", "MultiPolygon"):
        return geometry
    parts = [
        part
        for part in shapely.get_parts(geometry)
        if part.geom_type in ("Polygon", "MultiPolygon")
    ]
    return shapely.union_all(parts) if parts else shapely.Polygon()


def _valid_polygon(uv: FloatArray, label: str) -> Any:
    """A valid shapely geometry for a ring ``(N, 2)`` of ROI ``label``.

    Self-intersections and keyhole cuts are resolved by :func:`shapely.make_valid`, which
    keeps the faces of the ring's own edges by even-odd parity (a keyhole gives its ring).
    A ring GEOS refuses (coordinates so large that they overflow) is an InvalidInputError.
    """
    shapely = _shapely()

    try:
        polygon = shapely.Polygon(uv)
        if not polygon.is_valid:
            polygon = _polygonal(shapely.make_valid(polygon))
    except shapely.errors.GEOSException as error:
        raise InvalidInputError(
            f"ROI {label}: a contour's area cannot be computed ({error}); check its coordinates"
        ) from error
    return polygon


def _contains(outer: Any, inner: Any) -> bool:
    """True when ``inner`` lies in ``outer`` (up to round-off) and ``outer`` is larger."""
    if outer.area <= inner.area or inner.area == 0.0:
        return False
    return bool(inner.difference(outer).area <= _AREA_RTOL * max(inner.area, 1.0))


def _plane_geometry(
    closed: Sequence[Any], xor: Sequence[Any], rule: CombinationRule, where: str
) -> tuple[Any, list[str]]:
    """Combine one plane's polygons by the rule; returns the geometry and warnings."""
    shapely = _shapely()

    messages: list[str] = []
    if not closed:
        result = shapely.Polygon()
    elif rule is CombinationRule.UNION:
        result = shapely.union_all(list(closed))
    elif rule is CombinationRule.XOR:
        result = closed[0]
        for polygon in closed[1:]:
            result = result.symmetric_difference(polygon)
    else:
        depths = [0] * len(closed)
        for i, inner in enumerate(closed):
            for j, outer in enumerate(closed):
                if i == j or not inner.intersects(outer):
                    continue
                if _contains(outer, inner):
                    depths[i] += 1
                elif j > i and not _contains(inner, outer):
                    shared = inner.intersection(outer).area
                    if shared > _AREA_RTOL * max(min(inner.area, outer.area), 1.0):
                        messages.append(
                            f"{where}: contours {i + 1} and {j + 1} of the plane overlap "
                            f"({shared:.2f} mm2) without nesting; they are united"
                        )
        result = shapely.Polygon()
        for depth in range(max(depths), -1, -1):
            level = shapely.union_all(
                [p for p, d in zip(closed, depths, strict=True) if d == depth]
            )
            result = level.difference(result)
    if xor:
        layer = xor[0]
        for polygon in xor[1:]:
            layer = layer.symmetric_difference(polygon)
        result = result.symmetric_difference(layer)
    return result, messages


def _placed(
    roi: ROI, normal: FloatArray, label: str, messages: list[str]
) -> list[tuple[float, Contour]]:
    """The closed contours that lie in a plane normal to ``normal``, with its position.

    The others (not planar, or not parallel) are left out with a sentence in ``messages``.
    """
    placed: list[tuple[float, Contour]] = []
    for index, contour in enumerate(roi.contours):
        if not (contour.geometric_type.encloses_volume and contour.n_points >= 3):
            continue
        along = contour.points_mm @ normal
        spread = float(along.max() - along.min())
        if not spread <= PARALLEL_TOLERANCE_MM:
            messages.append(
                f"ROI {label}: contour {index + 1} spans {spread:.2f} mm along the normal "
                f"{np.round(normal, 4).tolist()} (not planar or not parallel to the others); "
                "left out"
            )
            continue
        placed.append((float(along.mean()), contour))
    return placed


def _thicknesses(
    positions: FloatArray, end_caps: EndCaps, single_plane_thickness_mm: float | None, roi: str
) -> FloatArray:
    """Slab thickness per plane ``(P,)`` mm from the plane positions."""
    if positions.size == 1 and not (
        single_plane_thickness_mm is not None and single_plane_thickness_mm > 0
    ):
        raise InvalidInputError(
            f"ROI {roi} is contoured on one plane only (at {positions[0]:.2f} mm), so its "
            "slab thickness is unknown: give single_plane_thickness_mm (e.g. the slice "
            "spacing)"
        )
    lower, upper = slab_faces(positions, end_caps, single_plane_thickness_mm or 0.0)
    return np.asarray(upper - lower)


def _plane_groups(placed: list[tuple[float, Contour]]) -> list[list[tuple[float, Contour]]]:
    """The placed contours sorted along the normal, those on one plane grouped together."""
    placed.sort(key=lambda item: item[0])
    groups: list[list[tuple[float, Contour]]] = []
    for item in placed:
        if groups and item[0] - groups[-1][0][0] <= MERGE_TOLERANCE_MM:
            groups[-1].append(item)
        else:
            groups.append([item])
    return groups


def _plane_areas(
    groups: list[list[tuple[float, Contour]]],
    positions: FloatArray,
    axes: tuple[FloatArray, FloatArray],
    *,
    rule: CombinationRule,
    label: str,
    messages: list[str],
) -> FloatArray:
    """The area (mm2) each group of contours encloses on its plane, overlaps noted."""
    u_axis, v_axis = axes
    areas = np.zeros(positions.size)
    for k, group in enumerate(groups):
        polygons: dict[GeometricType, list[Any]] = {
            GeometricType.CLOSED_PLANAR: [],
            GeometricType.CLOSEDPLANAR_XOR: [],
        }
        for _, contour in group:
            uv = np.column_stack([contour.points_mm @ u_axis, contour.points_mm @ v_axis])
            polygons[contour.geometric_type].append(_valid_polygon(uv, label))
        geometry, overlaps = _plane_geometry(
            polygons[GeometricType.CLOSED_PLANAR],
            polygons[GeometricType.CLOSEDPLANAR_XOR],
            rule,
            f"ROI {label}, plane at {positions[k]:.2f} mm",
        )
        messages.extend(overlaps)
        areas[k] = float(geometry.area)
    return areas


def contour_volume(
    roi: ROI,
    *,
    rule: CombinationRule | str = CombinationRule.AUTO,
    end_caps: EndCaps | str = EndCaps.HALF,
    single_plane_thickness_mm: float | None = None,
) -> ContourVolume:
    """Volume of an ROI from its contours: plane area x slab thickness, in cm3.

    Parameters
    ----------
    roi
        The ROI; only CLOSED_PLANAR and CLOSEDPLANAR_XOR contours enclose volume.
    rule
        How several contours on one plane combine, as in :func:`rtmask.raster.rasterize`:
        ``"auto"`` (nesting depth parity, overlapping ones united with a warning),
        ``"xor"`` or ``"union"``. CLOSEDPLANAR_XOR contours are always XOR-ed.
    end_caps
        ``"half"`` (default) or ``"none"`` (:class:`EndCaps`).
    single_plane_thickness_mm
        Slab thickness of an ROI contoured on one plane only (required for one).

    Returns
    -------
    ContourVolume
        The volume with its planes, areas, slab thicknesses, convention and warnings.

    Raises
    ------
    InvalidInputError
        The ROI lies on one plane and ``single_plane_thickness_mm`` is not given.
    """
    rule = CombinationRule(rule)
    end_caps = EndCaps(end_caps)
    label = f"{roi.number} {roi.name!r}"
    messages: list[str] = []
    closed = [c for c in roi.contours if c.geometric_type.encloses_volume and c.n_points >= 3]
    skipped = sum(1 for c in roi.contours if c.geometric_type.encloses_volume) - len(closed)
    if skipped:
        messages.append(
            f"ROI {label}: {skipped} closed contour(s) with fewer than 3 points left out"
        )
    normal = _common_normal(closed) if closed else None
    placed = [] if normal is None else _placed(roi, normal, label, messages)
    if not placed:  # nothing flat, or every contour left out (their planes collapsed)
        messages.append(
            f"ROI {label}: no closed contour encloses an area; volume 0"
            if normal is None
            else f"ROI {label}: every closed contour was left out; volume 0"
        )
        return ContourVolume(
            roi_number=roi.number,
            roi_name=roi.name,
            volume_cm3=0.0,
            end_caps=end_caps,
            plane_positions_mm=np.empty(0),
            plane_areas_mm2=np.empty(0),
            slab_thicknesses_mm=np.empty(0),
            convention=_CONVENTIONS[end_caps],
            warnings=tuple(messages),
        )
    assert normal is not None  # placed holds contours only when there is a normal
    groups = _plane_groups(placed)
    positions = np.array([np.mean([p for p, _ in group]) for group in groups])
    areas = _plane_areas(
        groups, positions, _in_plane_axes(normal), rule=rule, label=label, messages=messages
    )
    thicknesses = _thicknesses(positions, end_caps, single_plane_thickness_mm, label)
    gap_warning = uneven_gap_warning(positions, f"ROI {label}")
    if gap_warning is not None:
        messages.append(gap_warning)
    for message in messages:
        logger.debug(message)
    return ContourVolume(
        roi_number=roi.number,
        roi_name=roi.name,
        volume_cm3=float(areas @ thicknesses) / 1000.0,
        end_caps=end_caps,
        plane_positions_mm=positions,
        plane_areas_mm2=areas,
        slab_thicknesses_mm=thicknesses,
        convention=_CONVENTIONS[end_caps],
        warnings=tuple(messages),
    )
