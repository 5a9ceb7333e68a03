"""The curve and the statistics of a DVH describe one distribution; undefined D-values.

The breast plan (../shared/data/dicompyler-breast) showed both defects of issue 15: the
Heart's curve reached past its maximum (0.186 cm3 at or above max_gy = 3.087 Gy, the
curve ending at 3.21 Gy) and the Lt Lung's stopped short of it (12.80 against 12.87 Gy).
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np
import pytest

from conftest import SHARED_DATA, run_cli
from rtmask.dose import read_dose
from rtmask.dvh import DVH, compute_dvh, write_dvhs_csv
from rtmask.dvh._histogram import bounded_curve
from rtmask.errors import DoseWarning
from rtmask.rtstruct import read_rtstruct
from rtmask.synthetic import write_demo_case

BREAST = SHARED_DATA / "dicompyler-breast"
needs_breast = pytest.mark.skipif(
    not (BREAST / "rtdose.dcm").is_file(), reason="../shared/data/dicompyler-breast absent"
)


@pytest.fixture(scope="module")
def breast_dvhs() -> dict[str, DVH]:
    """Every breast ROI's DVH but BODY (which reaches beyond the dose grid)."""
    structure_set = read_rtstruct(BREAST / "rtss.dcm", on_invalid="ignore")
    dose = read_dose(BREAST / "rtdose.dcm")
    return {
        roi.name: compute_dvh(roi, dose, on_invalid="ignore")
        for roi in structure_set.rois
        if roi.encloses_volume and roi.name != "BODY"
    }


def _check_one_distribution(dvh: DVH) -> None:
    total = dvh.total_cm3
    # The whole volume at the minimum, none above the maximum, the curve reaching it.
    assert dvh.volume_at_dose(dvh.min_gy) == pytest.approx(total, rel=1e-12)
    assert dvh.volume_at_dose(dvh.max_gy) == 0.0
    assert dvh.volume_at_dose(np.nextafter(dvh.max_gy, 0.0)) > 0.0
    assert dvh.dose_gy[-1] == pytest.approx(dvh.max_gy, abs=1e-12)
    # D-values from the curve: Dx falls as x rises, from Dmax to Dmin, continuously.
    percents = np.concatenate([[0.0, 1e-6, 1e-3], np.linspace(0.01, 99.99, 400), [100.0]])
    doses = np.array([dvh.dose_at_percent(p) for p in percents])
    assert np.all(np.diff(doses) <= 1e-12)
    assert doses[0] == dvh.max_gy
    assert doses[-1] == dvh.min_gy
    # No jump at D0: as the volume shrinks to 0, the dose rises to Dmax.
    tiny = 1e-6 * float(dvh.volume_cm3[dvh.volume_cm3 > 0].min())
    assert dvh.dose_at_volume(tiny) == pytest.approx(dvh.max_gy, abs=1e-3)
    assert np.all((doses >= dvh.min_gy) & (doses <= dvh.max_gy))


@needs_breast
@pytest.mark.parametrize("name", ["Heart", "Lt Lung", "Breast", "Tumor Bed", "Scar", "Nodes"])
def test_breast_curve_and_statistics_agree(breast_dvhs: dict[str, DVH], name: str) -> None:
    _check_one_distribution(breast_dvhs[name])


@needs_breast
def test_breast_heart_and_lung_as_reported(breast_dvhs: dict[str, DVH]) -> None:
    heart, lung = breast_dvhs["Heart"], breast_dvhs["Lt Lung"]
    assert heart.max_gy == pytest.approx(3.087, abs=0.001)
    assert heart.volume_at_dose(3.1) == 0.0  # was 0.186 cm3 at or above max_gy
    assert lung.max_gy == pytest.approx(12.87, abs=0.01)
    assert lung.volume_at_dose(12.81) > 0.0  # the curve ended at 12.80 Gy


def test_bounded_curve_moves_the_tails_inside() -> None:
    # Spread put volume below the minimum (1.5 Gy) and beyond the maximum (2.5 Gy).
    edges = np.arange(6, dtype=np.float64)
    volume = np.array([10.0, 9.0, 6.0, 2.0, 1.0, 0.0])
    new_edges, new_volume = bounded_curve(edges, volume, 1.5, 2.5)
    assert new_edges.tolist() == [0.0, 1.0, 1.5, 2.0, 2.5]
    assert new_volume.tolist() == [10.0, 10.0, 10.0, 6.0, 0.0]
    # A curve stopping short of the maximum falls linearly to it.
    new_edges, new_volume = bounded_curve(edges, volume, 0.0, 4.5)
    assert new_edges.tolist() == [0.0, 1.0, 2.0, 3.0, 4.0, 4.5]
    assert new_volume.tolist() == [10.0, 9.0, 6.0, 2.0, 1.0, 0.0]
    # A single dose: everything at it, nothing above.
    new_edges, new_volume = bounded_curve(edges, volume, 2.0, 2.0)
    assert new_edges[:3].tolist() == [0.0, 1.0, 2.0]
    assert new_edges[3] > 2.0
    assert new_volume.tolist() == [10.0, 10.0, 10.0, 0.0]


