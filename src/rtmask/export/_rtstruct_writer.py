"""Writing binary masks as a new DICOM RT Structure Set (contours traced along voxel edges).

Each mask is traced by :func:`~rtmask.export._trace.contours_from_mask`: contour vertices
are pixel corners, so reading the file back and rasterising it by the pixel-centre rule
gives the masks back voxel for voxel (``simplify_mm=0``). The file refers to the image
series the masks are on (every image listed, each contour referencing its slice's image),
copies patient and study from the first image, and gets new SOP Instance and Series UIDs.
With ``existing``, the ROIs of an RT Structure Set are kept as they are and the new ones
appended after them.

ContourData holds millions of numbers in a large case: they are formatted with numpy (six
decimals, 1e-6 mm, trailing zeros dropped, at most 16 characters) and stored as raw bytes
that pydicom writes as they are. The file is explicit VR little endian, or implicit VR when
a contour's ContourData outgrows the 64 KB an explicit VR DS value can hold (or the kept
ROIs come from an implicit VR file).
"""

from __future__ import annotations

import datetime
import logging
import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence as DicomSequence
from pydicom.tag import Tag
from pydicom.uid import (
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    RTStructureSetStorage,
    generate_uid,
)

from rtmask import __version__
from rtmask._atomic import atomic_path
from rtmask._dicom import (
    RTSTRUCT_SOP_CLASS,
    check_values_to_write,
    copy_deidentification,
    int_or_none,
    read_dataset,
    text_or_none,
)
from rtmask._errors import GeometryError, InvalidInputError, StructureSetWarning
from rtmask.discovery import ImageSeries
from rtmask.export._trace import trace_mask
from rtmask.names import standard_colour
from rtmask.raster import Mask
from rtmask.rtstruct import ROI, Contour

__all__ = ["RtstructWriteReport", "SkippedROI", "WrittenROI", "default_colour", "write_rtstruct"]

logger = logging.getLogger(__name__)

_CONTOUR_DATA = Tag(0x30060050)
_MANUFACTURER = "rtmask"
#: Referenced SOP Class of the study in RTReferencedStudySequence (Detached Study Management).
_STUDY_SOP_CLASS = "1.2.840.10008.3.1.2.3.1"
#: Largest distance (mm) between a mask's affine and the series' that counts as equal.
GRID_TOLERANCE_MM = 1e-4
#: Decimals written for contour coordinates (mm): 1e-6 mm, far below any pixel.
DS_DECIMALS = 6
_DS_MAX_CHARS = 16
#: Longest value an explicit VR DS element can hold (16-bit length, even).
_EXPLICIT_VR_MAX_LENGTH = 0xFFFE
#: Colours given to ROIs without ROIDisplayColor, in turn.
_PALETTE = (
    (230, 25, 75),
    (60, 180, 75),
    (255, 225, 25),
    (0, 130, 200),
    (245, 130, 48),
    (145, 30, 180),
    (70, 240, 240),
    (240, 50, 230),
    (210, 245, 60),
    (250, 190, 212),
)


def default_colour(roi: ROI, position: int) -> tuple[int, int, int]:
    """The ROI's own colour, else its conventional one by name, else the palette's."""
    return roi.color or standard_colour(roi.name) or _PALETTE[position % len(_PALETTE)]


_PATIENT_STUDY_KEYWORDS = (
    "PatientName",
    "PatientID",
    "PatientBirthDate",
    "PatientSex",
    "StudyInstanceUID",
    "StudyDate",
    "StudyTime",
    "ReferringPhysicianName",
    "StudyID",
    "AccessionNumber",
)


@dataclass(frozen=True, slots=True, kw_only=True)
class WrittenROI:
    """An ROI written to the structure set: its number, name and how many contours/points."""

    number: int
    name: str
    contours: int
    points: int


@dataclass(frozen=True, slots=True, kw_only=True)
class SkippedROI:
    """A mask that was not written, and why (e.g. ``"empty mask"``)."""

    number: int
    name: str
    reason: str


