"""Names and colours that travel next to mask files: colour tables, summaries, Slicer headers.

- 3D Slicer colour table (``.ctbl``): ``label name R G B A`` per line, ``#`` comments.
- ITK-SNAP label description (``.txt``): ``IDX R G B A VIS MSH "LABEL"`` per line.
- rtmask's ``summary.json`` (written by ``rtmask convert``): the original ROI number, name,
  colour and type of every file it wrote (``"file"``: ``GTV.nii.gz``,
  ``masks.npz#roi/GTV``, ``labels.nii.gz#3``), so masks read back keep names that file
  names could not hold.
- 3D Slicer segmentation headers (``.seg.nrrd``): ``Segment<i>_Name``, ``_Color``
  (``r g b`` in 0-1), ``_LabelValue`` and ``_Layer``.
"""

from __future__ import annotations

import json
import logging
import re
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from rtmask._errors import InvalidInputError, RtmaskWarning

__all__ = [
    "SUMMARY_NAME",
    "LabelInfo",
    "SlicerSegment",
    "color_tables_next_to",
    "non_mask_volumes",
    "read_color_table",
    "read_label_table",
    "read_summary",
    "slicer_segments",
]

logger = logging.getLogger(__name__)

#: The summary file ``rtmask convert`` writes next to its masks.
SUMMARY_NAME = "summary.json"
#: The roles of the volumes ``rtmask convert`` writes beside the masks (summary.json keys).
VOLUME_ROLES = ("image", "dose")
#: Their file names, recognised when there is no summary.json to say which they are.
VOLUME_FILE_NAMES = frozenset(
    f"{role}{suffix}" for role in VOLUME_ROLES for suffix in (".nii.gz", ".nii", ".nrrd")
)
#: Colour-table names looked for next to ``<stem>.<ext>``, in order of preference (ITK-SNAP
#: first: its quoted labels keep spaces, which ``.ctbl`` names cannot hold).
TABLE_SUFFIXES = (".itksnap.txt", ".txt", ".ctbl")

_ITKSNAP_LINE = re.compile(
    r'^\s*(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s+([0-9.eE+-]+)\s+(\d+)\s+(\d+)\s+"(.*)"\s*$'
)
_SEGMENT_KEY = re.compile(r"^Segment(\d+)_Name$")

Color = tuple[int, int, int]


@dataclass(frozen=True, slots=True, kw_only=True)
class LabelInfo:
    """What a table says about one label or file (None: not said).

    Parameters
    ----------
    name
        ROI name.
    color
        ``(r, g, b)`` 0-255.
    number
        ROI number (from an rtmask summary only).
    interpreted_type
        RTROIInterpretedType (from an rtmask summary only).
    """

    name: str | None = None
    color: Color | None = None
    number: int | None = None
    interpreted_type: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class SlicerSegment:
    """One segment of a 3D Slicer ``.seg.nrrd``: voxels of ``layer`` equal to ``label_value``."""

    index: int
    name: str
    color: Color | None
    label_value: int
    layer: int


def _color(values: list[str], path: Path, line_number: int) -> Color:
    try:
        r, g, b = (int(v) for v in values)
    except ValueError as error:
        raise InvalidInputError(
            f"{path}, line {line_number}: colour {' '.join(values)!r} is not three integers; "
            "fix the colour table or remove it"
        ) from error
    if not all(0 <= c <= 255 for c in (r, g, b)):
        raise InvalidInputError(
            f"{path}, line {line_number}: colour ({r}, {g}, {b}) is outside 0-255; fix the "
            "colour table or remove it"
        )
    return (r, g, b)


def read_color_table(path: Path) -> dict[int, LabelInfo]:
    """Read a 3D Slicer ``.ctbl`` or an ITK-SNAP label description file.

    Each line is recognised on its own (an ITK-SNAP line has a quoted label), so either
    format works whatever the file is called. Label 0 (background) is left out.

    Returns
    -------
    dict
        Label value -> name and colour.

    Raises
    ------
    InvalidInputError
        For an unreadable file or a line that is neither format (naming file and line).
    """
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as error:
        raise InvalidInputError(f"{path}: cannot read colour table ({error})") from error
    table: dict[int, LabelInfo] = {}
    for line_number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        match = _ITKSNAP_LINE.match(line)
        if match is not None:
            label = int(match.group(1))
            color = _color([match.group(2), match.group(3), match.group(4)], path, line_number)
            name = match.group(8)
        else:
            tokens = stripped.split()
            if len(tokens) < 6 or not tokens[0].isdigit():
                raise InvalidInputError(
                    f"{path}, line {line_number}: not a colour table line (expected "
                    "'label name R G B A' or ITK-SNAP 'IDX R G B A VIS MSH \"LABEL\"'); fix "
                    "the colour table or remove it"
                )
            label = int(tokens[0])
            color = _color(tokens[-4:-1], path, line_number)
            name = " ".join(tokens[1:-4])
        if label == 0:
            continue
        table[label] = LabelInfo(name=name.strip() or None, color=color)
    return table


