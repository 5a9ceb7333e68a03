"""Walk folder trees, read DICOM headers only and sort what is found.

Every regular file is looked at, whatever its name or extension (DICOM files are often
named ``IM0001`` or a bare UID); hidden files and folders (name starting with ``.``) met
while walking are ignored, but a hidden file given explicitly is read. Nothing makes the
scan fail: a file that cannot be used becomes a :class:`SkippedFile` with the reason.
"""

from __future__ import annotations

import errno
import logging
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from rtmask._dicom import (
    DICOMDIR_SOP_CLASS,
    RTDOSE_SOP_CLASS,
    RTPLAN_SOP_CLASS,
    RTSTRUCT_SOP_CLASS,
    SEGMENTATION_SOP_CLASS,
)
from rtmask._errors import DicomReadError, GeometryError, InvalidInputError, SeriesNotFoundError
from rtmask._rawdicom import DEFLATED, NATIVE_SYNTAXES, RawDataset, read_raw
from rtmask.discovery._series import (
    ImageHeader,
    ImageSeries,
    SkippedFile,
    assemble_series,
    image_header,
)

__all__ = ["Inventory", "RTObject", "build_inventory", "read_header", "read_image_series", "scan"]

logger = logging.getLogger(__name__)

RTION_PLAN_SOP_CLASS = "1.2.840.10008.5.1.4.1.1.481.8"

_RT_MODALITY_BY_CLASS = {
    RTSTRUCT_SOP_CLASS: "RTSTRUCT",
    RTDOSE_SOP_CLASS: "RTDOSE",
    RTPLAN_SOP_CLASS: "RTPLAN",
    RTION_PLAN_SOP_CLASS: "RTPLAN",
    SEGMENTATION_SOP_CLASS: "SEG",
}

#: Enhanced (multi-frame) image storage SOP classes, which hold frames even when
#: NumberOfFrames is 1 (the classes whose pydicom name says "Enhanced ... Image Storage").
_ENHANCED_IMAGE_CLASSES = frozenset(
    {
        "1.2.840.10008.5.1.4.1.1.2.1",  # Enhanced CT
        "1.2.840.10008.5.1.4.1.1.2.2",  # Legacy Converted Enhanced CT
        "1.2.840.10008.5.1.4.1.1.4.1",  # Enhanced MR
        "1.2.840.10008.5.1.4.1.1.4.3",  # Enhanced MR Color
        "1.2.840.10008.5.1.4.1.1.4.4",  # Legacy Converted Enhanced MR
        "1.2.840.10008.5.1.4.1.1.12.1.1",  # Enhanced XA
        "1.2.840.10008.5.1.4.1.1.12.2.1",  # Enhanced XRF
        "1.2.840.10008.5.1.4.1.1.128.1",  # Legacy Converted Enhanced PET
        "1.2.840.10008.5.1.4.1.1.130",  # Enhanced PET
        "1.2.840.10008.5.1.4.1.1.481.23",  # Enhanced RT Image
        "1.2.840.10008.5.1.4.1.1.481.24",  # Enhanced Continuous RT Image
    }
)
#: Transfer syntaxes whose pixel data is not compressed (big endian included).
_UNCOMPRESSED_SYNTAXES = NATIVE_SYNTAXES | {"1.2.840.10008.1.2.2"}
#: Bytes read to tell an obviously non-DICOM file: 128-byte preamble and "DICM".
_HEAD_BYTES = 132
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


@dataclass(frozen=True, slots=True)
class _Folder:
    """A folder to list: its path as met, its real path, and the real paths leading to it."""

    path: Path
    real: str
    chain: frozenset[str]


def _loops_back(target: str, folder: _Folder) -> bool:
    """True when a link in ``folder`` to ``target`` leads to a folder holding the link."""
    return (
        target in folder.chain
        or folder.real == target
        or folder.real.startswith(target.rstrip(os.sep) + os.sep)
    )


def _follow(link: Path, folder: _Folder, walked: set[str]) -> _Folder | SkippedFile | None:
    """Where a symbolic link leads: a folder to list, a loop, or None.

    None: not a folder, missing, or a folder listed already under its own name.
    """
    try:
        target = os.path.realpath(link, strict=True)
    except (OSError, RuntimeError) as error:
        if getattr(error, "errno", None) == errno.ENOENT:
            return None  # a broken link: nothing to read (as before links were followed)
        return SkippedFile(
            path=link,
            kind="symlink_loop",
            reason="symbolic link that loops onto itself; not followed",
        )
    if not Path(target).is_dir():
        return None
    if _loops_back(target, folder):
        return SkippedFile(
            path=link,
            kind="symlink_loop",
            reason=f"symbolic link to {target}, a folder that holds it (a loop back to an "
            "ancestor); not followed",
        )
    if target in walked:
        return None  # listed under its own name: its files are not read twice
    return _Folder(link, target, folder.chain | {folder.real})


