"""The DVH object: construction from histograms and samples, unit-aware views, statistics.

Expected values are closed forms (a uniform dose; a linear dose across a box, whose
cumulative DVH falls linearly from the total at Dmin to 0 at Dmax) or numpy's own
histogram of the same samples, never the code's own output.
"""

from __future__ import annotations

import math
import pickle
from pathlib import Path

import numpy as np
import pytest

from rtmask._errors import InvalidInputError
from rtmask.dvh import (
    DVH,
    DVHCurve,
    StatisticValue,
    compare_dvhs,
    dvh_from_counts,
    plot_curves,
    write_dvhs_csv,
)
from rtmask.dvh._report import stat_unit

WIDTH = 0.1  # Gy


def _box(n: int = 40_000) -> tuple[np.ndarray, np.ndarray]:
    """Dose samples of a 2 x 3 x 4 cm box in D = 10 Gy + 1 Gy/mm x (x along its 20 mm).

    ``n`` voxels along x (1 mm3 each before scaling), doses at the voxel centres.
    """
    x = (np.arange(n) + 0.5) * (20.0 / n)
    doses = 10.0 + x
    weights = np.full(n, 24.0 / n)  # 24 cm3 in all
    return doses, weights


def _linear_box() -> DVH:
    doses, weights = _box()
    return DVH.from_data(doses, weights, bin_width_gy=WIDTH, roi_number=3, roi_name="Box")


def _small(prescription: float | None = 20.0) -> DVH:
    return DVH(
        dose_gy=np.array([0.0, 10.0, 20.0, 30.0]),
        volume_cm3=np.array([10.0, 10.0, 5.0, 0.0]),
        min_gy=10.0,
        max_gy=30.0,
        mean_gy=20.0,
        roi_number=7,
        roi_name="PTV",
        prescription_gy=prescription,
    )


# ------------------------------------------------------------------ construction
def test_from_data_of_a_linear_dose_on_a_box_is_the_closed_form() -> None:
    dvh = _linear_box()
    assert dvh.total_cm3 == pytest.approx(24.0)
    assert dvh.min_gy == pytest.approx(10.0, abs=1e-3)
    assert dvh.max_gy == pytest.approx(30.0, abs=1e-3)
    assert dvh.mean_gy == pytest.approx(20.0, abs=1e-6)
    # V(d) = 24 cm3 x (30 - d) / 20 between 10 and 30 Gy
    for dose in (10.0, 12.5, 20.0, 27.3):
        assert dvh.volume_at_dose(dose) == pytest.approx(24.0 * (30 - dose) / 20, abs=0.02)
        assert dvh.statistic(f"V{dose:g}Gy%") == pytest.approx(100 * (30 - dose) / 20, abs=0.1)
    # D_x = 30 - 20 x / 100; D2cc = 30 - 20 x 2 / 24
    assert dvh.statistic("D95") == pytest.approx(11.0, abs=0.01)
    assert dvh.statistic("D50") == pytest.approx(20.0, abs=0.01)
    assert dvh.statistic("D2cc") == pytest.approx(30 - 40 / 24, abs=0.01)


def test_from_data_agrees_with_numpy_histograms() -> None:
    rng = np.random.default_rng(5)
    doses = rng.gamma(4.0, 5.0, 5000)
    weights = rng.uniform(0.001, 0.01, 5000)
    dvh = DVH.from_data(doses, weights, bin_width_gy=0.5)
    per_bin, _ = np.histogram(doses, bins=dvh.dose_gy, weights=weights)
    np.testing.assert_allclose(dvh.differential().volume, per_bin, atol=1e-12)
    above = np.array([weights[doses >= edge].sum() for edge in dvh.dose_gy])
    np.testing.assert_allclose(dvh.volume_cm3, above, atol=1e-12)
    assert dvh.mean_gy == pytest.approx(np.average(doses, weights=weights))
    assert (dvh.min_gy, dvh.max_gy) == (doses.min(), doses.max())