@dataclass(frozen=True, slots=True, kw_only=True)
class RtstructWriteReport:
    """What :func:`write_rtstruct` wrote.

    Parameters
    ----------
    path
        The file written.
    sop_instance_uid, series_instance_uid
        The new structure set's identity.
    rois
        The new ROIs written, in file order (ROI numbers as written).
    skipped
        Masks left out, with the reason.
    kept
        ROIs kept from the ``existing`` structure set (0 without one).
    warnings
        What the caller was warned about, one sentence each.
    """

    path: Path
    sop_instance_uid: str
    series_instance_uid: str
    rois: tuple[WrittenROI, ...]
    skipped: tuple[SkippedROI, ...] = ()
    kept: int = 0
    warnings: tuple[str, ...] = ()

    @property
    def n_points(self) -> int:
        """Contour points written for the new ROIs."""
        return sum(roi.points for roi in self.rois)


# --------------------------------------------------------------------------- DS values
def format_ds_bytes(
    values: NDArray[np.float64], decimals: int = DS_DECIMALS
) -> tuple[NDArray[np.uint8], NDArray[np.int64]]:
    """Format numbers as DS texts, all at once (numpy, no Python loop per value).

    Each value is written in fixed point with at most ``decimals`` decimals (fewer when
    the integer part needs the room: a DS value has at most 16 characters), trailing
    zeros and a trailing point dropped, ``-0`` written as ``0``.

    Returns
    -------
    (text, ends)
        ``text``: the ASCII codes of every value, each followed by a backslash.
        ``ends``: ``(N,)`` offset just past each value's last character (before its
        backslash).

    Raises
    ------
    InvalidInputError
        For non-finite values, or values of 1e8 or more (coordinates in mm never are).
    """
    numbers = np.asarray(values, dtype=np.float64).reshape(-1)
    if numbers.size == 0:
        return np.empty(0, dtype=np.uint8), np.empty(0, dtype=np.int64)
    if not np.all(np.isfinite(numbers)):
        raise InvalidInputError("contour coordinates must be finite numbers")
    largest = float(np.abs(numbers).max())
    if largest >= 1e8:
        raise InvalidInputError(f"coordinate {largest:.6g} mm is too large to write")
    int_digits = len(str(int(largest)))
    decimals = min(decimals, _DS_MAX_CHARS - 2 - int_digits)
    scale = float(10**decimals)
    # Whole numbers below 2**53 in float64: the quotient and remainder below are exact.
    magnitude = np.abs(np.rint(numbers * scale))
    whole_float = np.floor(magnitude / scale)
    whole = whole_float.astype(np.int32)
    fraction = (magnitude - whole_float * scale).astype(np.int32)
    negative = (numbers < 0) & (magnitude > 0)
    int_digits = len(str(int(whole.max())))
    n_int = np.ones(numbers.size, dtype=np.int32)
    for power in range(1, int_digits):
        n_int += whole >= 10**power
    kept = np.full(numbers.size, decimals, dtype=np.int32)
    for power in range(1, decimals + 1):
        kept -= fraction % 10**power == 0
    # Columns (transposed for speed): [sign or digits, right aligned] [.] [fraction] [\]
    width = 1 + int_digits + 1 + decimals + 1
    chars = np.empty((width, numbers.size), dtype=np.uint8)
    valid = np.empty((width, numbers.size), dtype=np.bool_)
    chars[0] = ord("-")
    valid[0] = negative & (n_int == int_digits)
    for power in range(int_digits):
        row = int_digits - power
        chars[row] = whole % 10 + ord("0")
        valid[row] = (n_int > power) | (negative & (n_int == power))
        whole //= 10
    for power in range(1, int_digits):  # the sign sits just left of the first digit
        row = int_digits - power
        is_sign = negative & (n_int == power)
        chars[row][is_sign] = ord("-")
    point = int_digits + 1
    chars[point] = ord(".")
    valid[point] = kept > 0
    for place in range(decimals - 1, -1, -1):
        chars[point + 1 + place] = fraction % 10 + ord("0")
        valid[point + 1 + place] = kept > place
        fraction //= 10
    chars[-1] = ord("\\")
    valid[-1] = True
    lengths = valid.sum(axis=0, dtype=np.int64)
    ends = np.cumsum(lengths) - 1
    # Row-major copies, then one compress: much faster than 2-D boolean indexing.
    text = np.compress(np.ascontiguousarray(valid.T).reshape(-1), chars.T.reshape(-1))
    return text, ends