def _walk(root: Path, problems: list[SkippedFile]) -> Iterator[Path]:
    """Every file under ``root``, each real folder listed once.

    The real folders first (sorted, depth first), then the folders symbolic links lead
    to, so a folder linked from elsewhere in the tree is read under its own name only; a
    link that loops back to a folder holding it is a problem (never followed).
    """
    walked = {os.path.realpath(root)}
    pending = [_Folder(root, os.path.realpath(root), frozenset())]
    links: list[tuple[Path, _Folder]] = []
    while pending or links:
        if not pending:  # the real tree is done: follow the next link
            link, holder = links.pop(0)
            found = _follow(link, holder, walked)
            if isinstance(found, SkippedFile):
                problems.append(found)
            elif found is not None:
                walked.add(found.real)
                pending.append(found)
            continue
        folder = pending.pop()
        try:
            with os.scandir(folder.path) as listing:
                entries = sorted(
                    (e for e in listing if not _is_hidden(e.name)), key=lambda e: e.name
                )
        except OSError as error:
            problems.append(
                SkippedFile(
                    path=folder.path,
                    kind="unreadable",
                    reason=f"folder cannot be read ({error.strerror})",
                )
            )
            continue
        subfolders = []
        for entry in entries:
            path = folder.path / entry.name
            if entry.is_symlink() and not path.is_file():
                links.append((path, folder))  # a folder (or a loop): after the real tree
            elif entry.is_dir(follow_symlinks=False):
                real = folder.real + os.sep + entry.name
                if real not in walked:
                    walked.add(real)
                    subfolders.append(_Folder(path, real, folder.chain | {folder.real}))
            elif path.is_file():
                yield path
        pending.extend(reversed(subfolders))


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
def _not_dicom(path: Path) -> SkippedFile | None:
    """Why a file that failed to read is obviously not DICOM (or cannot be opened), or None."""
    try:
        with path.open("rb") as stream:
            head = stream.read(_HEAD_BYTES)
    except OSError as error:
        return SkippedFile(path=path, kind="unreadable", reason=f"cannot be opened ({error})")
    if not head:
        return SkippedFile(path=path, kind="not_dicom", reason="empty file")
    if head[128:132] == b"DICM":
        return None
    # No preamble: a raw data set starts with a group 0002-0028 tag (little or big endian).
    little, big = int.from_bytes(head[:2], "little"), int.from_bytes(head[:2], "big")
    if len(head) >= 8 and (little in (2, 4, 8, 0x10, 0x18, 0x20, 0x28) or big == 8):
        return None
    return SkippedFile(
        path=path, kind="not_dicom", reason="not DICOM (no 'DICM' marker and no DICOM header)"
    )


def _reason(error: DicomReadError, path: Path) -> str:
    """The error message without the leading file name."""
    message = str(error)
    prefix = f"{path}: "
    return message[len(prefix) :] if message.startswith(prefix) else message


def _pixel_bytes(dataset: RawDataset) -> int | None:
    """Bytes of uncompressed pixel data the header announces, or None when unknown."""
    if dataset.transfer_syntax not in _UNCOMPRESSED_SYNTAXES:
        return None
    rows, columns = dataset.integer("Rows"), dataset.integer("Columns")
    if rows is None or columns is None:
        return None
    frames = dataset.integer("NumberOfFrames") or 1
    samples = dataset.integer("SamplesPerPixel") or 1
    # Without BitsAllocated (a header cut short) count one byte a sample: a lower bound.
    return rows * columns * samples * frames * (dataset.integer("BitsAllocated") or 8) // 8


def _truncation(path: Path, dataset: RawDataset) -> str | None:
    """Why an object with pixel data is shorter than its header says, or None."""
    if "Rows" not in dataset:
        return None
    if dataset.transfer_syntax == DEFLATED:  # smaller than its pixels: inflate it all
        try:
            read_raw(path)
        except DicomReadError as error:
            return f"truncated or damaged deflated data ({str(error).split(': ', 1)[-1]})"
        return None
    size = path.stat().st_size
    element = dataset.pixel_data_range()
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
    # No PixelData element (cut before it) or a deflated file: compare with the bare size.
    expected = _pixel_bytes(dataset)
    if expected is not None and size < expected:
        return (
            f"truncated: the file has {size} bytes but its pixel data alone needs "
            f"{expected}; copy it again"
        )
    return None


