"""read_plan: real plans checked against plain pydicom, synthetic ones for brachy and gaps."""

from __future__ import annotations

import json
from pathlib import Path

import pydicom
import pytest
from pydicom.data import get_testdata_file

import rtmask
from conftest import SHARED_DATA
from plan_factory import base_plan, beam_plan, brachy_plan, save
from rtmask.errors import DicomReadError, InvalidInputError
from rtmask.plan import RTPlan, read_plan

BREAST_PLAN = SHARED_DATA / "dicompyler-breast" / "rtplan.dcm"


def _expected_beams(dataset: pydicom.Dataset) -> list[dict[str, object]]:
    """Every beam's facts, read with plain pydicom (first fraction group's meterset/dose)."""
    group = dataset.FractionGroupSequence[0]
    by_number = {int(b.ReferencedBeamNumber): b for b in group.ReferencedBeamSequence}
    beams = []
    for beam in dataset.BeamSequence:
        first = beam.ControlPointSequence[0]
        referenced = by_number[int(beam.BeamNumber)]
        beams.append(
            {
                "number": int(beam.BeamNumber),
                "name": str(beam.BeamName),
                "beam_type": beam.BeamType,
                "radiation_type": beam.RadiationType,
                "meterset": float(referenced.BeamMeterset),
                "dose_per_fraction_gy": float(referenced.BeamDose),
                "n_control_points": len(beam.ControlPointSequence),
                "gantry_angle_deg": float(first.GantryAngle),
                "collimator_angle_deg": float(first.BeamLimitingDeviceAngle),
                "couch_angle_deg": float(first.PatientSupportAngle),
                "isocenter_mm": tuple(float(v) for v in first.IsocenterPosition),
            }
        )
    return beams


def _check_against_pydicom(plan: RTPlan, path: Path | str) -> pydicom.Dataset:
    dataset = pydicom.dcmread(path)
    assert plan.label == dataset.RTPlanLabel
    assert plan.sop_instance_uid == dataset.SOPInstanceUID
    assert plan.n_fractions == int(dataset.FractionGroupSequence[0].NumberOfFractionsPlanned)
    assert (
        plan.referenced_structure_set_uid
        == dataset.ReferencedStructureSetSequence[0].ReferencedSOPInstanceUID
    )
    for beam, expected in zip(plan.beams, _expected_beams(dataset), strict=True):
        for key, value in expected.items():
            assert getattr(beam, key) == (pytest.approx(value) if key != "name" else value), key
    return dataset


def test_breast_plan_matches_plain_pydicom() -> None:
    if not BREAST_PLAN.is_file():
        pytest.skip(f"{BREAST_PLAN} is absent (shared sample data)")
    plan = rtmask.read_plan(BREAST_PLAN)
    dataset = _check_against_pydicom(plan, BREAST_PLAN)
    assert len(plan.beams) == len(dataset.BeamSequence) == 4
    # Two TARGET dose references: the SITE one (the breast) wins over the calculation point.
    site = next(r for r in dataset.DoseReferenceSequence if r.DoseReferenceStructureType == "SITE")
    assert plan.prescription is not None
    assert plan.prescription_gy == pytest.approx(float(site.TargetPrescriptionDose))
    assert plan.prescription.dose_reference_number == int(site.DoseReferenceNumber)
    assert "SITE 'Breast'" in plan.prescription.source
    beam_doses = sum(
        float(b.BeamDose) for b in dataset.FractionGroupSequence[0].ReferencedBeamSequence
    )
    assert plan.dose_per_fraction_gy == pytest.approx(beam_doses)
    assert plan.prescription.dose_per_fraction_gy == pytest.approx(
        float(site.TargetPrescriptionDose)
        / int(dataset.FractionGroupSequence[0].NumberOfFractionsPlanned)
    )
    assert [r.target_prescription_dose_gy for r in plan.dose_references] == [
        pytest.approx(float(r.TargetPrescriptionDose)) for r in dataset.DoseReferenceSequence
    ]
    assert plan.brachy_sources == ()
    assert plan.channels == ()
    assert json.loads(json.dumps(plan.to_dict()))["prescription_gy"] == pytest.approx(14.0)


def test_pydicom_sample_plan_takes_the_target_point_and_ignores_the_organ_at_risk() -> None:
    path = get_testdata_file("rtplan.dcm")
    assert path is not None
    dataset = pydicom.dcmread(path)
    plan = read_plan(dataset)  # a Dataset, as read_rtstruct takes
    _check_against_pydicom(plan, path)
    target = next(r for r in dataset.DoseReferenceSequence if r.DoseReferenceType == "TARGET")
    assert plan.prescription_gy == pytest.approx(float(target.TargetPrescriptionDose))
    oar = next(r for r in plan.dose_references if r.reference_type == "ORGAN_AT_RISK")
    assert oar.delivery_maximum_dose_gy == pytest.approx(75.0)
    assert oar.organ_at_risk_maximum_dose_gy == pytest.approx(75.0)
    assert plan.source == str(path)


