"""Write synthetic CT series, RT Structure Sets and RT Doses with pydicom.

For tests, benchmarks and ``rtmask demo``: every file is valid DICOM that other tools
(SimpleITK/GDCM, pydicom, treatment planning viewers) read, and the geometry comes from
an :class:`~rtmask.geometry.ImageGrid`, so expected values can be computed analytically.
Keyword options write deliberately awkward or defective files (shuffled file names, no
preamble, wrong point counts, reversed dose frames).
"""

from __future__ import annotations

import contextlib
import datetime
import logging
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray
from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence as DicomSequence
from pydicom.tag import Tag
from pydicom.uid import (
    UID,
    CTImageStorage,
    ExplicitVRLittleEndian,
    RTDoseStorage,
    RTPlanStorage,
    RTStructureSetStorage,
    generate_uid,
)

from rtmask.geometry import ImageGrid

__all__ = [
    "CTSeries",
    "RoiSpec",
    "format_ds",
    "write_ct_series",
    "write_rtdose",
    "write_rtstruct",
]

logger = logging.getLogger(__name__)

FileNames = Literal["ordered", "shuffled", "no_extension"]
InstanceNumbers = Literal["ordered", "reversed", "shuffled"]

_CONTOUR_DATA = Tag(0x30060050)
_GRID_FRAME_OFFSET_VECTOR = Tag(0x3004000C)
_MANUFACTURER = "rtmask synthetic"
#: The longest DICOM Decimal String value.
_DS_MAX_CHARS = 16

#: PatientPosition implied by the dominant direction of the column cosine (image "down").
_POSITION_BY_COLUMN_DIRECTION = {
    (1, 1): "HFS",  # +y: posterior at the bottom of the image -> supine
    (1, -1): "HFP",
    (0, 1): "HFDL",  # +x: patient left at the bottom -> lying on the left side
    (0, -1): "HFDR",
}


def format_ds(value: float, number_format: str | None = None) -> str:
    """Format a number as a DICOM DS value (at most 16 characters).

    Parameters
    ----------
    value
        A finite number.
    number_format
        A printf-style format such as ``"%.6g"`` or ``"%.2f"``; None gives the shortest text
        that round-trips exactly when that fits in 16 characters, else the most significant
        digits that fit.

    Raises
    ------
    ValueError
        For a non-finite value, or a format that gives more than 16 characters.
    """
    number = float(value)
    if not math.isfinite(number):
        raise ValueError(f"DS values must be finite, got {number}")
    if number_format is not None:
        text = number_format % number
        if len(text) > _DS_MAX_CHARS:
            raise ValueError(f"{number_format!r} gives {text!r}, longer than 16 characters")
        return text
    text = repr(number)
    if len(text) <= _DS_MAX_CHARS:
        return text
    for precision in range(15, 0, -1):
        text = f"{number:.{precision}g}"
        if len(text) <= _DS_MAX_CHARS:
            return text
    raise ValueError(f"cannot write {number!r} in 16 characters")  # pragma: no cover


def _ds_list(values: ArrayLike, number_format: str | None = None) -> list[str]:
    return [format_ds(v, number_format) for v in np.asarray(values, dtype=np.float64).ravel()]


def _ds_raw(values: NDArray[np.float64], number_format: str | None) -> bytes:
    """Encode numbers as one backslash-separated DS value, padded to even length.

    Non-finite numbers (only ever passed on purpose, to write a defective file) are
    written as ``nan``, ``inf`` or ``-inf``.
    """
    texts = [
        format_ds(v, number_format) if math.isfinite(v) else repr(v)
        for v in np.asarray(values, dtype=np.float64).ravel().tolist()
    ]
    raw = "\\".join(texts).encode("ascii")
    return raw + b" " if len(raw) % 2 else raw


def _file_meta(sop_class_uid: str, sop_instance_uid: str, transfer_syntax: str) -> FileMetaDataset:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = UID(sop_class_uid)
    meta.MediaStorageSOPInstanceUID = UID(sop_instance_uid)
    meta.TransferSyntaxUID = UID(transfer_syntax)
    meta.ImplementationVersionName = "RTMASK_SYN"
    return meta


