"""Reading DICOM Segmentation (SEG) objects back as masks on the grid of an image series.

Frames are placed by their plane position (PlanePositionSequence > ImagePositionPatient),
never by frame order: each frame must lie in one slice plane of the grid, with the grid's
orientation and pixel spacing and an in-plane offset of whole pixels. BINARY frames are
bit-packed continuously across frame boundaries (PS3.5 8.1.1: frame ``f`` starts at bit
``f * rows * columns``, least significant bit first); FRACTIONAL frames hold 0 ..
MaximumFractionalValue; LABELMAP frames hold segment numbers. Uncompressed transfer
syntaxes are decoded here with numpy; compressed ones through pydicom's decoders.

Coded concepts map back to RT ROI Interpreted Types through the table the writer uses
(:data:`rtmask._seg_codes.RT_SEGMENT_CODES`).
"""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray
from pydicom.dataset import Dataset
from pydicom.uid import UID

from rtmask._dicom import int_or_none, read_dataset, text_or_none
from rtmask._errors import DicomReadError, GeometryError, InvalidInputError, RtmaskWarning
from rtmask._seg_codes import RT_SEGMENT_CODES, CodedTerm
from rtmask.discovery import ImageSeries
from rtmask.geometry import ImageGrid
from rtmask.raster import Mask
from rtmask.raster._memory import sparse_zeros
from rtmask.rtstruct import ROI

__all__ = [
    "SEGMENTATION_SOP_CLASSES",
    "SegInfo",
    "SegmentInfo",
    "interpreted_type_of",
    "lab_to_rgb",
    "read_seg",
    "read_seg_info",
]

logger = logging.getLogger(__name__)

#: SOP classes read here: Segmentation Storage and Label Map Segmentation Storage.
SEGMENTATION_SOP_CLASSES = {
    "1.2.840.10008.5.1.4.1.1.66.4": "Segmentation",
    "1.2.840.10008.5.1.4.1.1.66.7": "Label Map Segmentation",
}

#: A frame must lie within this fraction of the slice gap of a slice plane, and its
#: in-plane origin within this fraction of a pixel of a pixel centre.
POSITION_TOLERANCE_FRACTION = 0.02
#: Orientation cosines may differ by this much from the grid's.
ORIENTATION_TOLERANCE = 1e-3


#: Older SEGs (e.g. dcmqi before 2020) code targets with SNOMED RT identifiers.
_LEGACY_TYPE_CODES = {
    ("SRT", "R-429EC"): "PTV",
    ("SRT", "R-429EB"): "CTV",
    ("SRT", "R-429E0"): "GTV",
    ("SRT", "R-429DF"): "IRRAD_VOLUME",
}

_BY_PAIR = {
    (category.key, kind.key): rt_type for rt_type, (category, kind) in RT_SEGMENT_CODES.items()
}


def _types_naming_one_interpreted_type() -> dict[tuple[str, str], str]:
    """Property types that name one interpreted type whatever the category (e.g. PTV)."""
    uses: dict[tuple[str, str], list[str]] = {}
    for rt_type, (_, kind) in RT_SEGMENT_CODES.items():
        uses.setdefault(kind.key, []).append(rt_type)
    unique = {key: names[0] for key, names in uses.items() if len(names) == 1}
    return {**unique, **_LEGACY_TYPE_CODES}


_BY_TYPE = _types_naming_one_interpreted_type()


def interpreted_type_of(
    category: tuple[str, str] | None, property_type: tuple[str, str] | None
) -> str | None:
    """The RT ROI Interpreted Type that a ``(scheme, value)`` category and type stand for.

    The pair must be one of :data:`RT_SEGMENT_CODES`, or the type one that names a single
    interpreted type there (PTV, GTV, Organ, ...) whatever the category. Returns None for
    any other concept (including the generic Tissue).
    """
    if property_type is None:
        return None
    if category is not None and (category, property_type) in _BY_PAIR:
        return _BY_PAIR[category, property_type]
    return _BY_TYPE.get(property_type)


