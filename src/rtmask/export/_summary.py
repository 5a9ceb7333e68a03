"""The conversion summary: one row per ROI, as ``summary.json`` and ``summary.csv``."""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from pathlib import Path, PurePath

import numpy as np

from rtmask._atomic import atomic_path

__all__ = ["CSV_COLUMNS", "ROI_STATUSES", "SummaryRow", "write_summary"]

#: What happened to a ROI.
ROI_STATUSES = ("written", "empty", "no volume", "failed", "not selected")
#: Columns of ``summary.csv``, in order.
CSV_COLUMNS = (
    "roi_number",
    "name",
    "file",
    "color",
    "interpreted_type",
    "n_contours",
    "voxel_count",
    "volume_cm3",
    "status",
    "warnings",
)


@dataclass(frozen=True, slots=True, kw_only=True)
class SummaryRow:
    """What became of one ROI.

    Parameters
    ----------
    roi_number, name
        The ROI.
    file
        Name of the file written for it (relative to the summary's folder), or None.
    color
        ROIDisplayColor ``(r, g, b)``, or None.
    interpreted_type
        RTROIInterpretedType, or None.
    n_contours
        Contours of every type in the structure set.
    voxel_count
        Voxels inside (sum of fractions for fractional masks), None when not rasterised.
    volume_cm3
        Volume by the summary's ``volume_convention``, None when not computed.
    status
        One of :data:`ROI_STATUSES`: ``written``, ``empty`` (rasterised, no voxel inside),
        ``no volume`` (only points or open contours), ``failed``, ``not selected``.
    warnings
        One sentence per problem met with this ROI.
    canonical
        The ROI's canonical name under a ROI map (``--roi-map``), None without one.
    """

    roi_number: int
    name: str
    file: str | None
    color: tuple[int, int, int] | None
    interpreted_type: str | None
    n_contours: int
    voxel_count: float | None
    volume_cm3: float | None
    status: str
    warnings: tuple[str, ...] = ()
    canonical: str | None = None

    def __post_init__(self) -> None:
        if self.status not in ROI_STATUSES:
            raise ValueError(f"unknown ROI status {self.status!r}; use one of {ROI_STATUSES}")
        object.__setattr__(self, "warnings", tuple(self.warnings))
        if self.color is not None:
            r, g, b = (int(c) for c in self.color)
            object.__setattr__(self, "color", (r, g, b))


def _number(value: float | None) -> int | float | None:
    """JSON/CSV number: whole floats as int, non-finite as None."""
    if value is None:
        return None
    value = float(value)
    if not math.isfinite(value):
        return None
    return int(value) if value.is_integer() else value