def _save(dataset: Dataset, path: Path, *, preamble: bool = True) -> None:
    """Write a Part 10 file (preamble, DICM, file meta, explicit VR LE) or a bare dataset.

    Written to a hidden temporary file renamed onto ``path``, so a full disk or an
    interruption never leaves a half-written file (an ``OSError`` names ``path``).
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        if preamble:
            dataset.file_meta = _file_meta(
                str(dataset.SOPClassUID), str(dataset.SOPInstanceUID), ExplicitVRLittleEndian
            )
            dataset.save_as(temporary, enforce_file_format=True)
        else:
            # No preamble, no DICM prefix, no file meta: implicit VR little endian, as in
            # pydicom's own test file rtstruct.dcm.
            dataset.save_as(temporary, implicit_vr=True, little_endian=True)
        temporary.replace(path)
    except BaseException as error:
        with contextlib.suppress(OSError):
            temporary.unlink()
        if isinstance(error, OSError) and error.filename in (None, str(temporary)):
            error.filename = str(path)
        raise


def _now() -> tuple[str, str]:
    now = datetime.datetime.now()  # DICOM dates and times are local
    return now.strftime("%Y%m%d"), now.strftime("%H%M%S")


def _patient_position(grid: ImageGrid) -> str:
    column = grid.column_direction
    axis = int(np.argmax(np.abs(column)))
    return _POSITION_BY_COLUMN_DIRECTION.get((axis, int(np.sign(column[axis]))), "HFS")


def _order(kind: str, n: int, rng: np.random.Generator) -> NDArray[np.intp]:
    """A permutation of ``range(n)``: identity, reversed, or shuffled but never monotonic."""
    if kind == "ordered":
        return np.arange(n)
    if kind == "reversed":
        return np.asarray(np.arange(n)[::-1], dtype=np.intp)
    if kind != "shuffled":
        raise ValueError(f"unknown order {kind!r}")
    order = rng.permutation(n)
    if n >= 3:
        while np.all(np.diff(order) > 0) or np.all(np.diff(order) < 0):
            order = rng.permutation(n)
    elif n == 2:
        order = np.array([1, 0])
    return np.asarray(order, dtype=np.intp)


# ----------------------------------------------------------------------------- CT
@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class CTSeries:
    """What :func:`write_ct_series` wrote.

    ``files`` and ``sop_instance_uids`` are in slice order (increasing along the plane
    normal), whatever the file names are. ``grid`` carries the frame of reference UID.
    """

    folder: Path
    files: tuple[Path, ...]
    sop_instance_uids: tuple[str, ...]
    series_instance_uid: str
    study_instance_uid: str
    frame_of_reference_uid: str
    patient_id: str
    patient_name: str
    grid: ImageGrid


def _default_hu(grid: ImageGrid) -> NDArray[np.int16]:
    """Air (-1000 HU) with a water (0 HU) elliptic cylinder filling 80 % of each slice."""
    _, rows, columns = grid.shape
    r = (np.arange(rows) - (rows - 1) / 2) / max(0.4 * rows, 0.5)
    c = (np.arange(columns) - (columns - 1) / 2) / max(0.4 * columns, 0.5)
    inside = r[:, None] ** 2 + c[None, :] ** 2 <= 1.0
    plane = np.where(inside, 0, -1000).astype(np.int16)
    return np.broadcast_to(plane, grid.shape).astype(np.int16)


def _file_name(kind: FileNames, index: int) -> str:
    if kind == "no_extension":
        return f"IM{index + 1:06d}"
    return f"CT_{index + 1:04d}.dcm"


def _stored_ct_values(grid: ImageGrid, hu: ArrayLike | None) -> NDArray[np.uint16]:
    """Stored CT values (HU + 1024, little-endian uint16) of ``hu`` or the default phantom."""
    values = _default_hu(grid) if hu is None else np.asarray(hu)
    if values.shape != grid.shape:
        raise ValueError(f"hu has shape {values.shape}, the grid {grid.shape}")
    return (np.clip(np.rint(values), -1024, 65535 - 1024).astype(np.int64) + 1024).astype("<u2")


def _ct_series(ds: Dataset, *, series_uid: str, position: str, frame_uid: str) -> None:
    """The CT series, frame of reference and equipment attributes of one slice."""
    ds.Modality = "CT"
    ds.SeriesInstanceUID = series_uid
    ds.SeriesNumber = 1
    ds.SeriesDescription = "rtmask synthetic CT"
    ds.PatientPosition = position
    ds.FrameOfReferenceUID = frame_uid
    ds.PositionReferenceIndicator = ""
    ds.Manufacturer = _MANUFACTURER
    ds.AcquisitionNumber = 1


def _ct_plane(ds: Dataset, grid: ImageGrid, k: int, origin_mm: NDArray[np.float64]) -> None:
    """The image plane attributes of slice ``k`` of ``grid``, its voxel [0, 0] at ``origin_mm``."""
    spacing = grid.spacing_mm
    ds.ImagePositionPatient = _ds_list(origin_mm)
    ds.ImageOrientationPatient = _ds_list(grid.orientation)
    ds.PixelSpacing = _ds_list(spacing[1:])
    ds.SliceThickness = format_ds(spacing[0])
    ds.SliceLocation = format_ds(grid.slice_positions_mm[k])


def write_ct_series(
    folder: Path,
    grid: ImageGrid,
    *,
    hu: ArrayLike | None = None,
    patient_id: str = "RTMASK-SYN",
    patient_name: str = "Synthetic^Phantom",
    study_instance_uid: str | None = None,
    series_instance_uid: str | None = None,
    frame_of_reference_uid: str | None = None,
    file_names: FileNames = "ordered",
    instance_numbers: InstanceNumbers = "ordered",
    patient_position: str | None = None,
    seed: int = 0,
) -> CTSeries:
    """Write one CT Image Storage file per slice of ``grid``.

    Parameters
    ----------
    folder
        Where to write (created if needed).
    grid
        Any orientation, uniform or not: slice ``k`` is written at
        ``grid.slice_origins_mm()[k]``.
    hu
        ``(slices, rows, columns)`` Hounsfield units (int16 range, clipped at -1024), or
        None for air with a water ellipse.
    patient_id, patient_name, study_instance_uid, series_instance_uid
        Identifiers; missing UIDs are generated.
    frame_of_reference_uid
        Defaults to ``grid.frame_of_reference_uid``, else a new UID.
    file_names
        ``"ordered"`` (``CT_0001.dcm`` in slice order), ``"shuffled"`` (``.dcm`` names
        whose sorted order is never the slice order) or ``"no_extension"`` (``IM000001``).
    instance_numbers
        InstanceNumber in slice order, reversed, or shuffled.
    patient_position
        PatientPosition; default derived from the orientation (HFS, HFP, HFDL, HFDR).
    seed
        Seeds the shuffles.

    Returns
    -------
    CTSeries
        The files, UIDs and grid (with its frame of reference UID) in slice order.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    n_slices = grid.shape[0]
    stored = _stored_ct_values(grid, hu)
    rng = np.random.default_rng(seed)
    name_order = _order("shuffled" if file_names == "shuffled" else "ordered", n_slices, rng)
    number_order = _order(instance_numbers, n_slices, rng)
    study_uid = study_instance_uid or generate_uid()
    series_uid = series_instance_uid or generate_uid()
    frame_uid = frame_of_reference_uid or grid.frame_of_reference_uid or generate_uid()
    sop_uids = tuple(generate_uid() for _ in range(n_slices))
    position = patient_position or _patient_position(grid)
    axial = abs(float(grid.normal[2])) > 0.999
    date, time = _now()
    origins = grid.slice_origins_mm()
    files: list[Path] = []
    for k in range(n_slices):
        ds = Dataset()
        ds.SOPClassUID = CTImageStorage
        ds.SOPInstanceUID = sop_uids[k]
        ds.ImageType = (
            ["ORIGINAL", "PRIMARY", "AXIAL"] if axial else ["DERIVED", "SECONDARY", "REFORMATTED"]
        )
        _patient_study(
            ds,
            patient_id=patient_id,
            patient_name=patient_name,
            study_uid=study_uid,
            date=date,
            time=time,
        )
        _ct_series(ds, series_uid=series_uid, position=position, frame_uid=frame_uid)
        ds.InstanceNumber = int(number_order[k]) + 1
        _ct_plane(ds, grid, k, origins[k])
        ds.KVP = "120"
        _set_ct_pixels(ds, stored[k])
        path = folder / _file_name(file_names, int(name_order[k]))
        _save(ds, path)
        files.append(path)
    logger.debug("wrote %d CT slices to %s", n_slices, folder)
    return CTSeries(
        folder=folder,
        files=tuple(files),
        sop_instance_uids=sop_uids,
        series_instance_uid=series_uid,
        study_instance_uid=study_uid,
        frame_of_reference_uid=frame_uid,
        patient_id=patient_id,
        patient_name=patient_name,
        grid=replace(grid, frame_of_reference_uid=frame_uid),
    )


