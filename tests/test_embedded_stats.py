"""Embedded DVH summary values checked against their own curve (issue 15, defect 4)."""

from __future__ import annotations

import warnings

import numpy as np
import pydicom
import pytest

from conftest import SHARED_DATA
from rtmask.dvh import EmbeddedDVH, read_embedded_dvhs
from rtmask.errors import DoseWarning, InvalidInputError

BREAST = SHARED_DATA / "dicompyler-breast"


def _curve(**stats: float | None) -> EmbeddedDVH:
    """Edges 0..10 Gy by 1 Gy; 6 cm3 get 4 Gy or more, 3 cm3 6 Gy, 1 cm3 8 Gy, none 9 Gy.

    So the minimum lies in 4-5 Gy, the maximum in 8-9 Gy and the mean in
    (3 x 4 + 2 x 6 + 1 x 8) / 6 = 5.33 (bin bottoms) to 6.33 Gy (bin tops).
    """
    volume = [6, 6, 6, 6, 6, 3, 3, 1, 1, 0, 0]
    return EmbeddedDVH(
        roi_number=7,
        dvh_type="CUMULATIVE",
        dose_units="GY",
        dose_type="PHYSICAL",
        volume_units="CM3",
        dose_scaling=1.0,
        dose=np.arange(11.0),
        volume=np.array(volume, dtype=float),
        **stats,
    )


def test_values_inside_the_curve_fit() -> None:
    curve = _curve(min_dose=4.5, mean_dose=5.8, max_dose=8.7)
    assert curve.contradicting_stats() == ()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        dvh = curve.to_dvh(roi_name="PTV")
    assert dvh.max_gy == 8.7


@pytest.mark.parametrize(
    ("stats", "wrong"),
    [
        ({"max_dose": 12.0}, ("DVHMaximumDose",)),  # beyond 9 Gy + 2 % + one bin
        ({"max_dose": 6.5}, ("DVHMaximumDose",)),  # 3 cm3 got more than 6.5 Gy
        ({"min_dose": 1.0, "mean_dose": 9.0}, ("DVHMinimumDose", "DVHMeanDose")),
    ],
)
def test_values_outside_the_curve_are_named(
    stats: dict[str, float], wrong: tuple[str, ...]
) -> None:
    assert _curve(**stats).contradicting_stats() == wrong


def test_percent_of_the_prescription_is_found_and_warned_about() -> None:
    # 20 Gy prescription: min 4.5 Gy = 22.5 %, mean 5.8 Gy = 29 %, max 9 Gy = 45 %.
    curve = _curve(min_dose=22.5, mean_dose=29.0, max_dose=45.0)
    assert curve.contradicting_stats() == ("DVHMinimumDose", "DVHMeanDose", "DVHMaximumDose")
    assert curve.contradicting_stats(stats_dose_scale=0.2) == ()
    assert curve.stats_percent_of_gy() == 20.0
    with pytest.warns(DoseWarning, match=r"ROI 7 'PTV': DVHMinimumDose 22\.5 GY") as record:
        curve.to_dvh(roi_name="PTV")
    message = str(record[0].message)
    assert "the DVH's own curve, which ends at 8-9 Gy" in message
    assert message.endswith("they fit it as percent of 20 Gy (stats_dose_scale=0.2)")
    dvh = curve.to_dvh(stats_dose_scale=0.2)
    assert (dvh.min_gy, dvh.mean_gy, dvh.max_gy) == pytest.approx((4.5, 5.8, 9.0))
    # A curve in percent of 0.5 Gy: percent of 10 Gy fits, of 20 Gy (0.2) no longer does.
    assert curve.contradicting_stats(dose_scale=0.5, stats_dose_scale=0.1) == ()
    with pytest.warns(DoseWarning, match=r"DVHMaximumDose 45 GY \(9 Gy\)") as record:
        curve.to_dvh(dose_scale=0.5, stats_dose_scale=0.2)
    assert "percent of 10 Gy" in str(record[0].message)


def test_the_mean_alone_estimates_the_prescription() -> None:
    curve = _curve(mean_dose=29.1667)  # 5.833 Gy, the middle of 5.33-6.33 Gy, of 20 Gy
    assert curve.stats_percent_of_gy() == 20.0
    assert curve.contradicting_stats() == ("DVHMeanDose",)


