"""Writing masks as one DICOM Segmentation (SEG) object with highdicom.

One segment per non-empty mask, referencing the image series the masks were rasterised
on (its files give patient, study, frame of reference and the per-frame source images;
headers only, no pixel data is read). Binary masks give a BINARY SEG, fractional ones a
FRACTIONAL SEG of type OCCUPANCY (the fraction of the voxel inside the contours) with
MaximumFractionalValue 255. Frames without any voxel of their segment are omitted.

Coded concepts come from the ROI's RT ROI Interpreted Type (:data:`RT_SEGMENT_CODES`).
SegmentAlgorithmType is AUTOMATIC when the ROI's ROIGenerationAlgorithm says AUTOMATIC,
else SEMIAUTOMATIC: the voxels are computed by rtmask (algorithm "rtmask", family "Manual
Processing", CID 7162) from contours that a person drew or checked. The SegmentLabel is
the ROI name cleaned for its VR (LO); when it differs, SegmentDescription keeps the name
as written.

highdicom needs all segments stacked in one ``(slices, rows, columns, segments)`` array;
only the rows and slices a mask covers are written (memory is allocated for those only),
and only slices where some mask is non-empty are passed on. highdicom then checks the
whole stack for overlapping segments (about half of the time for many ROIs).
"""

from __future__ import annotations

import logging
import os
import re
import unicodedata
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray
from pydicom.dataset import Dataset
from pydicom.uid import generate_uid

from rtmask import __version__
from rtmask._atomic import atomic_path
from rtmask._dicom import check_values_to_write, copy_deidentification, read_dataset
from rtmask._errors import ContourWarning, GeometryError, GeometryWarning, InvalidInputError
from rtmask._optional import import_optional
from rtmask._seg_codes import DEFAULT_SEGMENT_CODES, RT_SEGMENT_CODES, CodedTerm
from rtmask.discovery import ImageSeries
from rtmask.raster import Mask

__all__ = [
    "DEFAULT_SEGMENT_CODES",
    "RT_SEGMENT_CODES",
    "CodedTerm",
    "SegWriteReport",
    "SkippedSegment",
    "WrittenSegment",
    "segment_label",
    "write_seg",
]

logger = logging.getLogger(__name__)

_MANUFACTURER = "rtmask"
#: Longest Long String (LO) value in bytes: SegmentLabel, ContentDescription, ...
_LO_MAX_BYTES = 64
#: Longest Code String (CS) value: ContentLabel.
_CS_MAX_CHARS = 16
_MAX_FRACTIONAL_VALUE = 255
#: Source image attributes highdicom reads from the first image (Type 2: may be empty).
_TYPE2_COPIED = (
    "PatientID",
    "PatientName",
    "PatientBirthDate",
    "PatientSex",
    "AccessionNumber",
    "StudyID",
    "StudyDate",
    "StudyTime",
    "ReferringPhysicianName",
)
_CONTROL_CHARACTERS = re.compile(r"[\x00-\x1f\x7f]+")


@dataclass(frozen=True, slots=True, kw_only=True)
class WrittenSegment:
    """A segment of the SEG: its number, the ROI it came from and the label written."""

    segment_number: int
    roi_number: int
    roi_name: str
    label: str


@dataclass(frozen=True, slots=True, kw_only=True)
class SkippedSegment:
    """A mask that was not written, and why (one sentence)."""

    roi_number: int
    roi_name: str
    reason: str


@dataclass(frozen=True, slots=True, kw_only=True)
class SegWriteReport:
    """What :func:`write_seg` wrote.

    Parameters
    ----------
    path
        The SEG file.
    segments
        The segments, by segment number (1, 2, ...), with the ROI each came from.
    skipped
        Masks left out (empty ones).
    sop_instance_uid, series_instance_uid
        Identity of the new SEG.
    segmentation_type
        ``BINARY`` or ``FRACTIONAL``.
    n_frames
        Number of frames written.
    """

    path: Path
    segments: tuple[WrittenSegment, ...]
    skipped: tuple[SkippedSegment, ...]
    sop_instance_uid: str
    series_instance_uid: str
    segmentation_type: str
    n_frames: int


