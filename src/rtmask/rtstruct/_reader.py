"""Read an RTSTRUCT file (or pydicom Dataset) into the pydicom-free model.

ContourData is parsed from the raw element bytes with numpy in one pass over the whole
file, instead of through pydicom's per-value DS objects (seconds -> tens of ms).
"""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray
from pydicom.dataset import Dataset

from rtmask._dicom import RTSTRUCT_SOP_CLASS, int_or_none, read_dataset, text_or_none
from rtmask._errors import InvalidInputError, OnInvalid, StructureSetWarning
from rtmask.rtstruct._model import ROI, Contour, GeometricType, StructureSet

__all__ = ["is_rtstruct", "read_rtstruct"]

logger = logging.getLogger(__name__)

_CONTOUR_DATA = 0x30060050
_CONTOUR_GEOMETRIC_TYPE = 0x30060042
_NUMBER_OF_CONTOUR_POINTS = 0x30060046
_CONTOUR_NUMBER = 0x30060048
_CONTOUR_IMAGE_SEQUENCE = 0x30060016
#: ReferencedSOPInstanceUID (0008,1155) as it appears in little-endian bytes.
_REFERENCED_SOP_INSTANCE_TAG = b"\x08\x00\x55\x11"


def is_rtstruct(dataset: Dataset) -> bool:
    """True when the dataset is an RT Structure Set (by SOP Class UID or Modality)."""
    return bool(
        dataset.get("SOPClassUID", "") == RTSTRUCT_SOP_CLASS
        or dataset.get("Modality", "") == "RTSTRUCT"
    )


@dataclass
class _Report:
    """Collects defects and routes them through the ``on_invalid`` policy."""

    source: str
    on_invalid: OnInvalid
    structure_set: list[str] = field(default_factory=list)
    per_roi: dict[int, list[str]] = field(default_factory=dict)

    def add(self, message: str, roi_number: int | None = None) -> None:
        text = f"{self.source}: {message}"
        if self.on_invalid == "raise":
            raise InvalidInputError(text + " (use on_invalid='warn' to read it anyway)")
        if self.on_invalid == "warn":
            warnings.warn(text, StructureSetWarning, stacklevel=4)
        logger.debug(text)
        if roi_number is None:
            self.structure_set.append(message)
        else:
            self.per_roi.setdefault(roi_number, []).append(message)


def _raw_bytes(item: Dataset) -> bytes | None:
    """The undecoded ContourData value of a contour item (or its decoded form re-joined)."""
    if _CONTOUR_DATA not in item:
        return None
    element = item.get_item(_CONTOUR_DATA)
    value = element.value if element is not None else None
    if value is None:
        return b""
    if isinstance(value, bytes):
        return value
    if isinstance(value, (list, tuple)) or (
        hasattr(value, "__iter__") and not isinstance(value, str)
    ):
        return "\\".join(str(v) for v in value).encode("ascii")
    return str(value).encode("ascii")


def _raw_text(item: Dataset, tag: int) -> str | None:
    """A short text element (CS, IS) of a contour item, decoded without pydicom's converters.

    Decoding tens of thousands of tiny elements through pydicom costs more than parsing
    all of ContourData; their raw bytes are plain ASCII.
    """
    if tag not in item:
        return None
    value = item.get_item(tag).value
    if isinstance(value, bytes):
        return value.decode("ascii", errors="replace").strip(" \x00") or None
    return text_or_none(value)


def _first_referenced_image(item: Dataset) -> str | None:
    """ReferencedSOPInstanceUID of a contour's first ContourImageSequence item."""
    if _CONTOUR_IMAGE_SEQUENCE not in item:
        return None
    element = item.get_item(_CONTOUR_IMAGE_SEQUENCE)
    raw = element.value
    if isinstance(raw, bytes) and getattr(element, "is_little_endian", False):
        position = raw.find(_REFERENCED_SOP_INSTANCE_TAG)
        if position >= 0:
            # Tag, then a 4-byte length (implicit VR) or "UI" and a 2-byte length (explicit).
            start = position + 8
            length_at = position + (4 if getattr(element, "is_implicit_VR", True) else 6)
            length = int.from_bytes(raw[length_at:start], "little")
            return text_or_none(
                raw[start : start + length].decode("ascii", "replace").strip("\x00 ")
            )
    images = item.get("ContourImageSequence", None) or ()
    return text_or_none(images[0].get("ReferencedSOPInstanceUID")) if images else None


def _parse_numbers(raw: bytes) -> NDArray[np.float64]:
    """Parse a backslash-separated DS value; raises ValueError on a non-number."""
    text = raw.decode("ascii", errors="replace").strip(" \x00")
    if not text:
        return np.empty(0)
    return np.array([float(v) for v in text.split("\\")], dtype=np.float64)


