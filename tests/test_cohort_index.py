"""``rtmask index`` / ``rtmask query`` and rtmask.cohort: the DuckDB index of an archive.

The archive is written here with rtmask.synthetic (several patients and orientations,
RTSTRUCT + RTDOSE + RTPLAN, a broken file, a truncated one, a copy of a structure set,
symbolic link loops); every expected row is counted from the files with plain pydicom.
"""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

import rtmask
from conftest import FFS, HFS, OBLIQUE, SAGITTAL, run_cli
from rtmask._errors import InvalidInputError
from rtmask.cli import main
from rtmask.cohort import index_archive, open_index, run_query
from rtmask.geometry import ImageGrid
from rtmask.synthetic import (
    RoiSpec,
    cylinder_contours,
    write_ct_series,
    write_rtdose,
    write_rtstruct,
)

duckdb = pytest.importorskip("duckdb")

RTPLAN_CLASS = "1.2.840.10008.5.1.4.1.1.481.5"

#: The README's two queries, copied here and checked against the README text below.
IDC_QUERY = (
    "SELECT ROIName, COUNT(DISTINCT SeriesInstanceUID) AS series FROM rois "
    "GROUP BY ROIName ORDER BY series DESC, ROIName"
)
PTV_QUERY = (
    "SELECT DISTINCT d.PatientID FROM rt_objects AS d JOIN rois AS r ON r.PatientID = "
    "d.PatientID WHERE d.Modality = 'RTDOSE' AND (r.RTROIInterpretedType = 'PTV' OR "
    "r.ROIName ILIKE 'PTV%') ORDER BY d.PatientID"
)

#: patient -> (orientation, patient position, ROIs as (name, type), dose, plan)
CASES = {
    "P1": (HFS, "HFS", [("PTV", "PTV"), ("Lung_L", "ORGAN"), ("Body", "EXTERNAL")], True, True),
    "P2": (SAGITTAL, "HFS", [("L Lung", "ORGAN"), ("GTV", "GTV")], False, False),
    "P3": (OBLIQUE, None, [("PTV_high", "CTV"), ("Lung_L", "ORGAN")], True, False),
    "P4": (FFS, "FFS", [("PTV", "PTV"), ("Body", "EXTERNAL")], False, False),
}


def _write_plan(path: Path, patient_id: str, study_uid: str, rtstruct_uid: str) -> str:
    uid = generate_uid()
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = RTPLAN_CLASS
    meta.MediaStorageSOPInstanceUID = uid
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID, ds.Modality = RTPLAN_CLASS, uid, "RTPLAN"
    ds.PatientID, ds.StudyInstanceUID, ds.SeriesInstanceUID = patient_id, study_uid, generate_uid()
    ds.RTPlanLabel = "PLAN"
    item = Dataset()
    item.ReferencedSOPClassUID = "1.2.840.10008.5.1.4.1.1.481.3"
    item.ReferencedSOPInstanceUID = rtstruct_uid
    ds.ReferencedStructureSetSequence = [item]
    ds.save_as(path, enforce_file_format=True)
    return uid


def _grid(orientation: tuple[float, ...]) -> ImageGrid:
    return ImageGrid.from_explicit(
        origin_mm=(-20.0, -15.0, -6.0),
        spacing_mm=(3.0, 1.5, 2.0),
        shape=(5, 16, 20),
        orientation=orientation,
    )


def _case(folder: Path, patient: str) -> None:
    orientation, position, rois, dose, plan = CASES[patient]
    grid = _grid(orientation)
    ct = write_ct_series(folder / "CT", grid, patient_id=patient, patient_position=position)
    centre = grid.index_to_patient([2.0, 7.5, 9.5])[0]
    specs = [
        RoiSpec(
            number=i + 1,
            name=name,
            interpreted_type=kind,
            contours=tuple(
                (c, "CLOSED_PLANAR") for c in cylinder_contours(grid, centre, 4.0 + i, 7.0)
            ),
        )
        for i, (name, kind) in enumerate(rois)
    ]
    write_rtstruct(folder / "RS.dcm", specs, ct)
    plan_uid = None
    if plan:
        rtstruct_uid = pydicom.dcmread(folder / "RS.dcm").SOPInstanceUID
        plan_uid = _write_plan(folder / "RP.dcm", patient, ct.study_instance_uid, rtstruct_uid)
    if dose:
        write_rtdose(folder / "RD.dcm", grid, np.ones(grid.shape), ct, referenced_plan_uid=plan_uid)