def lab_to_rgb(value: Sequence[int]) -> tuple[int, int, int]:
    """Convert a DICOM CIELab triplet (3 x uint16, PS3.3 C.10.7.1.1) to sRGB 0-255.

    L* is scaled 0..100 -> 0..65535, a* and b* -128..127 -> 0..65535; the white point is
    D65 and out-of-gamut colours are clipped (the pixelmed / highdicom formulas).
    """
    l_value, a_value, b_value = (float(v) for v in value)
    l_star = l_value * 100.0 / 0xFFFF
    a_star = a_value * 255.0 / 0xFFFF - 128.0
    b_star = b_value * 255.0 / 0xFFFF - 128.0
    fy = (l_star + 16.0) / 116.0
    f = np.array([a_star / 500.0 + fy, fy, fy - b_star / 200.0])
    xyz = np.where(f**3 > 0.008856, f**3, (f - 16.0 / 116.0) / 7.787)
    xyz *= np.array([0.95047, 1.0, 1.08883])
    matrix = np.array(
        [[3.2406, -1.5372, -0.4986], [-0.9689, 1.8758, 0.0415], [0.0557, -0.2040, 1.0570]]
    )
    linear = matrix @ xyz
    srgb = np.where(
        linear > 0.0031308,
        1.055 * np.abs(linear) ** (1 / 2.4) - 0.055,
        12.92 * linear,
    )
    rgb = np.clip(np.rint(srgb * 255.0), 0, 255).astype(int)
    return (int(rgb[0]), int(rgb[1]), int(rgb[2]))


@dataclass(frozen=True, slots=True, kw_only=True)
class SegmentInfo:
    """One segment of a SEG: number, label, display colour and what it represents.

    ``interpreted_type`` is the RT ROI Interpreted Type the coded concepts stand for
    (:func:`interpreted_type_of`), or None. ``category`` and ``property_type`` are the
    SegmentedPropertyCategory / Type codes as written.
    """

    number: int
    label: str
    color: tuple[int, int, int] | None
    interpreted_type: str | None
    category: CodedTerm | None = None
    property_type: CodedTerm | None = None
    algorithm_type: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class SegInfo:
    """What a SEG file says about itself (headers only): identity, references, segments.

    ``referenced_series_uids`` and ``referenced_sop_instance_uids`` come from the
    ReferencedSeriesSequence and the frames' DerivationImageSequence; they link the SEG
    to the image series it was made on.
    """

    path: Path
    sop_instance_uid: str | None
    series_instance_uid: str | None
    study_instance_uid: str | None
    patient_id: str | None
    frame_of_reference_uid: str | None
    referenced_series_uids: tuple[str, ...]
    referenced_sop_instance_uids: tuple[str, ...]
    segments: tuple[SegmentInfo, ...]
    segmentation_type: str
    fractional_type: str | None
    max_fractional_value: int | None
    rows: int
    columns: int
    number_of_frames: int


# ----------------------------------------------------------------------------- headers
def _first(dataset: Dataset | None, keyword: str) -> Dataset | None:
    """The first item of a sequence, or None."""
    if dataset is None:
        return None
    sequence = dataset.get(keyword)
    return sequence[0] if sequence else None


def _code(item: Dataset, keyword: str) -> CodedTerm | None:
    code = _first(item, keyword)
    if code is None:
        return None
    value = text_or_none(code.get("CodeValue")) or text_or_none(code.get("LongCodeValue"))
    value = value or text_or_none(code.get("URNCodeValue"))
    scheme = text_or_none(code.get("CodingSchemeDesignator")) or ""
    if value is None:
        return None
    return CodedTerm(value, scheme, text_or_none(code.get("CodeMeaning")) or "")


def _segment_info(item: Dataset, name: str) -> SegmentInfo:
    number = int_or_none(item.get("SegmentNumber"))
    if number is None:
        raise InvalidInputError(f"{name}: a SegmentSequence item has no SegmentNumber")
    category = _code(item, "SegmentedPropertyCategoryCodeSequence")
    property_type = _code(item, "SegmentedPropertyTypeCodeSequence")
    lab = item.get("RecommendedDisplayCIELabValue")
    color = lab_to_rgb([int(v) for v in lab]) if lab is not None and len(lab) == 3 else None
    return SegmentInfo(
        number=number,
        label=text_or_none(item.get("SegmentLabel")) or f"Segment {number}",
        color=color,
        interpreted_type=interpreted_type_of(
            category.key if category else None, property_type.key if property_type else None
        ),
        category=category,
        property_type=property_type,
        algorithm_type=text_or_none(item.get("SegmentAlgorithmType")),
    )