def test_from_data_defaults_to_cubic_millimetres_and_refuses_bad_samples() -> None:
    dvh = DVH.from_data(np.full((10, 10, 10), 2.0))
    assert dvh.total_cm3 == pytest.approx(1.0)
    assert dvh.statistic("D95") == pytest.approx(2.0)
    with pytest.raises(InvalidInputError, match="one weight per dose"):
        DVH.from_data([1.0, 2.0], [1.0])
    with pytest.raises(InvalidInputError, match="finite"):
        DVH.from_data([1.0, np.nan])
    with pytest.raises(InvalidInputError, match="no volume"):
        DVH.from_data([1.0, 2.0], [0.0, 0.0])


def test_from_counts_in_dicompyler_form_gives_the_same_dvh() -> None:
    # dicompyler-core: counts per bin (cumulative), bins one longer
    dvh = DVH.from_counts([10.0, 10.0, 5.0], [0.0, 10.0, 20.0, 30.0], roi_name="PTV")
    reference = _small(prescription=None)
    np.testing.assert_array_equal(dvh.dose_gy, reference.dose_gy)
    np.testing.assert_array_equal(dvh.volume_cm3, reference.volume_cm3)
    assert (dvh.min_gy, dvh.mean_gy, dvh.max_gy) == (10.0, 20.0, 30.0)


def test_from_counts_differential_and_percent_units() -> None:
    differential = DVH.from_counts([0.0, 5.0, 5.0], [0.0, 10.0, 20.0, 30.0], kind="differential")
    relative = dvh_from_counts(
        [100.0, 100.0, 50.0, 0.0],
        [0.0, 50.0, 100.0, 150.0],
        dose_units="%",
        volume_units="%",
        prescription_gy=20.0,
        total_cm3=10.0,
    )
    reference = _small()
    for dvh in (differential, relative):
        np.testing.assert_allclose(dvh.dose_gy, reference.dose_gy)
        np.testing.assert_allclose(dvh.volume_cm3, reference.volume_cm3)
        assert dvh.mean_gy == pytest.approx(20.0)
    assert relative.prescription_gy == 20.0
    # a first edge above 0: the curve starts at 0 Gy with the whole volume
    shifted = DVH.from_counts([0.0, 4.0], [5.0, 6.0, 7.0], kind="differential")
    assert shifted.dose_gy[0] == 0.0
    assert shifted.volume_at_dose(5.0) == pytest.approx(4.0)
    assert (shifted.min_gy, shifted.max_gy) == (6.0, 7.0)
    shifted = DVH.from_counts([4.0, 4.0, 0.0], [5.0, 6.0, 7.0])  # cumulative: 4 cm3 to 6 Gy
    np.testing.assert_array_equal(shifted.dose_gy, [0.0, 5.0, 6.0, 7.0])
    np.testing.assert_array_equal(shifted.volume_cm3, [4.0, 4.0, 4.0, 0.0])
    assert (shifted.min_gy, shifted.max_gy, shifted.mean_gy) == (6.0, 7.0, 6.5)
    with pytest.raises(InvalidInputError, match="total_cm3"):
        DVH.from_counts([100.0, 0.0], [0.0, 1.0], volume_units="%")
    with pytest.raises(InvalidInputError, match="rx_gy"):
        DVH.from_counts([1.0, 0.0], [0.0, 100.0], dose_units="%")


def test_from_counts_of_nothing_and_of_a_curve_open_at_the_top() -> None:
    empty = DVH.from_counts([0.0, 0.0], [0.0, 1.0])
    assert (empty.total_cm3, empty.min_gy, empty.max_gy, empty.mean_gy) == (0.0, 0.0, 0.0, 0.0)
    open_top = DVH.from_counts([3.0, 3.0], [0.0, 1.0], kind="cumulative")  # 3 cm3 at >= 1 Gy
    assert open_top.dose_gy[-1] == 2.0
    assert open_top.volume_cm3[-1] == 0.0
    assert open_top.max_gy == 2.0


