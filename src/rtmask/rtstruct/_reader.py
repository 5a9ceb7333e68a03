"""Read an RTSTRUCT file (or pydicom Dataset) into the pydicom-free model.

The file is walked by :mod:`rtmask._rawdicom` (no pydicom objects), and every ROI's
ContourData is parsed from the raw element bytes with numpy in one pass, instead of
through pydicom's per-value DS objects (seconds -> tens of ms).
"""

from __future__ import annotations

import logging
import os
import warnings
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import NDArray

from rtmask._dicom import RTSTRUCT_SOP_CLASS, int_or_none
from rtmask._errors import InvalidInputError, OnInvalid, StructureSetWarning
from rtmask._limits import MAX_COORDINATE_MM
from rtmask._rawdicom import RawDataset, raw_from_dataset, read_raw
from rtmask.rtstruct._model import ROI, Contour, GeometricType, StructureSet

if TYPE_CHECKING:
    from pydicom.dataset import Dataset

__all__ = ["is_rtstruct", "read_rtstruct"]

logger = logging.getLogger(__name__)


def is_rtstruct(dataset: Dataset) -> bool:
    """True when the dataset is an RT Structure Set (by SOP Class UID or Modality)."""
    return bool(
        dataset.get("SOPClassUID", "") == RTSTRUCT_SOP_CLASS
        or dataset.get("Modality", "") == "RTSTRUCT"
    )


def _is_rtstruct(dataset: RawDataset) -> bool:
    return (
        dataset.text("SOPClassUID") == RTSTRUCT_SOP_CLASS or dataset.text("Modality") == "RTSTRUCT"
    )


@dataclass
class _Report:
    """Collects defects and routes them through the ``on_invalid`` policy."""

    source: str
    on_invalid: OnInvalid
    structure_set: list[str] = field(default_factory=list)
    per_roi: dict[int, list[str]] = field(default_factory=dict)
    skipped_rois: list[str] = field(default_factory=list)

    def add(self, message: str, roi_number: int | None = None, *, skipped: bool = False) -> None:
        """Route one defect; ``skipped`` when it costs a whole ROI that cannot be read."""
        text = f"{self.source}: {message}"
        if self.on_invalid == "raise":
            raise InvalidInputError(text + " (use on_invalid='warn' to read it anyway)")
        if self.on_invalid == "warn":
            warnings.warn(text, StructureSetWarning, stacklevel=4)
        logger.debug(text)
        if skipped:
            self.skipped_rois.append(message)
        elif roi_number is None:
            self.structure_set.append(message)
        else:
            self.per_roi.setdefault(roi_number, []).append(message)


#: ContourGeometricType values as usually written (CS, space-padded to an even length).
_GEOMETRIC_TYPES: dict[bytes | None, GeometricType] = {
    padded: kind
    for kind in GeometricType
    for padded in (kind.value.encode(), kind.value.encode() + b" ")
}


def _integer(item: RawDataset, keyword: str) -> int | None:
    """An IS value as an int, or None when absent or not a whole number."""
    raw = item.value_bytes(keyword)
    if raw is None:
        return None
    try:
        return int(raw)  # int() skips the padding spaces
    except ValueError:
        return int_or_none(item.text(keyword))


def _first_referenced_image(item: RawDataset) -> str | None:
    """ReferencedSOPInstanceUID of a contour's first ContourImageSequence item."""
    images = item.sequence("ContourImageSequence")
    return images[0].text("ReferencedSOPInstanceUID") if images else None


def _parse_numbers(raw: bytes) -> NDArray[np.float64]:
    """Parse a backslash-separated DS value; raises ValueError on a non-number."""
    text = raw.decode("ascii", errors="replace").strip(" \x00")
    if not text:
        return np.empty(0)
    return np.array([float(v) for v in text.split("\\")], dtype=np.float64)


