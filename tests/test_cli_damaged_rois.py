"""ROIs the reader cannot use: every command names them and fails, none is mislabelled.

Each test damages one element of a structure set with pydicom, as the fuzzer did (issue 12,
items 3, 4 and 9): on the synthetic demo case (always) and on the real files of
``../shared/data`` (skipped when absent). The expected outcome follows from the damage
alone: which ROIs can no longer be matched with their contours.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
import pytest
from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset
from pydicom.tag import Tag

from conftest import changed_copy, copy_real, run_cli
from rtmask import ImageGrid, read_rtstruct
from rtmask._errors import InvalidInputError, StructureSetWarning
from rtmask.synthetic import RoiSpec, circle_uv, to_patient, write_ct_series, write_rtstruct

#: The demo's ROIs (number, name) in file order; Vertebra is the one damaged.
DEMO_ROIS = {
    1: "BODY",
    2: "Lung_L",
    3: "Lung_R",
    4: "Heart",
    5: "SpinalCord",
    6: "Vertebra",
    7: "Esophagus",
    10: "GTV",
    11: "PTV",
    20: "Marker",
}
#: Demo ROIs with a DVH when nothing is damaged: all of them.
DEMO_WITH_VOLUME = list(DEMO_ROIS.values())

Damage = Callable[[Dataset], None]


def _errors(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("error:")]


def _raw_integer(item: Dataset, keyword: str, value: bytes) -> None:
    """Set an IS element to bytes pydicom would refuse to hold (``b"one "``)."""
    tag = Tag(keyword)
    item[tag] = RawDataElement(tag, "IS", len(value), value, 0, False, True)


def _item(ds: Dataset, sequence: str, number: int) -> Dataset:
    key = "ROINumber" if sequence == "StructureSetROISequence" else "ReferencedROINumber"
    return next(item for item in ds[sequence].value if int(item[key].value) == number)


def _renumber(ds: Dataset, old: int, new: int) -> None:
    """Give ROI ``old`` the number ``new`` in all three sequences."""
    _item(ds, "StructureSetROISequence", old).ROINumber = new
    _item(ds, "ROIContourSequence", old).ReferencedROINumber = new
    _item(ds, "RTROIObservationsSequence", old).ReferencedROINumber = new


def _unreadable_number_cases(number: int, name: str) -> list[Any]:
    """Five ways to part ROI ``number`` (``name``) from its contours, each with its error."""

    def roi(ds: Dataset) -> Dataset:
        return _item(ds, "StructureSetROISequence", number)

    def contours(ds: Dataset) -> Dataset:
        return _item(ds, "ROIContourSequence", number)

    not_whole = f"ROI {name!r}: ROINumber {{}} is not a whole number"
    no_contours = f"ROI {number} {name!r} has no contours"
    return [
        pytest.param(
            lambda ds: _raw_integer(roi(ds), "ROINumber", b"one "),
            not_whole.format("'one'"),
            id="one",
        ),
        pytest.param(
            lambda ds: _raw_integer(roi(ds), "ROINumber", b"1.5 "),
            not_whole.format("'1.5'"),
            id="1.5",
        ),
        pytest.param(
            lambda ds: delattr(roi(ds), "ROINumber"), f"ROI {name!r}: no ROINumber", id="deleted"
        ),
        pytest.param(
            lambda ds: setattr(contours(ds), "ReferencedROINumber", 9999),
            no_contours,
            id="refers-to-9999",
        ),
        pytest.param(
            lambda ds: delattr(contours(ds), "ReferencedROINumber"),
            no_contours,
            id="refers-to-none",
        ),
    ]


def _all_nan(ds: Dataset, number: int) -> int:
    """Every ContourData of ROI ``number`` set to NaN; returns the number of contours."""
    contours = _item(ds, "ROIContourSequence", number).ContourSequence
    for contour in contours:
        contour.ContourData = [float("nan")] * len(contour.ContourData)
    return len(contours)


def _damaged_demo(demo: Path, tmp_path: Path, damage: Damage) -> tuple[Path, Path, Path]:
    """A copy of the demo case with ``damage`` done to its RTSTRUCT: (folder, RS, RD)."""
    folder = tmp_path / "case"
    rtstruct = changed_copy(demo, folder, "RS_demo.dcm", damage)
    return folder, rtstruct, folder / "RD_demo.dcm"


def _damaged_real(tmp_path: Path, damage: Damage) -> Path:
    """A copy of dicomrttool-anon with ``damage`` done to its RTSTRUCT; returns the RS."""
    folder = tmp_path / "real"
    source = copy_real("dicomrttool-anon", folder, "CT_*.dcm")
    ds = pydicom.dcmread(source / "RS_Body_SpinalCord.dcm")
    damage(ds)
    ds.save_as(folder / "RS.dcm")
    return folder / "RS.dcm"


# ------------------------------------------------------------- item 3: duplicate numbers


def test_rois_sharing_a_number_are_refused_by_name_and_the_rest_converted(
    demo: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, rtstruct, rtdose = _damaged_demo(demo, tmp_path, lambda ds: _renumber(ds, 6, 5))
    out = tmp_path / "out"
    code, _, err = run_cli(capsys, "convert", str(rtstruct), "-o", str(out))
    assert code == 1
    (line,) = [e for e in _errors(err) if "share ROINumber 5" in e]
    assert str(rtstruct) in line
    assert "'SpinalCord'" in line
    assert "'Vertebra'" in line
    written = sorted(p.name for p in out.glob("*.nii.gz"))
    expected = sorted(
        [f"{n}.nii.gz" for n in DEMO_WITH_VOLUME if n not in ("SpinalCord", "Vertebra")]
        + ["dose.nii.gz", "image.nii.gz"]  # the demo's CT and its dose, written beside
    )
    assert written == expected
    summary = json.loads((out / "summary.json").read_text())
    assert [r["name"] for r in summary["rois"]] == [
        n for n in DEMO_ROIS.values() if n not in ("SpinalCord", "Vertebra")
    ]
    assert any("share ROINumber 5" in s for s in summary["structure_set"]["skipped_rois"])

    for command in (
        ["volumes", str(rtstruct), "--json"],
        ["dvh", str(rtstruct), str(rtdose), "--json"],
    ):
        code, out_text, err = run_cli(capsys, *command)
        assert code == 1, command
        assert any("'SpinalCord' and 'Vertebra' share ROINumber 5" in e for e in _errors(err))
        names = [r["name"] for r in json.loads(out_text)["rois"]]
        assert "SpinalCord" not in names
        assert "Vertebra" not in names
        assert "Heart" in names


def test_the_reader_lists_rois_sharing_a_number_as_skipped(demo: Path, tmp_path: Path) -> None:
    _, rtstruct, _ = _damaged_demo(demo, tmp_path, lambda ds: _renumber(ds, 6, 5))
    structure_set = read_rtstruct(rtstruct, on_invalid="ignore")
    assert [roi.number for roi in structure_set.rois] == [1, 2, 3, 4, 7, 10, 11, 20]
    (message,) = structure_set.skipped_rois
    assert message.startswith("ROIs 'SpinalCord' and 'Vertebra' share ROINumber 5;")
    assert structure_set.read_problems() == (f"{rtstruct}: {message}",)
    assert structure_set.read_problems(skipped=False) == ()
    with pytest.warns(StructureSetWarning, match="share ROINumber 5"):
        read_rtstruct(rtstruct, on_invalid="warn")
    with pytest.raises(InvalidInputError, match="'SpinalCord' and 'Vertebra' share ROINumber 5"):
        read_rtstruct(rtstruct, on_invalid="raise")


def test_real_structure_set_with_spinal_cord_renumbered_to_body(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    def damage(ds: Dataset) -> None:
        _renumber(ds, int(ds.StructureSetROISequence[1].ROINumber), 13)

    rtstruct = _damaged_real(tmp_path, damage)
    out = tmp_path / "out"
    code, _, err = run_cli(capsys, "convert", str(rtstruct), "-o", str(out))
    assert code == 1
    (line,) = _errors(err)
    assert str(rtstruct) in line
    assert "ROIs 'BODY' and 'SpinalCord' share ROINumber 13" in line
    assert not list(out.glob("*.nii.gz"))  # above all, no BODY.nii.gz holding the cord
    code, out_text, err = run_cli(capsys, "volumes", str(rtstruct), "--json")
    assert code == 1
    assert json.loads(out_text)["rois"] == []
    assert any("'BODY' and 'SpinalCord'" in e for e in _errors(err))


def test_two_contour_items_for_one_roi_are_refused(
    demo: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Only the ROIContourSequence renumbered: ROI 5 would get Vertebra's contours."""

    def damage(ds: Dataset) -> None:
        _item(ds, "ROIContourSequence", 6).ReferencedROINumber = 5

    _, rtstruct, _ = _damaged_demo(demo, tmp_path, damage)
    out = tmp_path / "out"
    code, _, err = run_cli(capsys, "convert", str(rtstruct), "-o", str(out))
    assert code == 1
    errors = _errors(err)
    assert any(
        "ROI 5 'SpinalCord': two ROIContourSequence items refer to ROINumber 5" in e for e in errors
    )
    assert any("ROI 6 'Vertebra' has no contours" in e for e in errors)
    assert not (out / "SpinalCord.nii.gz").exists()
    assert not (out / "Vertebra.nii.gz").exists()
    assert (out / "Heart.nii.gz").exists()


