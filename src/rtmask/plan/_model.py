"""The RT Plan as pydicom-free value objects: prescription, fractions, beams, brachytherapy.

Doses in Gy, angles in degrees, positions in patient LPS mm, times in seconds. Values
the file does not hold are None, never guessed.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

__all__ = [
    "ApplicationSetup",
    "Beam",
    "BrachyChannel",
    "BrachySource",
    "DoseReference",
    "FractionGroup",
    "Prescription",
    "RTPlan",
]


@dataclass(frozen=True, slots=True, kw_only=True)
class DoseReference:
    """One DoseReferenceSequence item: a prescription or constraint point, volume or site.

    Parameters
    ----------
    number
        DoseReferenceNumber.
    structure_type
        DoseReferenceStructureType: ``POINT``, ``VOLUME``, ``COORDINATES`` or ``SITE``.
    reference_type
        DoseReferenceType: ``TARGET`` or ``ORGAN_AT_RISK``.
    description
        DoseReferenceDescription.
    referenced_roi_number
        ReferencedROINumber (of the structure set) for POINT and VOLUME references.
    target_prescription_dose_gy, target_minimum_dose_gy, target_maximum_dose_gy
        TargetPrescriptionDose, TargetMinimumDose, TargetMaximumDose, Gy.
    delivery_maximum_dose_gy, organ_at_risk_maximum_dose_gy
        DeliveryMaximumDose, OrganAtRiskMaximumDose, Gy.
    """

    number: int | None
    structure_type: str | None
    reference_type: str | None
    description: str | None = None
    referenced_roi_number: int | None = None
    target_prescription_dose_gy: float | None = None
    target_minimum_dose_gy: float | None = None
    target_maximum_dose_gy: float | None = None
    delivery_maximum_dose_gy: float | None = None
    organ_at_risk_maximum_dose_gy: float | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Prescription:
    """The plan's prescription dose and where it was read.

    Parameters
    ----------
    dose_gy
        Prescription dose of the whole course, Gy.
    source
        Where it comes from, in words (e.g. ``DoseReferenceSequence item 1 (SITE 'Breast')
        TargetPrescriptionDose``).
    dose_reference_number
        DoseReferenceNumber of the item it was read from; None when it was added up from
        the beam doses of a fraction group.
    n_fractions
        NumberOfFractionsPlanned of the first fraction group, when given.
    dose_per_fraction_gy
        ``dose_gy / n_fractions`` when the number of fractions is known.
    """

    dose_gy: float
    source: str
    dose_reference_number: int | None = None
    n_fractions: int | None = None
    dose_per_fraction_gy: float | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class FractionGroup:
    """One FractionGroupSequence item.

    Parameters
    ----------
    number
        FractionGroupNumber.
    n_fractions_planned
        NumberOfFractionsPlanned.
    beam_numbers
        ReferencedBeamNumber of each ReferencedBeamSequence item, in file order.
    beam_doses_gy
        BeamDose of each of them (per fraction, Gy; None where absent).
    beam_metersets
        BeamMeterset of each of them (per fraction, in the beam's dosimeter unit).
    brachy_setup_doses_gy
        BrachyApplicationSetupDose of each ReferencedBrachyApplicationSetupSequence item.
    """

    number: int | None
    n_fractions_planned: int | None
    beam_numbers: tuple[int | None, ...] = ()
    beam_doses_gy: tuple[float | None, ...] = ()
    beam_metersets: tuple[float | None, ...] = ()
    brachy_setup_doses_gy: tuple[float | None, ...] = ()

    @property
    def dose_per_fraction_gy(self) -> float | None:
        """Sum of the beam (and brachytherapy setup) doses, Gy; None unless all are given."""
        doses = (*self.beam_doses_gy, *self.brachy_setup_doses_gy)
        if not doses or any(d is None for d in doses):
            return None
        return float(sum(d for d in doses if d is not None))


@dataclass(frozen=True, slots=True, kw_only=True)
class Beam:
    """One BeamSequence (or IonBeamSequence) item, with its first control point's setup.

    Parameters
    ----------
    number, name, description
        BeamNumber, BeamName, BeamDescription.
    beam_type
        BeamType: ``STATIC`` or ``DYNAMIC``.
    radiation_type
        RadiationType: ``PHOTON``, ``ELECTRON``, ``PROTON``, ...
    treatment_delivery_type
        TreatmentDeliveryType: ``TREATMENT``, ``OPEN_PORTFILM``, ``SETUP``, ...
    machine_name
        TreatmentMachineName.
    meterset, meterset_unit
        BeamMeterset of the first fraction group that names the beam (per fraction) and
        PrimaryDosimeterUnit (``MU``, ``MINUTE``, ``NP``).
    dose_per_fraction_gy
        BeamDose of that fraction group, Gy.
    n_control_points
        NumberOfControlPoints (the length of the control point sequence when absent).
    nominal_energy_mev
        NominalBeamEnergy of the first control point, MeV.
    gantry_angle_deg, collimator_angle_deg, couch_angle_deg
        GantryAngle, BeamLimitingDeviceAngle, PatientSupportAngle of the first control
        point, degrees.
    isocenter_mm
        IsocenterPosition of the first control point, patient LPS mm.
    source_axis_distance_mm
        SourceAxisDistance (VirtualSourceAxisDistances' first value for ion beams), mm.
    """

    number: int | None
    name: str | None
    beam_type: str | None
    radiation_type: str | None
    description: str | None = None
    treatment_delivery_type: str | None = None
    machine_name: str | None = None
    meterset: float | None = None
    meterset_unit: str | None = None
    dose_per_fraction_gy: float | None = None
    n_control_points: int = 0
    nominal_energy_mev: float | None = None
    gantry_angle_deg: float | None = None
    collimator_angle_deg: float | None = None
    couch_angle_deg: float | None = None
    isocenter_mm: tuple[float, float, float] | None = None
    source_axis_distance_mm: float | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class BrachySource:
    """One SourceSequence item of a brachytherapy plan.

    Parameters
    ----------
    number
        SourceNumber.
    isotope_name, source_type
        SourceIsotopeName (e.g. ``Ir-192``), SourceType (``POINT``, ``LINE``, ...).
    half_life_days
        SourceIsotopeHalfLife, days.
    reference_air_kerma_rate
        ReferenceAirKermaRate, uGy m2 / h at the reference date.
    strength_reference_date
        SourceStrengthReferenceDate as written (YYYYMMDD).
    """

    number: int | None
    isotope_name: str | None
    source_type: str | None = None
    half_life_days: float | None = None
    reference_air_kerma_rate: float | None = None
    strength_reference_date: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class BrachyChannel:
    """One ChannelSequence item of an application setup.

    Parameters
    ----------
    number
        ChannelNumber.
    source_number
        ReferencedSourceNumber (a :class:`BrachySource`).
    n_control_points
        NumberOfControlPoints (the length of BrachyControlPointSequence when absent).
    total_time_s
        ChannelTotalTime, seconds.
    applicator
        SourceApplicatorName, else SourceApplicatorID.
    """

    number: int | None
    source_number: int | None
    n_control_points: int = 0
    total_time_s: float | None = None
    applicator: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ApplicationSetup:
    """One ApplicationSetupSequence item: its type, name and channels.

    Parameters
    ----------
    number, name, setup_type
        ApplicationSetupNumber, ApplicationSetupName, ApplicationSetupType.
    channels
        Its ChannelSequence.
    """

    number: int | None
    name: str | None
    setup_type: str | None
    channels: tuple[BrachyChannel, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class RTPlan:
    """An RT Plan (or RT Ion Plan): what ``rtmask.read_plan`` returns.

    Parameters
    ----------
    source
        The file name (``<dataset>`` for a Dataset without one), for messages.
    sop_instance_uid, frame_of_reference_uid
        Identity and frame of reference of the plan.
    label, name, description
        RTPlanLabel, RTPlanName, RTPlanDescription.
    date, time
        RTPlanDate (YYYYMMDD) and RTPlanTime as written.
    intent, geometry, approval_status
        PlanIntent, RTPlanGeometry (``PATIENT`` or ``TREATMENT_DEVICE``), ApprovalStatus.
    prescription
        The prescription dose and its source (None when the plan holds none).
    dose_references, fraction_groups, beams
        DoseReferenceSequence, FractionGroupSequence, BeamSequence (or IonBeamSequence).
    brachy_treatment_type
        BrachyTreatmentType (``HDR``, ``LDR``, ``PDR``, ...), None for external beams.
    brachy_sources, application_setups
        SourceSequence and ApplicationSetupSequence of a brachytherapy plan.
    referenced_structure_set_uid
        SOPInstanceUID of the ReferencedStructureSetSequence's first item.
    referenced_dose_uids
        SOPInstanceUIDs of ReferencedDoseSequence items (top level and fraction groups).
    """

    source: str
    sop_instance_uid: str | None
    label: str | None
    name: str | None = None
    description: str | None = None
    date: str | None = None
    time: str | None = None
    intent: str | None = None
    geometry: str | None = None
    approval_status: str | None = None
    frame_of_reference_uid: str | None = None
    prescription: Prescription | None = None
    dose_references: tuple[DoseReference, ...] = ()
    fraction_groups: tuple[FractionGroup, ...] = ()
    beams: tuple[Beam, ...] = ()
    brachy_treatment_type: str | None = None
    brachy_sources: tuple[BrachySource, ...] = ()
    application_setups: tuple[ApplicationSetup, ...] = ()
    referenced_structure_set_uid: str | None = None
    referenced_dose_uids: tuple[str, ...] = ()

    @property
    def n_fractions(self) -> int | None:
        """NumberOfFractionsPlanned of the first fraction group."""
        return self.fraction_groups[0].n_fractions_planned if self.fraction_groups else None

    @property
    def dose_per_fraction_gy(self) -> float | None:
        """Dose per fraction, Gy: the first fraction group's beam doses, else prescription / n."""
        if self.fraction_groups and self.fraction_groups[0].dose_per_fraction_gy is not None:
            return self.fraction_groups[0].dose_per_fraction_gy
        return self.prescription.dose_per_fraction_gy if self.prescription else None

    @property
    def prescription_gy(self) -> float | None:
        """The prescription dose, Gy (None when the plan holds none)."""
        return self.prescription.dose_gy if self.prescription else None

    @property
    def channels(self) -> tuple[BrachyChannel, ...]:
        """Every brachytherapy channel of every application setup, in file order."""
        return tuple(c for setup in self.application_setups for c in setup.channels)

    def to_dict(self) -> dict[str, Any]:
        """The plan as JSON-ready data (tuples as lists), with the derived values."""
        data = asdict(self)
        data.update(
            n_fractions=self.n_fractions,
            dose_per_fraction_gy=self.dose_per_fraction_gy,
            prescription_gy=self.prescription_gy,
        )
        return _lists(data)  # type: ignore[no-any-return]


def _lists(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _lists(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_lists(item) for item in value]
    return value
