"""Several structure sets with --image, --dose-grid or --grid-spacing: the archive runner.

Each case must equal the single-structure-set conversion with the same option (the path
those options took before), and the run must be the archive's: cases.csv, parallel, resumable.
"""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from conftest import HFS, run_cli_output, small_grid
from rtmask.synthetic import RoiSpec, sphere_contours, write_ct_series, write_rtdose, write_rtstruct

GRID = small_grid((10, 30, 36), HFS)


def _rois(names: tuple[str, ...], shift: float) -> list[RoiSpec]:
    rois = []
    for number, name in enumerate(names, start=1):
        centre = GRID.index_to_patient([[4.5 + 0.5 * number, 14.0 + shift, 17.0 + shift]])[0]
        contours = sphere_contours(GRID, centre, 5.0 + 2.0 * number)
        rois.append(
            RoiSpec(
                number=number, name=name, contours=tuple((c, "CLOSED_PLANAR") for c in contours)
            )
        )
    return rois


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``base/rs`` holds two structure sets of one CT kept in ``base/ct`` (outside it)."""
    base = tmp_path_factory.mktemp("own_grid")
    ct = write_ct_series(base / "ct", GRID, patient_id="P1")
    write_rtstruct(base / "rs" / "RS_a.dcm", _rois(("Lung_L", "PTV"), 0.0), ct, label="A")
    write_rtstruct(base / "rs" / "RS_b.dcm", _rois(("Cord",), 3.0), ct, label="B")
    write_rtdose(base / "RD.dcm", GRID, np.ones(GRID.shape), ct)
    return base


def _cases(out: Path) -> dict[str, dict[str, str]]:
    with (out / "cases.csv").open(encoding="utf-8", newline="") as stream:
        return {row["structure_set"]: row for row in csv.DictReader(stream)}


def _same_masks(case: Path, single: Path) -> None:
    names = sorted(p.name for p in single.glob("*.nii.gz"))
    assert names == sorted(p.name for p in case.glob("*.nii.gz"))
    assert names
    for name in names:
        mine, theirs = nib.load(case / name), nib.load(single / name)
        np.testing.assert_array_equal(mine.affine, theirs.affine)
        np.testing.assert_array_equal(np.asarray(mine.dataobj), np.asarray(theirs.dataobj))


@pytest.mark.parametrize(
    "option",
    [("--image", "ct"), ("--grid-spacing", "2"), ("--dose-grid", "RD.dcm")],
    ids=["image", "grid-spacing", "dose-grid"],
)
def test_each_case_equals_its_single_conversion(
    folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], option: tuple[str, str]
) -> None:
    flag, value = option
    value = str(folder / value) if flag != "--grid-spacing" else value
    out = tmp_path / "out"
    code, output = run_cli_output(
        capsys, "convert", str(folder / "rs"), "-o", str(out), flag, value, "--jobs", "2"
    )
    assert code == 0, output
    cases = _cases(out)
    assert sorted(cases) == ["RS_a.dcm", "RS_b.dcm"]
    assert {row["status"] for row in cases.values()} == {"converted"}
    if flag == "--image":
        assert {row["link"] for row in cases.values()} == {"given"}
    for source, row in cases.items():
        single = tmp_path / f"single_{source}"
        code, output = run_cli_output(
            capsys, "convert", str(folder / "rs" / source), "-o", str(single), flag, value
        )
        assert code == 0, output
        _same_masks(out / row["output"], single)

    # resumable as every archive run: the rerun skips both cases
    code, output = run_cli_output(
        capsys, "convert", str(folder / "rs"), "-o", str(out), flag, value, "--jobs", "1"
    )
    assert code == 0, output
    assert {row["status"] for row in _cases(out).values()} == {"skipped"}


def test_without_the_option_the_cases_fail_and_say_why(
    folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    code, _ = run_cli_output(capsys, "convert", str(folder / "rs"), "-o", str(out), "--jobs", "1")
    assert code == 1
    rows = _cases(out).values()
    assert {row["status"] for row in rows} == {"failed"}
    assert {row["link"] for row in rows} == {"none"}


def test_a_structure_set_without_contour_points_fails_alone_on_grid_spacing(
    folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rs = tmp_path / "rs"
    shutil.copytree(folder / "rs", rs)
    ct = write_ct_series(tmp_path / "ct", GRID, patient_id="P2")
    write_rtstruct(rs / "RS_empty.dcm", [RoiSpec(number=1, name="Empty")], ct, label="E")
    out = tmp_path / "out"
    code, output = run_cli_output(
        capsys, "convert", str(rs), "-o", str(out), "--grid-spacing", "2", "--jobs", "1"
    )
    assert code == 1
    cases = _cases(out)
    assert cases["RS_empty.dcm"]["status"] == "failed"
    assert "no contour points to build a grid around" in cases["RS_empty.dcm"]["error"]
    assert "RS_empty.dcm" in output
    assert cases["RS_a.dcm"]["status"] == cases["RS_b.dcm"]["status"] == "converted"
