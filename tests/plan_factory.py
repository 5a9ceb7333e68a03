"""Synthetic RT Plans written with plain pydicom: external beam, brachytherapy, bare ones."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

RTPLAN = "1.2.840.10008.5.1.4.1.1.481.5"


def _item(**values: object) -> Dataset:
    item = Dataset()
    for keyword, value in values.items():
        setattr(item, keyword, value)
    return item


def base_plan(
    *,
    label: str = "PLAN",
    structure_set_uid: str | None = None,
    sop_instance_uid: str | None = None,
) -> Dataset:
    """An RT Plan with identity and nothing else (every optional sequence missing)."""
    plan = Dataset()
    plan.file_meta = FileMetaDataset()
    plan.file_meta.MediaStorageSOPClassUID = RTPLAN
    plan.SOPInstanceUID = sop_instance_uid or generate_uid()
    plan.file_meta.MediaStorageSOPInstanceUID = plan.SOPInstanceUID
    plan.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    plan.SOPClassUID = RTPLAN
    plan.Modality = "RTPLAN"
    plan.PatientID = "PLAN-TEST"
    plan.StudyInstanceUID = generate_uid()
    plan.SeriesInstanceUID = generate_uid()
    plan.RTPlanLabel = label
    plan.RTPlanDate = "20240102"
    plan.RTPlanGeometry = "PATIENT"
    if structure_set_uid is not None:
        plan.ReferencedStructureSetSequence = [
            _item(
                ReferencedSOPClassUID="1.2.840.10008.5.1.4.1.1.481.3",
                ReferencedSOPInstanceUID=structure_set_uid,
            )
        ]
    return plan


def beam_plan(
    *,
    prescriptions_gy: Sequence[tuple[str, str, float]] = (("SITE", "PTV", 60.0),),
    n_fractions: int = 30,
    beam_doses_gy: Sequence[float] = (1.2, 0.8),
    structure_set_uid: str | None = None,
    sop_instance_uid: str | None = None,
) -> Dataset:
    """An external-beam plan: dose references (structure type, description, Gy) and beams.

    Beam k (from 1) is named ``F<k>``, gantry ``40 k`` degrees, collimator ``5 k``, couch
    ``350``, meterset ``100 + k`` MU, isocentre ``(1.5, -2.5, 10 k)`` mm, ``k + 1`` control
    points, BeamDose ``beam_doses_gy[k - 1]``.
    """
    plan = base_plan(structure_set_uid=structure_set_uid, sop_instance_uid=sop_instance_uid)
    plan.DoseReferenceSequence = [
        _item(
            DoseReferenceNumber=k + 1,
            DoseReferenceStructureType=structure,
            DoseReferenceDescription=description,
            DoseReferenceType="TARGET",
            TargetPrescriptionDose=f"{dose:g}",
        )
        for k, (structure, description, dose) in enumerate(prescriptions_gy)
    ]
    plan.FractionGroupSequence = [
        _item(
            FractionGroupNumber=1,
            NumberOfFractionsPlanned=n_fractions,
            NumberOfBeams=len(beam_doses_gy),
            NumberOfBrachyApplicationSetups=0,
            ReferencedBeamSequence=[
                _item(ReferencedBeamNumber=k, BeamDose=f"{dose:g}", BeamMeterset=f"{100 + k}")
                for k, dose in enumerate(beam_doses_gy, start=1)
            ],
        )
    ]
    beams = []
    for k in range(1, len(beam_doses_gy) + 1):
        points = [
            _item(
                ControlPointIndex=0,
                NominalBeamEnergy="6",
                GantryAngle=f"{40 * k}",
                BeamLimitingDeviceAngle=f"{5 * k}",
                PatientSupportAngle="350",
                IsocenterPosition=["1.5", "-2.5", f"{10 * k}"],
            ),
            *(_item(ControlPointIndex=i) for i in range(1, k + 1)),
        ]
        beams.append(
            _item(
                BeamNumber=k,
                BeamName=f"F{k}",
                BeamType="STATIC" if k == 1 else "DYNAMIC",
                RadiationType="PHOTON",
                TreatmentDeliveryType="TREATMENT",
                TreatmentMachineName="LINAC",
                PrimaryDosimeterUnit="MU",
                SourceAxisDistance="1000",
                NumberOfControlPoints=k + 1,
                ControlPointSequence=points,
            )
        )
    plan.BeamSequence = beams
    return plan


def brachy_plan(*, n_fractions: int = 4, setup_dose_gy: float = 7.0) -> Dataset:
    """An HDR plan: one Ir-192 source, one application setup with two channels."""
    plan = base_plan(label="HDR")
    plan.BrachyTreatmentType = "HDR"
    plan.BrachyTreatmentTechnique = "INTRACAVITARY"
    plan.SourceSequence = [
        _item(
            SourceNumber=1,
            SourceIsotopeName="Ir-192",
            SourceType="POINT",
            SourceIsotopeHalfLife="73.83",
            ReferenceAirKermaRate="40700",
            SourceStrengthReferenceDate="20240101",
        )
    ]
    channels = [
        _item(
            ChannelNumber=k,
            ReferencedSourceNumber=1,
            NumberOfControlPoints=2 * k,
            ChannelTotalTime=f"{100 * k}.5",
            SourceApplicatorName=f"tandem {k}" if k == 1 else None,
            SourceApplicatorID="ring" if k == 2 else None,
            BrachyControlPointSequence=[_item(ControlPointIndex=i) for i in range(2 * k)],
        )
        for k in (1, 2)
    ]
    for channel in channels:  # the None attributes above are empty; drop them
        for keyword in ("SourceApplicatorName", "SourceApplicatorID"):
            if keyword in channel and not channel.get(keyword):
                delattr(channel, keyword)
    plan.ApplicationSetupSequence = [
        _item(
            ApplicationSetupNumber=1,
            ApplicationSetupName="T&R",
            ApplicationSetupType="FLETCHER_SUIT",
            ChannelSequence=channels,
        )
    ]
    plan.FractionGroupSequence = [
        _item(
            FractionGroupNumber=1,
            NumberOfFractionsPlanned=n_fractions,
            NumberOfBeams=0,
            NumberOfBrachyApplicationSetups=1,
            ReferencedBrachyApplicationSetupSequence=[
                _item(
                    ReferencedBrachyApplicationSetupNumber=1,
                    BrachyApplicationSetupDose=f"{setup_dose_gy:g}",
                )
            ],
        )
    ]
    return plan


def save(dataset: Dataset, path: Path) -> Path:
    """Write ``dataset`` with a preamble; the path back."""
    pydicom.dcmwrite(path, dataset, enforce_file_format=True)
    return path
