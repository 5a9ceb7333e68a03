"""Writing a DoseGrid as a new DICOM RT Dose (multi-frame, scaled integers, new UIDs).

The file carries the patient, study and frame of reference of the RT Dose(s) it was
computed from (a :class:`~rtmask.dose.DoseReference`, read with
:func:`~rtmask.dose.read_dose_reference`), references their RT Plans, and gets a new
SOPInstanceUID and SeriesInstanceUID. Frames are written in grid slice order (increasing
along the plane normal); GridFrameOffsetVector is relative (first value 0), so any
orientation and non-uniform slice spacing are expressed exactly.
"""

from __future__ import annotations

import datetime
import logging
import os
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal, TypeAlias

import numpy as np
from numpy.typing import ArrayLike, NDArray
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence as DicomSequence
from pydicom.tag import Tag
from pydicom.uid import UID, ExplicitVRLittleEndian, RTDoseStorage, RTPlanStorage, generate_uid
from pydicom.valuerep import format_number_as_ds

from rtmask import __version__
from rtmask._atomic import atomic_path
from rtmask._dicom import check_values_to_write, complete_deidentification
from rtmask._errors import DoseWarning, GeometryError, InvalidInputError
from rtmask.dose import DoseGrid, DoseReference, read_dose_reference

__all__ = ["DoseReferenceLike", "write_rtdose"]

logger = logging.getLogger(__name__)

DoseReferenceLike: TypeAlias = "str | os.PathLike[str] | DoseReference"
"""An RT Dose file to take the references from, or the references themselves."""

SummationType = Literal["PLAN", "MULTI_PLAN"]

_GRID_FRAME_OFFSET_VECTOR = Tag(0x3004000C)
_MANUFACTURER = "rtmask"


def _ds(value: float) -> str:
    """A number as a DICOM DS value of at most 16 characters."""
    return str(format_number_as_ds(float(value)))


def _ds_list(values: ArrayLike) -> list[str]:
    return [_ds(v) for v in np.asarray(values, dtype=np.float64).ravel()]


def _references(
    reference: DoseReferenceLike | Sequence[DoseReferenceLike] | None,
) -> list[DoseReference]:
    if reference is None:
        return []
    if isinstance(reference, (str, os.PathLike, DoseReference)):
        items: list[DoseReferenceLike] = [reference]
    else:
        items = list(reference)
    return [
        item if isinstance(item, DoseReference) else read_dose_reference(item) for item in items
    ]


def _check_references(dose: DoseGrid, references: list[DoseReference], name: str) -> None:
    """Raise when the references disagree with each other or with the dose's frame."""
    frames = {ref.frame_of_reference_uid for ref in references}
    if dose.grid.frame_of_reference_uid:
        frames.add(dose.grid.frame_of_reference_uid)
    if len(frames) > 1:
        raise GeometryError(
            f"{name}: the dose and its references name different frames of reference "
            f"({', '.join(sorted(frames))}); a dose can only be written in one frame of "
            "reference"
        )
    patients = {ref.patient_id for ref in references}
    if len(patients) > 1:
        raise InvalidInputError(
            f"{name}: the reference doses belong to different patients "
            f"({', '.join(sorted(repr(p) for p in patients))}); give doses of one patient"
        )


def _plans(references: list[DoseReference]) -> list[tuple[str, str]]:
    """Distinct referenced plans, in order of first appearance."""
    seen: dict[str, str] = {}
    for ref in references:
        for sop_class, instance in ref.referenced_plans:
            seen.setdefault(instance, sop_class or RTPlanStorage)
    return [(sop_class, instance) for instance, sop_class in seen.items()]


def _stored_values(
    dose_gy: NDArray[np.float64], bits: int, signed: bool
) -> tuple[NDArray[Any], str]:
    """Integers and the DoseGridScaling text: the largest |dose| maps to the top value."""
    top = 2 ** (bits - 1) - 1 if signed else 2**bits - 1
    largest = float(np.abs(dose_gy).max())
    scaling_text = _ds(largest / top) if largest > 0 else "1"
    scaling = float(scaling_text)
    if scaling <= 0:  # pragma: no cover - only for doses below 1e-300 Gy
        raise InvalidInputError("the dose is too small to be scaled into integers")
    low = -top if signed else 0
    kind = f"<{'i' if signed else 'u'}{bits // 8}"
    stored = np.clip(np.rint(dose_gy / scaling), low, top).astype(kind)
    return stored, scaling_text