def _contour_data(points: NDArray[np.float64], sizes: Sequence[int]) -> list[bytes]:
    """ContourData values (raw bytes, even length) of contours with ``sizes`` points each."""
    text, ends = format_ds_bytes(points.reshape(-1))
    blob = text.tobytes()
    stops = ends[np.cumsum(np.asarray(sizes, dtype=np.int64) * 3) - 1]
    starts = np.concatenate([[0], stops[:-1] + 1])
    values = []
    for start, stop in zip(starts.tolist(), stops.tolist(), strict=True):
        raw = blob[start:stop]
        values.append(raw + b" " if len(raw) % 2 else raw)
    return values


# --------------------------------------------------------------------------- checks
def _describe(mask: Mask) -> str:
    return f"ROI {mask.roi.number} {mask.roi.name!r}"


def _check_mask(mask: Mask, series: ImageSeries) -> None:
    """Raise unless ``mask`` is binary and on the series' grid (never flip or resample)."""
    if mask.is_fractional:
        raise InvalidInputError(
            f"{_describe(mask)}: the mask holds fractions ({mask.array.dtype}); an RT "
            "Structure Set needs binary masks: threshold it first (e.g. array >= 0.5)"
        )
    problem = series.grid.mismatch(mask.grid, atol=GRID_TOLERANCE_MM)
    if problem is None:
        return
    raise GeometryError(
        f"{_describe(mask)}: the mask is not on the grid of image series "
        f"{series.series_instance_uid} ({problem}); resample or reorient the mask onto the "
        "series grid first"
    )


def _roi_numbers(masks: Sequence[Mask], first: int | None) -> list[int]:
    """ROI numbers for the masks: ``first, first + 1, ...`` when given (appending).

    Otherwise the masks' own numbers when unique and positive, else 1, 2, ...
    """
    if first is not None:
        return list(range(first, first + len(masks)))
    numbers = [mask.roi.number for mask in masks]
    if len(set(numbers)) == len(numbers) and all(n > 0 for n in numbers):
        return numbers
    return list(range(1, len(masks) + 1))


# --------------------------------------------------------------------------- dataset
def _now() -> tuple[str, str]:
    now = datetime.datetime.now()  # DICOM dates and times are local
    return now.strftime("%Y%m%d"), now.strftime("%H%M%S.%f")


def _image_reference(sop_class: str, sop_instance: str) -> Dataset:
    item = Dataset()
    item.ReferencedSOPClassUID = sop_class
    item.ReferencedSOPInstanceUID = sop_instance
    return item


def _series_item(series: ImageSeries, sop_class: str) -> Dataset:
    item = Dataset()
    item.SeriesInstanceUID = series.series_instance_uid
    item.ContourImageSequence = DicomSequence(
        [_image_reference(sop_class, uid) for uid in series.sop_instance_uids]
    )
    return item


def _referenced_frames(
    series: ImageSeries, sop_class: str, study_uid: str, frame_uid: str, existing: Dataset | None
) -> DicomSequence:
    """ReferencedFrameOfReferenceSequence listing every image of ``series``.

    With an existing structure set its references are kept, and the series (or its
    missing images) added to them.
    """
    frames = list(existing.get("ReferencedFrameOfReferenceSequence", [])) if existing else []
    frame = next((f for f in frames if f.get("FrameOfReferenceUID") == frame_uid), None)
    if frame is None:
        frame = Dataset()
        frame.FrameOfReferenceUID = frame_uid
        frames.append(frame)
    studies = list(frame.get("RTReferencedStudySequence", []))
    study = next((s for s in studies if s.get("ReferencedSOPInstanceUID") == study_uid), None)
    if study is None:
        study = Dataset()
        study.ReferencedSOPClassUID = _STUDY_SOP_CLASS
        study.ReferencedSOPInstanceUID = study_uid
        studies.append(study)
    items = list(study.get("RTReferencedSeriesSequence", []))
    item = next(
        (s for s in items if s.get("SeriesInstanceUID") == series.series_instance_uid), None
    )
    if item is None:
        items.append(_series_item(series, sop_class))
    else:
        images = list(item.get("ContourImageSequence", []))
        listed = {image.get("ReferencedSOPInstanceUID") for image in images}
        images += [
            _image_reference(sop_class, uid)
            for uid in series.sop_instance_uids
            if uid not in listed
        ]
        item.ContourImageSequence = DicomSequence(images)
    study.RTReferencedSeriesSequence = DicomSequence(items)
    frame.RTReferencedStudySequence = DicomSequence(studies)
    return DicomSequence(frames)


