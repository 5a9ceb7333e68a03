"""``rtmask dvh ROOT --table``: a cohort's DVH statistics against the single-case command."""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
import pytest

from rtmask import ImageGrid
from rtmask.cli import main
from rtmask.synthetic import RoiSpec, sphere_contours, write_ct_series, write_rtdose, write_rtstruct

STATS = "D95,V32Gy,Dmax,D0.03cc"
FIXED = (
    "patient_id",
    "structure_set",
    "dose",
    "dose_choice",
    "roi_number",
    "roi_name",
    "canonical",
    "volume_cm3",
    "min_gy",
    "mean_gy",
    "max_gy",
)
NUMBERS = ("volume_cm3", "min_gy", "mean_gy", "max_gy")
PRESCRIPTION = ("prescription_gy", "prescription_source")  # after the statistics


@dataclass(frozen=True)
class Cohort:
    root: Path
    pairs: dict[str, tuple[Path, Path]]  # structure set (relative) -> (RS, dose to check with)
    beams: tuple[str, str]  # the two beam doses (relative), in path order
    no_dose: str
    broken: tuple[str, str]  # a truncated dose (no link possible), a dose without frames


def _ct_grid() -> ImageGrid:
    return ImageGrid.from_explicit(
        origin_mm=(-30.3, -25.1, -20.0), spacing_mm=(2.5, 1.5, 1.5), shape=(12, 34, 40)
    )


def _dose_grid(uid: str, x0: float = -28.0) -> ImageGrid:
    return ImageGrid.from_explicit(
        origin_mm=(x0, -26.0, -22.0),
        spacing_mm=(3.0, 3.0, 3.0),
        shape=(12, 19, 22),
        frame_of_reference_uid=uid,
    )


def _dose_values(grid: ImageGrid, gradient: float, base: float) -> np.ndarray:
    index = np.stack(np.meshgrid(*[np.arange(k) for k in grid.shape], indexing="ij"), -1)
    points = grid.index_to_patient(index.reshape(-1, 3)).reshape(*grid.shape, 3)
    return base + gradient * points[..., 0] + 0.2 * points[..., 1]


def _patient(
    root: Path, name: str, names: tuple[str, ...], *, far: bool = False
) -> tuple[Path, Any]:
    """A CT and a structure set of spheres; ``far``: and a small one at the CT's x edge."""
    grid = _ct_grid()
    ct = write_ct_series(root / name / "ct", grid, patient_id=name)
    rois = []
    for number, roi_name in enumerate(names, start=1):
        centre = grid.index_to_patient([[5.5, 15.0 + 3 * number, 14.0 + 6 * number]])[0]
        contours = sphere_contours(grid, centre, 5.0 + 2.0 * number)
        rois.append(
            RoiSpec(
                number=number,
                name=roi_name,
                contours=tuple((c, "CLOSED_PLANAR") for c in contours),
            )
        )
    if far:
        centre = grid.index_to_patient([[5.5, 17.0, 1.0]])[0]  # x = -28.8 mm
        contours = sphere_contours(grid, centre, 2.5)
        rois.append(
            RoiSpec(
                number=len(rois) + 1,
                name="Far",
                contours=tuple((c, "CLOSED_PLANAR") for c in contours),
            )
        )
    return write_rtstruct(root / name / "RS.dcm", rois, ct), ct


def _cohort(base: Path) -> Cohort:
    root = base / "archive"
    pairs: dict[str, tuple[Path, Path]] = {}
    # P1's dose starts at x = -20 mm: its ROI "Far" lies outside it, a failure of that ROI.
    for name, names, gradient, x0 in (
        ("P1", ("PTV", "Lung L"), 0.4, -20.0),
        ("P2", ("Lung_L", "Cord", "Body"), 0.7, -28.0),
    ):
        rs, ct = _patient(root, name, names, far=name == "P1")
        grid = _dose_grid(ct.frame_of_reference_uid, x0)
        dose = write_rtdose(root / name / "RD.dcm", grid, _dose_values(grid, gradient, 30.0), ct)
        pairs[f"{name}/RS.dcm"] = (rs, dose)
    rs, ct = _patient(root, "P3", ("PTV", "lung left"))
    grid = _dose_grid(ct.frame_of_reference_uid)
    first, second = _dose_values(grid, 0.3, 30.0), _dose_values(grid, -0.2, 30.0)
    for index, values in enumerate((first, second)):
        write_rtdose(root / "P3" / f"RD_beam{index}.dcm", grid, values, ct, summation_type="BEAM")
    # The manual sum, outside the archive: the independent reference of the summed case.
    manual = write_rtdose(base / "manual_sum.dcm", grid, first + second, ct)
    pairs["P3/RS.dcm"] = (rs, manual)
    _patient(root, "P4", ("PTV",))  # no dose at all
    rs, ct = _patient(root, "P5", ("PTV",))
    grid = _dose_grid(ct.frame_of_reference_uid)
    dose = write_rtdose(root / "P5" / "RD.dcm", grid, _dose_values(grid, 0.5, 35.0), ct)
    dose.write_bytes(dose.read_bytes()[:-3000])  # pixel data cut short: discovery lists it
    rs, ct = _patient(root, "P6", ("PTV",))
    grid = _dose_grid(ct.frame_of_reference_uid)
    dose = write_rtdose(root / "P6" / "RD.dcm", grid, _dose_values(grid, 0.5, 35.0), ct)
    dataset = pydicom.dcmread(dose)
    del dataset.GridFrameOffsetVector  # linked by discovery, unreadable as a dose
    dataset.save_as(dose)
    return Cohort(
        root=root,
        pairs=pairs,
        beams=("P3/RD_beam0.dcm", "P3/RD_beam1.dcm"),
        no_dose="P4/RS.dcm",
        broken=("P5/RD.dcm", "P6/RD.dcm"),
    )


