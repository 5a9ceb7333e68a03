"""``rtmask dose-view`` and ``write_dose_view``: the PNG shows the dose where it is.

A synthetic hot spot placed off the centre (towards the patient's left, anterior and
superior) must appear where radiotherapy viewers show those directions: patient left on
the right of an axial or coronal picture, anterior up on an axial one, superior up on a
coronal one. Pixel colours are read back from the PNG with matplotlib's reader.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
from numpy.typing import NDArray

from conftest import SHARED_DATA, run_cli
from rtmask import ImageGrid
from rtmask.dose import DoseGrid, read_dose
from rtmask.export import IsodoseLevel, choose_view_positions, write_dose_view
from rtmask.rtstruct import read_rtstruct
from rtmask.synthetic import CTSeries, RoiSpec, write_ct_series, write_rtdose, write_rtstruct

mpimg = pytest.importorskip("matplotlib.image")

FloatArray = NDArray[np.float64]
HOT_MM = np.array([30.0, -20.0, 10.0])  # patient left, anterior, superior of the centre
GREEN = (0, 255, 0)


def _centres(grid: ImageGrid) -> FloatArray:
    index = np.stack(np.meshgrid(*(np.arange(n) for n in grid.shape), indexing="ij"), axis=-1)
    return grid.index_to_patient(index.reshape(-1, 3)).reshape(*grid.shape, 3)


def _case(tmp_path: Path, frame: str | None = None) -> tuple[CTSeries, Path]:
    ct_grid = ImageGrid.from_explicit(
        origin_mm=(-80.0, -70.0, -30.0), spacing_mm=(5.0, 2.0, 2.0), shape=(13, 71, 81)
    )
    ct = write_ct_series(
        tmp_path / "ct", ct_grid, hu=np.zeros(ct_grid.shape), frame_of_reference_uid=frame
    )
    dose_grid = ImageGrid.from_explicit(
        origin_mm=(-60.0, -50.0, -20.0),
        spacing_mm=(2.5, 2.5, 2.5),
        shape=(17, 41, 49),
        frame_of_reference_uid=ct.frame_of_reference_uid,
    )
    r2 = np.sum((_centres(dose_grid) - HOT_MM) ** 2, axis=-1)
    values = 60.0 * np.exp(-r2 / (2 * 8.0**2))
    return ct, write_rtdose(tmp_path / "RD.dcm", dose_grid, values, ct)


def _png(path: Path) -> FloatArray:
    return np.asarray(mpimg.imread(path), dtype=np.float64)[..., :3]


def _at(image: FloatArray, pixel: FloatArray) -> FloatArray:
    column, row = (round(float(v)) for v in np.ravel(pixel))
    return image[row, column]


@pytest.mark.parametrize("axis", ["axial", "coronal", "sagittal"])
def test_the_hot_spot_appears_where_it_is(tmp_path: Path, axis: str) -> None:
    ct, rd = _case(tmp_path)
    dose = read_dose(rd)
    hu = np.zeros(ct.grid.shape)
    view = write_dose_view(
        tmp_path / "v.png",
        dose,
        axis=axis,  # type: ignore[arg-type]
        image=(hu, ct.grid),
        levels=[IsodoseLevel(dose_gy=30.0, label="30 Gy")],
        window=(40.0, 400.0),
    )
    image = _png(view.path)
    assert image.shape[:2] == (view.height_px, view.width_px) == (680, 840)
    (panel,) = view.panels
    coordinate = {"sagittal": 0, "coronal": 1, "axial": 2}[axis]
    assert panel.position_mm == pytest.approx(HOT_MM[coordinate])  # through the maximum
    # The top of the jet colour map (0.5, 0, 0) at 45 % over the grey of HU 0 (0.4).
    expected = 0.45 * np.array([0.5, 0.0, 0.0]) + 0.55 * 0.4
    assert np.allclose(_at(image, panel.pixel_of(HOT_MM)), expected, atol=0.03)
    far = HOT_MM.copy()
    if coordinate == 0:
        far[1] = 40.0  # still on the CT, where the dose is ~0
    else:
        far[0] = -40.0
    grey = _at(image, panel.pixel_of(far))
    assert np.allclose(grey, 0.4, atol=0.03)  # HU 0 in a 40/400 window, no wash
    # Independently of pixel_of: the coloured pixels lie left/anterior/superior.
    corners = _centres(ct.grid)[[0, -1]][:, [0, -1]][:, :, [0, -1]].reshape(-1, 3)
    low, high = (np.floor(panel.pixel_of(corners).min(axis=0)), panel.pixel_of(corners).max(axis=0))
    inside = image[int(low[1]) : int(high[1]), int(low[0]) : int(high[0])]  # not the colour bar
    coloured = np.argwhere(np.ptp(inside, axis=-1) > 0.1)  # the wash and its isodose line
    centre = panel.pixel_of(np.array([[0.0, 0.0, 0.0]]))[0]
    row, column = coloured.mean(axis=0) + low[::-1]
    if axis in ("axial", "coronal"):
        assert column > centre[0] + 20  # patient left (+x) on the right
    if axis == "sagittal":
        assert column < centre[0] - 20  # anterior (-y) on the left
    assert row < centre[1] - 10  # anterior (axial) or superior (coronal, sagittal) up
    assert np.allclose([column, row], panel.pixel_of(HOT_MM)[0], atol=3)


def test_cli_draws_rois_levels_and_window(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ct, rd = _case(tmp_path)
    z_planes = _centres(ct.grid)[:, 0, 0, 2]
    angles = np.linspace(0, 2 * np.pi, 90, endpoint=False)
    ring = [
        (
            np.column_stack(
                [HOT_MM[0] + 15 * np.cos(angles), HOT_MM[1] + 15 * np.sin(angles), np.full(90, z)]
            ),
            "CLOSED_PLANAR",
        )
        for z in z_planes
        if abs(z - HOT_MM[2]) <= 12
    ]
    rs = write_rtstruct(
        tmp_path / "RS.dcm",
        [RoiSpec(number=1, name="PTV", contours=tuple(ring), color=GREEN)],
        ct,
    )
    out = tmp_path / "view.png"
    code, _, err = run_cli(
        capsys,
        "dose-view",
        str(rd),
        "--image",
        str(tmp_path / "ct"),
        "--structures",
        str(rs),
        "--levels",
        "95%,50%",
        "--prescription",
        "60",
        "--window",
        "2000/1000",
        "-o",
        str(out),
    )
    assert code == 0, err
    assert "1 axial panel(s) at +10.0 mm" in err
    assert "95 % of 60 Gy (57 Gy), 50 % of 60 Gy (30 Gy)" in err
    image = _png(out)
    # HU 0 in a 2000/1000 window is black (the CT's own 40/400 would make it 0.4 grey).
    assert (np.abs(image - 0.4).max(axis=-1) < 0.02).sum() < 2_000  # text, anti-aliasing
    assert (image.max(axis=-1) < 0.01).sum() > 10_000
    greenish = (image[..., 1] - np.maximum(image[..., 0], image[..., 2])) > 0.5
    assert greenish.sum() > 50  # the PTV outline, drawn in its display colour


def test_cli_errors_name_options(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _, rd = _case(tmp_path)
    (tmp_path / "other").mkdir()
    _case(tmp_path / "other")  # the same geometry in another frame of reference
    out = tmp_path / "view.png"
    cases = [
        (["--levels", "95%"], 1, "percentages need a prescription: give --prescription GY"),
        (["--levels", "ten"], 1, "--levels 'ten'"),
        (["--levels", "20,0"], 1, "'0' is not a positive level"),
        (["--window", "0/40"], 1, "the width must be a positive number"),
        (["--window", "wide"], 1, "--window 'wide' is not WIDTH/LEVEL"),
        (["--slice", "900"], 1, "give a --slice inside it"),
        (["--slice", "abc"], 1, "--slice 'abc'"),
        (["--image", str(tmp_path / "other" / "ct")], 1, "frame of reference"),
        (["--prescription", "-3"], 2, "--prescription -3 must be a positive"),
    ]
    for extra, expected, message in cases:
        code, _, err = run_cli(capsys, "dose-view", str(rd), "-o", str(out), *extra)
        assert code == expected, (extra, err)
        assert message in err, (extra, err)
        assert "_gy" not in err
    assert not out.exists()
    code, _, err = run_cli(capsys, "dose-view", str(rd), "-o", str(tmp_path / "v.jpg"))
    assert code == 2
    assert "give a .png file name" in err


def test_missing_matplotlib_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    _, rd = _case(tmp_path)
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    code, _, err = run_cli(capsys, "dose-view", str(rd), "-o", str(tmp_path / "v.png"))
    assert code == 1
    assert "pip install 'rtmask[plot]'" in err


def test_breast_plan_picture(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = SHARED_DATA / "dicompyler-breast"
    if not folder.is_dir():
        pytest.skip(f"real DICOM test data not found at {folder} (../shared/data)")
    out = tmp_path / "breast.png"
    code, _, err = run_cli(
        capsys,
        "dose-view",
        str(folder / "rtdose.dcm"),
        "--image",
        str(folder),
        "--structures",
        str(folder / "rtss.dcm"),
        "-o",
        str(out),
    )
    assert code == 0, err
    assert "Areola" in err  # the empty ROI is warned about
    assert out.stat().st_size > 10_000
    dose = read_dose(folder / "rtdose.dcm")
    assert isinstance(dose, DoseGrid)


def test_cli_coronal_sections_of_chosen_rois(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ct, rd = _case(tmp_path)
    z_planes = _centres(ct.grid)[:, 0, 0, 2]
    angles = np.linspace(0, 2 * np.pi, 60, endpoint=False)

    def ring(radius: float) -> tuple[tuple[FloatArray, str], ...]:
        return tuple(
            (
                np.column_stack(
                    [
                        HOT_MM[0] + radius * np.cos(angles),
                        HOT_MM[1] + radius * np.sin(angles),
                        np.full(angles.size, z),
                    ]
                ),
                "CLOSED_PLANAR",
            )
            for z in z_planes
            if abs(z - HOT_MM[2]) <= 12
        )

    rs = write_rtstruct(
        tmp_path / "RS.dcm",
        [
            RoiSpec(number=1, name="GTV", contours=ring(6.0), color=GREEN),
            RoiSpec(number=2, name="Shell", contours=ring(25.0), color=(255, 0, 255)),
        ],
        ct,
    )
    out = tmp_path / "cor.png"
    args = ["dose-view", str(rd), "--structures", str(rs), "--axis", "coronal", "-o", str(out)]
    code, _, err = run_cli(capsys, *args, "--roi", "gtv", "--slice=-20,-10")
    assert code == 0, err
    assert "2 coronal panel(s) at -20.0, -10.0 mm" in err
    image = _png(out)
    assert ((image[..., 1] - np.maximum(image[..., 0], image[..., 2])) > 0.5).sum() > 20
    magenta = (np.minimum(image[..., 0], image[..., 2]) - image[..., 1]) > 0.5
    assert magenta.sum() == 0  # Shell was not chosen
    code, _, err = run_cli(capsys, *args, "--roi", "nothing*")
    assert code == 1
    assert "--roi nothing*: no ROI with contours matches" in err


def test_cli_shows_the_planes_of_a_thin_image(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, rd = _case(tmp_path)
    one = ImageGrid.from_explicit(
        origin_mm=(-80.0, -70.0, -5.0), spacing_mm=(5.0, 2.0, 2.0), shape=(1, 71, 81)
    )
    dose = read_dose(rd)
    write_ct_series(
        tmp_path / "one",
        one,
        hu=np.zeros(one.shape),
        frame_of_reference_uid=dose.grid.frame_of_reference_uid,
    )
    out = tmp_path / "thin.png"
    code, _, err = run_cli(
        capsys, "dose-view", str(rd), "--image", str(tmp_path / "one"), "-o", str(out)
    )
    assert code == 0, err
    assert "2 axial panel(s) at -5.0, +10.0 mm" in err  # the image's plane and the maximum


def test_automatic_planes_go_through_the_maximum_and_the_target(tmp_path: Path) -> None:
    ct, rd = _case(tmp_path)
    dose = read_dose(rd)
    square = np.array([[-10.0, -10, 0], [10, -10, 0], [10, 10, 0], [-10, 10, 0]])
    contours = tuple(
        (square + np.array([0.0, 0.0, z]), "CLOSED_PLANAR") for z in _centres(ct.grid)[4:7, 0, 0, 2]
    )
    rs = write_rtstruct(tmp_path / "RS.dcm", [RoiSpec(number=1, name="PTV", contours=contours)], ct)
    target = read_rtstruct(rs).roi("PTV")
    z_centre = float(_centres(ct.grid)[5, 0, 0, 2])
    assert choose_view_positions(dose, "axial", target=target) == (z_centre, HOT_MM[2])
    assert choose_view_positions(dose, "coronal", target=target) == (HOT_MM[1], 0.0)
    near = tuple((square + HOT_MM, "CLOSED_PLANAR") for _ in range(1))
    rs_near = write_rtstruct(
        tmp_path / "RS2.dcm", [RoiSpec(number=1, name="PTV", contours=near)], ct
    )
    assert choose_view_positions(dose, "axial", target=read_rtstruct(rs_near).roi("PTV")) == (
        HOT_MM[2],
    )