def _parse_contour_data(raw: bytes) -> NDArray[np.float64] | None:
    """``(n,)`` numbers of one raw ContourData value; None when some value is not a number.

    numpy parses the bytes in C (no per-value Python objects). It skips an empty last
    value and reads a blank one as -1, so a count that does not match the backslashes, a
    -1, or a value it cannot read sends the contour through ``float`` to decide.
    """
    raw = raw.strip(b" \x00")
    if not raw:
        return np.empty(0)
    try:
        values = np.fromstring(raw, dtype=np.float64, sep="\\")
        if values.size == raw.count(b"\\") + 1 and not (values == -1.0).any():
            return values
    except (ValueError, DeprecationWarning):  # numpy < 2 warns where numpy 2 raises
        pass
    try:
        return _parse_numbers(raw)
    except ValueError:
        return None


def _referenced_uids(dataset: RawDataset) -> tuple[str | None, list[str], list[str]]:
    """Frame of reference UID, referenced series UIDs and referenced image UIDs."""
    frame_uid: str | None = None
    series_uids: list[str] = []
    image_uids: list[str] = []
    for frame in dataset.sequence("ReferencedFrameOfReferenceSequence"):
        frame_uid = frame_uid or frame.text("FrameOfReferenceUID")
        for study in frame.sequence("RTReferencedStudySequence"):
            for series in study.sequence("RTReferencedSeriesSequence"):
                uid = series.text("SeriesInstanceUID")
                if uid and uid not in series_uids:
                    series_uids.append(uid)
                for image in series.sequence("ContourImageSequence"):
                    ref = image.text("ReferencedSOPInstanceUID")
                    if ref:
                        image_uids.append(ref)
    return frame_uid, series_uids, image_uids


def _read_contours(
    roi_contour: RawDataset, roi_label: str, number: int, report: _Report
) -> tuple[list[Contour], list[int]]:
    """The usable contours of an ROI, and the 1-based positions of those dropped."""
    items = roi_contour.sequence("ContourSequence")
    dropped: list[int] = []
    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)
        parsed = [_parse_contour_data(item.value_bytes("ContourData") or b"") for item in items]
    contours: list[Contour] = []
    for index, (item, values) in enumerate(zip(items, parsed, strict=True)):
        where = f"{roi_label}, contour {index + 1}"
        geometric_type = _GEOMETRIC_TYPES.get(item.value_bytes("ContourGeometricType"))
        if geometric_type is None:  # absent, or not as usually written
            type_text = (item.text("ContourGeometricType") or "CLOSED_PLANAR").upper()
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
        values.flags.writeable = False  # the Contour keeps it without a copy
        points = values[: values.size - extra].reshape(-1, 3)
        declared = _integer(item, "NumberOfContourPoints")
        if declared is not None and declared != points.shape[0]:
            report.add(
                f"{where}: NumberOfContourPoints says {declared} but ContourData "
                f"holds {points.shape[0]} points; using the data",
                number,
            )
        # The largest |coordinate|: NaN when one is NaN.
        largest = max(float(points.max()), -float(points.min())) if points.size else 0.0
        if not largest <= MAX_COORDINATE_MM:
            if np.isfinite(points).all():
                report.add(
                    f"{where}: coordinates up to {largest:.3g} mm, beyond the "
                    f"{MAX_COORDINATE_MM:g} mm ({MAX_COORDINATE_MM / 1000:g} m) any patient "
                    "coordinate stays within; contour dropped",
                    number,
                )
            else:
                report.add(f"{where}: NaN or infinite coordinates; contour dropped", number)
            dropped.append(index + 1)
            continue
        contours.append(
            Contour(
                points_mm=points,
                geometric_type=geometric_type,
                number=_integer(item, "ContourNumber"),
                referenced_sop_instance_uid=_first_referenced_image(item),
            )
        )
    return contours, dropped


def _color(roi_contour: RawDataset) -> tuple[int, int, int] | None:
    """ROIDisplayColor as RGB 0-255, or None when absent or not three numbers."""
    try:
        values = [round(float(v)) for v in roi_contour.numbers("ROIDisplayColor")]
    except (ValueError, OverflowError):
        return None
    if len(values) != 3:
        return None
    r, g, b = (min(max(v, 0), 255) for v in values)
    return (r, g, b)