@pytest.fixture(scope="module")
def cohort(tmp_path_factory: pytest.TempPathFactory) -> Cohort:
    return _cohort(tmp_path_factory.mktemp("cohort_dvh"))


def _run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["dvh", *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _read(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    with path.open(encoding="utf-8", newline="") as stream:
        reader = csv.DictReader(stream)
        return list(reader.fieldnames or ()), list(reader)


def _single(
    capsys: pytest.CaptureFixture[str], rs: Path, dose: Path, *extra: str
) -> dict[str, Any]:
    code, out, err = _run(capsys, str(rs), str(dose), "--json", "--stats", STATS, *extra)
    assert code == (1 if "Far" in err else 0), err
    return {entry["number"]: entry for entry in json.loads(out)["rois"]}


def _close(cell: str, value: float | None, rel: float) -> bool:
    if value is None:
        return cell == ""
    return float(cell) == pytest.approx(value, rel=rel, abs=1e-9)


def test_every_row_equals_the_single_case_command(
    cohort: Cohort, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    table = tmp_path / "dvh.csv"
    code, _, err = _run(
        capsys, str(cohort.root), "--table", str(table), "--stats", STATS, "--jobs", "1"
    )
    assert code == 1  # the broken doses failed, the rest is written
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(errors) == 3, err
    # Unreadable files first, then by structure set: P1's ROI outside its dose, P6's dose.
    assert str(cohort.root / cohort.broken[0]) in errors[0], err
    assert str(cohort.root / "P1" / "RS.dcm") in errors[1], err
    assert "Far" in errors[1], err
    assert str(cohort.root / cohort.broken[1]) in errors[2], err
    assert "GridFrameOffsetVector" in errors[2]
    text = " ".join(err.split())
    assert f"skipped {cohort.no_dose}: no RT Dose linked" in text
    assert "2 with failures" in text
    columns, rows = _read(table)
    assert columns == [*FIXED, *STATS.split(","), *PRESCRIPTION]
    assert {row["structure_set"] for row in rows} == set(cohort.pairs)
    assert len(rows) == 2 + 3 + 2
    for structure_set, (rs, dose) in cohort.pairs.items():
        summed = structure_set.startswith("P3")
        expected = _single(capsys, rs, dose)
        mine = [row for row in rows if row["structure_set"] == structure_set]
        assert [int(row["roi_number"]) for row in mine] == sorted(expected)
        for row in mine:
            entry = expected[int(row["roi_number"])]
            assert row["patient_id"] == structure_set.split("/")[0]
            assert row["roi_name"] == entry["name"]
            assert row["canonical"] == ""
            if summed:
                assert row["dose"] == ";".join(cohort.beams)
                assert row["dose_choice"] == "sum of 2 beam doses"
            else:
                assert row["dose"] == f"{structure_set.split('/')[0]}/RD.dcm"
                assert row["dose_choice"] == "plan"
            # The summed dose is stored with its own 32-bit scaling: nearly, not bit-equal.
            rel = 1e-5 if summed else 1e-12
            for name in NUMBERS:
                assert _close(row[name], entry[name], rel), (structure_set, name)
            for name in STATS.split(","):
                assert _close(row[name], entry["stats"][name], rel), (structure_set, name)
    assert "nan" not in table.read_text(encoding="utf-8").lower()


def _sorted(rows: list[dict[str, str]]) -> list[dict[str, str]]:
    return sorted(rows, key=lambda r: (r["structure_set"], int(r["roi_number"])))


def test_two_processes_equal_one(
    cohort: Cohort, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tables = []
    for jobs in ("1", "2"):
        table = tmp_path / f"dvh{jobs}.csv"
        code, _, err = _run(capsys, str(cohort.root), "--table", str(table), "--jobs", jobs)
        assert code == 1, err
        tables.append(_read(table))
    assert (
        tables[0][0]
        == tables[1][0]
        == [
            *FIXED,
            *("D99", "D95", "D50", "D5", "D1", "D0.03cc"),
            *PRESCRIPTION,
        ]
    )
    assert _sorted(tables[0][1]) == _sorted(tables[1][1])
    assert len(tables[0][1]) == 7


def test_roi_map_selects_and_names_canonical(
    cohort: Cohort, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    roi_map = tmp_path / "map.yaml"
    roi_map.write_text('Lung_L: ["Lung_L", "Lung L", "re:^lung[ _-]?l(ef)?t$"]\n', "utf-8")
    table = tmp_path / "lungs.csv"
    code, _, err = _run(
        capsys,
        str(cohort.root),
        "--table",
        str(table),
        "--roi-map",
        str(roi_map),
        "--jobs",
        "1",
        "--stats",
        "V32Gy",
    )
    assert code == 1, err  # still the broken dose
    columns, rows = _read(table)
    assert columns == [*FIXED, "V32Gy", *PRESCRIPTION]
    got = {(row["structure_set"], row["roi_name"], row["canonical"]) for row in rows}
    assert got == {
        ("P1/RS.dcm", "Lung L", "Lung_L"),
        ("P2/RS.dcm", "Lung_L", "Lung_L"),
        ("P3/RS.dcm", "lung left", "Lung_L"),
    }
    rs, dose = cohort.pairs["P2/RS.dcm"]
    expected = _single(capsys, rs, dose, "--roi-map", str(roi_map))
    (row,) = [row for row in rows if row["structure_set"] == "P2/RS.dcm"]
    entry = expected[int(row["roi_number"])]
    assert entry["canonical"] == "Lung_L"
    assert _close(row["V32Gy"], entry["stats"]["V32Gy"], 1e-12)


def test_parquet_round_trip_through_duckdb(
    cohort: Cohort, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    duckdb = pytest.importorskip("duckdb")
    table = tmp_path / "dvh.parquet"
    csv_table = tmp_path / "dvh.csv"
    for path in (table, csv_table):
        code, _, err = _run(
            capsys, str(cohort.root), "--table", str(path), "--stats", STATS, "--jobs", "1"
        )
        assert code == 1, err
    with duckdb.connect() as connection:
        result = connection.execute(f"SELECT * FROM read_parquet('{table}')")
        names = [d[0] for d in result.description]
        parquet_rows = result.fetchall()
        described = connection.execute(f"DESCRIBE SELECT * FROM read_parquet('{table}')")
        types = {row[0]: row[1] for row in described.fetchall()}
    assert names == [*FIXED, *STATS.split(","), *PRESCRIPTION]
    assert types["roi_number"] == "INTEGER"
    assert types["mean_gy"] == "DOUBLE"
    _, csv_rows = _read(csv_table)
    assert len(parquet_rows) == len(csv_rows) == 7
    for values, row in zip(parquet_rows, csv_rows, strict=True):
        for name, value in zip(names, values, strict=True):
            if value is None:
                assert row[name] == ""
            elif isinstance(value, float):
                assert float(row[name]) == value
            else:
                assert str(value) == row[name]


def test_folder_without_table_is_a_usage_error(
    cohort: Cohort, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as raised:
        main(["dvh", str(cohort.root)])
    assert raised.value.code == 2
    assert "--table" in capsys.readouterr().err


def test_file_without_dose_is_a_usage_error(
    cohort: Cohort, capsys: pytest.CaptureFixture[str]
) -> None:
    rs, _ = cohort.pairs["P1/RS.dcm"]
    with pytest.raises(SystemExit) as raised:
        main(["dvh", str(rs), "--table", "x.csv"])
    assert raised.value.code == 2
    assert "--table takes a folder ROOT" in capsys.readouterr().err


def test_local_dask_cluster_equals_one_process(
    cohort: Cohort, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("distributed")
    tables = []
    for runner in (("--jobs", "1"), ("--scheduler", "local:1")):
        table = tmp_path / f"dvh_{runner[0][2:]}.csv"
        code, _, err = _run(capsys, str(cohort.root), "--table", str(table), *runner)
        assert code == 1, err
        assert sum(line.startswith("error:") for line in err.splitlines()) == 3, err
        tables.append(_read(table))
    assert tables[0][0] == tables[1][0]
    assert _sorted(tables[0][1]) == _sorted(tables[1][1])


@pytest.mark.parametrize(
    ("extra", "words"),
    [
        (("P1/RD.dcm",), "takes no DOSE"),
        (("--csv", "x.csv"), "--csv is for one structure set"),
        (("--jobs", "0"), "--jobs takes a positive number"),
    ],
)
def test_table_usage_errors(
    cohort: Cohort,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    extra: tuple[str, ...],
    words: str,
) -> None:
    extra = tuple(str(cohort.root / e) if e.endswith(".dcm") else e for e in extra)
    table = tmp_path / "t.csv"
    arguments = ["dvh", str(cohort.root), *extra, "--table", str(table)]
    with pytest.raises(SystemExit) as raised:
        main(arguments)
    assert raised.value.code == 2
    assert words in capsys.readouterr().err
    assert not table.exists()


def test_roi_missing_from_some_structure_sets_fails_those_only(
    cohort: Cohort, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    table = tmp_path / "cord.csv"
    code, _, err = _run(
        capsys, str(cohort.root), "--table", str(table), "--roi", "cord", "--jobs", "1"
    )
    assert code == 1
    _, rows = _read(table)
    assert [(row["structure_set"], row["roi_name"]) for row in rows] == [("P2/RS.dcm", "Cord")]
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    no_match = [line for line in errors if "no ROI matches the selection" in line]
    # P1, P3 and P6 (whose dose is never read: the ROIs are selected first).
    assert [line.split(": ")[1] for line in no_match] == [
        str(cohort.root / name / "RS.dcm") for name in ("P1", "P3", "P6")
    ], err


def test_warnings_of_a_case_are_reported_as_lines(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # The breast plan's BODY reaches 0.9 % beyond the dose grid: the case's warning is a
    # "warning:" line naming the file, never a Python warning on stderr.
    from conftest import SHARED_DATA

    source = SHARED_DATA / "dicompyler-breast"
    if not source.is_dir():
        pytest.skip("../shared/data/dicompyler-breast is absent")
    table = tmp_path / "dvh.csv"
    code, out, err = _run(capsys, str(source), "--table", str(table), "--jobs", "1")
    text = " ".join((out + err).split())
    assert "GeometryWarning" not in text
    assert f"warning: {source / 'rtss.dcm'}: ROI 1 'BODY':" in text
    assert "lies outside the dose grid" in text
    assert f"error: {source / 'rtss.dcm'}: ROI 2 'Areola' has no contours" in text
    with table.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 9  # ten ROIs, Areola without contours
    assert f"9 ROI row(s) from 1 structure set(s) written to {table}" in text
    assert code == 1


def test_an_interrupted_table_keeps_the_cases_done(cohort: Cohort, tmp_path: Path) -> None:
    from rtmask.cohort import (
        DvhOptions,
        DvhResult,
        SerialExecutor,
        compute_dvh_table,
        plan_dvh_table,
        run_dvh_case,
    )

    plan = plan_dvh_table(cohort.root, DvhOptions(stats=("D95",)))
    assert len(plan.tasks) >= 3
    complete = tmp_path / "complete.csv"
    everything = compute_dvh_table(plan, complete, SerialExecutor(function=run_dvh_case))
    _, all_rows = _read(complete)
    assert len(everything) == len(plan.tasks)

    done: list[DvhResult] = []

    def stop_after_two(result: DvhResult) -> None:
        done.append(result)
        if len(done) == 2:
            raise KeyboardInterrupt

    table = tmp_path / "dvh.csv"
    with pytest.raises(KeyboardInterrupt):
        compute_dvh_table(
            plan, table, SerialExecutor(function=run_dvh_case), progress=stop_after_two
        )
    columns, rows = _read(table)
    assert columns == [*FIXED, "D95", *PRESCRIPTION]
    first_two = {task.structure_set for task in plan.tasks[:2]}
    assert {row["structure_set"] for row in rows} == first_two & {
        row["structure_set"] for row in all_rows
    }
    assert rows == [row for row in all_rows if row["structure_set"] in first_two]
    assert not list(tmp_path.glob(".*.tmp*"))  # no temporary file left behind

    # rewritten during the run: with refresh_s=0 the table grows case by case
    sizes: list[int] = []
    growing = tmp_path / "growing.csv"

    def measure(result: DvhResult) -> None:
        sizes.append(len(_read(growing)[1]) if growing.exists() else -1)

    compute_dvh_table(
        plan, growing, SerialExecutor(function=run_dvh_case), progress=measure, refresh_s=0
    )
    # rewritten after the progress call of each case: it lags one case behind (-1: no file)
    cumulative = np.cumsum([len(result.rows) for result in everything[:-1]]).tolist()
    assert sizes == [-1, *cumulative]
    assert _read(growing)[1] == all_rows