def test_synthetic_plan_reads_every_beam_value(tmp_path: Path) -> None:
    path = save(beam_plan(structure_set_uid="1.2.3.4"), tmp_path / "RP.dcm")
    plan = read_plan(path)
    assert plan.label == "PLAN"
    assert plan.date == "20240102"
    assert plan.geometry == "PATIENT"
    assert plan.referenced_structure_set_uid == "1.2.3.4"
    first, second = plan.beams
    assert (first.number, first.name, first.beam_type, first.radiation_type) == (
        1,
        "F1",
        "STATIC",
        "PHOTON",
    )
    assert (second.gantry_angle_deg, second.collimator_angle_deg, second.couch_angle_deg) == (
        80.0,
        10.0,
        350.0,
    )
    assert second.isocenter_mm == (1.5, -2.5, 20.0)
    assert (second.meterset, second.meterset_unit, second.n_control_points) == (102.0, "MU", 3)
    assert second.dose_per_fraction_gy == pytest.approx(0.8)
    assert first.source_axis_distance_mm == 1000.0
    assert first.nominal_energy_mev == 6.0
    assert plan.prescription_gy == 60.0
    assert plan.prescription is not None
    assert plan.prescription.n_fractions == 30
    assert plan.prescription.dose_per_fraction_gy == pytest.approx(2.0)
    assert plan.dose_per_fraction_gy == pytest.approx(2.0)  # 1.2 + 0.8 Gy of the beams


def test_the_highest_volume_target_is_the_prescription() -> None:
    plan = read_plan(
        beam_plan(
            prescriptions_gy=(
                ("POINT", "ref", 80.0),
                ("VOLUME", "PTV56", 56.0),
                ("SITE", "PTV70", 70.0),
            )
        )
    )
    assert plan.prescription is not None
    assert plan.prescription.dose_gy == 70.0
    assert plan.prescription.dose_reference_number == 3
    assert "item 3 (SITE 'PTV70')" in plan.prescription.source


def test_without_dose_references_the_beam_doses_add_up() -> None:
    dataset = beam_plan(n_fractions=25, beam_doses_gy=(1.0, 0.5, 0.5))
    del dataset.DoseReferenceSequence
    plan = read_plan(dataset)
    assert plan.prescription is not None
    assert plan.prescription.dose_gy == pytest.approx(50.0)
    assert plan.prescription.dose_reference_number is None
    assert "25 fractions x 2 Gy" in plan.prescription.source
    # A beam without BeamDose: the sum is unknown, so is the prescription.
    del dataset.FractionGroupSequence[0].ReferencedBeamSequence[1].BeamDose
    plan = read_plan(dataset)
    assert plan.prescription is None
    assert plan.dose_per_fraction_gy is None
    assert plan.beams[1].dose_per_fraction_gy is None
    assert plan.beams[1].meterset == 102.0


def test_brachytherapy_sources_and_channels_are_listed() -> None:
    plan = read_plan(brachy_plan(n_fractions=4, setup_dose_gy=7.0))
    assert plan.brachy_treatment_type == "HDR"
    (source,) = plan.brachy_sources
    assert (source.number, source.isotope_name, source.source_type) == (1, "Ir-192", "POINT")
    assert source.half_life_days == pytest.approx(73.83)
    assert source.reference_air_kerma_rate == pytest.approx(40700.0)
    assert source.strength_reference_date == "20240101"
    (setup,) = plan.application_setups
    assert (setup.number, setup.name, setup.setup_type) == (1, "T&R", "FLETCHER_SUIT")
    assert [(c.number, c.source_number, c.n_control_points) for c in plan.channels] == [
        (1, 1, 2),
        (2, 1, 4),
    ]
    assert [c.total_time_s for c in plan.channels] == [100.5, 200.5]
    assert [c.applicator for c in plan.channels] == ["tandem 1", "ring"]
    assert plan.beams == ()
    assert plan.prescription_gy == pytest.approx(28.0)  # 4 fractions x 7 Gy
    assert plan.dose_per_fraction_gy == pytest.approx(7.0)


def test_a_plan_with_no_optional_sequence_reads_as_empty(tmp_path: Path) -> None:
    plan = read_plan(save(base_plan(), tmp_path / "RP.dcm"))
    assert plan.prescription is None
    assert plan.n_fractions is None
    assert plan.dose_per_fraction_gy is None
    assert plan.beams == ()
    assert plan.fraction_groups == ()
    assert plan.dose_references == ()
    assert plan.referenced_structure_set_uid is None
    assert plan.referenced_dose_uids == ()


