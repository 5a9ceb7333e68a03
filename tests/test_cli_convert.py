"""``rtmask convert`` end to end: outputs, layout, options, and every kind of bad input."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import nibabel as nib
import nrrd
import numpy as np
import pydicom
import pytest
import SimpleITK as sitk

from conftest import HFP, HFS, OBLIQUE, slices_at, small_grid
from conftest import run_cli_output as _run
from rtmask import ImageGrid, read_image_series, read_rtstruct
from rtmask.cli import main
from rtmask.raster import rasterize
from rtmask.synthetic import (
    RoiSpec,
    circle_uv,
    sphere_contours,
    to_patient,
    write_ct_series,
    write_rtstruct,
)


def _grid(orientation: tuple[float, ...] = HFS) -> ImageGrid:
    return small_grid((12, 48, 64), orientation)


def _disc(grid: ImageGrid, k: int, radius: float, du: float = 0.0) -> np.ndarray:
    centre = (64 * 1.1 / 2 + du, 48 * 0.9 / 2)
    return to_patient(grid, k, circle_uv(centre, radius, n=40))


def _case(
    tmp_path: Path,
    rois: list[RoiSpec] | None = None,
    *,
    grid: ImageGrid | None = None,
    file_names: str = "shuffled",
) -> tuple[Path, Path]:
    """Write a CT series and an RTSTRUCT under tmp_path/case; return (folder, rtstruct)."""
    grid = grid or _grid()
    folder = tmp_path / "case"
    ct = write_ct_series(folder / "ct", grid, file_names=file_names)
    if rois is None:
        centre = grid.index_to_patient([[5.5, 24, 32]])[0]
        rois = [
            RoiSpec(
                number=1,
                name="Sphere",
                contours=tuple((c, "CLOSED_PLANAR") for c in sphere_contours(grid, centre, 9.0)),
            ),
            RoiSpec(
                number=2,
                name="Ring",
                contours=tuple(
                    (_disc(grid, k, r), "CLOSED_PLANAR") for k in (3, 4) for r in (12.0, 6.0)
                ),
                color=(0, 255, 0),
            ),
        ]
    rtstruct = write_rtstruct(folder / "RS.dcm", rois, ct)
    return folder, rtstruct


def _errors(output: str) -> list[str]:
    return [line for line in output.splitlines() if line.startswith("error:")]


@pytest.mark.parametrize("orientation", [HFS, HFP, OBLIQUE])
def test_convert_writes_masks_that_line_up_with_simpleitk(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], orientation: tuple[float, ...]
) -> None:
    folder, rtstruct = _case(tmp_path, grid=_grid(orientation))
    out = tmp_path / "out"
    code, output = _run(capsys, "convert", str(folder), "-o", str(out))
    assert code == 0, output
    assert sorted(p.name for p in out.iterdir()) == [
        "Ring.nii.gz",
        "Sphere.nii.gz",
        "image.nii.gz",  # the CT itself, since issue 13
        "summary.csv",
        "summary.json",
    ]

    # The CT as SimpleITK converts it: same shape and affine as every mask.
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(reader.GetGDCMSeriesFileNames(str(folder / "ct")))
    sitk.WriteImage(reader.Execute(), str(tmp_path / "ct.nii.gz"))
    ct = nib.load(tmp_path / "ct.nii.gz")
    for name in ("Sphere", "Ring"):
        mask = nib.load(out / f"{name}.nii.gz")
        assert mask.shape == ct.shape
        assert np.allclose(mask.affine, ct.affine, atol=1e-4)
        assert mask.get_data_dtype() == np.uint8

    # The data are the library's masks in (column, row, slice) order.
    structure_set = read_rtstruct(rtstruct)
    grid = read_image_series(folder / "ct").grid
    expected = rasterize(structure_set.roi("Ring"), grid).array
    written = np.asarray(nib.load(out / "Ring.nii.gz").dataobj).transpose(2, 1, 0)
    assert np.array_equal(written, expected)
    assert expected[3].any()
    assert not expected[3][24, 32]  # the hole

    summary = json.loads((out / "summary.json").read_text())
    rows = {row["name"]: row for row in summary["rois"]}
    assert rows["Ring"]["voxel_count"] == expected.sum()
    assert rows["Ring"]["color"] == [0, 255, 0]
    assert "voxel count" in summary["volume_convention"]
    assert "Ring" in (out / "summary.csv").read_text()


def test_roi_selection_by_name_and_glob(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder, _ = _case(tmp_path)
    out = tmp_path / "out"
    code, _ = _run(capsys, "convert", str(folder), "-o", str(out), "--roi", "sph*")
    assert code == 0
    assert (out / "Sphere.nii.gz").exists()
    assert not (out / "Ring.nii.gz").exists()
    code, output = _run(capsys, "convert", str(folder), "-o", str(out), "--roi", "Bladder")
    assert code == 1
    assert "no ROI matches --roi Bladder" in output
    assert "'Sphere'" in output


@pytest.mark.parametrize("output_format", ["nrrd", "npz", "labelmap"])
def test_other_formats(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], output_format: str
) -> None:
    folder, rtstruct = _case(tmp_path)
    out = tmp_path / "out"
    code, output = _run(capsys, "convert", str(folder), "-o", str(out), "--format", output_format)
    assert code == 0, output
    grid = read_image_series(folder / "ct").grid
    ring = rasterize(read_rtstruct(rtstruct).roi("Ring"), grid).array
    if output_format == "nrrd":
        data, header = nrrd.read(str(out / "Ring.nrrd"))
        assert np.array_equal(data.transpose(2, 1, 0).astype(bool), ring)
        assert header["space"] == "left-posterior-superior"
    elif output_format == "npz":
        with np.load(out / "masks.npz") as archive:
            assert np.array_equal(archive["roi/Ring"], ring)
            assert np.allclose(archive["affine"], grid.affine)
    else:
        labels = np.asarray(nib.load(out / "labels.nii.gz").dataobj).transpose(2, 1, 0)
        assert set(np.unique(labels)) == {0, 1, 2}
        assert np.array_equal(labels == 2, ring)
        assert (out / "labels.itksnap.txt").exists()
        assert (out / "labels.ctbl").exists()


def test_fractional_masks_are_float(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder, _ = _case(tmp_path)
    out = tmp_path / "out"
    code, _ = _run(capsys, "convert", str(folder), "-o", str(out), "--fractional", "4")
    assert code == 0
    data = np.asarray(nib.load(out / "Sphere.nii.gz").dataobj)
    assert data.dtype == np.float32
    assert 0 < data.max() <= 1
    assert np.any((data > 0) & (data < 1))


def test_non_uniform_series_warns_and_resample_makes_it_uniform(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = _grid()
    positions = base.slice_origins_mm()[[0, 1, 2, 4, 5, 6, 7]]  # slice 3 missing
    grid = slices_at(base, positions)
    rois = [
        RoiSpec(
            number=1,
            name="Disc",
            contours=tuple((_disc(grid, k, 10.0), "CLOSED_PLANAR") for k in range(7)),
        )
    ]
    folder, _ = _case(tmp_path, rois, grid=grid)
    code, output = _run(capsys, "convert", str(folder), "-o", str(tmp_path / "native"))
    assert code == 0
    assert "not evenly spaced" in output
    assert "missing" in output
    assert "use --resample MM for a uniform grid" in output  # the command's hint
    native = nib.load(tmp_path / "native" / "Disc.nii.gz")
    assert native.shape == (64, 48, 7)
    # SimpleITK converts the same series with the same header: voxel for voxel.
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(reader.GetGDCMSeriesFileNames(str(folder / "ct")))
    reader.SetGlobalWarningDisplay(False)
    sitk.WriteImage(reader.Execute(), str(tmp_path / "ct.nii.gz"))
    ct = nib.load(tmp_path / "ct.nii.gz")
    assert ct.shape == native.shape
    assert np.allclose(ct.affine, native.affine, atol=1e-4)
    code, output = _run(
        capsys, "convert", str(folder), "-o", str(tmp_path / "uniform"), "--resample", "2.5"
    )
    assert code == 0, output
    resampled = nib.load(tmp_path / "uniform" / "Disc.nii.gz")
    assert resampled.shape == (64, 48, 8)
    assert np.allclose(np.linalg.norm(resampled.affine[:3, 2]), 2.5)


# ----------------------------------------------------------------------------- bad input
def test_truncated_rtstruct(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _, rtstruct = _case(tmp_path)
    data = rtstruct.read_bytes()
    rtstruct.write_bytes(data[: len(data) * 6 // 10])
    code, output = _run(capsys, "convert", str(rtstruct), "-o", str(tmp_path / "out"))
    assert code == 1
    assert len(_errors(output)) == 1
    assert str(rtstruct) in _errors(output)[0]


def test_non_dicom_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = tmp_path / "notes.dcm"
    text.write_text("these are not the files you are looking for\n")
    code, output = _run(capsys, "convert", str(text), "-o", str(tmp_path / "out"))
    assert code == 1
    assert _errors(output) == [
        next(line for line in _errors(output) if str(text) in line and "DICOM" in line)
    ]


def test_missing_input_and_usage_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, output = _run(capsys, "convert", str(tmp_path / "nowhere"), "-o", str(tmp_path))
    assert code == 1
    assert "no such file or folder" in output
    with pytest.raises(SystemExit) as exit_info:
        main(["convert", str(tmp_path)])
    assert exit_info.value.code == 2
    code, _ = _run(capsys, "convert", str(tmp_path), "-o", str(tmp_path), "--fractional", "0")
    assert code == 2


def test_missing_image_series(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder, rtstruct = _case(tmp_path)
    alone = tmp_path / "alone"
    alone.mkdir()
    moved = rtstruct.rename(alone / "RS.dcm")
    code, output = _run(capsys, "convert", str(alone), "-o", str(tmp_path / "out"))
    assert code == 1
    assert len(_errors(output)) == 1
    assert str(moved) in output
    assert "--image" in output
    # ... and --image fixes it.
    code, output = _run(
        capsys, "convert", str(moved), "-o", str(tmp_path / "out"), "--image", str(folder / "ct")
    )
    assert code == 0, output


def test_empty_roi_and_nan_contour_fail_but_the_rest_is_written(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    grid = _grid()
    bad = _disc(grid, 4, 8.0)
    bad[5, 0] = np.nan
    rois = [
        RoiSpec(number=1, name="Good", contours=((_disc(grid, 5, 8.0), "CLOSED_PLANAR"),)),
        RoiSpec(number=2, name="Empty", contours=()),
        RoiSpec(
            number=3,
            name="Partly NaN",
            contours=((bad, "CLOSED_PLANAR"), (_disc(grid, 5, 8.0), "CLOSED_PLANAR")),
        ),
    ]
    folder, rtstruct = _case(tmp_path, rois)
    out = tmp_path / "out"
    code, output = _run(capsys, "convert", str(folder), "-o", str(out))
    assert code == 1
    errors = _errors(output)
    assert any("ROI 2 'Empty' has no contours" in e for e in errors)
    assert any("ROI 3 'Partly NaN'" in e and "dropped" in e for e in errors)
    assert all(str(rtstruct) in e for e in errors)
    assert (out / "Good.nii.gz").exists()
    written = np.asarray(nib.load(out / "Partly_NaN.nii.gz").dataobj)
    assert written[:, :, 5].any()
    assert not written[:, :, 4].any()


def test_duplicate_and_hostile_names_stay_inside_out(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    grid = _grid()
    names = ["PTV 70/35 Gy", "../../x", "/etc/passwd", "Cord", "cord", "PTV [1]", "", "a\\..\\b"]
    rois = [
        RoiSpec(
            number=i + 1, name=name, contours=((_disc(grid, 2 + i % 8, 5.0 + i), "CLOSED_PLANAR"),)
        )
        for i, name in enumerate(names)
    ]
    folder, _ = _case(tmp_path, rois)
    out = tmp_path / "deep" / "out"
    code, output = _run(capsys, "convert", str(folder), "-o", str(out))
    assert code == 0, output
    written = sorted(p.name for p in out.iterdir())
    assert all(p.is_file() for p in out.iterdir())
    # one mask per ROI, plus the image
    assert len([n for n in written if n.endswith(".nii.gz")]) == len(names) + 1
    assert "image.nii.gz" in written
    assert not (tmp_path / "x.nii.gz").exists()
    assert not (tmp_path / "deep" / "x.nii.gz").exists()
    assert not any(name.startswith(".") for name in written)
    summary = json.loads((out / "summary.json").read_text())
    files = [row["file"] for row in summary["rois"]]
    assert len(set(files)) == len(names)
    assert [row["name"] for row in summary["rois"]] == names
    assert "duplicate ROI name" in output


def test_batch_with_a_broken_structure_set_converts_the_rest(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder, rtstruct = _case(tmp_path)
    copy = folder / "RS_copy.dcm"
    copy.write_bytes(rtstruct.read_bytes())
    broken = folder / "RS_broken.dcm"
    broken.write_bytes(rtstruct.read_bytes()[:3000])
    (folder / "README.txt").write_text("notes")
    out = tmp_path / "out"
    code, output = _run(capsys, "convert", str(folder), "-o", str(out))
    assert code == 1
    assert any(str(broken) in e for e in _errors(output))
    # One structure set (the copy has its SOPInstanceUID): straight into OUT.
    assert (out / "Sphere.nii.gz").exists()
    assert (out / "summary.json").exists()
    with (out / "cases.csv").open(newline="") as stream:
        rows = {row["structure_set"]: row for row in csv.DictReader(stream)}
    assert set(rows) == {"RS.dcm", "RS_copy.dcm", "RS_broken.dcm"}
    assert rows["RS.dcm"]["status"] == "converted"
    assert rows["RS_copy.dcm"]["status"] == "skipped"
    assert "duplicate of RS.dcm" in rows["RS_copy.dcm"]["error"]
    assert rows["RS_broken.dcm"]["status"] == "failed"
    assert not list(out.rglob(".*"))  # no temporary files left behind


def test_structure_set_from_pydicom_has_only_points(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    path = pydicom.data.get_testdata_file("rtstruct.dcm")
    assert path is not None
    code, output = _run(capsys, "convert", path, "-o", str(tmp_path / "out"))
    assert code == 1
    assert "no image series found" in output