def _set_ct_pixels(ds: Dataset, stored: NDArray[np.uint16]) -> None:
    """The Image Pixel module of one CT slice: ``(rows, columns)`` HU + 1024, unsigned."""
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows, ds.Columns = stored.shape
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = 16, 16, 15
    ds.PixelRepresentation = 0
    ds.RescaleIntercept = "-1024"
    ds.RescaleSlope = "1"
    ds.RescaleType = "HU"
    ds.WindowCenter, ds.WindowWidth = "40", "400"
    ds.PixelData = np.ascontiguousarray(stored).tobytes()


def _patient_study(
    ds: Dataset, *, patient_id: str, patient_name: str, study_uid: str, date: str, time: str
) -> None:
    ds.PatientName = patient_name
    ds.PatientID = patient_id
    ds.PatientBirthDate = ""
    ds.PatientSex = "O"
    ds.StudyInstanceUID = study_uid
    ds.StudyDate, ds.StudyTime = date, time
    ds.ContentDate, ds.ContentTime = date, time
    ds.ReferringPhysicianName = ""
    ds.StudyID = "1"
    ds.AccessionNumber = ""


def _new_rt_object(
    ct: CTSeries, *, sop_class: str, modality: str, series_number: int, description: str
) -> tuple[Dataset, str, str]:
    """A dataset for a new RT object in the study of ``ct``; also returns (date, time)."""
    date, time = _now()
    ds = Dataset()
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = generate_uid()
    _patient_study(
        ds,
        patient_id=ct.patient_id,
        patient_name=ct.patient_name,
        study_uid=ct.study_instance_uid,
        date=date,
        time=time,
    )
    ds.Modality = modality
    ds.SeriesInstanceUID = generate_uid()
    ds.SeriesNumber = series_number
    ds.SeriesDescription = description
    ds.Manufacturer = _MANUFACTURER
    ds.InstanceNumber = 1
    return ds, date, time


