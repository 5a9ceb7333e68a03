"""Plans on the command line: ``info`` shows them, ``dvh`` takes its prescription from them.

Also the embedded DVHs whose min/mean/max are percent of the prescription though labelled
GY (defect 4 of issue 15): the breast plan and synthetic RT Doses.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file

from conftest import copy_real, run_cli, run_cli_output
from plan_factory import base_plan, beam_plan, brachy_plan, save
from rtmask import ImageGrid
from rtmask.cli import _prescription
from rtmask.synthetic import RoiSpec, sphere_contours, write_ct_series, write_rtdose, write_rtstruct

UNIFORM_GY = 19.5  # the synthetic dose everywhere in the grid
PLAN_UID = "1.2.826.0.1.3680043.8.498.4242"


@pytest.fixture(scope="module")
def case(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """CT, a sphere of radius 8 mm, a uniform 19.5 Gy dose referencing PLAN_UID, no plan.

    Also RD_relative.dcm: the same grid in DoseUnits RELATIVE, 97.5 % everywhere.
    """
    folder = tmp_path_factory.mktemp("plan_case")
    grid = ImageGrid.from_explicit(
        origin_mm=(-20.0, -20.0, -20.0), spacing_mm=(2.0, 1.0, 1.0), shape=(21, 41, 41)
    )
    ct = write_ct_series(folder / "ct", grid)
    sphere = sphere_contours(grid, np.zeros(3), 8.0)
    write_rtstruct(
        folder / "RS.dcm",
        [RoiSpec(number=1, name="PTV", contours=tuple((c, "CLOSED_PLANAR") for c in sphere))],
        ct,
    )
    dose_grid = ImageGrid.from_explicit(
        origin_mm=(-15.0, -15.0, -15.0), spacing_mm=(3.0, 3.0, 3.0), shape=(11, 11, 11)
    )
    write_rtdose(
        folder / "RD.dcm",
        dose_grid,
        np.full(dose_grid.shape, UNIFORM_GY),
        ct,
        referenced_plan_uid=PLAN_UID,
    )
    write_rtdose(  # 97.5 % of the prescription
        folder / "RD_relative.dcm",
        dose_grid,
        np.full(dose_grid.shape, 97.5),
        ct,
        dose_units="RELATIVE",
        referenced_plan_uid=PLAN_UID,
    )
    return folder


def _copy(case: Path, tmp_path: Path) -> Path:
    folder = tmp_path / "case"
    folder.mkdir()
    for name in ("RS.dcm", "RD.dcm"):
        shutil.copy(case / name, folder / name)
    return folder


def _dvh_json(capsys: pytest.CaptureFixture[str], folder: Path, *options: str) -> dict:
    code, out, err = run_cli(
        capsys, "dvh", str(folder / "RS.dcm"), str(folder / "RD.dcm"), "--json", *options
    )
    assert code == 0, err
    return json.loads(out)  # type: ignore[no-any-return]


def test_dvh_takes_the_prescription_from_the_plan_the_dose_references(
    case: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = _copy(case, tmp_path)
    stats = ("--stats", "V95%,V19Gy")
    # No plan beside the dose: V95% needs a prescription.
    code, output = run_cli_output(
        capsys, "dvh", str(folder / "RS.dcm"), str(folder / "RD.dcm"), *stats
    )
    assert code != 0
    assert "--prescription" in output
    # 95 % of 20 Gy = 19 Gy < 19.5 Gy: the whole sphere; of 21 Gy = 19.95 Gy: none of it.
    save(
        beam_plan(prescriptions_gy=(("SITE", "PTV", 20.0),), sop_instance_uid=PLAN_UID),
        folder / "RP.dcm",
    )
    report = _dvh_json(capsys, folder, *stats)
    assert report["prescription"]["dose_gy"] == 20.0
    assert "the plan" in report["prescription"]["source"]
    assert "RP.dcm" in report["prescription"]["source"]
    (roi,) = report["rois"]
    assert roi["stats"]["V95%"] == pytest.approx(roi["volume_cm3"])
    assert roi["stats"]["V95%"] == pytest.approx(roi["stats"]["V19Gy"])
    other = save(
        beam_plan(prescriptions_gy=(("VOLUME", "PTV", 21.0),)), tmp_path / "other_plan.dcm"
    )
    report = _dvh_json(capsys, folder, *stats, "--plan", str(other))
    assert report["prescription"]["dose_gy"] == 21.0
    assert report["prescription"]["source"].startswith(f"--plan {other}")
    assert report["rois"][0]["stats"]["V95%"] == 0.0
    # An explicit --prescription wins, and says what the plan would have given.
    report = _dvh_json(capsys, folder, *stats, "--prescription", "25")
    assert report["prescription"] == {
        "dose_gy": 25.0,
        "source": f"--prescription (the plan {folder / 'RP.dcm'} says 20 Gy)",
    }
    code, out, _ = run_cli(capsys, "dvh", str(folder / "RS.dcm"), str(folder / "RD.dcm"), *stats)
    assert code == 0
    assert f"prescription 20 Gy, from the plan {folder / 'RP.dcm'} that DOSE references" in out


def test_a_plan_the_dose_does_not_reference_is_not_used(
    case: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = _copy(case, tmp_path)
    save(beam_plan(), folder / "RP.dcm")  # another SOP Instance UID
    (folder / "notes.txt").write_text("not DICOM")
    report = _dvh_json(capsys, folder)
    assert report["prescription"] == {"dose_gy": None, "source": None}


def test_plan_without_prescription_or_damaged_is_a_warning(
    case: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = _copy(case, tmp_path)
    save(base_plan(sop_instance_uid=PLAN_UID), folder / "RP.dcm")
    code, out, err = run_cli(
        capsys, "dvh", str(folder / "RS.dcm"), str(folder / "RD.dcm"), "--json"
    )
    assert code == 0
    assert json.loads(out)["prescription"]["dose_gy"] is None
    (line,) = [
        line for line in err.splitlines() if line.startswith("warning:") and "RP.dcm" in line
    ]
    assert "RP.dcm: the plan holds no prescription dose" in line
    assert "--prescription GY" in line
    plan = beam_plan(sop_instance_uid=PLAN_UID, beam_doses_gy=(1.25, 0.75))
    path = save(plan, folder / "RP.dcm")
    path.write_bytes(path.read_bytes().replace(b"1.25", b"1x25"))
    code, out, err = run_cli(
        capsys, "dvh", str(folder / "RS.dcm"), str(folder / "RD.dcm"), "--json"
    )
    assert code == 0
    assert "BeamDose '1x25' is not a number" in err
    assert "(the plan DOSE references; not used)" in err


@pytest.mark.parametrize(
    ("plan", "message"),
    [
        ("missing.dcm", "--plan {path}: no such file; give an RTPLAN file"),
        ("RD.dcm", "{path}: not an RT Plan (Modality RTDOSE); give an RTPLAN file"),
    ],
)
def test_plan_option_errors_are_one_line(
    case: Path, capsys: pytest.CaptureFixture[str], plan: str, message: str
) -> None:
    path = case / plan
    code, out, err = run_cli(
        capsys, "dvh", str(case / "RS.dcm"), str(case / "RD.dcm"), "--plan", str(path)
    )
    assert code != 0
    assert out == ""
    (line,) = err.strip().splitlines()
    assert line == "error: " + message.format(path=path)


def test_plan_option_is_refused_with_table(
    case: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as stop:
        run_cli(capsys, "dvh", str(case), "--table", str(tmp_path / "t.csv"), "--plan", "RP.dcm")
    assert stop.value.code == 2
    assert "--plan is for one structure set and dose, not with --table" in capsys.readouterr().err


# ---------------------------------------------------------------------------- embedded
def _embed(path: Path, *, min_value: str = "85", max_value: str, mean_value: str) -> None:
    """A cumulative DVH for ROI 1: 10 bins of 2 Gy; 4 cm3 get 16 Gy or more, 2 cm3 18 Gy.

    So the minimum lies in 16-18 Gy, the mean in 17-19 Gy, the maximum in 18-20 Gy.
    """
    dataset = pydicom.dcmread(path)
    item = pydicom.Dataset()
    item.DVHType = "CUMULATIVE"
    item.DoseUnits = "GY"
    item.DoseType = "PHYSICAL"
    item.DVHDoseScaling = "1"
    item.DVHVolumeUnits = "CM3"
    item.DVHNumberOfBins = 10
    volumes = [4.0, 4.0, 4.0, 4.0, 4.0, 4.0, 4.0, 4.0, 4.0, 2.0]
    item.DVHData = [v for volume in volumes for v in ("2", f"{volume:g}")]
    reference = pydicom.Dataset()
    reference.ReferencedROINumber = 1
    reference.DVHROIContributionType = "INCLUDED"
    item.DVHReferencedROISequence = [reference]
    item.DVHMinimumDose = min_value
    item.DVHMaximumDose = max_value
    item.DVHMeanDose = mean_value
    dataset.DVHSequence = [item]
    dataset.save_as(path)


def test_embedded_stats_in_percent_are_detected_and_read_with_the_plan(
    case: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = _copy(case, tmp_path)
    # Labelled GY, but percent of 20 Gy: min 85 % (17 Gy), mean 90 %, max 100 %.
    _embed(folder / "RD.dcm", max_value="100", mean_value="90")
    base = ("--embedded", "--stats", "D50")
    code, out, err = run_cli(
        capsys, "dvh", str(folder / "RS.dcm"), str(folder / "RD.dcm"), "--json", *base
    )
    assert code == 0
    embedded = json.loads(out)["rois"][0]["embedded"]
    # Not shown as Gy: min/mean/max of the curve (16 Gy is the last edge all 4 cm3 get;
    # 2 cm3 in 16-18 Gy and 2 cm3 in 18-20 Gy), with a warning naming the ROI.
    assert (embedded["min_gy"], embedded["mean_gy"], embedded["max_gy"]) == (16.0, 18.0, 20.0)
    assert embedded["stats_from"] == "curve"
    assert embedded["stats_dose_scale"] is None
    (warning,) = embedded["warnings"]
    assert warning.startswith(
        "ROI 1 'PTV': embedded DVHMinimumDose 85 GY, DVHMeanDose 90 GY, DVHMaximumDose 100 GY"
    )
    assert (
        "fit it as percent of 20 Gy; min/mean/max are shown from the curve; give --prescription "
        "GY or --plan RP.dcm to convert the stored values" in warning
    )
    assert f"warning: {warning}" in " ".join(err.split())
    save(
        beam_plan(prescriptions_gy=(("SITE", "PTV", 20.0),), sop_instance_uid=PLAN_UID),
        folder / "RP.dcm",
    )
    embedded = _dvh_json(capsys, folder, *base)["rois"][0]["embedded"]
    assert embedded["max_gy"] == pytest.approx(20.0)
    assert embedded["mean_gy"] == pytest.approx(18.0)
    assert embedded["min_gy"] == pytest.approx(17.0)
    assert embedded["stats_dose_scale"] == pytest.approx(0.2)
    assert embedded["stats_from"] == "file"
    assert "read as percent of the prescription, 20 Gy" in embedded["warnings"][0]
    # The explicit option keeps working, and wins over the plan.
    embedded = _dvh_json(capsys, folder, *base, "--embedded-stats-percent-of", "20")["rois"][0][
        "embedded"
    ]
    assert embedded["max_gy"] == pytest.approx(20.0)
    assert embedded["warnings"] == []
    embedded = _dvh_json(capsys, folder, *base, "--embedded-stats-percent-of", "10")["rois"][0][
        "embedded"
    ]
    assert embedded["max_gy"] == pytest.approx(10.0)
    assert "check --embedded-stats-percent-of" in embedded["warnings"][0]


def test_embedded_stats_in_gy_that_fit_their_curve_raise_nothing(
    case: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = _copy(case, tmp_path)
    _embed(folder / "RD.dcm", min_value="17", max_value="20", mean_value="18")
    save(
        beam_plan(prescriptions_gy=(("SITE", "PTV", 20.0),), sop_instance_uid=PLAN_UID),
        folder / "RP.dcm",
    )
    code, out, err = run_cli(
        capsys, "dvh", str(folder / "RS.dcm"), str(folder / "RD.dcm"), "--json", "--embedded"
    )
    assert code == 0
    embedded = json.loads(out)["rois"][0]["embedded"]
    assert embedded["warnings"] == []
    assert embedded["max_gy"] == 20.0
    # The uniform dose reaches the grid's faces; that warning is the only one.
    assert [line for line in err.splitlines() if "grid's faces" not in line] == []


def test_embedded_stats_that_fit_no_percent_are_taken_from_the_curve(
    case: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = _copy(case, tmp_path)
    _embed(folder / "RD.dcm", max_value="100", mean_value="3")  # no single scale fits both
    embedded = _dvh_json(capsys, folder, "--embedded", "--stats", "D50")["rois"][0]["embedded"]
    assert (embedded["min_gy"], embedded["mean_gy"], embedded["max_gy"]) == (16.0, 18.0, 20.0)
    assert embedded["stats"]["D50"] == pytest.approx(18.0)  # 2 of 4 cm3 get >= 18 Gy
    (warning,) = embedded["warnings"]
    assert "percent of" not in warning.split("contradict")[1].split(";")[0]
    assert warning.endswith(
        "; min/mean/max are shown from the curve; give --prescription GY or --plan RP.dcm to "
        "convert the stored values (or --embedded-stats-percent-of GY)"
    )
    # A prescription they do not fit as percent of changes nothing but the warning.
    embedded = _dvh_json(capsys, folder, "--embedded", "--prescription", "20")["rois"][0][
        "embedded"
    ]
    assert embedded["max_gy"] == 20.0
    assert "nor do they fit as percent of the prescription, 20 Gy" in embedded["warnings"][0]
    # Told how to read them, they are shown so (and the warning says to check).
    embedded = _dvh_json(capsys, folder, "--embedded", "--embedded-stats-percent-of", "20")["rois"][
        0
    ]["embedded"]
    assert embedded["max_gy"] == pytest.approx(20.0)
    assert embedded["mean_gy"] == pytest.approx(0.6)


BREAST = "dicompyler-breast"


def test_breast_embedded_stats_are_percent_of_the_plan_prescription(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = copy_real(BREAST, tmp_path)
    plan = pydicom.dcmread(source / "rtplan.dcm")
    site = next(r for r in plan.DoseReferenceSequence if r.DoseReferenceStructureType == "SITE")
    prescription = float(site.TargetPrescriptionDose)
    dose = pydicom.dcmread(source / "rtdose.dcm", stop_before_pixels=True)
    stated = {
        int(item.DVHReferencedROISequence[0].ReferencedROINumber): float(item.DVHMaximumDose)
        for item in dose.DVHSequence
    }
    curve_end = {}  # Gy: the top of each curve's last bin with volume, from DVHData
    for item in dose.DVHSequence:
        data = np.array([float(v) for v in item.DVHData]).reshape(-1, 2)
        last = np.flatnonzero(data[:, 1] > 0)[-1]
        end = float(np.sum(data[: last + 1, 0])) * float(item.DVHDoseScaling)
        curve_end[int(item.DVHReferencedROISequence[0].ReferencedROINumber)] = end
    code, out, err = run_cli(
        capsys,
        "dvh",
        str(tmp_path / "rtss.dcm"),
        str(tmp_path / "rtdose.dcm"),
        "--json",
        "--embedded",
        "--stats",
        "V95%",
    )
    assert code == 1  # ROI 2 'Areola' has no contours (as before)
    assert "ROI 2 'Areola' has no contours" in err
    report = json.loads(out)
    assert report["prescription"]["dose_gy"] == pytest.approx(prescription)
    assert "SITE 'Breast'" in report["prescription"]["source"]
    for roi in report["rois"]:
        embedded = roi["embedded"]
        assert embedded["max_gy"] == pytest.approx(stated[roi["number"]] * prescription / 100)
        # Read as percent of the prescription, the maximum is where the curve ends.
        assert embedded["max_gy"] == pytest.approx(curve_end[roi["number"]], abs=0.02)
        assert embedded["stats"]["V95%"] is not None
        (warning,) = embedded["warnings"]
        assert warning.startswith(f"ROI {roi['number']} {roi['name']!r}: embedded ")
    # Without the plan the same values are flagged, with the prescription they fit.
    (tmp_path / "rtplan.dcm").unlink()
    code, out, _ = run_cli(
        capsys,
        "dvh",
        str(tmp_path / "rtss.dcm"),
        str(tmp_path / "rtdose.dcm"),
        "--json",
        "--embedded",
        "--roi",
        "Heart",
    )
    (roi,) = json.loads(out)["rois"]
    assert roi["embedded"]["max_gy"] == pytest.approx(curve_end[roi["number"]])
    assert "fit it as percent of 14 Gy" in roi["embedded"]["warnings"][0]


def _curve_of(item: pydicom.Dataset) -> tuple[np.ndarray, np.ndarray]:
    """Edges (Gy) and cumulative volumes (cm3) of a CUMULATIVE GY/CM3 DVHSequence item."""
    data = np.array([float(v) for v in item.DVHData]).reshape(-1, 2)
    edges = np.concatenate([[0.0], np.cumsum(data[:, 0] * float(item.DVHDoseScaling))])
    return edges, np.concatenate([data[:, 1], [0.0]])


def test_breast_embedded_rows_without_a_plan_come_from_the_curve(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """No plan, no prescription: the percent values are not shown as Gy (audit defect)."""
    copy_real(BREAST, tmp_path, "rt[sd]*.dcm")  # rtss.dcm and rtdose.dcm, not rtplan.dcm
    assert not (tmp_path / "rtplan.dcm").exists()
    dose = pydicom.dcmread(tmp_path / "rtdose.dcm", stop_before_pixels=True)
    (heart,) = [
        item
        for item in dose.DVHSequence
        if item.DVHReferencedROISequence[0].ReferencedROINumber == 5
    ]
    assert (heart.DoseUnits, heart.DVHType, heart.DVHVolumeUnits) == ("GY", "CUMULATIVE", "CM3")
    edges, volume = _curve_of(heart)
    total = volume[0]
    full = np.flatnonzero(volume[:-1] >= total)[-1]
    expected_min = edges[full]  # the last edge the whole volume receives
    drops = volume[:-1] - volume[1:]
    expected_mean = np.sum(drops * (edges[:-1] + edges[1:]) / 2) / total
    expected_max = edges[np.flatnonzero(volume[:-1] > 0)[-1] + 1]
    # D50: the dose where the piecewise linear curve falls to half the volume.
    k = np.flatnonzero(volume >= total / 2)[-1]
    expected_d50 = edges[k] + (volume[k] - total / 2) / (volume[k] - volume[k + 1]) * (
        edges[k + 1] - edges[k]
    )
    code, out, err = run_cli(
        capsys,
        "dvh",
        str(tmp_path / "rtss.dcm"),
        str(tmp_path / "rtdose.dcm"),
        "--embedded",
        "--roi",
        "Heart",
        "--json",
        "--stats",
        "D99,D95,D50",
    )
    assert code == 0
    document = json.loads(out)
    assert document["prescription"]["dose_gy"] is None
    embedded = document["rois"][0]["embedded"]
    assert embedded["min_gy"] == pytest.approx(expected_min, abs=1e-9)
    assert embedded["mean_gy"] == pytest.approx(expected_mean, rel=1e-9)
    assert embedded["max_gy"] == pytest.approx(expected_max, abs=1e-9)
    assert embedded["stats"]["D50"] == pytest.approx(expected_d50, rel=1e-6)
    assert expected_d50 == pytest.approx(0.113, abs=5e-4)  # not the stored minimum, 0.160
    # D99 and D95 come off the curve too, not clamped to the stored (percent) minimum.
    for name, share in (("D99", 0.99), ("D95", 0.95)):
        k = np.flatnonzero(volume >= total * share)[-1]
        value = edges[k] + (volume[k] - total * share) / (volume[k] - volume[k + 1]) * (
            edges[k + 1] - edges[k]
        )
        assert embedded["stats"][name] == pytest.approx(value, rel=1e-6)
        assert embedded["stats"][name] < float(heart.DVHMinimumDose)
    assert embedded["max_gy"] < float(heart.DVHMaximumDose) / 5  # 3.1 Gy, not 22.1
    warning = " ".join(err.split())
    assert "DVHMaximumDose 22.11 GY contradict" in warning
    assert "shown from the curve; give --prescription GY or --plan RP.dcm to convert" in warning
    # The table shows the same numbers.
    code, out, _ = run_cli(
        capsys,
        "dvh",
        str(tmp_path / "rtss.dcm"),
        str(tmp_path / "rtdose.dcm"),
        "--embedded",
        "--roi",
        "Heart",
    )
    row = next(line for line in out.splitlines() if "embedded" in line)
    assert f"{expected_mean:.3f}" in row
    assert "22.110" not in row
    assert "4.625" not in row


# ---------------------------------------------------------------------------- info
def test_info_of_a_plan_file_shows_prescription_fractions_and_beams(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = save(beam_plan(n_fractions=30, structure_set_uid="1.2.3"), tmp_path / "RP.dcm")
    code, out = run_cli_output(capsys, "info", str(path))
    assert code == 0
    text = " ".join(out.split())
    assert "prescription 60 Gy (DoseReferenceSequence item 1 (SITE 'PTV')" in text
    assert "30 fraction(s) x 2 Gy" in text
    assert "structure set 1.2.3 (not found)" in text
    assert "RP.dcm: 2 beam(s)" in text
    assert (
        "F2 │ DYNAMIC │ PHOTON │ 102 MU │ 0.8 │ 80.0 │ 10.0 │ 350.0 │ 1.5, -2.5, 20.0 │ 3" in text
    )
    code, out, _ = run_cli(capsys, "info", str(path), "--json")
    (entry,) = json.loads(out)["patients"][0]["studies"][0]["plans"]
    assert entry["plan"]["prescription_gy"] == 60.0
    assert [b["name"] for b in entry["plan"]["beams"]] == ["F1", "F2"]


def test_info_of_a_folder_links_plans_to_structure_sets_and_doses(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    copy_real(BREAST, tmp_path)
    save(brachy_plan(), tmp_path / "hdr.dcm")
    save(base_plan(), tmp_path / "bare.dcm")
    (tmp_path / "broken.dcm").write_bytes(
        (tmp_path / "hdr.dcm").read_bytes().replace(b"100.5", b"10x.5")
    )
    code, out, _ = run_cli(capsys, "info", str(tmp_path), "--json")
    assert code == 0
    plans = {
        p["file"]: p
        for study in json.loads(out)["patients"]
        for s in study["studies"]
        for p in s["plans"]
    }
    breast = plans["rtplan.dcm"]
    dose = pydicom.dcmread(tmp_path / "rtdose.dcm", stop_before_pixels=True)
    assert breast["doses"] == [{"sop_instance_uid": dose.SOPInstanceUID, "file": "rtdose.dcm"}]
    assert breast["structure_set"]["file"] == "rtss.dcm"
    assert breast["plan"]["n_fractions"] == 7
    assert plans["hdr.dcm"]["plan"]["brachy_treatment_type"] == "HDR"
    assert "ChannelTotalTime '10x.5' is not a number" in plans["broken.dcm"]["error"]
    code, out = run_cli_output(capsys, "info", str(tmp_path))
    text = " ".join(out.split())
    assert "structure set rtss.dcm; dose(s) rtdose.dcm" in text
    assert "hdr.dcm: HDR channels" in text
    assert "1 T&R │ 2 │ ring │ 1 Ir-192 │ 200.5 │ 4" in text
    assert "bare.dcm: plan PLAN; dated 20240102; no prescription dose" in text
    assert "error: broken.dcm" not in text  # the path as scanned
    assert "ChannelTotalTime '10x.5' is not a number" in text


def test_info_lists_a_brachy_plan_without_setups_by_its_sources(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    plan = brachy_plan()
    del plan.ApplicationSetupSequence
    code, out = run_cli_output(capsys, "info", str(save(plan, tmp_path / "RP.dcm")))
    assert code == 0
    assert "source 1: Ir-192" in out


def test_pydicom_sample_plan_in_info(capsys: pytest.CaptureFixture[str]) -> None:
    path = get_testdata_file("rtplan.dcm")
    assert path is not None
    code, out, _ = run_cli(capsys, "info", str(path), "--json")
    assert code == 0
    (entry,) = json.loads(out)["patients"][0]["studies"][0]["plans"]
    dataset = pydicom.dcmread(path)
    assert entry["plan"]["label"] == dataset.RTPlanLabel
    assert entry["plan"]["n_fractions"] == dataset.FractionGroupSequence[0].NumberOfFractionsPlanned


def test_linked_plan_search_stops_at_a_dose_without_references_or_too_many_files(
    case: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = _copy(case, tmp_path)
    save(beam_plan(sop_instance_uid=PLAN_UID), folder / "RP.dcm")
    found = _prescription.find_linked_plan(folder / "RD.dcm", folder / "RS.dcm")
    assert found == folder / "RP.dcm"
    monkeypatch.setattr(_prescription, "MAX_SIBLINGS", 0)
    assert _prescription.find_linked_plan(folder / "RD.dcm", folder / "RS.dcm") is None
    monkeypatch.undo()
    dose = pydicom.dcmread(folder / "RD.dcm")
    del dose.ReferencedRTPlanSequence
    dose.save_as(folder / "RD.dcm")
    assert _prescription.find_linked_plan(folder / "RD.dcm", folder / "RS.dcm") is None


def test_relative_dose_is_read_with_the_linked_plan_prescription(
    case: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = _copy(case, tmp_path)
    shutil.copy(case / "RD_relative.dcm", folder / "RD.dcm")
    code, output = run_cli_output(capsys, "dvh", str(folder / "RS.dcm"), str(folder / "RD.dcm"))
    assert code != 0
    assert "--prescription" in output
    save(
        beam_plan(prescriptions_gy=(("SITE", "PTV", 20.0),), sop_instance_uid=PLAN_UID),
        folder / "RP.dcm",
    )
    (roi,) = _dvh_json(capsys, folder, "--stats", "Dmean")["rois"]
    assert roi["mean_gy"] == pytest.approx(19.5)  # 97.5 % of 20 Gy