def _parse_all(raws: list[bytes]) -> list[NDArray[np.float64] | None]:
    """Parse every contour's raw ContourData at once; None for a value that is not numbers."""
    counts = [raw.count(b"\\") + 1 if raw.strip(b" \x00") else 0 for raw in raws]
    joined = b"\\".join(raw.strip(b" \x00") for raw in raws if raw.strip(b" \x00"))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            values = np.fromstring(joined.decode("ascii"), dtype=np.float64, sep="\\")
        if values.size != sum(counts):
            raise ValueError("count mismatch")
    except (ValueError, UnicodeDecodeError, DeprecationWarning):
        # Some value is not a number: parse contour by contour to find which.
        result: list[NDArray[np.float64] | None] = []
        for raw in raws:
            try:
                result.append(_parse_numbers(raw))
            except ValueError:
                result.append(None)
        return result
    ends = np.cumsum(counts)
    return [values[end - count : end] for count, end in zip(counts, ends, strict=True)]


def _iter_contour_items(roi_contour: Dataset) -> Iterator[Dataset]:
    yield from roi_contour.get("ContourSequence", None) or ()


def _referenced_uids(dataset: Dataset) -> tuple[str | None, list[str], list[str]]:
    """Frame of reference UID, referenced series UIDs and referenced image UIDs."""
    frame_uid: str | None = None
    series_uids: list[str] = []
    image_uids: list[str] = []
    for frame in dataset.get("ReferencedFrameOfReferenceSequence", None) or ():
        frame_uid = frame_uid or text_or_none(frame.get("FrameOfReferenceUID"))
        for study in frame.get("RTReferencedStudySequence", None) or ():
            for series in study.get("RTReferencedSeriesSequence", None) or ():
                uid = text_or_none(series.get("SeriesInstanceUID"))
                if uid and uid not in series_uids:
                    series_uids.append(uid)
                for image in series.get("ContourImageSequence", None) or ():
                    ref = text_or_none(image.get("ReferencedSOPInstanceUID"))
                    if ref:
                        image_uids.append(ref)
    return frame_uid, series_uids, image_uids


def _read_contours(
    roi_contour: Dataset, roi_label: str, number: int, report: _Report
) -> tuple[list[Contour], list[int]]:
    """The usable contours of an ROI, and the 1-based positions of those dropped."""
    items = list(_iter_contour_items(roi_contour))
    dropped: list[int] = []
    raws = [_raw_bytes(item) or b"" for item in items]
    parsed = _parse_all(raws)
    contours: list[Contour] = []
    for index, (item, values) in enumerate(zip(items, parsed, strict=True)):
        where = f"{roi_label}, contour {index + 1}"
        type_text = (_raw_text(item, _CONTOUR_GEOMETRIC_TYPE) or "CLOSED_PLANAR").upper()
        try:
            geometric_type = GeometricType(type_text)
        except ValueError:
            report.add(
                f"{where}: unknown ContourGeometricType {type_text!r}; read as CLOSED_PLANAR",
                number,
            )
            geometric_type = GeometricType.CLOSED_PLANAR
        if values is None:
            report.add(
                f"{where}: ContourData holds text that is not a number; contour dropped", number
            )
            dropped.append(index + 1)
            continue
        if values.size == 0:
            report.add(f"{where}: ContourData is empty; contour dropped", number)
            dropped.append(index + 1)
            continue
        extra = values.size % 3
        if extra:
            report.add(
                f"{where}: ContourData holds {values.size} numbers, not a multiple of "
                f"3; the last {extra} ignored",
                number,
            )
        points = values[: values.size - extra].reshape(-1, 3)
        declared = int_or_none(_raw_text(item, _NUMBER_OF_CONTOUR_POINTS))
        if declared is not None and declared != points.shape[0]:
            report.add(
                f"{where}: NumberOfContourPoints says {declared} but ContourData "
                f"holds {points.shape[0]} points; using the data",
                number,
            )
        if not np.all(np.isfinite(points)):
            report.add(f"{where}: NaN or infinite coordinates; contour dropped", number)
            dropped.append(index + 1)
            continue
        reference = _first_referenced_image(item)
        contours.append(
            Contour(
                points_mm=points,
                geometric_type=geometric_type,
                number=int_or_none(_raw_text(item, _CONTOUR_NUMBER)),
                referenced_sop_instance_uid=reference,
            )
        )
    return contours, dropped


def _color(value: Any) -> tuple[int, int, int] | None:
    try:
        values = [round(float(v)) for v in value]
    except (TypeError, ValueError):
        return None
    if len(values) != 3:
        return None
    r, g, b = (min(max(v, 0), 255) for v in values)
    return (r, g, b)


