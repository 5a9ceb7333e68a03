"""Overlay pictures (``--overlay``), the optional-import helper, and reading CT pixels."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import run_cli_output as _run
from rtmask import ImageGrid, read_image_series
from rtmask._errors import DicomReadError, MissingDependencyError
from rtmask._optional import import_optional
from rtmask.discovery import read_slices
from rtmask.export import choose_overlay_slices
from rtmask.rtstruct import ROI, Contour
from rtmask.synthetic import RoiSpec, circle_uv, to_patient, write_ct_series, write_rtstruct

MAGENTA = (255, 0, 255)


def _grid() -> ImageGrid:
    # Non-square, anisotropic pixels, off origin.
    return ImageGrid.from_explicit(
        origin_mm=(-61.3, 17.9, -230.4),
        spacing_mm=(2.5, 0.9, 1.4),
        shape=(12, 48, 64),
    )


def _case(tmp_path: Path) -> Path:
    """A CT (air, water ellipse) and an RTSTRUCT with a magenta disc on slices 2-9."""
    grid = _grid()
    folder = tmp_path / "case"
    ct = write_ct_series(folder / "ct", grid)
    centre = (64 * 1.4 / 2, 48 * 0.9 / 2)
    disc = tuple(
        (to_patient(grid, k, circle_uv(centre, 12.0, n=48)), "CLOSED_PLANAR") for k in range(2, 10)
    )
    rois = [
        RoiSpec(number=1, name="Disc", contours=disc, color=MAGENTA),
        RoiSpec(number=2, name="PTV $x^{$ 50% _", contours=disc[3:5], color=(0, 255, 0)),
    ]
    write_rtstruct(folder / "RS.dcm", rois, ct)
    return folder


@pytest.fixture
def no_matplotlib(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make every ``import matplotlib...`` fail, as when it is not installed."""
    for name in [m for m in sys.modules if m == "matplotlib" or m.startswith("matplotlib.")]:
        monkeypatch.setitem(sys.modules, name, None)
    monkeypatch.setitem(sys.modules, "matplotlib", None)


def test_convert_overlay_writes_a_png_with_outlines_on_the_ct(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    image = pytest.importorskip("matplotlib.image")
    out = tmp_path / "out"
    code, output = _run(capsys, "convert", str(_case(tmp_path)), "-o", str(out), "--overlay")
    assert code == 0, output
    assert (out / "overlay.png").is_file()
    assert "overlay.png" in output
    assert json.loads((out / "summary.json").read_text())["overlay"] == "overlay.png"
    assert not list(out.glob(".*"))  # no temporary file left

    pixels = image.imread(out / "overlay.png")[..., :3]
    assert pixels.ndim == 3
    assert pixels.shape[1] == 1400
    assert 300 < pixels.shape[0] < 2000
    magenta = np.all(np.abs(pixels - np.array(MAGENTA) / 255) < 0.05, axis=-1)
    assert magenta.sum() > 300  # outlines, not only the legend's line
    # Water (0 HU) in a 40/400 window is grey 0.4.
    grey = (np.abs(pixels - 0.4) < 0.01).all(axis=-1)
    assert grey.sum() > 10_000


def test_overlay_on_a_covering_grid_has_a_black_background(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    image = pytest.importorskip("matplotlib.image")
    out = tmp_path / "out"
    code, output = _run(
        capsys, "convert", str(_case(tmp_path)), "-o", str(out), "--overlay", "--grid-spacing", "2"
    )
    assert code == 0, output
    pixels = image.imread(out / "overlay.png")[..., :3]
    assert (np.abs(pixels - 0.4) < 0.01).all(axis=-1).sum() < 2000  # no CT grey (text edges only)
    assert np.all(np.abs(pixels - np.array(MAGENTA) / 255) < 0.05, axis=-1).sum() > 100


def test_import_optional_names_the_extra(no_matplotlib: None) -> None:
    with pytest.raises(MissingDependencyError, match=r"matplotlib: pip install 'rtmask\[plot\]'"):
        import_optional("matplotlib.figure", extra="plot", feature="overlay pictures")
    with pytest.raises(ImportError):  # MissingDependencyError is an ImportError too
        import_optional("matplotlib", extra="plot", feature="overlay pictures")
    assert import_optional("json", extra="plot", feature="x") is json


def test_overlay_without_matplotlib_is_one_error_and_keeps_the_masks(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], no_matplotlib: None
) -> None:
    out = tmp_path / "out"
    code, output = _run(capsys, "convert", str(_case(tmp_path)), "-o", str(out), "--overlay")
    assert code == 1
    errors = [line for line in output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1
    assert "overlay.png" in errors[0]
    assert "rtmask[plot]" in errors[0]
    assert sorted(p.name for p in out.iterdir()) == [
        "Disc.nii.gz",
        "PTV_x_50.nii.gz",
        "image.nii.gz",  # the image series, beside the masks
        "summary.csv",
        "summary.json",
    ]
    summary = json.loads((out / "summary.json").read_text())
    assert "overlay" not in summary
    assert all(row["status"] == "written" for row in summary["rois"])


def test_demo_without_matplotlib_prints_a_hint(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], no_matplotlib: None
) -> None:
    code, output = _run(capsys, "demo", "-o", str(tmp_path / "demo"))
    assert code == 0, output
    assert "rtmask[plot]" in output
    assert not list((tmp_path / "demo").rglob("overlay.png"))


def test_read_slices_returns_the_hounsfield_units_written(tmp_path: Path) -> None:
    grid = _grid()
    rng = np.random.default_rng(7)
    hu = rng.integers(-1024, 3000, size=grid.shape).astype(np.int16)
    ct = write_ct_series(tmp_path / "ct", grid, hu=hu, file_names="shuffled")
    series = read_image_series(tmp_path / "ct")
    slices = read_slices(series, [3, 0, 11, 3])
    assert slices.dtype == np.float32
    assert slices.shape == (4, 48, 64)
    np.testing.assert_array_equal(slices, hu[[3, 0, 11, 3]].astype(np.float32))
    assert read_slices(series, []).shape == (0, 48, 64)

    with pytest.raises(IndexError, match="12 slices"):
        read_slices(series, [12])
    broken = ct.files[5]
    broken.write_bytes(broken.read_bytes()[:-500])
    with pytest.raises(DicomReadError, match=broken.name):
        read_slices(series, [5])


def _roi(number: int, grid: ImageGrid, slices: range) -> ROI:
    square = np.array([[10.0, 10.0], [20.0, 10.0], [20.0, 20.0], [10.0, 20.0]])
    return ROI(
        number=number,
        name=f"R{number}",
        contours=tuple(Contour(points_mm=to_patient(grid, k, square)) for k in slices),
    )


def test_overlay_slices_spread_from_first_to_last_and_keep_the_busiest() -> None:
    grid = ImageGrid.from_explicit(origin_mm=(0, 0, 0), spacing_mm=(3, 1, 1), shape=(40, 30, 30))
    long = _roi(1, grid, range(2, 31))
    short = _roi(2, grid, range(13, 14))  # slice 13 holds both ROIs
    chosen = choose_overlay_slices([long, short], grid)
    assert len(chosen) == 6
    assert chosen == tuple(sorted(set(chosen)))
    assert chosen[0] == 2
    assert chosen[-1] == 30
    assert 13 in chosen
    # Evenly spread: targets 2, 7.6, 13.2, 18.8, 24.4, 30.
    assert chosen == (2, 8, 13, 19, 24, 30)
    assert choose_overlay_slices([_roi(3, grid, range(5, 8))], grid) == (5, 6, 7)
    assert choose_overlay_slices([], grid) == (19,)