def _jsonable(value: object) -> object:
    """Convert numpy values, paths, enums, tuples and sets into plain JSON values."""
    if isinstance(value, Enum):
        return _jsonable(value.value)
    if isinstance(value, (str, bool)) or value is None:
        return value
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        number = float(value)
        return number if math.isfinite(number) else None
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, np.ndarray):
        return _jsonable(value.tolist())
    if isinstance(value, PurePath):
        return str(value)
    if isinstance(value, Mapping):
        return {str(key): _jsonable(item) for key, item in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        items = sorted(value, key=str) if isinstance(value, (set, frozenset)) else value
        return [_jsonable(item) for item in items]
    return str(value)


def _row_json(row: SummaryRow, *, mapped: bool = False) -> dict[str, object]:
    return {
        "roi_number": row.roi_number,
        "name": row.name,
        **({"canonical": row.canonical} if mapped else {}),
        "file": row.file,
        "color": list(row.color) if row.color is not None else None,
        "interpreted_type": row.interpreted_type,
        "n_contours": row.n_contours,
        "voxel_count": _number(row.voxel_count),
        "volume_cm3": _number(row.volume_cm3),
        "status": row.status,
        "warnings": list(row.warnings),
    }


#: First characters that make spreadsheet programs read a cell as a formula.
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _csv_cell(value: object) -> str:
    """A CSV cell; text that a spreadsheet would run as a formula gets a leading quote.

    ROI names and warnings are untrusted text (an RTSTRUCT can name an ROI
    ``=HYPERLINK(...)``); numbers are written as they are. summary.json keeps the text
    exactly as read.
    """
    if value is None:
        return ""
    if isinstance(value, float):
        return repr(value)
    text = str(value)
    if isinstance(value, str) and text.startswith(_FORMULA_STARTS):
        return "'" + text
    return text


def write_summary(
    rows: Sequence[SummaryRow],
    folder: Path,
    *,
    structure_set: Mapping[str, object],
    volume_convention: str,
    overlay: str | None = None,
    volumes: Mapping[str, Mapping[str, object]] | None = None,
    problems: Sequence[str] = (),
) -> tuple[Path, Path]:
    """Write ``folder/summary.json`` and ``folder/summary.csv`` (atomically).

    Parameters
    ----------
    rows
        One row per ROI of the structure set.
    folder
        Existing output folder.
    structure_set
        Facts about the structure set and its grid (source file, label, SOP instance UID,
        image series, grid shape, spacing, ...); numpy values, paths and tuples are fine.
    volume_convention
        How ``volume_cm3`` was computed, in words (e.g. ``"voxel count x voxel volume"``).
    overlay
        File name of the overlay picture in ``folder``, when one was written.
    volumes
        Other volumes written beside the masks, by role: ``{"image": {"file":
        "image.nii.gz", ...}, "dose": {...}}``; each becomes a top-level key of the JSON
        (so readers of the folder know which files are not masks).
    problems
        What failed in the conversion (one message each; empty when nothing did). A
        rerun of an archive converts a case whose summary lists problems again.

    Returns
    -------
    tuple of pathlib.Path
        ``(summary.json, summary.csv)``.

    Notes
    -----
    JSON: ``{"structure_set": {...}, "volume_convention": "...", "rois": [...],
    "problems": [...]}`` with
    ``color`` as ``[r, g, b]`` and ``null`` for missing values, plus ``"overlay":
    "overlay.png"`` when a picture was written. CSV (UTF-8): the columns of
    :data:`CSV_COLUMNS`, ``color`` as ``r,g,b``, missing values empty, warnings joined by
    ``" | "``. Names are written as they are in the file. When a row has a canonical name
    (a ROI map was used), every row has ``canonical`` after ``name``, in both files.
    """
    folder = Path(folder)
    # A ROI map was used: every row says its canonical name (None when the map has none).
    mapped = any(row.canonical is not None for row in rows)
    document = {
        "structure_set": _jsonable(dict(structure_set)),
        **({} if overlay is None else {"overlay": overlay}),
        **{role: _jsonable(dict(facts)) for role, facts in (volumes or {}).items()},
        "volume_convention": volume_convention,
        "rois": [_row_json(row, mapped=mapped) for row in rows],
        "problems": list(problems),
    }
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow([*CSV_COLUMNS[:2], "canonical", *CSV_COLUMNS[2:]] if mapped else CSV_COLUMNS)
    for row in rows:
        writer.writerow(
            [
                _csv_cell(row.roi_number),
                _csv_cell(row.name),
                *([_csv_cell(row.canonical)] if mapped else []),
                _csv_cell(row.file),
                ",".join(str(c) for c in row.color) if row.color is not None else "",
                _csv_cell(row.interpreted_type),
                _csv_cell(row.n_contours),
                _csv_cell(_number(row.voxel_count)),
                _csv_cell(_number(row.volume_cm3)),
                row.status,
                _csv_cell(" | ".join(row.warnings)),
            ]
        )
    csv_path = folder / "summary.csv"
    with atomic_path(csv_path) as temporary:
        temporary.write_text(buffer.getvalue(), encoding="utf-8", newline="")
    # summary.json last: its presence marks a finished case (a rerun skips it).
    json_path = folder / "summary.json"
    with atomic_path(json_path) as temporary:
        temporary.write_text(
            json.dumps(document, indent=2, ensure_ascii=False, allow_nan=False) + "\n",
            encoding="utf-8",
        )
    return json_path, csv_path
