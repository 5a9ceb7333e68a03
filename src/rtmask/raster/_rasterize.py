"""ROI -> mask on any ImageGrid: plane assignment, contour combination rules, fill.

The rules are those of DESIGN.md: pixel-centre rule with half-open edges (see
:mod:`rtmask.raster._polygon`), and per plane

- ``auto``: a contour inside another is a hole, inside a hole an island again (nesting
  depth parity); contours that overlap without nesting are united, with a warning;
- ``xor``: even-odd over all contours of the plane;
- ``union``: every contour filled, then OR-ed;
- CLOSEDPLANAR_XOR contours are XOR-ed among themselves, and the result XOR-ed with what
  the CLOSED_PLANAR contours of the plane give, whatever the rule.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from rtmask._errors import ContourWarning, InvalidInputError, OnInvalid, OverlapWarning
from rtmask.geometry import ImageGrid
from rtmask.raster._mask import CombinationRule, Mask
from rtmask.raster._planes import PlacedContour, SliceMode, assign_planes
from rtmask.raster._polygon import (
    PixelBox,
    fill_parity,
    points_in_polygon,
    polygon_area,
    polygon_box,
)
from rtmask.rtstruct import ROI, GeometricType, StructureSet

__all__ = ["rasterize", "rasterize_all"]

logger = logging.getLogger(__name__)

#: Fraction of a contour's vertices inside another for it to count as nested in it.
NESTING_FRACTION = 0.5


@dataclass(frozen=True, slots=True)
class _Plane:
    """The plane being filled: which ROI, grid slice and supersampling, for messages."""

    roi: ROI
    grid: ImageGrid
    slice_index: int
    supersample: int

    @property
    def shape(self) -> tuple[int, int]:
        """Supersampled ``(rows, columns)`` of the plane."""
        return (self.grid.shape[1] * self.supersample, self.grid.shape[2] * self.supersample)


def _combine_auto(
    items: Sequence[PlacedContour],
    boxes: Sequence[PixelBox],
    fills: Sequence[NDArray[np.bool_]],
    plane_box: PixelBox,
    *,
    plane: _Plane,
    report: list[str],
) -> NDArray[np.bool_]:
    """Nesting-depth parity with union of overlapping contours (rule ``auto``)."""
    n = len(items)
    areas = [polygon_area(item.polygon) for item in items]
    nested = np.zeros((n, n), dtype=bool)  # nested[i, j]: contour i lies inside contour j
    for i in range(n):
        for j in range(n):
            if i == j or areas[i] >= areas[j] or not boxes[j].intersects(boxes[i]):
                continue
            inside = points_in_polygon(items[i].polygon, items[j].polygon)
            nested[i, j] = inside.mean() >= NESTING_FRACTION
    depth = nested.sum(axis=1)
    # Parent: the smallest enclosing contour (deepest among those containing it).
    parent = [
        int(max(np.flatnonzero(nested[i]), key=lambda j: depth[j])) if depth[i] else -1
        for i in range(n)
    ]
    result = np.zeros(
        (plane_box.row1 - plane_box.row0, plane_box.col1 - plane_box.col0), dtype=bool
    )

    def place(k: int) -> tuple[slice, slice]:
        b = boxes[k]
        return (
            slice(b.row0 - plane_box.row0, b.row1 - plane_box.row0),
            slice(b.col0 - plane_box.col0, b.col1 - plane_box.col0),
        )

    for solid in (k for k in range(n) if depth[k] % 2 == 0):
        region = np.zeros_like(result)
        region[place(solid)] = fills[solid]
        for hole in (k for k in range(n) if parent[k] == solid):
            region[place(hole)] &= ~fills[hole]
        result |= region
    _report_overlaps(items, boxes, fills, nested, plane=plane, report=report)
    return result


def _report_overlaps(
    items: Sequence[PlacedContour],
    boxes: Sequence[PixelBox],
    fills: Sequence[NDArray[np.bool_]],
    nested: NDArray[np.bool_],
    *,
    plane: _Plane,
    report: list[str],
) -> None:
    """Warn about pairs that overlap without one being nested in the other."""
    n = len(items)
    for i in range(n):
        for j in range(i + 1, n):
            if nested[i, j] or nested[j, i] or not boxes[i].intersects(boxes[j]):
                continue
            common = PixelBox(
                max(boxes[i].row0, boxes[j].row0),
                min(boxes[i].row1, boxes[j].row1),
                max(boxes[i].col0, boxes[j].col0),
                min(boxes[i].col1, boxes[j].col1),
            )
            a = fills[i][
                common.row0 - boxes[i].row0 : common.row1 - boxes[i].row0,
                common.col0 - boxes[i].col0 : common.col1 - boxes[i].col0,
            ]
            b = fills[j][
                common.row0 - boxes[j].row0 : common.row1 - boxes[j].row0,
                common.col0 - boxes[j].col0 : common.col1 - boxes[j].col0,
            ]
            overlap = a & b
            count = int(np.count_nonzero(overlap))
            if count == 0:
                continue
            rows, cols = np.nonzero(overlap)
            s = plane.supersample
            centre = np.array(
                [
                    [
                        plane.slice_index,
                        (rows.mean() + common.row0 - (s - 1) / 2) / s,
                        (cols.mean() + common.col0 - (s - 1) / 2) / s,
                    ]
                ]
            )
            x, y, z = plane.grid.index_to_patient(centre)[0]
            report.append(
                f"ROI {plane.roi.number} {plane.roi.name!r}: contours {items[i].index + 1} and "
                f"{items[j].index + 1} overlap on slice {plane.slice_index} "
                f"(plane {items[i].plane_mm:.2f} mm) near ({x:.1f}, {y:.1f}, {z:.1f}) mm, "
                f"{count / s**2:.0f} voxels; invalid for CLOSED_PLANAR, combined "
                "by union"
            )


def _fill_plane(
    items: Sequence[PlacedContour], rule: CombinationRule, plane: _Plane, report: list[str]
) -> tuple[PixelBox, NDArray[np.bool_]] | None:
    """The filled pixels of one plane, as a box and its mask (None when nothing is inside)."""
    boxes = {id(i): polygon_box(i.polygon, plane.shape) for i in items}
    # A polygon whose box is empty covers no pixel centre of this plane (it lies beyond
    # the image, or is thinner than a pixel); anything nested in it does too.
    items = [i for i in items if not boxes[id(i)].is_empty]
    closed = [i for i in items if i.contour.geometric_type is GeometricType.CLOSED_PLANAR]
    xor_type = [i for i in items if i.contour.geometric_type is GeometricType.CLOSEDPLANAR_XOR]
    plane_box = PixelBox(0, 0, 0, 0)
    for box in boxes.values():
        plane_box = plane_box.union(box)
    if plane_box.is_empty:
        return None
    result = np.zeros(
        (plane_box.row1 - plane_box.row0, plane_box.col1 - plane_box.col0), dtype=bool
    )
    if closed:
        if rule is CombinationRule.XOR or len(closed) == 1:
            result = fill_parity([i.polygon for i in closed], plane_box)
        else:
            own_boxes = [boxes[id(i)] for i in closed]
            fills = [fill_parity([i.polygon], b) for i, b in zip(closed, own_boxes, strict=True)]
            if rule is CombinationRule.UNION:
                for box, fill in zip(own_boxes, fills, strict=True):
                    result[
                        box.row0 - plane_box.row0 : box.row1 - plane_box.row0,
                        box.col0 - plane_box.col0 : box.col1 - plane_box.col0,
                    ] |= fill
            else:
                result = _combine_auto(
                    closed, own_boxes, fills, plane_box, plane=plane, report=report
                )
    if xor_type:
        result ^= fill_parity([i.polygon for i in xor_type], plane_box)
    return plane_box, result


def _outside_extent(items: Sequence[PlacedContour], plane_shape: tuple[int, int]) -> bool:
    """True when a vertex lies beyond the outer pixel edges of the plane."""
    for item in items:
        low = item.polygon.min(axis=0)
        high = item.polygon.max(axis=0)
        if (
            low[0] < -0.5
            or low[1] < -0.5
            or high[0] > plane_shape[0] - 0.5
            or high[1] > plane_shape[1] - 0.5
        ):
            return True
    return False


def _emit(messages: Iterable[str], category: type[Warning], on_invalid: OnInvalid) -> None:
    for message in messages:
        if on_invalid == "raise":
            raise InvalidInputError(message + " (use on_invalid='warn' to go on)")
        if on_invalid == "warn":
            warnings.warn(message, category, stacklevel=3)
        logger.debug(message)


def rasterize(
    roi: ROI,
    grid: ImageGrid,
    *,
    rule: CombinationRule | str = CombinationRule.AUTO,
    fractional: int | None = None,
    slice_mode: SliceMode = "exact",
    plane_tolerance_mm: float | None = None,
    on_invalid: OnInvalid = "warn",
) -> Mask:
    """Rasterise one ROI onto a grid by the pixel-centre rule.

    Parameters
    ----------
    roi
        The ROI. POINT and OPEN_* contours are never filled.
    grid
        Target grid; the mask has its full shape (nothing cropped).
    rule
        Combination of several contours on one plane: ``"auto"`` (default), ``"xor"``,
        ``"union"`` (:class:`CombinationRule`).
    fractional
        When given (N >= 1), sample N x N points per voxel in-plane and return the covered
        fraction as float32; default: a binary (bool) mask.
    slice_mode
        ``"exact"``: contours must lie in a slice plane (image grids); ``"slab"``: each
        contour plane fills the grid slices within half a gap of it (dose or custom grids).
    plane_tolerance_mm
        Largest distance from a contour to its slice plane (default: a quarter of the
        smallest slice gap, at most 0.5 mm).
    on_invalid
        Contours left out (off-plane, outside, not parallel) and overlapping contours:
        ``"warn"`` (default; :class:`ContourWarning` / :class:`OverlapWarning`),
        ``"ignore"``, or ``"raise"`` (:class:`InvalidInputError`). They are listed in
        ``Mask.warnings`` in every case.

    Returns
    -------
    Mask
        ``(slices, rows, columns)`` bool or float32 array on ``grid``.
    """
    rule = CombinationRule(rule)
    samples = 1 if fractional is None else int(fractional)
    if samples < 1:
        raise ValueError(f"fractional must be a positive number of samples, got {fractional}")
    assignment = assign_planes(
        roi, grid, mode=slice_mode, tolerance_mm=plane_tolerance_mm, supersample=samples
    )
    _emit(assignment.problems, ContourWarning, on_invalid)
    plane_shape = (grid.shape[1] * samples, grid.shape[2] * samples)
    overlaps: list[str] = []
    outside: list[int] = []
    array: NDArray[np.bool_] | NDArray[np.float32] = (
        np.zeros(grid.shape, dtype=np.bool_)
        if fractional is None
        else np.zeros(grid.shape, dtype=np.float32)
    )
    for slice_index, items in sorted(assignment.by_slice.items()):
        if _outside_extent(items, plane_shape):
            outside.append(slice_index)
        filled = _fill_plane(items, rule, _Plane(roi, grid, slice_index, samples), overlaps)
        if filled is None:
            continue
        box, plane = filled
        if fractional is None:
            array[slice_index][box.slices] = plane
        else:
            _add_fractions(array[slice_index], box, plane, samples)
    problems = list(assignment.problems)
    if outside:
        problems.append(
            f"ROI {roi.number} {roi.name!r}: contours on {len(outside)} slice(s) (first: "
            f"slice {outside[0]}) extend beyond the image; only the part inside is in the mask"
        )
        _emit(problems[-1:], ContourWarning, on_invalid)
    _emit(overlaps, OverlapWarning, on_invalid)
    return Mask(array=array, grid=grid, roi=roi, warnings=(*problems, *overlaps))


def _add_fractions(
    target: NDArray[np.float32], box: PixelBox, fine: NDArray[np.bool_], samples: int
) -> None:
    """Average a supersampled plane box into the coarse plane ``target`` (rows, columns)."""
    row0, col0 = box.row0 // samples, box.col0 // samples
    row1, col1 = -(-box.row1 // samples), -(-box.col1 // samples)
    padded = np.zeros(((row1 - row0) * samples, (col1 - col0) * samples), dtype=np.float32)
    padded[
        box.row0 - row0 * samples : box.row1 - row0 * samples,
        box.col0 - col0 * samples : box.col1 - col0 * samples,
    ] = fine
    coarse = padded.reshape(row1 - row0, samples, col1 - col0, samples).mean(axis=(1, 3))
    target[row0:row1, col0:col1] = coarse


def rasterize_all(
    structure_set: StructureSet,
    grid: ImageGrid,
    *,
    rois: Sequence[ROI] | None = None,
    rule: CombinationRule | str = CombinationRule.AUTO,
    fractional: int | None = None,
    slice_mode: SliceMode = "exact",
    plane_tolerance_mm: float | None = None,
    on_invalid: OnInvalid = "warn",
) -> Iterator[Mask]:
    """Rasterise every ROI that encloses volume, one at a time (a generator, to bound memory).

    ``rois`` restricts the work to these ROIs (e.g. from ``StructureSet.select``); ROIs
    with only POINT / OPEN contours, or none, are skipped. Other parameters as
    :func:`rasterize`.
    """
    for roi in structure_set.rois if rois is None else rois:
        if roi.encloses_volume:
            yield rasterize(
                roi,
                grid,
                rule=rule,
                fractional=fractional,
                slice_mode=slice_mode,
                plane_tolerance_mm=plane_tolerance_mm,
                on_invalid=on_invalid,
            )