# ----------------------------------------------- item 4: every command reports the reader


@pytest.mark.parametrize(("damage", "expected"), _unreadable_number_cases(6, "Vertebra"))
def test_every_command_reports_an_roi_it_cannot_read(
    demo: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    damage: Damage,
    expected: str,
) -> None:
    _, rtstruct, rtdose = _damaged_demo(demo, tmp_path, damage)
    commands = {
        "convert": ["convert", str(rtstruct), "-o", str(tmp_path / "out")],
        "volumes": ["volumes", str(rtstruct), "--json"],
        "dvh": ["dvh", str(rtstruct), str(rtdose), "--json"],
    }
    for name, command in commands.items():
        code, out_text, err = run_cli(capsys, *command)
        assert code == 1, name
        (line,) = _errors(err)
        assert line == f"error: {rtstruct}: {expected}" or line.startswith(
            f"error: {rtstruct}: {expected};"
        ), (name, line)
        if name != "convert":
            rois = {r["name"]: r for r in json.loads(out_text)["rois"]}
            assert "Heart" in rois
            if name == "dvh" or "ROINumber" in expected:
                assert "Vertebra" not in rois
            else:  # listed with the reason and no volume
                assert rois["Vertebra"]["voxel_cm3"] is None
                assert rois["Vertebra"]["warnings"] == [line.removeprefix("error: ")]
    assert (tmp_path / "out" / "Heart.nii.gz").exists()
    assert not (tmp_path / "out" / "Vertebra.nii.gz").exists()


