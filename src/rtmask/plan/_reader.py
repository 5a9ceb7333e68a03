"""Read an RT Plan (or RT Ion Plan) file or pydicom Dataset into :class:`RTPlan`.

Files are read with rtmask's raw reader (:mod:`rtmask._rawdicom`), so ``rtmask dvh``
taking its prescription from a plan does not import pydicom (a tenth of a second);
pydicom Datasets are read as they are. Both go through :func:`_value`.
"""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from rtmask._dicom import RTPLAN_SOP_CLASS
from rtmask._errors import InvalidInputError
from rtmask._rawdicom import RawDataset, read_raw
from rtmask.plan._model import (
    ApplicationSetup,
    Beam,
    BrachyChannel,
    BrachySource,
    DoseReference,
    FractionGroup,
    Prescription,
    RTPlan,
)

if TYPE_CHECKING:
    from pydicom.dataset import Dataset

__all__ = ["is_rtplan", "read_plan"]

logger = logging.getLogger(__name__)

RTION_PLAN_SOP_CLASS = "1.2.840.10008.5.1.4.1.1.481.8"
#: RT Plan storage classes: external beam, ion and brachytherapy plans share one module set.
PLAN_SOP_CLASSES = (RTPLAN_SOP_CLASS, RTION_PLAN_SOP_CLASS)
#: Dose reference structure types that describe a target volume (preferred for the
#: prescription over a point's dose).
_VOLUME_TYPES = ("SITE", "VOLUME")

T = TypeVar("T")


#: Binary numeric value representations: the raw reader decodes them to numbers.
_BINARY_VRS = frozenset({"FL", "FD", "SS", "US", "SL", "UL", "SV", "UV"})


def _raw_value(item: RawDataset, keyword: str) -> Any:
    """A raw element's value as pydicom gives it; None when absent or empty.

    Text (a list of texts when multi-valued), numbers for binary VRs, a list of items for
    a sequence.
    """
    if keyword not in item:
        return None
    vr = item.vr(keyword)
    if vr == "SQ":
        return item.sequence(keyword) or None
    if vr in _BINARY_VRS:
        numbers = [float(v) for v in item.numbers(keyword)]
        return None if not numbers else numbers[0] if len(numbers) == 1 else numbers
    text = item.text(keyword)
    if text is None:
        return None
    parts = [part.strip() for part in text.split("\\")]
    return parts[0] if len(parts) == 1 else parts


def _value(item: Any, keyword: str) -> Any:
    """An element's value, or None when absent or empty (pydicom's value warnings muted)."""
    if isinstance(item, RawDataset):
        return _raw_value(item, keyword)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        value = item.get(keyword)
    return None if value is None or value == "" else value


def _convert(item: Any, keyword: str, where: str, kind: Callable[[Any], T]) -> T | None:
    value = _value(item, keyword)
    if value is None:
        return None
    try:
        return kind(value)
    except (TypeError, ValueError) as error:
        raise InvalidInputError(
            f"{where}: {keyword} {str(value)!r} is not a number; correct it in the plan"
        ) from error


def _number(item: Any, keyword: str, where: str) -> float | None:
    return _convert(item, keyword, where, float)


def _integer(item: Any, keyword: str, where: str) -> int | None:
    return _convert(item, keyword, where, lambda v: int(float(v)))


def _first_float(value: Any) -> float:
    """The first of one or several numbers."""
    return float(value if isinstance(value, (str, int, float)) else value[0])


def _text(item: Any, keyword: str) -> str | None:
    value = _value(item, keyword)
    text = None if value is None else str(value).strip()
    return text or None


def _items(item: Any, keyword: str) -> list[Any]:
    return list(_value(item, keyword) or [])


