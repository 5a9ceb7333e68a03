"""Cohort checks of the QA report: volume outliers, missing ROIs, duplicate names.

Volume outliers use the robust z-score of Iglewicz and Hoaglin (1993):
``z = 0.6745 (v - median) / MAD`` over the volumes of one canonical ROI in every case that
has it, MAD the median absolute deviation; a ROI is an outlier when ``|z| >`` 3.5. When the
MAD is 0 (more than half the volumes equal), the mean absolute deviation stands in:
``z = (v - median) / (1.253314 mean |v - median|)``. Fewer than :data:`MIN_CASES` volumes
make no statistics.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from rtmask.report._read import ReportCase, RoiEntry

__all__ = [
    "MIN_CASES",
    "Z_THRESHOLD",
    "DuplicateName",
    "MissingRoi",
    "Outlier",
    "find_duplicates",
    "find_missing",
    "find_outliers",
    "robust_z",
]

#: |robust z| above which a volume is an outlier (Iglewicz and Hoaglin's 3.5).
Z_THRESHOLD = 3.5
#: Fewest volumes of one canonical ROI for outlier statistics.
MIN_CASES = 3
_MAD_SCALE = 0.6745  # the 0.75 quantile of the standard normal: MAD/0.6745 estimates sigma
_MEAN_AD_SCALE = 1.253314  # sqrt(pi/2): mean absolute deviation -> sigma
_EQUAL = 1e-6  # relative difference below which two volumes count as equal


@dataclass(frozen=True, slots=True, kw_only=True)
class Outlier:
    """A volume far from its canonical ROI's median (``z`` the robust z-score)."""

    key: str
    case: ReportCase
    roi: RoiEntry
    volume_cm3: float
    median_cm3: float
    mad_cm3: float
    z: float


@dataclass(frozen=True, slots=True, kw_only=True)
class MissingRoi:
    """A case without (any voxel of) canonical ROIs that other cases have."""

    case: ReportCase
    keys: tuple[str, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class DuplicateName:
    """A naming problem: ``kind`` ``"duplicate"`` (one case) or ``"variants"`` (cohort)."""

    kind: str
    key: str
    names: tuple[str, ...]
    case: ReportCase | None = None


def robust_z(values: Sequence[float]) -> tuple[np.ndarray, float, float]:
    """Robust z-score of each value, the median and the MAD (see the module notes).

    Returns zeros when every value is the same (within a part per million of the median).
    """
    array = np.asarray(values, dtype=np.float64)
    median = float(np.median(array))
    deviation = np.abs(array - median)
    mad = float(np.median(deviation))
    # Volumes equal to a part per million are equal (the same shape on two grids).
    tiny = _EQUAL * abs(median)
    if mad > tiny:
        return _MAD_SCALE * (array - median) / mad, median, mad
    mean_ad = float(deviation.mean())
    if mean_ad > tiny:
        return (array - median) / (_MEAN_AD_SCALE * mean_ad), median, mad
    return np.zeros_like(array), median, mad


def _measured(case: ReportCase) -> dict[str, list[RoiEntry]]:
    """A case's ROIs with voxels, by key."""
    found: dict[str, list[RoiEntry]] = {}
    for roi in case.rois:
        if roi.voxel_count and roi.volume_cm3 is not None:
            found.setdefault(roi.key, []).append(roi)
    return found


def find_outliers(cases: Sequence[ReportCase]) -> list[Outlier]:
    """Every ROI volume with ``|robust z| > Z_THRESHOLD``, by key, then by ``|z|`` falling."""
    groups: dict[str, list[tuple[ReportCase, RoiEntry]]] = {}
    for case in cases:
        if case.detailed:
            for key, rois in _measured(case).items():
                groups.setdefault(key, []).extend((case, roi) for roi in rois)
    outliers = []
    for key in sorted(groups, key=str.casefold):
        members = groups[key]
        if len(members) < MIN_CASES:
            continue
        scores, median, mad = robust_z([float(roi.volume_cm3 or 0.0) for _, roi in members])
        for (case, roi), z in zip(members, scores, strict=True):
            if abs(z) > Z_THRESHOLD:
                outliers.append(
                    Outlier(
                        key=key,
                        case=case,
                        roi=roi,
                        volume_cm3=float(roi.volume_cm3 or 0.0),
                        median_cm3=median,
                        mad_cm3=mad,
                        z=float(z),
                    )
                )
    return outliers


def find_missing(cases: Sequence[ReportCase]) -> list[MissingRoi]:
    """Cases (with a ROI table) lacking canonical ROIs found with voxels in another case.

    Without a ROI map the names themselves are compared (as written, case-insensitively).
    A case without any ROI row (a data set's test case, without a label map) is left out.
    """
    detailed = [c for c in cases if c.detailed and c.rois]
    present = [{k.casefold(): k for k in _measured(c)} for c in detailed]
    every: dict[str, str] = {}
    for names in present:
        for folded, key in names.items():
            every.setdefault(folded, key)
    result = []
    for case, names in zip(detailed, present, strict=True):
        absent = tuple(every[k] for k in sorted(every) if k not in names)
        if absent:
            result.append(MissingRoi(case=case, keys=absent))
    return result


def _fold(name: str) -> str:
    """A name's spelling-independent form: lower case, letters and digits only."""
    return re.sub(r"[\W_]+", "", name.casefold())


def find_duplicates(cases: Sequence[ReportCase]) -> list[DuplicateName]:
    """Duplicate names in one case and spelling variants of one name across the cohort.

    ``duplicate``: two ROIs of one case with the same name (case-insensitively) or mapped
    onto the same canonical name. ``variants``: the different spellings that stand for one
    canonical name (the names themselves compared by letters and digits without a map).
    """
    found = []
    spellings: dict[str, set[str]] = {}
    for case in cases:
        if not case.detailed:
            continue
        by_key: dict[str, list[str]] = {}
        for roi in case.rois:
            key = roi.canonical if roi.canonical is not None else roi.name.strip().casefold()
            by_key.setdefault(key, []).append(roi.name)
            group = roi.canonical if roi.canonical is not None else _fold(roi.name)
            spellings.setdefault(group, set()).add(roi.name)
        for key, names in by_key.items():
            if len(names) > 1:
                found.append(
                    DuplicateName(kind="duplicate", key=key, names=tuple(names), case=case)
                )
    for key in sorted(spellings, key=str.casefold):
        if len(spellings[key]) > 1:
            variants = tuple(sorted(spellings[key], key=str.casefold))
            found.append(DuplicateName(kind="variants", key=key, names=variants))
    return found