def _long_string(text: str) -> str:
    """Text as a Long String (LO) value: no backslash or control characters, 64 bytes.

    The limit is applied to the UTF-8 bytes (what validators such as dciodvfy count).
    """
    text = _CONTROL_CHARACTERS.sub(" ", text.replace("\\", "/")).strip()
    while len(text.encode("utf-8")) > _LO_MAX_BYTES:
        text = text[:-1]
    return text.rstrip()


def segment_label(name: str, number: int) -> str:
    """An ROI name as a SegmentLabel (LO): no backslash or control characters, 64 bytes.

    A backslash (the DICOM value separator) becomes ``/``, control characters a space;
    an empty result becomes ``ROI <number>``.
    """
    return _long_string(name) or f"ROI {number}"


def _content_label(label: str) -> str:
    """ContentLabel (CS): capitals, digits, space and underscore, 16 at most."""
    ascii_text = unicodedata.normalize("NFKD", label).encode("ascii", "ignore").decode("ascii")
    text = re.sub(r"[^A-Z0-9 _]", "_", ascii_text.upper()).strip()[:_CS_MAX_CHARS]
    return text or "RTMASK"


def _check_masks(masks: Sequence[Mask], series: ImageSeries, name: str) -> bool:
    """Raise unless every mask is on ``series.grid`` and all are of one kind; True: fractional."""
    if not masks:
        raise InvalidInputError(f"{name}: no masks to write; a SEG needs at least one segment")
    grid = series.grid
    for mask in masks:
        other = mask.grid
        if grid.mismatch(other) is not None:
            raise GeometryError(
                f"{name}: the mask of ROI {mask.roi.number} {mask.roi.name!r} is on "
                f"{other!r}, not on the grid of image series {series.series_instance_uid} "
                f"({grid!r}); rasterise the masks on series.grid"
            )
    kinds = {mask.is_fractional for mask in masks}
    if len(kinds) > 1:
        raise InvalidInputError(
            f"{name}: binary and fractional masks mixed; a SEG is either BINARY or "
            "FRACTIONAL, so write them to two files"
        )
    fractional = kinds.pop()
    if fractional:
        for mask in masks:
            low, high = float(np.min(mask.array)), float(np.max(mask.array))
            if not (np.isfinite(low) and np.isfinite(high) and low >= 0.0 and high <= 1.0):
                raise InvalidInputError(
                    f"{name}: the fractional mask of ROI {mask.roi.number} "
                    f"{mask.roi.name!r} has values from {low} to {high}, outside [0, 1]"
                )
    return fractional


def _is_written(mask: Mask) -> bool:
    """True when some voxel is stored as non-zero (a fraction rounds to 1/255 or more)."""
    if not mask.is_fractional:
        return mask.voxel_count > 0
    return mask.voxel_count > 0 and float(mask.array.max()) >= 0.5 / _MAX_FRACTIONAL_VALUE


def _source_headers(series: ImageSeries) -> list[Dataset]:
    """Headers of the series' images, made consistent where highdicom compares them."""
    headers = [read_dataset(path, headers_only=True) for path in series.files]
    first = headers[0]
    for keyword in _TYPE2_COPIED:
        if keyword not in first:
            setattr(first, keyword, "")
    # The series is one geometry group (orientation equal within 1e-4); highdicom
    # compares the DS values exactly, so give every header the first one's.
    for header in headers[1:]:
        header.ImageOrientationPatient = first.ImageOrientationPatient
    return headers


