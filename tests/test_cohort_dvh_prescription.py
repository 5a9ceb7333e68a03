"""``rtmask dvh ROOT --table``: each case's prescription from its linked RT Plan.

Every case is a cylinder in a uniform dose, so a V<x>% statistic is either the whole
volume (x % of the prescription below the dose) or 0: known without any DVH, the whole
volume from the contours' polygon area (shapely) times the stack's thickness.
"""

from __future__ import annotations

import csv
import dataclasses
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pydicom
import pytest
import shapely

from plan_factory import base_plan, beam_plan, save
from rtmask import ImageGrid
from rtmask.cli import main
from rtmask.cohort import DvhOptions, plan_dvh_table, run_dvh_case
from rtmask.cohort._dvh_table import linked_plan
from rtmask.convert import DoseSelection
from rtmask.discovery import Inventory, RTObject
from rtmask.synthetic import (
    RoiSpec,
    cylinder_contours,
    write_ct_series,
    write_rtdose,
    write_rtstruct,
)

DOSE_GY = 50.0
STATS = "V95%,V80%,V95%%,D50"
CT_SPACING_MM = (2.0, 1.25, 1.25)
#: Case folder -> the prescription its linked plan holds (None: no usable plan).
PRESCRIPTIONS = {"P1": 50.0, "P2": None, "P3": 60.0, "P4": None}


@dataclass(frozen=True)
class Archive:
    root: Path
    volume_cm3: float  # the cylinder's contour volume: polygon area x stack thickness
    plan_uids: dict[str, str]


def _ct_grid() -> ImageGrid:
    return ImageGrid.from_explicit(
        origin_mm=(-30.0, -25.0, -20.0), spacing_mm=CT_SPACING_MM, shape=(20, 40, 48)
    )


def _case(root: Path, name: str, *, plan: str | None, units: str = "GY") -> tuple[float, Path, str]:
    """CT, a cylinder and a uniform dose; ``plan``: the UID the dose references (None: none)."""
    grid = _ct_grid()
    ct = write_ct_series(root / name / "ct", grid, patient_id=name)
    centre = grid.index_to_patient([[9.5, 19.5, 23.5]])[0]
    contours = cylinder_contours(grid, centre, 9.0, 20.0)
    rs = write_rtstruct(
        root / name / "RS.dcm",
        [RoiSpec(number=1, name="PTV", contours=tuple((c, "CLOSED_PLANAR") for c in contours))],
        ct,
    )
    # Independent volume: shapely's polygon area on each (axial) plane x the planes' slabs
    # (half end caps: every plane stands for one slice spacing).
    area = sum(shapely.Polygon(c[:, :2]).area for c in contours)
    volume = area * CT_SPACING_MM[0] / 1000.0
    dose_grid = ImageGrid.from_explicit(
        origin_mm=(-34.0, -29.0, -24.0),
        spacing_mm=(3.0, 3.0, 3.0),
        shape=(16, 22, 25),
        frame_of_reference_uid=ct.frame_of_reference_uid,
    )
    dose = write_rtdose(
        root / name / "RD.dcm",
        dose_grid,
        np.full(dose_grid.shape, DOSE_GY if units == "GY" else 100.0),
        ct,
        referenced_plan_uid=plan,
        dose_units=units,
    )
    if plan is None:  # a dose that references no plan at all
        dataset = pydicom.dcmread(dose)
        del dataset.ReferencedRTPlanSequence
        dataset.save_as(dose)
    uid = str(pydicom.dcmread(rs, stop_before_pixels=True).SOPInstanceUID)
    return volume, rs, uid


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> Archive:
    root = tmp_path_factory.mktemp("rx") / "archive"
    uids = {name: pydicom.uid.generate_uid() for name in ("P1", "P4")}
    # P1: the dose references its plan (50 Gy). P2: the plan it references is not there.
    volume, _, structure_set = _case(root, "P1", plan=uids["P1"])
    plan = beam_plan(
        prescriptions_gy=(("SITE", "PTV", 50.0),),
        sop_instance_uid=uids["P1"],
        structure_set_uid=structure_set,
    )
    save(plan, root / "P1" / "RP.dcm")
    _case(root, "P2", plan=pydicom.uid.generate_uid())
    # P3: the dose references no plan; the one plan referencing the structure set (60 Gy).
    _, _, structure_set = _case(root, "P3", plan=None)
    (root / "P3" / "plans").mkdir()
    save(
        beam_plan(prescriptions_gy=(("SITE", "PTV", 60.0),), structure_set_uid=structure_set),
        root / "P3" / "plans" / "RP3.dcm",
    )
    # P4: the plan the dose references holds no prescription.
    _, _, structure_set = _case(root, "P4", plan=uids["P4"])
    plan = base_plan(sop_instance_uid=uids["P4"], structure_set_uid=structure_set)
    save(plan, root / "P4" / "RP.dcm")
    return Archive(root=root, volume_cm3=volume, plan_uids=uids)