def _contour_items(contours: Sequence[Contour], sop_class: str) -> list[Dataset]:
    """ContourSequence items; ContourData goes in as preformatted raw bytes."""
    if not contours:
        return []
    sizes = [contour.n_points for contour in contours]
    values = _contour_data(np.concatenate([c.points_mm for c in contours]), sizes)
    items = []
    for number, (contour, raw) in enumerate(zip(contours, values, strict=True), start=1):
        item = Dataset()
        if contour.referenced_sop_instance_uid is not None:
            item.ContourImageSequence = DicomSequence(
                [_image_reference(sop_class, contour.referenced_sop_instance_uid)]
            )
        item.ContourGeometricType = contour.geometric_type.value
        item.NumberOfContourPoints = contour.n_points
        item.ContourNumber = number
        item[_CONTOUR_DATA] = RawDataElement(_CONTOUR_DATA, "DS", len(raw), raw, 0, False, True)
        items.append(item)
    return items


def _set_encoding(items: Sequence[Dataset], implicit_vr: bool) -> None:
    """Mark new contour items as encoded like the file, so pydicom writes them as they are.

    pydicom writes a raw element verbatim only when its item's original encoding is the
    file's and its original character set the one it inherits ("iso8859" for a new item,
    whatever the file's); otherwise it parses every number and formats it again.
    """
    for item in items:
        item.set_original_encoding(implicit_vr, True, "iso8859")


def _roi_items(
    roi: ROI,
    number: int,
    *,
    frame_uid: str,
    color: tuple[int, int, int],
    contours: list[Dataset],
    observation_number: int,
) -> tuple[Dataset, Dataset, Dataset]:
    """The StructureSetROI, ROIContour and RTROIObservations items of one new ROI."""
    item = Dataset()
    item.ROINumber = number
    item.ReferencedFrameOfReferenceUID = frame_uid
    item.ROIName = roi.name
    item.ROIGenerationAlgorithm = "AUTOMATIC"
    item.ROIGenerationDescription = "rtmask: traced along the voxel edges of a mask"
    roi_contour = Dataset()
    roi_contour.ROIDisplayColor = [int(c) for c in color]
    roi_contour.ContourSequence = DicomSequence(contours)
    roi_contour.ReferencedROINumber = number
    observation = Dataset()
    observation.ObservationNumber = observation_number
    observation.ReferencedROINumber = number
    observation.RTROIInterpretedType = roi.interpreted_type or ""
    observation.ROIInterpreter = ""
    return item, roi_contour, observation


def _needs_utf8(texts: Sequence[str]) -> bool:
    return any(not text.isascii() for text in texts)


def _patient_and_study(ds: Dataset, image: Dataset) -> None:
    """Patient and General Study attributes copied from an image (empty when missing)."""
    for keyword in _PATIENT_STUDY_KEYWORDS:
        value = image.get(keyword)
        setattr(ds, keyword, "" if value is None else value)
    if not ds.StudyInstanceUID:
        ds.StudyInstanceUID = generate_uid()
    copy_deidentification(ds, image)


def _existing_structure_set(path: Path, frame_uid: str, image: Dataset) -> Dataset:
    """Read the structure set to extend; check that it is one and shares the frame."""
    existing = read_dataset(path)
    if existing.get("SOPClassUID") != RTSTRUCT_SOP_CLASS and existing.get("Modality") != "RTSTRUCT":
        raise InvalidInputError(f"{path}: not an RT Structure Set; give an RTSTRUCT as existing")
    frames = {
        text_or_none(item.get("FrameOfReferenceUID"))
        for item in existing.get("ReferencedFrameOfReferenceSequence", [])
    } | {
        text_or_none(item.get("ReferencedFrameOfReferenceUID"))
        for item in existing.get("StructureSetROISequence", [])
    }
    frames.discard(None)
    if frames and frame_uid not in frames:
        raise GeometryError(
            f"{path}: the existing structure set is in frame of reference "
            f"{', '.join(sorted(f for f in frames if f))}, the image series in {frame_uid}; "
            "add masks only to a structure set drawn on the same images"
        )
    theirs = text_or_none(existing.get("PatientID"))
    ours = text_or_none(image.get("PatientID"))
    if theirs and ours and theirs != ours:
        raise InvalidInputError(
            f"{path}: the existing structure set belongs to patient {theirs!r}, the image "
            f"series to {ours!r}; give a structure set of the same patient"
        )
    return existing