def _fill_slice_thickness(headers: Sequence[Dataset], series: ImageSeries, name: str) -> None:
    """Give headers without a usable SliceThickness the slice spacing, with a warning.

    SliceThickness is Type 2 in the CT and MR image modules (present, possibly empty),
    but the SEG's Pixel Measures need a value: the spacing of the slice planes is what
    the masks were made with, so it stands in.
    """
    missing = [
        (header, path)
        for header, path in zip(headers, series.files, strict=True)
        if not _positive(header.get("SliceThickness", None))
    ]
    if not missing:
        return
    spacing = float(series.grid.spacing_mm[0])
    if not (np.isfinite(spacing) and spacing > 0):
        raise InvalidInputError(
            f"{name}: the image series in {series.files[0].parent} has no usable "
            "SliceThickness and no slice spacing to take it from; a SEG needs one"
        )
    for header, _ in missing:
        header.SliceThickness = f"{spacing:.6g}"
    warnings.warn(
        f"{name}: {len(missing)} of {len(headers)} images have no usable SliceThickness "
        f"(first: {missing[0][1]}); the SEG states the slice spacing {spacing:.6g} mm",
        GeometryWarning,
        stacklevel=3,
    )


def _positive(value: object) -> bool:
    """True when a DS value is one finite positive number."""
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return False
    return bool(np.isfinite(number) and number > 0)


def _coded(hd: Any, term: CodedTerm) -> Any:
    return hd.sr.CodedConcept(value=term.value, scheme_designator=term.scheme, meaning=term.meaning)


def _descriptions(hd: Any, masks: Sequence[Mask]) -> list[Any]:
    algorithm = hd.AlgorithmIdentificationSequence(
        name="rtmask",
        family=hd.sr.CodedConcept(
            value="123109", scheme_designator="DCM", meaning="Manual Processing"
        ),
        version=__version__,
    )
    descriptions = []
    for number, mask in enumerate(masks, start=1):
        roi = mask.roi
        kind = (roi.interpreted_type or "").strip().upper()
        category, property_type = RT_SEGMENT_CODES.get(kind, DEFAULT_SEGMENT_CODES)
        automatic = (roi.generation_algorithm or "").strip().upper() == "AUTOMATIC"
        color = roi.color
        description = hd.seg.SegmentDescription(
            segment_number=number,
            segment_label=segment_label(roi.name, roi.number),
            segmented_property_category=_coded(hd, category),
            segmented_property_type=_coded(hd, property_type),
            algorithm_type="AUTOMATIC" if automatic else "SEMIAUTOMATIC",
            algorithm_identification=algorithm,
            display_color=(
                hd.color.CIELabColor.from_rgb(*(min(max(int(c), 0), 255) for c in color))
                if color is not None
                else None
            ),
        )
        if description.SegmentLabel != roi.name and roi.name.strip():
            # SegmentDescription (ST: backslashes allowed, 1024 characters) keeps the ROI
            # name as written when the label had to be shortened or cleaned.
            description.SegmentDescription = _CONTROL_CHARACTERS.sub(" ", roi.name)[:1024]
        descriptions.append(description)
    return descriptions


def _stack(masks: Sequence[Mask], fractional: bool) -> tuple[NDArray[Any], NDArray[np.intp]]:
    """``(planes, rows, columns, segments)`` view of the slices where any mask is non-empty.

    The stack is laid out segment-major (a transposed view), so each frame highdicom
    takes (one segment on one slice) is contiguous. Only the rows a mask covers are
    copied: memory is allocated where they are written (5x faster than whole slices for
    60 ROIs on 512 x 512 x 200).
    """
    used = np.flatnonzero(np.any([mask.voxels_per_slice > 0 for mask in masks], axis=0))
    _, rows, columns = masks[0].grid.shape
    dtype = np.float32 if fractional else np.bool_
    stack = np.zeros((len(masks), used.size, rows, columns), dtype)
    position = np.full(masks[0].grid.shape[0], -1, dtype=np.intp)
    position[used] = np.arange(used.size)
    for index, mask in enumerate(masks):
        slices = np.flatnonzero(mask.voxels_per_slice > 0)
        planes = mask.array[slices]
        covered = np.flatnonzero(planes.any(axis=(0, 2)))
        first, last = int(covered[0]), int(covered[-1]) + 1
        stack[index, position[slices], first:last] = planes[:, first:last]
    return stack.transpose(1, 2, 3, 0), used


