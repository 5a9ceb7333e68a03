"""Reading an RT Dose: multi-frame, frames placed by GridFrameOffsetVector, dose in Gy."""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from rtmask._dicom import RTDOSE_SOP_CLASS, read_dataset
from rtmask._errors import DoseWarning, GeometryError, InvalidInputError
from rtmask._limits import (
    MAX_DOSE_GY,
    MAX_EXTENT_MM,
    MAX_GRID_VOXELS,
    coordinate_problem,
    voxel_count,
)
from rtmask._rawdicom import RawDataset, raw_from_dataset, read_raw
from rtmask.dose._model import DoseGrid, DoseReference
from rtmask.geometry import ImageGrid, slice_order

if TYPE_CHECKING:
    from pydicom.dataset import Dataset

__all__ = ["dose_frame_order", "read_dose", "read_dose_grid", "read_dose_reference"]

logger = logging.getLogger(__name__)


def _frame_positions(dataset: RawDataset, name: str) -> tuple[NDArray[np.float64], ImageGrid]:
    """Patient position of every frame in file order, ``(frames, 3)``, and the grid."""
    try:
        position = dataset.numbers("ImagePositionPatient")
        orientation = dataset.numbers("ImageOrientationPatient")
        spacing = dataset.numbers("PixelSpacing")
        rows, columns = dataset.integer("Rows"), dataset.integer("Columns")
        n_frames = dataset.integer("NumberOfFrames") or 1
        raw_offsets = dataset.numbers("GridFrameOffsetVector")
    except ValueError as error:
        raise InvalidInputError(
            f"{name}: RT Dose geometry is invalid ({error}); the dose grid cannot be placed"
        ) from error
    missing = [
        keyword
        for keyword, value in (
            ("ImagePositionPatient", position.size == 3),
            ("ImageOrientationPatient", orientation.size == 6),
            ("PixelSpacing", spacing.size == 2),
            ("Rows", rows is not None),
            ("Columns", columns is not None),
        )
        if not value
    ]
    if missing or rows is None or columns is None:
        raise InvalidInputError(
            f"{name}: RT Dose geometry is incomplete or invalid ({', '.join(missing)} missing "
            "or malformed); the dose grid cannot be placed"
        )
    offsets = raw_offsets if raw_offsets.size else np.zeros(1)
    if offsets.size != n_frames:
        raise GeometryError(
            f"{name}: GridFrameOffsetVector has {offsets.size} values for {n_frames} frames"
        )
    absurd = _absurd_geometry(position, spacing, (n_frames, rows, columns), offsets)
    if absurd is not None:
        raise GeometryError(f"{name}: {absurd}; the dose grid cannot be placed")
    # Relative form starts at 0; the absolute form (axial only) starts at the first
    # frame's z. Either way the offsets from the first frame are v - v[0].
    relative = offsets - offsets[0]
    normal = np.cross(orientation[:3], orientation[3:])
    positions = position + np.outer(relative, normal / np.linalg.norm(normal))
    try:
        grid = ImageGrid.from_slices(
            positions_mm=positions,
            orientation=orientation,
            pixel_spacing_mm=(float(spacing[0]), float(spacing[1])),
            rows=rows,
            columns=columns,
            frame_of_reference_uid=dataset.text("FrameOfReferenceUID"),
        )
    except GeometryError as error:
        raise GeometryError(f"{name}: RT Dose geometry is invalid: {error}") from error
    return positions, grid


def _absurd_geometry(
    position: NDArray[np.float64],
    spacing: NDArray[np.float64],
    shape: tuple[int, int, int],
    offsets: NDArray[np.float64],
) -> str | None:
    """Why an RT Dose's geometry values cannot be a dose grid of a patient, or None."""
    problem = coordinate_problem(position.tolist(), "ImagePositionPatient")
    if problem is not None:
        return problem
    if min(shape) < 1 or voxel_count(shape) > MAX_GRID_VOXELS:
        return (
            f"NumberOfFrames {shape[0]} x Rows {shape[1]} x Columns {shape[2]} is not a grid "
            f"of 1 to {MAX_GRID_VOXELS:.3g} voxels"
        )
    if not (np.all(np.isfinite(spacing)) and np.all(spacing > 0)):
        return f"PixelSpacing {spacing.tolist()} is not two positive numbers"
    extent = max(float(spacing[0]) * (shape[1] - 1), float(spacing[1]) * (shape[2] - 1))
    if extent > MAX_EXTENT_MM:
        return (
            f"PixelSpacing {spacing.tolist()} mm with {shape[1]} Rows x {shape[2]} Columns "
            f"makes the grid {extent / 1000:.3g} m wide, beyond the "
            f"{MAX_EXTENT_MM / 1000:g} m any dose grid of a patient stays within"
        )
    span = float(offsets.max() - offsets.min())
    if not span <= MAX_EXTENT_MM:
        return (
            f"GridFrameOffsetVector spans {span:.3g} mm, beyond the "
            f"{MAX_EXTENT_MM / 1000:g} m any dose grid of a patient stays within"
        )
    return None