def is_rtplan(dataset: Dataset | RawDataset) -> bool:
    """True when ``dataset`` is an RT Plan or RT Ion Plan (by SOP class, else Modality)."""
    sop_class = str(_value(dataset, "SOPClassUID") or "")
    if sop_class:
        return sop_class in PLAN_SOP_CLASSES
    return _text(dataset, "Modality") == "RTPLAN"


def _dose_reference(item: Any, where: str) -> DoseReference:
    return DoseReference(
        number=_integer(item, "DoseReferenceNumber", where),
        structure_type=_text(item, "DoseReferenceStructureType"),
        reference_type=_text(item, "DoseReferenceType"),
        description=_text(item, "DoseReferenceDescription"),
        referenced_roi_number=_integer(item, "ReferencedROINumber", where),
        target_prescription_dose_gy=_number(item, "TargetPrescriptionDose", where),
        target_minimum_dose_gy=_number(item, "TargetMinimumDose", where),
        target_maximum_dose_gy=_number(item, "TargetMaximumDose", where),
        delivery_maximum_dose_gy=_number(item, "DeliveryMaximumDose", where),
        organ_at_risk_maximum_dose_gy=_number(item, "OrganAtRiskMaximumDose", where),
    )


def _fraction_group(item: Any, where: str) -> FractionGroup:
    beams = _items(item, "ReferencedBeamSequence")
    setups = _items(item, "ReferencedBrachyApplicationSetupSequence")
    return FractionGroup(
        number=_integer(item, "FractionGroupNumber", where),
        n_fractions_planned=_integer(item, "NumberOfFractionsPlanned", where),
        beam_numbers=tuple(_integer(b, "ReferencedBeamNumber", where) for b in beams),
        beam_doses_gy=tuple(_number(b, "BeamDose", where) for b in beams),
        beam_metersets=tuple(_number(b, "BeamMeterset", where) for b in beams),
        brachy_setup_doses_gy=tuple(
            _number(s, "BrachyApplicationSetupDose", where) for s in setups
        ),
    )


def _isocenter(item: Any, where: str) -> tuple[float, float, float] | None:
    value = _value(item, "IsocenterPosition")
    if value is None:
        return None
    try:
        x, y, z = (float(v) for v in value)
    except (TypeError, ValueError) as error:
        raise InvalidInputError(
            f"{where}: IsocenterPosition {str(value)!r} is not three numbers; correct it"
        ) from error
    return (x, y, z)


def _beam(item: Any, where: str, groups: tuple[FractionGroup, ...]) -> Beam:
    number = _integer(item, "BeamNumber", where)
    points = _items(item, "ControlPointSequence") or _items(item, "IonControlPointSequence")
    first = points[0] if points else None
    meterset = dose = None
    for group in groups:  # the first fraction group that names the beam
        if number is not None and number in group.beam_numbers:
            at = group.beam_numbers.index(number)
            meterset, dose = group.beam_metersets[at], group.beam_doses_gy[at]
            break
    distance = _number(item, "SourceAxisDistance", where)
    if distance is None:  # an ion beam: the first of its virtual source-axis distances
        distance = _convert(item, "VirtualSourceAxisDistances", where, _first_float)
    point_where = f"{where} ControlPointSequence item 1"
    return Beam(
        number=number,
        name=_text(item, "BeamName"),
        beam_type=_text(item, "BeamType"),
        radiation_type=_text(item, "RadiationType"),
        description=_text(item, "BeamDescription"),
        treatment_delivery_type=_text(item, "TreatmentDeliveryType"),
        machine_name=_text(item, "TreatmentMachineName"),
        meterset=meterset,
        meterset_unit=_text(item, "PrimaryDosimeterUnit"),
        dose_per_fraction_gy=dose,
        n_control_points=_integer(item, "NumberOfControlPoints", where) or len(points),
        nominal_energy_mev=None
        if first is None
        else _number(first, "NominalBeamEnergy", point_where),
        gantry_angle_deg=None if first is None else _number(first, "GantryAngle", point_where),
        collimator_angle_deg=None
        if first is None
        else _number(first, "BeamLimitingDeviceAngle", point_where),
        couch_angle_deg=None
        if first is None
        else _number(first, "PatientSupportAngle", point_where),
        isocenter_mm=None if first is None else _isocenter(first, point_where),
        source_axis_distance_mm=distance,
    )


