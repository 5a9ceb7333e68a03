"""``rtmask dvh`` end to end on a synthetic case with a linear dose field."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
import pytest

from rtmask import ImageGrid
from rtmask.cli import main
from rtmask.dose import read_dose
from rtmask.dvh import compute_dvh
from rtmask.rtstruct import read_rtstruct
from rtmask.synthetic import (
    RoiSpec,
    cylinder_contours,
    sphere_contours,
    write_ct_series,
    write_rtdose,
    write_rtstruct,
)

DEFAULT_STATS = ("D99", "D95", "D50", "D5", "D1", "D0.03cc")
GRADIENT = 0.5  # Gy/mm along x
BASE = 10.0  # Gy at x = 0


def _dose_of(points: np.ndarray) -> np.ndarray:
    return BASE + GRADIENT * points[..., 0]


def _case(tmp_path: Path) -> tuple[Path, Path, dict[str, np.ndarray]]:
    """CT, RTSTRUCT (sphere, cylinder, a point, an ROI beyond the dose) and a linear RT Dose."""
    ct_grid = ImageGrid.from_explicit(
        origin_mm=(-30.3, -25.1, -20.0), spacing_mm=(2.0, 1.0, 1.2), shape=(24, 50, 60)
    )
    ct = write_ct_series(tmp_path / "ct", ct_grid)
    centres = {
        "Sphere": ct_grid.index_to_patient([[10.5, 25.0, 25.0]])[0],
        "Cyl": ct_grid.index_to_patient([[10.0, 24.0, 40.0]])[0],
        "Far": ct_grid.index_to_patient([[10.0, 25.0, 8.0]])[0],
    }
    sphere = sphere_contours(ct_grid, centres["Sphere"], 8.0)
    cylinder = cylinder_contours(ct_grid, centres["Cyl"], 5.0, 10.0)
    far = sphere_contours(ct_grid, centres["Far"], 3.0)
    point = centres["Sphere"].reshape(1, 3)
    rois = [
        RoiSpec(number=1, name="Sphere", contours=tuple((c, "CLOSED_PLANAR") for c in sphere)),
        RoiSpec(
            number=2,
            name="Cyl",
            contours=tuple((c, "CLOSED_PLANAR") for c in cylinder),
            color=(0, 128, 255),
        ),
        RoiSpec(number=3, name="Marker", contours=((point, "POINT"),)),
        RoiSpec(number=4, name="Far", contours=tuple((c, "CLOSED_PLANAR") for c in far)),
    ]
    rtstruct = write_rtstruct(tmp_path / "RS.dcm", rois, ct)
    # Dose grid: 2.5 mm, covering Sphere and Cyl but starting beyond Far (x > about -18 mm).
    dose_grid = ImageGrid.from_explicit(
        origin_mm=(-12.0, -26.0, -22.0), spacing_mm=(2.5, 2.5, 2.5), shape=(22, 22, 20)
    )
    index = np.stack(np.meshgrid(*[np.arange(k) for k in dose_grid.shape], indexing="ij"), -1)
    points = dose_grid.index_to_patient(index.reshape(-1, 3)).reshape(*dose_grid.shape, 3)
    dose = write_rtdose(tmp_path / "RD.dcm", dose_grid, _dose_of(points), ct)
    return rtstruct, dose, centres


@pytest.fixture(scope="module")
def case(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, dict[str, np.ndarray]]:
    return _case(tmp_path_factory.mktemp("dvh"))


def _run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(["dvh", *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _error_lines(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.startswith("error:")]


def test_json_has_the_contract_keys_and_compute_dvh_numbers(
    case: tuple[Path, Path, dict[str, np.ndarray]], capsys: pytest.CaptureFixture[str]
) -> None:
    rtstruct, dose_path, centres = case
    code, out, err = _run(
        [str(rtstruct), str(dose_path), "--roi", "sphere", "--roi", "Cyl", "--json"], capsys
    )
    assert code == 0, err
    report: dict[str, Any] = json.loads(out)
    assert list(report) == ["prescription", "rois"]
    assert report["prescription"] == {"dose_gy": None, "source": None}  # no plan beside
    assert [r["name"] for r in report["rois"]] == ["Sphere", "Cyl"]
    structure_set = read_rtstruct(rtstruct, on_invalid="ignore")
    dose = read_dose(dose_path)
    for entry, roi in zip(report["rois"], structure_set.rois[:2], strict=True):
        assert set(entry) == {
            "number", "name", "volume_cm3", "min_gy", "mean_gy", "max_gy", "stats", "curve",
        }  # fmt: skip
        assert list(entry["stats"]) == list(DEFAULT_STATS)
        assert set(entry["curve"]) == {"dose_gy", "volume_cm3"}
        assert isinstance(entry["number"], int)
        assert entry == compute_dvh(roi, dose).to_dict(DEFAULT_STATS)
        # Independent sanity: in a linear field the mean dose is the dose at the centroid.
        assert entry["mean_gy"] == pytest.approx(float(_dose_of(centres[roi.name])), rel=0.01)
    sphere = report["rois"][0]
    assert sphere["volume_cm3"] == pytest.approx(4 / 3 * np.pi * 0.8**3, rel=0.03)


def test_default_run_reports_the_roi_outside_the_dose_and_computes_the_others(
    case: tuple[Path, Path, dict[str, np.ndarray]], capsys: pytest.CaptureFixture[str]
) -> None:
    rtstruct, dose_path, _ = case
    code, out, err = _run([str(rtstruct), str(dose_path), "--json"], capsys)
    assert code == 1
    (line,) = _error_lines(err)
    assert "Far" in line
    assert "outside the dose grid" in line
    names = [entry["name"] for entry in json.loads(out)["rois"]]
    assert names == ["Sphere", "Cyl"]  # the POINT ROI encloses no volume: not listed


def test_table_lists_every_column(
    case: tuple[Path, Path, dict[str, np.ndarray]], capsys: pytest.CaptureFixture[str]
) -> None:
    rtstruct, dose_path, _ = case
    args = [str(rtstruct), str(dose_path), "--roi", "S*", "--stats", "D95,V12Gy"]
    code, out, err = _run(args, capsys)
    assert code == 0, err
    for text in ("Sphere", "volume (cm3)", "mean (Gy)", "D95 (Gy)", "V12Gy (cm3)"):
        assert text in out
    assert "Cyl" not in out


def test_csv_has_one_row_per_roi_with_the_same_numbers(
    case: tuple[Path, Path, dict[str, np.ndarray]],
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    rtstruct, dose_path, _ = case
    target = tmp_path / "dvh.csv"
    base = [
        str(rtstruct),
        str(dose_path),
        "--roi",
        "Sphere",
        "--roi",
        "Cyl",
        "--stats",
        "D2cc,V14Gy",
    ]
    code, _, err = _run([*base, "--csv", str(target)], capsys)
    assert code == 0, err
    with target.open(newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    _, out, _ = _run([*base, "--json"], capsys)
    entries = json.loads(out)["rois"]
    assert [row["name"] for row in rows] == ["Sphere", "Cyl"]
    assert list(rows[0]) == [
        "number", "name", "volume_cm3", "min_gy", "mean_gy", "max_gy", "D2cc_gy", "V14Gy_cm3",
    ]  # fmt: skip
    for row, entry in zip(rows, entries, strict=True):
        assert int(row["number"]) == entry["number"]
        assert float(row["mean_gy"]) == entry["mean_gy"]
        assert float(row["V14Gy_cm3"]) == entry["stats"]["V14Gy"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dvh.csv"]  # no temporary left


def test_non_dose_file_is_one_error_line(
    case: tuple[Path, Path, dict[str, np.ndarray]], capsys: pytest.CaptureFixture[str]
) -> None:
    rtstruct, _, _ = case
    code, out, err = _run([str(rtstruct), str(rtstruct)], capsys)
    assert code == 1
    assert out == ""
    assert len(_error_lines(err)) == 1
    assert len(err.strip().splitlines()) == 1


def test_roi_matching_nothing_is_one_error_line(
    case: tuple[Path, Path, dict[str, np.ndarray]], capsys: pytest.CaptureFixture[str]
) -> None:
    rtstruct, dose_path, _ = case
    code, out, err = _run([str(rtstruct), str(dose_path), "--roi", "PTV*"], capsys)
    assert code == 1
    assert out == ""
    (line,) = err.strip().splitlines()
    assert "PTV*" in line
    assert "Sphere" in line


def test_unknown_statistic_is_one_error_line(
    case: tuple[Path, Path, dict[str, np.ndarray]], capsys: pytest.CaptureFixture[str]
) -> None:
    rtstruct, dose_path, _ = case
    code, _, err = _run([str(rtstruct), str(dose_path), "--stats", "D95,Q7"], capsys)
    assert code == 1
    (line,) = err.strip().splitlines()
    assert "Q7" in line


def _add_embedded_dvh(path: Path, roi_number: int) -> None:
    """Embed a cumulative DVH (doses in percent of 20 Gy, means etc. in percent too)."""
    dataset = pydicom.dcmread(path)
    item = pydicom.Dataset()
    item.DVHType = "CUMULATIVE"
    item.DoseUnits = "RELATIVE"
    item.DoseType = "PHYSICAL"
    item.DVHDoseScaling = "0.5"
    item.DVHVolumeUnits = "CM3"
    item.DVHNumberOfBins = 3
    # Bins of 0.5 x 20 = 10 %: 2 cm3 >= 0 %, 1.5 cm3 >= 10 %, 0.5 cm3 >= 20 %.
    item.DVHData = ["20", "2", "20", "1.5", "20", "0.5"]
    reference = pydicom.Dataset()
    reference.ReferencedROINumber = roi_number
    reference.DVHROIContributionType = "INCLUDED"
    item.DVHReferencedROISequence = [reference]
    item.DVHMeanDose = "15"
    dataset.DVHSequence = [item]
    dataset.save_as(path)


def test_embedded_dvh_is_shown_beside_and_scaled_as_asked(
    case: tuple[Path, Path, dict[str, np.ndarray]],
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    rtstruct, dose_path, _ = case
    with_dvh = tmp_path / "RD_dvh.dcm"
    with_dvh.write_bytes(dose_path.read_bytes())
    _add_embedded_dvh(with_dvh, 1)
    base = [str(rtstruct), str(with_dvh), "--roi", "Sphere", "--embedded", "--stats", "V3Gy"]
    code, _, err = _run(base, capsys)
    assert code == 1  # RELATIVE doses without a prescription
    assert "--prescription" in err
    code, out, err = _run([*base, "--prescription", "20", "--json"], capsys)
    assert code == 0, err
    (entry,) = json.loads(out)["rois"]
    embedded = entry["embedded"]
    assert embedded["volume_cm3"] == pytest.approx(2.0)
    assert embedded["mean_gy"] == pytest.approx(3.0)  # 15 % of 20 Gy
    assert embedded["stats"]["V3Gy"] == pytest.approx(1.0)  # half-way between 2 and 4 Gy
    code, out, err = _run(
        [*base, "--embedded-dose-scale", "0.1", "--embedded-stats-percent-of", "10"], capsys
    )
    assert code == 0, err
    assert "embedded" in out
    code, out, _ = _run([str(rtstruct), str(dose_path), "--roi", "Sphere", "--json"], capsys)
    assert "embedded" not in json.loads(out)["rois"][0]


def test_plot_is_written(
    case: tuple[Path, Path, dict[str, np.ndarray]],
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    pytest.importorskip("matplotlib")
    rtstruct, dose_path, _ = case
    target = tmp_path / "dvh.png"
    code, _, err = _run(
        [str(rtstruct), str(dose_path), "--roi", "Sphere", "--roi", "Cyl", "--plot", str(target)],
        capsys,
    )
    assert code == 0, err
    assert target.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dvh.png"]


def test_roi_between_the_two_files_takes_one_value(
    case: tuple[Path, Path, dict[str, np.ndarray]], capsys: pytest.CaptureFixture[str]
) -> None:
    rtstruct, dose_path, _ = case
    code, between, err = _run([str(rtstruct), "--roi", "Sphere", str(dose_path), "--json"], capsys)
    assert code == 0, err
    code, after, _ = _run([str(rtstruct), str(dose_path), "--json", "--roi", "Sphere"], capsys)
    assert code == 0
    assert [roi["name"] for roi in json.loads(between)["rois"]] == ["Sphere"]
    assert json.loads(between) == json.loads(after)
    with pytest.raises(SystemExit) as exit_info:
        main(["dvh", str(rtstruct), str(dose_path), "extra.dcm"])
    assert exit_info.value.code == 2
    assert "unrecognized arguments: extra.dcm" in capsys.readouterr().err
