"""``rtmask convert --reference IMAGE``: masks on the grid of an image the user already has.

The references are written by SimpleITK from the DICOM series (as a user's own conversion
would be), then flipped, shifted or resampled with SimpleITK. Masks are read back with
nibabel and checked against the reference's header (shape, affine: index for index) and
against shapely's point-in-polygon at the reference's voxel centres.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import shapely
import SimpleITK as sitk

from conftest import run_cli_output
from rtmask import ImageGrid
from rtmask.masks._reference import read_reference
from rtmask.synthetic import RoiSpec, circle_uv, to_patient, write_ct_series, write_rtstruct

CENTRE_UV = (21.0, 17.5)
RADIUS_MM = 9.0
SLICES = range(3, 9)


def _case(tmp_path: Path) -> tuple[Path, Path, sitk.Image, ImageGrid]:
    grid = ImageGrid.from_explicit(
        origin_mm=(-30.2, 11.9, -120.4), spacing_mm=(2.5, 0.9, 1.1), shape=(12, 40, 48)
    )
    ct = write_ct_series(tmp_path / "ct", grid)
    contours = tuple(
        (to_patient(grid, k, circle_uv(CENTRE_UV, RADIUS_MM, n=48)), "CLOSED_PLANAR")
        for k in SLICES
    )
    rtstruct = write_rtstruct(
        tmp_path / "RS.dcm", [RoiSpec(number=1, name="Disc", contours=contours)], ct
    )
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(reader.GetGDCMSeriesFileNames(str(tmp_path / "ct")))
    return rtstruct, tmp_path / "ct", reader.Execute(), grid


def _expected(reference: Path, grid: ImageGrid) -> np.ndarray:
    """Shapely's disc at the reference's voxel centres, in the reference file's (i, j, k)."""
    image = nib.load(reference)
    shape = image.shape
    i, j, k = np.indices(shape).reshape(3, -1)
    ras = image.affine @ np.vstack([i, j, k, np.ones_like(i)])
    lps = (np.diag([-1.0, -1.0, 1.0]) @ ras[:3]).T
    index = grid.patient_to_index(lps)
    centre = grid.index_to_patient([[0, 0, 0]])[0][:2] + np.array(CENTRE_UV)
    polygon = shapely.Polygon(circle_uv(centre, RADIUS_MM, n=48))
    nearest = np.round(index[:, 0])
    on_plane = (np.abs(index[:, 0] - nearest) < 1e-3) & np.isin(nearest, list(SLICES))
    inside = shapely.contains_xy(polygon, lps[:, 0], lps[:, 1]) & on_plane
    return inside.reshape(shape)


def _convert(
    capsys: pytest.CaptureFixture[str], rtstruct: Path, ct: Path, out: Path, reference: Path
) -> tuple[int, str]:
    return run_cli_output(
        capsys,
        "convert",
        str(rtstruct),
        "--image",
        str(ct),
        "-o",
        str(out),
        "--reference",
        str(reference),
    )


@pytest.mark.parametrize(
    ("name", "change", "relation"),
    [
        ("same", None, "the same grid as the DICOM series"),
        ("slices_flipped", (False, False, True), "voxels with slices flipped"),
        ("rows_flipped", (False, True, False), "voxels with rows flipped"),
        ("permuted", "permute", "voxels with axes reordered"),
    ],
)
def test_reference_on_the_series_voxels(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    name: str,
    change: tuple[bool, bool, bool] | str | None,
    relation: str,
) -> None:
    rtstruct, ct, image, grid = _case(tmp_path)
    if change == "permute":
        image = sitk.PermuteAxes(image, [1, 0, 2])
    elif isinstance(change, tuple):
        image = sitk.Flip(image, change)
    reference = tmp_path / f"{name}.nii.gz"
    sitk.WriteImage(image, str(reference))
    code, output = _convert(capsys, rtstruct, ct, tmp_path / "out", reference)
    assert code == 0, output
    assert relation in " ".join(output.split())
    mask = nib.load(tmp_path / "out" / "Disc.nii.gz")
    ref = nib.load(reference)
    assert mask.shape == ref.shape
    np.testing.assert_allclose(mask.affine, ref.affine, atol=1e-4)
    np.testing.assert_array_equal(np.asarray(mask.dataobj) > 0, _expected(reference, grid))
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert relation in json.dumps(summary)
    assert not (tmp_path / "out" / "image.nii.gz").exists()  # the reference is the image


