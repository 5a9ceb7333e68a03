"""DVH reports: describe, compare, CSV/JSON/PNG files, homogeneity and conformity indices.

Every DVH is built from samples whose curve is known by hand: one sample of weight W cm3
spread uniformly over ``[lo, hi]`` Gy gives ``V(d) = W (hi - d) / (hi - lo)`` inside the
range, so ``D<x>`` (x % of the volume) is ``hi - x / 100 (hi - lo)``.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from rtmask._errors import InvalidInputError
from rtmask.dvh import (
    DVH,
    compare_dvhs,
    conformity_index,
    cumulative_curve,
    describe_dvh,
    homogeneity_index,
    plot_dvhs,
    write_dvhs_csv,
    write_dvhs_json,
)

PNG = b"\x89PNG\r\n\x1a\n"


def _uniform(
    low: float,
    high: float,
    volume: float,
    *,
    number: int = 1,
    name: str = "PTV",
    prescription: float | None = None,
    color: tuple[int, int, int] | None = None,
) -> DVH:
    """Volume ``volume`` cm3 with its dose spread uniformly over ``[low, high]`` Gy."""
    dose, curve = cumulative_curve(
        [(low + high) / 2], [volume], spreads_gy=[high - low], bin_width_gy=0.01
    )
    return DVH(
        dose_gy=dose,
        volume_cm3=curve,
        min_gy=low,
        max_gy=high,
        mean_gy=(low + high) / 2,
        roi_number=number,
        roi_name=name,
        prescription_gy=prescription,
        color=color,
    )


def _points(doses: list[float], weights: list[float], *, name: str = "Body") -> DVH:
    dose, curve = cumulative_curve(doses, weights, bin_width_gy=0.01)
    mean = float(np.average(doses, weights=weights))
    return DVH(
        dose_gy=dose,
        volume_cm3=curve,
        min_gy=min(doses),
        max_gy=max(doses),
        mean_gy=mean,
        roi_number=9,
        roi_name=name,
    )


def test_hand_built_curve_has_the_expected_d_values() -> None:
    dvh = _uniform(40.0, 60.0, 20.0)
    assert dvh.total_cm3 == pytest.approx(20.0)
    for name, expected in (("D98", 40.4), ("D95", 41.0), ("D50", 50.0), ("D2", 59.6)):
        assert dvh.statistic(name) == pytest.approx(expected, abs=1e-6)
    assert dvh.statistic("D0.03cc") == pytest.approx(60.0 - 0.03, abs=1e-6)


def test_describe_contains_the_numbers() -> None:
    text = _uniform(40.0, 60.0, 20.0, number=3, name="PTV").describe()
    assert text == describe_dvh(_uniform(40.0, 60.0, 20.0, number=3, name="PTV"))
    assert text.splitlines()[0] == "DVH of ROI 3 'PTV'"
    for label, value in (
        ("volume", "20.000 cm3"),
        ("min", "40.000 Gy"),
        ("mean", "50.000 Gy"),
        ("max", "60.000 Gy"),
        ("D98", "40.400 Gy"),
        ("D95", "41.000 Gy"),
        ("D50", "50.000 Gy"),
        ("D2", "59.600 Gy"),
        ("D0.03cc", "59.970 Gy"),
    ):
        assert any(line.split()[:1] == [label] and value in line for line in text.splitlines())
    assert "V95%" not in text  # no prescription, no V-values


def test_describe_lists_prescription_v_values() -> None:
    # 0-10 Gy over 10 cm3: V(d) = 10 - d cm3. Prescription 8 Gy:
    # V95% = V(7.6) = 2.4 cm3 (24 %), V100% = V(8) = 2 cm3, V107% = V(8.56) = 1.44 cm3.
    text = _uniform(0.0, 10.0, 10.0, prescription=8.0).describe()
    assert "(prescription 8.000 Gy)" in text.splitlines()[0]
    lines = {line.split()[0]: line for line in text.splitlines()[1:]}
    assert "2.400 cm3 (24.00 % of volume)" in lines["V95%"]
    assert "2.000 cm3 (20.00 % of volume)" in lines["V100%"]
    assert "1.440 cm3 (14.40 % of volume)" in lines["V107%"]


def test_compare_gives_absolute_and_percent_differences() -> None:
    a = _uniform(40.0, 60.0, 20.0, number=1, name="plan A")
    b = _uniform(42.0, 62.0, 20.0, number=2, name="plan B")
    values = compare_dvhs(a, b, stats=("D98", "D50", "V50Gy"))
    assert list(values) == ["volume_cm3", "min_gy", "mean_gy", "max_gy", "D98", "D50", "V50Gy"]
    assert values["volume_cm3"]["difference"] == pytest.approx(0.0, abs=1e-9)
    assert values["volume_cm3"]["percent"] == pytest.approx(0.0, abs=1e-9)
    assert values["min_gy"] == {"a": 40.0, "b": 42.0, "difference": 2.0, "percent": 5.0}
    assert values["mean_gy"]["percent"] == pytest.approx(4.0)
    assert values["D98"]["a"] == pytest.approx(40.4)
    assert values["D98"]["b"] == pytest.approx(42.4)
    assert values["D98"]["difference"] == pytest.approx(2.0)
    assert values["D98"]["percent"] == pytest.approx(200 / 40.4)
    # V50Gy: 10 cm3 of A (60 - 50 of 20 Gy), 12 cm3 of B: +2 cm3, +20 %.
    assert values["V50Gy"]["a"] == pytest.approx(10.0)
    assert values["V50Gy"]["difference"] == pytest.approx(2.0)
    assert values["V50Gy"]["percent"] == pytest.approx(20.0)

    text = a.compare(b, stats=("D98", "D50", "V50Gy"))
    lines = text.splitlines()
    assert "1 plan A" in lines[0]
    assert "2 plan B" in lines[0]
    rows = {line.split("  ")[0].strip(): line.split() for line in lines[1:]}
    assert rows["mean (Gy)"][-5:] == ["50.000", "52.000", "+2.000", "+4.00", "%"]
    assert rows["D98 (Gy)"][-5:] == ["40.400", "42.400", "+2.000", "+4.95", "%"]
    assert rows["V50Gy (cm3)"][-5:] == ["10.000", "12.000", "+2.000", "+20.00", "%"]


def test_compare_with_zero_reference_has_no_percent() -> None:
    a = _uniform(0.0, 10.0, 10.0)
    b = _uniform(1.0, 11.0, 10.0)
    values = compare_dvhs(a, b, stats=())
    assert values["min_gy"]["percent"] is None
    assert values["min_gy"]["difference"] == pytest.approx(1.0)
    min_row = next(line for line in a.compare(b, stats=()).splitlines() if "min" in line)
    assert min_row.split()[-1] == "-"


def test_csv_has_one_row_per_dvh_with_the_statistics(tmp_path: Path) -> None:
    dvhs = [
        _uniform(40.0, 60.0, 20.0, number=1, name="PTV, boost"),
        _uniform(0.0, 10.0, 10.0, number=2, name="Lung"),
    ]
    target = tmp_path / "dvh.csv"
    write_dvhs_csv(dvhs, target, stats=("D95", "V5Gy"))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dvh.csv"]
    with target.open(newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == [
        "number",
        "name",
        "volume_cm3",
        "min_gy",
        "mean_gy",
        "max_gy",
        "D95_gy",
        "V5Gy_cm3",
    ]
    assert [row["name"] for row in rows] == ["PTV, boost", "Lung"]
    assert [int(row["number"]) for row in rows] == [1, 2]
    assert float(rows[0]["D95_gy"]) == pytest.approx(41.0)
    assert float(rows[0]["V5Gy_cm3"]) == pytest.approx(20.0)
    assert float(rows[1]["D95_gy"]) == pytest.approx(0.5)
    assert float(rows[1]["V5Gy_cm3"]) == pytest.approx(5.0)
    assert float(rows[1]["mean_gy"]) == 5.0


def test_json_round_trip_rebuilds_the_dvh(tmp_path: Path) -> None:
    original = _uniform(40.0, 60.0, 20.0, number=4, name="CTV", color=(255, 0, 0))
    target = tmp_path / "dvh.json"
    write_dvhs_json([original], target, stats=("D98", "D2cc"))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dvh.json"]
    document = json.loads(target.read_text(encoding="utf-8"))
    assert list(document) == ["rois"]
    (entry,) = document["rois"]
    assert entry == original.to_dict(("D98", "D2cc"))
    assert set(entry) == {"number", "name", "volume_cm3", "min_gy", "mean_gy", "max_gy"} | {
        "stats",
        "curve",
    }
    assert entry["stats"]["D98"] == pytest.approx(40.4)
    assert entry["stats"]["D2cc"] == pytest.approx(58.0)  # hottest 2 of 20 cm3 over 20 Gy
    rebuilt = DVH(
        dose_gy=np.array(entry["curve"]["dose_gy"]),
        volume_cm3=np.array(entry["curve"]["volume_cm3"]),
        min_gy=entry["min_gy"],
        max_gy=entry["max_gy"],
        mean_gy=entry["mean_gy"],
        roi_number=entry["number"],
        roi_name=entry["name"],
    )
    np.testing.assert_array_equal(rebuilt.dose_gy, original.dose_gy)
    np.testing.assert_array_equal(rebuilt.volume_cm3, original.volume_cm3)
    assert rebuilt.statistic("D95") == original.statistic("D95")


@pytest.mark.parametrize("relative", [True, False])
def test_plot_writes_a_png(tmp_path: Path, relative: bool) -> None:
    dvhs = [
        _uniform(40.0, 60.0, 20.0, number=1, name="PTV", color=(255, 0, 0)),
        _uniform(0.0, 10.0, 10.0, number=2, name="Lung", color=(255, 255, 255)),
        _uniform(0.0, 5.0, 3.0, number=3, name="Cord"),
    ]
    target = tmp_path / "dvh.png"
    plot_dvhs(dvhs, target, relative_volume=relative)
    assert target.read_bytes()[:8] == PNG
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dvh.png"]


def test_single_dvh_plot_method(tmp_path: Path) -> None:
    target = tmp_path / "one.png"
    _uniform(0.0, 10.0, 10.0).plot(target)
    assert target.read_bytes()[:8] == PNG


def test_plot_of_nothing_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match="no DVH to plot"):
        plot_dvhs([], tmp_path / "empty.png")
    assert list(tmp_path.iterdir()) == []


def test_homogeneity_index_of_a_uniform_dose_is_zero() -> None:
    dvh = _points([50.0, 50.0, 50.0], [1.0, 2.0, 3.0])
    assert homogeneity_index(dvh) == 0.0


def test_homogeneity_index_of_a_known_spread() -> None:
    # 40-60 Gy uniform: (D2 - D98) / D50 = (59.6 - 40.4) / 50.
    assert homogeneity_index(_uniform(40.0, 60.0, 20.0)) == pytest.approx(19.2 / 50.0)


def test_homogeneity_index_needs_a_positive_median() -> None:
    dvh = _points([0.0], [1.0])
    with pytest.raises(InvalidInputError, match="median"):
        homogeneity_index(dvh)


def test_conformity_index_known_case() -> None:
    # Target: 10 cm3 at 50 Gy. Body: the target, 3 cm3 of spill at 49.5 Gy and 5 cm3 at
    # 30 Gy. Prescription 49 Gy: 13 cm3 receive it, CI = 13 / 10.
    target = _points([50.0], [10.0], name="PTV")
    body = _points([50.0, 49.5, 30.0], [10.0, 3.0, 5.0])
    assert conformity_index(target, body, 49.0) == pytest.approx(1.3)
    assert conformity_index(target, target, 49.0) == pytest.approx(1.0)
    with pytest.raises(InvalidInputError, match="prescription_gy"):
        conformity_index(target, body, 0.0)