def _short_pixel_data(dataset: RawDataset) -> str | None:
    """Why native pixel data is too short for the header's Rows x Columns, or None.

    A file whose Rows or Columns were damaged would otherwise make a grid its pixels do
    not fill (and masks of an absurd shape).
    """
    element = dataset.pixel_data_range()
    expected = _pixel_bytes(dataset)
    if element is None or expected is None or element[1] in (0, _UNDEFINED_LENGTH):
        return None
    if element[1] >= expected:
        return None
    frames = dataset.integer("NumberOfFrames") or 1
    return (
        f"its PixelData holds {element[1]} bytes but Rows {dataset.integer('Rows')} x "
        f"Columns {dataset.integer('Columns')} x {frames} frame(s) x "
        f"{dataset.integer('BitsAllocated') or 8} bits need {expected}; the header does not "
        "match the pixels (damaged Rows or Columns?)"
    )


def _sop_class_name(uid: str | None) -> str:
    if not uid:
        return "unknown SOP class"
    # pydicom's UID names are only needed to explain why an unusual file is skipped.
    from pydicom.uid import UID  # noqa: PLC0415 - pydicom only for skip reasons

    name = UID(uid).name
    return name if name != uid else f"SOP class {uid}"


def _first_vertex(item: RawDataset) -> tuple[float, float, float] | None:
    """The first point of a contour from the raw ContourData bytes, without decoding it all."""
    value = item.value_bytes("ContourData")
    if value is None:
        return None
    try:
        numbers = [float(p.strip(b" \x00")) for p in value.split(b"\\", 3)[:3]]
    except ValueError:
        return None
    if len(numbers) != 3 or not np.all(np.isfinite(numbers)):
        return None
    return (numbers[0], numbers[1], numbers[2])


def _unique(values: Iterable[str | None]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(v for v in values if v))


def _rt_object(dataset: RawDataset, path: Path, modality: str) -> RTObject:
    """Identity and references of an RT object read with its headers."""
    frame_uid = dataset.text("FrameOfReferenceUID")
    series_uids: list[str | None] = []
    image_uids: list[str | None] = []
    rt_uids: list[str | None] = []
    points: list[tuple[float, float, float]] = []
    label: str | None
    if modality == "RTSTRUCT":
        label = dataset.text("StructureSetLabel")
        for frame in dataset.sequence("ReferencedFrameOfReferenceSequence"):
            frame_uid = frame_uid or frame.text("FrameOfReferenceUID")
            for study in frame.sequence("RTReferencedStudySequence"):
                for series in study.sequence("RTReferencedSeriesSequence"):
                    series_uids.append(series.text("SeriesInstanceUID"))
                    image_uids.extend(
                        image.text("ReferencedSOPInstanceUID")
                        for image in series.sequence("ContourImageSequence")
                    )
        for roi_contour in dataset.sequence("ROIContourSequence"):
            for contour in roi_contour.sequence("ContourSequence"):
                image_uids.extend(
                    image.text("ReferencedSOPInstanceUID")
                    for image in contour.sequence("ContourImageSequence")
                )
                vertex = _first_vertex(contour)
                if vertex is not None:
                    points.append(vertex)
    elif modality == "SEG":
        label = dataset.text("ContentLabel") or dataset.text("SeriesDescription")
        for series in dataset.sequence("ReferencedSeriesSequence"):
            series_uids.append(series.text("SeriesInstanceUID"))
            image_uids.extend(
                image.text("ReferencedSOPInstanceUID")
                for image in series.sequence("ReferencedInstanceSequence")
            )
    elif modality == "RTPLAN":
        label = dataset.text("RTPlanLabel")
        rt_uids.extend(
            item.text("ReferencedSOPInstanceUID")
            for item in dataset.sequence("ReferencedStructureSetSequence")
        )
    else:
        parts = (dataset.text(k) for k in ("DoseSummationType", "DoseType", "DoseUnits"))
        label = " ".join(t for t in parts if t) or None
        for keyword in ("ReferencedRTPlanSequence", "ReferencedStructureSetSequence"):
            rt_uids.extend(
                item.text("ReferencedSOPInstanceUID") for item in dataset.sequence(keyword)
            )
    for keyword in ("ReferencedImageSequence", "ReferencedInstanceSequence"):
        image_uids.extend(
            item.text("ReferencedSOPInstanceUID") for item in dataset.sequence(keyword)
        )
    return RTObject(
        path=path,
        modality=modality,
        sop_class_uid=dataset.text("SOPClassUID"),
        sop_instance_uid=dataset.text("SOPInstanceUID"),
        series_instance_uid=dataset.text("SeriesInstanceUID"),
        study_instance_uid=dataset.text("StudyInstanceUID"),
        patient_id=dataset.text("PatientID"),
        patient_name=dataset.text("PatientName"),
        frame_of_reference_uid=frame_uid,
        label=label,
        referenced_series_uids=_unique(series_uids),
        referenced_sop_instance_uids=_unique(image_uids),
        contour_plane_points_mm=np.array(points, dtype=np.float64).reshape(-1, 3),
        referenced_rt_uids=_unique(rt_uids),
    )