def test_beams_without_control_points_or_fraction_group(tmp_path: Path) -> None:
    dataset = beam_plan()
    del dataset.FractionGroupSequence
    first, second = dataset.BeamSequence
    del first.ControlPointSequence
    del first.NumberOfControlPoints
    del second.ControlPointSequence[0].IsocenterPosition
    plan = read_plan(dataset)
    assert plan.beams[0].n_control_points == 0
    assert plan.beams[0].gantry_angle_deg is None
    assert plan.beams[1].gantry_angle_deg == 80.0
    assert all(b.meterset is None and b.isocenter_mm is None for b in plan.beams)
    assert plan.prescription is not None
    assert plan.prescription.n_fractions is None
    assert plan.prescription.dose_per_fraction_gy is None


def _ion_plan() -> pydicom.Dataset:
    dataset = beam_plan()
    dataset.SOPClassUID = "1.2.840.10008.5.1.4.1.1.481.8"  # RT Ion Plan
    dataset.IonBeamSequence = dataset.BeamSequence
    del dataset.BeamSequence
    for beam in dataset.IonBeamSequence:
        beam.IonControlPointSequence = beam.ControlPointSequence
        del beam.ControlPointSequence
        del beam.SourceAxisDistance
        beam.VirtualSourceAxisDistances = [2000.0, 1800.0]  # FL: binary numbers
    return dataset


def test_ion_plan_beams_and_referenced_doses() -> None:
    dataset = _ion_plan()
    for beam in dataset.IonBeamSequence:
        beam.RadiationType = "PROTON"
    reference = pydicom.Dataset()
    reference.ReferencedSOPInstanceUID = "1.2.9"
    dataset.ReferencedDoseSequence = [reference]
    dataset.FractionGroupSequence[0].ReferencedDoseSequence = [reference, reference]
    plan = read_plan(dataset)
    assert [b.radiation_type for b in plan.beams] == ["PROTON", "PROTON"]
    assert plan.beams[1].gantry_angle_deg == 80.0
    assert plan.beams[0].source_axis_distance_mm == 2000.0
    assert plan.referenced_dose_uids == ("1.2.9",)


def test_not_a_plan_is_one_error_naming_the_file(tmp_path: Path) -> None:
    dose = get_testdata_file("rtdose.dcm")
    assert dose is not None
    with pytest.raises(InvalidInputError, match=r"rtdose\.dcm: not an RT Plan \(Modality RTDOSE\)"):
        read_plan(dose)
    dataset = pydicom.dcmread(dose)
    with pytest.raises(InvalidInputError, match="not an RT Plan"):
        read_plan(dataset)
    text = tmp_path / "notes.dcm"
    text.write_text("not DICOM")
    with pytest.raises(DicomReadError, match=r"notes\.dcm"):
        read_plan(text)
    bare = pydicom.Dataset()
    bare.Modality = "RTPLAN"  # no SOP class: the modality says it is a plan
    assert read_plan(bare).source == "<dataset>"


def test_a_damaged_number_names_the_item_and_attribute(tmp_path: Path) -> None:
    path = save(beam_plan(beam_doses_gy=(1.25, 0.75)), tmp_path / "RP.dcm")
    path.write_bytes(path.read_bytes().replace(b"1.25", b"1x25"))  # BeamDose of beam 1
    with pytest.raises(InvalidInputError, match="FractionGroupSequence item 1: BeamDose '1x25'"):
        read_plan(path)
    dataset = beam_plan()
    dataset.BeamSequence[0].ControlPointSequence[0].IsocenterPosition = ["1", "2"]
    with pytest.raises(
        InvalidInputError, match="BeamSequence item 1 ControlPointSequence item 1: "
    ):
        read_plan(dataset)


@pytest.mark.parametrize("implicit", [False, True])
@pytest.mark.parametrize("make", [beam_plan, brachy_plan, _ion_plan])
def test_a_file_reads_as_its_pydicom_dataset_does(
    tmp_path: Path, make: object, implicit: bool
) -> None:
    """Files go through rtmask's raw reader, Datasets through pydicom: one result."""
    assert callable(make)
    dataset = make()
    path = tmp_path / "RP.dcm"
    if implicit:
        dataset.file_meta.TransferSyntaxUID = pydicom.uid.ImplicitVRLittleEndian
        dataset.save_as(path, enforce_file_format=True)
    else:
        save(dataset, path)
    from_file = read_plan(path)
    assert from_file == read_plan(pydicom.dcmread(path))
    assert from_file.beams or from_file.brachy_sources


def test_real_plans_read_from_file_as_from_pydicom() -> None:
    paths = [get_testdata_file("rtplan.dcm")]
    if BREAST_PLAN.is_file():
        paths.append(str(BREAST_PLAN))
    for path in paths:
        assert path is not None
        assert read_plan(path) == read_plan(pydicom.dcmread(path)), path
