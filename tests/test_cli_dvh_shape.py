"""``rtmask dvh --limit / --slab-thickness / --interpolate``: get_dvh's options on the CLI.

Analytic truth: a 20 x 12 mm rectangle drawn on one plane is a slab of volume area x
thickness in a dose linear in x, so its dose is uniform on [15, 25] Gy (capped: the mean
of min(D, limit) in closed form); a frustum (radius 2 to 20 mm over 30 mm, contours 10 mm
apart) has the frustum volume pi h (R1^2 + R1 R2 + R2^2) / 3 once its shape is
interpolated between planes, and the stacked slabs' volume (the trapezoidal rule on the
sections' areas) without.
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import shapely

from rtmask import ImageGrid
from rtmask.cli import main
from rtmask.synthetic import RoiSpec, write_ct_series, write_rtdose, write_rtstruct

RECTANGLE = np.array(
    [[-10.0, -6.0, -5.0], [10.0, -6.0, -5.0], [10.0, 6.0, -5.0], [-10.0, 6.0, -5.0]]
)
RECTANGLE_MM2 = 240.0
PLANES_MM = (-15.0, -5.0, 5.0, 15.0)  # the frustum's contour planes (CT slices)
RADII_MM = (2.0, 8.0, 14.0, 20.0)
SIDES = 128
#: Area of a regular polygon of SIDES vertices on a circle, per area of the circle.
POLYGON = SIDES / (2 * math.pi) * math.sin(2 * math.pi / SIDES)


def _dose_gy(x_mm: np.ndarray) -> np.ndarray:
    return 20.0 + 0.5 * x_mm  # 15 to 25 Gy across the rectangle


def _polygon(radius: float, z: float) -> np.ndarray:
    angles = np.arange(SIDES) * 2 * math.pi / SIDES
    return np.column_stack([radius * np.cos(angles), radius * np.sin(angles), np.full(SIDES, z)])


def _write_case(folder: Path) -> tuple[Path, Path]:
    grid = ImageGrid.from_explicit(
        origin_mm=(-30.0, -30.0, -25.0), spacing_mm=(10.0, 1.0, 1.0), shape=(6, 60, 60)
    )
    ct = write_ct_series(folder / "ct", grid, patient_id=folder.name)
    frustum = tuple(
        (_polygon(r, z), "CLOSED_PLANAR") for r, z in zip(RADII_MM, PLANES_MM, strict=True)
    )
    rois = [
        RoiSpec(number=1, name="Frustum", contours=frustum),
        RoiSpec(number=2, name="Flat", contours=((RECTANGLE, "CLOSED_PLANAR"),)),
    ]
    rs = write_rtstruct(folder / "RS.dcm", rois, ct)
    dose_grid = ImageGrid.from_explicit(
        origin_mm=(-34.0, -34.0, -30.0),
        spacing_mm=(3.0, 3.0, 3.0),
        shape=(21, 23, 23),
        frame_of_reference_uid=ct.frame_of_reference_uid,
    )
    index = np.stack(np.meshgrid(*[np.arange(k) for k in dose_grid.shape], indexing="ij"), -1)
    points = dose_grid.index_to_patient(index.reshape(-1, 3)).reshape(*dose_grid.shape, 3)
    rd = write_rtdose(folder / "RD.dcm", dose_grid, _dose_gy(points[..., 0]), ct)
    return rs, rd


@pytest.fixture(scope="module")
def case(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return _write_case(tmp_path_factory.mktemp("shape") / "archive" / "P1")


def _dvh(
    capsys: pytest.CaptureFixture[str], case: tuple[Path, Path], *extra: str
) -> tuple[dict[str, dict[str, Any]], str]:
    rs, rd = case
    code = main(["dvh", str(rs), str(rd), "--json", *extra])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    entries = {entry["name"]: entry for entry in json.loads(captured.out)["rois"]}
    return entries, " ".join(captured.err.split())


def test_the_rectangle_area_is_independent() -> None:
    assert shapely.Polygon(RECTANGLE[:, :2]).area == RECTANGLE_MM2


def test_a_single_plane_roi_is_a_slab_of_the_given_thickness(
    case: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    given, err = _dvh(capsys, case, "--roi", "Flat", "--slab-thickness", "2.5")
    assert given["Flat"]["volume_cm3"] == pytest.approx(RECTANGLE_MM2 * 2.5 / 1000, rel=5e-3)
    assert "single plane" not in err
    # Default: the gap between the structure set's contour planes (10 mm), not the dose
    # grid's 3 mm slices, stated in a warning that names the option.
    default, err = _dvh(capsys, case, "--roi", "Flat")
    assert default["Flat"]["volume_cm3"] == pytest.approx(RECTANGLE_MM2 * 10 / 1000, rel=5e-3)
    assert "ROI 2 'Flat' is drawn on a single plane; its slab is 10 mm thick" in err
    assert "give --slab-thickness MM to choose" in err
    assert "slab_thickness_mm" not in err
    # Dose uniform on [15, 25] Gy over the rectangle, whatever the slab.
    for entries in (given, default):
        assert entries["Flat"]["mean_gy"] == pytest.approx(20.0, rel=2e-3)
        assert entries["Flat"]["min_gy"] == pytest.approx(15.0, abs=0.02)
        assert entries["Flat"]["max_gy"] == pytest.approx(25.0, abs=0.02)


def test_the_limit_caps_the_dose(
    case: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    limit, low, high = 22.0, 15.0, 25.0
    stats = ("--stats", "V21Gy,V23Gy,Dmax")
    entries, err = _dvh(capsys, case, "--roi", "Flat", "--limit", "22", *stats)
    flat = entries["Flat"]
    volume = RECTANGLE_MM2 * 10 / 1000
    assert flat["max_gy"] == limit
    assert flat["stats"]["Dmax"] == limit
    assert flat["min_gy"] == pytest.approx(low, abs=0.02)
    # E[min(D, L)] for D uniform on [low, high].
    capped_mean = ((limit - low) * (limit + low) / 2 + (high - limit) * limit) / (high - low)
    assert flat["mean_gy"] == pytest.approx(capped_mean, rel=2e-3)
    assert flat["stats"]["V21Gy"] == pytest.approx(volume * (high - 21) / (high - low), rel=5e-3)
    assert flat["stats"]["V23Gy"] == 0.0
    assert "more than the dose limit of 22 Gy" in err
    uncapped, _ = _dvh(capsys, case, "--roi", "Flat", *stats)
    assert uncapped["Flat"]["max_gy"] == pytest.approx(high, abs=0.02)
    assert uncapped["Flat"]["stats"]["V21Gy"] == pytest.approx(flat["stats"]["V21Gy"], rel=1e-9)


def test_interpolation_gives_the_frustum_volume(
    case: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    h = PLANES_MM[-1] - PLANES_MM[0]
    r1, r2 = RADII_MM[0], RADII_MM[-1]
    frustum_mm3 = POLYGON * math.pi * h / 3 * (r1 * r1 + r1 * r2 + r2 * r2)
    gap = PLANES_MM[1] - PLANES_MM[0]
    slabs = [gap / 2, gap, gap, gap / 2]  # --end-caps none: first to last plane
    stacked_mm3 = POLYGON * math.pi * sum(r * r * t for r, t in zip(RADII_MM, slabs, strict=True))
    assert stacked_mm3 > 1.03 * frustum_mm3  # the test can tell them apart
    options = ("--roi", "Frustum", "--end-caps", "none")
    plain, _ = _dvh(capsys, case, *options)
    interpolated, _ = _dvh(capsys, case, *options, "--interpolate")
    planes, _ = _dvh(capsys, case, *options, "--interpolate-planes", "9")
    assert plain["Frustum"]["volume_cm3"] == pytest.approx(stacked_mm3 / 1000, rel=5e-3)
    assert interpolated["Frustum"]["volume_cm3"] == pytest.approx(frustum_mm3 / 1000, rel=5e-3)
    # 10 mm gaps in pieces of at most 1 mm: 9 planes in each, the same stack.
    assert planes["Frustum"]["volume_cm3"] == interpolated["Frustum"]["volume_cm3"]


@pytest.mark.parametrize(
    ("extra", "words"),
    [
        (("--limit", "0"), "--limit must be a positive number of Gy, got 0.0"),
        (("--slab-thickness", "-1"), "--slab-thickness must be a positive number of mm"),
        (("--interpolate-planes", "-2"), "--interpolate-planes takes a number of planes >= 0"),
        (("--limit", "nan"), "--limit must be a positive number of Gy, got nan"),
    ],
)
def test_bad_values_name_the_option(
    case: tuple[Path, Path],
    capsys: pytest.CaptureFixture[str],
    extra: tuple[str, ...],
    words: str,
) -> None:
    rs, rd = case
    assert main(["dvh", str(rs), str(rd), *extra]) == 1
    err = " ".join(capsys.readouterr().err.split())
    assert words in err
    assert "Traceback" not in err
    # The same check before a table is computed.
    table = rs.parent.parent.parent / "never.csv"
    assert main(["dvh", str(rs.parent.parent), "--table", str(table), *extra]) == 1
    assert words in capsys.readouterr().err
    assert not table.exists()


def test_interpolate_and_planes_are_one_choice(
    case: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    rs, rd = case
    with pytest.raises(SystemExit) as raised:
        main(["dvh", str(rs), str(rd), "--interpolate", "--interpolate-planes", "3"])
    assert raised.value.code == 2
    assert "not allowed with argument" in capsys.readouterr().err


def test_the_table_takes_the_same_options(
    case: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    options = ("--limit", "22", "--slab-thickness", "2.5", "--interpolate", "--stats", "V21Gy")
    root = case[0].parent.parent
    table = tmp_path / "dvh.csv"
    code = main(["dvh", str(root), "--table", str(table), "--jobs", "1", *options])
    err = capsys.readouterr().err
    assert code == 0, err
    with table.open(encoding="utf-8", newline="") as stream:
        rows = {row["roi_name"]: row for row in csv.DictReader(stream)}
    single, _ = _dvh(capsys, case, *options)
    assert set(rows) == set(single) == {"Frustum", "Flat"}
    for name, entry in single.items():
        for column in ("volume_cm3", "min_gy", "mean_gy", "max_gy"):
            assert float(rows[name][column]) == pytest.approx(entry[column], rel=1e-12)
        assert float(rows[name]["V21Gy"]) == pytest.approx(entry["stats"]["V21Gy"], rel=1e-12)
    assert float(rows["Flat"]["volume_cm3"]) == pytest.approx(0.6, rel=5e-3)
    assert float(rows["Flat"]["max_gy"]) == 22.0
    assert "dose limit of 22 Gy" in " ".join(err.split())