def _check_is_seg(dataset: Dataset, name: str) -> str:
    """Return the SOP class UID; raise InvalidInputError when the file is not a SEG."""
    sop_class = text_or_none(dataset.get("SOPClassUID")) or text_or_none(
        dataset.file_meta.get("MediaStorageSOPClassUID") if dataset.file_meta else None
    )
    if sop_class in SEGMENTATION_SOP_CLASSES:
        return sop_class
    modality = text_or_none(dataset.get("Modality")) or "unknown modality"
    kind = f"a {modality} object (SOP class {sop_class})" if sop_class else f"a {modality} object"
    raise InvalidInputError(
        f"{name}: is {kind}, not a DICOM Segmentation (SEG); give a SEG file "
        "(SOP class 1.2.840.10008.5.1.4.1.1.66.4)"
    )


def _referenced(dataset: Dataset) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Referenced series UIDs and SOP instance UIDs, in order of first appearance."""
    series: dict[str, None] = {}
    instances: dict[str, None] = {}
    for item in dataset.get("ReferencedSeriesSequence") or []:
        uid = text_or_none(item.get("SeriesInstanceUID"))
        if uid:
            series[uid] = None
        for reference in item.get("ReferencedInstanceSequence") or []:
            instance = text_or_none(reference.get("ReferencedSOPInstanceUID"))
            if instance:
                instances[instance] = None
    groups = list(dataset.get("SharedFunctionalGroupsSequence") or [])
    groups += list(dataset.get("PerFrameFunctionalGroupsSequence") or [])
    for group in groups:
        for derivation in group.get("DerivationImageSequence") or []:
            for source in derivation.get("SourceImageSequence") or []:
                instance = text_or_none(source.get("ReferencedSOPInstanceUID"))
                if instance:
                    instances[instance] = None
    return tuple(series), tuple(instances)


def _info(dataset: Dataset, path: Path) -> SegInfo:
    name = os.fspath(path)
    _check_is_seg(dataset, name)
    segments = tuple(
        sorted(
            (_segment_info(item, name) for item in dataset.get("SegmentSequence") or []),
            key=lambda segment: segment.number,
        )
    )
    segmentation_type = (text_or_none(dataset.get("SegmentationType")) or "").upper()
    if segmentation_type == "LABELMAP":
        segments = tuple(segment for segment in segments if segment.number != 0)
    if not segments:
        raise InvalidInputError(f"{name}: the SEG describes no segment (empty SegmentSequence)")
    series_uids, instance_uids = _referenced(dataset)
    return SegInfo(
        path=path,
        sop_instance_uid=text_or_none(dataset.get("SOPInstanceUID")),
        series_instance_uid=text_or_none(dataset.get("SeriesInstanceUID")),
        study_instance_uid=text_or_none(dataset.get("StudyInstanceUID")),
        patient_id=text_or_none(dataset.get("PatientID")),
        frame_of_reference_uid=text_or_none(dataset.get("FrameOfReferenceUID")),
        referenced_series_uids=series_uids,
        referenced_sop_instance_uids=instance_uids,
        segments=segments,
        segmentation_type=segmentation_type,
        fractional_type=text_or_none(dataset.get("SegmentationFractionalType")),
        max_fractional_value=int_or_none(dataset.get("MaximumFractionalValue")),
        rows=int_or_none(dataset.get("Rows")) or 0,
        columns=int_or_none(dataset.get("Columns")) or 0,
        number_of_frames=int_or_none(dataset.get("NumberOfFrames")) or 1,
    )


def read_seg_info(path: str | os.PathLike[str]) -> SegInfo:
    """Read a SEG file's identity, references and segment descriptions (no pixel data).

    Raises
    ------
    DicomReadError
        The file cannot be read as DICOM.
    InvalidInputError
        The file is DICOM but not a Segmentation, or describes no segment.
    """
    dataset = read_dataset(path, headers_only=True)
    return _info(dataset, Path(path))


# ----------------------------------------------------------------------------- frames
@dataclass(frozen=True, slots=True)
class _Frames:
    """Per-frame geometry: positions ``(F, 3)`` mm, segment numbers ``(F,)`` (0: none)."""

    positions_mm: NDArray[np.float64]
    segment_numbers: NDArray[np.int64]
    orientations: NDArray[np.float64]  # (F, 6)
    spacings_mm: NDArray[np.float64]  # (F, 2)


def _group_value(frame: Dataset | None, shared: Dataset | None, sequence: str, keyword: str) -> Any:
    """A functional-group value of one frame: per-frame group first, then the shared one."""
    for group in (frame, shared):
        item = _first(group, sequence)
        if item is not None and keyword in item:
            return item[keyword].value
    return None


def _floats(value: Any, count: int, what: str, name: str, frame: int) -> list[float]:
    try:
        numbers = [float(v) for v in value]
    except (TypeError, ValueError):
        numbers = []
    if len(numbers) != count or not np.all(np.isfinite(numbers)):
        raise InvalidInputError(
            f"{name}: frame {frame} has no valid {what} ({count} numbers expected); the SEG "
            "cannot be placed on the image grid"
        )
    return numbers


def _frames(dataset: Dataset, name: str, n_frames: int, labelmap: bool) -> _Frames:
    shared = _first(dataset, "SharedFunctionalGroupsSequence")
    per_frame = list(dataset.get("PerFrameFunctionalGroupsSequence") or [])
    if len(per_frame) not in (0, n_frames) or (not per_frame and n_frames != 1):
        raise InvalidInputError(
            f"{name}: {len(per_frame)} PerFrameFunctionalGroupsSequence items for "
            f"{n_frames} frames (tiled or damaged SEG); only patient-space SEGs with one "
            "item per frame are supported"
        )
    positions = np.empty((n_frames, 3))
    orientations = np.empty((n_frames, 6))
    spacings = np.empty((n_frames, 2))
    segments = np.zeros(n_frames, dtype=np.int64)
    for index in range(n_frames):
        item = per_frame[index] if per_frame else None
        frame = index + 1
        position = _group_value(item, shared, "PlanePositionSequence", "ImagePositionPatient")
        orientation = _group_value(
            item, shared, "PlaneOrientationSequence", "ImageOrientationPatient"
        )
        spacing = _group_value(item, shared, "PixelMeasuresSequence", "PixelSpacing")
        positions[index] = _floats(position, 3, "ImagePositionPatient", name, frame)
        orientations[index] = _floats(orientation, 6, "ImageOrientationPatient", name, frame)
        spacings[index] = _floats(spacing, 2, "PixelSpacing", name, frame)
        if not labelmap:
            number = int_or_none(
                _group_value(
                    item, shared, "SegmentIdentificationSequence", "ReferencedSegmentNumber"
                )
            )
            if number is None:
                raise InvalidInputError(
                    f"{name}: frame {frame} names no segment "
                    "(SegmentIdentificationSequence > ReferencedSegmentNumber)"
                )
            segments[index] = number
    return _Frames(positions, segments, orientations, spacings)


def _check_plane_geometry(frames: _Frames, grid: ImageGrid, name: str) -> None:
    """Orientation and pixel spacing of every frame must be the grid's."""
    expected = np.array(grid.orientation)
    wrong = np.flatnonzero(
        np.abs(frames.orientations - expected).max(axis=1) > ORIENTATION_TOLERANCE
    )
    if wrong.size:
        found = ", ".join(f"{v:.4g}" for v in frames.orientations[wrong[0]])
        grid_text = ", ".join(f"{v:.4g}" for v in expected)
        raise GeometryError(
            f"{name}: frame {wrong[0] + 1} has orientation [{found}], the image series "
            f"[{grid_text}]; the SEG was made on other images (give its own image series)"
        )
    spacing = np.array(grid.spacing_mm[1:])
    wrong = np.flatnonzero(
        ~np.all(np.isclose(frames.spacings_mm, spacing, rtol=1e-3, atol=1e-4), axis=1)
    )
    if wrong.size:
        found = " x ".join(f"{v:.6g}" for v in frames.spacings_mm[wrong[0]])
        grid_text = " x ".join(f"{v:.6g}" for v in spacing)
        raise GeometryError(
            f"{name}: frame {wrong[0] + 1} has pixel spacing {found} mm, the image series "
            f"{grid_text} mm; the SEG was made on other images (give its own image series)"
        )