def _whole_number(item: RawDataset, attribute: str, what_is_wrong: str) -> tuple[int | None, str]:
    """The whole number ``item`` holds in ``attribute``, or None and the problem in words.

    The problem is ``no <attribute>`` when it is absent, else
    ``<attribute> '<text>'<what_is_wrong>``.
    """
    text = item.text(attribute)
    number = int_or_none(text)
    if number is not None:
        return number, ""
    return None, f"no {attribute}" if text is None else f"{attribute} {text!r}{what_is_wrong}"


def _roi_contours_by_number(
    dataset: RawDataset, report: _Report
) -> tuple[dict[int, RawDataset], set[int]]:
    """ROIContourSequence items by ReferencedROINumber, and the numbers referred to twice.

    An item without a readable number is reported and ignored: its contours belong to no
    ROI that can be named.
    """
    contours_by_number: dict[int, RawDataset] = {}
    repeated: set[int] = set()
    for position, contour_item in enumerate(dataset.sequence("ROIContourSequence"), start=1):
        number, problem = _whole_number(contour_item, "ReferencedROINumber", "")
        if number is None:
            report.add(
                f"ROIContourSequence item {position} has {problem}, which names no ROI; "
                "its contours are ignored"
            )
        elif number in contours_by_number:
            repeated.add(number)
        else:
            contours_by_number[number] = contour_item
    return contours_by_number, repeated


def _usable_roi_items(
    dataset: RawDataset, repeated_contours: set[int], report: _Report
) -> tuple[list[tuple[int, RawDataset]], set[int]]:
    """StructureSetROISequence items whose ROINumber says which contours are theirs.

    An item whose ROINumber is missing or not a whole number, or whose number is also
    another item's (or has two ROIContourSequence items) cannot be matched with its
    contours: it is reported by name among the skipped ROIs, never given another ROI's
    contours. Returns the usable ``(number, item)`` pairs and every number defined.
    """
    by_number: dict[int, list[tuple[int, RawDataset]]] = {}
    for position, item in enumerate(dataset.sequence("StructureSetROISequence")):
        name = item.text("ROIName") or ""
        number, problem = _whole_number(item, "ROINumber", " is not a whole number")
        if number is None:
            report.add(
                f"ROI {name!r}: {problem}; its contours cannot be found and the ROI is "
                "skipped; fix the number in the planning system and export again",
                skipped=True,
            )
            continue
        by_number.setdefault(number, []).append((position, item))
    usable: list[tuple[int, int, RawDataset]] = []
    for number, items in by_number.items():
        if len(items) == 1 and number not in repeated_contours:
            usable.append((items[0][0], number, items[0][1]))
            continue
        names = " and ".join(repr(item.text("ROIName") or "") for _, item in items)
        why = (
            f"ROIs {names} share ROINumber {number}"
            if len(items) > 1
            else f"ROI {number} {names}: two ROIContourSequence items refer to ROINumber {number}"
        )
        report.add(
            f"{why}; which contours belong to which cannot be told, so "
            f"{'neither' if len(items) == 2 else 'none' if len(items) > 2 else 'it'} is "
            "used; give each ROI its own number in the planning system and export again",
            skipped=True,
        )
    usable.sort(key=lambda entry: entry[0])  # file order
    return [(number, item) for _, number, item in usable], set(by_number)


def _open(source: str | os.PathLike[str] | Dataset) -> tuple[str, RawDataset]:
    """The source's name and its data set, refused when it is no RT Structure Set."""
    if isinstance(source, (str, os.PathLike)):
        name = os.fspath(source)
        dataset = read_raw(name)
    else:
        name = str(getattr(source, "filename", None) or "<dataset>")
        dataset = raw_from_dataset(source, name=name)
    if not _is_rtstruct(dataset):
        modality = dataset.text("Modality") or "unknown"
        raise InvalidInputError(
            f"{name}: not an RT Structure Set (Modality {modality}); give an RTSTRUCT file"
        )
    return name, dataset


def _observations_by_number(dataset: RawDataset) -> dict[int, RawDataset]:
    """The first RTROIObservations item of each referenced ROI number."""
    observations: dict[int, RawDataset] = {}
    for observation_item in dataset.sequence("RTROIObservationsSequence"):
        number = int_or_none(observation_item.text("ReferencedROINumber"))
        if number is not None:
            observations.setdefault(number, observation_item)
    return observations