def _now() -> tuple[str, str]:
    now = datetime.datetime.now()  # DICOM dates and times are local
    return now.strftime("%Y%m%d"), now.strftime("%H%M%S.%f")


def _deidentification(ds: Dataset, ref: DoseReference) -> None:
    """The reference's de-identification attributes (PS3.3 C.7.1.1), completed if needed."""
    if ref.patient_identity_removed:
        ds.PatientIdentityRemoved = ref.patient_identity_removed
    if ref.deidentification_method:
        ds.DeidentificationMethod = ref.deidentification_method
    if ref.deidentification_method_codes:
        items = []
        for value, scheme, meaning in ref.deidentification_method_codes:
            item = Dataset()
            item.CodeValue, item.CodingSchemeDesignator, item.CodeMeaning = value, scheme, meaning
            items.append(item)
        ds.DeidentificationMethodCodeSequence = DicomSequence(items)
    if ref.longitudinal_temporal_information_modified:
        ds.LongitudinalTemporalInformationModified = ref.longitudinal_temporal_information_modified
    complete_deidentification(ds)


def _patient_and_study(ds: Dataset, ref: DoseReference | None, date: str, time: str) -> None:
    if ref is None:
        ds.PatientName = ds.PatientID = ds.PatientBirthDate = ds.PatientSex = ""
        ds.StudyInstanceUID = generate_uid()
        ds.StudyDate, ds.StudyTime = date, time
        ds.StudyID = ds.AccessionNumber = ds.ReferringPhysicianName = ""
        return
    ds.PatientName = ref.patient_name
    ds.PatientID = ref.patient_id
    ds.PatientBirthDate = ref.patient_birth_date
    ds.PatientSex = ref.patient_sex
    _deidentification(ds, ref)
    ds.StudyInstanceUID = ref.study_instance_uid
    ds.StudyDate, ds.StudyTime = ref.study_date, ref.study_time
    ds.StudyID = ref.study_id
    ds.AccessionNumber = ref.accession_number
    ds.ReferringPhysicianName = ref.referring_physician_name
    if ref.study_description:
        ds.StudyDescription = ref.study_description


def _needs_utf8(ds: Dataset) -> bool:
    for element in ds:
        if isinstance(element.value, str) and not element.value.isascii():
            return True
        if element.VR == "PN" and not str(element.value).isascii():
            return True
    return False


def _geometry(ds: Dataset, dose: DoseGrid) -> None:
    """Image Plane, Image Pixel (sizes), Multi-frame and frame offsets, in grid order."""
    grid = dose.grid
    positions = grid.slice_positions_mm
    ds.ImagePositionPatient = _ds_list(grid.index_to_patient([[0.0, 0.0, 0.0]])[0])
    ds.ImageOrientationPatient = _ds_list(grid.orientation)
    ds.PixelSpacing = _ds_list(grid.spacing_mm[1:])
    # Type 2: empty when the slices are not evenly spaced.
    ds.SliceThickness = _ds(grid.spacing_mm[0]) if grid.is_uniform else None
    ds.Rows, ds.Columns = grid.shape[1], grid.shape[2]
    ds.NumberOfFrames = grid.shape[0]
    ds.FrameIncrementPointer = _GRID_FRAME_OFFSET_VECTOR
    ds.GridFrameOffsetVector = _ds_list(positions - positions[0])


def _dose_type_and_sign(
    name: str, dose: DoseGrid, bits: int, dose_type: str | None
) -> tuple[str, bool]:
    """DoseType and whether the values are stored signed; bad ``bits`` or signs refused."""
    if bits not in (16, 32):
        raise InvalidInputError(f"{name}: bits must be 16 or 32, got {bits}")
    kind = (dose_type or dose.dose_type or "PHYSICAL").upper()
    signed = bool(dose.dose_gy.min() < 0)
    if signed and kind != "ERROR":
        raise InvalidInputError(
            f"{name}: the dose has negative values (min {dose.dose_gy.min():.4g} Gy); an RT "
            "Dose stores them only with DoseType ERROR (pass dose_type='ERROR')"
        )
    return kind, signed