def _setup(item: Any, where: str) -> ApplicationSetup:
    channels = []
    for k, channel in enumerate(_items(item, "ChannelSequence")):
        at = f"{where} ChannelSequence item {k + 1}"
        points = _items(channel, "BrachyControlPointSequence")
        channels.append(
            BrachyChannel(
                number=_integer(channel, "ChannelNumber", at),
                source_number=_integer(channel, "ReferencedSourceNumber", at),
                n_control_points=_integer(channel, "NumberOfControlPoints", at) or len(points),
                total_time_s=_number(channel, "ChannelTotalTime", at),
                applicator=_text(channel, "SourceApplicatorName")
                or _text(channel, "SourceApplicatorID"),
            )
        )
    return ApplicationSetup(
        number=_integer(item, "ApplicationSetupNumber", where),
        name=_text(item, "ApplicationSetupName"),
        setup_type=_text(item, "ApplicationSetupType"),
        channels=tuple(channels),
    )


def _source(item: Any, where: str) -> BrachySource:
    return BrachySource(
        number=_integer(item, "SourceNumber", where),
        isotope_name=_text(item, "SourceIsotopeName"),
        source_type=_text(item, "SourceType"),
        half_life_days=_number(item, "SourceIsotopeHalfLife", where),
        reference_air_kerma_rate=_number(item, "ReferenceAirKermaRate", where),
        strength_reference_date=_text(item, "SourceStrengthReferenceDate"),
    )


def choose_prescription(
    references: tuple[DoseReference, ...], groups: tuple[FractionGroup, ...]
) -> Prescription | None:
    """The plan's prescription dose, from its dose references, else its fraction group.

    A TARGET dose reference's TargetPrescriptionDose is taken first: of a SITE or VOLUME
    (the highest when there are several, the primary target of a boost plan), else of a
    POINT or COORDINATES reference. Without one, the first fraction group's dose per
    fraction (the sum of its BeamDose and BrachyApplicationSetupDose values) times
    NumberOfFractionsPlanned. None when neither is in the plan.
    """
    n_fractions = groups[0].n_fractions_planned if groups else None
    n = n_fractions if n_fractions else None
    targets = [
        (k, r)
        for k, r in enumerate(references)
        if r.target_prescription_dose_gy is not None
        and r.target_prescription_dose_gy > 0
        and r.reference_type in (None, "TARGET")
    ]
    volumes = [(k, r) for k, r in targets if r.structure_type in _VOLUME_TYPES]
    ranked = volumes or targets
    if ranked:
        k, chosen = max(ranked, key=lambda kr: kr[1].target_prescription_dose_gy or 0.0)
        dose = float(chosen.target_prescription_dose_gy or 0.0)
        what = " ".join(t for t in (chosen.structure_type, repr(chosen.description)) if t)
        return Prescription(
            dose_gy=dose,
            source=f"DoseReferenceSequence item {k + 1} ({what}) TargetPrescriptionDose",
            dose_reference_number=chosen.number,
            n_fractions=n,
            dose_per_fraction_gy=None if n is None else dose / n,
        )
    per_fraction = groups[0].dose_per_fraction_gy if groups else None
    if per_fraction is None or n is None or per_fraction <= 0:
        return None
    return Prescription(
        dose_gy=per_fraction * n,
        source=f"FractionGroupSequence item 1: {n} fractions x {per_fraction:g} Gy "
        "(BeamDose summed)",
        n_fractions=n,
        dose_per_fraction_gy=per_fraction,
    )


