"""ROI -> mask on any ImageGrid: plane assignment, contour combination rules, fill.

The rules are those of DESIGN.md: pixel-centre rule with half-open edges (see
:mod:`rtmask.raster._polygon`), and per plane

- ``auto``: a contour inside another is a hole, inside a hole an island again (nesting
  depth parity); contours that overlap without nesting are united, with a warning
  (see :mod:`rtmask.raster._combine`);
- ``xor``: even-odd over all contours of the plane;
- ``union``: every contour filled, then OR-ed;
- CLOSEDPLANAR_XOR contours are XOR-ed among themselves, and the result XOR-ed with what
  the CLOSED_PLANAR contours of the plane give, whatever the rule.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, cast

import numpy as np
from numpy.typing import NDArray

from rtmask._errors import ContourWarning, InvalidInputError, OnInvalid, OverlapWarning
from rtmask._parallel import default_workers, ordered_map
from rtmask.geometry import ImageGrid
from rtmask.raster._combine import fill_planes
from rtmask.raster._mask import CombinationRule, Mask
from rtmask.raster._memory import sparse_zeros
from rtmask.raster._partial import PartialVoxels
from rtmask.raster._planes import PlacedContour, SliceMode, assign_planes
from rtmask.rtstruct import ROI, StructureSet

__all__ = ["rasterize", "rasterize_all", "rasterize_with_partial"]

logger = logging.getLogger(__name__)


#: Vertices this far (pixels) beyond the plane's outer edges still count as on them: a
#: contour traced along the border comes back from mm a rounding error outside.
EDGE_TOLERANCE_PIXELS = 1e-3


def _outside_extent(items: Sequence[PlacedContour], plane_shape: tuple[int, int]) -> bool:
    """True when a vertex lies beyond the outer pixel edges of the plane."""
    edge = -0.5 - EDGE_TOLERANCE_PIXELS
    for item in items:
        low, high = item.low, item.high
        if (
            low[0] < edge
            or low[1] < edge
            or high[0] > plane_shape[0] - 1 - edge
            or high[1] > plane_shape[1] - 1 - edge
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
    return _rasterize(
        roi,
        grid,
        rule=rule,
        fractional=fractional,
        slice_mode=slice_mode,
        plane_tolerance_mm=plane_tolerance_mm,
        on_invalid=on_invalid,
    )


def rasterize_with_partial(
    roi: ROI, grid: ImageGrid, *, fractional: int, **options: Any
) -> tuple[Mask, PartialVoxels]:
    """:func:`rasterize` to a fractional mask, with where the partly covered voxels are covered.

    For the DVH engine: :class:`~rtmask.raster._partial.PartialVoxels` holds the centroid
    and second moments of the covered part of every partly covered voxel. Parameters as
    :func:`rasterize` (``fractional`` >= 2 for any partly covered voxel).
    """
    partial = PartialVoxels({})
    return _rasterize(roi, grid, fractional=fractional, partial=partial, **options), partial


def _rasterize(
    roi: ROI,
    grid: ImageGrid,
    *,
    rule: CombinationRule | str = CombinationRule.AUTO,
    fractional: int | None = None,
    slice_mode: SliceMode = "exact",
    plane_tolerance_mm: float | None = None,
    on_invalid: OnInvalid = "warn",
    partial: PartialVoxels | None = None,
) -> Mask:
    rule = CombinationRule(rule)
    samples = 1 if fractional is None else int(fractional)
    if samples < 1:
        raise ValueError(f"fractional must be a positive number of samples, got {fractional}")
    assignment = assign_planes(
        roi, grid, mode=slice_mode, tolerance_mm=plane_tolerance_mm, supersample=samples
    )
    _emit(assignment.problems, ContourWarning, on_invalid)
    plane_shape = (grid.shape[1] * samples, grid.shape[2] * samples)
    array = cast(
        "NDArray[np.bool_] | NDArray[np.float32]",
        sparse_zeros(grid.shape, np.bool_ if fractional is None else np.float32),
    )
    outside = [
        k for k, items in sorted(assignment.by_slice.items()) if _outside_extent(items, plane_shape)
    ]
    overlaps, counts = fill_planes(
        array, grid, roi, assignment.by_slice, rule=rule, samples=samples, partial=partial
    )
    problems = list(assignment.problems)
    if outside:
        problems.append(
            f"ROI {roi.number} {roi.name!r}: contours on {len(outside)} slice(s) (first: "
            f"slice {outside[0]}) extend beyond the image; only the part inside is in the mask"
        )
        _emit(problems[-1:], ContourWarning, on_invalid)
    _emit(overlaps, OverlapWarning, on_invalid)
    return Mask(
        array=array, grid=grid, roi=roi, warnings=(*problems, *overlaps), slice_counts=counts
    )


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
    workers: int | None = None,
) -> Iterator[Mask]:
    """Rasterise every ROI that encloses volume, yielding the masks in ROI order.

    ``rois`` restricts the work to these ROIs (e.g. from ``StructureSet.select``); ROIs
    with only POINT / OPEN contours, or none, are skipped. ``workers`` threads rasterise
    ahead of the consumer (default: the usable CPUs, at most 4), so at most that many
    masks wait in memory. Other parameters as :func:`rasterize`.
    """
    selected = [
        roi for roi in (structure_set.rois if rois is None else rois) if roi.encloses_volume
    ]

    def one(roi: ROI) -> Mask:
        return rasterize(
            roi,
            grid,
            rule=rule,
            fractional=fractional,
            slice_mode=slice_mode,
            plane_tolerance_mm=plane_tolerance_mm,
            on_invalid=on_invalid,
        )

    yield from ordered_map(one, selected, default_workers() if workers is None else workers)