def _available_memory_bytes() -> int | None:
    """MemAvailable from /proc/meminfo (Linux), or None when unknown."""
    try:
        with Path("/proc/meminfo").open(encoding="ascii") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def _check_fractional_memory(
    n_segments: int, n_planes: int, grid_shape: tuple[int, ...], name: str
) -> None:
    """Refuse a FRACTIONAL SEG that highdicom could not build in the memory available.

    highdicom checks fractional values with ``np.unique`` over the whole
    ``(planes, rows, columns, segments)`` float32 stack: a flattened copy, sorted, plus
    a mask, about 5 bytes per voxel on top of the stack itself.
    """
    voxels = n_segments * n_planes * grid_shape[1] * grid_shape[2]
    needed = 9 * voxels
    available = _available_memory_bytes()
    if available is not None and needed > available:
        raise InvalidInputError(
            f"{name}: a FRACTIONAL SEG of {n_segments} segments on {n_planes} slices of "
            f"{grid_shape[1]}x{grid_shape[2]} pixels needs about {needed / 1e9:.1f} GB of "
            f"memory with highdicom, {available / 1e9:.1f} GB are available; write fewer "
            "ROIs per SEG file, or binary masks"
        )


def _drop_empty(masks: Sequence[Mask], name: str) -> tuple[list[Mask], list[SkippedSegment]]:
    """The masks written as segments, and the empty ones skipped (each warned about)."""
    written: list[Mask] = []
    skipped: list[SkippedSegment] = []
    for mask in masks:
        if _is_written(mask):
            written.append(mask)
            continue
        reason = "empty mask (no voxel inside its contours on this grid)"
        skipped.append(
            SkippedSegment(roi_number=mask.roi.number, roi_name=mask.roi.name, reason=reason)
        )
        warnings.warn(
            f"{name}: ROI {mask.roi.number} {mask.roi.name!r} left out of the SEG: {reason}",
            ContourWarning,
            stacklevel=3,
        )
    if not written:
        raise InvalidInputError(
            f"{name}: every mask is empty; a SEG needs at least one non-empty segment"
        )
    return written, skipped


def _plane_positions(hd: Any, headers: Sequence[Dataset], used: NDArray[np.intp]) -> list[Any]:
    """The plane position of each source image used, in patient coordinates."""
    return [
        hd.PlanePositionSequence(
            coordinate_system="PATIENT", image_position=headers[k].ImagePositionPatient
        )
        for k in used.tolist()
    ]


def _charset(descriptions: Sequence[Any], texts: Sequence[str]) -> dict[str, Any]:
    """The character set option: UTF-8 when a segment label or text is not ASCII."""
    texts = [d.SegmentLabel for d in descriptions] + list(texts)
    options: dict[str, Any] = {}
    if not all(text.isascii() for text in texts):
        options["specific_character_set"] = "ISO_IR 192"
    return options


def _segmentation(hd: Any, name: str, **options: Any) -> Any:
    """Build highdicom's Segmentation (one instance by rtmask); its errors are rtmask's."""
    try:
        # highdicom warns about the source images' metadata (e.g. a one-component
        # PatientName); nothing the caller can act on for this file: logged instead.
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            seg = hd.seg.Segmentation(
                series_number=1,
                instance_number=1,
                manufacturer=_MANUFACTURER,
                manufacturer_model_name=_MANUFACTURER,
                software_versions=__version__,
                device_serial_number="0",
                max_fractional_value=_MAX_FRACTIONAL_VALUE,
                omit_empty_frames=True,
                **options,
            )
    except (ValueError, TypeError) as error:
        detail = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise InvalidInputError(f"{name}: highdicom cannot build the SEG: {detail}") from error
    except KeyError as error:  # highdicom's tables have no entry for the images' SOP class
        images = options.get("source_images") or [None]
        sop_class = getattr(images[0], "SOPClassUID", None)
        raise InvalidInputError(
            f"{name}: highdicom cannot build the SEG: the image series' SOPClassUID "
            f"{sop_class} is not an image storage class it knows ({error}); a DICOM SEG needs "
            "images of a standard storage class (use another --format)"
        ) from error
    for warning in caught:
        logger.info("%s: highdicom: %s", name, warning.message)
    return seg


