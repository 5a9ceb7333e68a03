"""Linking an RTSTRUCT (or RTDOSE / RTPLAN) to the image series it was made on.

In order of trust:

1. ``series_uid``: a series whose SeriesInstanceUID the object references;
2. ``instance_uids``: the series holding most of the referenced image SOPInstanceUIDs
   (RTDOSE and RTPLAN first follow their references to a plan / structure set);
3. ``frame_of_reference``: a series in the same frame of reference, preferring the one
   whose slice planes hold the contour planes (anonymised or re-exported data, missing
   ContourImageSequence);
4. ``geometry``: a guess, a series of the same patient ID whose slices hold at least 95 %
   of the contour planes;
5. ``none``: nothing fits; the user has to say which series.

Every link says how it was made, and reports what does not fit (missing referenced
images, contours off the slices, a different frame of reference).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from rtmask.discovery._scan import RTObject
from rtmask.discovery._series import ImageSeries
from rtmask.geometry import ImageGrid

__all__ = ["LINK_METHODS", "SeriesLink", "contours_on_slices", "link_image_series"]

#: How a link was made, most trusted first.
LINK_METHODS = ("series_uid", "instance_uids", "frame_of_reference", "geometry", "none")

#: Fraction of contour planes that must lie on a series' slices for a geometry-only guess.
GEOMETRY_MIN_FIT = 0.95
#: Distance (mm) between a contour plane and a slice plane within which they coincide.
PLANE_TOLERANCE_MM = 0.5
#: How far (in pixels) a contour's first vertex may lie outside the image and still count.
_IN_PLANE_MARGIN_PX = 2.0


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class SeriesLink:
    """The image series an RT object belongs to, and how that was decided.

    Parameters
    ----------
    series
        The linked series, or None when none fits.
    method
        One of :data:`LINK_METHODS`.
    message
        One line for people, e.g. ``"linked by frame of reference 1.2.3 (referenced series
        4.5.6 not found)"``; includes the warnings.
    warnings
        What does not fit in the link (missing referenced images, contours off the slices,
        differing frames of reference), one sentence each.
    """

    series: ImageSeries | None
    method: str
    message: str
    warnings: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.method not in LINK_METHODS:
            raise ValueError(f"link method must be one of {LINK_METHODS}, got {self.method!r}")
        object.__setattr__(self, "warnings", tuple(self.warnings))

    @property
    def is_linked(self) -> bool:
        """True when a series was found."""
        return self.series is not None


def contours_on_slices(
    points_mm: NDArray[np.float64],
    grid: ImageGrid,
    *,
    tolerance_mm: float = PLANE_TOLERANCE_MM,
) -> int:
    """Count the contour points that lie on a slice plane of ``grid``, inside its field of view.

    Parameters
    ----------
    points_mm
        ``(M, 3)`` LPS mm, one point per contour (e.g. its first vertex).
    grid
        The image grid.
    tolerance_mm
        Largest distance along the normal between a point and its nearest slice plane.
    """
    points = np.asarray(points_mm, dtype=np.float64).reshape(-1, 3)
    if points.shape[0] == 0:
        return 0
    distances = points @ grid.normal
    positions = grid.slice_positions_mm
    last = positions.size - 1
    after = np.clip(np.searchsorted(positions, distances), 0, last)
    before = np.clip(after - 1, 0, last)
    nearest = np.minimum(
        np.abs(distances - positions[after]), np.abs(distances - positions[before])
    )
    index = grid.patient_to_index(points)
    low = -0.5 - _IN_PLANE_MARGIN_PX
    inside = (
        (index[:, 1] >= low)
        & (index[:, 1] <= grid.shape[1] - 1 - low)
        & (index[:, 2] >= low)
        & (index[:, 2] <= grid.shape[2] - 1 - low)
    )
    return int(np.count_nonzero((nearest <= tolerance_mm) & inside))


def _fit(rt_object: RTObject, series: ImageSeries) -> float:
    """Fraction of the object's contours lying on the series' slices (0 without contours)."""
    points = rt_object.contour_plane_points_mm
    if points.shape[0] == 0:
        return 0.0
    return float(contours_on_slices(points, series.grid) / points.shape[0])


def _instance_hits(rt_object: RTObject, series: ImageSeries) -> int:
    return len(set(rt_object.referenced_sop_instance_uids).intersection(series.sop_instance_uids))


def _checks(rt_object: RTObject, series: ImageSeries, *, by_uid: bool) -> list[str]:
    """What does not fit between an RT object and the series it was linked to."""
    warnings: list[str] = []
    references = rt_object.referenced_sop_instance_uids
    if by_uid and references:
        missing = len(references) - _instance_hits(rt_object, series)
        if missing:
            warnings.append(
                f"{missing} of {len(references)} referenced images are not in the series "
                f"({series.n_slices} slice(s) present); contours on missing slices cannot be "
                "placed"
            )
    points = rt_object.contour_plane_points_mm
    if points.shape[0]:
        hits = contours_on_slices(points, series.grid)
        if hits < points.shape[0]:
            warnings.append(
                f"{points.shape[0] - hits} of {points.shape[0]} contours do not lie on a slice "
                f"of the series (within {PLANE_TOLERANCE_MM} mm)"
            )
    ours, theirs = rt_object.frame_of_reference_uid, series.frame_of_reference_uid
    if ours and theirs and ours != theirs:
        warnings.append(
            f"frames of reference differ ({rt_object.modality} {ours}, series {theirs})"
        )
    return warnings


def _missing_reason(rt_object: RTObject) -> str:
    if rt_object.referenced_series_uids:
        return f"referenced series {', '.join(rt_object.referenced_series_uids)} not found"
    if rt_object.referenced_sop_instance_uids:
        count = len(rt_object.referenced_sop_instance_uids)
        return f"none of its {count} referenced images found"
    if rt_object.referenced_rt_uids:
        return "its referenced RT objects lead to no image series"
    return "the file references no image series"


def _linked(series: ImageSeries, method: str, message: str, warnings: Sequence[str]) -> SeriesLink:
    """A link to ``series`` whose message is ``message`` followed by the warnings."""
    return SeriesLink(
        series=series,
        method=method,
        message="; ".join([message, *warnings]),
        warnings=tuple(warnings),
    )


def _link_by_series_uid(rt_object: RTObject, series: Sequence[ImageSeries]) -> SeriesLink | None:
    """Link by the referenced series UID, the best of the series that carry it."""
    referenced = set(rt_object.referenced_series_uids)
    by_series = [s for s in series if s.series_instance_uid in referenced]
    if not by_series:
        return None
    best = max(
        by_series, key=lambda s: (_instance_hits(rt_object, s), _fit(rt_object, s), s.n_slices)
    )
    warnings = _checks(rt_object, best, by_uid=True)
    message = f"linked by referenced series UID {best.series_instance_uid}"
    return _linked(best, "series_uid", message, warnings)


def _link_through_references(
    rt_object: RTObject,
    series: Sequence[ImageSeries],
    related: Sequence[RTObject],
    depth: int,
) -> SeriesLink | None:
    """Link through the RT objects it references (RTDOSE -> RTPLAN -> RTSTRUCT -> series)."""
    if depth < 3:
        for target in related:
            if target is not rt_object and target.sop_instance_uid in rt_object.referenced_rt_uids:
                inner = _link(target, series, related, depth + 1)
                if inner.method in ("series_uid", "instance_uids"):
                    return SeriesLink(
                        series=inner.series,
                        method=inner.method,
                        warnings=inner.warnings,
                        message=f"linked through the {target.modality} it references "
                        f"({target.path.name}): {inner.message}",
                    )
    return None


def _link_by_instance_uids(rt_object: RTObject, series: Sequence[ImageSeries]) -> SeriesLink | None:
    """Link to the series holding most of the referenced image instance UIDs."""
    if not rt_object.referenced_sop_instance_uids:
        return None
    ranked = sorted(
        series, key=lambda s: (_instance_hits(rt_object, s), _fit(rt_object, s), s.n_slices)
    )
    if not ranked or not _instance_hits(rt_object, ranked[-1]):
        return None
    best = ranked[-1]
    hits = _instance_hits(rt_object, best)
    total = len(rt_object.referenced_sop_instance_uids)
    message = (
        f"linked by {hits} of {total} referenced image UIDs to series {best.series_instance_uid}"
    )
    if rt_object.referenced_series_uids:
        message += f" ({_missing_reason(rt_object)})"
    warnings = _checks(rt_object, best, by_uid=False)
    return _linked(best, "instance_uids", message, warnings)


def _link_by_frame_of_reference(
    rt_object: RTObject, series: Sequence[ImageSeries], why: str
) -> SeriesLink | None:
    """Link by the same frame of reference, best geometric fit, then most slices."""
    n_points = rt_object.contour_plane_points_mm.shape[0]
    frame_uid = rt_object.frame_of_reference_uid
    same_frame = [s for s in series if frame_uid and s.frame_of_reference_uid == frame_uid]
    if not same_frame:
        return None
    best = max(same_frame, key=lambda s: (_fit(rt_object, s), s.n_slices))
    fit = _fit(rt_object, best)
    message = f"linked by frame of reference {frame_uid} ({why})"
    if n_points:
        hits = contours_on_slices(rt_object.contour_plane_points_mm, best.grid)
        message += f"; {hits} of {n_points} contours lie on its slices"
    warnings = [
        w
        for w in _checks(rt_object, best, by_uid=False)
        if "do not lie on a slice" not in w or not n_points
    ]
    if n_points and fit < GEOMETRY_MIN_FIT:
        warnings.append(
            f"only {fit:.0%} of the contours lie on the slices of series "
            f"{best.series_instance_uid}; check that it is the right series"
        )
    return _linked(best, "frame_of_reference", message, warnings)


def _link_by_geometry(
    rt_object: RTObject, series: Sequence[ImageSeries], why: str
) -> SeriesLink | None:
    """Guess a series of the same patient whose slices hold the contour planes."""
    n_points = rt_object.contour_plane_points_mm.shape[0]
    if not n_points:
        return None
    frame_uid = rt_object.frame_of_reference_uid
    same_patient = [s for s in series if s.patient_id == rt_object.patient_id]
    guess = max(same_patient, key=lambda s: (_fit(rt_object, s), s.n_slices), default=None)
    if guess is None or _fit(rt_object, guess) < GEOMETRY_MIN_FIT:
        return None
    hits = contours_on_slices(rt_object.contour_plane_points_mm, guess.grid)
    warning = (
        f"guessed by geometry only: {hits} of {n_points} contours lie on the slices of "
        f"series {guess.series_instance_uid} of the same patient, but no UID links them "
        f"({why}, frame of reference {frame_uid or 'not given'} not found); check it, "
        "or give the image series it was made on"
    )
    differ = [w for w in _checks(rt_object, guess, by_uid=False) if "frames of" in w]
    warnings = [warning, *differ]
    return SeriesLink(
        series=guess,
        method="geometry",
        message="; ".join(warnings),
        warnings=tuple(warnings),
    )


def _link(
    rt_object: RTObject,
    series: Sequence[ImageSeries],
    related: Sequence[RTObject],
    depth: int,
) -> SeriesLink:
    """Try each way of linking in turn, most trustworthy first."""
    found = (
        _link_by_series_uid(rt_object, series)
        or _link_through_references(rt_object, series, related, depth)
        or _link_by_instance_uids(rt_object, series)
    )
    if found is not None:
        return found
    why = _missing_reason(rt_object)
    found = _link_by_frame_of_reference(rt_object, series, why) or _link_by_geometry(
        rt_object, series, why
    )
    if found is not None:
        return found
    frame_uid = rt_object.frame_of_reference_uid
    frame = f", frame of reference {frame_uid} not found" if frame_uid else ""
    return SeriesLink(
        series=None,
        method="none",
        message=f"no image series found for {rt_object.path.name} ({why}{frame}); give "
        "the image series it was made on",
    )


def link_image_series(
    rt_object: RTObject,
    series: Sequence[ImageSeries],
    *,
    related: Sequence[RTObject] = (),
) -> SeriesLink:
    """Find the image series an RTSTRUCT, RTDOSE or RTPLAN belongs to.

    Parameters
    ----------
    rt_object
        The object, as found by :func:`rtmask.discovery.scan`.
    series
        Candidate image series (usually ``inventory.image_series``).
    related
        Other RT objects found with it (``inventory.rt_objects``): an RTDOSE or RTPLAN
        then follows its references (dose -> plan -> structure set) to a series.

    Returns
    -------
    SeriesLink
        The series (or None), the method and a one-line message saying how, with what
        does not fit.
    """
    return _link(rt_object, list(series), list(related), 0)