def test_no_estimate_without_a_fitting_reading() -> None:
    assert _curve().stats_percent_of_gy() is None  # no summary values
    assert _curve(max_dose=0.0).stats_percent_of_gy() is None
    # No single scale makes max 45 (of 20 Gy) and mean 80 (of 7 Gy) fit together.
    with pytest.warns(DoseWarning) as record:
        _curve(max_dose=45.0, mean_dose=80.0).to_dvh()
    assert "percent of" not in str(record[0].message)
    empty = EmbeddedDVH(
        roi_number=None,
        dvh_type="CUMULATIVE",
        dose_units="GY",
        dose_type="PHYSICAL",
        volume_units="CM3",
        dose_scaling=1.0,
        dose=np.array([0.0, 1.0]),
        volume=np.array([0.0, 0.0]),
        max_dose=50.0,
    )
    assert empty.contradicting_stats() == ()
    assert empty.stats_percent_of_gy() is None


def test_stats_from_the_curve_replace_the_stored_ones_without_a_warning() -> None:
    curve = _curve(min_dose=22.5, mean_dose=29.0, max_dose=45.0)  # percent of 20 Gy
    # By hand from the docstring's curve: all 6 cm3 get 4 Gy (the last such edge), the
    # last volume lies in 8-9 Gy, drops of 3, 2 and 1 cm3 at bin centres 4.5, 6.5, 8.5 Gy.
    mean = (3 * 4.5 + 2 * 6.5 + 1 * 8.5) / 6
    assert curve.curve_stats() == pytest.approx((4.0, mean, 9.0))
    assert curve.curve_stats(dose_scale=0.5) == pytest.approx((2.0, mean / 2, 4.5))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        dvh = curve.to_dvh(roi_name="PTV", stats_from_curve=True)
    assert (dvh.min_gy, dvh.mean_gy, dvh.max_gy) == pytest.approx((4.0, mean, 9.0))
    assert dvh.statistic("D50") == pytest.approx(6.0)  # 3 of 6 cm3 get >= 6 Gy
    assert dvh.statistic("D100") == pytest.approx(4.0)
    empty = EmbeddedDVH(
        roi_number=None,
        dvh_type="CUMULATIVE",
        dose_units="GY",
        dose_type="PHYSICAL",
        volume_units="CM3",
        dose_scaling=1.0,
        dose=np.array([0.0, 1.0]),
        volume=np.array([0.0, 0.0]),
    )
    assert empty.curve_stats() is None


def test_breast_values_are_percent_of_the_plan_prescription() -> None:
    if not BREAST.is_dir():
        pytest.skip(f"{BREAST} is absent (shared sample data)")
    plan = pydicom.dcmread(BREAST / "rtplan.dcm")
    site = next(r for r in plan.DoseReferenceSequence if r.DoseReferenceStructureType == "SITE")
    prescription = float(site.TargetPrescriptionDose)
    dataset = pydicom.dcmread(BREAST / "rtdose.dcm")
    from_dataset = read_embedded_dvhs(dataset)  # a Dataset, as read_rtstruct takes
    from_file = read_embedded_dvhs(BREAST / "rtdose.dcm")
    assert [e.roi_number for e in from_dataset] == [e.roi_number for e in from_file]
    assert all(
        np.array_equal(a.volume, b.volume) for a, b in zip(from_dataset, from_file, strict=True)
    )
    for embedded in from_file:
        assert embedded.contradicting_stats(), embedded.roi_number  # as labelled: Gy
        assert embedded.contradicting_stats(stats_dose_scale=prescription / 100) == ()
        estimate = embedded.stats_percent_of_gy()
        assert estimate == pytest.approx(prescription, rel=0.05), embedded.roi_number


def test_a_dataset_that_is_not_a_dose_is_refused() -> None:
    dataset = pydicom.Dataset()
    dataset.Modality = "RTPLAN"
    with pytest.raises(InvalidInputError, match=r"^<dataset>: not an RT Dose"):
        read_embedded_dvhs(dataset)
