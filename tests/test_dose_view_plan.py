"""``rtmask dose-view`` takes the prescription as ``rtmask dvh`` does (issue 15, section 4).

``--prescription GY`` wins, then ``--plan RP.dcm``, then the plan DOSE references when it
lies beside DOSE or ``--structures``; % isodose levels are then % of that prescription and
the output says where it came from. Also: the automatic planes leave out an image plane
that holds no dose (the breast plan's only CT slice lies on the dose grid's empty edge).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom
import pytest

from conftest import copy_real, run_cli
from plan_factory import beam_plan, save
from rtmask import ImageGrid
from rtmask.synthetic import CTSeries, RoiSpec, write_ct_series, write_rtdose, write_rtstruct

pytest.importorskip("matplotlib")

PLAN_UID = "1.2.826.0.1.3680043.8.498.5151"
PEAK_GY = 60.0
PLAN_GY = 50.0  # the plan's prescription: 100 % is 50 Gy, not the 60 Gy maximum


def _case(folder: Path, *, dose_units: str = "GY") -> tuple[Path, CTSeries]:
    """A CT and a Gaussian dose peaking at 60 Gy (or 120 % RELATIVE) that references PLAN_UID."""
    ct_grid = ImageGrid.from_explicit(
        origin_mm=(-40.0, -40.0, -20.0), spacing_mm=(4.0, 2.0, 2.0), shape=(11, 41, 41)
    )
    ct = write_ct_series(folder / "ct", ct_grid, hu=np.zeros(ct_grid.shape))
    dose_grid = ImageGrid.from_explicit(
        origin_mm=(-30.0, -30.0, -16.0),
        spacing_mm=(4.0, 3.0, 3.0),
        shape=(9, 21, 21),
        frame_of_reference_uid=ct.frame_of_reference_uid,
    )
    index = np.stack(np.meshgrid(*(np.arange(n) for n in dose_grid.shape), indexing="ij"), -1)
    centres = dose_grid.index_to_patient(index.reshape(-1, 3)).reshape(*dose_grid.shape, 3)
    values = PEAK_GY * np.exp(-np.sum(centres**2, axis=-1) / (2 * 10.0**2))
    if dose_units == "RELATIVE":
        values = values / PLAN_GY * 100.0  # percent of the plan's prescription
    path = write_rtdose(
        folder / "RD.dcm",
        dose_grid,
        values,
        ct,
        dose_units=dose_units,
        referenced_plan_uid=PLAN_UID,
    )
    return path, ct


def _levels(err: str) -> str:
    text = " ".join(err.split())
    return text.split("isodoses ", 1)[1]


def test_percent_levels_are_of_the_plan_beside_the_dose(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rd, _ = _case(tmp_path)
    out = tmp_path / "view.png"
    base = ("dose-view", str(rd), "-o", str(out), "--levels", "100%,95%,20%")
    code, _, err = run_cli(capsys, *base)  # no plan: percentages need one
    assert code == 1
    assert "percentages need a prescription: give --prescription GY or --plan RP.dcm" in err
    code, _, err = run_cli(capsys, "dose-view", str(rd), "-o", str(out))
    assert code == 0, err
    assert _levels(err).startswith("100 % of max (60 Gy), 95 % of max (57 Gy)")
    plan = save(
        beam_plan(prescriptions_gy=(("SITE", "PTV", PLAN_GY),), sop_instance_uid=PLAN_UID),
        tmp_path / "RP.dcm",
    )
    code, _, err = run_cli(capsys, *base)
    assert code == 0, err
    levels = _levels(err)
    assert levels.startswith(
        "100 % of 50 Gy (50 Gy), 95 % of 50 Gy (47.5 Gy), 20 % of 50 Gy (10 Gy)"
    )
    assert f"prescription from the plan {plan} that DOSE references" in levels
    # The default levels too; --prescription wins over the plan, and says what it says.
    code, _, err = run_cli(capsys, "dose-view", str(rd), "-o", str(out), "--prescription", "40")
    assert code == 0, err
    levels = _levels(err)
    assert levels.startswith("100 % of 40 Gy (40 Gy), 95 % of 40 Gy (38 Gy)")
    assert f"from --prescription (the plan {plan} says 50 Gy)" in levels
    # A plan elsewhere, given with --plan (the dose's own plan moved away).
    (tmp_path / "plans").mkdir()
    moved = plan.rename(tmp_path / "plans" / "RP.dcm")
    code, _, err = run_cli(capsys, *base)
    assert code == 1  # beside DOSE no longer
    code, _, err = run_cli(capsys, *base, "--plan", str(moved))
    assert code == 0, err
    assert f"prescription from --plan {moved}" in " ".join(err.split())
    code, _, err = run_cli(capsys, *base, "--plan", str(tmp_path / "none.dcm"))
    assert code == 1
    assert "--plan" in err
    assert "no such file" in err


def test_the_plan_beside_the_structures_converts_a_relative_dose(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    dose_folder, plan_folder = tmp_path / "dose", tmp_path / "plan"
    dose_folder.mkdir()
    plan_folder.mkdir()
    rd, ct = _case(dose_folder, dose_units="RELATIVE")
    out = tmp_path / "view.png"
    code, _, err = run_cli(capsys, "dose-view", str(rd), "-o", str(out))
    assert code == 1
    assert "give --prescription GY to read it in Gy" in " ".join(err.split())
    save(
        beam_plan(prescriptions_gy=(("SITE", "PTV", PLAN_GY),), sop_instance_uid=PLAN_UID),
        plan_folder / "RP.dcm",
    )
    # A structure set beside the plan (not beside DOSE): the plan is looked for there too.
    angles = np.linspace(0, 2 * np.pi, 40, endpoint=False)
    ring = tuple(
        (np.column_stack([8 * np.cos(angles), 8 * np.sin(angles), np.full(40, z)]), "CLOSED_PLANAR")
        for z in (-4.0, 0.0, 4.0)
    )
    structures = write_rtstruct(
        plan_folder / "RS.dcm", [RoiSpec(number=1, name="PTV", contours=ring)], ct
    )
    code, _, err = run_cli(
        capsys, "dose-view", str(rd), "--structures", str(structures), "-o", str(out)
    )
    assert code == 0, err
    levels = _levels(err)
    assert levels.startswith("100 % of 50 Gy (50 Gy)")
    assert "RP.dcm that DOSE references" in levels


def test_breast_levels_are_percent_of_the_plan_and_the_empty_ct_plane_is_left_out(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = copy_real("dicompyler-breast", tmp_path)
    plan = pydicom.dcmread(source / "rtplan.dcm")
    site = next(r for r in plan.DoseReferenceSequence if r.DoseReferenceStructureType == "SITE")
    prescription = float(site.TargetPrescriptionDose)
    assert prescription == 14.0
    # The one CT slice lies on the dose grid's last frame, where the dose is (all but) 0.
    ct = pydicom.dcmread(source / "ct.0.dcm", stop_before_pixels=True)
    dose = pydicom.dcmread(source / "rtdose.dcm")
    z = float(dose.ImagePositionPatient[2]) + np.asarray(dose.GridFrameOffsetVector, float)
    frame = int(np.argmin(np.abs(z - float(ct.ImagePositionPatient[2]))))
    assert abs(z[frame] - float(ct.ImagePositionPatient[2])) < 0.01
    frame_max = float(dose.pixel_array[frame].max()) * float(dose.DoseGridScaling)
    assert frame_max < 0.01 * float(dose.pixel_array.max()) * float(dose.DoseGridScaling)
    out = tmp_path / "breast.png"
    args = ("dose-view", str(tmp_path / "rtdose.dcm"), "--image", str(tmp_path), "-o", str(out))
    code, _, err = run_cli(capsys, *args, "--structures", str(tmp_path / "rtss.dcm"))
    assert code == 0, err
    text = " ".join(err.split())
    assert "isodoses 100 % of 14 Gy (14 Gy), 95 % of 14 Gy (13.3 Gy)" in text
    assert "20 % of 14 Gy (2.8 Gy); prescription from the plan" in text
    assert "rtplan.dcm that DOSE references (DoseReferenceSequence item 1 (SITE 'Breast')" in text
    assert "1 axial panel(s) at -26.4 mm" in text  # the dose maximum's plane only
    assert f"plane(s) at {float(ct.ImagePositionPatient[2]):+.1f} mm hold no dose" in text
    assert "below 1 % of its maximum there); not shown: give --slice MM to show a plane" in text
    assert out.stat().st_size > 10_000
    # Without --structures the plan beside DOSE is still found; asked for, the plane shows.
    code, _, err = run_cli(capsys, *args, "--slice", "168.5593")
    assert code == 0, err
    text = " ".join(err.split())
    assert "1 axial panel(s) at +168.6 mm" in text
    assert "100 % of 14 Gy" in text


def test_a_thin_image_outside_the_dose_is_not_chosen(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rd, ct = _case(tmp_path)
    one = ImageGrid.from_explicit(  # z = -19 mm and +19 mm: beyond the dose's -16 to +16 mm
        origin_mm=(-40.0, -40.0, -19.0), spacing_mm=(38.0, 2.0, 2.0), shape=(2, 41, 41)
    )
    write_ct_series(
        tmp_path / "two",
        one,
        hu=np.zeros(one.shape),
        frame_of_reference_uid=ct.frame_of_reference_uid,
    )
    out = tmp_path / "thin.png"
    code, _, err = run_cli(
        capsys, "dose-view", str(rd), "--image", str(tmp_path / "two"), "-o", str(out)
    )
    assert code == 0, err
    text = " ".join(err.split())
    assert "1 axial panel(s) at +0.0 mm" in text  # the dose maximum only
    assert "the image's axial plane(s) at -19.0, +19.0 mm hold no dose" in text
