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
from typing import cast

import numpy as np
from numpy.typing import NDArray

from rtmask._errors import ContourWarning, InvalidInputError, OnInvalid, OverlapWarning
from rtmask.geometry import ImageGrid
from rtmask.raster._mask import CombinationRule, Mask
from rtmask.raster._memory import sparse_zeros
from rtmask.raster._planes import PlacedContour, SliceMode, assign_planes
from rtmask.raster._polygon import (
    PixelBox,
    fill_parity,
    fill_parity_stack,
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


def _segments_cross(a: NDArray[np.float64], b: NDArray[np.float64]) -> bool:
    """True when an edge of polygon ``a`` properly crosses an edge of polygon ``b``."""
    p1, p2 = a[:, None, :], np.roll(a, -1, axis=0)[:, None, :]
    q1, q2 = b[None, :, :], np.roll(b, -1, axis=0)[None, :, :]

    def side(
        o: NDArray[np.float64], x: NDArray[np.float64], y: NDArray[np.float64]
    ) -> NDArray[np.float64]:
        return np.asarray(
            (x[..., 0] - o[..., 0]) * (y[..., 1] - o[..., 1])
            - (x[..., 1] - o[..., 1]) * (y[..., 0] - o[..., 0])
        )

    crosses = (side(p1, p2, q1) * side(p1, p2, q2) < 0) & (side(q1, q2, p1) * side(q1, q2, p2) < 0)
    return bool(crosses.any())


def _parity_suffices(items: Sequence[PlacedContour], rule: CombinationRule) -> bool:
    """True when even-odd over all of a plane's contours gives what ``rule`` gives.

    That holds for one closed contour, for ``xor``, and for contours that are pairwise
    disjoint or cleanly nested (``auto``; ``union`` only for disjoint ones). Other planes
    (overlaps, touching contours) take the per-plane path, which also reports overlaps.
    """
    closed = [i.polygon for i in items if i.contour.geometric_type is GeometricType.CLOSED_PLANAR]
    if rule is CombinationRule.XOR or len(closed) < 2:
        return True
    low = [polygon.min(axis=0) for polygon in closed]
    high = [polygon.max(axis=0) for polygon in closed]
    for i in range(len(closed)):
        for j in range(i + 1, len(closed)):
            if np.any(low[i] > high[j]) or np.any(low[j] > high[i]):
                continue  # bounding boxes apart
            i_in_j = points_in_polygon(closed[i], closed[j]).mean()
            j_in_i = points_in_polygon(closed[j], closed[i]).mean()
            if i_in_j == 0 and j_in_i == 0 and not _segments_cross(closed[i], closed[j]):
                continue  # disjoint
            nested = (i_in_j == 1 and j_in_i == 0) or (j_in_i == 1 and i_in_j == 0)
            if not nested or rule is CombinationRule.UNION:
                return False
    return True


#: Pixels filled in one vectorised pass (bounds the temporary arrays of a pass).
_STACK_PIXELS = 1 << 25


def _fill_parity_planes(
    array: NDArray[np.bool_] | NDArray[np.float32],
    by_slice: dict[int, list[PlacedContour]],
    plane_shape: tuple[int, int],
    samples: int,
) -> None:
    """Fill the given slices of ``array`` by even-odd parity, many planes per numpy pass."""
    slices = sorted(by_slice)
    box = PixelBox(0, 0, 0, 0)
    for items in by_slice.values():
        for item in items:
            box = box.union(polygon_box(item.polygon, plane_shape))
    if box.is_empty:
        return
    # Align to whole coarse pixels so fractional blocks average cleanly.
    box = PixelBox(
        box.row0 // samples * samples,
        -(-box.row1 // samples) * samples,
        box.col0 // samples * samples,
        -(-box.col1 // samples) * samples,
    )
    n_rows, n_cols = box.row1 - box.row0, box.col1 - box.col0
    per_pass = max(1, _STACK_PIXELS // (n_rows * n_cols))
    coarse = (
        slice(box.row0 // samples, box.row1 // samples),
        slice(box.col0 // samples, box.col1 // samples),
    )
    for first in range(0, len(slices), per_pass):
        chunk = slices[first : first + per_pass]
        polygons = [item.polygon for k in chunk for item in by_slice[k]]
        planes = [n for n, k in enumerate(chunk) for _ in by_slice[k]]
        block = fill_parity_stack(polygons, planes, len(chunk), box)
        if samples > 1:
            block = block.reshape(
                len(chunk), n_rows // samples, samples, n_cols // samples, samples
            ).mean(axis=(2, 4), dtype=np.float32)
        array[chunk, coarse[0], coarse[1]] = block


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
    array = cast(
        "NDArray[np.bool_] | NDArray[np.float32]",
        sparse_zeros(grid.shape, np.bool_ if fractional is None else np.float32),
    )
    parity_planes: dict[int, list[PlacedContour]] = {}
    for slice_index, items in sorted(assignment.by_slice.items()):
        if _outside_extent(items, plane_shape):
            outside.append(slice_index)
        if _parity_suffices(items, rule):
            parity_planes[slice_index] = items
            continue
        filled = _fill_plane(items, rule, _Plane(roi, grid, slice_index, samples), overlaps)
        if filled is None:
            continue
        box, plane = filled
        if fractional is None:
            array[slice_index][box.slices] = plane
        else:
            _add_fractions(array[slice_index], box, plane, samples)
    _fill_parity_planes(array, parity_planes, plane_shape, samples)
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
