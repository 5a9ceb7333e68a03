"""Walk folder trees, read DICOM headers only and sort what is found.

Every regular file is looked at, whatever its name or extension (DICOM files are often
named ``IM0001`` or a bare UID); hidden files and folders (name starting with ``.``) met
while walking are ignored, but a hidden file given explicitly is read. Nothing makes the
scan fail: a file that cannot be used becomes a :class:`SkippedFile` with the reason.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray
from pydicom.dataset import Dataset
from pydicom.uid import UID

from rtmask._dicom import (
    DICOMDIR_SOP_CLASS,
    RTDOSE_SOP_CLASS,
    RTPLAN_SOP_CLASS,
    RTSTRUCT_SOP_CLASS,
    SEGMENTATION_SOP_CLASS,
    read_dataset,
    text_or_none,
)
from rtmask._errors import DicomReadError, GeometryError, InvalidInputError, SeriesNotFoundError
from rtmask.discovery._series import (
    ImageHeader,
    ImageSeries,
    SkippedFile,
    assemble_series,
    image_header,
)

__all__ = ["Inventory", "RTObject", "read_image_series", "scan"]

logger = logging.getLogger(__name__)

RTION_PLAN_SOP_CLASS = "1.2.840.10008.5.1.4.1.1.481.8"

_RT_MODALITY_BY_CLASS = {
    RTSTRUCT_SOP_CLASS: "RTSTRUCT",
    RTDOSE_SOP_CLASS: "RTDOSE",
    RTPLAN_SOP_CLASS: "RTPLAN",
    RTION_PLAN_SOP_CLASS: "RTPLAN",
    SEGMENTATION_SOP_CLASS: "SEG",
}

#: Tags read from every file: identity, geometry and what is needed to check its size.
_HEADER_TAGS: tuple[str, ...] = (
    "SpecificCharacterSet",
    "SOPClassUID",
    "SOPInstanceUID",
    "Modality",
    "ImageType",
    "StudyDate",
    "StudyDescription",
    "SeriesDescription",
    "PatientName",
    "PatientID",
    "PatientPosition",
    "StudyInstanceUID",
    "SeriesInstanceUID",
    "SeriesNumber",
    "ImagePositionPatient",
    "ImageOrientationPatient",
    "FrameOfReferenceUID",
    "SamplesPerPixel",
    "NumberOfFrames",
    "Rows",
    "Columns",
    "PixelSpacing",
    "BitsAllocated",
)

_CONTOUR_DATA = 0x30060050
#: Bytes read from the start of every file: preamble check and the PixelData element header.
_HEAD_BYTES = 65536
_PIXEL_TAG = b"\xe0\x7f\x10\x00"  # (7FE0,0010) little endian
_UNDEFINED_LENGTH = 0xFFFFFFFF
_SEQUENCE_END = b"\xfe\xff\xdd\xe0\x00\x00\x00\x00"  # (FFFE,E0DD), length 0
_EMPTY_POINTS = np.empty((0, 3))
_EMPTY_POINTS.flags.writeable = False


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class RTObject:
    """An RTSTRUCT, RTDOSE, RTPLAN or SEG found in the tree: identity and references only.

    Parameters
    ----------
    path
        The file.
    modality
        ``RTSTRUCT``, ``RTDOSE``, ``RTPLAN`` or ``SEG``.
    sop_class_uid, sop_instance_uid, series_instance_uid, study_instance_uid
        Identity of the object.
    patient_id, patient_name
        Patient identity as written.
    frame_of_reference_uid
        The frame of reference (for RTSTRUCT the first ReferencedFrameOfReferenceUID).
    label
        StructureSetLabel, RTPlanLabel, or for a dose its summation type, type and units.
    referenced_series_uids
        Image SeriesInstanceUIDs the object refers to (RTSTRUCT: RTReferencedSeriesSequence).
    referenced_sop_instance_uids
        Image SOPInstanceUIDs referenced (RTSTRUCT: ContourImageSequence items).
    contour_plane_points_mm
        ``(M, 3)`` LPS mm, the first vertex of each contour (RTSTRUCT only, else ``(0, 3)``).
    referenced_rt_uids
        SOPInstanceUIDs of other RT objects referenced (RTDOSE -> RTPLAN, RTPLAN -> RTSTRUCT).
    """

    path: Path
    modality: str
    sop_class_uid: str | None
    sop_instance_uid: str | None
    series_instance_uid: str | None
    study_instance_uid: str | None
    patient_id: str | None
    patient_name: str | None
    frame_of_reference_uid: str | None
    label: str | None
    referenced_series_uids: tuple[str, ...] = ()
    referenced_sop_instance_uids: tuple[str, ...] = ()
    contour_plane_points_mm: NDArray[np.float64] = field(default_factory=lambda: _EMPTY_POINTS)
    referenced_rt_uids: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        points = np.array(self.contour_plane_points_mm, dtype=np.float64).reshape(-1, 3)
        points.flags.writeable = False
        object.__setattr__(self, "contour_plane_points_mm", points)
        for name in (
            "referenced_series_uids",
            "referenced_sop_instance_uids",
            "referenced_rt_uids",
        ):
            object.__setattr__(self, name, tuple(getattr(self, name)))

    def __repr__(self) -> str:
        return f"RTObject({self.modality}, {str(self.path)!r})"


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class Inventory:
    """Everything a scan found, in a stable order.

    Parameters
    ----------
    image_series
        Image series (single-frame images stacked into volumes).
    structure_sets, doses, plans
        RTSTRUCT, RTDOSE and RTPLAN objects.
    segmentations
        DICOM Segmentation (SEG) objects.
    skipped
        Files not used, each with a one-line reason.
    n_files
        Number of files looked at.
    """

    image_series: tuple[ImageSeries, ...]
    structure_sets: tuple[RTObject, ...]
    doses: tuple[RTObject, ...]
    plans: tuple[RTObject, ...]
    skipped: tuple[SkippedFile, ...]
    n_files: int = 0
    segmentations: tuple[RTObject, ...] = ()

    @property
    def rt_objects(self) -> tuple[RTObject, ...]:
        """Structure sets, doses, plans and segmentations together."""
        return (*self.structure_sets, *self.doses, *self.plans, *self.segmentations)

    @property
    def is_empty(self) -> bool:
        """True when neither an image series nor an RT object was found."""
        return not self.image_series and not self.rt_objects


# ---------------------------------------------------------------------------- walking
def _is_hidden(name: str) -> bool:
    return name.startswith(".")


def _walk(root: Path, problems: list[SkippedFile]) -> Iterator[Path]:
    def unreadable(error: OSError) -> None:
        where = Path(error.filename) if error.filename else root
        problems.append(
            SkippedFile(
                path=where, kind="unreadable", reason=f"folder cannot be read ({error.strerror})"
            )
        )

    for folder, folders, files in os.walk(root, onerror=unreadable):
        folders[:] = sorted(name for name in folders if not _is_hidden(name))
        base = Path(folder)
        for name in sorted(files):
            if not _is_hidden(name):
                path = base / name
                if path.is_file():
                    yield path


def _files(paths: Path | str | Sequence[Path | str], problems: list[SkippedFile]) -> list[Path]:
    """Every file under ``paths``, each once, in a stable order; unreadable folders to problems."""
    items: Iterable[Path | str] = [paths] if isinstance(paths, (str, os.PathLike)) else paths
    found: dict[Path, None] = {}
    for item in items:
        path = Path(item)
        if path.is_dir():
            found.update(dict.fromkeys(_walk(path, problems)))
        elif path.is_file():
            found[path] = None
        else:
            raise DicomReadError(f"{path}: no such file or folder; check the path")
    return list(found)


# ---------------------------------------------------------------------------- reading
def _head(path: Path) -> bytes | SkippedFile:
    """The first bytes of a file, or why it is obviously not DICOM (cheap, one read)."""
    try:
        with path.open("rb") as stream:
            head = stream.read(_HEAD_BYTES)
    except OSError as error:
        return SkippedFile(path=path, kind="unreadable", reason=f"cannot be opened ({error})")
    if not head:
        return SkippedFile(path=path, kind="not_dicom", reason="empty file")
    if head[128:132] == b"DICM":
        return head
    # No preamble: a raw data set starts with a group 0002-0028 tag (little or big endian).
    little, big = int.from_bytes(head[:2], "little"), int.from_bytes(head[:2], "big")
    if len(head) >= 8 and (little in (2, 4, 8, 0x10, 0x18, 0x20, 0x28) or big == 8):
        return head
    return SkippedFile(
        path=path, kind="not_dicom", reason="not DICOM (no 'DICM' marker and no DICOM header)"
    )


def _reason(error: DicomReadError, path: Path) -> str:
    """The error message without the leading file name."""
    message = str(error)
    prefix = f"{path}: "
    return message[len(prefix) :] if message.startswith(prefix) else message


def _pixel_bytes(dataset: Dataset) -> int | None:
    """Bytes of uncompressed pixel data the header announces, or None when unknown."""
    meta = getattr(dataset, "file_meta", None)
    syntax = meta.get("TransferSyntaxUID") if meta is not None else None
    if syntax is not None and UID(str(syntax)).is_compressed:
        return None
    try:
        frames = int(dataset.get("NumberOfFrames", 1) or 1)
        samples = int(dataset.get("SamplesPerPixel", 1) or 1)
        size = int(dataset.Rows) * int(dataset.Columns) * samples * frames
        # Without BitsAllocated (a header cut short) count one byte a sample: a lower bound.
        return size * int(dataset.get("BitsAllocated", 8) or 8) // 8
    except (AttributeError, TypeError, ValueError):
        return None


def _pixel_element(head: bytes, expected: int | None) -> tuple[int, int] | None:
    """Offset and length of the PixelData value, from its element header in ``head``.

    Little-endian only (explicit VR ``OB``/``OW``, or implicit VR with the expected length);
    None when it is not within the first bytes read.
    """
    start = head.find(_PIXEL_TAG)
    while 0 <= start <= len(head) - 12:
        vr, reserved = head[start + 4 : start + 6], head[start + 6 : start + 8]
        if vr in (b"OB", b"OW") and reserved == b"\x00\x00":
            return start + 12, int.from_bytes(head[start + 8 : start + 12], "little")
        length = int.from_bytes(head[start + 4 : start + 8], "little")
        if expected is not None and length in (expected, expected + 1):
            return start + 8, length
        start = head.find(_PIXEL_TAG, start + 1)
    return None


def _truncation(path: Path, head: bytes, dataset: Dataset) -> str | None:
    """Why an object with pixel data is shorter than its header says, or None."""
    if "Rows" not in dataset:
        return None
    size = path.stat().st_size
    expected = _pixel_bytes(dataset)
    element = _pixel_element(head, expected)
    if element is not None:
        start, length = element
        if length == _UNDEFINED_LENGTH:
            with path.open("rb") as stream:
                stream.seek(max(size - len(_SEQUENCE_END), 0))
                if stream.read() != _SEQUENCE_END:
                    return "truncated: its compressed pixel data has no end marker; copy it again"
            return None
        if size < start + length:
            return (
                f"truncated: the file has {size} bytes but its pixel data ends at byte "
                f"{start + length}; copy it again"
            )
        return None
    if expected is not None and size < expected:
        return (
            f"truncated: the file has {size} bytes but its pixel data alone needs "
            f"{expected}; copy it again"
        )
    return None


def _sop_class_name(uid: str | None) -> str:
    if not uid:
        return "unknown SOP class"
    name = UID(uid).name
    return name if name != uid else f"SOP class {uid}"


def _first_vertex(item: Dataset) -> tuple[float, float, float] | None:
    """The first point of a contour from the raw ContourData bytes, without decoding it all."""
    if _CONTOUR_DATA not in item:
        return None
    element = item.get_item(_CONTOUR_DATA)
    value = element.value if element is not None else None
    try:
        if isinstance(value, bytes):
            parts = value.split(b"\\", 3)[:3]
            numbers = [float(p.strip(b" \x00")) for p in parts]
        else:
            numbers = [float(v) for v in list(value)[:3]]
    except (TypeError, ValueError):
        return None
    if len(numbers) != 3 or not np.all(np.isfinite(numbers)):
        return None
    return (numbers[0], numbers[1], numbers[2])


def _sequence(dataset: Dataset, keyword: str) -> Sequence[Dataset]:
    value: Any = dataset.get(keyword, None)
    return value or ()


def _unique(values: Iterable[str | None]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(v for v in values if v))


def _rt_object(dataset: Dataset, path: Path, modality: str) -> RTObject:
    """Identity and references of an RT object read with its headers."""
    frame_uid = text_or_none(dataset.get("FrameOfReferenceUID"))
    series_uids: list[str | None] = []
    image_uids: list[str | None] = []
    rt_uids: list[str | None] = []
    points: list[tuple[float, float, float]] = []
    label: str | None
    if modality == "RTSTRUCT":
        label = text_or_none(dataset.get("StructureSetLabel"))
        for frame in _sequence(dataset, "ReferencedFrameOfReferenceSequence"):
            frame_uid = frame_uid or text_or_none(frame.get("FrameOfReferenceUID"))
            for study in _sequence(frame, "RTReferencedStudySequence"):
                for series in _sequence(study, "RTReferencedSeriesSequence"):
                    series_uids.append(text_or_none(series.get("SeriesInstanceUID")))
                    image_uids.extend(
                        text_or_none(image.get("ReferencedSOPInstanceUID"))
                        for image in _sequence(series, "ContourImageSequence")
                    )
        for roi_contour in _sequence(dataset, "ROIContourSequence"):
            for contour in _sequence(roi_contour, "ContourSequence"):
                image_uids.extend(
                    text_or_none(image.get("ReferencedSOPInstanceUID"))
                    for image in _sequence(contour, "ContourImageSequence")
                )
                vertex = _first_vertex(contour)
                if vertex is not None:
                    points.append(vertex)
    elif modality == "SEG":
        label = text_or_none(dataset.get("ContentLabel")) or text_or_none(
            dataset.get("SeriesDescription")
        )
        for series in _sequence(dataset, "ReferencedSeriesSequence"):
            series_uids.append(text_or_none(series.get("SeriesInstanceUID")))
            image_uids.extend(
                text_or_none(image.get("ReferencedSOPInstanceUID"))
                for image in _sequence(series, "ReferencedInstanceSequence")
            )
    elif modality == "RTPLAN":
        label = text_or_none(dataset.get("RTPlanLabel"))
        rt_uids.extend(
            text_or_none(item.get("ReferencedSOPInstanceUID"))
            for item in _sequence(dataset, "ReferencedStructureSetSequence")
        )
    else:
        parts = (
            dataset.get("DoseSummationType"),
            dataset.get("DoseType"),
            dataset.get("DoseUnits"),
        )
        label = " ".join(t for t in (text_or_none(p) for p in parts) if t) or None
        for keyword in ("ReferencedRTPlanSequence", "ReferencedStructureSetSequence"):
            rt_uids.extend(
                text_or_none(item.get("ReferencedSOPInstanceUID"))
                for item in _sequence(dataset, keyword)
            )
    for keyword in ("ReferencedImageSequence", "ReferencedInstanceSequence"):
        image_uids.extend(
            text_or_none(item.get("ReferencedSOPInstanceUID"))
            for item in _sequence(dataset, keyword)
        )
    return RTObject(
        path=path,
        modality=modality,
        sop_class_uid=text_or_none(dataset.get("SOPClassUID")),
        sop_instance_uid=text_or_none(dataset.get("SOPInstanceUID")),
        series_instance_uid=text_or_none(dataset.get("SeriesInstanceUID")),
        study_instance_uid=text_or_none(dataset.get("StudyInstanceUID")),
        patient_id=text_or_none(dataset.get("PatientID")),
        patient_name=text_or_none(dataset.get("PatientName")),
        frame_of_reference_uid=frame_uid,
        label=label,
        referenced_series_uids=_unique(series_uids),
        referenced_sop_instance_uids=_unique(image_uids),
        contour_plane_points_mm=np.array(points, dtype=np.float64).reshape(-1, 3),
        referenced_rt_uids=_unique(rt_uids),
    )


def _rt_modality(dataset: Dataset) -> str | None:
    sop_class = text_or_none(dataset.get("SOPClassUID"))
    if sop_class in _RT_MODALITY_BY_CLASS:
        return _RT_MODALITY_BY_CLASS[sop_class]
    modality = text_or_none(dataset.get("Modality"))
    if sop_class is None and modality in ("RTSTRUCT", "RTDOSE", "RTPLAN", "SEG"):
        return modality
    return None


def _read_one(path: Path) -> ImageHeader | RTObject | SkippedFile:
    """Classify one file from its headers."""
    head = _head(path)
    if isinstance(head, SkippedFile):
        return head
    try:
        dataset = read_dataset(path, headers_only=True, specific_tags=list(_HEADER_TAGS))
    except DicomReadError as error:
        return SkippedFile(path=path, kind="unreadable", reason=_reason(error, path))
    meta = getattr(dataset, "file_meta", None)
    media_class = text_or_none(meta.get("MediaStorageSOPClassUID")) if meta is not None else None
    if media_class == DICOMDIR_SOP_CLASS:
        return SkippedFile(
            path=path,
            kind="dicomdir",
            reason="DICOMDIR index (the images it lists are read directly)",
        )
    sop_class = text_or_none(dataset.get("SOPClassUID")) or media_class
    if "SOPClassUID" not in dataset and "Modality" not in dataset:
        return SkippedFile(
            path=path,
            kind="unreadable",
            reason="DICOM file meta but no data set (the file is probably truncated)",
        )
    truncated = _truncation(path, head, dataset)
    if truncated is not None:
        return SkippedFile(path=path, kind="truncated", reason=truncated)
    modality = _rt_modality(dataset)
    if modality is not None:
        try:
            full = read_dataset(path, headers_only=True)
        except DicomReadError as error:
            return SkippedFile(path=path, kind="unreadable", reason=_reason(error, path))
        return _rt_object(full, path, modality)
    description = f"{_sop_class_name(sop_class)} (Modality {dataset.get('Modality', '?')})"
    frames = dataset.get("NumberOfFrames", None)
    enhanced = "Enhanced" in description and "Image Storage" in description
    if (frames is not None and (text_or_none(frames) or "1") != "1") or enhanced:
        return SkippedFile(
            path=path,
            kind="multiframe",
            reason=f"multi-frame image, {description}, {frames or 1} frame(s): not supported "
            "yet; export the series as single-frame images",
        )
    header = image_header(dataset, path)
    if isinstance(header, SkippedFile) and "Rows" not in dataset:
        if "Image Storage" in description:
            return SkippedFile(
                path=path,
                kind="unreadable",
                reason=f"{description}: the header ends before Rows and Columns (the file is "
                "probably truncated)",
            )
        return SkippedFile(
            path=path,
            kind="unsupported",
            reason=f"{description}: not an image, RTSTRUCT, RTDOSE, RTPLAN or SEG",
        )
    return header


def scan(
    paths: Path | str | Sequence[Path | str],
    *,
    progress: Callable[[int, int], None] | None = None,
) -> Inventory:
    """Find image series and RT objects in files and folder trees, reading headers only.

    Parameters
    ----------
    paths
        Files and/or folders (walked recursively).
    progress
        Called as ``progress(done, total)`` after each file.

    Returns
    -------
    Inventory
        Series ordered by patient, study and series number; RT objects in path order;
        every unused file in ``skipped`` with its reason.

    Raises
    ------
    DicomReadError
        When a given path does not exist (files inside folders never raise).
    """
    skipped: list[SkippedFile] = []
    files = _files(paths, skipped)
    headers: list[ImageHeader] = []
    rt_objects: list[RTObject] = []
    for index, path in enumerate(files):
        result = _read_one(path)
        if isinstance(result, ImageHeader):
            headers.append(result)
        elif isinstance(result, RTObject):
            rt_objects.append(result)
        else:
            logger.debug("skipped %s: %s", path, result.reason)
            skipped.append(result)
        if progress is not None:
            progress(index + 1, len(files))
    series, more_skipped = assemble_series(headers)
    skipped.extend(more_skipped)
    return Inventory(
        image_series=tuple(series),
        structure_sets=tuple(o for o in rt_objects if o.modality == "RTSTRUCT"),
        doses=tuple(o for o in rt_objects if o.modality == "RTDOSE"),
        plans=tuple(o for o in rt_objects if o.modality == "RTPLAN"),
        segmentations=tuple(o for o in rt_objects if o.modality == "SEG"),
        skipped=tuple(sorted(skipped, key=lambda s: s.path)),
        n_files=len(files),
    )


def read_image_series(
    folder_or_files: Path | str | Sequence[Path | str],
    *,
    series_instance_uid: str | None = None,
) -> ImageSeries:
    """Read the one image series in a folder (or list of files), headers only.

    Parameters
    ----------
    folder_or_files
        A folder (walked recursively), one file or several files.
    series_instance_uid
        Which series to take when several are present.

    Raises
    ------
    SeriesNotFoundError
        No image series (or not the one asked for) is present.
    GeometryError
        The images are there but do not stack into a volume.
    InvalidInputError
        Several series are present and ``series_instance_uid`` does not pick one.
    """
    inventory = scan(folder_or_files)
    where = (
        folder_or_files
        if isinstance(folder_or_files, (str, os.PathLike))
        else f"{len(folder_or_files)} given files"
    )
    candidates = [
        s
        for s in inventory.image_series
        if series_instance_uid is None or s.series_instance_uid == series_instance_uid
    ]
    if len(candidates) == 1:
        return candidates[0]
    if candidates:
        listing = "; ".join(
            f"{s.series_instance_uid} ({s.modality}, {s.n_slices} slices, {s.folder})"
            for s in candidates
        )
        raise InvalidInputError(
            f"{where}: {len(candidates)} image series found ({listing}); give the folder of "
            "one series only, or choose one by its series UID"
        )
    broken = [
        s
        for s in inventory.skipped
        if s.kind == "bad_geometry"
        and (series_instance_uid is None or series_instance_uid in s.reason)
    ]
    if broken:
        raise GeometryError(f"{where}: {broken[0].reason}")
    wanted = f"image series {series_instance_uid}" if series_instance_uid else "image series"
    reasons = sorted({s.reason for s in inventory.skipped})[:3]
    detail = f" (skipped files: {'; '.join(reasons)})" if reasons else ""
    raise SeriesNotFoundError(
        f"{where}: no {wanted} found among {inventory.n_files} file(s){detail}; give the "
        "folder holding the single-frame images the structures were drawn on"
    )
