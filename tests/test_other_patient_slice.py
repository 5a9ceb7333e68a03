"""An image of another patient in a series: info, convert and volumes name it (issue 12, item 7).

One slice gets another PatientID with pydicom; it stays in the volume (with a warning
naming the file) when nothing else disagrees, and is left out when its study or frame of
reference UID, or its slice plane, also disagrees. The synthetic demo case always, the
real dicomrttool-anon slices of ``../shared/data`` when present.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pydicom
import pytest
from pydicom.dataset import Dataset
from pydicom.uid import generate_uid

from conftest import changed_copy, copy_real, run_cli
from rtmask import read_image_series

OTHER = "SOMEONE-ELSE"

Change = Callable[[Dataset], None]


def _other_id(ds: Dataset) -> None:
    ds.PatientID = OTHER


def _other_frame(ds: Dataset) -> None:
    ds.PatientID = OTHER
    ds.FrameOfReferenceUID = generate_uid()


def _other_study(ds: Dataset) -> None:
    ds.PatientID = OTHER
    ds.StudyInstanceUID = generate_uid()


def _warnings_naming(err: str, path: Path) -> list[str]:
    return [line for line in err.splitlines() if line.startswith("warning:") and str(path) in line]


@pytest.mark.parametrize(
    ("change", "left_out"),
    [(_other_id, False), (_other_frame, True), (_other_study, True)],
    ids=["patient-id-only", "and-frame-of-reference", "and-study"],
)
def test_a_slice_of_another_patient_is_named_and_left_out_when_more_disagrees(
    demo: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    change: Change,
    left_out: bool,
) -> None:
    case = tmp_path / "case"
    stranger = changed_copy(demo, case, "CT_0025.dcm", change)
    slices = 49 if left_out else 50

    assert read_image_series(case).n_slices == slices
    code, out, err = run_cli(capsys, "info", str(case), "--json")
    assert code == 0
    report = json.loads(out)
    (series,) = report["patients"][0]["studies"][0]["image_series"]
    assert series["n_slices"] == slices
    (warning,) = [w for w in series["warnings"] if str(stranger) in w]
    assert f"PatientID {OTHER!r}" in warning
    assert "'RTMASK-DEMO'" in warning
    assert ("left out of the volume" in warning) == left_out
    skipped = [s for s in report["skipped"] if s["kind"] == "other_patient"]
    assert [s["path"] for s in skipped] == ([str(stranger)] if left_out else [])

    out_folder = tmp_path / "out"
    code, _, err = run_cli(capsys, "convert", str(case / "RS_demo.dcm"), "-o", str(out_folder))
    assert len(_warnings_naming(err, stranger)) == 1
    summary = json.loads((out_folder / "summary.json").read_text())
    assert summary["structure_set"]["grid_shape"][0] == slices
    if not left_out:
        assert code == 0

    code, _, err = run_cli(capsys, "volumes", str(case / "RS_demo.dcm"), "--json")
    (line,) = _warnings_naming(err, stranger)
    assert f"PatientID {OTHER!r}" in line


def test_an_extra_slice_of_another_patient_on_an_existing_plane_is_left_out(
    demo: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Without the patient check the two images on one plane would sink the whole series."""
    case = tmp_path / "case"
    shutil.copytree(demo, case)
    ds = pydicom.dcmread(case / "CT_0025.dcm")
    ds.PatientID = OTHER
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    stranger = case / "CT_9999.dcm"
    ds.save_as(stranger)
    series = read_image_series(case)
    assert series.n_slices == 50
    assert stranger not in series.files
    (warning,) = series.warnings
    assert warning.startswith(f"{stranger}: CT image of another patient")
    assert "slice plane" in warning
    code, _, err = run_cli(capsys, "convert", str(case / "RS_demo.dcm"), "-o", str(tmp_path / "o"))
    assert code == 0
    assert len(_warnings_naming(err, stranger)) == 1


def test_real_slice_of_another_patient(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    case = tmp_path / "case"
    copy_real("dicomrttool-anon", case)
    stranger = case / "CT_2.dcm"
    ds = pydicom.dcmread(stranger)
    own = str(ds.PatientID)
    ds.PatientID = OTHER
    ds.save_as(stranger)
    code, _, err = run_cli(
        capsys, "convert", str(case / "RS_Body_SpinalCord.dcm"), "-o", str(tmp_path / "out")
    )
    assert code == 0
    (line,) = _warnings_naming(err, stranger)
    assert f"PatientID {OTHER!r}" in line
    assert f"{own!r}" in line
    assert "kept" in line

    ds.FrameOfReferenceUID = generate_uid()
    ds.save_as(stranger)
    assert read_image_series(case).n_slices == 3
    _, _, err = run_cli(capsys, "volumes", str(case / "RS_Body_SpinalCord.dcm"), "--json")
    (line,) = _warnings_naming(err, stranger)
    assert "left out of the volume" in line
