"""``rtmask names INDEX`` (the names read from an index equal those read from the folder),
and the index's ``rois`` rows of DICOM SEG segments (headers only).

The archive holds messy ROI names, a copy of a structure set, and a SEG that ``rtmask
convert --format seg`` wrote from one of the structure sets; the expected segment rows are
read from the SEG file with plain pydicom.
"""

from __future__ import annotations

import json
import shutil
from collections import defaultdict
from pathlib import Path
from typing import Any

import pydicom
import pytest

from conftest import run_cli
from rtmask import ImageGrid
from rtmask.cohort import index_archive
from rtmask.synthetic import RoiSpec, sphere_contours, write_ct_series, write_rtstruct

duckdb = pytest.importorskip("duckdb")

#: Patient -> structure sets -> (ROI name, RT ROI Interpreted Type).
ARCHIVE = {
    "P1": [[("Lung_L", "ORGAN"), ("PTV_1", "PTV"), ("Heart", "ORGAN")], [("L Lung", "ORGAN")]],
    "P2": [[("LUNG LT", "ORGAN"), ("Heart", "ORGAN"), ("Spinal Cord", "ORGAN")]],
    "P3": [[("lung left", "ORGAN"), ("heart", "ORGAN"), ("PTV_1", "PTV")]],
}
GRID = ImageGrid.from_explicit(
    origin_mm=(-20.0, -20.0, -10.0), spacing_mm=(2.0, 1.5, 1.5), shape=(8, 24, 24)
)


def _rois(names: list[tuple[str, str]]) -> list[RoiSpec]:
    centre = GRID.index_to_patient([[3.5, 12.0, 12.0]])[0]
    contours = tuple((c, "CLOSED_PLANAR") for c in sphere_contours(GRID, centre, 5.0))
    return [
        RoiSpec(number=i + 1, name=n, interpreted_type=t, contours=contours)
        for i, (n, t) in enumerate(names)
    ]


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The archive of :data:`ARCHIVE`, a copy of P2's structure set, and a SEG of P1's RS0."""
    root = tmp_path_factory.mktemp("archive")
    for patient, structure_sets in ARCHIVE.items():
        ct = write_ct_series(root / patient / "ct", GRID, patient_id=patient)
        for k, names in enumerate(structure_sets):
            write_rtstruct(root / patient / f"RS{k}.dcm", _rois(names), ct)
    shutil.copy(root / "P2" / "RS0.dcm", root / "P2" / "RS0_copy.dcm")
    return root


@pytest.fixture(scope="module")
def seg_archive(archive: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The archive with a SEG written by ``rtmask convert --format seg`` from P1's RS0."""
    pytest.importorskip("highdicom")
    from rtmask.cli import main

    root = tmp_path_factory.mktemp("with_seg") / "archive"
    shutil.copytree(archive, root)
    out = tmp_path_factory.mktemp("seg_out")
    assert main(["convert", str(root / "P1" / "RS0.dcm"), "-o", str(out), "--format", "seg"]) == 0
    shutil.copy(out / "segmentation.dcm", root / "P1" / "SEG.dcm")
    return root


def _index(root: Path, index: Path, capsys: pytest.CaptureFixture[str], *more: str) -> None:
    code, _, err = run_cli(capsys, "index", str(root), "-o", str(index), *more)
    assert code == 0, err


def _names(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict[str, Any], str]:
    code, out, err = run_cli(capsys, "names", *args, "--json")
    return code, json.loads(out), err