def read_rtstruct(
    source: str | os.PathLike[str] | Dataset, *, on_invalid: OnInvalid = "warn"
) -> StructureSet:
    """Read an RT Structure Set into a :class:`StructureSet`.

    Parameters
    ----------
    source
        Path of an RTSTRUCT file (preamble optional) or a pydicom Dataset.
    on_invalid
        What to do with defects (NaN coordinates, wrong point counts, empty or
        duplicate ROIs): ``"warn"`` (default) issues a :class:`StructureSetWarning` per
        defect and goes on, ``"ignore"`` goes on silently, ``"raise"`` raises
        :class:`InvalidInputError`. Defects are listed in ``warnings`` either way.

    Raises
    ------
    DicomReadError
        The file cannot be read as DICOM.
    InvalidInputError
        The file is not an RT Structure Set, or a defect with ``on_invalid="raise"``.
    """
    if isinstance(source, Dataset):
        dataset, name = source, str(getattr(source, "filename", None) or "<dataset>")
    else:
        name = os.fspath(source)
        dataset = read_dataset(name)
    if not is_rtstruct(dataset):
        modality = dataset.get("Modality", "unknown")
        raise InvalidInputError(
            f"{name}: not an RT Structure Set (Modality {modality}); give an RTSTRUCT file"
        )
    report = _Report(source=name, on_invalid=on_invalid)
    frame_uid, series_uids, image_uids = _referenced_uids(dataset)

    contours_by_number: dict[int, Dataset] = {}
    for roi_contour in dataset.get("ROIContourSequence", None) or ():
        number = int_or_none(roi_contour.get("ReferencedROINumber"))
        if number is not None:
            contours_by_number[number] = roi_contour
    observations: dict[int, Dataset] = {}
    for observation in dataset.get("RTROIObservationsSequence", None) or ():
        number = int_or_none(observation.get("ReferencedROINumber"))
        if number is not None:
            observations.setdefault(number, observation)

    missing = [k for k in ("StructureSetROISequence", "ROIContourSequence") if not dataset.get(k)]
    if missing:
        report.add(
            f"no {' or '.join(missing)} (required); the file holds no ROIs - it may be "
            "truncated or incompletely exported"
        )
    rois: list[ROI] = []
    seen_numbers: set[int] = set()
    for item in dataset.get("StructureSetROISequence", None) or ():
        number = int_or_none(item.get("ROINumber"))
        if number is None or number in seen_numbers:
            report.add(
                f"StructureSetROISequence item with missing or repeated ROINumber "
                f"{item.get('ROINumber')!r} skipped"
            )
            continue
        seen_numbers.add(number)
        name_text = text_or_none(item.get("ROIName")) or ""
        label = f"ROI {number} {name_text!r}"
        roi_contour = contours_by_number.get(number)
        contours: list[Contour] = []
        dropped: list[int] = []
        color = None
        if roi_contour is None:
            report.add(f"{label}: no ROIContourSequence item; the ROI is empty", number)
        else:
            color = _color(roi_contour.get("ROIDisplayColor"))
            if "ContourSequence" not in roi_contour:
                report.add(f"{label}: has no ContourSequence; the ROI is empty", number)
            else:
                contours, dropped = _read_contours(roi_contour, label, number, report)
                if not contours:
                    report.add(f"{label}: no usable contours; the ROI is empty", number)
        observation = observations.get(number)
        rois.append(
            ROI(
                number=number,
                name=name_text,
                color=color,
                interpreted_type=text_or_none(observation.get("RTROIInterpretedType"))
                if observation is not None
                else None,
                generation_algorithm=text_or_none(item.get("ROIGenerationAlgorithm")),
                frame_of_reference_uid=text_or_none(item.get("ReferencedFrameOfReferenceUID")),
                contours=tuple(contours),
                dropped_contours=tuple(dropped),
                warnings=tuple(report.per_roi.get(number, ())),
            )
        )
    for number in sorted(set(contours_by_number) - seen_numbers):
        report.add(
            f"ROIContourSequence refers to ROI {number}, which StructureSetROISequence "
            "does not define; its contours are ignored"
        )

    folded: dict[str, list[int]] = {}
    for roi in rois:
        folded.setdefault(roi.name.casefold(), []).append(roi.number)
    for numbers in folded.values():
        if len(numbers) > 1:
            names = rois[[r.number for r in rois].index(numbers[0])].name
            report.add(
                f"duplicate ROI name {names!r} used by ROIs {numbers}; output files "
                "get the ROI number appended"
            )

    contour_uids = [
        c.referenced_sop_instance_uid
        for r in rois
        for c in r.contours
        if c.referenced_sop_instance_uid
    ]
    all_image_uids = tuple(dict.fromkeys([*image_uids, *contour_uids]))
    return StructureSet(
        rois=tuple(rois),
        sop_instance_uid=text_or_none(dataset.get("SOPInstanceUID")),
        series_instance_uid=text_or_none(dataset.get("SeriesInstanceUID")),
        study_instance_uid=text_or_none(dataset.get("StudyInstanceUID")),
        patient_id=text_or_none(dataset.get("PatientID")),
        patient_name=text_or_none(dataset.get("PatientName")),
        label=text_or_none(dataset.get("StructureSetLabel")),
        frame_of_reference_uid=frame_uid,
        referenced_series_uids=tuple(series_uids),
        referenced_sop_instance_uids=all_image_uids,
        source=name,
        warnings=tuple(report.structure_set),
    )
