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
import pydicom
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
    assert "shifted: the DICOM series' orientation and voxel size; displaced by (0.3, 0, 0) mm" in (
        text
    )
    assert "not a whole number of the DICOM grid's voxels" in text
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


def _series_affine(ct: Path) -> np.ndarray:
    """LPS affine of the CT's (column, row, slice) indices, from the DICOM headers alone."""
    headers = [pydicom.dcmread(f, stop_before_pixels=True) for f in sorted(ct.iterdir())]
    row_cos = np.array(headers[0].ImageOrientationPatient[:3], dtype=float)
    col_cos = np.array(headers[0].ImageOrientationPatient[3:], dtype=float)
    normal = np.cross(row_cos, col_cos)
    positions = sorted(
        (np.array(h.ImagePositionPatient, dtype=float) for h in headers),
        key=lambda p: float(p @ normal),
    )
    row_mm, col_mm = (float(v) for v in headers[0].PixelSpacing)
    affine = np.eye(4)
    affine[:3, 0] = row_cos * col_mm
    affine[:3, 1] = col_cos * row_mm
    affine[:3, 2] = positions[1] - positions[0]
    affine[:3, 3] = positions[0]
    return affine


def _write_nifti(
    path: Path,
    ct: Path,
    *,
    shift: tuple[float, float, float] = (0.0, 0.0, 0.0),
    flip: int | None = None,
    crop: tuple[slice, slice, slice] | None = None,
    swap: bool = False,
) -> np.ndarray:
    """The CT's grid as a NIfTI (nibabel), moved by ``shift`` (voxels along i, j, k).

    ``flip`` reverses one file axis (data and affine: the same voxel centres), ``crop``
    keeps a part, ``swap`` exchanges the i and j axes. Returns the LPS displacement (mm)
    of the result's voxels against the series' voxels with the same index (after undoing
    the flip and swap).
    """
    lps = _series_affine(ct)
    n_slices = len(list(ct.iterdir()))
    rows, columns = (int(v) for v in pydicom.dcmread(next(ct.iterdir())).pixel_array.shape)
    data = np.arange(columns * rows * n_slices, dtype=np.int32).reshape(columns, rows, n_slices)
    start = np.zeros(3)
    if crop is not None:
        data = data[crop]
        start = np.array([c.start for c in crop], dtype=float)
    moved = lps.copy()
    moved[:3, 3] = lps[:3, :3] @ (start + np.array(shift)) + lps[:3, 3]
    displacement = moved[:3, 3] - lps[:3, 3]
    if flip is not None:
        moved[:3, 3] += (data.shape[flip] - 1) * moved[:3, flip]
        moved[:3, flip] *= -1
        data = np.flip(data, axis=flip)
    if swap:
        moved[:, [0, 1]] = moved[:, [1, 0]]
        data = np.swapaxes(data, 0, 1)
    ras = np.diag([-1.0, -1.0, 1.0, 1.0]) @ moved
    image = nib.Nifti1Image(np.ascontiguousarray(data), ras)
    image.set_qform(ras, code=1)
    image.set_sform(ras, code=1)
    nib.save(image, path)
    return displacement


def _relation(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, reference: Path, grid: ImageGrid | None
) -> str:
    """The grid note of a conversion onto ``reference``; given the series' ``grid`` (when
    the reference's slices are its planes), the masks are checked against shapely's disc at
    the reference's voxel centres."""
    rtstruct, ct = tmp_path / "RS.dcm", tmp_path / "ct"
    out = tmp_path / reference.name.split(".")[0]
    code, output = _convert(capsys, rtstruct, ct, out, reference)
    assert code == 0, output
    summary = json.loads((out / "summary.json").read_text())
    note = str(summary["structure_set"]["image_series"])
    assert note.startswith(f"on the grid of {reference}: ")
    # The same text on the terminal as in summary.json.
    assert f"({note})" in " ".join(output.split())
    if grid is not None:
        mask = np.asarray(nib.load(out / "Disc.nii.gz").dataobj) > 0
        np.testing.assert_array_equal(mask, _expected(reference, grid))
    return note


def _numbers(pattern: str, text: str) -> np.ndarray:
    match = re.search(pattern, text)
    assert match, text
    return np.array([float(v) for v in match.group(1).split(", ")])


