"""Symbolic links in an archive: ``convert``, ``names``, ``dvh --table`` and ``dataset``
follow a link to a folder once, read a folder linked from elsewhere in the tree only under
its own name, and say once, in one warning line, that a link looping back to a folder
holding it was not followed."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from conftest import run_cli
from rtmask import ImageGrid
from rtmask.cohort import index_archive
from rtmask.discovery import scan
from rtmask.synthetic import RoiSpec, sphere_contours, write_ct_series, write_rtdose, write_rtstruct

pytestmark = pytest.mark.skipif(
    not hasattr(__import__("os"), "symlink"), reason="needs symbolic links"
)

GRID = ImageGrid.from_explicit(
    origin_mm=(-20.0, -20.0, -10.0), spacing_mm=(2.0, 1.5, 1.5), shape=(8, 24, 24)
)
#: Folder (as the scan reaches it) -> ROI names of its structure set.
CASES = {"P1": ["Heart", "Lung_L"], "P2": ["Heart", "Cord"], "P3link": ["Heart"]}
#: The links that loop, relative to the root.
LOOPS = ("P1/self", "P2/knot", "P2/up")


def _rois(names: list[str]) -> list[RoiSpec]:
    centre = GRID.index_to_patient([[3.5, 12.0, 12.0]])[0]
    contours = tuple((c, "CLOSED_PLANAR") for c in sphere_contours(GRID, centre, 5.0))
    return [RoiSpec(number=i + 1, name=n, contours=contours) for i, n in enumerate(names)]


def _case(folder: Path, patient: str, names: list[str]) -> None:
    ct = write_ct_series(folder / "ct", GRID, patient_id=patient)
    write_rtstruct(folder / "RS.dcm", _rois(names), ct)
    write_rtdose(folder / "RD.dcm", GRID, np.full(GRID.shape, 2.0), ct)


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """P1 and P2 under the root, P3 outside it behind a link; two loops and an alias."""
    base = tmp_path_factory.mktemp("links")
    root = base / "archive"
    _case(root / "P1", "P1", CASES["P1"])
    _case(root / "P2", "P2", CASES["P2"])
    _case(base / "elsewhere" / "P3", "P3", CASES["P3link"])
    (root / "P3link").symlink_to(base / "elsewhere" / "P3")  # followed: outside the tree
    (root / "P1" / "self").symlink_to(root / "P1")  # its own folder: a loop
    (root / "P2" / "up").symlink_to(root)  # an ancestor: a loop
    (root / "P2" / "knot").symlink_to(root / "P2" / "knot")  # onto itself
    (root / "0alias").symlink_to(root / "P2")  # listed before P2: read under P2 only
    (root / "P1" / "gone").symlink_to(root / "nowhere")  # broken: nothing to read
    (root / "P2" / "notes.txt").write_text("not DICOM\n", encoding="utf-8")
    (root / "P2" / "readme").symlink_to(root / "P2" / "notes.txt")  # a file link: a file
    return root


def _loop_warnings(err: str) -> list[str]:
    return [
        line
        for line in err.splitlines()
        if line.startswith("warning:") and "loop" in line and line.endswith("not followed")
    ]


def _assert_loops_reported_once(root: Path, err: str) -> None:
    lines = _loop_warnings(err)
    assert len(lines) == len(LOOPS), err
    for link, line in zip(LOOPS, sorted(lines), strict=True):
        assert line.startswith("warning:")
        assert str(root / link) in line
        assert "not followed" in line


def test_convert_reports_each_loop_and_converts_every_case_once(
    root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    code, _, err = run_cli(capsys, "convert", str(root), "-o", str(out), "--jobs", "1")
    assert code == 0, err
    _assert_loops_reported_once(root, err)
    with (out / "cases.csv").open(encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    assert sorted(r["structure_set"] for r in rows) == sorted(f"{c}/RS.dcm" for c in CASES)
    assert {r["status"] for r in rows} == {"converted"}


def test_names_reports_each_loop_and_counts_every_structure_set_once(
    root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run_cli(capsys, "names", str(root), "--json")
    assert code == 0, err
    _assert_loops_reported_once(root, err)
    counts = {r["name"]: (r["structure_sets"], r["patients"]) for r in json.loads(out)["names"]}
    expected: dict[str, tuple[int, int]] = {}
    for names in CASES.values():
        for name in names:
            sets, patients = expected.get(name, (0, 0))
            expected[name] = (sets + 1, patients + 1)  # one patient per structure set here
    assert counts == expected


def test_dvh_table_reports_each_loop_and_computes_every_case_once(
    root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    table = tmp_path / "dvh.csv"
    code, _, err = run_cli(capsys, "dvh", str(root), "--table", str(table), "--jobs", "1")
    assert code == 0, err
    _assert_loops_reported_once(root, err)
    with table.open(encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    assert sorted((r["structure_set"], r["roi_name"]) for r in rows) == sorted(
        (f"{case}/RS.dcm", name) for case, names in CASES.items() for name in names
    )


def test_dataset_reports_each_loop_and_lists_every_case_once(
    root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    command = ["dataset", str(root), "-o", str(out), "--labels", "Heart", "--id", "7"]
    code, _, err = run_cli(capsys, *command, "--name", "Links", "--jobs", "1")
    assert code == 0, err
    _assert_loops_reported_once(root, err)
    with (out / "cases.csv").open(encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    # Paths as the scan reached them (P3link, not the link's absolute target).
    assert sorted(r["structure_set"] for r in rows) == sorted(f"{c}/RS.dcm" for c in CASES)
    assert {r["status"] for r in rows} == {"included"}


def test_the_scan_lists_each_loop_once_and_each_real_folder_once(root: Path) -> None:
    inventory = scan(root)
    loops = sorted(s.path for s in inventory.skipped if s.kind == "symlink_loop")
    assert loops == [root / link for link in LOOPS]
    assert sorted(s.path for s in inventory.structure_sets) == [root / c / "RS.dcm" for c in CASES]
    assert len(inventory.image_series) == len(CASES)
    assert not [s for s in inventory.skipped if s.kind == "duplicate"]


def test_convert_of_one_structure_set_beside_a_loop_warns_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "case"
    _case(folder, "P9", ["Heart"])
    (folder / "ct" / "again").symlink_to(folder)
    code, _, err = run_cli(capsys, "convert", str(folder), "-o", str(tmp_path / "out"))
    assert code == 0, err
    lines = _loop_warnings(err)
    assert len(lines) == 1
    assert str(folder / "ct" / "again") in lines[0]
    assert (tmp_path / "out" / "Heart.nii.gz").is_file()


def test_names_of_the_index_report_the_same_loops_and_counts(
    root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("duckdb")
    index = tmp_path / "links.duckdb"
    report = index_archive(root, index)
    assert not [p for p in report.problems if "0alias/" in p]  # P2 indexed once, as P2
    _, from_root, _ = run_cli(capsys, "names", str(root), "--json")
    code, from_index, err = run_cli(capsys, "names", str(index), "--json")
    assert code == 0, err
    assert json.loads(from_index) == json.loads(from_root)
    lines = [line for line in err.splitlines() if line.startswith("warning:")]
    assert len(lines) == len(LOOPS)
    for link in LOOPS:
        assert any(str(root / link) in line for line in lines)
