"""Analytic DVH references in a linear dose (Nelms et al., Med Phys 2015, style).

The dose is ``D = centre_gy + gy_per_mm x t``, where ``t`` (mm) is the signed distance
from the structure's centre along the gradient. A structure is a stack of circular
slabs about an axis: slab ``k`` spans ``[lower[k], upper[k]]`` along the axis (mm from
the centre) with radius ``radius[k]``. The gradient runs either along the axis or across
it, and the cumulative DVH of such a stack has a closed form per slab:

- along: ``V(D) = sum pi r^2 x (length of the slab where t >= (D - centre) / g)``;
- across: ``V(D) = sum thickness x (area of the disc beyond the chord at that t)``.

Two kinds of stack: :meth:`SlabStack.of_contours` is the exact solid a stack of circular
contours stands for (each plane's slab reaching half-way to its neighbours, the end
planes half a gap outward: the half-slice end caps), the best any DVH engine can do with
those contours; :meth:`SlabStack.of_solid` cuts a continuous solid of revolution
(sphere, cylinder, cone) into thin slabs, converging on its exact DVH. Pure numpy: this
module never looks at a DVH engine, so tests and benchmarks can check one against it.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = ["SectionStack", "SlabStack", "circular_segment_area"]

FloatArray = NDArray[np.float64]

#: The volume fractions (%) of the D-values :meth:`SlabStack.reference_values` gives.
D_PERCENTS = (99.0, 95.0, 5.0, 1.0)


def circular_segment_area(radius_mm: ArrayLike, offset_mm: float) -> FloatArray:
    """Area (mm2) of each disc of ``radius_mm`` beyond the chord at ``offset_mm``.

    The part of the disc whose signed distance from its centre (along one in-plane axis)
    is at least ``offset_mm``: the whole disc for ``offset_mm <= -radius``, none for
    ``offset_mm >= radius``.
    """
    r = np.asarray(radius_mm, dtype=np.float64)
    t = np.clip(offset_mm, -r, r)
    ratio = np.divide(t, r, out=np.zeros_like(r), where=r > 0)
    return np.asarray(r * r * np.arccos(ratio) - t * np.sqrt(np.maximum(r * r - t * t, 0.0)))


@dataclass(frozen=True, slots=True)
class SlabStack:
    """Circular slabs about an axis: ``(K,)`` lower and upper faces and radius, mm.

    Faces are measured along the axis from the structure centre (where the dose is
    ``centre_gy``); slabs of zero radius are allowed and hold no volume.
    """

    lower_mm: FloatArray
    upper_mm: FloatArray
    radius_mm: FloatArray

    @classmethod
    def of_contours(
        cls, planes_mm: ArrayLike, radii_mm: ArrayLike, *, half_end_caps: bool = True
    ) -> SlabStack:
        """The solid of circular contours on ``(P,)`` planes (increasing, mm from the centre).

        Each plane's slab reaches half-way to its neighbours; the end planes reach half
        the adjacent gap outward with half-slice end caps, or stop at the plane without.
        """
        planes = np.asarray(planes_mm, dtype=np.float64)
        if planes.size < 2 or np.any(np.diff(planes) <= 0):
            raise ValueError("give at least two contour planes in increasing order")
        half_gaps = np.diff(planes) / 2
        outward = half_gaps[[0, -1]] if half_end_caps else np.zeros(2)
        lower = planes - np.concatenate([[outward[0]], half_gaps])
        upper = planes + np.concatenate([half_gaps, [outward[1]]])
        return cls(lower, upper, np.asarray(radii_mm, dtype=np.float64))

    @classmethod
    def of_solid(
        cls,
        radius_at: Callable[[FloatArray], FloatArray],
        start_mm: float,
        stop_mm: float,
        *,
        slabs: int = 20_000,
    ) -> SlabStack:
        """A solid of revolution of radius ``radius_at(t)`` on ``[start_mm, stop_mm]``.

        Cut into ``slabs`` equal slabs, each of the radius that keeps its exact volume
        (the root mean square of the radius over the slab, by 4-point Gauss-Legendre).
        The DVH converges on the solid's as the slabs thin (error of order the slab
        thickness squared).
        """
        faces = np.linspace(start_mm, stop_mm, slabs + 1)
        nodes, weights = np.polynomial.legendre.leggauss(4)
        middle, half = (faces[1:] + faces[:-1]) / 2, (faces[1:] - faces[:-1]) / 2
        squares = sum(
            w / 2 * np.asarray(radius_at(middle + x * half)) ** 2
            for x, w in zip(nodes, weights, strict=True)
        )
        return cls(faces[:-1], faces[1:], np.sqrt(np.asarray(squares)))

    @property
    def volume_cm3(self) -> float:
        """Total volume, cm3."""
        thickness = self.upper_mm - self.lower_mm
        return float(np.sum(math.pi * self.radius_mm**2 * thickness)) / 1000.0

    def volume_at_least(
        self, dose_gy: float, *, along: bool, centre_gy: float = 16.0, gy_per_mm: float = 1.0
    ) -> float:
        """Volume (cm3) receiving at least ``dose_gy`` in the linear dose."""
        t = (dose_gy - centre_gy) / gy_per_mm
        if along:
            length = np.clip(self.upper_mm - np.maximum(self.lower_mm, t), 0.0, None)
            return float(np.sum(math.pi * self.radius_mm**2 * length)) / 1000.0
        thickness = self.upper_mm - self.lower_mm
        return float(np.sum(thickness * circular_segment_area(self.radius_mm, t))) / 1000.0

    def dose_at_volume(
        self, volume_cm3: float, *, along: bool, centre_gy: float = 16.0, gy_per_mm: float = 1.0
    ) -> float:
        """The dose (Gy) at which the cumulative volume falls to ``volume_cm3`` (bisection)."""
        low, high = self.dose_range(along=along, centre_gy=centre_gy, gy_per_mm=gy_per_mm)
        for _ in range(100):
            middle = (low + high) / 2
            found = self.volume_at_least(
                middle, along=along, centre_gy=centre_gy, gy_per_mm=gy_per_mm
            )
            low, high = (middle, high) if found >= volume_cm3 else (low, middle)
        return (low + high) / 2

    def dose_range(
        self, *, along: bool, centre_gy: float = 16.0, gy_per_mm: float = 1.0
    ) -> tuple[float, float]:
        """Least and greatest dose in the structure, Gy."""
        solid = self.radius_mm > 0
        if along:
            low_t, high_t = float(self.lower_mm[solid].min()), float(self.upper_mm[solid].max())
        else:
            high_t = float(self.radius_mm.max())
            low_t = -high_t
        return centre_gy + gy_per_mm * low_t, centre_gy + gy_per_mm * high_t

    def mean_dose(self, *, along: bool, centre_gy: float = 16.0, gy_per_mm: float = 1.0) -> float:
        """Mean dose over the structure, Gy (each circular slab is symmetric across)."""
        if not along:
            return centre_gy
        volumes = self.radius_mm**2 * (self.upper_mm - self.lower_mm)
        middles = (self.upper_mm + self.lower_mm) / 2
        return centre_gy + gy_per_mm * float(volumes @ middles / volumes.sum())

    def reference_values(
        self, *, along: bool, centre_gy: float = 16.0, gy_per_mm: float = 1.0
    ) -> dict[str, float]:
        """Volume (cm3), mean, min, max, D99, D95, D5, D1 and D0.03cc (Gy), by name."""
        low, high = self.dose_range(along=along, centre_gy=centre_gy, gy_per_mm=gy_per_mm)
        values = {
            "volume_cm3": self.volume_cm3,
            "mean_gy": self.mean_dose(along=along, centre_gy=centre_gy, gy_per_mm=gy_per_mm),
            "min_gy": low,
            "max_gy": high,
        }
        targets = {f"D{percent:g}": self.volume_cm3 * percent / 100.0 for percent in D_PERCENTS}
        targets["D0.03cc"] = 0.03
        for name, volume in targets.items():
            values[name] = self.dose_at_volume(
                volume, along=along, centre_gy=centre_gy, gy_per_mm=gy_per_mm
            )
        return values


#: Gradient directions of :class:`SectionStack`: the in-plane axes u and v, the normal.
DIRECTIONS = ("u", "v", "normal")


def _clipped_areas(polygons: tuple[FloatArray, ...], coordinate: int, t: float) -> FloatArray:
    """``(K,)`` area (mm2) of each simple ``(N, 2)`` polygon where ``coordinate`` >= ``t``.

    Green's theorem on the clipped outline: the parts of the edges beyond the cut, and the
    cut itself, along which the integral of ``u dv - v du`` is ``t`` times the change of
    the other coordinate (the parts' changes, reversed: the outline closes).
    """
    counts = np.array([p.shape[0] for p in polygons])
    points = np.concatenate(polygons)
    starts = np.cumsum(counts) - counts
    following = np.arange(points.shape[0]) + 1
    following[starts + counts - 1] = starts
    owner = np.repeat(np.arange(counts.size), counts)
    a, b = points, points[following]
    ca, cb = a[:, coordinate] - t, b[:, coordinate] - t
    cut = np.divide(ca, ca - cb, out=np.zeros_like(ca), where=ca != cb)
    # The share of each edge beyond the cut: first to last (none: 0 to 0).
    first = np.where(ca >= 0, 0.0, np.where(cb >= 0, cut, 0.0))
    last = np.where(cb >= 0, 1.0, np.where(ca >= 0, cut, 0.0))
    p0 = a + first[:, None] * (b - a)
    p1 = a + last[:, None] * (b - a)
    cross = p0[:, 0] * p1[:, 1] - p1[:, 0] * p0[:, 1]
    other = 1 - coordinate
    change = p1[:, other] - p0[:, other]
    along_cut = -t * change if coordinate == 0 else t * change
    twice = np.bincount(owner, weights=cross + along_cut, minlength=counts.size)
    return np.asarray(np.abs(twice) / 2)


@dataclass(frozen=True, slots=True)
class SectionStack:
    """Polygonal sections stacked along the normal, each standing for a slab.

    Section ``k`` (``(N_k, 2)`` vertices, in-plane u and v in mm from the structure
    centre) spans ``[lower_mm[k], upper_mm[k]]`` along the normal. Shapes whose axis lies
    in the image plane have such sections: a cylinder's are rectangles, a cone's are
    bounded by hyperbolas. The DVH in the linear dose ``centre_gy + gy_per_mm x t`` along
    ``u``, ``v`` or the ``normal`` is exact: the area beyond the cut (half-plane clipping)
    times the slab thickness, or the area times the part of the slab beyond ``t``. Pure
    numpy; never looks at a DVH engine.
    """

    lower_mm: FloatArray
    upper_mm: FloatArray
    sections: tuple[FloatArray, ...]

    @classmethod
    def of_contours(cls, planes_mm: ArrayLike, sections: tuple[FloatArray, ...]) -> SectionStack:
        """The solid of sections on ``(P,)`` increasing planes with half-slice end caps."""
        planes = np.asarray(planes_mm, dtype=np.float64)
        if planes.size < 2 or np.any(np.diff(planes) <= 0) or len(sections) != planes.size:
            raise ValueError("give one section per plane, at least two planes, increasing")
        half_gaps = np.diff(planes) / 2
        lower = planes - np.concatenate([[half_gaps[0]], half_gaps])
        upper = planes + np.concatenate([half_gaps, [half_gaps[-1]]])
        return cls(lower, upper, tuple(np.asarray(s, dtype=np.float64) for s in sections))

    @classmethod
    def lying_cylinder(
        cls, radius_mm: float, length_mm: float, planes_mm: ArrayLike
    ) -> SectionStack:
        """A cylinder with its axis along u, centred: rectangle sections on the planes.

        The planes (mm along the normal from the axis) must lie within the radius.
        """
        planes = np.asarray(planes_mm, dtype=np.float64)
        half = length_mm / 2
        sections = []
        for z in planes:
            w = math.sqrt(max(radius_mm * radius_mm - z * z, 0.0))
            sections.append(np.array([[-half, -w], [half, -w], [half, w], [-half, w]]))
        return cls.of_contours(planes, tuple(sections))

    @classmethod
    def lying_cone(
        cls, radius_mm: float, length_mm: float, planes_mm: ArrayLike, *, points: int = 129
    ) -> SectionStack:
        """A cone with its axis along u: base of ``radius_mm`` at u = -length/2, apex at +.

        Its section at normal offset z is bounded by the hyperbola
        ``v^2 = r(u)^2 - z^2`` (``r(u)`` the radius at u) and the base; ``points`` vertices
        on the hyperbola, evenly spaced in v.
        """
        planes = np.asarray(planes_mm, dtype=np.float64)
        half = length_mm / 2
        sections = []
        for z in planes:
            w = math.sqrt(max(radius_mm * radius_mm - z * z, 0.0))
            v = np.linspace(w, -w, points)
            r = np.sqrt(v * v + z * z)
            sections.append(np.column_stack([half - length_mm * r / radius_mm, v]))
        return cls.of_contours(planes, tuple(sections))

    def _areas(self) -> FloatArray:
        return np.array(
            [
                0.5 * abs(float(s[:, 0] @ np.roll(s[:, 1], -1) - s[:, 1] @ np.roll(s[:, 0], -1)))
                for s in self.sections
            ]
        )

    @property
    def volume_cm3(self) -> float:
        """Total volume, cm3."""
        return float(self._areas() @ (self.upper_mm - self.lower_mm)) / 1000.0

    def volume_at_least(
        self, dose_gy: float, *, direction: str, centre_gy: float = 16.0, gy_per_mm: float = 1.0
    ) -> float:
        """Volume (cm3) receiving at least ``dose_gy``; ``direction`` one of DIRECTIONS."""
        t = (dose_gy - centre_gy) / gy_per_mm
        if direction == "normal":
            length = np.clip(self.upper_mm - np.maximum(self.lower_mm, t), 0.0, None)
            return float(self._areas() @ length) / 1000.0
        clipped = _clipped_areas(self.sections, DIRECTIONS.index(direction), t)
        return float(clipped @ (self.upper_mm - self.lower_mm)) / 1000.0

    def dose_range(
        self, *, direction: str, centre_gy: float = 16.0, gy_per_mm: float = 1.0
    ) -> tuple[float, float]:
        """Least and greatest dose in the structure, Gy."""
        solid = self._areas() > 0
        if direction == "normal":
            low, high = float(self.lower_mm[solid].min()), float(self.upper_mm[solid].max())
        else:
            axis = DIRECTIONS.index(direction)
            along = [s[:, axis] for s, used in zip(self.sections, solid, strict=True) if used]
            low, high = min(float(a.min()) for a in along), max(float(a.max()) for a in along)
        return centre_gy + gy_per_mm * low, centre_gy + gy_per_mm * high

    def mean_dose(
        self, *, direction: str, centre_gy: float = 16.0, gy_per_mm: float = 1.0
    ) -> float:
        """Mean dose over the structure, Gy (from the sections' centroids)."""
        areas = self._areas() * (self.upper_mm - self.lower_mm)
        if direction == "normal":
            where = (self.upper_mm + self.lower_mm) / 2
        else:
            axis = DIRECTIONS.index(direction)
            where = np.array([_centroid(s)[axis] for s in self.sections])
        return centre_gy + gy_per_mm * float(areas @ where / areas.sum())

    def dose_at_volume(
        self, volume_cm3: float, *, direction: str, centre_gy: float = 16.0, gy_per_mm: float = 1.0
    ) -> float:
        """The dose (Gy) at which the cumulative volume falls to ``volume_cm3`` (bisection)."""
        linear = {"centre_gy": centre_gy, "gy_per_mm": gy_per_mm}
        low, high = self.dose_range(direction=direction, **linear)
        for _ in range(50):  # to 1e-15 of the dose range
            middle = (low + high) / 2
            found = self.volume_at_least(middle, direction=direction, **linear)
            low, high = (middle, high) if found >= volume_cm3 else (low, middle)
        return (low + high) / 2

    def reference_values(
        self, *, direction: str, centre_gy: float = 16.0, gy_per_mm: float = 1.0
    ) -> dict[str, float]:
        """Volume (cm3), mean, min, max and D/V values by name (Gy, cm3).

        D99, D95, D50, D5, D2, D1 and D0.03cc; V at the doses a quarter and three
        quarters of the way from the minimum to the maximum (``V_low``, ``V_high``).
        """
        linear = {"centre_gy": centre_gy, "gy_per_mm": gy_per_mm}
        low, high = self.dose_range(direction=direction, **linear)
        total = self.volume_cm3
        values = {
            "volume_cm3": total,
            "mean_gy": self.mean_dose(direction=direction, **linear),
            "min_gy": low,
            "max_gy": high,
        }
        targets = {f"D{p:g}": total * p / 100.0 for p in (99.0, 95.0, 50.0, 5.0, 2.0, 1.0)}
        targets["D0.03cc"] = 0.03
        for name, volume in targets.items():
            values[name] = self.dose_at_volume(volume, direction=direction, **linear)
        for name, share in (("V_low", 0.25), ("V_high", 0.75)):
            dose = low + share * (high - low)
            values[name] = self.volume_at_least(dose, direction=direction, **linear)
        return values


def _centroid(polygon: FloatArray) -> FloatArray:
    """``(2,)`` centroid of a simple ``(N, 2)`` polygon."""
    u, v = polygon[:, 0], polygon[:, 1]
    un, vn = np.roll(u, -1), np.roll(v, -1)
    cross = u * vn - un * v
    area = cross.sum() / 2
    return np.asarray(np.array([((u + un) * cross).sum(), ((v + vn) * cross).sum()]) / (6 * area))
