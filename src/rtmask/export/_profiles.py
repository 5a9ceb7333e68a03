"""What a planning system rejects in an RT Structure Set, checked and fixed before import.

A profile names the limits a structure set must meet to be imported:

- ``generic``: DICOM itself (PS3.5 Table 6.2-1): an ROI Name is an LO value of at most 64
  characters without backslash or control characters; a DS value (ContourData) holds at
  most 16 bytes; an explicit VR element's value is at most 65,534 bytes long (PS3.5 7.1.2),
  so a contour of more points forces the whole file into implicit VR.
- ``eclipse``: the generic limits, and structure names of at most 16 characters: Varian
  Eclipse keeps a structure's identity as its 16-character Structure ID, the limit AAPM
  TG-263 (Report 263, 2018) adopted for every standard name so that names travel
  between vendors unchanged; names must stay unique (case-insensitively) once shortened.
- ``raystation``: the generic limits (RayStation keeps the DICOM ROI Name as it is).

Names are fixed before writing (disallowed characters become ``_``; long names are cut
and made unique with a ``~N`` suffix); the written file is then checked point by point
(points per contour, DS value lengths, explicit VR lengths) and anything over a limit
is reported.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pydicom
from pydicom.tag import Tag

__all__ = ["PROFILES", "PlanningProfile", "check_written", "fit_names"]

#: Longest value an explicit VR element can hold (16-bit length, even).
EXPLICIT_VR_MAX_BYTES = 0xFFFE
#: Longest DS value (PS3.5 Table 6.2-1).
DS_MAX_CHARS = 16
#: LO: any character but backslash and control characters (ESC aside, used by encodings).
_NOT_IN_LO = re.compile(r"[\\\x00-\x1a\x1c-\x1f\x7f]")


@dataclass(frozen=True, slots=True, kw_only=True)
class PlanningProfile:
    """Limits of one target system.

    Parameters
    ----------
    name
        ``generic``, ``eclipse`` or ``raystation``.
    max_name_chars
        Longest ROI name the system keeps.
    source
        Where the limit is documented (stated in the report).
    """

    name: str
    max_name_chars: int
    source: str


PROFILES = {
    "generic": PlanningProfile(
        name="generic", max_name_chars=64, source="DICOM PS3.5 Table 6.2-1 (LO)"
    ),
    "eclipse": PlanningProfile(
        name="eclipse",
        max_name_chars=16,
        source="Eclipse Structure ID; AAPM TG-263 (Report 263) 16-character names",
    ),
    "raystation": PlanningProfile(
        name="raystation", max_name_chars=64, source="DICOM PS3.5 Table 6.2-1 (LO)"
    ),
}


def _unique_cut(name: str, limit: int, taken: set[str]) -> str:
    """``name`` cut to ``limit`` characters, with ``~N`` when the cut one is taken."""
    cut = name[:limit]
    number = 1
    while cut.casefold() in taken:
        suffix = f"~{number}"
        cut = name[: limit - len(suffix)] + suffix
        number += 1
    return cut


def fit_names(names: Sequence[str], profile: PlanningProfile) -> tuple[list[str], list[str]]:
    """ROI names the profile's system accepts, and one note per name changed.

    Disallowed characters become ``_``, leading/trailing spaces go, names longer than the
    limit are cut and kept unique (case-insensitively) with a ``~N`` suffix.
    """
    fixed: list[str] = []
    notes: list[str] = []
    taken: set[str] = set()
    fitting = {n.casefold() for n in names if len(n) <= profile.max_name_chars}
    for name in names:
        clean = _NOT_IN_LO.sub("_", name).strip() or "ROI"
        if len(clean) > profile.max_name_chars:
            new = _unique_cut(clean, profile.max_name_chars, taken | fitting)
            why = (
                f"longer than {profile.max_name_chars} characters ({profile.source}); "
                f"written as {new!r}"
            )
        else:
            new = _unique_cut(clean, profile.max_name_chars, taken) if clean != name else clean
            why = f"holds characters a DICOM name cannot; written as {new!r}"
        if new != name:
            notes.append(f"ROI name {name!r} {why}")
        taken.add(new.casefold())
        fixed.append(new)
    return fixed, notes


def _contour_values(path: Path) -> list[tuple[str, int, list[bytes]]]:
    """(ROI name, contour index, raw ContourData) of every contour of the written file."""
    dataset: Any = pydicom.dcmread(path)
    names = {
        int(item.ROINumber): str(item.get("ROIName", ""))
        for item in dataset.get("StructureSetROISequence", [])
    }
    contour_data = Tag(0x30060050)
    values = []
    for roi in dataset.get("ROIContourSequence", []):
        name = names.get(int(roi.ReferencedROINumber), "?")
        for index, contour in enumerate(roi.get("ContourSequence", []), start=1):
            if contour_data not in contour:
                continue
            raw = contour.get_item(contour_data).value
            text = raw if isinstance(raw, bytes) else "\\".join(map(str, raw)).encode()
            values.append((name, index, [text]))
    return values


def check_written(path: Path, max_points: int | None) -> list[str]:
    """What a planning system would reject in the written file, one sentence each.

    Checks every contour's number of points (against ``max_points``, when given), the
    length of its DS values and whether its ContourData fits an explicit VR element.
    """
    problems: dict[str, list[str]] = {}
    for name, index, (raw,) in _contour_values(path):
        tokens = raw.rstrip(b" \x00").split(b"\\")
        points = len(tokens) // 3
        longest = max((len(t.strip()) for t in tokens), default=0)
        found = problems.setdefault(name, [])
        if max_points is not None and points > max_points:
            found.append(f"contour {index} has {points} points (limit {max_points})")
        if longest > DS_MAX_CHARS:
            found.append(f"contour {index} has a DS value of {longest} characters")
        if len(raw) > EXPLICIT_VR_MAX_BYTES:
            found.append(
                f"contour {index} holds {len(raw)} bytes, more than an explicit VR element "
                f"can ({EXPLICIT_VR_MAX_BYTES}; the file is implicit VR)"
            )
    return [
        f"ROI {name!r}: {'; '.join(found[:3])}"
        + (f" (and {len(found) - 3} more)" if len(found) > 3 else "")
        for name, found in problems.items()
        if found
    ]