# ----------------------------------------------------------------------------- RTSTRUCT
@dataclass(frozen=True, slots=True, kw_only=True)
class RoiSpec:
    """One ROI to write: its number, name and contours.

    ``contours`` holds ``(points, geometric_type)`` pairs: ``(N, 3)`` LPS mm points and a
    ContourGeometricType string such as ``"CLOSED_PLANAR"`` or ``"POINT"``.
    """

    number: int
    name: str
    contours: tuple[tuple[NDArray[np.float64], str], ...] = field(default=())
    color: tuple[int, int, int] = (255, 0, 0)
    interpreted_type: str = "ORGAN"
    generation_algorithm: str = "MANUAL"


def _nearest_slice(grid: ImageGrid, points: NDArray[np.float64]) -> int | None:
    """The slice whose plane is nearest the contour's mean position, within half a gap."""
    if points.size == 0 or not np.all(np.isfinite(points)):
        return None
    distance = float(points.mean(axis=0) @ grid.normal)
    positions = grid.slice_positions_mm
    index = int(np.argmin(np.abs(positions - distance)))
    gaps = grid.slice_gaps_mm
    if gaps.size == 0:
        half_gap = grid.spacing_mm[0] / 2
    else:
        neighbours = gaps[max(index - 1, 0) : index + 1]
        half_gap = float(neighbours.min()) / 2
    return index if abs(positions[index] - distance) <= half_gap else None


def _image_reference(sop_instance_uid: str) -> Dataset:
    item = Dataset()
    item.ReferencedSOPClassUID = CTImageStorage
    item.ReferencedSOPInstanceUID = sop_instance_uid
    return item