def _check_roi_sequences(dataset: RawDataset, report: _Report) -> None:
    """Report a missing StructureSetROISequence or ROIContourSequence."""
    missing = [
        k for k in ("StructureSetROISequence", "ROIContourSequence") if not dataset.sequence(k)
    ]
    if missing:
        report.add(
            f"no {' or '.join(missing)} (required); the file holds no ROIs - it may be "
            "truncated or incompletely exported"
        )


def _read_roi(
    number: int,
    item: RawDataset,
    roi_contour: RawDataset | None,
    observation: RawDataset | None,
    report: _Report,
) -> ROI:
    """One ROI from its StructureSetROI, ROIContour and RTROIObservations items."""
    name_text = item.text("ROIName") or ""
    label = f"ROI {number} {name_text!r}"
    contours: list[Contour] = []
    dropped: list[int] = []
    color = None
    if roi_contour is None:
        report.add(f"{label}: no ROIContourSequence item; the ROI is empty", number)
    else:
        color = _color(roi_contour)
        if "ContourSequence" not in roi_contour:
            report.add(f"{label}: has no ContourSequence; the ROI is empty", number)
        else:
            contours, dropped = _read_contours(roi_contour, label, number, report)
            if not contours:
                report.add(f"{label}: no usable contours; the ROI is empty", number)
    return ROI(
        number=number,
        name=name_text,
        color=color,
        interpreted_type=_interpreted_type(observation, label, number, report),
        generation_algorithm=item.text("ROIGenerationAlgorithm"),
        frame_of_reference_uid=item.text("ReferencedFrameOfReferenceUID"),
        contours=tuple(contours),
        dropped_contours=tuple(dropped),
        warnings=tuple(report.per_roi.get(number, ())),
    )


def _check_duplicate_names(rois: list[ROI], report: _Report) -> None:
    """Report ROI names used by several ROIs (compared without case)."""
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


def _interpreted_type(
    observation: RawDataset | None, label: str, number: int, report: _Report
) -> str | None:
    """RTROIInterpretedType, or None (reported) when it cannot be a code string (CS).

    A code string is at most 16 printable ASCII characters (PS3.5 6.2; lower case, which
    some systems write, is let through); anything else is a damaged value.
    """
    text = None if observation is None else observation.text("RTROIInterpretedType")
    if text is None or (text.isascii() and text.isprintable() and len(text) <= 16):
        return text
    report.add(f"{label}: RTROIInterpretedType {text!r} is not a valid code; ignored", number)
    return None


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
    name, dataset = _open(source)
    report = _Report(source=name, on_invalid=on_invalid)
    frame_uid, series_uids, image_uids = _referenced_uids(dataset)

    contours_by_number, repeated_contours = _roi_contours_by_number(dataset, report)
    observations = _observations_by_number(dataset)
    _check_roi_sequences(dataset, report)
    items, seen_numbers = _usable_roi_items(dataset, repeated_contours, report)
    rois = [
        _read_roi(number, item, contours_by_number.get(number), observations.get(number), report)
        for number, item in items
    ]
    for number in sorted(set(contours_by_number) - seen_numbers):
        report.add(
            f"ROIContourSequence refers to ROI {number}, which StructureSetROISequence "
            "does not define; its contours are ignored"
        )
    _check_duplicate_names(rois, report)
    contour_uids = [
        c.referenced_sop_instance_uid
        for r in rois
        for c in r.contours
        if c.referenced_sop_instance_uid
    ]
    all_image_uids = tuple(dict.fromkeys([*image_uids, *contour_uids]))
    return StructureSet(
        rois=tuple(rois),
        skipped_rois=tuple(report.skipped_rois),
        sop_instance_uid=dataset.text("SOPInstanceUID"),
        series_instance_uid=dataset.text("SeriesInstanceUID"),
        study_instance_uid=dataset.text("StudyInstanceUID"),
        patient_id=dataset.text("PatientID"),
        patient_name=dataset.text("PatientName"),
        label=dataset.text("StructureSetLabel"),
        frame_of_reference_uid=frame_uid,
        referenced_series_uids=tuple(series_uids),
        referenced_sop_instance_uids=all_image_uids,
        source=name,
        warnings=tuple(report.structure_set),
    )