def _small_dvh() -> DVH:
    """0.5 cm3 receiving 1-3 Gy uniformly."""
    return DVH(
        dose_gy=np.array([0.0, 1.0, 3.0]),
        volume_cm3=np.array([0.5, 0.5, 0.0]),
        min_gy=1.0,
        max_gy=3.0,
        mean_gy=2.0,
        roi_number=7,
        roi_name="Small",
    )


def test_d_value_beyond_the_volume_is_undefined(tmp_path: Path) -> None:
    dvh = _small_dvh()
    with pytest.warns(DoseWarning, match=r"ROI 7 'Small': no dose to 2 cm3, more than its 0\.5"):
        assert math.isnan(dvh.statistic("D2cc"))
    assert dvh.statistic("D0.5cc") == 1.0  # the whole volume: Dmin
    assert dvh.statistic("D0.25cc") == pytest.approx(2.0)
    with pytest.warns(DoseWarning):
        entry = dvh.to_dict(["D2cc", "D0.25cc"])
    assert entry["stats"] == {"D2cc": None, "D0.25cc": pytest.approx(2.0)}
    assert json.loads(json.dumps(entry))["stats"]["D2cc"] is None
    with pytest.warns(DoseWarning):
        write_dvhs_csv([dvh], tmp_path / "dvh.csv", stats=["D2cc"])
    rows = list(csv.DictReader((tmp_path / "dvh.csv").read_text(encoding="utf-8").splitlines()))
    assert rows[0]["D2cc_gy"] == "-"
    with pytest.warns(DoseWarning):
        table = dvh.compare(dvh, stats=["D2cc"])
    assert table.splitlines()[-1].split() == ["D2cc", "(Gy)", "-", "-", "-", "-"]


def test_describe_shows_an_undefined_d_value_as_a_dash() -> None:
    dvh = DVH(
        dose_gy=np.array([0.0, 1.0, 3.0]),
        volume_cm3=np.array([0.02, 0.02, 0.0]),
        min_gy=1.0,
        max_gy=3.0,
        mean_gy=2.0,
        roi_number=1,
        roi_name="Tiny",
    )
    with pytest.warns(DoseWarning):
        text = dvh.describe()
    assert text.splitlines()[-1].split() == ["D0.03cc", "-", "Gy"]


@needs_breast
def test_cli_undefined_d_value_is_a_warning_line_and_null(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    rs, rd = str(BREAST / "rtss.dcm"), str(BREAST / "rtdose.dcm")
    csv_path = tmp_path / "scar.csv"
    code, out, err = run_cli(
        capsys, "dvh", rs, rd, "--roi", "Scar", "--stats", "D2cc,D50", "--json", "--csv",
        str(csv_path),
    )  # fmt: skip
    assert code == 0, err
    entry = json.loads(out)["rois"][0]
    assert entry["name"] == "Scar"
    assert entry["volume_cm3"] < 2
    assert entry["stats"]["D2cc"] is None
    assert entry["stats"]["D50"] > 0
    assert "D2cc is undefined, the ROI has only 0.51" in err
    assert "DoseWarning" not in err
    assert "warnings.warn" not in err
    rows = list(csv.DictReader(csv_path.read_text(encoding="utf-8").splitlines()))
    assert rows[0]["D2cc_gy"] == "-"
    code, out, err = run_cli(capsys, "dvh", rs, rd, "--roi", "Scar", "--stats", "D2cc")
    assert code == 0
    assert "Scar" in out
    assert " - " in out.split("Scar", 1)[1].splitlines()[0] + " "


def test_cli_undefined_d_value_on_the_demo_case(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """Every ROI is smaller than 100 000 cm3: '-' in the table and the CSV, null in JSON."""
    case = write_demo_case(tmp_path / "demo")
    rs, rd = str(case.rtstruct), str(case.rtdose)
    target = tmp_path / "dvh.csv"
    code, out, err = run_cli(
        capsys, "dvh", rs, rd, "--stats", "D100000cc", "--json", "--csv", str(target)
    )
    assert code == 0, err
    rois = json.loads(out)["rois"]
    assert rois
    assert all(entry["stats"]["D100000cc"] is None for entry in rois)
    assert err.count("D100000cc is undefined, the ROI has only") == len(rois)
    rows = list(csv.DictReader(target.read_text(encoding="utf-8").splitlines()))
    assert {row["D100000cc_gy"] for row in rows} == {"-"}
    code, out, _ = run_cli(capsys, "dvh", rs, rd, "--stats", "D100000cc", "--roi", "1")
    assert code == 0
    assert out.rstrip().splitlines()[-2].rstrip(" │|").endswith("-")
