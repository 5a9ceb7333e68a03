"""The RT Dose grid: frames placed by GridFrameOffsetVector, in any order and form."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom
import pytest

from rtmask import ImageGrid, InvalidInputError
from rtmask.cli import main
from rtmask.dose import dose_frame_order, read_dose_grid
from rtmask.synthetic import (
    RoiSpec,
    circle_uv,
    to_patient,
    write_ct_series,
    write_rtdose,
    write_rtstruct,
)


def _dose_grid(orientation: tuple[float, ...]) -> ImageGrid:
    return ImageGrid.from_explicit(
        origin_mm=(-40.0, -30.0, -20.0),
        spacing_mm=(3.0, 2.5, 2.0),
        shape=(7, 20, 30),
        orientation=orientation,
    )


@pytest.mark.parametrize("offsets", ["relative", "absolute"])
@pytest.mark.parametrize("reverse", [False, True])
def test_dose_grid_matches_the_frames(tmp_path: Path, offsets: str, reverse: bool) -> None:
    grid = _dose_grid((1, 0, 0, 0, 1, 0))
    ct = write_ct_series(tmp_path / "ct", grid)
    dose = np.arange(np.prod(grid.shape), dtype=float).reshape(grid.shape) / 1000
    path = write_rtdose(
        tmp_path / "RD.dcm",
        grid,
        dose,
        ct,
        offsets=offsets,  # type: ignore[arg-type]
        reverse_frames=reverse,
    )
    read = read_dose_grid(path)
    assert read.equals(
        grid.__class__(
            shape=grid.shape, affine=grid.affine, frame_of_reference_uid=ct.frame_of_reference_uid
        )
    )
    # Frame order: slice k of the grid is frame order[k] of the file (checked on the pixels).
    dataset = pydicom.dcmread(path)
    frames = dataset.pixel_array * float(dataset.DoseGridScaling)
    order = dose_frame_order(path)
    assert np.allclose(frames[order], dose, atol=float(dataset.DoseGridScaling))
    assert list(order) == (list(range(7))[::-1] if reverse else list(range(7)))


def test_oblique_dose_grid(tmp_path: Path) -> None:
    row = np.array([0.8, 0.6, 0.0])
    column = np.array([0.0, 0.0, -1.0])
    grid = _dose_grid((*row, *column))
    ct = write_ct_series(tmp_path / "ct", grid)
    path = write_rtdose(tmp_path / "RD.dcm", grid, np.ones(grid.shape), ct)
    assert np.allclose(read_dose_grid(path).affine, grid.affine, atol=1e-4)


def test_not_a_dose(tmp_path: Path) -> None:
    ct = write_ct_series(tmp_path / "ct", _dose_grid((1, 0, 0, 0, 1, 0)))
    with pytest.raises(InvalidInputError, match="not an RT Dose"):
        read_dose_grid(ct.files[0])


def test_convert_on_dose_grid_and_covering_grid(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ct_grid = ImageGrid.from_explicit(
        origin_mm=(-40.0, -30.0, -20.0), spacing_mm=(2.0, 1.0, 1.0), shape=(16, 60, 80)
    )
    ct = write_ct_series(tmp_path / "case" / "ct", ct_grid)
    # A cylinder of radius 10 mm over 10 planes (20 mm): 6283 mm3 with half-slice caps.
    contours = tuple(
        (to_patient(ct_grid, k, circle_uv((40.0, 30.0), 10.0, n=200)), "CLOSED_PLANAR")
        for k in range(3, 13)
    )
    rtstruct = write_rtstruct(
        tmp_path / "case" / "RS.dcm", [RoiSpec(number=1, name="Cyl", contours=contours)], ct
    )
    dose_grid = _dose_grid((1, 0, 0, 0, 1, 0))
    dose = write_rtdose(tmp_path / "RD.dcm", dose_grid, np.ones(dose_grid.shape), ct)
    out = tmp_path / "on_dose"
    assert main(["convert", str(rtstruct), "-o", str(out), "--dose-grid", str(dose)]) == 0
    assert "on the dose grid" in capsys.readouterr().err
    import nibabel as nib

    assert nib.load(out / "Cyl.nii.gz").shape == (30, 20, 7)
    out = tmp_path / "covering"
    assert main(["convert", str(rtstruct), "-o", str(out), "--grid-spacing", "0.5"]) == 0
    import json

    volume = json.loads((out / "summary.json").read_text())["rois"][0]["volume_cm3"]
    assert volume == pytest.approx(np.pi * 10.0**2 * 20.0 / 1000, rel=0.02)