# ------------------------------------------------------------------ unit-aware views
def test_views_know_their_units_and_convert_back() -> None:
    dvh = _small()
    relative = dvh.relative_volume()
    assert (relative.volume_units, relative.dose_units, relative.kind) == ("%", "Gy", "cumulative")
    np.testing.assert_allclose(relative.volume, [100, 100, 50, 0])
    assert relative.absolute_volume().equals(dvh.cumulative())
    assert relative.absolute_volume(20.0).volume[0] == pytest.approx(20.0)
    percent_dose = dvh.relative_dose()
    np.testing.assert_allclose(percent_dose.dose_edges, [0, 50, 100, 150])
    assert dvh.relative_dose(40.0).absolute_dose().equals(dvh.cumulative())
    np.testing.assert_allclose(dvh.relative_dose(40.0).dose_edges, [0, 25, 50, 75])
    assert dvh.absolute_dose().equals(dvh.cumulative())
    np.testing.assert_allclose(dvh.absolute_volume(20.0).volume, [20, 20, 10, 0])
    assert dvh.absolute_volume().equals(dvh.cumulative())
    differential = dvh.differential()
    assert differential.kind == "differential"
    np.testing.assert_allclose(differential.volume, [0, 5, 5])
    np.testing.assert_allclose(differential.dose_centres, [5, 15, 25])
    assert differential.cumulative().equals(dvh.cumulative())
    assert differential.differential() is differential
    assert relative.relative_volume() is relative
    assert percent_dose.relative_dose() is percent_dose
    # relative volume of a differential curve: of its own total
    np.testing.assert_allclose(differential.relative_volume().volume, [0, 50, 50])
    assert "cumulative" in repr(relative)
    assert "%" in repr(relative)


def test_round_trips_through_every_view_rebuild_the_dvh() -> None:
    dvh = _linear_box()
    curve = dvh.relative_dose(25.0).relative_volume().differential()
    rebuilt = curve.to_dvh()
    np.testing.assert_allclose(rebuilt.dose_gy, dvh.dose_gy, atol=1e-12)
    np.testing.assert_allclose(rebuilt.volume_cm3, dvh.volume_cm3, atol=1e-9)
    assert rebuilt.prescription_gy == 25.0
    assert rebuilt.mean_gy == pytest.approx(dvh.mean_gy, abs=WIDTH / 2)


def test_views_without_a_prescription_or_volume_are_refused() -> None:
    dvh = _small(prescription=None)
    with pytest.raises(InvalidInputError, match="prescription"):
        dvh.relative_dose()
    curve = DVHCurve(dose_edges=[0.0, 1.0], volume=[100.0, 0.0], volume_units="%")
    with pytest.raises(InvalidInputError, match="total_cm3"):
        curve.absolute_volume()
    with pytest.raises(InvalidInputError, match="rx_gy"):
        DVHCurve(dose_edges=[0.0, 1.0], volume=[1.0, 0.0], dose_units="%").absolute_dose()


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"dose_edges": [0.0, 1.0], "volume": [1.0]}, "need 2 cumulative volumes"),
        ({"dose_edges": [1.0, 0.0], "volume": [1.0, 0.0]}, "must increase"),
        ({"dose_edges": [0.0, 1.0], "volume": [1.0, np.inf]}, "finite"),
        ({"dose_edges": [0.0, 1.0], "volume": [1.0, 0.0], "total_cm3": -1.0}, "total_cm3"),
    ],
)
def test_invalid_curves_are_refused(fields: dict[str, object], message: str) -> None:
    with pytest.raises(InvalidInputError, match=message):
        DVHCurve(**fields)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "fields",
    [{"kind": "natural"}, {"dose_units": "cGy"}, {"volume_units": "cc"}],
)
def test_unknown_kinds_and_units_are_refused(fields: dict[str, str]) -> None:
    with pytest.raises(ValueError, match="must be"):
        DVHCurve(dose_edges=[0.0, 1.0], volume=[1.0, 0.0], **fields)  # type: ignore[arg-type]


