"""``rtmask dose-sum`` with a dose in RELATIVE units (percent of the prescription).

``--prescription GY`` converts it; without the option, the prescription of the plan the
dose references is used when that plan lies beside it (as ``rtmask dvh`` finds it).
Expected sums are computed here from the stored values with plain pydicom.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom
import pytest
from numpy.typing import NDArray

from conftest import run_cli
from plan_factory import beam_plan, save
from rtmask import ImageGrid
from rtmask.synthetic import write_ct_series, write_rtdose

PLAN_UID = "1.2.826.0.1.3680043.8.498.6161"


def _gy(path: Path) -> NDArray[np.float64]:
    """Stored values x DoseGridScaling, in file frame order (plain pydicom)."""
    ds = pydicom.dcmread(path)
    return np.asarray(ds.pixel_array, dtype=np.float64) * float(ds.DoseGridScaling)


@pytest.fixture
def doses(tmp_path: Path) -> tuple[Path, Path]:
    """A.dcm in Gy (a ramp 0-20 Gy) and B_relative.dcm (percent, 10-110 %), one grid."""
    grid = ImageGrid.from_explicit(
        origin_mm=(-10.0, -8.0, -6.0), spacing_mm=(3.0, 2.0, 2.5), shape=(4, 5, 6)
    )
    ct = write_ct_series(tmp_path / "ct", grid)
    ramp = np.linspace(0.0, 1.0, int(np.prod(grid.shape))).reshape(grid.shape)
    a = write_rtdose(tmp_path / "A.dcm", grid, 20.0 * ramp, ct)
    b = write_rtdose(
        tmp_path / "B_relative.dcm",
        grid,
        10.0 + 100.0 * ramp[::-1],
        ct,
        dose_units="RELATIVE",
        referenced_plan_uid=PLAN_UID,
    )
    return a, b


def test_a_relative_dose_is_refused_naming_the_option(
    doses: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    a, b = doses
    out = tmp_path / "S.dcm"
    code, _, err = run_cli(capsys, "dose-sum", str(a), str(b), "-o", str(out), "--force")
    assert code == 1
    text = " ".join(err.split())
    assert f"{b}: DoseUnits is RELATIVE (percent of the prescription)" in text
    assert "give --prescription GY to add it in Gy" in text
    assert "convert it to Gy first" not in text
    assert not out.exists()
    code, _, err = run_cli(
        capsys, "dose-sum", str(a), str(b), "-o", str(out), "--prescription", "-2"
    )
    assert code == 1
    assert "--prescription -2 must be a positive number of Gy" in err


def test_prescription_converts_the_relative_dose(
    doses: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    a, b = doses
    out = tmp_path / "S.dcm"
    code, _, err = run_cli(
        capsys, "dose-sum", str(a), str(b), "-o", str(out), "--prescription", "50"
    )
    assert code == 0, err
    expected = _gy(a) + _gy(b) * 50.0 / 100.0  # percent of 50 Gy
    written = _gy(out)
    assert np.allclose(written, expected, rtol=1e-6, atol=1e-6 * expected.max())
    text = " ".join(err.split())
    assert f"{b}: DoseUnits RELATIVE, read as percent of 50 Gy (from --prescription)" in text
    ds = pydicom.dcmread(out, stop_before_pixels=True)
    assert ds.DoseUnits == "GY"
    assert "B_relative.dcm (DoseType PHYSICAL, DoseSummationType PLAN, RELATIVE as % of 50 Gy)" in (
        ds.ImageComments
    )
    # With the scale, as the option says: factor x (percent x prescription / 100).
    code, _, err = run_cli(
        capsys,
        "dose-sum",
        str(b),
        "-o",
        str(out),
        "--prescription",
        "50",
        "--scale",
        "2",
    )
    assert code == 0, err
    expected = 2.0 * _gy(b) * 0.5
    assert np.allclose(_gy(out), expected, rtol=1e-6, atol=1e-6 * expected.max())


def test_the_plan_beside_the_relative_dose_gives_the_prescription(
    doses: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    a, b = doses
    plan = save(
        beam_plan(prescriptions_gy=(("SITE", "PTV", 40.0),), sop_instance_uid=PLAN_UID),
        tmp_path / "RP.dcm",
    )
    out = tmp_path / "S.dcm"
    code, _, err = run_cli(capsys, "dose-sum", str(a), str(b), "-o", str(out))
    assert code == 0, err
    expected = _gy(a) + _gy(b) * 40.0 / 100.0
    assert np.allclose(_gy(out), expected, rtol=1e-6, atol=1e-6 * expected.max())
    text = " ".join(err.split())
    assert f"read as percent of 40 Gy (from the plan {plan} that DOSE references" in text
    # --prescription wins over the plan.
    code, _, err = run_cli(
        capsys, "dose-sum", str(a), str(b), "-o", str(out), "--prescription", "60"
    )
    assert code == 0, err
    expected = _gy(a) + _gy(b) * 0.6
    assert np.allclose(_gy(out), expected, rtol=1e-6, atol=1e-6 * expected.max())
    assert "says 40 Gy" in " ".join(err.split())


def test_prescription_without_a_relative_dose_is_said_to_be_unused(
    doses: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    a, _ = doses
    out = tmp_path / "S.dcm"
    code, _, err = run_cli(
        capsys, "dose-sum", str(a), str(a), "-o", str(out), "--prescription", "50"
    )
    assert code == 0, err
    assert "--prescription 50: every DOSE is in Gy; it is not used" in " ".join(err.split())
    assert np.allclose(_gy(out), 2 * _gy(a), rtol=1e-6, atol=1e-6 * _gy(a).max())
