"""``rtmask info``: tables and JSON describing what a folder tree holds."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
import pytest

from rtmask.cli import main
from test_discovery import (
    DATA,
    _plane_contours,
    _save,
    needs_data,
    square,
    write_ct_series,
    write_rtstruct,
)


def _info_json(path: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, dict[str, Any]]:
    code = main(["info", str(path), "--json"])
    out = capsys.readouterr().out
    return code, json.loads(out)


def _case(tmp_path: Path) -> tuple[str, list[tuple[Path, str, np.ndarray]]]:
    uid, written = write_ct_series(tmp_path / "patient" / "ct", n_slices=3, rows=6, columns=8)
    contours = [*_plane_contours(written), square(written[0][2] + np.array([3.0, 3.0, 0.0]))]
    write_rtstruct(
        tmp_path / "patient" / "rs.dcm",
        contours=contours,
        image_uids=[sop for _, sop, _ in written],
        series_uid=uid,
        geometric_types=["CLOSED_PLANAR", "CLOSED_PLANAR", "CLOSED_PLANAR", "POINT"],
    )
    (tmp_path / "patient" / "notes.txt").write_text("not DICOM")
    return uid, written


def test_info_json_describes_patients_series_and_rois(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    uid, _ = _case(tmp_path)
    code, report = _info_json(tmp_path, capsys)

    assert code == 0
    assert report["n_files"] == 5
    (patient,) = report["patients"]
    assert patient["patient_id"] == "PAT1"
    assert patient["patient_name"] == "Test^PAT1"
    (study,) = patient["studies"]
    assert study["study_instance_uid"] == "1.2.3.4.1"
    (series,) = study["image_series"]
    assert series["series_instance_uid"] == uid
    assert series["n_slices"] == 3
    assert series["shape"] == [3, 6, 8]
    assert series["spacing_mm"] == pytest.approx([2.5, 0.8, 1.3])
    assert series["orientation"] == "axial HFS"
    assert series["uniform_spacing"] is True
    assert series["folder"] == str(Path("patient") / "ct")
    (structure_set,) = study["structure_sets"]
    assert structure_set["path"] == str(tmp_path / "patient" / "rs.dcm")
    assert structure_set["label"] == "TestSet"
    assert structure_set["link"]["method"] == "series_uid"
    assert structure_set["link"]["series_instance_uid"] == uid
    (roi,) = structure_set["rois"]
    assert roi == {
        "number": 1,
        "name": "Body",
        "color": [255, 128, 0],
        "interpreted_type": "ORGAN",
        "n_contours": 4,
        "geometric_types": ["POINT", "CLOSED_PLANAR"],
        "warnings": [],
    }
    (skipped,) = report["skipped"]
    assert skipped["path"] == str(tmp_path / "patient" / "notes.txt")
    assert skipped["kind"] == "not_dicom"
    assert report["skipped_by_kind"] == {"not_dicom": 1}


def test_info_tables(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _case(tmp_path)
    assert main(["info", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    for text in (
        "PAT1",
        "Body",
        "ORGAN",
        "255,128,0",
        "CLOSED_PLANAR",
        "series_uid",
        "TestSet",
        "axial HFS",
        "1 file(s) skipped",
    ):
        assert text in out
    assert "notes.txt" not in out
    assert main(["info", "-v", str(tmp_path)]) == 0
    assert "notes.txt" in capsys.readouterr().out


def test_info_missing_path(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["info", str(tmp_path / "nowhere")]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = [line for line in captured.err.splitlines() if line.strip()]
    assert len(lines) == 1
    assert "no such file or folder" in lines[0]


def test_info_nothing_dicom(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "a.txt").write_text("hello")
    code, report = _info_json(tmp_path, capsys)
    assert code == 1
    assert report["patients"] == []
    assert report["skipped"][0]["kind"] == "not_dicom"
    assert main(["info", str(tmp_path)]) == 1
    assert "no DICOM image series or RT object" in capsys.readouterr().err


def test_info_reports_an_unlinked_structure_set(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_rtstruct(
        tmp_path / "rs.dcm",
        contours=[square((0.0, 0.0, 0.0))],
        series_uid="9.8.7.6",
        frame_uid="5.5.5.5",
    )
    code, report = _info_json(tmp_path, capsys)
    assert code == 0
    (structure_set,) = report["patients"][0]["studies"][0]["structure_sets"]
    assert structure_set["link"]["method"] == "none"
    assert structure_set["link"]["series_instance_uid"] is None
    message = structure_set["link"]["message"]
    assert "run rtmask info on a folder that also holds the image series" in message
    assert "--image" not in message  # an option info does not have


def test_info_lists_a_defective_structure_set(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _case(tmp_path)
    # A structure set whose ROI sequence cannot be parsed still gets listed.
    broken = pydicom.dcmread(tmp_path / "patient" / "rs.dcm")
    broken.ROIContourSequence[0].ContourSequence[0].ContourData = ["1", "2"]
    broken.SOPInstanceUID = pydicom.uid.generate_uid()
    _save(broken, str(broken.SOPClassUID), tmp_path / "patient" / "rs_short.dcm")
    code, report = _info_json(tmp_path, capsys)
    assert code == 0
    sets = {Path(s["path"]).name: s for s in report["patients"][0]["studies"][0]["structure_sets"]}
    (roi,) = sets["rs_short.dcm"]["rois"]
    assert roi["warnings"]


@needs_data
def test_info_real_lung1(capsys: pytest.CaptureFixture[str]) -> None:
    folder = DATA / "lung1-001"
    code, report = _info_json(folder, capsys)
    assert code == 0
    rtstruct_path = folder / "LUNG1-001" / "mask_rtstruct" / "1-1.dcm"
    rtstruct = pydicom.dcmread(rtstruct_path)
    expected = {int(item.ROINumber): str(item.ROIName) for item in rtstruct.StructureSetROISequence}
    counts = {
        int(item.ReferencedROINumber): len(item.ContourSequence)
        for item in rtstruct.ROIContourSequence
    }
    (patient,) = report["patients"]
    assert patient["patient_id"] == str(rtstruct.PatientID)
    (study,) = patient["studies"]
    (series,) = study["image_series"]
    assert series["n_slices"] == 134
    (structure_set,) = study["structure_sets"]
    assert structure_set["link"]["method"] == "series_uid"
    assert structure_set["link"]["series_instance_uid"] == series["series_instance_uid"]
    assert {r["number"]: r["name"] for r in structure_set["rois"]} == expected
    assert {r["number"]: r["n_contours"] for r in structure_set["rois"]} == counts


def test_version_prints_and_loads_no_command(capsys: pytest.CaptureFixture[str]) -> None:
    from rtmask import __version__
    from rtmask.cli._main import _commands

    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.strip() == f"rtmask {__version__}"
    assert _commands(["--version"]) == []  # no command module imported for it
    assert [m.__name__ for m in _commands(["dvh", "--version"])] == ["rtmask.cli._dvh"]
    assert len(_commands(["--help", "--version"])) > 1  # --help lists every command
