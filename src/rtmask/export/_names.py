"""Safe, unique file names from ROI names (which are free text and may be hostile).

A ROI name such as ``PTV 70/35 Gy``, ``../../x``, ``CON`` or an empty string must never
create folders, leave the output folder, hide the file, clash with a Windows device name or
overwrite another ROI's file. The rules are those of :func:`rtmask._safe_names.sanitize_name`
(shared with ``rtmask.names``).

An empty result becomes ``ROI_<number>``. Names equal after these rules (compared
case-insensitively) all get ``_<ROI number>`` appended.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

from rtmask._safe_names import MAX_STEM_BYTES, sanitize_name
from rtmask.rtstruct import ROI

__all__ = [
    "MAX_STEM_BYTES",
    "ensure_inside",
    "safe_file_stems",
    "safe_folder_name",
    "sanitize_name",
]


def safe_file_stems(rois: Sequence[ROI]) -> dict[int, str]:
    """Map each ROI number to a unique, safe file stem (no extension).

    Parameters
    ----------
    rois
        The ROIs to name; their numbers must be distinct.

    Returns
    -------
    dict
        ROI number -> stem, in the order of ``rois``. Stems differ from each other even when
        compared case-insensitively, contain no path separator, never start with a dot and
        are never a Windows device name.

    Raises
    ------
    ValueError
        When two ROIs share a ROI number (the mapping could not tell them apart).
    """
    numbers = [roi.number for roi in rois]
    duplicates = sorted({n for n in numbers if numbers.count(n) > 1})
    if duplicates:
        raise ValueError(
            f"ROI number(s) {duplicates} appear more than once; give each ROI a distinct "
            "number before naming files"
        )
    bases = {roi.number: sanitize_name(roi.name) or f"ROI_{roi.number}" for roi in rois}
    groups: defaultdict[str, list[int]] = defaultdict(list)
    for number, base in bases.items():
        groups[base.casefold()].append(number)
    clean = {n: bases[n] for members in groups.values() if len(members) == 1 for n in members}
    suffixed = {
        n: f"{bases[n]}_{n}" for members in groups.values() if len(members) > 1 for n in members
    }
    # Names that needed no suffix are placed first; a suffixed name that still collides (a ROI
    # literally named "A_2" next to two ROIs named "A") gets a counter.
    taken: set[str] = set()
    stems: dict[int, str] = {}
    for number, stem in [*clean.items(), *suffixed.items()]:
        candidate, counter = stem, 2
        while candidate.casefold() in taken:
            candidate, counter = f"{stem}_{counter}", counter + 1
        taken.add(candidate.casefold())
        stems[number] = candidate
    return {number: stems[number] for number in numbers}


def safe_folder_name(text: str, fallback: str) -> str:
    """Return a safe folder name for ``text`` (e.g. a structure set label), by the same rules.

    ``fallback`` (sanitised too) is used when ``text`` leaves nothing; ``"structure_set"``
    when both do.
    """
    return sanitize_name(text) or sanitize_name(fallback) or "structure_set"


def ensure_inside(folder: Path, path: Path) -> Path:
    """Resolve ``path`` and check that it lies inside ``folder`` (defence in depth).

    Returns
    -------
    pathlib.Path
        The resolved path.

    Raises
    ------
    ValueError
        When ``path`` resolves to ``folder`` itself or to a place outside it (``..``,
        an absolute path, a symbolic link pointing elsewhere).
    """
    root = Path(folder).resolve()
    target = Path(path).resolve()
    if root not in target.parents:
        raise ValueError(
            f"refusing to write {path}: it resolves to {target}, outside the output folder "
            f"{root}; this is a bug in the file naming, please report it"
        )
    return target