def test_names_of_an_index_equal_the_names_of_its_folder(
    seg_archive: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    index = tmp_path / "archive.duckdb"
    _index(seg_archive, index, capsys)
    code_root, from_root, _ = _names(capsys, str(seg_archive))
    code_index, from_index, _ = _names(capsys, str(index))
    assert code_root == code_index == 0
    assert from_index == from_root
    # Counted here from ARCHIVE: the copy of P2's set (same SOPInstanceUID) is no second
    # structure set, as Imaging Data Commons counts distinct UIDs.
    sets: defaultdict[str, set[tuple[str, int]]] = defaultdict(set)
    patients: defaultdict[str, set[str]] = defaultdict(set)
    for patient, structure_sets in ARCHIVE.items():
        for k, names in enumerate(structure_sets):
            for name, _ in names:
                sets[name].add((patient, k))
                patients[name].add(patient)
    rows = from_index["names"]
    assert {r["name"]: (r["structure_sets"], r["patients"]) for r in rows} == {
        name: (len(sets[name]), len(patients[name])) for name in sets
    }  # the SEG's segment labels are not structure set ROI names

    roi_map = tmp_path / "map.yaml"
    roi_map.write_text("Lung_L: ['re:^l(ung)?[ _]?l(ung|t)?$', 'lung left']\n", encoding="utf-8")
    mapped = ("--roi-map", str(roi_map), "--unmapped")
    code_root, from_root, _ = _names(capsys, str(seg_archive), *mapped)
    code_index, from_index, _ = _names(capsys, str(index), *mapped)
    assert code_root == code_index == 0
    assert from_index == from_root
    assert {r["name"] for r in from_index["names"]} == {
        "PTV_1",
        "Heart",
        "heart",
        "Spinal Cord",
    }

    suggested = [tmp_path / "root.yaml", tmp_path / "index.yaml"]
    for source, target in zip((seg_archive, index), suggested, strict=True):
        code, _, _ = run_cli(capsys, "names", str(source), "-q", "--suggest-map", str(target))
        assert code == 0
    assert suggested[0].read_text(encoding="utf-8") == suggested[1].read_text(encoding="utf-8")


def test_names_of_an_index_list_its_unreadable_files(
    archive: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = tmp_path / "archive"
    shutil.copytree(archive, root)
    broken = root / "P3" / "RS_broken.dcm"
    broken.write_bytes((archive / "P1" / "RS0.dcm").read_bytes()[:900])
    index = tmp_path / "archive.duckdb"
    code, _, err = run_cli(capsys, "index", str(root), "-o", str(index))
    assert code == 0  # the index records the broken file (a warning)
    assert "RS_broken.dcm" in err
    code_root, from_root, err_root = _names(capsys, str(root))
    code_index, from_index, err_index = _names(capsys, str(index))
    assert code_root == code_index == 1
    assert from_index == from_root
    assert "RS_broken.dcm" in err_root
    errors = [line for line in err_index.splitlines() if line.startswith("error:")]
    assert len(errors) == 1
    assert "RS_broken.dcm" in errors[0]


def test_names_of_a_file_that_is_not_an_index_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text_file = tmp_path / "notes.duckdb"
    text_file.write_text("not a database\n", encoding="utf-8")
    other = tmp_path / "other.duckdb"
    with duckdb.connect(str(other)) as con:
        con.execute("CREATE TABLE patients (id INTEGER)")
    for path, words in (
        (text_file, "not a DuckDB database"),
        (other, "not an rtmask index"),
        (tmp_path / "missing", "no such folder or index"),
    ):
        code, out, err = run_cli(capsys, "names", str(path), "--json")
        assert code == 1
        assert out == ""
        lines = err.strip().splitlines()
        assert len(lines) == 1, err
        assert str(path) in lines[0]
        assert words in lines[0]
    assert text_file.read_text(encoding="utf-8") == "not a database\n"


def test_rois_table_has_one_row_per_seg_segment(
    seg_archive: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    index = tmp_path / "archive.duckdb"
    _index(seg_archive, index, capsys, "--volumes")
    seg = pydicom.dcmread(seg_archive / "P1" / "SEG.dcm", stop_before_pixels=True)
    types = dict(ARCHIVE["P1"][0])
    rtstruct = pydicom.dcmread(seg_archive / "P1" / "RS0.dcm")
    numbers = {roi.ROINumber: roi.ROIName for roi in rtstruct.StructureSetROISequence}
    colours = {
        numbers[item.ReferencedROINumber]: [int(v) for v in item.ROIDisplayColor]
        for item in rtstruct.ROIContourSequence
    }
    expected = {
        int(item.SegmentNumber): (str(item.SegmentLabel), types[str(item.SegmentLabel)])
        for item in seg.SegmentSequence
    }
    assert sorted(label for label, _ in expected.values()) == sorted(types)
    with duckdb.connect(str(index), read_only=True) as con:
        rows = con.execute(
            "SELECT path, PatientID, SOPInstanceUID, SeriesInstanceUID, ROINumber, ROIName, "
            "RTROIInterpretedType, contours, volume_cm3, volume_error, "
            "ReferencedFrameOfReferenceUID, ROIDisplayColor FROM rois WHERE Modality = 'SEG'"
        ).fetchall()
        modalities = con.execute(
            "SELECT DISTINCT f.Modality, r.Modality FROM rois r JOIN files f USING (path)"
        ).fetchall()
    assert sorted(modalities) == [("RTSTRUCT", "RTSTRUCT"), ("SEG", "SEG")]
    assert {r[4]: (r[5], r[6]) for r in rows} == expected
    for row in rows:
        path, patient, sop_uid, series_uid, _, _, _, contours, volume, error, frame, colour = row
        assert (path, patient) == ("P1/SEG.dcm", "P1")
        assert (sop_uid, series_uid) == (seg.SOPInstanceUID, seg.SeriesInstanceUID)
        assert frame == seg.FrameOfReferenceUID
        assert contours is None
        assert volume is None
        assert "pixel data" in error
        # The colour went to CIELab and back: within a unit or two of the structure set's.
        assert colour is not None
        assert max(abs(a - b) for a, b in zip(colour, colours[row[5]], strict=True)) <= 2

    # An unchanged archive is not read again, SEG rows included: not even when the stamp
    # that short-cuts the run is gone and the database is compared with the walk.
    assert index_archive(seg_archive, index, volumes=True).files_read == 0
    (index.parent / (index.name + ".stamp.json")).unlink()
    assert index_archive(seg_archive, index, volumes=True).files_read == 0


def test_index_with_an_ambiguous_map_lists_the_structure_sets_and_indexes_everything(
    archive: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    roi_map = tmp_path / "map.yaml"
    roi_map.write_text(
        "Cord: ['spinal*']\n"  # 'Spinal Cord' also matches SpinalCanal: P2's sets
        "SpinalCanal: ['re:.*cord.*']\n"
        "Heart: ['heart']\n"
        "PTV: ['PTV*', 'Lung_L']\n",  # P1's RS0: PTV_1 and Lung_L both map to PTV
        encoding="utf-8",
    )
    index = tmp_path / "archive.duckdb"
    code, out, err = run_cli(
        capsys, "index", str(archive), "-o", str(index), "--roi-map", str(roi_map)
    )
    assert code == 1
    conflicted = {"P1/RS0.dcm", "P2/RS0.dcm", "P2/RS0_copy.dcm"}
    lines = [line for line in err.splitlines() if "map.yaml" in line]
    assert len(lines) == len(conflicted)  # one line per structure set file
    assert {next(p for p in conflicted if p in line) for line in lines} == conflicted
    for line in lines:
        if "P1/RS0.dcm" in line:
            assert all(word in line for word in ("'PTV_1'", "'Lung_L'", "'PTV'"))
        else:
            assert all(word in line for word in ("'Spinal Cord'", "'Cord' and 'SpinalCanal'"))
    assert "ROIs in" in out + err  # the summary line: the index was written
    with duckdb.connect(str(index), read_only=True) as con:
        rois = con.execute("SELECT path, ROIName, canonical FROM rois").fetchall()
        objects = dict(con.execute("SELECT path, roi_map_conflict FROM rt_objects").fetchall())
    # Every ROI is indexed, the copy's too: counted here from ARCHIVE.
    expected_rows = sum(len(n) for sets in ARCHIVE.values() for n in sets) + len(ARCHIVE["P2"][0])
    assert len(rois) == expected_rows
    assert {p for p, reason in objects.items() if reason is not None} == conflicted
    for path, name, canonical in rois:
        if path in conflicted:
            assert canonical is None, (path, name)
        else:
            wanted = {"heart": "Heart", "ptv_1": "PTV"}.get(name.lower())
            assert canonical == wanted, (path, name)
    # Without the map the conflicts are gone again.
    code, _, _ = run_cli(capsys, "index", str(archive), "-o", str(index))
    assert code == 0
    with duckdb.connect(str(index), read_only=True) as con:
        left = con.execute(
            "SELECT count(*) FROM rt_objects WHERE roi_map_conflict IS NOT NULL "
            "UNION ALL SELECT count(*) FROM rois WHERE canonical IS NOT NULL"
        ).fetchall()
    assert left == [(0,), (0,)]