def _contour_item(
    points: NDArray[np.float64],
    *,
    geometric_type: str,
    number: int,
    declared_points: int,
    reference: str | None,
    number_format: str | None,
    implicit_vr: bool,
) -> Dataset:
    item = Dataset()
    if reference is not None:
        item.ContourImageSequence = DicomSequence([_image_reference(reference)])
    item.ContourGeometricType = geometric_type
    item.NumberOfContourPoints = declared_points
    item.ContourNumber = number
    # ContourData is written from raw bytes: formatting each number once, no DS objects.
    raw = _ds_raw(points, number_format)
    item[_CONTOUR_DATA] = RawDataElement(_CONTOUR_DATA, "DS", len(raw), raw, 0, implicit_vr, True)
    item.set_original_encoding(implicit_vr, True, "iso8859")
    return item


def _structure_set_roi(roi: RoiSpec, frame_uid: str) -> Dataset:
    """The StructureSetROISequence item of one ROI."""
    item = Dataset()
    item.ROINumber = roi.number
    item.ReferencedFrameOfReferenceUID = frame_uid
    item.ROIName = roi.name
    item.ROIGenerationAlgorithm = roi.generation_algorithm
    return item


def _roi_contour(
    roi: RoiSpec,
    ct: CTSeries,
    overrides: Mapping[tuple[int, int], int],
    *,
    reference_images: bool,
    number_format: str | None,
    implicit_vr: bool,
) -> Dataset:
    """The ROIContourSequence item of one ROI (no ContourSequence without contours)."""
    roi_contour = Dataset()
    roi_contour.ROIDisplayColor = [int(c) for c in roi.color]
    if roi.contours:
        roi_contour.ContourSequence = DicomSequence(
            [
                _contour_item(
                    points,
                    geometric_type=geometric_type,
                    number=index + 1,
                    declared_points=overrides.get((roi.number, index), len(points)),
                    reference=reference,
                    number_format=number_format,
                    implicit_vr=implicit_vr,
                )
                for index, (points, geometric_type, reference) in enumerate(
                    _placed_contours(roi, ct, reference_images=reference_images)
                )
            ]
        )
    roi_contour.ReferencedROINumber = roi.number
    return roi_contour


def _observation(roi: RoiSpec, observation_number: int) -> Dataset:
    """The RTROIObservationsSequence item of one ROI."""
    observation = Dataset()
    observation.ObservationNumber = observation_number
    observation.ReferencedROINumber = roi.number
    observation.RTROIInterpretedType = roi.interpreted_type
    observation.ROIInterpreter = ""
    return observation