def _table(
    capsys: pytest.CaptureFixture[str], archive: Archive, table: Path, *extra: str
) -> tuple[int, str, list[str], dict[str, dict[str, str]]]:
    code = main(["dvh", str(archive.root), "--table", str(table), "--stats", STATS, *extra])
    err = " ".join(capsys.readouterr().err.split())
    with table.open(encoding="utf-8", newline="") as stream:
        reader = csv.DictReader(stream)
        rows = {row["structure_set"].split("/")[0]: row for row in reader}
        columns = list(reader.fieldnames or ())
    return code, err, columns, rows


def _expected_v(percent: float, prescription: float | None, volume: float) -> float | None:
    if prescription is None:
        return None
    return volume if percent / 100 * prescription <= DOSE_GY else 0.0


def _check_rows(archive: Archive, rows: dict[str, dict[str, str]]) -> None:
    assert set(rows) == set(PRESCRIPTIONS)
    for case, prescription in PRESCRIPTIONS.items():
        row = rows[case]
        volume = float(row["volume_cm3"])
        assert volume == pytest.approx(archive.volume_cm3, rel=5e-3), case
        assert float(row["D50"]) == pytest.approx(DOSE_GY, rel=1e-6)
        for name, percent in (("V95%", 95.0), ("V80%", 80.0)):
            expected = _expected_v(percent, prescription, volume)
            if expected is None:
                assert row[name] == "", (case, name)
            else:
                assert float(row[name]) == pytest.approx(expected, rel=1e-9, abs=1e-9), case
        whole = _expected_v(95.0, prescription, 100.0)
        if whole is None:
            assert row["V95%%"] == "", case
        else:
            assert float(row["V95%%"]) == pytest.approx(whole), case
        if prescription is None:
            assert row["prescription_gy"] == row["prescription_source"] == ""
        else:
            assert float(row["prescription_gy"]) == prescription
    assert rows["P1"]["prescription_source"].startswith("plan P1/RP.dcm (DoseReferenceSequence")
    assert rows["P3"]["prescription_source"].startswith("plan P3/plans/RP3.dcm (")


@pytest.mark.parametrize("runner", [("--jobs", "1"), ("--jobs", "2")])
def test_each_case_takes_the_prescription_of_its_plan(
    archive: Archive,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    runner: tuple[str, str],
) -> None:
    code, err, columns, rows = _table(capsys, archive, tmp_path / "dvh.csv", *runner)
    assert code == 0, err  # cases without a prescription are warned about, not failures
    assert columns[-len(STATS.split(",")) - 2 :] == [
        *STATS.split(","),
        "prescription_gy",
        "prescription_source",
    ]
    assert columns[:4] == ["patient_id", "structure_set", "dose", "dose_choice"]
    _check_rows(archive, rows)
    # One warning line per case without a prescription, in the command line's words.
    assert "error:" not in err
    for case, why in (
        ("P2", "the RT Plan the dose references"),
        ("P4", "its RT Plan P4/RP.dcm holds no prescription dose"),
    ):
        line = f"warning: {archive.root / case / 'RS.dcm'}: V95%, V80%, V95%% left empty"
        assert line in err, err
        assert why in err, err
    assert err.count("left empty") == 2
    assert "prescription_gy" not in err
    assert "(--prescription GY)" in err