@pytest.mark.parametrize(("damage", "expected"), _unreadable_number_cases(23, "SpinalCord"))
def test_real_structure_set_with_an_roi_that_cannot_be_read(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], damage: Damage, expected: str
) -> None:
    rtstruct = _damaged_real(tmp_path, damage)
    out = tmp_path / "out"
    for command in (["convert", str(rtstruct), "-o", str(out)], ["volumes", str(rtstruct)]):
        code, _, err = run_cli(capsys, *command)
        assert code == 1, command
        (line,) = _errors(err)
        assert line.startswith(f"error: {rtstruct}: {expected}"), line
    assert (out / "BODY.nii.gz").exists()
    assert not (out / "SpinalCord.nii.gz").exists()


# ------------------------------------------------- items 4 and 9: all contours unusable


def test_an_roi_whose_contours_are_all_nan_fails_every_command(
    demo: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    counts: list[int] = []
    _, rtstruct, rtdose = _damaged_demo(demo, tmp_path, lambda ds: counts.append(_all_nan(ds, 4)))
    expected = (
        f"error: {rtstruct}: ROI 4 'Heart' is empty: all {counts[0]} of its contours have "
        "unusable coordinates (NaN, infinite, beyond 100 m, missing or not numbers) and were "
        "dropped"
    )
    code, out_text, err = run_cli(capsys, "dvh", str(rtstruct), str(rtdose), "--json")
    assert code == 1
    (line,) = [e for e in _errors(err) if "Heart" in e]
    assert line.startswith(expected)
    names = [r["name"] for r in json.loads(out_text)["rois"]]
    assert names == [n for n in DEMO_WITH_VOLUME if n != "Heart"]

    code, _, err = run_cli(capsys, "convert", str(rtstruct), "-o", str(tmp_path / "out"))
    assert code == 1
    (line,) = _errors(err)
    assert line.startswith(expected)
    assert "has no contours" not in line

    code, out_text, err = run_cli(capsys, "volumes", str(rtstruct), "--json")
    assert code == 1
    (line,) = _errors(err)
    assert line.startswith(expected)
    heart = next(r for r in json.loads(out_text)["rois"] if r["name"] == "Heart")
    assert heart["dropped_contours"] == list(range(1, counts[0] + 1))
    assert heart["voxel_cm3"] is None


def test_real_roi_with_all_contours_nan(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    counts: list[int] = []

    def damage(ds: Dataset) -> None:
        counts.append(_all_nan(ds, int(ds.StructureSetROISequence[1].ROINumber)))

    rtstruct = _damaged_real(tmp_path, damage)
    code, _, err = run_cli(capsys, "convert", str(rtstruct), "-o", str(tmp_path / "out"))
    assert code == 1
    (line,) = _errors(err)
    assert line.startswith(
        f"error: {rtstruct}: ROI 23 'SpinalCord' is empty: all {counts[0]} of its contours"
    )
    assert (tmp_path / "out" / "BODY.nii.gz").exists()


def _ring_case(tmp_path: Path) -> tuple[Path, float]:
    """A ring (disc r=12 mm with a hole r=6 mm) on 3 slices, the hole of slice 1 NaN.

    Returns the RTSTRUCT and the ring's analytic area in mm2 (polygons of 64 vertices).
    """
    grid = ImageGrid.from_explicit(
        origin_mm=(-30.0, -30.0, 10.0), spacing_mm=(2.0, 0.5, 0.5), shape=(3, 120, 120)
    )
    ct = write_ct_series(tmp_path / "ct", grid)
    contours = []
    for k in range(3):
        for radius in (12.0, 6.0):
            points = to_patient(grid, k, circle_uv((30.0, 30.0), radius, n=64))
            if k == 1 and radius == 6.0:
                points[3, 0] = np.nan
            contours.append((points, "CLOSED_PLANAR"))
    rtstruct = write_rtstruct(
        tmp_path / "RS.dcm", [RoiSpec(number=1, name="Ring", contours=tuple(contours))], ct
    )

    def polygon_area(radius: float) -> float:
        return 0.5 * 64 * radius**2 * np.sin(2 * np.pi / 64)

    return rtstruct, polygon_area(12.0) - polygon_area(6.0)


def test_volumes_flags_a_dropped_hole_instead_of_counting_it_silently(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rtstruct, ring_mm2 = _ring_case(tmp_path)
    code, out_text, err = run_cli(capsys, "volumes", str(rtstruct), "--json")
    assert code == 1
    (line,) = _errors(err)
    assert line.startswith(f"error: {rtstruct}: ROI 1 'Ring': contour(s) 4 have unusable")
    assert "a dropped hole is filled" in line
    report = json.loads(out_text)
    (ring,) = report["rois"]
    assert ring["dropped_contours"] == [4]
    assert any("contour(s) 4" in w for w in ring["warnings"])
    assert report["problems"] == [line.removeprefix("error: ")]
    # What is reported is what the file still says: slice 1 a full disc (hole dropped).
    disc_mm2 = 0.5 * 64 * 12.0**2 * np.sin(2 * np.pi / 64)
    assert ring["contour_half_cm3"] == pytest.approx((2 * ring_mm2 + disc_mm2) * 2.0 / 1000)


def test_real_square_with_its_hole_nan(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source = copy_real("rt-utils-samples/mock_data", tmp_path, "ct_*.dcm")
    ds = pydicom.dcmread(source / "rt.dcm")
    hole = ds.ROIContourSequence[0].ContourSequence[1]
    hole.ContourData = [float("nan"), *list(hole.ContourData)[1:]]
    ds.save_as(tmp_path / "rt.dcm")
    code, out_text, err = run_cli(capsys, "volumes", str(tmp_path / "rt.dcm"), "--json")
    assert code == 1
    assert any(
        e.startswith(f"error: {tmp_path / 'rt.dcm'}: ROI 1 'ROI-1': contour(s) 2 have unusable")
        for e in _errors(err)
    )
    assert json.loads(out_text)["rois"][0]["dropped_contours"] == [2]