def _place(
    frames: _Frames, grid: ImageGrid, rows: int, columns: int, name: str
) -> tuple[NDArray[np.intp], NDArray[np.intp], NDArray[np.intp]]:
    """Slice index and in-plane (row, column) offset of every frame on ``grid``."""
    planes = grid.slice_positions_mm
    distances = frames.positions_mm @ grid.normal
    slices = np.abs(distances[:, None] - planes[None, :]).argmin(axis=1)
    gaps = grid.slice_gaps_mm
    plane_tolerance = POSITION_TOLERANCE_FRACTION * (
        float(gaps.min()) if gaps.size else grid.spacing_mm[0]
    )
    off_plane = np.flatnonzero(np.abs(distances - planes[slices]) > max(plane_tolerance, 1e-3))
    if off_plane.size:
        index = off_plane[0]
        where = ", ".join(f"{v:.2f}" for v in frames.positions_mm[index])
        raise GeometryError(
            f"{name}: frame {index + 1} at ({where}) mm lies on no slice plane of the image "
            f"series ({distances[index]:.3f} mm along the normal, nearest slice "
            f"{planes[slices[index]]:.3f} mm); the SEG was made on other images"
        )
    offsets = frames.positions_mm - grid.slice_origins_mm()[slices]
    _, row_mm, column_mm = grid.spacing_mm
    row_index = offsets @ grid.column_direction / row_mm
    column_index = offsets @ grid.row_direction / column_mm
    row0, column0 = np.rint(row_index).astype(np.intp), np.rint(column_index).astype(np.intp)
    misaligned = np.flatnonzero(
        (np.abs(row_index - row0) > POSITION_TOLERANCE_FRACTION)
        | (np.abs(column_index - column0) > POSITION_TOLERANCE_FRACTION)
    )
    outside = np.flatnonzero(
        (row0 < 0)
        | (column0 < 0)
        | (row0 + rows > grid.shape[1])
        | (column0 + columns > grid.shape[2])
    )
    for bad, why in (
        (misaligned, "lies between the pixel centres"),
        (
            outside,
            f"with {rows}x{columns} pixels does not fit in the {grid.shape[1]}x"
            f"{grid.shape[2]} images",
        ),
    ):
        if bad.size:
            index = bad[0]
            where = ", ".join(f"{v:.2f}" for v in frames.positions_mm[index])
            raise GeometryError(
                f"{name}: frame {index + 1} at ({where}) mm {why} of the image series (it "
                f"starts at row {row_index[index]:.3f}, column {column_index[index]:.3f}); "
                "the SEG was made on other images"
            )
    return slices.astype(np.intp), row0, column0


