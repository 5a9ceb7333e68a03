"""Which ROIs of a structure set are rasterised, and what is said about the others.

Decided before any work from the parsed structure set alone: a ROI not selected is listed
as such; one without usable contours, or with only points and open contours, gets its
summary row and message here; the rest go to the rasteriser.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from rtmask.rtstruct import ROI, StructureSet

if TYPE_CHECKING:
    from rtmask.names import RoiMap

__all__ = ["RoiPlan", "canonical_stems", "plan_rois", "select_rois"]


@dataclass(frozen=True, slots=True, kw_only=True)
class RoiPlan:
    """What the conversion does with one ROI, and what is known about it before any work.

    ``status`` is the summary status of a ROI that is not rasterised (``"not selected"``,
    ``"empty"``, ``"no volume"``), None for one to rasterise; ``problems`` and ``notes``
    are failures and warnings, one sentence each.
    """

    roi: ROI
    status: str | None
    problems: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()

    @property
    def rasterise(self) -> bool:
        """True when the ROI is rasterised and written."""
        return self.status is None


def plan_rois(structure_set: StructureSet, rois: Sequence[ROI] | None = None) -> list[RoiPlan]:
    """One :class:`RoiPlan` per ROI of ``structure_set``, in its order.

    Parameters
    ----------
    structure_set
        The structure set; its ``source`` starts every message.
    rois
        The selected ROIs (default: all).
    """
    selected = {roi.number for roi in (structure_set.rois if rois is None else rois)}
    return [
        _plan(roi, structure_set)
        if roi.number in selected
        else RoiPlan(roi=roi, status="not selected")
        for roi in structure_set.rois
    ]


def _plan(roi: ROI, structure_set: StructureSet) -> RoiPlan:
    source = str(structure_set.source)
    label = f"ROI {roi.number} {roi.name!r}"
    # What the reader could not use (dropped contours, no contour at all).
    problems = list(structure_set.read_problems([roi], skipped=False))
    if not roi.contours:
        if not problems:
            problems.append(f"{source}: {label} has no contours; no mask written")
        return RoiPlan(roi=roi, status="empty", problems=tuple(problems))
    if not roi.encloses_volume:
        types = ", ".join(t.value for t in roi.geometric_types)
        note = (
            f"{source}: {label} has only {types} contours, which enclose no volume; "
            "listed, not filled"
        )
        return RoiPlan(roi=roi, status="no volume", problems=tuple(problems), notes=(note,))
    return RoiPlan(roi=roi, status=None, problems=tuple(problems))


def select_rois(
    structure_set: StructureSet, patterns: Sequence[str] = (), roi_map: RoiMap | None = None
) -> tuple[tuple[ROI, ...], dict[int, str]]:
    """The ROIs ``--roi`` and ``--roi-map`` select, and the canonical name of each mapped one.

    Without a map, the ROIs matching ``patterns`` (all when there are none). With a map,
    the ROIs it maps plus those matching ``patterns`` (a ROI that the map leaves out is
    selected only when ``--roi`` names it), in file order.

    Raises
    ------
    RoiMapError
        When the map is ambiguous for this structure set (see :meth:`RoiMap.resolve`).
    """
    if roi_map is None:
        return structure_set.select(patterns), {}
    canonical = roi_map.resolve(
        ((roi.number, roi.name) for roi in structure_set.rois), source=str(structure_set.source)
    )
    named = {roi.number for roi in structure_set.select(patterns)} if patterns else set()
    rois = tuple(r for r in structure_set.rois if r.number in canonical or r.number in named)
    return rois, canonical


def canonical_stems(stems: dict[int, str], canonical: dict[int, str]) -> dict[int, str]:
    """File stems with mapped ROIs named by their canonical name (already safe names).

    A ROI outside the map whose own stem equals a canonical name (case-insensitively) gets
    ``_<ROI number>`` appended, so the canonical file keeps its name.
    """
    taken = {name.casefold() for name in canonical.values()}
    result = {}
    for number, stem in stems.items():
        if number in canonical:
            result[number] = canonical[number]
        elif stem.casefold() in taken:
            result[number] = f"{stem}_{number}"
        else:
            result[number] = stem
    return result