def _series_and_equipment(
    ds: Dataset,
    first: DoseReference | None,
    frame_uid: str,
    series_number: int,
    description: str,
) -> None:
    """The new RT Dose series, its frame of reference and the equipment (rtmask)."""
    ds.Modality = "RTDOSE"
    ds.SeriesInstanceUID = generate_uid()
    ds.SeriesNumber = series_number
    ds.SeriesDescription = description
    ds.OperatorsName = ""
    ds.FrameOfReferenceUID = frame_uid
    ds.PositionReferenceIndicator = first.position_reference_indicator if first else ""
    ds.Manufacturer = _MANUFACTURER
    ds.SoftwareVersions = __version__


def _save(ds: Dataset, sop_uid: UID, final: Path) -> None:
    """Write ``ds`` atomically as a Part 10 file, explicit VR little endian."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = RTDoseStorage
    meta.MediaStorageSOPInstanceUID = sop_uid
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta = meta
    check_values_to_write(ds, final)
    with atomic_path(final) as temporary:
        ds.save_as(temporary, enforce_file_format=True)


def _frame_of_reference(name: str, dose: DoseGrid, first: DoseReference | None) -> str:
    """The frame of reference UID: the first reference's, else the dose grid's."""
    frame_uid = first.frame_of_reference_uid if first else dose.grid.frame_of_reference_uid
    if not frame_uid:
        raise GeometryError(
            f"{name}: the dose grid has no frame of reference; give the RT Dose it was "
            "computed from as reference, or a grid with frame_of_reference_uid"
        )
    return frame_uid


def _summation(
    name: str,
    plans: list[tuple[str, str]],
    summation_type: SummationType | None,
    mixed: bool = False,
) -> str:
    """DoseSummationType, checked against the number of plans (warned when none is known).

    ``mixed``: the dose says MULTI_PLAN itself, as a sum of parts whose summation types
    differ does (PLAN with BEAM: no single-plan term describes it), whatever the number of
    plans its references name.
    """
    if mixed and summation_type is None:
        return "MULTI_PLAN"
    summation = summation_type or ("MULTI_PLAN" if len(plans) > 1 else "PLAN")
    if summation not in ("PLAN", "MULTI_PLAN"):
        raise InvalidInputError(
            f"{name}: summation_type must be 'PLAN' or 'MULTI_PLAN', got {summation!r}"
        )
    if summation == "PLAN" and len(plans) > 1:
        raise InvalidInputError(
            f"{name}: DoseSummationType PLAN references one plan, but the references name "
            f"{len(plans)}; use summation_type='MULTI_PLAN'"
        )
    if summation == "MULTI_PLAN" and len(plans) == 1 and not mixed:
        raise InvalidInputError(
            f"{name}: DoseSummationType MULTI_PLAN references two or more plans, but the "
            "references name one; use summation_type='PLAN'"
        )
    if not plans:
        note = (
            f"{name}: no RT Plan is known, so the Referenced RT Plan Sequence that DICOM "
            f"requires for DoseSummationType {summation} is left out; give the RT Dose the "
            "dose was computed from as reference"
        )
        warnings.warn(note, DoseWarning, stacklevel=3)
    return summation


def _dose_pixel_module(ds: Dataset, *, bits: int, signed: bool) -> None:
    """The image pixel attributes of the stored dose (one sample, grey, ``bits`` bits)."""
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated = ds.BitsStored = bits
    ds.HighBit = bits - 1
    ds.PixelRepresentation = 1 if signed else 0


def _dose_values(
    ds: Dataset, *, kind: str, summation: str, scaling: str, comment: str | None
) -> None:
    """The RT Dose module's kind and scaling, and the comment (ImageComments) if any."""
    ds.DoseUnits = "GY"
    ds.DoseType = kind
    ds.DoseSummationType = summation
    ds.DoseGridScaling = scaling
    if comment:
        ds.ImageComments = comment


def _plan_references(plans: list[tuple[str, str]]) -> DicomSequence:
    """The Referenced RT Plan Sequence: one item per (SOP class, SOP instance) UID pair."""
    items = []
    for sop_class, instance in plans:
        item = Dataset()
        item.ReferencedSOPClassUID = sop_class
        item.ReferencedSOPInstanceUID = instance
        items.append(item)
    return DicomSequence(items)