def build_archive(root: Path) -> Path:
    """The test archive: four cases, junk, a truncated image, a copy, two link loops."""
    for patient in CASES:
        _case(root / patient, patient)
    (root / "P2" / "notes.txt").write_text("not DICOM\n")
    first_ct = sorted((root / "P4" / "CT").iterdir())[0]
    (root / "P4" / "truncated.dcm").write_bytes(first_ct.read_bytes()[:400])
    (root / "copies").mkdir()
    shutil.copy(root / "P1" / "RS.dcm", root / "copies" / "RS_copy.dcm")
    (root / "P5").symlink_to(root / "P5")  # a link onto itself
    (root / "P3" / "back").symlink_to(root)  # a link to an ancestor
    return root


def _dicom_files(root: Path) -> dict[str, Dataset]:
    """Every readable DICOM file written, by relative path, read with pydicom."""
    found = {}
    for path in root.rglob("*"):
        if path.is_file() and not path.is_symlink() and path.name != "notes.txt":
            rel = path.relative_to(root).as_posix()
            if rel != "P4/truncated.dcm":
                found[rel] = pydicom.dcmread(path, stop_before_pixels=True)
    return found


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_archive(tmp_path_factory.mktemp("archive"))


@pytest.fixture(scope="module")
def indexed(archive: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    index = tmp_path_factory.mktemp("index") / "archive.duckdb"
    index_archive(archive, index, volumes=True)
    return index


def _rows(index: Path, sql: str) -> list[tuple[object, ...]]:
    with open_index(index) as con:
        return list(con.execute(sql).fetchall())


def _rows_by_key(index: Path, sql: str) -> dict[object, tuple[object, ...]]:
    """The rows of ``sql`` by their first column, each with the other columns."""
    return {row[0]: row[1:] for row in _rows(index, sql)}


# ------------------------------------------------------------------------- the tables
def test_files_table_lists_every_file_with_its_uids_and_status(
    archive: Path, indexed: Path
) -> None:
    written = _dicom_files(archive)
    rows = _rows_by_key(indexed, "SELECT path, SOPInstanceUID, status, size FROM files")
    for rel, ds in written.items():
        uid, status, size = rows[rel]
        assert uid == ds.SOPInstanceUID
        assert status == "ok"
        assert size == (archive / rel).stat().st_size
    assert rows["P2/notes.txt"][1] == "skipped"
    assert rows["P4/truncated.dcm"][1] == "unreadable"
    assert rows["P5"][1:] == ("skipped", None)
    assert rows["P3/back"][1] == "skipped"
    assert set(rows) == {*written, "P2/notes.txt", "P4/truncated.dcm", "P5", "P3/back"}
    reasons = dict(_rows(indexed, "SELECT path, reason FROM files WHERE size IS NULL"))
    assert "loop" in reasons["P5"]
    assert "loop" in reasons["P3/back"]


def test_series_table_has_geometry_and_orientation(archive: Path, indexed: Path) -> None:
    written = _dicom_files(archive)
    series = _rows_by_key(
        indexed,
        "SELECT SeriesInstanceUID, PatientID, instances, slices, Rows, Columns, "
        "slice_spacing_mm, orientation, uniform_spacing, StudyDate FROM series",
    )
    cts = defaultdict(list)
    for ds in written.values():
        if ds.Modality == "CT":
            cts[ds.SeriesInstanceUID].append(ds)
    assert set(series) == set(cts)
    planes = {"P1": "axial", "P2": "sagittal", "P3": "oblique", "P4": "axial"}
    for uid, images in cts.items():
        patient, instances, slices, rows, columns, spacing, label, uniform, date = series[uid]
        assert patient == images[0].PatientID
        assert instances == slices == len(images)
        assert (rows, columns) == (images[0].Rows, images[0].Columns)
        assert spacing == pytest.approx(3.0)
        position = images[0].get("PatientPosition")
        assert label == f"{planes[patient]} {position}" if position else planes[patient]
        assert uniform is True
        assert date.strftime("%Y%m%d") == images[0].StudyDate


def test_rt_objects_are_linked_and_the_copy_is_reported(archive: Path, indexed: Path) -> None:
    written = _dicom_files(archive)
    rt = _rows_by_key(
        indexed,
        "SELECT path, Modality, SOPInstanceUID, image_series, link, duplicate_of FROM rt_objects",
    )
    expected = {
        rel: ds for rel, ds in written.items() if ds.Modality in ("RTSTRUCT", "RTDOSE", "RTPLAN")
    }
    assert set(rt) == set(expected)
    ct_series = {
        ds.PatientID: ds.SeriesInstanceUID for ds in written.values() if ds.Modality == "CT"
    }
    for rel, (modality, uid, image_series, link, duplicate_of) in rt.items():
        ds = expected[rel]
        assert (modality, uid) == (ds.Modality, ds.SOPInstanceUID)
        assert image_series == ct_series[ds.PatientID]
        assert link != "none"
        assert duplicate_of == ("P1/RS.dcm" if rel == "copies/RS_copy.dcm" else None)


def test_rois_table_names_types_colours_and_volumes(archive: Path, indexed: Path) -> None:
    rows = _rows(
        indexed,
        "SELECT path, ROINumber, ROIName, RTROIInterpretedType, ROIDisplayColor, contours, "
        "geometric_types, volume_cm3, volume_error, canonical FROM rois",
    )
    expected = {}
    for rel, ds in _dicom_files(archive).items():
        if ds.Modality != "RTSTRUCT":
            continue
        types = {
            o.ReferencedROINumber: o.RTROIInterpretedType for o in ds.RTROIObservationsSequence
        }
        for roi, contours in zip(ds.StructureSetROISequence, ds.ROIContourSequence, strict=True):
            # Independent volume: shoelace area of each (planar) contour x slice spacing 3 mm.
            area = 0.0
            for item in contours.ContourSequence:
                points = np.array(item.ContourData, dtype=float).reshape(-1, 3)
                u = points @ np.array(_grid(CASES[ds.PatientID][0]).row_direction)
                v = points @ np.array(_grid(CASES[ds.PatientID][0]).column_direction)
                area += 0.5 * abs(np.dot(u, np.roll(v, 1)) - np.dot(v, np.roll(u, 1)))
            expected[rel, roi.ROINumber] = (
                roi.ROIName,
                types[roi.ROINumber],
                [int(c) for c in contours.ROIDisplayColor],
                len(contours.ContourSequence),
                area * 3.0 / 1000.0,
            )
    assert len(rows) == len(expected)
    for path, number, name, kind, colour, n, geometric, volume, error, canonical in rows:
        e_name, e_kind, e_colour, e_n, e_volume = expected[path, number]
        assert (name, kind, colour, n) == (e_name, e_kind, e_colour, e_n)
        assert geometric == ["CLOSED_PLANAR"]
        assert volume == pytest.approx(e_volume, rel=1e-9)
        assert error is None
        assert canonical is None


def test_the_readme_queries_answer_from_the_archive(archive: Path, indexed: Path) -> None:
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    assert " ".join(IDC_QUERY.split()) in " ".join(readme.split())
    assert " ".join(PTV_QUERY.split()) in " ".join(readme.split())
    written = _dicom_files(archive)
    series_by_name: dict[str, set[str]] = defaultdict(set)
    ptv_patients, dose_patients = set(), set()
    for ds in written.values():
        if ds.Modality == "RTSTRUCT":
            types = {
                o.ReferencedROINumber: o.RTROIInterpretedType for o in ds.RTROIObservationsSequence
            }
            for roi in ds.StructureSetROISequence:
                series_by_name[roi.ROIName].add(ds.SeriesInstanceUID)
                if types[roi.ROINumber] == "PTV" or roi.ROIName.upper().startswith("PTV"):
                    ptv_patients.add(ds.PatientID)
        elif ds.Modality == "RTDOSE":
            dose_patients.add(ds.PatientID)
    expected_names = sorted(
        ((n, len(s)) for n, s in series_by_name.items()), key=lambda x: (-x[1], x[0])
    )
    assert _rows(indexed, IDC_QUERY) == expected_names
    assert [r[0] for r in _rows(indexed, PTV_QUERY)] == sorted(ptv_patients & dose_patients)
    assert sorted(ptv_patients & dose_patients) == ["P1", "P3"]


# ----------------------------------------------------------------------- incremental
def _snapshot(index: Path) -> dict[str, set[tuple[object, ...]]]:
    with open_index(index) as con:
        return {
            t: set(map(tuple, map(str, con.execute(f"SELECT * FROM {t}").fetchall())))
            for t in ("files", "rois")
        }


def test_incremental_reindex_reads_only_what_changed(tmp_path: Path) -> None:
    root = build_archive(tmp_path / "archive")
    index = tmp_path / "index.duckdb"
    first = index_archive(root, index)
    assert first.files_read == first.files == len(_dicom_files(root)) + 2  # + junk, truncated
    again = index_archive(root, index)
    assert (again.files_read, again.files_removed) == (0, 0)
    assert again.problems == first.problems
    assert len(first.problems) == 4  # truncated file, copy, two folder links
    # Without the stamp of the last run, the index's own records say the same.
    stamp = tmp_path / "index.duckdb.stamp.json"
    stamp.unlink()
    assert index_archive(root, index).files_read == 0
    assert stamp.is_file()
    # An index changed by someone else is not trusted to the stamp: its records decide.
    with duckdb.connect(str(index)) as con:
        con.execute("DELETE FROM rois WHERE path = 'P1/RS.dcm'")
    os.utime(index, ns=(5, 5))
    again = index_archive(root, index)
    assert (again.files_read, again.rois) == (0, first.rois - 3)
    before = _rows(index, "SELECT path, ROIName FROM rois ORDER BY ALL")

    # Change P2's structure set (a renamed ROI), delete P4's, add a new patient's case.
    ds = pydicom.dcmread(root / "P2" / "RS.dcm")
    ds.StructureSetROISequence[0].ROIName = "Lung_Left"
    ds.save_as(root / "P2" / "RS.dcm")
    (root / "P4" / "RS.dcm").unlink()
    _case(root / "P6", "P1")
    new_files = len(list((root / "P6").rglob("*")))  # CT folder itself included
    new_files -= 1
    third = index_archive(root, index)
    assert third.files_read == 1 + new_files
    assert third.files_removed == 1
    after = _rows(index, "SELECT path, ROIName FROM rois ORDER BY ALL")
    unchanged = [r for r in before if not str(r[0]).startswith(("P2/RS", "P4/RS"))]
    assert set(unchanged) <= set(after)
    assert ("P2/RS.dcm", "Lung_Left") in after
    assert not any(str(r[0]).startswith("P4/RS") for r in after)
    assert {r for r in after if str(r[0]).startswith("P6/")} == {
        ("P6/RS.dcm", "PTV"),
        ("P6/RS.dcm", "Lung_L"),
        ("P6/RS.dcm", "Body"),
    }
    assert _rows(index, "SELECT count(*) FROM rt_objects WHERE path = 'P4/RS.dcm'") == [(0,)]
    assert _rows(index, "SELECT count(*) FROM files WHERE path = 'P4/RS.dcm'") == [(0,)]

    # Touching a file (same size, new mtime) reads that file only.
    os.utime(root / "P1" / "RD.dcm", ns=(1, 2))
    assert index_archive(root, index).files_read == 1
    # --volumes later on fills the structure sets' volumes, then nothing more is read.
    volumes = index_archive(root, index, volumes=True)
    assert volumes.files_read == len(_rows(index, "SELECT DISTINCT path FROM rois"))
    assert index_archive(root, index, volumes=True).files_read == 0
    assert _rows(index, "SELECT count(*) FROM rois WHERE volume_cm3 IS NULL") == [(0,)]


def test_a_mapping_fills_the_canonical_column(tmp_path: Path, archive: Path) -> None:
    index = tmp_path / "index.duckdb"
    index_archive(
        archive, index, canonical=lambda name: "Lung_L" if "lung" in name.lower() else None
    )
    rows = set(_rows(index, "SELECT ROIName, canonical FROM rois"))
    assert ("L Lung", "Lung_L") in rows
    assert ("PTV", None) in rows
    index_archive(archive, index)  # without a map: NULL again
    assert _rows(index, "SELECT count(*) FROM rois WHERE canonical IS NOT NULL") == [(0,)]


# ---------------------------------------------------------------- errors and the CLI
def test_an_index_path_that_is_not_a_database_is_refused_untouched(
    tmp_path: Path, archive: Path
) -> None:
    target = tmp_path / "notes.duckdb"
    target.write_text("my notes\n" * 10)
    with pytest.raises(InvalidInputError, match="not a DuckDB database"):
        index_archive(archive, target)
    assert target.read_text() == "my notes\n" * 10
    other = tmp_path / "other.duckdb"
    with duckdb.connect(str(other)) as con:
        con.execute("CREATE TABLE mine (x INTEGER)")
    with pytest.raises(InvalidInputError, match="not an rtmask index"):
        index_archive(archive, other)
    code = main(["index", str(archive), "-o", str(target)])
    assert code == 1
    with pytest.raises(InvalidInputError, match="no such index"):
        open_index(tmp_path / "missing.duckdb")


def test_cli_index_prints_a_summary_and_writes_parquet(
    tmp_path: Path, archive: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    index = tmp_path / "cli.duckdb"
    assert main(["index", str(archive), "-o", str(index), "--parquet", str(tmp_path / "pq")]) == 0
    err = capsys.readouterr().err
    assert "truncated.dcm" in err
    for table in ("files", "series", "rt_objects", "rois"):
        parquet = tmp_path / "pq" / f"{table}.parquet"
        count = duckdb.sql(f"SELECT count(*) FROM '{parquet}'").fetchall()[0][0]
        assert count == _rows(index, f"SELECT count(*) FROM {table}")[0][0]


def test_cli_query_table_csv_and_json(indexed: Path, capsys: pytest.CaptureFixture[str]) -> None:
    sql = (
        "SELECT PatientID, StudyDate, slice_spacing_mm, 'nan'::DOUBLE AS bad FROM series "
        "ORDER BY PatientID"
    )
    assert main(["query", str(indexed), sql, "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert [r["PatientID"] for r in data["rows"]] == ["P1", "P2", "P3", "P4"]
    assert data["columns"] == ["PatientID", "StudyDate", "slice_spacing_mm", "bad"]
    assert len(data["rows"][0]["StudyDate"]) == 10  # ISO date
    assert data["rows"][0]["bad"] is None

    assert main(["query", str(indexed), sql, "--csv"]) == 0
    table = list(csv.reader(io.StringIO(capsys.readouterr().out)))
    assert table[0] == ["PatientID", "StudyDate", "slice_spacing_mm", "bad"]
    assert [r[0] for r in table[1:]] == ["P1", "P2", "P3", "P4"]

    assert main(["query", str(indexed), "SELECT ROIName FROM rois WHERE ROIName = 'GTV'"]) == 0
    assert "GTV" in capsys.readouterr().out

    assert main(["query", str(indexed), "SELECT nonsense FROM nowhere"]) == 1
    err = capsys.readouterr().err
    assert "nowhere" in err
    assert "Traceback" not in err


def test_open_index_is_public_and_read_only(indexed: Path) -> None:
    con = rtmask.open_index(indexed)
    try:
        assert con.execute("SELECT count(*) FROM rois").fetchall()[0][0] > 0
        with pytest.raises(duckdb.Error):
            con.execute("DELETE FROM rois")
    finally:
        con.close()


def test_run_query_error_is_one_line(indexed: Path) -> None:
    with pytest.raises(InvalidInputError) as error:
        run_query(indexed, "SELEC 1")
    assert "\n" not in str(error.value)


def test_import_rtmask_and_single_case_commands_do_not_import_duckdb() -> None:
    code = (
        "import sys, rtmask, rtmask.cohort\n"
        "from rtmask.cli._main import build_parser\n"
        "build_parser(['convert', 'x'])\n"
        "build_parser(['query', 'x', 'y'])\n"
        "assert 'duckdb' not in sys.modules, 'duckdb imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_missing_duckdb_names_the_extra(tmp_path: Path, archive: Path) -> None:
    code = (
        "import sys\n"
        "sys.modules['duckdb'] = None\n"
        "from rtmask.cli import main\n"
        f"raise SystemExit(main(['index', {str(archive)!r}, '-o', "
        f"{str(tmp_path / 'x.duckdb')!r}]))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], check=False, capture_output=True, text=True)
    assert done.returncode == 1
    assert "rtmask[cohort]" in done.stderr
    assert "Traceback" not in done.stderr


# ------------------------------------------------------------------------ real data
DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


@pytest.mark.skipif(not DATA.is_dir(), reason="../shared/data is not present")
def test_real_archive_indexes_every_structure_set(tmp_path: Path) -> None:
    index = tmp_path / "real.duckdb"
    report = index_archive(DATA, index)
    structure_sets = 0
    for path in DATA.rglob("*"):
        if path.is_file():
            try:
                ds = pydicom.dcmread(path, stop_before_pixels=True, specific_tags=["Modality"])
            except Exception:
                continue
            structure_sets += getattr(ds, "Modality", None) == "RTSTRUCT"
    assert structure_sets > 0
    assert _rows(index, "SELECT count(*) FROM rt_objects WHERE Modality = 'RTSTRUCT'") == [
        (structure_sets,)
    ]
    assert report.rois > 0
    assert index_archive(DATA, index).files_read == 0


def test_readme_documents_every_table_and_column() -> None:
    from rtmask.cohort import TABLES

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    for table, columns in TABLES.items():
        assert f"- `{table}`: " in readme
        for name, kind, _ in columns:
            assert f"  - `{name}` ({kind}): " in readme


def test_an_interrupted_run_leaves_the_previous_index(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "archive"
    _case(root / "P1", "P1")
    index = tmp_path / "index.duckdb"
    index_archive(root, index)
    before = _snapshot(index)
    (root / "P1" / "RS.dcm").unlink()
    _case(root / "P2", "P2")

    def interrupted(*args: object, **kwargs: object) -> list[str]:
        raise KeyboardInterrupt

    import rtmask.cohort._index as module

    monkeypatch.setattr(module, "_rebuild", interrupted)
    with pytest.raises(KeyboardInterrupt):
        index_archive(root, index)
    assert _snapshot(index) == before
    monkeypatch.undo()
    report = index_archive(root, index)
    assert report.files_removed == 1
    assert _rows(index, "SELECT DISTINCT PatientID FROM rois") == [("P2",)]


def test_broken_links_are_rows_not_failures(tmp_path: Path) -> None:
    root = tmp_path / "archive"
    _case(root / "P1", "P1")
    (root / "P1" / "gone.dcm").symlink_to(root / "nowhere.dcm")
    (root / "linked").symlink_to(root / "P1")  # a folder link followed once, not twice
    index = tmp_path / "index.duckdb"
    report = index_archive(root, index)
    rows = dict(_rows(index, "SELECT path, skip_kind FROM files WHERE size IS NULL"))
    assert rows == {"P1/gone.dcm": "broken_link", "linked": "symlink_repeat"}
    assert report.files == len(_dicom_files(root))
    assert any("gone.dcm" in p for p in report.problems)


def _index_with_map(tmp_path: Path, archive: Path, map_text: str) -> tuple[int, Path, Path]:
    """Run ``rtmask index`` on ``archive`` with a ROI map of ``map_text``: code, index, map."""
    roi_map = tmp_path / "map.yaml"
    roi_map.write_text(map_text)
    index = tmp_path / "i.duckdb"
    return (
        main(["index", str(archive), "-o", str(index), "--roi-map", str(roi_map)]),
        index,
        roi_map,
    )


def test_roi_map_fills_the_canonical_column(
    tmp_path: Path, archive: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, index, _ = _index_with_map(
        tmp_path, archive, 'Lung_L: ["Lung_L", "L Lung"]\nExternal: ["re:^bod(y|ies)$"]\n'
    )
    assert code == 0
    rows = set(_rows(index, "SELECT DISTINCT ROIName, canonical FROM rois"))
    # Expected from CASES: every ROI name written, mapped by the two entries above.
    expected_map = {"Lung_L": "Lung_L", "L Lung": "Lung_L", "Body": "External"}
    written = {name for _, _, rois, _, _ in CASES.values() for name, _ in rois}
    assert rows == {(name, expected_map.get(name)) for name in written}
    # Without the map on a rerun, the column is empty again.
    assert main(["index", str(archive), "-o", str(index)]) == 0
    assert set(_rows(index, "SELECT DISTINCT canonical FROM rois")) == {(None,)}


def test_broken_roi_map_is_one_line_and_exit_2(
    tmp_path: Path, archive: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, index, roi_map = _index_with_map(tmp_path, archive, 'Lung_L: ["re:(unclosed"]\n')
    err = capsys.readouterr().err
    assert code == 2
    assert str(roi_map) in err
    assert "Traceback" not in err
    assert not index.exists()


def test_volumes_that_cannot_be_computed_are_null_with_the_reason(tmp_path: Path) -> None:
    root = tmp_path / "archive"
    grid = _grid(HFS)
    ct = write_ct_series(root / "CT", grid, patient_id="V1")
    one_plane = cylinder_contours(grid, grid.index_to_patient([2.0, 7.5, 9.5])[0], 4.0, 1.0)
    rois = [
        RoiSpec(number=1, name="Flat", contours=((one_plane[0], "CLOSED_PLANAR"),)),
        RoiSpec(number=2, name="Empty"),
    ]
    write_rtstruct(root / "RS.dcm", rois, ct)
    index = tmp_path / "index.duckdb"
    index_archive(root, index, volumes=True)
    rows = {
        name: (volume, error)
        for name, volume, error in _rows(
            index, "SELECT ROIName, volume_cm3, volume_error FROM rois"
        )
    }
    assert rows["Empty"] == (None, "no contours")
    assert rows["Flat"][0] is None
    assert "one plane" in rows["Flat"][1] or "thickness" in rows["Flat"][1]


def test_plain_values_are_json_safe() -> None:
    import datetime as dt
    import decimal
    import uuid

    from rtmask.cohort import plain_value

    values = [
        float("inf"),
        decimal.Decimal("1.5"),
        uuid.UUID(int=1),
        b"\x01\xff",
        dt.timedelta(seconds=90),
        {"a": [dt.date(2020, 1, 2), float("nan")]},
        dt.datetime(2020, 1, 2, 3, 4, 5),
    ]
    assert json.dumps([plain_value(v) for v in values], allow_nan=False) == json.dumps(
        [
            None,
            1.5,
            "00000000-0000-0000-0000-000000000001",
            "01ff",
            90.0,
            {"a": ["2020-01-02", None]},
            "2020-01-02T03:04:05",
        ]
    )


def test_an_index_inside_the_archive_is_not_indexed(tmp_path: Path) -> None:
    root = tmp_path / "archive"
    _case(root / "P1", "P1")
    files = len(_dicom_files(root))
    index = root / "index.duckdb"
    first = index_archive(root, index)
    assert first.files == files  # the index and its stamp left out
    assert index_archive(root, index).files_read == 0
    assert _rows(index, "SELECT count(*) FROM files WHERE path LIKE 'index.duckdb%'") == [(0,)]


def _interrupt(done: int, total: int) -> None:
    """A progress callback that stops the run after the first file read, as Ctrl-C would."""
    if done == 1:
        raise KeyboardInterrupt


def test_a_failed_first_run_leaves_no_file_and_a_failed_update_the_old_index(
    tmp_path: Path, archive: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    index = tmp_path / "out" / "archive.duckdb"
    with pytest.raises(KeyboardInterrupt):
        index_archive(archive, index, progress=_interrupt)
    assert not index.exists()
    assert list(index.parent.iterdir()) == []  # no temporary file left either
    index_archive(archive, index)
    before = _snapshot(index)
    root = tmp_path / "archive"
    shutil.copytree(archive, root, symlinks=True)
    (root / "P1" / "late.dcm").write_bytes(b"not DICOM either\n")
    with pytest.raises(KeyboardInterrupt):
        index_archive(root, index, volumes=True, progress=_interrupt)
    assert _snapshot(index) == before
    assert [p.name for p in index.parent.iterdir()] == [index.name]  # the stamp is gone


def test_an_empty_duckdb_file_is_no_index_for_query_and_is_replaced_by_index(
    tmp_path: Path, archive: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    index = tmp_path / "empty.duckdb"
    duckdb.connect(str(index)).close()  # a database without tables, as a crash leaves one
    assert index.stat().st_size > 0
    for sql in ("SELECT count(*) FROM rois", "SELECT 1"):
        code, out, err = run_cli(capsys, "query", str(index), sql)
        assert code == 1
        assert out == ""
        lines = err.strip().splitlines()
        assert len(lines) == 1
        assert str(index) in lines[0]
        assert "not an rtmask index" in lines[0]
        assert "rtmask index ROOT -o" in lines[0]
    code, _, err = run_cli(capsys, "index", str(archive), "-o", str(index))
    assert code == 0, err
    assert _rows(index, "SELECT count(*) FROM rt_objects")[0][0] > 0
    folder = tmp_path / "folder.duckdb"
    folder.mkdir()
    with pytest.raises(InvalidInputError, match="is a folder"):
        index_archive(archive, folder)
    assert list(folder.iterdir()) == []