def write_rtstruct(
    path: Path,
    rois: Sequence[RoiSpec],
    ct: CTSeries,
    *,
    label: str = "SYNTHETIC",
    reference_images: bool = True,
    reference_series: bool = True,
    preamble: bool = True,
    raw_numbers: str | None = None,
    frame_of_reference_uid: str | None = None,
    number_of_points_override: Mapping[tuple[int, int], int] | None = None,
) -> Path:
    """Write an RT Structure Set whose contours refer to the CT series ``ct``.

    Parameters
    ----------
    path
        The file to write.
    rois
        The ROIs in file order. An ROI without contours gets an ROIContourSequence item
        without ContourSequence.
    ct
        The image series the contours were drawn on (patient, study, frame of reference,
        referenced images).
    label
        StructureSetLabel.
    reference_images
        Give each contour a ContourImageSequence naming the CT slice whose plane is
        nearest (along the normal) when it lies within half a slice gap.
    reference_series
        Write RTReferencedStudySequence / RTReferencedSeriesSequence / ContourImageSequence
        (all CT images); False leaves only the frame of reference UID.
    preamble
        False writes no preamble, DICM prefix or file meta (implicit VR little endian).
    raw_numbers
        printf-style format of every ContourData number (e.g. ``"%.2f"``, as some
        planning systems write); None: the most precise text within 16 characters.
    frame_of_reference_uid
        Frame of reference to claim (default: the CT's); for mismatch tests.
    number_of_points_override
        ``{(roi_number, contour_index): n}``: write a wrong NumberOfContourPoints.

    Returns
    -------
    pathlib.Path
        ``path``.
    """
    path = Path(path)
    overrides = dict(number_of_points_override or {})
    frame_uid = frame_of_reference_uid or ct.frame_of_reference_uid
    ds, date, time = _new_rt_object(
        ct,
        sop_class=RTStructureSetStorage,
        modality="RTSTRUCT",
        series_number=2,
        description="rtmask synthetic structures",
    )
    ds.StructureSetLabel = label
    ds.StructureSetName = label
    ds.StructureSetDate, ds.StructureSetTime = date, time

    ds.ReferencedFrameOfReferenceSequence = DicomSequence(
        [_referenced_frame(ct, frame_uid, reference_series=reference_series)]
    )

    roi_items, contour_items, observation_items = [], [], []
    for observation_number, roi in enumerate(rois, start=1):
        roi_items.append(_structure_set_roi(roi, frame_uid))
        contour_items.append(
            _roi_contour(
                roi,
                ct,
                overrides,
                reference_images=reference_images,
                number_format=raw_numbers,
                implicit_vr=not preamble,
            )
        )
        observation_items.append(_observation(roi, observation_number))
    ds.StructureSetROISequence = DicomSequence(roi_items)
    ds.ROIContourSequence = DicomSequence(contour_items)
    ds.RTROIObservationsSequence = DicomSequence(observation_items)
    ds.ApprovalStatus = "UNAPPROVED"
    _save(ds, path, preamble=preamble)
    return path


def _referenced_frame(ct: CTSeries, frame_uid: str, *, reference_series: bool) -> Dataset:
    """The ReferencedFrameOfReferenceSequence item: the frame, and the CT's images if asked."""
    frame = Dataset()
    frame.FrameOfReferenceUID = frame_uid
    if reference_series:
        series = Dataset()
        series.SeriesInstanceUID = ct.series_instance_uid
        series.ContourImageSequence = DicomSequence(
            [_image_reference(uid) for uid in ct.sop_instance_uids]
        )
        study = Dataset()
        study.ReferencedSOPClassUID = "1.2.840.10008.3.1.2.3.1"  # Detached Study Mgmt
        study.ReferencedSOPInstanceUID = ct.study_instance_uid
        study.RTReferencedSeriesSequence = DicomSequence([series])
        frame.RTReferencedStudySequence = DicomSequence([study])
    return frame


def _placed_contours(
    roi: RoiSpec, ct: CTSeries, *, reference_images: bool
) -> list[tuple[NDArray[np.float64], str, str | None]]:
    """Each contour's ``(N, 3)`` points, geometric type and the CT image it lies on."""
    placed = []
    for points_in, geometric_type in roi.contours:
        points = np.asarray(points_in, dtype=np.float64).reshape(-1, 3)
        slice_index = _nearest_slice(ct.grid, points) if reference_images else None
        reference = None if slice_index is None else ct.sop_instance_uids[slice_index]
        placed.append((points, geometric_type, reference))
    return placed


# ----------------------------------------------------------------------------- RTDOSE
def _stored_dose(
    dose_gy: ArrayLike, grid: ImageGrid, bits: int
) -> tuple[NDArray[np.unsignedinteger], str]:
    """Stored dose values and DoseGridScaling (the maximum dose uses the full range)."""
    if bits not in (16, 32):
        raise ValueError(f"bits must be 16 or 32, got {bits}")
    dose = np.asarray(dose_gy, dtype=np.float64)
    if dose.shape != grid.shape:
        raise ValueError(f"dose_gy has shape {dose.shape}, the grid {grid.shape}")
    if not np.all(np.isfinite(dose)) or dose.min() < 0:
        raise ValueError("dose_gy must be finite and non-negative")
    top = 2**bits - 1
    max_dose = float(dose.max())
    scaling_text = format_ds(max_dose / (top - 1) if max_dose > 0 else 1.0)
    scaling = float(scaling_text)
    stored = np.clip(np.rint(dose / scaling), 0, top).astype("<u4" if bits == 32 else "<u2")
    return stored, scaling_text