def _frame_of_reference(series: ImageSeries) -> str:
    """The series' FrameOfReferenceUID, which the structure set must refer to."""
    frame_uid = series.frame_of_reference_uid or series.grid.frame_of_reference_uid
    if not frame_uid:
        raise GeometryError(
            f"image series {series.series_instance_uid} has no FrameOfReferenceUID; an RT "
            "Structure Set cannot refer to it"
        )
    return frame_uid


def _checked_masks(
    masks: Sequence[Mask], series: ImageSeries
) -> tuple[list[Mask], list[SkippedROI], list[str]]:
    """Check every mask; the non-empty ones, the empty ones as skipped ROIs, a note each."""
    for mask in masks:
        _check_mask(mask, series)
    notes: list[str] = []
    skipped: list[SkippedROI] = []
    kept_masks: list[Mask] = []
    for mask in masks:
        if mask.voxel_count > 0:
            kept_masks.append(mask)
            continue
        skipped.append(SkippedROI(number=mask.roi.number, name=mask.roi.name, reason="empty mask"))
        notes.append(f"{_describe(mask)}: the mask is empty; no ROI written for it")
    return kept_masks, skipped, notes


def _image_sop_class(series: ImageSeries, image: Dataset) -> str:
    """The SOP Class UID of the series' images, which every contour refers to."""
    sop_class = text_or_none(image.get("SOPClassUID")) or text_or_none(
        image.file_meta.get("MediaStorageSOPClassUID") if hasattr(image, "file_meta") else None
    )
    if sop_class is None:
        raise InvalidInputError(
            f"{series.files[0]}: the image has no SOP Class UID, so contours cannot refer to "
            "it; check the image series"
        )
    return sop_class


def _roi_names(
    kept_masks: Sequence[Mask], old_rois: Sequence[Dataset], notes: list[str]
) -> list[str]:
    """All ROI names, kept ones first; a name used twice gets a note."""
    names = [text_or_none(item.get("ROIName")) or "" for item in old_rois]
    for mask in kept_masks:
        if mask.roi.name.casefold() in {name.casefold() for name in names}:
            notes.append(f"{_describe(mask)}: ROI name {mask.roi.name!r} is used twice")
        names.append(mask.roi.name)
    return names


def _structure_set_header(
    ds: Dataset,
    *,
    series: ImageSeries,
    image: Dataset,
    uids: tuple[str, str, str],
    label: str,
) -> None:
    """SOP, series, frame of reference, equipment and structure set attributes (dated now)."""
    sop_uid, series_uid, frame_uid = uids
    ds.SOPClassUID = RTStructureSetStorage
    ds.SOPInstanceUID = sop_uid
    ds.Modality = "RTSTRUCT"
    ds.SeriesInstanceUID = series_uid
    ds.SeriesNumber = _next_series_number(series)
    ds.SeriesDescription = label[:64]
    ds.OperatorsName = ""
    ds.FrameOfReferenceUID = frame_uid
    ds.PositionReferenceIndicator = image.get("PositionReferenceIndicator") or ""
    ds.Manufacturer = _MANUFACTURER
    ds.SoftwareVersions = __version__
    ds.InstanceNumber = 1
    ds.StructureSetLabel = label[:16]
    ds.StructureSetName = label[:64]
    date, time = _now()
    ds.InstanceCreationDate, ds.InstanceCreationTime = date, time
    ds.StructureSetDate, ds.StructureSetTime = date, time