def _open(source: str | os.PathLike[str] | Dataset) -> tuple[str, Dataset | RawDataset]:
    dataset: Dataset | RawDataset
    if isinstance(source, (str, os.PathLike)):
        name = os.fspath(source)
        dataset = read_raw(name)
    else:
        name = str(getattr(source, "filename", None) or "<dataset>")
        dataset = source
    if not is_rtplan(dataset):
        modality = _text(dataset, "Modality") or "unknown"
        raise InvalidInputError(
            f"{name}: not an RT Plan (Modality {modality}); give an RTPLAN file"
        )
    return name, dataset


def _referenced_uids(items: list[Any]) -> list[str]:
    return [uid for item in items if (uid := _text(item, "ReferencedSOPInstanceUID"))]


def read_plan(source: str | os.PathLike[str] | Dataset) -> RTPlan:
    """Read an RT Plan: prescription, fractions, beams, brachytherapy sources and channels.

    Parameters
    ----------
    source
        Path of an RTPLAN file (RT Plan or RT Ion Plan; preamble optional) or a pydicom
        Dataset.

    Returns
    -------
    RTPlan
        Doses in Gy, angles in degrees, positions in patient mm; the prescription chosen
        as :func:`choose_prescription` says, with its source.

    Raises
    ------
    DicomReadError
        The file cannot be read as DICOM.
    InvalidInputError
        It is not an RT Plan, or a number in it is damaged (the message names the item
        and attribute).
    """
    name, dataset = _open(source)
    references = tuple(
        _dose_reference(item, f"{name}: DoseReferenceSequence item {k + 1}")
        for k, item in enumerate(_items(dataset, "DoseReferenceSequence"))
    )
    group_items = _items(dataset, "FractionGroupSequence")
    groups = tuple(
        _fraction_group(item, f"{name}: FractionGroupSequence item {k + 1}")
        for k, item in enumerate(group_items)
    )
    beam_keyword = "BeamSequence" if "BeamSequence" in dataset else "IonBeamSequence"
    beams = tuple(
        _beam(item, f"{name}: {beam_keyword} item {k + 1}", groups)
        for k, item in enumerate(_items(dataset, beam_keyword))
    )
    structure_sets = _referenced_uids(_items(dataset, "ReferencedStructureSetSequence"))
    doses = _referenced_uids(_items(dataset, "ReferencedDoseSequence"))
    for item in group_items:
        doses.extend(_referenced_uids(_items(item, "ReferencedDoseSequence")))
    plan = RTPlan(
        source=name,
        sop_instance_uid=_text(dataset, "SOPInstanceUID"),
        label=_text(dataset, "RTPlanLabel"),
        name=_text(dataset, "RTPlanName"),
        description=_text(dataset, "RTPlanDescription"),
        date=_text(dataset, "RTPlanDate"),
        time=_text(dataset, "RTPlanTime"),
        intent=_text(dataset, "PlanIntent"),
        geometry=_text(dataset, "RTPlanGeometry"),
        approval_status=_text(dataset, "ApprovalStatus"),
        frame_of_reference_uid=_text(dataset, "FrameOfReferenceUID"),
        prescription=choose_prescription(references, groups),
        dose_references=references,
        fraction_groups=groups,
        beams=beams,
        brachy_treatment_type=_text(dataset, "BrachyTreatmentType"),
        brachy_sources=tuple(
            _source(item, f"{name}: SourceSequence item {k + 1}")
            for k, item in enumerate(_items(dataset, "SourceSequence"))
        ),
        application_setups=tuple(
            _setup(item, f"{name}: ApplicationSetupSequence item {k + 1}")
            for k, item in enumerate(_items(dataset, "ApplicationSetupSequence"))
        ),
        referenced_structure_set_uid=structure_sets[0] if structure_sets else None,
        referenced_dose_uids=tuple(dict.fromkeys(doses)),
    )
    logger.debug("%s: plan %r, %d beam(s)", name, plan.label, len(beams))
    return plan