def _read_dose_header(path: str | os.PathLike[str]) -> tuple[RawDataset, str]:
    name = os.fspath(path)
    dataset = read_raw(name, stop_before_pixels=True)
    _check_is_dose(dataset, name)
    return dataset, name


def _open_dose(
    source: str | os.PathLike[str] | Dataset, *, stop_before_pixels: bool = False
) -> tuple[str, RawDataset, Callable[[], NDArray[Any]]]:
    """Name, raw data set and a decoder of compressed pixels, from a path or a Dataset."""
    if isinstance(source, str | os.PathLike):
        name = os.fspath(source)
        dataset = read_raw(name, stop_before_pixels=stop_before_pixels)

        def decode() -> NDArray[Any]:
            return np.asarray(read_dataset(name).pixel_array)

    else:
        name = str(getattr(source, "filename", None) or "<dataset>")
        dataset = raw_from_dataset(source, name=name)

        def decode() -> NDArray[Any]:
            return np.asarray(source.pixel_array)

    _check_is_dose(dataset, name)
    return name, dataset, decode


def _check_is_dose(dataset: RawDataset, name: str) -> None:
    if dataset.text("SOPClassUID") != RTDOSE_SOP_CLASS and dataset.text("Modality") != "RTDOSE":
        raise InvalidInputError(
            f"{name}: not an RT Dose (Modality {dataset.text('Modality') or 'unknown'}); give "
            "an RTDOSE file"
        )


def read_dose_grid(path: str | os.PathLike[str]) -> ImageGrid:
    """The ImageGrid of an RT Dose file (headers only), slices increasing along the normal.

    GridFrameOffsetVector may be relative (first value 0) or absolute, increasing or
    decreasing; :func:`dose_frame_order` says which file frame is which grid slice.

    Raises
    ------
    DicomReadError
        The file cannot be read.
    InvalidInputError, GeometryError
        Not an RT Dose, or its geometry is inconsistent.
    """
    dataset, name = _read_dose_header(path)
    return _frame_positions(dataset, name)[1]


def dose_frame_order(path: str | os.PathLike[str]) -> NDArray[np.intp]:
    """Indices of the file's frames in grid slice order: ``slice k = frame order[k]``."""
    dataset, name = _read_dose_header(path)
    positions, grid = _frame_positions(dataset, name)
    return slice_order(positions, grid.orientation)


def _dose_scaling(dataset: RawDataset, name: str) -> tuple[float, list[str]]:
    """DoseGridScaling (Gy or percent per stored unit), required; no warning is left."""
    raw = dataset.text("DoseGridScaling")
    if raw is None:
        # Required with pixel data (Type 1C): the stored integers have no unit without it,
        # and taking them as Gy is wrong by the factor the writer chose (often 1e4-1e9).
        raise InvalidInputError(
            f"{name}: DoseGridScaling is missing (required with pixel data), so the stored "
            "values cannot be turned into Gy; add it to the file as the planning system "
            "wrote it"
        )
    try:
        scaling = float(raw.split("\\")[0])
    except ValueError as error:
        raise InvalidInputError(
            f"{name}: DoseGridScaling {raw!r} is not a number; the dose cannot be scaled"
        ) from error
    if not np.isfinite(scaling) or scaling <= 0:
        raise InvalidInputError(
            f"{name}: DoseGridScaling must be a positive number, got {scaling}; the dose "
            "cannot be scaled"
        )
    return scaling, []


def _check_plausible(
    frames: NDArray[np.integer[Any]], scaling: float, factor: float, name: str
) -> None:
    """Refuse a dose whose largest value (Gy) no treatment can have."""
    if frames.size == 0:
        return
    largest = max(abs(int(frames.max())), abs(int(frames.min()))) * scaling * factor
    if not largest <= MAX_DOSE_GY:
        raise InvalidInputError(
            f"{name}: DoseGridScaling {scaling:g} makes the largest dose {largest:.3g} Gy, "
            f"beyond the {MAX_DOSE_GY:g} Gy any treatment reaches; check DoseGridScaling "
            "and DoseUnits"
        )