def _frame_offsets(
    grid: ImageGrid, order: NDArray[np.intp], offsets: Literal["relative", "absolute"]
) -> NDArray[np.float64]:
    """GridFrameOffsetVector of the frames in ``order``, relative or absolute."""
    positions: NDArray[np.float64] = grid.slice_positions_mm[order]
    frame_offsets: NDArray[np.float64] = positions - positions[0]
    if offsets == "absolute":
        first_origin = grid.slice_origins_mm()[order[0]]
        frame_offsets = frame_offsets + float(first_origin @ grid.normal)
    elif offsets != "relative":
        raise ValueError(f"offsets must be 'relative' or 'absolute', got {offsets!r}")
    return frame_offsets


def write_rtdose(
    path: Path,
    grid: ImageGrid,
    dose_gy: ArrayLike,
    ct: CTSeries,
    *,
    bits: Literal[16, 32] = 32,
    offsets: Literal["relative", "absolute"] = "relative",
    reverse_frames: bool = False,
    dose_units: str = "GY",
    dose_type: str = "PHYSICAL",
    summation_type: str = "PLAN",
    referenced_plan_uid: str | None = None,
) -> Path:
    """Write a multi-frame RT Dose on ``grid`` in the frame of reference of ``ct``.

    Parameters
    ----------
    path
        The file to write.
    grid
        The dose grid (any orientation; frames at ``grid.slice_origins_mm()``).
    dose_gy
        ``(slices, rows, columns)`` non-negative dose.
    ct
        Gives patient, study and frame of reference.
    bits
        16 or 32 bits per stored value. DoseGridScaling is chosen so that the maximum dose
        uses the full range; stored values are ``round(dose / scaling)``.
    offsets
        GridFrameOffsetVector ``"relative"`` to the first frame (first value 0) or
        ``"absolute"`` (first value = the first frame's position along the normal, the
        DICOM "type b" form, defined by the standard for axial grids only).
    reverse_frames
        Write the frames in decreasing order along the normal (the last slice first), with
        a decreasing GridFrameOffsetVector.
    dose_units, dose_type, summation_type
        DoseUnits, DoseType, DoseSummationType.
    referenced_plan_uid
        SOP Instance UID put in ReferencedRTPlanSequence (a new UID by default).

    Returns
    -------
    pathlib.Path
        ``path``.
    """
    path = Path(path)
    stored, scaling_text = _stored_dose(dose_gy, grid, bits)
    order = np.arange(grid.shape[0])[::-1] if reverse_frames else np.arange(grid.shape[0])
    first_origin = grid.slice_origins_mm()[order[0]]
    frame_offsets = _frame_offsets(grid, order, offsets)

    ds, _, _ = _new_rt_object(
        ct,
        sop_class=RTDoseStorage,
        modality="RTDOSE",
        series_number=3,
        description="rtmask synthetic dose",
    )
    ds.FrameOfReferenceUID = ct.frame_of_reference_uid
    ds.PositionReferenceIndicator = ""
    ds.ImagePositionPatient = _ds_list(first_origin)
    ds.ImageOrientationPatient = _ds_list(grid.orientation)
    ds.PixelSpacing = _ds_list(grid.spacing_mm[1:])
    ds.SliceThickness = format_ds(grid.spacing_mm[0])
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.NumberOfFrames = grid.shape[0]
    ds.FrameIncrementPointer = _GRID_FRAME_OFFSET_VECTOR
    ds.Rows, ds.Columns = grid.shape[1], grid.shape[2]
    ds.BitsAllocated = ds.BitsStored = bits
    ds.HighBit = bits - 1
    ds.PixelRepresentation = 0
    ds.DoseUnits = dose_units
    ds.DoseType = dose_type
    ds.DoseSummationType = summation_type
    ds.GridFrameOffsetVector = _ds_list(frame_offsets)
    ds.DoseGridScaling = scaling_text
    plan = Dataset()
    plan.ReferencedSOPClassUID = RTPlanStorage
    plan.ReferencedSOPInstanceUID = referenced_plan_uid or generate_uid()
    ds.ReferencedRTPlanSequence = DicomSequence([plan])
    ds.PixelData = np.ascontiguousarray(stored[order]).tobytes()
    _save(ds, path)
    return path
