"""Which ROIs of a structure set are rasterised, and what is said about the others.

Decided before any work from the parsed structure set alone: a ROI not selected is listed
as such; one without usable contours, or with only points and open contours, gets its
summary row and message here; the rest go to the rasteriser.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from rtmask.rtstruct import ROI, StructureSet

__all__ = ["RoiPlan", "plan_rois"]


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
