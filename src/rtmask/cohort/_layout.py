"""Where each case of an archive goes under OUT: safe, unique, stable folder names.

Layouts (every component made safe by :func:`rtmask.export.sanitize_name`):

``patient``
    ``OUT/<PatientID>/<StudyDate>_<short study UID>/<label>_<short UID>/``.
``flat``
    ``OUT/<PatientID>_<label>_<short UID>/``: one folder per structure set, directly
    under OUT.
``single``
    OUT itself (one structure set only).

A component that sanitising changed (``../..``, ``CON``, ``a/b``) gets a short hash of the
original text appended, so two identifiers never share a folder and a folder name does not
depend on which other cases are in the archive. Names that still clash (case-insensitively)
get ``_2``, ``_3`` ... in the order of the cases.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Literal

from rtmask.export._names import safe_folder_name, sanitize_name

__all__ = ["LAYOUTS", "CaseIdentity", "Layout", "case_folders", "short_uid"]

Layout = Literal["patient", "flat", "single"]
LAYOUTS: tuple[Layout, ...] = ("patient", "flat", "single")
#: Characters of a UID kept in a folder name (its end, where UIDs differ).
SHORT_UID_CHARS = 8


@dataclass(frozen=True, slots=True, kw_only=True)
class CaseIdentity:
    """What names a case's folder (all free text, possibly hostile or empty)."""

    patient_id: str
    study_date: str
    study_uid: str
    label: str
    sop_instance_uid: str


def short_uid(uid: str) -> str:
    """The last :data:`SHORT_UID_CHARS` digits of a UID (dots dropped), or ``"nouid"``."""
    digits = "".join(c for c in uid if c.isalnum())
    return digits[-SHORT_UID_CHARS:] or "nouid"


def _component(text: str, fallback: str) -> str:
    """A safe folder name; with a hash of ``text`` when sanitising changed it."""
    safe = safe_folder_name(text, fallback)
    if safe == text:
        return safe
    digest = hashlib.sha1(text.encode("utf-8", "surrogatepass")).hexdigest()[:6]
    return f"{safe.rstrip('_')}_{digest}"


def _unique(path: PurePosixPath, used: set[str]) -> PurePosixPath:
    """``path`` or ``path_2``, ``path_3`` ...: one not in ``used`` (case-insensitively)."""
    candidate, counter = path, 2
    while str(candidate).casefold() in used:
        candidate = path.with_name(f"{path.name}_{counter}")
        counter += 1
    used.add(str(candidate).casefold())
    return candidate


def case_folders(cases: Sequence[CaseIdentity], layout: Layout) -> list[PurePosixPath]:
    """The folder of each case, relative to OUT (``.`` for OUT itself).

    Parameters
    ----------
    cases
        The cases in a stable order (the archive's path order).
    layout
        ``"patient"``, ``"flat"`` or ``"single"`` (see the module notes).

    Returns
    -------
    list of pathlib.PurePosixPath
        One relative folder per case; never absolute, never with ``..``.

    Raises
    ------
    ValueError
        ``"single"`` with more than one case.
    """
    if layout == "single":
        if len(cases) > 1:
            raise ValueError(f"the single layout holds one structure set, not {len(cases)}")
        return [PurePosixPath(".") for _ in cases]
    used: set[str] = set()
    folders = []
    for case in cases:
        patient = _component(case.patient_id, "unknown_patient")
        label = _component(case.label, "structure_set")
        leaf = f"{label}_{short_uid(case.sop_instance_uid)}"
        if layout == "flat":
            path = PurePosixPath(f"{patient}_{leaf}")
        else:
            date = sanitize_name(case.study_date) or "nodate"
            path = PurePosixPath(patient, f"{date}_{short_uid(case.study_uid)}", leaf)
        folders.append(_unique(path, used))
    return folders
