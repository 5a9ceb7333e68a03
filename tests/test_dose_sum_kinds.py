"""Adding doses of different kinds: DoseType refused unless forced, DoseSummationType warned.

A sum of a PHYSICAL and an EFFECTIVE dose is neither; a sum of a PLAN and a BEAM dose is no
plan dose. ``add_doses``, ``DoseGrid.__add__`` and ``rtmask dose-sum`` must say so and write
what the sum is made of.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pydicom
import pytest

from conftest import run_cli
from rtmask import ImageGrid, InvalidInputError
from rtmask._errors import DoseWarning
from rtmask.dose import DoseGrid, add_doses
from rtmask.synthetic import CTSeries, write_ct_series
from rtmask.synthetic import write_rtdose as write_synthetic_dose

PLAN_UID = "1.2.826.0.1.3680043.8.498.2"


def _grid(frame: str | None = "1.2.3") -> ImageGrid:
    return ImageGrid.from_explicit(
        origin_mm=(-10.0, -8.0, -6.0),
        spacing_mm=(3.0, 2.0, 2.5),
        shape=(4, 5, 6),
        frame_of_reference_uid=frame,
    )


def _dose(value: float, dose_type: str | None, summation: str | None) -> DoseGrid:
    grid = _grid()
    return DoseGrid(
        dose_gy=np.full(grid.shape, value),
        grid=grid,
        dose_type=dose_type,
        summation_type=summation,
        source=f"{dose_type}-{summation}.dcm",
    )


def test_mismatched_dose_types_are_refused_unless_forced() -> None:
    physical, effective = _dose(2.0, "PHYSICAL", "PLAN"), _dose(3.0, "EFFECTIVE", "PLAN")
    with pytest.raises(InvalidInputError, match=r"DoseType differs \(PHYSICAL vs EFFECTIVE\)"):
        add_doses(physical, effective)
    with pytest.raises(InvalidInputError, match="force=True"):
        physical + effective
    with pytest.warns(DoseWarning, match="DoseType differs"):
        total = add_doses(physical, effective, force=True)
    assert np.all(total.dose_gy == 5.0)
    # The physical part counts with RBE 1: the only honest label of the sum is EFFECTIVE.
    assert total.dose_type == "EFFECTIVE"


def test_mixed_summation_types_add_with_a_warning_as_a_composite() -> None:
    plan, beam = _dose(2.0, "PHYSICAL", "PLAN"), _dose(1.5, "PHYSICAL", "BEAM")
    with pytest.warns(DoseWarning, match=r"DoseSummationType differs \(PLAN vs BEAM\)"):
        total = plan + beam
    assert np.all(total.dose_gy == 3.5)
    assert total.dose_type == "PHYSICAL"
    # Neither a plan's nor a beam's dose: DICOM's term for a composite is MULTI_PLAN.
    assert total.summation_type == "MULTI_PLAN"
    unknown = _dose(1.0, "PHYSICAL", None)
    assert (plan + unknown).summation_type is None  # nothing known to say


def test_same_kinds_add_silently() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        total = _dose(2.0, "PHYSICAL", "PLAN") + _dose(1.0, "PHYSICAL", "PLAN")
    assert (total.dose_type, total.summation_type) == ("PHYSICAL", "PLAN")


# ----------------------------------------------------------------------------- CLI
def _ct(tmp_path: Path) -> CTSeries:
    return write_ct_series(tmp_path / "ct", _grid(None), patient_id="P-15")


def _file(tmp_path: Path, ct: CTSeries, name: str, dose_type: str, summation: str) -> Path:
    values = np.linspace(1.0, 2.0, int(np.prod(ct.grid.shape))).reshape(ct.grid.shape)
    return write_synthetic_dose(
        tmp_path / name,
        ct.grid,
        values,
        ct,
        dose_type=dose_type,
        summation_type=summation,
        referenced_plan_uid=PLAN_UID,
    )


def test_cli_refuses_physical_plus_effective_without_force(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ct = _ct(tmp_path)
    a = _file(tmp_path, ct, "a.dcm", "PHYSICAL", "PLAN")
    b = _file(tmp_path, ct, "b.dcm", "EFFECTIVE", "PLAN")
    out = tmp_path / "sum.dcm"
    code, _, err = run_cli(capsys, "dose-sum", str(a), str(b), "-o", str(out))
    assert code == 1
    assert "DoseType differs (PHYSICAL vs EFFECTIVE)" in err
    assert "--force" in err
    assert "force=True" not in err
    assert not out.exists()

    code, _, err = run_cli(capsys, "dose-sum", str(a), str(b), "-o", str(out), "--force")
    assert code == 0
    assert "warning:" in err
    assert "DoseType differs" in err
    ds = pydicom.dcmread(out)
    assert ds.DoseType == "EFFECTIVE"
    comment = str(ds.ImageComments)
    for part in ("a.dcm", "b.dcm", "PHYSICAL", "EFFECTIVE", "--force"):
        assert part in comment, part


def test_cli_warns_on_plan_plus_beam_and_states_the_parts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ct = _ct(tmp_path)
    a = _file(tmp_path, ct, "plan.dcm", "PHYSICAL", "PLAN")
    b = _file(tmp_path, ct, "beam.dcm", "PHYSICAL", "BEAM")
    out = tmp_path / "sum.dcm"
    code, _, err = run_cli(capsys, "dose-sum", str(a), str(b), "-o", str(out), "--scale", "1", "2")
    assert code == 0
    assert "DoseSummationType differs (PLAN vs BEAM)" in err
    ds = pydicom.dcmread(out)
    assert ds.DoseType == "PHYSICAL"
    comment = str(ds.ImageComments)
    assert "1 x plan.dcm (DoseType PHYSICAL, DoseSummationType PLAN)" in comment
    assert "2 x beam.dcm (DoseType PHYSICAL, DoseSummationType BEAM)" in comment
    assert "mixed" in str(ds.SeriesDescription)
    # Not PLAN, although one plan is referenced: the file says it is a composite.
    assert ds.DoseSummationType == "MULTI_PLAN"
    assert [item.ReferencedSOPInstanceUID for item in ds.ReferencedRTPlanSequence] == [PLAN_UID]
    assert "DoseSummationType labelled MULTI_PLAN" in comment