def test_the_prescription_option_applies_to_every_case(
    archive: Archive, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, err, _, rows = _table(
        capsys, archive, tmp_path / "dvh.csv", "--prescription", "61", "--jobs", "1"
    )
    assert code == 0, err
    for row in rows.values():
        assert float(row["prescription_gy"]) == 61.0
        assert row["prescription_source"] == "--prescription"
        volume = float(row["volume_cm3"])
        assert float(row["V95%"]) == 0.0  # 57.95 Gy > 50 Gy
        assert float(row["V80%"]) == pytest.approx(volume, rel=1e-9)  # 50 Gy >= 48.8 Gy


def test_parquet_holds_the_prescription_columns(
    archive: Archive, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    duckdb = pytest.importorskip("duckdb")
    table = tmp_path / "dvh.parquet"
    assert main(["dvh", str(archive.root), "--table", str(table), "--stats", STATS]) == 0
    capsys.readouterr()
    with duckdb.connect() as connection:
        described = connection.execute(f"DESCRIBE SELECT * FROM read_parquet('{table}')")
        types = {row[0]: row[1] for row in described.fetchall()}
        found = connection.execute(
            "SELECT structure_set, prescription_gy, prescription_source "
            f"FROM read_parquet('{table}') ORDER BY structure_set"
        ).fetchall()
    assert types["prescription_gy"] == "DOUBLE"
    assert types["prescription_source"] == "VARCHAR"
    assert [(s, p) for s, p, _ in found] == [
        (f"{case}/RS.dcm", prescription) for case, prescription in PRESCRIPTIONS.items()
    ]
    assert [source is None for _, _, source in found] == [
        prescription is None for prescription in PRESCRIPTIONS.values()
    ]


def test_a_local_dask_cluster_gives_the_same_table(
    archive: Archive, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("distributed")
    code, err, _, rows = _table(capsys, archive, tmp_path / "dvh.csv", "--scheduler", "local:2")
    assert code == 0, err
    _check_rows(archive, rows)
    _, _, _, serial = _table(capsys, archive, tmp_path / "serial.csv", "--jobs", "1")
    assert rows == serial


def _object(modality: str, path: str, uid: str, *references: str) -> RTObject:
    return RTObject(
        path=Path(path),
        modality=modality,
        sop_class_uid=None,
        sop_instance_uid=uid,
        series_instance_uid=None,
        study_instance_uid=None,
        patient_id="P",
        patient_name=None,
        frame_of_reference_uid=None,
        label="PLAN PHYSICAL GY" if modality == "RTDOSE" else None,
        referenced_rt_uids=references,
    )


@pytest.mark.parametrize(
    ("dose_references", "plans", "expected", "why"),
    [
        (("RP1",), [("a/RP1.dcm", "RP1"), ("z/copy.dcm", "RP1")], "a/RP1.dcm", ""),
        (("RP1", "RP2"), [("RP1.dcm", "RP1"), ("RP2.dcm", "RP2")], None, "2 RT Plans"),
        (("RS",), [("RP1.dcm", "RP1", "RS")], "RP1.dcm", ""),
        ((), [("RP1.dcm", "RP1", "RS"), ("RP2.dcm", "RP2", "RS")], None, "2 reference"),
        ((), [("RP1.dcm", "RP1", "other")], None, "no RT Plan is linked"),
        (("gone",), [("RP1.dcm", "RP1", "RS")], None, "(gone) is not under ROOT"),
    ],
)
def test_the_linked_plan_is_one_plan_or_none(
    dose_references: tuple[str, ...],
    plans: list[tuple[str, ...]],
    expected: str | None,
    why: str,
) -> None:
    structure_set = _object("RTSTRUCT", "RS.dcm", "RS")
    dose = _object("RTDOSE", "RD.dcm", "RD", *dose_references)
    inventory = Inventory(
        image_series=(),
        structure_sets=(structure_set,),
        doses=(dose,),
        plans=tuple(_object("RTPLAN", path, uid, *refs) for path, uid, *refs in plans),
        skipped=(),
    )
    selection = DoseSelection(files=(dose.path,), choice="plan", link="test")
    plan, note = linked_plan(structure_set, selection, inventory)
    assert (None if plan is None else plan.path.as_posix()) == expected
    assert why in note
    assert bool(note) == (plan is None)


def test_an_unreadable_plan_is_a_warning_and_no_prescription(
    archive: Archive, tmp_path: Path
) -> None:
    broken = tmp_path / "RP.dcm"
    broken.write_bytes(b"not a plan")
    options = DvhOptions(stats=("V95%", "D50"))
    (task,) = [t for t in plan_dvh_table(archive.root, options).tasks if "P1" in t.structure_set]
    result = run_dvh_case(dataclasses.replace(task, plan=broken))
    assert result.errors == ()
    (row,) = result.rows
    assert row["V95%"] is row["prescription_gy"] is row["prescription_source"] is None
    assert row["D50"] == pytest.approx(DOSE_GY)
    assert any(str(broken) in w and "not used" in w for w in result.warnings), result.warnings
    assert any("P1/RP.dcm cannot be read" in w for w in result.warnings), result.warnings


def test_a_relative_dose_is_read_with_its_plans_prescription(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # 100 % of the plan's 40 Gy; the same dose without a plan cannot be read in Gy.
    root = tmp_path / "archive"
    uid = pydicom.uid.generate_uid()
    _, _, structure_set = _case(root, "R1", plan=uid, units="RELATIVE")
    plan = beam_plan(
        prescriptions_gy=(("SITE", "PTV", 40.0),),
        sop_instance_uid=uid,
        structure_set_uid=structure_set,
    )
    save(plan, root / "R1" / "RP.dcm")
    _case(root, "R2", plan=None, units="RELATIVE")
    table = tmp_path / "dvh.csv"
    code = main(["dvh", str(root), "--table", str(table), "--stats", "V95%", "--jobs", "1"])
    err = " ".join(capsys.readouterr().err.split())
    assert code == 1
    with table.open(encoding="utf-8", newline="") as stream:
        (row,) = csv.DictReader(stream)
    assert row["structure_set"] == "R1/RS.dcm"
    assert float(row["mean_gy"]) == pytest.approx(40.0, rel=1e-6)
    assert float(row["V95%"]) == pytest.approx(float(row["volume_cm3"]), rel=1e-9)
    assert f"error: {root / 'R2' / 'RD.dcm'}: DoseUnits is RELATIVE" in err
    assert "(--prescription GY)" in err
    assert "prescription_gy" not in err