def _units_factor(
    dataset: RawDataset, name: str, prescription_gy: float | None
) -> tuple[float, list[str]]:
    """Factor turning scaled values into Gy, from DoseUnits, and any warning."""
    units = (dataset.text("DoseUnits") or "").upper()
    if units == "GY":
        return 1.0, []
    if units == "RELATIVE":
        if prescription_gy is None:
            raise InvalidInputError(
                f"{name}: DoseUnits is RELATIVE (percent of the prescription); pass the "
                "prescription (prescription_gy=...) to read the dose in Gy"
            )
        return prescription_gy / 100.0, []
    if units == "":
        return 1.0, [f"{name}: DoseUnits is missing; the dose is taken to be in Gy"]
    raise InvalidInputError(
        f"{name}: DoseUnits {units!r} is not GY or RELATIVE; rtmask cannot convert it to Gy"
    )


def _native_frames(
    dataset: RawDataset, name: str, data: memoryview, count: int
) -> NDArray[np.integer[Any]]:
    """``(count,)`` stored values of uncompressed little-endian pixel ``data``."""
    bits = dataset.integer("BitsAllocated")
    signed = dataset.integer("PixelRepresentation") == 1
    if bits not in (8, 16, 32):
        raise InvalidInputError(
            f"{name}: RT Dose pixel data has BitsAllocated {bits}, expected 16 or 32; check "
            "that the file is an RT Dose from a planning system"
        )
    dtype = np.dtype(f"<{'i' if signed else 'u'}{bits // 8}")
    if len(data) < count * dtype.itemsize:
        raise InvalidInputError(
            f"{name}: RT Dose pixel data holds {len(data) // dtype.itemsize} values, expected "
            f"{count}; check that the file is complete"
        )
    values = np.frombuffer(data, dtype=dtype, count=count)
    stored = dataset.integer("BitsStored") or bits
    if stored < bits:
        # Bits above BitsStored are not part of the value: clear them, extending the sign.
        unused = bits - stored
        values = (values << unused) >> unused if signed else values & ((1 << stored) - 1)
    return values


def _decoded_frames(name: str, decode: Callable[[], NDArray[Any]]) -> NDArray[np.integer[Any]]:
    """Stored values of compressed or big-endian pixel data, decoded by pydicom."""
    try:
        return decode()
    except (
        ValueError,
        TypeError,
        AttributeError,
        KeyError,
        NotImplementedError,
        RuntimeError,
    ) as error:
        detail = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise InvalidInputError(
            f"{name}: cannot decode the RT Dose pixel data ({detail}); check that the file is "
            "complete, or decompress it (e.g. with gdcmconv --raw)"
        ) from error


def _frames_in_order(
    frames: NDArray[np.integer[Any]], positions: NDArray[np.float64], grid: ImageGrid
) -> NDArray[np.integer[Any]]:
    """``frames`` in grid slice order: a view when they are in order or reversed."""
    order = slice_order(positions, grid.orientation)
    if np.array_equal(order, np.arange(order.size)):
        return frames
    if np.array_equal(order, np.arange(order.size)[::-1]):
        return frames[::-1]
    return frames[order]


def _stored_frames(
    dataset: RawDataset,
    name: str,
    shape: tuple[int, int, int],
    decode: Callable[[], NDArray[Any]],
) -> NDArray[np.integer[Any]]:
    """The stored pixel values as ``(frames, rows, columns)`` integers, in file order."""
    if "PixelData" not in dataset:
        raise InvalidInputError(
            f"{name}: RT Dose has no pixel data (a DVH-only or header-only file?); give an "
            "RT Dose that holds a dose grid"
        )
    count = int(np.prod(shape))
    native = None if dataset.pixels_compressed else dataset.pixel_data()
    pixels = (
        _decoded_frames(name, decode)
        if native is None
        else _native_frames(dataset, name, native, count)
    )
    if pixels.size != count or not np.issubdtype(pixels.dtype, np.integer):
        raise InvalidInputError(
            f"{name}: RT Dose pixel data holds {pixels.size} {pixels.dtype} values, expected "
            f"{shape[0]} frames of {shape[1]}x{shape[2]} integers"
        )
    return pixels.reshape(shape)


