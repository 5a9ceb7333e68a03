"""Converting a whole archive: layout, cases.csv, resumption, process pool, dead workers."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path, PurePosixPath

import nibabel as nib
import numpy as np
import pytest
from rich.console import Console

from cohort_archive import Archive, add_partial, make_archive, read_rows
from rtmask.cli import main
from rtmask.cli._archive import archive_command
from rtmask.cohort import (
    CASE_COLUMNS,
    CaseIdentity,
    CaseOptions,
    CaseResult,
    DaskExecutor,
    ProcessExecutor,
    SerialExecutor,
    case_folders,
    convert_archive,
    plan_archive,
    run_case,
)
from rtmask.cohort._executors import _sees
from rtmask.cohort._tasks import DELAY_HOOK, EXIT_HOOK, finished
from rtmask.errors import MissingDependencyError

CLI = [sys.executable, "-c", "import sys; from rtmask.cli import main; sys.exit(main())"]


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> Archive:
    return make_archive(tmp_path_factory.mktemp("cohort"))


def _run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    code = main(["convert", *args])
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def _identity(patient_id: str, label: str = "RS", uid: str = "1.2.3.4") -> CaseIdentity:
    return CaseIdentity(
        patient_id=patient_id,
        study_date="20240102",
        study_uid="1.2.840.99.7",
        label=label,
        sop_instance_uid=uid,
    )


# ----------------------------------------------------------------------------- layout
def test_hostile_patient_ids_never_escape_or_collide() -> None:
    ids = ["../..", "..", "CON", "con", "a/b", "a_b", "", "/etc", "P1"]
    folders = case_folders([_identity(p) for p in ids], "patient")
    for folder in folders:
        assert not folder.is_absolute()
        assert ".." not in folder.parts
        assert len(folder.parts) == 3
        assert not any(part.startswith(".") for part in folder.parts)
    # every patient gets its own folder, also case-insensitively (CON and con)
    patients = [folder.parts[0].casefold() for folder in folders]
    assert len(set(patients)) == len(ids)
    assert folders[-1] == PurePosixPath("P1", "20240102_12840997", "RS_1234")
    assert folders[2].parts[0].upper() != "CON"  # a Windows device name is never a folder
    # a name is a function of its own identifier: adding cases never renames others
    assert case_folders([_identity("a/b")], "patient")[0] == folders[4]


def test_flat_and_single_layouts() -> None:
    cases = [_identity("P1", "RS", "1.2.3"), _identity("P1", "RS", "1.2.3")]
    flat = case_folders(cases, "flat")
    assert flat == [PurePosixPath("P1_RS_123"), PurePosixPath("P1_RS_123_2")]
    assert case_folders(cases[:1], "single") == [PurePosixPath(".")]
    with pytest.raises(ValueError, match="one structure set"):
        case_folders(cases, "single")


# ------------------------------------------------------------------------ a whole run
def test_archive_with_two_processes(
    archive: Archive, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    code, output = _run(capsys, str(archive.root), "-o", str(out), "--jobs", "2")
    assert code == 1, output  # the broken and the orphan structure sets
    rows = read_rows(out)
    header = (out / "cases.csv").read_text(encoding="utf-8").splitlines()[0]
    assert header.split(",") == list(CASE_COLUMNS)
    assert set(rows) == {
        *archive.converted,
        archive.duplicate,
        archive.broken,
        archive.orphan,
    }
    for source, names in archive.converted.items():
        row = rows[source]
        assert row["status"] == "converted", row
        assert row["link"] == "series_uid"
        assert int(row["rois_written"]) == len(names)
        folder = out / row["output"]
        assert folder.resolve().is_relative_to(out.resolve())
        assert len(PurePosixPath(row["output"]).parts) == 3
        assert (folder / "summary.json").is_file()
        assert (folder / "image.nii.gz").is_file()  # the image beside the masks
        # the masks equal a single-case conversion of the same file
        single = tmp_path / "single" / PurePosixPath(source).stem
        # (its folder also holds the broken file: that exit code is 1)
        main(["convert", str(archive.root / source), "-o", str(single)])
        capsys.readouterr()
        assert (single / "summary.json").is_file()
        masks = sorted(p.name for p in folder.glob("*.nii.gz"))
        assert masks == sorted(p.name for p in single.glob("*.nii.gz"))
        for name in masks:
            np.testing.assert_array_equal(
                np.asarray(nib.load(folder / name).dataobj),
                np.asarray(nib.load(single / name).dataobj),
            )
    assert rows["dotdot/RS_dotdot.dcm"]["patient_id"] == "../.."
    copy = rows[archive.duplicate]
    assert copy["status"] == "skipped"
    assert archive.original in copy["error"]
    assert copy["output"] == rows[archive.original]["output"]
    assert rows[archive.broken]["status"] == "failed"
    assert rows[archive.broken]["error"]
    orphan = rows[archive.orphan]
    assert orphan["status"] == "failed"
    assert orphan["link"] == "none"
    assert "RS_orphan.dcm" in orphan["error"]
    assert orphan["output"] == ""  # nothing was written for it
    assert rows[archive.broken]["output"] == ""
    # nothing outside OUT, no temporary file left
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "single"]
    assert not list(out.rglob(".*"))
    assert "converted 4, skipped 1, failed 2 of 7" in " ".join(output.split())

    # A rerun skips the finished cases; --force converts them again.
    before = {p: p.stat().st_mtime_ns for p in out.rglob("*.nii.gz")}
    code, _ = _run(capsys, str(archive.root), "-o", str(out), "--jobs", "2", "-q")
    assert code == 1
    again = read_rows(out)
    assert {s for s, r in again.items() if r["status"] == "skipped"} == {
        *archive.converted,
        archive.duplicate,
    }
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*.nii.gz")} == before
    code, _ = _run(capsys, str(archive.root), "-o", str(out), "--jobs", "1", "--force")
    assert code == 1
    assert all(read_rows(out)[s]["status"] == "converted" for s in archive.converted)


def test_a_rerun_converts_a_failed_case_again(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    archive = make_archive(tmp_path)
    partial = add_partial(archive.root)
    out = tmp_path / "out"
    code, output = _run(capsys, str(archive.root), "-o", str(out), "--jobs", "1", "-q")
    assert code == 1
    row = read_rows(out)[partial]
    assert row["status"] == "failed"
    assert "'Areola'" in row["error"]
    assert row["rois_written"] == "1"  # GTV
    folder = out / row["output"]  # written in part: the row names its folder
    assert row["output"]
    assert folder.is_dir()
    assert np.asarray(nib.load(folder / "GTV.nii.gz").dataobj).any()
    assert not (folder / "Areola.nii.gz").exists()
    summary = json.loads((folder / "summary.json").read_text(encoding="utf-8"))
    assert any("'Areola'" in problem for problem in summary["problems"])
    for source in archive.converted:  # the cases that did not fail list no problem
        path = out / read_rows(out)[source]["output"] / "summary.json"
        assert json.loads(path.read_text(encoding="utf-8"))["problems"] == []

    # The rerun skips the finished cases, converts the failed one again, fails again.
    code, output = _run(capsys, str(archive.root), "-o", str(out), "--jobs", "1")
    assert code == 1
    rows = read_rows(out)
    assert rows[partial]["status"] == "failed"
    assert "'Areola'" in rows[partial]["error"]
    assert "'Areola'" in output
    assert {s for s, r in rows.items() if r["status"] == "failed"} == {
        partial,
        archive.broken,
        archive.orphan,
    }
    assert {s for s, r in rows.items() if r["status"] == "skipped"} == {
        *archive.converted,
        archive.duplicate,
    }
    assert "converted 0, skipped 5, failed 3 of 8" in " ".join(output.split())


def test_a_failed_row_names_a_folder_only_when_one_was_written(tmp_path: Path) -> None:
    archive = make_archive(tmp_path)
    partial = add_partial(archive.root)
    copy = archive.root / "zz_copies" / "RS_orphan_copy.dcm"  # a copy of the orphan
    copy.write_bytes((archive.root / archive.orphan).read_bytes())
    out = tmp_path / "out"
    plan = plan_archive(archive.root, out, CaseOptions())
    blocked = next(t for t in plan.tasks if t.structure_set == "sag/RS_sag.dcm").folder
    blocked.parent.mkdir(parents=True)
    blocked.write_text("a file where the case folder goes")
    rows = {r.structure_set: r for r in convert_archive(plan, out, SerialExecutor())}
    # the files put in the archive, and what each wrote
    assert rows[archive.orphan].status == "failed"  # no images: nothing written
    assert rows[archive.orphan].output == ""
    assert rows["zz_copies/RS_orphan_copy.dcm"].status == "skipped"
    assert rows["zz_copies/RS_orphan_copy.dcm"].output == ""
    assert rows[archive.broken].output == ""  # unreadable
    assert rows["sag/RS_sag.dcm"].status == "failed"  # its folder is a file
    assert rows["sag/RS_sag.dcm"].output == ""
    assert rows[partial].status == "failed"  # GTV written, 'Areola' not
    assert (out / rows[partial].output / "GTV.nii.gz").is_file()
    assert rows[archive.duplicate].output == rows[archive.original].output
    assert (out / rows[archive.duplicate].output / "summary.json").is_file()
    on_disk = {r["structure_set"]: r["output"] for r in read_rows(out).values()}
    assert on_disk == {source: row.output for source, row in rows.items()}


def test_finished_reads_the_summary(tmp_path: Path) -> None:
    assert not finished(tmp_path)  # no summary.json
    summary = tmp_path / "summary.json"
    summary.write_text('{"rois": [], "problems": ["x.dcm: ROI 2 \'A\': has no contours"]}')
    assert not finished(tmp_path)
    summary.write_text('{"rois": [], "problems": []}')
    assert finished(tmp_path)
    summary.write_text('{"rois": []}')  # an older rtmask's summary: no problems key
    assert finished(tmp_path)
    summary.write_text('{"rois": [')  # cannot be read: converted again
    assert not finished(tmp_path)


def test_archive_options_reach_every_case(
    archive: Archive, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    _run(capsys, str(archive.root), "-o", str(out), "--jobs", "1", "--no-image", "-q")
    folders = [out / read_rows(out)[source]["output"] for source in archive.converted]
    assert folders
    for folder in folders:
        assert (folder / "summary.json").is_file()
        assert not (folder / "image.nii.gz").exists()


def test_parquet_holds_the_same_rows(archive: Archive, tmp_path: Path) -> None:
    duckdb = pytest.importorskip("duckdb")
    out = tmp_path / "out"
    plan = plan_archive(archive.root, out, CaseOptions(), layout="flat")
    rows = convert_archive(plan, out, SerialExecutor())
    assert [r.structure_set for r in rows] == sorted(read_rows(out))
    table = duckdb.sql(f"SELECT * FROM '{out / 'cases.parquet'}' ORDER BY structure_set")
    assert tuple(table.columns) == CASE_COLUMNS
    parquet = table.fetchall()
    assert [r[2] for r in parquet] == [r.structure_set for r in rows]
    assert [r[9] for r in parquet] == [r.rois_written for r in rows]
    assert all(len(PurePosixPath(r.output).parts) == 1 for r in rows if r.output)


def test_single_structure_set_goes_to_out_unless_a_layout_is_given(
    archive: Archive, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    case = archive.root / "sag"
    code, _ = _run(capsys, str(case), "-o", str(tmp_path / "one"))
    assert code == 0
    assert (tmp_path / "one" / "Body.nii.gz").is_file()
    assert not (tmp_path / "one" / "cases.csv").exists()  # today's single-case output
    code, _ = _run(capsys, str(case), "-o", str(tmp_path / "tree"), "--layout", "patient")
    assert code == 0
    (row,) = read_rows(tmp_path / "tree").values()
    assert row["output"].startswith("P004/")
    assert (tmp_path / "tree" / row["output"] / "Body.nii.gz").is_file()


def test_bad_jobs_is_a_usage_error(
    archive: Archive, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, output = _run(capsys, str(archive.root), "-o", str(tmp_path / "o"), "--jobs", "0")
    assert code == 2
    assert "--jobs" in output
    with pytest.raises(ValueError, match="at least 1"):
        ProcessExecutor(0)


def test_a_task_without_an_image_series_fails_alone(archive: Archive, tmp_path: Path) -> None:
    plan = plan_archive(archive.root, tmp_path / "out", CaseOptions())
    (task,) = [t for t in plan.tasks if t.structure_set == archive.orphan]
    result = run_case(task)
    assert result.status == "failed"
    assert result.link == "none"
    assert not task.folder.exists()


# ------------------------------------------------------------------ workers that die
def test_a_worker_that_dies_fails_only_its_case(
    archive: Archive, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(EXIT_HOOK, "RS_con.dcm")
    out = tmp_path / "out"
    plan = plan_archive(archive.root, out, CaseOptions())
    rows = {r.structure_set: r for r in convert_archive(plan, out, ProcessExecutor(2))}
    dead = rows["con/RS_con.dcm"]
    assert dead.status == "failed"
    assert "died" in dead.error
    assert dead.output == ""  # it died before writing anything
    for source in archive.converted:
        if source != "con/RS_con.dcm":
            assert rows[source].status == "converted", rows[source]


def test_kill_9_mid_run_then_rerun_finishes(archive: Archive, tmp_path: Path) -> None:
    out = tmp_path / "out"
    env = {**os.environ, DELAY_HOOK: "0.6"}
    command = [*CLI, "convert", str(archive.root), "-o", str(out), "--jobs", "2", "-q"]
    process = subprocess.Popen(command, env=env, start_new_session=True, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while not list(out.rglob("summary.json")) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert list(out.rglob("summary.json")), "no case finished in 60 s"
    finally:
        os.killpg(process.pid, signal.SIGKILL)  # the run and its workers, at once
        process.wait()
    finished = {p.parent for p in out.rglob("summary.json")}
    assert len(finished) < len(archive.converted)  # killed part-way
    for mask in out.rglob("*.nii.gz"):  # whatever has a final name is complete
        assert np.asarray(nib.load(mask).dataobj).size > 0
    result = subprocess.run([*command[:-1], "-q"], capture_output=True, text=True, check=False)
    assert result.returncode == 1, result.stderr
    rows = read_rows(out)
    statuses = {rows[s]["status"] for s in archive.converted}
    assert statuses <= {"converted", "skipped"}
    assert {
        out / rows[s]["output"] for s in archive.converted if rows[s]["status"] == "skipped"
    } == finished
    assert all((out / rows[s]["output"] / "summary.json").is_file() for s in archive.converted)
    assert not list(out.rglob(".*"))  # the rerun cleared the killed run's temporary files


def test_sees_reports_what_a_worker_misses(tmp_path: Path) -> None:
    probe = tmp_path / "probe"
    probe.write_text("x")
    assert _sees(str(tmp_path), str(probe)) == ""
    missing = _sees(str(tmp_path / "nope"), str(tmp_path / "gone"))
    assert "ROOT" in missing
    assert "OUT" in missing
    # ROOT there, but not the one this process sees: a file of it missing or of another size
    assert _sees(str(tmp_path), str(probe), str(probe), 1) == ""
    assert "has 1 bytes, not 2" in _sees(str(tmp_path), str(probe), str(probe), 2)
    assert "is missing there" in _sees(str(tmp_path), str(probe), str(tmp_path / "RS.dcm"), 2)


def test_missing_dask_names_the_extra(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "distributed", None)
    with pytest.raises(MissingDependencyError, match=r"rtmask\[cohort\]"):
        DaskExecutor("local:1", tmp_path, tmp_path).run([], lambda i, r: None)


def test_cases_csv_is_refreshed_during_the_run(archive: Archive, tmp_path: Path) -> None:
    out = tmp_path / "out"
    plan = plan_archive(archive.root, out, CaseOptions())
    seen: list[int] = []

    def look(result: CaseResult) -> None:  # called before the refresh of that result
        path = out / "cases.csv"
        seen.append(len(read_rows(out)) if path.exists() else -1)

    convert_archive(plan, out, SerialExecutor(), progress=look, refresh_s=0.0)
    planned = len(plan.rows)
    # the rows known at planning from the start, then one more after each case
    assert seen == [planned] * planned + [planned + n for n in range(len(plan.tasks))]


def test_the_progress_bar_on_a_terminal(archive: Archive, tmp_path: Path) -> None:
    screen = io.StringIO()
    console = Console(file=screen, force_terminal=True, width=120, highlight=False)
    code = archive_command(
        archive.root, tmp_path / "out", CaseOptions(), console=console, jobs=1, layout="flat"
    )
    assert code == 1
    text = screen.getvalue()
    assert "cases/min" in text
    assert "2 failed" in text
    assert "converted 4, skipped 1, failed 2 of 7" in " ".join(text.split())


def test_roi_selection_and_per_case_failures(archive: Archive, tmp_path: Path) -> None:
    out = tmp_path / "out"
    options = CaseOptions(roi_patterns=("*lung*",))
    plan = plan_archive(archive.root, out, options)
    by_source = {task.structure_set: task for task in plan.tasks}
    # a killed run's temporary file in an unfinished case, and a file where a case goes
    unfinished = by_source["P001/RS_P001.dcm"].folder
    unfinished.mkdir(parents=True)
    (unfinished / ".Lung_L.0123abcd.tmp.nii.gz").write_bytes(b"half")
    (unfinished / ".keep").write_text("not a temporary file of rtmask")
    blocked = by_source["dotdot/RS_dotdot.dcm"].folder
    blocked.parent.mkdir(parents=True)
    blocked.write_text("a file in the way")
    rows = {r.structure_set: r for r in convert_archive(plan, out, SerialExecutor())}
    assert rows["P001/RS_P001.dcm"].status == "converted"
    assert rows["P001/RS_P001.dcm"].rois_written == 1  # Lung_L, not the PTV
    assert sorted(p.name for p in unfinished.iterdir() if p.name.startswith(".")) == [".keep"]
    assert rows["con/RS_con.dcm"].rois_written == 1  # "lung left"
    body = rows["sag/RS_sag.dcm"]
    assert body.status == "failed"
    assert "no ROI matches" in body.error
    assert "'Body'" in body.error
    assert rows["dotdot/RS_dotdot.dcm"].status == "failed"
    assert "RS_dotdot.dcm" in rows["dotdot/RS_dotdot.dcm"].error