def _rt_modality(dataset: RawDataset) -> str | None:
    sop_class = dataset.text("SOPClassUID")
    if sop_class in _RT_MODALITY_BY_CLASS:
        return _RT_MODALITY_BY_CLASS[sop_class]
    modality = dataset.text("Modality")
    if sop_class is None and modality in ("RTSTRUCT", "RTDOSE", "RTPLAN", "SEG"):
        return modality
    return None


def _description(dataset: RawDataset, sop_class: str | None) -> str:
    """SOP class name and modality, for the reason a file is skipped."""
    modality = (dataset.text("Modality") or "") if "Modality" in dataset else "?"
    return f"{_sop_class_name(sop_class)} (Modality {modality})"


def _read_one(path: Path) -> ImageHeader | RTObject | SkippedFile:
    """Classify one file from its headers."""
    try:
        dataset = read_raw(path, stop_before_pixels=True)
    except DicomReadError as error:
        obvious = _not_dicom(path)
        if obvious is not None:
            return obvious
        return SkippedFile(path=path, kind="unreadable", reason=_reason(error, path))
    meta = dataset.file_meta
    media_class = meta.text("MediaStorageSOPClassUID") if meta is not None else None
    if media_class == DICOMDIR_SOP_CLASS:
        return SkippedFile(
            path=path,
            kind="dicomdir",
            reason="DICOMDIR index (the images it lists are read directly)",
        )
    sop_class = dataset.text("SOPClassUID") or media_class
    if "SOPClassUID" not in dataset and "Modality" not in dataset:
        return SkippedFile(
            path=path,
            kind="unreadable",
            reason="DICOM file meta but no data set (the file is probably truncated)",
        )
    truncated = _truncation(path, dataset)
    if truncated is not None:
        return SkippedFile(path=path, kind="truncated", reason=truncated)
    short = _short_pixel_data(dataset)
    if short is not None:
        return SkippedFile(path=path, kind="unreadable", reason=short)
    modality = _rt_modality(dataset)
    if modality is not None:
        try:
            return _rt_object(dataset, path, modality)
        except DicomReadError as error:  # a malformed sequence, parsed only now
            return SkippedFile(path=path, kind="unreadable", reason=_reason(error, path))
    frames = dataset.text("NumberOfFrames")
    if (frames is not None and frames != "1") or sop_class in _ENHANCED_IMAGE_CLASSES:
        return SkippedFile(
            path=path,
            kind="multiframe",
            reason=f"multi-frame image, {_description(dataset, sop_class)}, {frames or 1} "
            "frame(s): not supported yet; export the series as single-frame images",
        )
    header = image_header(dataset, path)
    if isinstance(header, SkippedFile) and "Rows" not in dataset:
        description = _description(dataset, sop_class)
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
    results: list[ImageHeader | RTObject | SkippedFile] = list(skipped)
    for index, path in enumerate(files):
        results.append(read_header(path))
        if progress is not None:
            progress(index + 1, len(files))
    return build_inventory(results, n_files=len(files))


def read_header(path: Path) -> ImageHeader | RTObject | SkippedFile:
    """Read one file's headers: an image header, an RT object, or why it is not used.

    The per-file step of :func:`scan`, for callers that read files one at a time (an
    incremental index); :func:`build_inventory` then groups the results. Never raises
    for a bad file: it becomes a :class:`SkippedFile`.
    """
    result = _read_one(path)
    if isinstance(result, SkippedFile):
        logger.debug("skipped %s: %s", path, result.reason)
    return result


def build_inventory(
    results: Iterable[ImageHeader | RTObject | SkippedFile], *, n_files: int
) -> Inventory:
    """Group per-file results of :func:`read_header` into an :class:`Inventory`.

    Images are stacked into series (duplicates and odd geometries skipped with a reason,
    as :func:`scan` does); ``n_files`` is the number of files looked at.
    """
    headers: list[ImageHeader] = []
    rt_objects: list[RTObject] = []
    skipped: list[SkippedFile] = []
    for result in results:
        if isinstance(result, ImageHeader):
            headers.append(result)
        elif isinstance(result, RTObject):
            rt_objects.append(result)
        else:
            skipped.append(result)
    series, more_skipped = assemble_series(headers)
    skipped.extend(more_skipped)
    return Inventory(
        image_series=tuple(series),
        structure_sets=tuple(o for o in rt_objects if o.modality == "RTSTRUCT"),
        doses=tuple(o for o in rt_objects if o.modality == "RTDOSE"),
        plans=tuple(o for o in rt_objects if o.modality == "RTPLAN"),
        segmentations=tuple(o for o in rt_objects if o.modality == "SEG"),
        skipped=tuple(sorted(skipped, key=lambda s: s.path)),
        n_files=n_files,
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