def _written_segments(
    written: Sequence[Mask], descriptions: Sequence[Any]
) -> tuple[WrittenSegment, ...]:
    """Each segment written, numbered from 1 in order, with its ROI and label."""
    return tuple(
        WrittenSegment(
            segment_number=number,
            roi_number=mask.roi.number,
            roi_name=mask.roi.name,
            label=str(description.SegmentLabel),
        )
        for number, (mask, description) in enumerate(
            zip(written, descriptions, strict=True), start=1
        )
    )


def write_seg(
    masks: Sequence[Mask],
    series: ImageSeries,
    path: str | os.PathLike[str],
    *,
    label: str = "rtmask",
    content_description: str | None = None,
) -> SegWriteReport:
    """Write masks as one DICOM Segmentation (atomically; Part 10, explicit VR little endian).

    Parameters
    ----------
    masks
        Masks on ``series.grid``, all binary (bool) or all fractional (float32 in [0, 1]).
        Each non-empty mask becomes a segment, numbered 1, 2, ... in the given order.
    series
        The image series the masks were rasterised on; the SEG references its images and
        copies its patient, study and frame of reference.
    path
        The file to write; its folder must exist.
    label
        ContentLabel (made a valid Code String: capitals, digits, space, ``_``) and
        SeriesDescription.
    content_description
        ContentDescription (at most 64 characters are kept).

    Returns
    -------
    SegWriteReport
        The segments written and the masks skipped.

    Warns
    -----
    ContourWarning
        For each empty mask (no voxel inside its contours on this grid): it is left out.

    Raises
    ------
    GeometryError
        A mask is not on ``series.grid`` (shape, affine, slice positions or frame of
        reference differ).
    InvalidInputError
        No masks, only empty masks, binary and fractional masks mixed, fractional
        values outside [0, 1], or fractional masks too many for the memory available
        (highdicom needs about 9 bytes per voxel of segments x slices used x rows x
        columns).
    DicomReadError
        An image of the series cannot be read.
    MissingDependencyError
        highdicom is not installed (``pip install 'rtmask[seg]'``).
    """
    final = Path(path)
    name = os.fspath(final)
    fractional = _check_masks(masks, series, name)
    hd = import_optional("highdicom", extra="seg", feature="DICOM SEG files")
    written, skipped = _drop_empty(masks, name)
    if fractional:
        planes = np.any([mask.voxels_per_slice > 0 for mask in written], axis=0)
        _check_fractional_memory(len(written), int(planes.sum()), series.grid.shape, name)
    headers = _source_headers(series)
    _fill_slice_thickness(headers, series, name)
    pixels, used = _stack(written, fractional)
    positions = _plane_positions(hd, headers, used)
    descriptions = _descriptions(hd, written)
    options = _charset(descriptions, [label, content_description or ""])
    sop_uid, series_uid = generate_uid(), generate_uid()
    segmentation_type = "FRACTIONAL" if fractional else "BINARY"
    seg = _segmentation(
        hd,
        name,
        source_images=headers,
        pixel_array=pixels,
        segmentation_type=segmentation_type,
        segment_descriptions=descriptions,
        series_instance_uid=series_uid,
        sop_instance_uid=sop_uid,
        fractional_type="OCCUPANCY" if fractional else None,
        content_label=_content_label(label),
        content_description=(_long_string(content_description) if content_description else None),
        series_description=_long_string(label) or None,
        plane_positions=positions,
        **options,
    )
    copy_deidentification(seg, headers[0])
    check_values_to_write(seg, final)
    with atomic_path(final) as temporary:
        seg.save_as(temporary, enforce_file_format=True)
    segments = _written_segments(written, descriptions)
    logger.debug(
        "wrote SEG %s: %d segments, %d frames", name, len(segments), int(seg.NumberOfFrames)
    )
    return SegWriteReport(
        path=final,
        segments=segments,
        skipped=tuple(skipped),
        sop_instance_uid=str(sop_uid),
        series_instance_uid=str(series_uid),
        segmentation_type=segmentation_type,
        n_frames=int(seg.NumberOfFrames),
    )