def _in_utf8(ds: Dataset, texts: Sequence[str], source: Dataset | None) -> bool:
    """Whether the output needs UTF-8: for ``texts``, the patient and study, or kept ROIs."""
    texts = [
        *texts,
        *(str(ds.get(k, "")) for k in (*_PATIENT_STUDY_KEYWORDS, "DeidentificationMethod")),
    ]
    # Kept ROIs in another character set may hold any character: write them in UTF-8 too.
    return _needs_utf8(texts) or (
        source is not None and source.get("SpecificCharacterSet") not in (None, "", "ISO_IR 6")
    )


def _trace(
    mask: Mask, series: ImageSeries, *, simplify_mm: float, keyholes: bool
) -> tuple[Contour, ...]:
    """The contours of a binary mask along its voxel edges (or simplified)."""
    return trace_mask(
        np.asarray(mask.array, dtype=np.bool_),
        series.grid,
        sop_instance_uids=series.sop_instance_uids,
        simplify_mm=simplify_mm,
        keyholes=keyholes,
        occupied_slices=np.flatnonzero(mask.voxels_per_slice),
    )


@dataclass(slots=True)
class _NewROIs:
    """The ROI items of the output: those kept from an existing structure set, then new ones."""

    roi_items: list[Dataset]
    roi_contours: list[Dataset]
    observations: list[Dataset]
    observation_number: int
    written: list[WrittenROI] = field(default_factory=list)
    contour_items: list[Dataset] = field(default_factory=list)

    @classmethod
    def of(cls, source: Dataset | None) -> _NewROIs:
        """Start from the ROIs, contours and observations of ``source`` (if any)."""
        observations = list(source.get("RTROIObservationsSequence", [])) if source else []
        return cls(
            roi_items=list(source.get("StructureSetROISequence", [])) if source else [],
            roi_contours=list(source.get("ROIContourSequence", [])) if source else [],
            observations=observations,
            observation_number=max(
                (int_or_none(item.get("ObservationNumber")) or 0 for item in observations),
                default=0,
            ),
        )

    def set_sequences(self, ds: Dataset) -> None:
        """Put the ROI, ROI contour and observation sequences into ``ds`` (unapproved)."""
        ds.StructureSetROISequence = DicomSequence(self.roi_items)
        ds.ROIContourSequence = DicomSequence(self.roi_contours)
        ds.RTROIObservationsSequence = DicomSequence(self.observations)
        ds.ApprovalStatus = "UNAPPROVED"

    def add(
        self,
        roi: ROI,
        number: int,
        contours: Sequence[Contour],
        *,
        sop_class: str,
        frame_uid: str,
        color: tuple[int, int, int],
    ) -> None:
        """Append a new ROI with its traced contours and a new observation."""
        items = _contour_items(contours, sop_class)
        self.contour_items += items
        self.observation_number += 1
        roi_item, roi_contour, observation = _roi_items(
            roi,
            number,
            frame_uid=frame_uid,
            color=color,
            contours=items,
            observation_number=self.observation_number,
        )
        self.roi_items.append(roi_item)
        self.roi_contours.append(roi_contour)
        self.observations.append(observation)
        self.written.append(
            WrittenROI(
                number=number,
                name=roi.name,
                contours=len(contours),
                points=sum(contour.n_points for contour in contours),
            )
        )


def _save(
    ds: Dataset,
    final: Path,
    new_contours: Sequence[Dataset],
    *,
    source: Dataset | None,
    utf8: bool,
) -> None:
    """Write ``ds`` atomically as a Part 10 file, in explicit VR where it can be."""
    # Explicit VR, unless a ContourData value outgrows its 16-bit length field (a contour
    # of some 2000+ points) or the kept ROIs come from an implicit VR file.
    longest = max((len(item.get_item(_CONTOUR_DATA).value) for item in new_contours), default=0)
    implicit_vr = longest > _EXPLICIT_VR_MAX_LENGTH or bool(
        source is not None and source.original_encoding[0]
    )
    _set_encoding(new_contours, implicit_vr)
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = RTStructureSetStorage
    meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    meta.TransferSyntaxUID = ImplicitVRLittleEndian if implicit_vr else ExplicitVRLittleEndian
    ds.file_meta = meta
    ds.set_original_encoding(implicit_vr, True, ["UTF8"] if utf8 else "iso8859")
    check_values_to_write(ds, final)
    with atomic_path(final) as temporary:
        ds.save_as(temporary, enforce_file_format=True)