#: The nnU-Net v2 file naming the labels of its label maps (``"labels": {name: value}``).
DATASET_JSON = "dataset.json"
#: Label tables that name every label (a label missing from them is an error).
COMPLETE_TABLE_SUFFIXES = (".json", ".csv", ".tsv")


def _dataset_json_labels(path: Path, text: str) -> dict[int, LabelInfo]:
    """``labels`` of an nnU-Net ``dataset.json``: ``{name: value}`` (background 0 left out)."""
    try:
        document = json.loads(text)
    except ValueError as error:
        raise InvalidInputError(f"{path}: not readable as JSON ({error})") from error
    labels = document.get("labels") if isinstance(document, Mapping) else None
    if not isinstance(labels, Mapping) or not labels:
        raise InvalidInputError(
            f"{path}: has no 'labels' object ({{name: value}}, as nnU-Net's dataset.json); "
            "give the dataset.json of the model that wrote the label map"
        )
    table: dict[int, LabelInfo] = {}
    for name, value in labels.items():
        if isinstance(value, bool) or not isinstance(value, int):
            raise InvalidInputError(
                f"{path}: label {name!r} has value {value!r}, not one integer (nnU-Net "
                "region-based labels are not supported); give a table of value, name"
            )
        if value < 0 or (value in table and table[value].name != name):
            raise InvalidInputError(
                f"{path}: label value {value} is given twice or is negative ({name!r})"
            )
        if value != 0:
            table[value] = LabelInfo(name=str(name))
    return table


def _csv_labels(path: Path, text: str) -> dict[int, LabelInfo]:
    """A table of ``value,name`` lines (comma or tab; a header line and ``#`` comments)."""
    table: dict[int, LabelInfo] = {}
    delimiter = "\t" if path.suffix.lower() == ".tsv" or "\t" in text else ","
    for line_number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        cells = [cell.strip().strip('"') for cell in stripped.split(delimiter)]
        if not cells[0].isdigit():
            if line_number == 1 or table == {}:
                continue  # a header line
            raise InvalidInputError(
                f"{path}, line {line_number}: not 'value{delimiter}name' with an integer "
                "value; fix the label table"
            )
        value, name = int(cells[0]), delimiter.join(cells[1:]).strip()
        if value in table:
            raise InvalidInputError(f"{path}, line {line_number}: label {value} given twice")
        if value != 0 and name:
            table[value] = LabelInfo(name=name)
    if not table:
        raise InvalidInputError(f"{path}: no 'value,name' lines; give a label table")
    return table