def write_rtdose(
    dose: DoseGrid,
    path: str | os.PathLike[str],
    *,
    reference: DoseReferenceLike | Sequence[DoseReferenceLike] | None = None,
    bits: Literal[16, 32] = 32,
    description: str = "rtmask dose",
    dose_type: str | None = None,
    summation_type: SummationType | None = None,
    series_number: int = 1,
    comment: str | None = None,
) -> Path:
    """Write ``dose`` as a new RT Dose file (atomically, Part 10, explicit VR little endian).

    Parameters
    ----------
    dose
        The dose in Gy on its grid (any orientation, uniform or not). Negative values are
        only allowed with DoseType ``ERROR`` (then stored signed).
    path
        The file to write; its folder must exist.
    reference
        The RT Dose file(s) the dose was computed from, or their
        :class:`~rtmask.dose.DoseReference`. The first gives patient, study and frame of
        reference; the RT Plans of all are referenced. None: a new study, the frame of
        reference of ``dose.grid``, no patient identity, no plan reference.
    bits
        16 or 32 bits per stored value; DoseGridScaling maps the largest dose onto the top
        of the unsigned range (``2**bits - 1``), so the stored dose is within half a
        scaling step of ``dose``.
    description
        SeriesDescription.
    dose_type
        DoseType (``PHYSICAL``, ``EFFECTIVE``, ``ERROR``); default ``dose.dose_type``, else
        ``PHYSICAL``.
    summation_type
        DoseSummationType; default ``MULTI_PLAN`` when the references name two or more
        plans (which MULTI_PLAN requires) or when ``dose.summation_type`` is MULTI_PLAN (as
        a sum of PLAN and BEAM doses is: no single-plan term fits), else ``PLAN``.
    series_number
        SeriesNumber of the new series.
    comment
        ImageComments (free text, e.g. what a sum is made of); none by default.

    Returns
    -------
    pathlib.Path
        ``path``.

    Warns
    -----
    DoseWarning
        No RT Plan is known, so the Referenced RT Plan Sequence the standard requires for
        PLAN and MULTI_PLAN doses is missing.

    Raises
    ------
    InvalidInputError
        Negative dose without DoseType ERROR, bad ``bits`` or ``summation_type``, or
        references to different patients.
    GeometryError
        The dose and its references name different frames of reference, or the dose grid
        has no frame of reference and no reference is given.
    DicomReadError
        A reference file cannot be read.
    """
    final = Path(path)
    name = os.fspath(final)
    kind, signed = _dose_type_and_sign(name, dose, bits, dose_type)
    references = _references(reference)
    _check_references(dose, references, name)
    first = references[0] if references else None
    frame_uid = _frame_of_reference(name, dose, first)
    plans = _plans(references)
    composite = (dose.summation_type or "").upper() == "MULTI_PLAN"
    summation = _summation(name, plans, summation_type, mixed=composite)
    stored, scaling_text = _stored_values(dose.dose_gy, bits, signed)
    date, time = _now()
    sop_uid = generate_uid()
    ds = Dataset()
    _patient_and_study(ds, first, date, time)
    _series_and_equipment(ds, first, frame_uid, series_number, description)
    ds.InstanceNumber = 1
    ds.ContentDate, ds.ContentTime = date, time
    _geometry(ds, dose)
    _dose_pixel_module(ds, bits=bits, signed=signed)
    _dose_values(ds, kind=kind, summation=summation, scaling=scaling_text, comment=comment)
    if plans:
        ds.ReferencedRTPlanSequence = _plan_references(plans)
    ds.SOPClassUID = RTDoseStorage
    ds.SOPInstanceUID = sop_uid
    ds.InstanceCreationDate, ds.InstanceCreationTime = date, time
    if _needs_utf8(ds):
        ds.SpecificCharacterSet = "ISO_IR 192"
    ds.PixelData = np.ascontiguousarray(stored).tobytes()
    _save(ds, sop_uid, final)
    logger.debug(
        "wrote RT Dose %s: %s, max %.4g Gy, scaling %s", name, dose.grid, dose.max_gy, scaling_text
    )
    return final