def test_equals_compares_curves_within_a_tolerance() -> None:
    dvh = _small()
    near = DVH.from_counts(
        [10.0, 10.0, 5.0 + 1e-7, 0.0], [0.0, 10.0, 20.0, 30.0], prescription_gy=20.0, roi_number=7
    )
    near = DVH(**{**_fields(near), "roi_name": "PTV", "min_gy": 10.0, "max_gy": 30.0})
    assert dvh.equals(near, atol=1e-6)
    assert not dvh.equals(near, atol=1e-9)
    assert not dvh.equals(_small(prescription=None))
    assert not dvh.equals("PTV")
    assert not dvh.cumulative().equals(dvh.relative_volume())
    assert not dvh.cumulative().equals(dvh)


def _fields(dvh: DVH) -> dict[str, object]:
    names = ("dose_gy", "volume_cm3", "min_gy", "max_gy", "mean_gy", "roi_number", "roi_name")
    return {name: getattr(dvh, name) for name in (*names, "prescription_gy")}


# ------------------------------------------------------------------ statistics
def test_statistics_in_both_volume_forms() -> None:
    dvh = _small()
    assert dvh.statistic("V25Gy") == pytest.approx(2.5)
    assert dvh.statistic("V25Gy%") == pytest.approx(25.0)
    assert dvh.statistic("V25Gycc") == pytest.approx(2.5)
    assert dvh.statistic("V25Gy", volume_units="%") == pytest.approx(25.0)
    assert dvh.statistic("V25Gy%", volume_units="cm3") == pytest.approx(2.5)
    assert dvh.statistic("V125%") == pytest.approx(2.5)  # cm3 at >= 125 % of 20 Gy
    assert dvh.statistic("V125%%") == pytest.approx(25.0)  # ... in % of the volume
    assert dvh.statistic("V125%cc") == pytest.approx(2.5)
    assert dvh.statistic("D50", dose_units="%") == pytest.approx(100.0)
    assert dvh.statistic("Dmax", dose_units="%") == pytest.approx(150.0)
    assert dvh.statistic("D2.5cc", dose_units="Gy") == pytest.approx(25.0)
    assert dvh.statistic("D75%") == pytest.approx(15.0)


@pytest.mark.parametrize("name", ["V95cc", "V20Gy%%", "D95%%", "Dcc"])
def test_malformed_unit_suffixes_are_refused(name: str) -> None:
    with pytest.raises(ValueError, match="accepted forms"):
        _small().statistic(name)


def test_unknown_units_of_statistics_are_refused() -> None:
    with pytest.raises(ValueError, match="volume_units"):
        _small().statistic("V20Gy", volume_units="ml")
    with pytest.raises(ValueError, match="dose_units"):
        _small().statistic("D95", dose_units="cGy")
    with pytest.raises(InvalidInputError, match="prescription"):
        _small(prescription=None).statistic("D95", dose_units="%")


def test_attribute_access_gives_values_with_units() -> None:
    dvh = _small()
    d2cc = dvh.D2cc
    assert isinstance(d2cc, StatisticValue)
    assert (float(d2cc), d2cc.unit, d2cc.name) == (pytest.approx(26.0), "Gy", "D2cc")
    assert str(dvh.V25Gy) == "2.500 cm3"
    assert f"{dvh.D50:.1f}" == "20.0 Gy"
    assert float(dvh.D2_5cc) == pytest.approx(25.0)
    assert float(dvh.Dmean) == 20.0
    assert float(dvh.V125) == pytest.approx(2.5)
    assert dvh.statistic_value("V25Gy%") == StatisticValue(25.0, "%", "V25Gy%")
    assert math.isclose(float(dvh.statistic_value("D95", dose_units="%")), 55.0)  # 11 Gy
    with pytest.raises(AttributeError, match="no attribute 'volume'"):
        _ = dvh.volume  # type: ignore[attr-defined]
    assert not hasattr(dvh, "D2xx")
    with pytest.raises(InvalidInputError, match="prescription"):
        _ = _small(prescription=None).V95