def read_label_table(path: Path) -> dict[int, LabelInfo]:
    """Names (and colours) of a label map's labels from any table rtmask reads.

    ``.json``: nnU-Net's ``dataset.json`` (``"labels": {name: value}``); ``.csv``/``.tsv``:
    ``value,name`` lines (a header line allowed); otherwise a 3D Slicer ``.ctbl`` or
    ITK-SNAP label file (:func:`read_color_table`). Label 0 is left out.

    Raises
    ------
    InvalidInputError
        For an unreadable table, a line or entry that is not a label, a label given twice.
    """
    if not path.name.lower().endswith(COMPLETE_TABLE_SUFFIXES):
        return read_color_table(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as error:
        raise InvalidInputError(f"{path}: cannot read label table ({error})") from error
    if path.suffix.lower() == ".json":
        return _dataset_json_labels(path, text)
    return _csv_labels(path, text)


def color_tables_next_to(volume: Path, stem: str) -> list[Path]:
    """Colour tables named after a volume (``<stem>.itksnap.txt``, ``.txt``, ``.ctbl``)."""
    return [
        candidate
        for suffix in TABLE_SUFFIXES
        if (candidate := volume.with_name(stem + suffix)).is_file()
    ]


def _summary_entry(item: object) -> tuple[str, LabelInfo] | None:
    """One row of an rtmask summary as (file, info), or None when it is not one."""
    if not isinstance(item, Mapping):
        return None
    file, name, number = item.get("file"), item.get("name"), item.get("roi_number")
    color, kind = item.get("color"), item.get("interpreted_type")
    if not isinstance(file, str) or not isinstance(name, str):
        return None
    if not isinstance(number, int) or isinstance(number, bool):
        return None
    parsed_color: Color | None = None
    if (
        isinstance(color, list)
        and len(color) == 3
        and all(isinstance(c, int) and not isinstance(c, bool) and 0 <= c <= 255 for c in color)
    ):
        parsed_color = (color[0], color[1], color[2])
    return file, LabelInfo(
        name=name,
        color=parsed_color,
        number=number,
        interpreted_type=kind if isinstance(kind, str) else None,
    )


def read_summary(folder: Path) -> dict[str, LabelInfo]:
    """ROI identity by file from ``folder/summary.json`` as ``rtmask convert`` writes it.

    Returns an empty dict when there is no summary or it is not rtmask's (no ``rois`` list).

    Warns
    -----
    RtmaskWarning
        When ``summary.json`` exists but cannot be read as JSON (names then come from the
        file names).
    """
    path = folder / SUMMARY_NAME
    if not path.is_file():
        return {}
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as error:
        warnings.warn(
            f"{path}: not readable as JSON ({error}); ROI names, numbers and colours come "
            "from the mask files instead",
            RtmaskWarning,
            stacklevel=3,
        )
        return {}
    rows = document.get("rois") if isinstance(document, Mapping) else None
    if not isinstance(rows, list):
        logger.debug("%s is not an rtmask summary (no 'rois' list); ignored", path)
        return {}
    entries: dict[str, LabelInfo] = {}
    for item in rows:
        entry = _summary_entry(item)
        if entry is not None:
            entries[entry[0]] = entry[1]
    return entries


def non_mask_volumes(folder: Path) -> frozenset[str]:
    """Names of the files in ``folder`` that are the image or the dose, not masks.

    ``rtmask convert`` writes ``image.nii.gz`` and ``dose.nii.gz`` beside the masks and
    names them in ``summary.json`` (top-level ``"image"`` and ``"dose"`` with a
    ``"file"``): an rtmask summary decides (so a ROI really called "image" stays a
    mask when no image was written); without one, those file names are the image and dose.
    """
    path = folder / SUMMARY_NAME
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        document = None  # read_summary warns about a damaged one
    if not isinstance(document, Mapping) or not isinstance(document.get("rois"), list):
        return frozenset(p.name for p in folder.iterdir() if p.name.lower() in VOLUME_FILE_NAMES)
    names = set()
    for role in VOLUME_ROLES:
        entry = document.get(role)
        if isinstance(entry, Mapping) and isinstance(entry.get("file"), str):
            names.add(entry["file"])
    return frozenset(names)


def _header_int(header: Mapping[str, object], key: str, default: int, path: Path) -> int:
    value = header.get(key)
    if value is None:
        return default
    try:
        return int(str(value).strip())
    except ValueError as error:
        raise InvalidInputError(
            f"{path}: header field {key} = {value!r} is not an integer"
        ) from error


def _slicer_color(value: object) -> Color | None:
    """``"0.5 0.25 1"`` (0-1 floats) -> ``(128, 64, 255)``; None when unusable."""
    if value is None:
        return None
    try:
        parts = [float(v) for v in str(value).split()]
    except ValueError:
        return None
    if len(parts) != 3 or not all(0.0 <= p <= 1.0 for p in parts):
        return None
    r, g, b = (round(255 * p) for p in parts)
    return (r, g, b)


def slicer_segments(header: Mapping[str, object], path: Path) -> list[SlicerSegment]:
    """The segments a 3D Slicer ``.seg.nrrd`` header declares, in segment order (may be [])."""
    indices = sorted(
        int(match.group(1)) for key in header if (match := _SEGMENT_KEY.match(str(key)))
    )
    segments = []
    for index in indices:
        prefix = f"Segment{index}_"
        segments.append(
            SlicerSegment(
                index=index,
                name=str(header.get(prefix + "Name", "")).strip() or f"Segment_{index + 1}",
                color=_slicer_color(header.get(prefix + "Color")),
                label_value=_header_int(header, prefix + "LabelValue", 1, path),
                layer=_header_int(header, prefix + "Layer", 0, path),
            )
        )
    return segments