@pytest.mark.parametrize(
    ("shift", "change", "words"),
    [
        ((0, 0, 2), (None, False), None),  # 2 slices (5 mm)
        ((0, 3, 0), (None, False), None),  # 3 rows (2.7 mm)
        ((10, 0, 0), (None, False), None),  # 10 columns (11 mm)
        ((10, 0, 2), (None, False), None),  # 2 slices and 10 columns
        ((-4, 1, -1), (None, False), None),
        ((3, 0, 1), (0, False), "columns flipped"),
        ((0, -2, 0), (2, False), "slices flipped"),
        ((2, 0, 0), (None, True), "axes reordered"),
        ((0, 0, 1), (1, True), "rows flipped, axes reordered"),
    ],
)
def test_reference_shifted_by_whole_voxels(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    shift: tuple[int, int, int],
    change: tuple[int | None, bool],
    words: str | None,
) -> None:
    flip, swap = change
    *_, grid = _case(tmp_path)
    reference = tmp_path / "moved.nii.gz"
    displacement = _write_nifti(reference, tmp_path / "ct", shift=shift, flip=flip, swap=swap)
    text = _relation(capsys, tmp_path, reference, grid)
    assert text.split(": ")[1].startswith("shifted"), text
    assert "the same grid" not in text
    np.testing.assert_allclose(
        _numbers(r"displaced by \(([-\d., ]+)\) mm \(patient LPS", text), displacement, atol=1e-3
    )
    # In voxels of the DICOM grid: (slices, rows, columns) = the shift's (k, j, i).
    voxels = _numbers(r"= \(([-\d, ]+)\) voxels of the DICOM grid", text)
    np.testing.assert_array_equal(voxels, shift[::-1])
    assert "against the DICOM image the masks are displaced by that much" in text
    if words is None:
        assert "flipped" not in text
        assert "reordered" not in text
    else:
        assert f"voxel size, {words};" in text
        assert "once the flips and reordering are undone" in text


def test_reference_shifted_by_a_fraction(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _case(tmp_path)
    reference = tmp_path / "moved.nii.gz"
    displacement = _write_nifti(reference, tmp_path / "ct", shift=(0.0, 0.0, 1.2))  # 3 mm
    text = _relation(capsys, tmp_path, reference, None)  # between the planes: slab mode
    np.testing.assert_allclose(displacement, [0.0, 0.0, 3.0], atol=1e-9)
    np.testing.assert_allclose(
        _numbers(r"displaced by \(([-\d., ]+)\) mm", text), displacement, atol=1e-3
    )
    assert "3 mm in all" in text
    assert "not a whole number of the DICOM grid's voxels" in text
    assert "voxels of the DICOM grid (slices" not in text


def test_reference_same_grid_and_cropped(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    *_, grid = _case(tmp_path)
    same = tmp_path / "same.nii.gz"
    _write_nifti(same, tmp_path / "ct")
    text = _relation(capsys, tmp_path, same, grid)
    assert "the same grid as the DICOM series (same voxels in the same order)" in text
    assert "displaced" not in text
    cropped = tmp_path / "cropped.nii.gz"
    displacement = _write_nifti(
        cropped, tmp_path / "ct", crop=(slice(10, 40), slice(5, 30), slice(3, 9))
    )
    text = _relation(capsys, tmp_path, cropped, grid)
    assert "cropped: the DICOM series' orientation and voxel size; a 6x25x30 part of its " in text
    assert "12x40x48 voxels" in text
    np.testing.assert_array_equal(
        _numbers(r"= \(([-\d, ]+)\) voxels of the DICOM grid", text), [3, 5, 10]
    )
    np.testing.assert_allclose(
        _numbers(r"displaced by \(([-\d., ]+)\) mm", text), displacement, atol=1e-3
    )
    # Cropped and moved out of the series: shifted, with both extents.
    beyond = tmp_path / "beyond.nii.gz"
    displacement = _write_nifti(
        beyond, tmp_path / "ct", shift=(0, 0, -5), crop=(slice(0, 40), slice(0, 40), slice(0, 9))
    )
    text = _relation(capsys, tmp_path, beyond, grid)
    assert "shifted: the DICOM series' orientation and voxel size; 9x40x40 voxels (the " in text
    np.testing.assert_array_equal(
        _numbers(r"= \(([-\d, ]+)\) voxels of the DICOM grid", text), [-5, 0, 0]
    )