def write_rtstruct(
    masks: Sequence[Mask],
    series: ImageSeries,
    path: str | os.PathLike[str],
    *,
    simplify_mm: float = 0.0,
    keyholes: bool = False,
    existing: str | os.PathLike[str] | None = None,
    label: str = "rtmask",
) -> RtstructWriteReport:
    """Write binary masks as a new RT Structure Set on an image series.

    Parameters
    ----------
    masks
        Binary masks on ``series.grid``; each mask's ``roi`` gives name, number, colour
        and interpreted type. Empty masks are skipped (and reported).
    series
        The image series the masks are on (:func:`rtmask.discovery.read_image_series`).
    path
        The file to write (atomically); its folder must exist.
    simplify_mm
        0 (default): contours along the voxel edges, an exact round trip. > 0: each loop
        simplified within this many mm (fewer points, no longer exact).
    keyholes
        Join holes to their outer contour by zero-width cuts (see
        :func:`~rtmask.export._trace.contours_from_mask`).
    existing
        An RT Structure Set on the same images: its ROIs, contours and observations are
        kept exactly, and the new ROIs appended, numbered after its largest ROI number.
        The output is a new SOP instance; ``existing`` is not changed.
    label
        StructureSetLabel (at most 16 characters are written).

    Returns
    -------
    RtstructWriteReport
        The path, the new UIDs, each ROI written (number, name, contours, points) and
        each mask skipped with the reason.

    Raises
    ------
    InvalidInputError
        A fractional mask, no mask to write, or ``existing`` is no RT Structure Set (or
        of another patient).
    GeometryError
        A mask not on the series' grid, a series without frame of reference, or
        ``existing`` in another frame of reference.

    Warns
    -----
    StructureSetWarning
        Empty masks skipped; ROI names used twice.
    """
    final = Path(path)
    frame_uid = _frame_of_reference(series)
    kept_masks, skipped, notes = _checked_masks(masks, series)
    image = read_dataset(series.files[0], headers_only=True)
    sop_class = _image_sop_class(series, image)
    source = None if existing is None else _existing_structure_set(Path(existing), frame_uid, image)
    old_rois = list(source.get("StructureSetROISequence", [])) if source else []
    if not kept_masks and not old_rois:
        raise InvalidInputError(
            f"{final}: every mask is empty, nothing to write; give at least one non-empty mask"
        )
    largest = max((int_or_none(item.get("ROINumber")) or 0 for item in old_rois), default=0)
    numbers = _roi_numbers(kept_masks, largest + 1 if source is not None else None)
    names = _roi_names(kept_masks, old_rois, notes)
    for note in notes:
        warnings.warn(f"{final}: {note}", StructureSetWarning, stacklevel=2)
    ds = Dataset()
    _patient_and_study(ds, image)
    utf8 = _in_utf8(ds, [*names, label], source)
    if utf8:
        ds.SpecificCharacterSet = "ISO_IR 192"
    sop_uid, series_uid = generate_uid(), generate_uid()
    _structure_set_header(
        ds, series=series, image=image, uids=(sop_uid, series_uid, frame_uid), label=label
    )
    ds.ReferencedFrameOfReferenceSequence = _referenced_frames(
        series, sop_class, str(ds.StudyInstanceUID), frame_uid, source
    )
    new = _NewROIs.of(source)
    for index, (mask, number) in enumerate(zip(kept_masks, numbers, strict=True)):
        contours = _trace(mask, series, simplify_mm=simplify_mm, keyholes=keyholes)
        color = default_colour(mask.roi, len(old_rois) + index)
        new.add(mask.roi, number, contours, sop_class=sop_class, frame_uid=frame_uid, color=color)
    new.set_sequences(ds)
    _save(ds, final, new.contour_items, source=source, utf8=utf8)
    logger.debug("wrote RT Structure Set %s: %d new ROIs", final, len(new.written))
    return RtstructWriteReport(
        path=final,
        sop_instance_uid=sop_uid,
        series_instance_uid=series_uid,
        rois=tuple(new.written),
        skipped=tuple(skipped),
        kept=len(old_rois),
        warnings=tuple(notes),
    )


def _next_series_number(series: ImageSeries) -> int:
    """A SeriesNumber for the new series, apart from the image series' own number."""
    return 1000 + (series.series_number or 0)
