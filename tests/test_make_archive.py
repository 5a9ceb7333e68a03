"""The benchmark's archive generator (benchmarks/make_archive.py) writes what it claims."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pydicom
import pytest

from conftest import SHARED_DATA
from rtmask.cohort import CaseOptions, index_archive, open_index, plan_archive

pytest.importorskip("duckdb")

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "make_archive.py"
PATIENTS = 7  # every orientation, and patient 4 has beam doses only


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict, Path]:
    """The archive (one copy of the real data when present), its manifest and its index."""
    root = tmp_path_factory.mktemp("made") / "archive"
    subprocess.run(
        [sys.executable, str(SCRIPT), str(root), "--patients", str(PATIENTS), "--real-copies", "1"],
        check=True,
        capture_output=True,
        text=True,
    )
    manifest = json.loads((root / "manifest.json").read_text(encoding="utf-8"))
    index = root.parent / "index.duckdb"
    index_archive(root, index)
    return root, manifest, index


def _rows(index: Path, sql: str) -> list[tuple]:
    connection = open_index(index)
    try:
        return connection.execute(sql).fetchall()
    finally:
        connection.close()


def test_patients_orientations_and_names(made: tuple[Path, dict, Path]) -> None:
    root, manifest, index = made
    folders = sorted(p.name for p in (root / "synthetic").iterdir())
    assert folders == [f"SYN{i:04d}" for i in range(PATIENTS)]
    assert manifest["patients"] == PATIENTS
    for entry in manifest["synthetic"]:
        written = pydicom.dcmread(root / entry["structure_set"])
        assert written.PatientID == entry["patient_id"]
        assert [r.ROIName for r in written.StructureSetROISequence] == entry["rois"]
    # the index sees six orientations among the synthetic CT series
    labels = _rows(index, "SELECT orientation FROM series WHERE PatientID LIKE 'SYN%'")
    kinds = Counter(label.split()[0] for (label,) in labels)
    assert set(kinds) == {"axial", "sagittal", "coronal", "oblique"}
    assert kinds["axial"] == 4  # HFS, FFS, HFP, and patient 6 (HFS again)
    positions = {
        p for (p,) in _rows(index, "SELECT PatientPosition FROM series WHERE folder LIKE 'syn%'")
    }
    assert {"HFS", "FFS", "HFP"} <= positions
    assert sum(manifest["orientations"].values()) == PATIENTS


def test_plans_and_doses_link_to_the_structure_sets(made: tuple[Path, dict, Path]) -> None:
    root, manifest, _ = made
    plan = plan_archive(root / "synthetic", root.parent / "unused", CaseOptions())
    choices = {task.patient_id: task.dose.choice for task in plan.tasks if task.dose}
    for entry in manifest["synthetic"]:
        expected = "sum of 2 beam doses" if entry["doses"] == "2 beam doses" else "plan"
        assert choices[entry["patient_id"]] == expected
    assert choices["SYN0004"] == "sum of 2 beam doses"
    assert all(task.link == "series_uid" for task in plan.tasks)


def test_broken_files_are_there_and_reported(made: tuple[Path, dict, Path]) -> None:
    root, manifest, index = made
    broken = manifest["broken"]
    truncated = root / broken["truncated"]
    first = root / manifest["synthetic"][0]["structure_set"]
    assert 0 < truncated.stat().st_size < first.stat().st_size
    assert first.read_bytes().startswith(truncated.read_bytes())
    copy, original = (root / broken["duplicate"][k] for k in ("copy", "original"))
    assert copy.read_bytes() == original.read_bytes()
    status = dict(_rows(index, "SELECT path, status FROM files"))
    assert status[broken["truncated"]] == "unreadable"
    for path in broken["not_dicom"]:
        assert status[path] in {"skipped", "unreadable"}
        with pytest.raises(pydicom.errors.InvalidDicomError):
            pydicom.dcmread(root / path)
    links = dict(_rows(index, "SELECT path, link FROM rt_objects"))
    assert links[broken["without_images"]] == "none"
    (duplicate_of,) = _rows(
        index, f"SELECT duplicate_of FROM rt_objects WHERE path = '{broken['duplicate']['copy']}'"
    )
    assert duplicate_of == (broken["duplicate"]["original"],)


def _uids(path: Path) -> set[str]:
    dataset = pydicom.dcmread(path, stop_before_pixels=True)
    return {
        str(dataset.get(keyword))
        for keyword in ("SOPInstanceUID", "SeriesInstanceUID", "StudyInstanceUID")
        if keyword in dataset
    }


def test_real_data_copies_have_new_uids_and_the_same_links(
    made: tuple[Path, dict, Path], tmp_path: Path
) -> None:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real DICOM test data not found at {SHARED_DATA} (../shared/data)")
    root, manifest, index = made
    assert {entry["source"] for entry in manifest["real"]} == {
        p.name for p in SHARED_DATA.iterdir() if p.is_dir()
    }
    original_index = tmp_path / "original.duckdb"
    index_archive(SHARED_DATA, original_index)
    for entry in manifest["real"]:
        source = SHARED_DATA / entry["source"]
        copied = sorted((root / entry["folder"]).rglob("*"))
        files = [p for p in copied if p.is_file()]
        assert len(files) == entry["files"] > 0
        for path in files:
            new = pydicom.dcmread(path, stop_before_pixels=True)
            old = pydicom.dcmread(source / path.relative_to(root / entry["folder"]), force=True)
            assert not _uids(path) & _uids(source / path.relative_to(root / entry["folder"]))
            assert new.PatientID == f"{old.get('PatientID') or 'anonymous'}-copy0"
            assert new.SOPClassUID == old.SOPClassUID
        # every link the original data has, the copy has, by the same method
        prefix = entry["source"] + "/"
        before = _rows(
            original_index,
            f"SELECT substr(path, {len(prefix) + 1}), Modality, link FROM rt_objects "
            f"WHERE path LIKE '{prefix}%' ORDER BY 1",
        )
        prefix = entry["folder"] + "/"
        after = _rows(
            index,
            f"SELECT substr(path, {len(prefix) + 1}), Modality, link FROM rt_objects "
            f"WHERE path LIKE '{prefix}%' ORDER BY 1",
        )
        assert after == before
        assert before