def read_dose(
    path: str | os.PathLike[str] | Dataset, *, prescription_gy: float | None = None
) -> DoseGrid:
    """Read an RT Dose into a DoseGrid (dose in Gy, slices along the plane normal).

    The dose is stored value x DoseGridScaling (16- or 32-bit, signed or unsigned), its
    frames put in grid slice order (:func:`dose_frame_order`) whatever the order and form
    (relative or absolute) of GridFrameOffsetVector.

    Parameters
    ----------
    path
        The RT Dose file, or a pydicom Dataset of one (read as it is in memory).
    prescription_gy
        Prescription dose in Gy; needed when DoseUnits is RELATIVE (percent of the
        prescription), ignored for GY.

    Warns
    -----
    DoseWarning
        DoseUnits missing (Gy assumed).

    Raises
    ------
    DicomReadError
        The file cannot be read.
    InvalidInputError
        Not an RT Dose, no pixel data, DoseGridScaling missing or invalid, a dose above
        MAX_DOSE_GY (100 kGy: a wrong scaling), invalid units, RELATIVE units without
        ``prescription_gy``.
    GeometryError
        The frames do not form a grid (offsets missing or inconsistent), or the geometry
        is absurd (coordinates beyond 100 m, more than 2**31 voxels).
    """
    if prescription_gy is not None and not (np.isfinite(prescription_gy) and prescription_gy > 0):
        where = os.fspath(path) if isinstance(path, str | os.PathLike) else "RT Dose"
        raise InvalidInputError(
            f"{where}: prescription_gy must be a positive number of Gy, got {prescription_gy}"
        )
    name, dataset, decode = _open_dose(path)
    positions, grid = _frame_positions(dataset, name)
    scaling, notes = _dose_scaling(dataset, name)
    factor, unit_notes = _units_factor(dataset, name, prescription_gy)
    notes += unit_notes
    frames = _frames_in_order(_stored_frames(dataset, name, grid.shape, decode), positions, grid)
    _check_plausible(frames, scaling, factor, name)
    dose = np.multiply(frames, scaling * factor, dtype=np.float64)  # the one dose array
    dose.flags.writeable = False  # DoseGrid keeps it as it is, without a copy
    for note in notes:
        warnings.warn(note, DoseWarning, stacklevel=2)
    logger.debug("read RT Dose %s: %s, max %.4g Gy", name, grid, float(dose.max()))
    return DoseGrid(
        dose_gy=dose,
        grid=grid,
        dose_type=dataset.text("DoseType"),
        summation_type=dataset.text("DoseSummationType"),
        source=name,
        warnings=tuple(notes),
    )


def read_dose_reference(path: str | os.PathLike[str] | Dataset) -> DoseReference:
    """Patient, study, frame of reference and plan references of an RT Dose (headers only).

    ``path`` is an RT Dose file or a pydicom Dataset of one.

    What a new RT Dose computed from this one (a sum, a scaled copy) must carry over; see
    :func:`rtmask.export.write_rtdose`.

    Raises
    ------
    DicomReadError
        The file cannot be read.
    InvalidInputError
        Not an RT Dose, or it lacks a StudyInstanceUID or FrameOfReferenceUID.
    """
    name, dataset, _ = _open_dose(path, stop_before_pixels=True)
    plans: list[tuple[str, str]] = []
    for item in dataset.sequence("ReferencedRTPlanSequence"):
        instance = item.text("ReferencedSOPInstanceUID")
        if instance:
            plans.append((item.text("ReferencedSOPClassUID") or "", instance))

    def text(keyword: str) -> str:
        return dataset.text(keyword) or ""

    return DoseReference(
        patient_name=text("PatientName"),
        patient_id=text("PatientID"),
        patient_birth_date=text("PatientBirthDate"),
        patient_sex=text("PatientSex"),
        study_instance_uid=text("StudyInstanceUID"),
        study_date=text("StudyDate"),
        study_time=text("StudyTime"),
        study_id=text("StudyID"),
        accession_number=text("AccessionNumber"),
        referring_physician_name=text("ReferringPhysicianName"),
        study_description=dataset.text("StudyDescription"),
        frame_of_reference_uid=text("FrameOfReferenceUID"),
        position_reference_indicator=text("PositionReferenceIndicator"),
        referenced_plans=tuple(plans),
        sop_instance_uid=dataset.text("SOPInstanceUID"),
        source=name,
        patient_identity_removed=text("PatientIdentityRemoved"),
        deidentification_method=text("DeidentificationMethod"),
        deidentification_method_codes=tuple(
            (
                item.text("CodeValue") or "",
                item.text("CodingSchemeDesignator") or "",
                item.text("CodeMeaning") or "",
            )
            for item in dataset.sequence("DeidentificationMethodCodeSequence")
        ),
        longitudinal_temporal_information_modified=text("LongitudinalTemporalInformationModified"),
    )