def test_values_compare_and_compute_as_numbers() -> None:
    """A statistic is a number with a unit: comparisons, arithmetic, numpy, pickling."""
    dvh = _small()
    v25 = dvh.V25Gy  # 2.5 cm3 by the construction of _small
    assert v25 > 2.4
    assert v25 < 2.6
    assert v25 == pytest.approx(2.5)
    assert round(v25, 1) == 2.5
    assert isinstance(round(v25, 1), float)
    assert v25 * 2 == pytest.approx(5.0)
    assert type(v25 * 2) is float
    assert bool(np.isclose(v25, 2.5))
    assert (v25.value, v25.unit, v25.units) == (pytest.approx(2.5), "cm3", "cm3")
    back = pickle.loads(pickle.dumps(v25))
    assert (float(back), back.unit, back.name) == (float(v25), "cm3", "V25Gy")
    assert repr(back) == f"StatisticValue({float(v25)!r}, 'cm3', 'V25Gy')"


def test_statistic_units_name_the_columns(tmp_path: Path) -> None:
    assert [stat_unit(n) for n in ("D95", "V20Gy", "V20Gy%", "V95%%", "Dbad")] == [
        "Gy",
        "cm3",
        "%",
        "%",
        "Gy",
    ]
    target = tmp_path / "dvh.csv"
    write_dvhs_csv([_small()], target, stats=("D50", "V25Gy", "V25Gy%"))
    header, row = target.read_text(encoding="utf-8").splitlines()
    assert header.endswith("D50_gy,V25Gy_cm3,V25Gy%_percent")
    assert row.endswith("20.0,2.5,25.0")


def test_compare_gives_differences_per_statistic_in_either_volume_form() -> None:
    a = _small()
    b = DVH.from_counts([10.0, 10.0, 8.0], [0.0, 10.0, 20.0, 30.0], prescription_gy=20.0)
    values = compare_dvhs(a, b, stats=("V25Gy", "V25Gy%"))
    assert values["V25Gy"]["difference"] == pytest.approx(4.0 - 2.5)
    assert values["V25Gy%"]["difference"] == pytest.approx(15.0)
    assert values["V25Gy%"]["percent"] == pytest.approx(60.0)
    assert "V25Gy% (%)" in a.compare(b, stats=("V25Gy%",))


# ------------------------------------------------------------------ plots
def test_plot_without_a_file_shows_a_window(monkeypatch: pytest.MonkeyPatch) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    shown: list[int] = []
    monkeypatch.setattr(plt, "show", lambda: shown.append(len(plt.get_fignums())))
    _small().plot()
    _small().plot(relative_volume=False)
    _small().differential().plot()
    assert shown == [1, 1, 1]  # one figure each, closed after showing
    assert plt.get_fignums() == []


def test_curves_are_written_with_their_units(tmp_path: Path) -> None:
    target = tmp_path / "curves.png"
    dvh = _small()
    plot_curves([dvh.relative_dose().differential()], target, title="PTV")
    assert target.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    white = DVHCurve(dose_edges=[0.0, 1.0], volume=[1.0, 0.0], color=(255, 255, 255))
    other = tmp_path / "white.png"
    white.plot(other)
    assert other.stat().st_size > 0
    with pytest.raises(InvalidInputError, match="different units"):
        plot_curves([dvh.cumulative(), dvh.relative_volume()], target)
    with pytest.raises(InvalidInputError, match="no DVH curve"):
        plot_curves([], target)


def test_a_cumulative_curve_that_rises_is_refused() -> None:
    """Counts that grow with dose are no cumulative curve (per-bin volumes, say so)."""
    with pytest.raises(InvalidInputError, match=r"from 0 to 10 at edge 1 \(1 Gy\).*differential"):
        DVH.from_counts([0, 10, 20, 30, 0, 5], np.arange(7))
    # The same numbers as per-bin volumes are a valid differential DVH of 65 cm3.
    dvh = DVH.from_counts([0, 10, 20, 30, 0, 5], np.arange(7), kind="differential")
    assert dvh.total_cm3 == pytest.approx(65.0)
    assert dvh.max_gy == pytest.approx(6.0)