def test_reference_shifted_and_resampled(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rtstruct, ct, image, grid = _case(tmp_path)
    shifted = sitk.Image(image)
    origin = np.array(image.GetOrigin()) + np.array([0.3, 0.0, 0.0])
    shifted.SetOrigin([float(v) for v in origin])
    sitk.WriteImage(shifted, str(tmp_path / "shifted.nii.gz"))
    code, output = _convert(capsys, rtstruct, ct, tmp_path / "a", tmp_path / "shifted.nii.gz")
    assert code == 0, output
    text = " ".join(output.split())
    assert re.search(r"shifted by \(0, 0, 0\.3\) mm off its voxel centres", text), text
    mask = nib.load(tmp_path / "a" / "Disc.nii.gz")
    np.testing.assert_array_equal(
        np.asarray(mask.dataobj) > 0, _expected(tmp_path / "shifted.nii.gz", grid)
    )
    # Resampled to 1.5 mm: slab mode; the volume stays near the disc's (area x slab height).
    resampled = sitk.Resample(
        image,
        [32, 24, 20],
        sitk.Transform(),
        sitk.sitkLinear,
        image.GetOrigin(),
        [1.5, 1.5, 1.5],
        image.GetDirection(),
    )
    sitk.WriteImage(resampled, str(tmp_path / "iso.nii.gz"))
    code, output = _convert(capsys, rtstruct, ct, tmp_path / "b", tmp_path / "iso.nii.gz")
    assert code == 0, output
    assert "resampled: voxels of 1.5x1.5x1.5 mm (the DICOM series: 2.5x0.9x1.1 mm)" in " ".join(
        output.split()
    )
    mask = nib.load(tmp_path / "b" / "Disc.nii.gz")
    assert mask.shape == (32, 24, 20)
    volume = float((np.asarray(mask.dataobj) > 0).sum()) * 1.5**3
    analytic = 0.5 * 48 * RADIUS_MM**2 * np.sin(2 * np.pi / 48) * len(SLICES) * 2.5
    assert abs(volume - analytic) / analytic < 0.15


def test_reference_refusals(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rtstruct, ct, image, _ = _case(tmp_path)
    far = sitk.Image(image)
    far.SetOrigin([v + 500.0 for v in image.GetOrigin()])
    sitk.WriteImage(far, str(tmp_path / "far.nii.gz"))
    code, output = _convert(capsys, rtstruct, ct, tmp_path / "out", tmp_path / "far.nii.gz")
    assert code == 1
    (line,) = [x for x in output.splitlines() if x.startswith("error:")]
    assert "far.nii.gz" in line
    assert "far.nii.gz: the image lies" in " ".join(output.split())
    assert "mm away from the DICOM series" in " ".join(output.split())
    affine = np.diag([-1.0, -1.0, 2.5, 1.0])
    affine[1, 3] = np.nan
    nib.save(nib.Nifti1Image(np.zeros((4, 4, 4), np.int16), affine), tmp_path / "nan.nii.gz")
    code, output = _convert(capsys, rtstruct, ct, tmp_path / "out2", tmp_path / "nan.nii.gz")
    assert code == 1
    assert "NaN or infinite" in output
    (tmp_path / "notes.txt").write_text("x")
    code, output = _convert(capsys, rtstruct, ct, tmp_path / "out3", tmp_path / "notes.txt")
    assert code == 1
    assert "not a NIfTI or NRRD image" in " ".join(output.split())
    for extra in (("--format", "seg"), ("--resample", "2")):
        code, output = run_cli_output(
            capsys,
            "convert",
            str(rtstruct),
            "-o",
            str(tmp_path / "o"),
            "--reference",
            str(tmp_path / "far.nii.gz"),
            *extra,
        )
        assert code == 2
        assert "--reference" in output


def test_reference_nrrd_header(tmp_path: Path) -> None:
    _, _, image, grid = _case(tmp_path)
    sitk.WriteImage(image, str(tmp_path / "ref.nrrd"))
    reference = read_reference(tmp_path / "ref.nrrd")
    assert reference.grid.equals(grid, atol=1e-4)
    assert not reference.reversed_slices
    with pytest.raises(Exception, match="no such file"):
        read_reference(tmp_path / "missing.nii.gz")


def test_reference_rotated(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rtstruct, ct, image, _ = _case(tmp_path)
    angle = np.radians(10.0)
    turn = np.array(
        [[np.cos(angle), -np.sin(angle), 0], [np.sin(angle), np.cos(angle), 0], [0, 0, 1]]
    )
    rotated = sitk.Resample(
        image,
        [40, 40, 20],
        sitk.Transform(),
        sitk.sitkNearestNeighbor,
        image.GetOrigin(),
        [1.2, 1.2, 1.5],
        [float(v) for v in turn.ravel()],
    )
    sitk.WriteImage(rotated, str(tmp_path / "rotated.nii.gz"))
    code, output = _convert(capsys, rtstruct, ct, tmp_path / "out", tmp_path / "rotated.nii.gz")
    assert code == 0, output
    assert "resampled and rotated: voxels of 1.5x1.2x1.2 mm" in " ".join(output.split())
    assert "axes up to 10.0 degrees from the series'" in " ".join(output.split())
    mask = nib.load(tmp_path / "out" / "Disc.nii.gz")
    assert mask.shape == (40, 40, 20)
    assert (np.asarray(mask.dataobj) > 0).sum() > 100


def test_reference_without_the_series(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rtstruct, _, image, grid = _case(tmp_path)
    (tmp_path / "alone").mkdir()
    alone = tmp_path / "alone" / "RS.dcm"
    alone.write_bytes(rtstruct.read_bytes())
    sitk.WriteImage(image, str(tmp_path / "ref.nii.gz"))
    code, output = run_cli_output(
        capsys,
        "convert",
        str(alone),
        "-o",
        str(tmp_path / "out"),
        "--reference",
        str(tmp_path / "ref.nii.gz"),
    )
    assert code == 0, output
    assert "(no DICOM series to compare)" in " ".join(output.split())
    mask = nib.load(tmp_path / "out" / "Disc.nii.gz")
    np.testing.assert_array_equal(
        np.asarray(mask.dataobj) > 0, _expected(tmp_path / "ref.nii.gz", grid)
    )