# ----------------------------------------------------------------------------- pixels
def _transfer_syntax(dataset: Dataset) -> UID | None:
    """The file's transfer syntax, or None for a bare dataset without file meta."""
    meta = getattr(dataset, "file_meta", None)
    value = meta.get("TransferSyntaxUID") if meta is not None else None
    return UID(str(value)) if value else None


def _little_endian(dataset: Dataset) -> bool:
    syntax = _transfer_syntax(dataset)
    if syntax is not None and syntax.is_transfer_syntax:
        return bool(syntax.is_little_endian)
    encoding = dataset.original_encoding[1]
    return True if encoding is None else bool(encoding)


def _native_frames(
    dataset: Dataset, name: str, *, n_frames: int, rows: int, columns: int, bits: int
) -> NDArray[Any]:
    """Uncompressed pixel data: the packed bytes (1 bit) or ``(F, rows, columns)`` values."""
    raw = dataset.get("PixelData")
    if raw is None:
        raise InvalidInputError(f"{name}: the SEG has no PixelData")
    buffer = np.frombuffer(raw, dtype=np.uint8)
    pixels = n_frames * rows * columns
    if bits == 1:
        if buffer.size * 8 < pixels:
            raise DicomReadError(
                f"{name}: PixelData holds {buffer.size * 8} bits for {n_frames} frames of "
                f"{rows}x{columns} pixels; the file is truncated or damaged"
            )
        return buffer
    if bits not in (8, 16):
        raise InvalidInputError(f"{name}: BitsAllocated {bits} is not valid for a SEG")
    little = _little_endian(dataset)
    dtype = np.dtype(np.uint8) if bits == 8 else np.dtype("<u2" if little else ">u2")
    if buffer.size < pixels * dtype.itemsize:
        raise DicomReadError(
            f"{name}: PixelData holds {buffer.size} bytes for {n_frames} frames of "
            f"{rows}x{columns} {bits}-bit pixels; the file is truncated or damaged"
        )
    return np.frombuffer(raw, dtype=dtype, count=pixels).reshape(n_frames, rows, columns)


def _decoded_frames(
    dataset: Dataset, name: str, *, n_frames: int, rows: int, columns: int
) -> NDArray[Any]:
    """Compressed pixel data decoded by pydicom (needs its decoders for the syntax)."""
    syntax = _transfer_syntax(dataset)
    try:
        values = np.asarray(dataset.pixel_array)
    except Exception as error:  # pydicom raises many kinds for missing decoders
        detail = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise DicomReadError(
            f"{name}: cannot decode the SEG pixel data ({syntax.name if syntax else '?'}: "
            f"{detail}); install "
            "the pydicom decoder for it (e.g. pylibjpeg) or convert the file to explicit VR "
            "little endian"
        ) from error
    if values.size != n_frames * rows * columns:
        raise DicomReadError(
            f"{name}: the decoded pixel data has shape {values.shape}, not {n_frames} frames "
            f"of {rows}x{columns} pixels; the file is damaged"
        )
    return values.reshape(n_frames, rows, columns)


def _bits(packed: NDArray[np.uint8], frame: int, size: int) -> NDArray[np.bool_]:
    """Frame ``frame`` of a continuously bit-packed buffer, least significant bit first."""
    start = frame * size
    first, offset = divmod(start, 8)
    stop = -(-(start + size) // 8)
    bits = np.unpackbits(packed[first:stop], bitorder="little")
    return bits[offset : offset + size].view(np.bool_)


def _check_header(info: SegInfo, grid: ImageGrid, name: str) -> None:
    """Refuse another frame of reference, no Rows or Columns, an unknown SegmentationType."""
    if (
        info.frame_of_reference_uid
        and grid.frame_of_reference_uid
        and info.frame_of_reference_uid != grid.frame_of_reference_uid
    ):
        raise GeometryError(
            f"{name}: the SEG is in frame of reference {info.frame_of_reference_uid}, the "
            f"image series in {grid.frame_of_reference_uid}; give the series the SEG was made on"
        )
    if info.rows < 1 or info.columns < 1:
        raise InvalidInputError(f"{name}: the SEG has no valid Rows and Columns")
    if info.segmentation_type not in ("BINARY", "FRACTIONAL", "LABELMAP"):
        raise InvalidInputError(
            f"{name}: SegmentationType {info.segmentation_type or '(missing)'} is not "
            "BINARY, FRACTIONAL or LABELMAP"
        )


def _add_frame(
    arrays: dict[int, NDArray[Any]],
    frame: NDArray[Any],
    window: tuple[int, slice, slice],
    number: int | None,
    max_fractional_value: int | None,
) -> set[int]:
    """Add one frame to its segment's mask; return the segment numbers without a mask.

    ``number`` None is a LABELMAP frame: every value is its own segment. Binary frames
    are OR-ed in, fractional ones (float32 masks) scaled by ``max_fractional_value`` and
    combined by maximum.
    """
    if number is None:
        unknown = set()
        for value in np.unique(frame):
            if int(value) in arrays:
                arrays[int(value)][window] |= frame == value
            elif value:
                unknown.add(int(value))
        return unknown
    if number not in arrays:
        return {number}
    target = arrays[number]
    if target.dtype == np.float32:
        scale = float(max_fractional_value or 255)
        fraction = np.minimum(frame.astype(np.float32) / np.float32(scale), np.float32(1))
        np.maximum(target[window], fraction, out=target[window])
    else:
        target[window] |= frame.astype(np.bool_)
    return set()


def read_seg(path: str | os.PathLike[str], series: ImageSeries) -> list[Mask]:
    """Read every segment of a SEG file as a mask on ``series.grid``.

    Frames are placed by their ImagePositionPatient, never by their order; every frame
    must lie in a slice plane of the grid, with its orientation and pixel spacing (frames
    smaller than the image are placed at their whole-pixel offset). Segments without
    frames give empty masks.

    Parameters
    ----------
    path
        The SEG file (BINARY, FRACTIONAL or LABELMAP; any transfer syntax that pydicom
        can decode, uncompressed ones without extra packages).
    series
        The image series the SEG was made on.

    Returns
    -------
    list of Mask
        One per segment, by segment number: ``(slices, rows, columns)`` bool for BINARY
        and LABELMAP, float32 fractions (value / MaximumFractionalValue) for FRACTIONAL.
        ``Mask.roi`` has the segment number, SegmentLabel, the display colour as RGB and
        the RT ROI Interpreted Type the coded concepts stand for (or None).

    Raises
    ------
    DicomReadError
        The file cannot be read, or its pixel data is truncated or cannot be decoded.
    InvalidInputError
        The file is not a SEG, or lacks what is needed to place its frames.
    GeometryError
        The SEG is in another frame of reference, or a frame does not lie on the grid
        (orientation, pixel spacing, position), named with its position.

    Warns
    -----
    RtmaskWarning
        Frames naming a segment that the SegmentSequence does not describe (left out).
    """
    source = Path(path)
    name = os.fspath(source)
    dataset = read_dataset(source)
    info = _info(dataset, source)
    grid = series.grid
    _check_header(info, grid, name)
    rows, columns, n_frames = info.rows, info.columns, info.number_of_frames
    labelmap = info.segmentation_type == "LABELMAP"
    fractional = info.segmentation_type == "FRACTIONAL"
    frames = _frames(dataset, name, n_frames, labelmap)
    _check_plane_geometry(frames, grid, name)
    slices, row0, column0 = _place(frames, grid, rows, columns, name)

    bits = int_or_none(dataset.get("BitsAllocated")) or (
        1 if info.segmentation_type == "BINARY" else 8
    )
    syntax = _transfer_syntax(dataset)
    compressed = bool(syntax is not None and syntax.is_compressed)
    packed = bits == 1 and not compressed
    data = (
        _decoded_frames(dataset, name, n_frames=n_frames, rows=rows, columns=columns)
        if compressed
        else _native_frames(dataset, name, n_frames=n_frames, rows=rows, columns=columns, bits=bits)
    )
    dtype = np.float32 if fractional else np.bool_
    numbers = [segment.number for segment in info.segments]
    arrays: dict[int, NDArray[Any]] = {
        number: sparse_zeros(grid.shape, dtype) for number in numbers
    }
    unknown: set[int] = set()
    for index in range(n_frames):
        frame = _bits(data, index, rows * columns).reshape(rows, columns) if packed else data[index]
        window = (
            int(slices[index]),
            slice(int(row0[index]), int(row0[index]) + rows),
            slice(int(column0[index]), int(column0[index]) + columns),
        )
        number = None if labelmap else int(frames.segment_numbers[index])
        unknown |= _add_frame(arrays, frame, window, number, info.max_fractional_value)
    if unknown:
        warnings.warn(
            f"{name}: frames of segment(s) {sorted(unknown)} that the SegmentSequence does "
            "not describe were left out",
            RtmaskWarning,
            stacklevel=2,
        )
    masks = []
    for segment in info.segments:
        array = arrays[segment.number]
        roi = ROI(
            number=segment.number,
            name=segment.label,
            color=segment.color,
            interpreted_type=segment.interpreted_type,
        )
        masks.append(Mask(array=array, grid=grid, roi=roi))
    logger.debug("read SEG %s: %d segments, %d frames", name, len(masks), n_frames)
    return masks
