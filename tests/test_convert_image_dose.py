"""``rtmask convert`` writes the image series and the linked dose beside the masks.

Expected values come from SimpleITK's own reading of the series, from pydicom's stored
values with the rescale applied by hand, and from scipy's trilinear interpolation.
"""

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
from pydicom.encaps import encapsulate
from pydicom.uid import MRImageStorage, RLELossless
from scipy.ndimage import map_coordinates

from conftest import HFS, ORIENTATIONS, SHARED_DATA, slices_at, small_grid
from conftest import run_cli_output as _run
from rtmask import ImageGrid
from rtmask.convert import ConversionOptions, choose_dose, convert_structure_set
from rtmask.discovery import scan
from rtmask.masks import non_mask_volumes, read_masks
from rtmask.rtstruct import read_rtstruct
from rtmask.synthetic import (
    RoiSpec,
    circle_uv,
    to_patient,
    write_ct_series,
    write_rtdose,
    write_rtstruct,
)

LUNG1 = SHARED_DATA / "lung1-001" / "LUNG1-001"
FLIP = np.diag([-1.0, -1.0, 1.0, 1.0])  # LPS <-> RAS


def _grid(orientation: tuple[float, ...] = HFS) -> ImageGrid:
    return small_grid((10, 36, 44), orientation)


def _hu(grid: ImageGrid, seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).integers(-1000, 2500, size=grid.shape)


def _rois(grid: ImageGrid, name: str = "Disc") -> list[RoiSpec]:
    centre = (44 * 1.1 / 2, 36 * 0.9 / 2)
    return [
        RoiSpec(
            number=1,
            name=name,
            contours=tuple(
                (to_patient(grid, k, circle_uv(centre, 8.0, n=40)), "CLOSED_PLANAR")
                for k in range(2, min(7, grid.shape[0]))
            ),
        )
    ]


def _case(tmp_path: Path, grid: ImageGrid, *, name: str = "Disc", hu: np.ndarray | None = None):
    folder = tmp_path / "case"
    ct = write_ct_series(folder / "ct", grid, hu=_hu(grid) if hu is None else hu)
    write_rtstruct(folder / "RS.dcm", _rois(ct.grid, name), ct)
    return folder, ct


def _sitk_series(folder: Path) -> tuple[np.ndarray, np.ndarray]:
    """SimpleITK's reading of a series: (i, j, k) data and the RAS affine, built here."""
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(reader.GetGDCMSeriesFileNames(str(folder)))
    reader.SetGlobalWarningDisplay(False)
    image = reader.Execute()
    lps = np.eye(4)
    direction = np.array(image.GetDirection()).reshape(3, 3)
    lps[:3, :3] = direction @ np.diag(image.GetSpacing())
    lps[:3, 3] = image.GetOrigin()
    data = sitk.GetArrayFromImage(image).transpose(2, 1, 0)
    return data, FLIP @ lps


def _ras_affine(grid: ImageGrid) -> np.ndarray:
    """The NIfTI affine of a uniform grid from its orientation, spacing and origin."""
    row, column = np.array(grid.orientation[:3]), np.array(grid.orientation[3:])
    normal = np.cross(row, column)
    slice_mm, row_mm, column_mm = grid.spacing_mm
    lps = np.eye(4)
    lps[:3, 0], lps[:3, 1], lps[:3, 2] = row * column_mm, column * row_mm, normal * slice_mm
    lps[:3, 3] = grid.slice_origins_mm()[0]
    return FLIP @ lps


def _summary(out: Path) -> dict:
    return json.loads((out / "summary.json").read_text(encoding="utf-8"))


@pytest.mark.parametrize("name", sorted(ORIENTATIONS))
def test_image_equals_simpleitk_for_every_orientation(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str
) -> None:
    folder, ct = _case(tmp_path, _grid(ORIENTATIONS[name]))
    out = tmp_path / "out"
    code, output = _run(capsys, "convert", str(folder), "-o", str(out))
    assert code == 0, output
    image = nib.load(out / "image.nii.gz")
    expected, affine = _sitk_series(folder / "ct")
    assert image.get_data_dtype() == np.int16
    assert image.shape == expected.shape
    assert np.array_equal(np.asarray(image.dataobj), expected)
    assert np.allclose(image.affine, affine, atol=1e-4)
    assert np.allclose(nib.load(out / "Disc.nii.gz").affine, image.affine, atol=1e-6)
    facts = _summary(out)["image"]
    assert facts["file"] == "image.nii.gz"
    assert facts["series_uid"] == ct.series_instance_uid
    assert facts["dtype"] == "int16"
    assert facts["on_mask_grid"] is True
    assert "dose" not in _summary(out)  # no dose in this case
    assert f"image: {out / 'image.nii.gz'}" in output.replace("\n", "")


def test_uneven_slices_native_and_resampled(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = _grid()
    positions = base.slice_origins_mm()[[0, 1, 2, 4, 5, 6, 7, 9]]  # slices 3 and 8 missing
    grid = slices_at(base, positions)
    hu = _hu(grid)
    folder, _ = _case(tmp_path, grid, hu=hu)
    code, output = _run(capsys, "convert", str(folder), "-o", str(tmp_path / "native"))
    assert code == 0, output
    assert "use --resample MM" in output
    native = nib.load(tmp_path / "native" / "image.nii.gz")
    expected, affine = _sitk_series(folder / "ct")
    assert np.array_equal(np.asarray(native.dataobj), expected)  # the native slices
    assert np.allclose(native.affine, affine, atol=1e-4)
    assert np.allclose(native.affine, nib.load(tmp_path / "native" / "Disc.nii.gz").affine)

    code, output = _run(
        capsys, "convert", str(folder), "-o", str(tmp_path / "uniform"), "--resample", "1.25"
    )
    assert code == 0, output
    resampled = nib.load(tmp_path / "uniform" / "image.nii.gz")
    mask = nib.load(tmp_path / "uniform" / "Disc.nii.gz")
    assert resampled.shape == mask.shape == (44, 36, 19)
    assert np.allclose(resampled.affine, mask.affine)
    # Linear along the slice normal between the native slices, by hand with numpy.
    native_z = (positions - positions[0]) @ grid.normal
    wanted_z = 1.25 * np.arange(19)
    data = np.asarray(resampled.dataobj).transpose(2, 1, 0)  # (slice, row, column)
    volume = hu.astype(np.float64)
    for k, z in enumerate(wanted_z):
        upper = min(max(int(np.searchsorted(native_z, z, side="right")), 1), len(native_z) - 1)
        t = (z - native_z[upper - 1]) / (native_z[upper] - native_z[upper - 1])
        blend = volume[upper - 1] + t * (volume[upper] - volume[upper - 1])
        assert np.allclose(data[k], blend, atol=1e-3)
    assert resampled.get_data_dtype() == np.float32  # blends are not whole numbers
    assert _summary(tmp_path / "uniform")["image"]["resampled"]


def _as_mr(folder: Path, *, rescale: tuple[str, str] | None, big: bool = False) -> None:
    """Rewrite a synthetic CT series as MR: no rescale (or the one given), raw values."""
    for path in sorted(folder.iterdir()):
        dataset = pydicom.dcmread(path)
        dataset.SOPClassUID = MRImageStorage
        dataset.file_meta.MediaStorageSOPClassUID = MRImageStorage
        dataset.Modality = "MR"
        for keyword in ("RescaleIntercept", "RescaleSlope", "RescaleType", "KVP"):
            if keyword in dataset:
                delattr(dataset, keyword)
        if rescale is not None:
            dataset.RescaleSlope, dataset.RescaleIntercept = rescale
        if big:  # values beyond int16
            stored = dataset.pixel_array.astype(np.uint16) + np.uint16(40000)
            dataset.PixelData = stored.tobytes()
        dataset.save_as(path)


@pytest.mark.parametrize(
    ("rescale", "big", "dtype"),
    [(None, False, np.int16), (None, True, np.float32), (("0.5", "3"), False, np.float32)],
)
def test_mr_stored_type_is_int16_only_when_lossless(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    rescale: tuple[str, str] | None,
    big: bool,
    dtype: type,
) -> None:
    grid = _grid()
    hu = np.random.default_rng(3).integers(0, 1500, size=grid.shape) - 1024
    folder, _ = _case(tmp_path, grid, hu=hu)
    _as_mr(folder / "ct", rescale=rescale, big=big)
    out = tmp_path / "out"
    code, output = _run(capsys, "convert", str(folder), "-o", str(out))
    assert code == 0, output
    image = nib.load(out / "image.nii.gz")
    assert image.get_data_dtype() == dtype
    stored = (hu + 1024).astype(np.float64) + (40000 if big else 0)
    slope, intercept = (float(rescale[0]), float(rescale[1])) if rescale else (1.0, 0.0)
    expected = (stored * slope + intercept).transpose(2, 1, 0)
    assert np.array_equal(np.asarray(image.dataobj, dtype=np.float64), expected)
    sitk_data, affine = _sitk_series(folder / "ct")
    assert np.allclose(np.asarray(image.dataobj, dtype=np.float64), sitk_data)
    assert np.allclose(image.affine, affine, atol=1e-4)
    assert _summary(out)["image"]["dtype"] == np.dtype(dtype).name


def test_rescale_is_applied_slice_by_slice_and_nrrd_has_it_too(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    grid = _grid()
    hu = _hu(grid)
    folder, _ = _case(tmp_path, grid, hu=hu)
    files = sorted((folder / "ct").iterdir())
    changed = pydicom.dcmread(files[0])
    changed.RescaleIntercept = "-1000"  # this slice only: its values rise by 24
    changed.save_as(files[0])
    k = int(
        np.argmin(
            np.abs(
                grid.slice_positions_mm
                - float(np.asarray(changed.ImagePositionPatient, dtype=float) @ grid.normal)
            )
        )
    )
    out = tmp_path / "out"
    code, output = _run(capsys, "convert", str(folder), "-o", str(out), "--format", "nrrd")
    assert code == 0, output
    assert (out / "image.nrrd").is_file()
    assert not (out / "image.nii.gz").exists()
    data, header = nrrd.read(str(out / "image.nrrd"), index_order="C")
    expected = hu.copy()
    expected[k] += 24
    assert data.dtype == np.int16
    assert np.array_equal(data, expected)
    mask_header = nrrd.read_header(str(out / "Disc.nrrd"))
    assert np.allclose(header["space directions"], mask_header["space directions"])
    assert np.allclose(header["space origin"], mask_header["space origin"])


def _dose_case(tmp_path: Path, kinds: tuple[str, ...]) -> tuple[Path, ImageGrid, list]:
    """A CT, a structure set and doses of ``kinds`` on an offset grid that covers part of it."""
    grid = _grid()
    folder, ct = _case(tmp_path, grid)
    dose_grid = ImageGrid.from_explicit(
        origin_mm=tuple(grid.slice_origins_mm()[0] + np.array([7.37, 5.21, 3.13])),
        spacing_mm=(3.0, 2.0, 2.5),
        shape=(6, 14, 15),
        frame_of_reference_uid=ct.frame_of_reference_uid,
    )
    rng = np.random.default_rng(5)
    doses = []
    for i, kind in enumerate(kinds):
        values = rng.uniform(0.0, 60.0, size=dose_grid.shape)
        write_rtdose(folder / f"RD{i}_{kind}.dcm", dose_grid, values, ct, summation_type=kind)
        doses.append(values)
    return folder, dose_grid, doses


def test_multiframe_plan_dose_on_its_own_grid_and_on_the_image(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder, dose_grid, (plan, _) = _dose_case(tmp_path, ("PLAN", "BEAM"))
    out = tmp_path / "out"
    code, output = _run(capsys, "convert", str(folder), "-o", str(out))
    assert code == 0, output
    dose = nib.load(out / "dose.nii.gz")
    assert dose.get_data_dtype() == np.float32
    assert np.allclose(dose.affine, _ras_affine(dose_grid), atol=1e-4)
    values = np.asarray(dose.dataobj).transpose(2, 1, 0)
    assert np.allclose(values, plan, atol=60.0 / 2**31 * 2 + 1e-5)  # 32-bit scaling
    facts = _summary(out)["dose"]
    assert facts["choice"] == "plan"
    assert facts["files"] == [str(folder / "RD0_PLAN.dcm")]
    assert facts["on_image_grid"] is False
    assert facts["coverage"] is None

    on_image = tmp_path / "on_image"
    code, output = _run(capsys, "convert", str(folder), "-o", str(on_image), "--dose-on-image")
    assert code == 0, output
    resampled = nib.load(on_image / "dose.nii.gz")
    image = nib.load(on_image / "image.nii.gz")
    assert resampled.shape == image.shape
    assert np.allclose(resampled.affine, image.affine)
    # scipy's trilinear interpolation at the image voxel centres, in dose voxel indices.
    ijk = np.stack(np.meshgrid(*(np.arange(n) for n in image.shape), indexing="ij"), -1)
    to_dose = np.linalg.inv(_ras_affine(dose_grid)) @ image.affine
    index = (ijk.reshape(-1, 3) @ to_dose[:3, :3].T + to_dose[:3, 3])[:, ::-1]  # (k, j, i)
    inside = np.all((index >= -1e-6) & (index <= np.array(plan.shape) - 1 + 1e-6), axis=1)
    expected = np.zeros(len(index))
    expected[inside] = map_coordinates(plan, index[inside].T, order=1, mode="nearest")
    got = np.asarray(resampled.dataobj).reshape(-1)
    assert 0 < inside.mean() < 1
    assert np.allclose(got, expected, atol=1e-4)
    facts = _summary(on_image)["dose"]
    assert facts["on_image_grid"] is True
    assert facts["coverage"] == pytest.approx(inside.mean())


def test_beam_doses_alone_are_summed(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder, _, (first, second) = _dose_case(tmp_path, ("BEAM", "BEAM"))
    out = tmp_path / "out"
    code, output = _run(capsys, "convert", str(folder), "-o", str(out))
    assert code == 0, output
    values = np.asarray(nib.load(out / "dose.nii.gz").dataobj).transpose(2, 1, 0)
    assert np.allclose(values, first + second, atol=1e-5)
    facts = _summary(out)["dose"]
    assert facts["choice"] == "sum of 2 beam doses"
    assert len(facts["files"]) == 2

    # --image names the series; the dose is still found in INPUT's tree.
    given = tmp_path / "given"
    code, output = _run(
        capsys, "convert", str(folder), "-o", str(given), "--image", str(folder / "ct")
    )
    assert code == 0, output
    assert _summary(given)["dose"]["choice"] == "sum of 2 beam doses"

    skipped = tmp_path / "skipped"
    code, _ = _run(capsys, "convert", str(folder), "-o", str(skipped), "--no-image", "--no-dose")
    assert code == 0
    assert sorted(p.name for p in skipped.iterdir()) == [
        "Disc.nii.gz",
        "summary.csv",
        "summary.json",
    ]
    assert {"image", "dose"}.isdisjoint(_summary(skipped))


def test_choose_dose_follows_references_then_frame_of_reference(tmp_path: Path) -> None:
    folder, _, _ = _dose_case(tmp_path, ("BEAM", "FRACTION"))
    inventory = scan(folder)
    (structure_set,) = inventory.structure_sets
    chosen = choose_dose(structure_set, inventory)
    assert chosen is not None
    assert chosen.choice == "beam"
    assert chosen.files == (folder / "RD0_BEAM.dcm",)
    assert "frame of reference" in chosen.link


def test_read_masks_and_to_rtstruct_take_only_the_masks(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder, _, _ = _dose_case(tmp_path, ("PLAN",))
    out = tmp_path / "out"
    code, output = _run(capsys, "convert", str(folder), "-o", str(out))
    assert code == 0, output
    assert {"image.nii.gz", "dose.nii.gz"} <= {p.name for p in out.iterdir()}
    assert non_mask_volumes(out) == {"image.nii.gz", "dose.nii.gz"}
    grid = _sitk_free_grid(folder)
    assert [m.roi.name for m in read_masks(out, grid)] == ["Disc"]
    code, output = _run(
        capsys,
        "to-rtstruct",
        str(out),
        "--image",
        str(folder / "ct"),
        "-o",
        str(tmp_path / "RS.dcm"),
    )
    assert code == 0, output
    assert read_rtstruct(tmp_path / "RS.dcm").roi_names == ("Disc",)
    # Without summary.json, the names tell.
    (out / "summary.json").unlink()
    assert [m.roi.name for m in read_masks(out, grid)] == ["Disc"]


def _sitk_free_grid(folder: Path) -> ImageGrid:
    from rtmask import read_image_series

    return read_image_series(folder / "ct").grid


def test_a_roi_called_image_keeps_its_own_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder, _ = _case(tmp_path, _grid(), name="Image")
    out = tmp_path / "out"
    code, output = _run(capsys, "convert", str(folder), "-o", str(out))
    assert code == 0, output
    assert (out / "Image_roi.nii.gz").is_file()
    assert (out / "image.nii.gz").is_file()
    (mask,) = read_masks(out, _sitk_free_grid(folder))
    assert mask.roi.name == "Image"
    assert mask.voxel_count > 0
    # --no-image: the ROI's file has its plain name and is read as a mask.
    plain = tmp_path / "plain"
    code, _ = _run(capsys, "convert", str(folder), "-o", str(plain), "--no-image")
    assert code == 0
    assert non_mask_volumes(plain) == frozenset()
    (mask,) = read_masks(plain, _sitk_free_grid(folder))
    assert mask.roi.name == "Image"


def test_unreadable_slice_is_one_problem_and_the_masks_are_written(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder, _ = _case(tmp_path, _grid())
    broken = sorted((folder / "ct").iterdir())[3]
    dataset = pydicom.dcmread(broken)
    # A valid header whose compressed pixel data cannot be decoded.
    dataset.file_meta.TransferSyntaxUID = RLELossless
    dataset.PixelData = encapsulate([b"\x00" * 64 + b"not RLE at all"])
    dataset["PixelData"].VR = "OB"
    dataset.save_as(broken)
    out = tmp_path / "out"
    code, output = _run(capsys, "convert", str(folder), "-o", str(out))
    assert code == 1
    errors = [line for line in output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1
    assert "image.nii.gz not written" in output
    assert broken.name in output
    assert (out / "Disc.nii.gz").is_file()
    assert not (out / "image.nii.gz").exists()
    assert "image" not in _summary(out)


def test_library_options_and_dose_that_cannot_be_read(tmp_path: Path) -> None:
    folder, _, _ = _dose_case(tmp_path, ("PLAN",))
    inventory = scan(folder)
    (rt_object,) = inventory.structure_sets
    (series,) = inventory.image_series
    selection = choose_dose(rt_object, inventory)
    assert selection is not None
    (folder / "RD0_PLAN.dcm").write_bytes(b"not a dose any more")
    report = convert_structure_set(
        read_rtstruct(rt_object.path),
        series.grid,
        tmp_path / "out",
        ConversionOptions(write_image=False),
        series=series,
        dose=selection,
    )
    assert report.image is None
    assert report.dose is None
    (problem,) = report.problems
    assert "dose.nii.gz not written" in problem
    assert "RD0_PLAN.dcm" in problem
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "Disc.nii.gz",
        "summary.csv",
        "summary.json",
    ]


@pytest.mark.skipif(not LUNG1.is_dir(), reason="../shared/data/lung1-001 is not present")
def test_lung1_image_equals_simpleitk(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    code, output = _run(capsys, "convert", str(LUNG1), "-o", str(out), "--roi", "GTV-1")
    assert code == 0, output
    image = nib.load(out / "image.nii.gz")
    expected, affine = _sitk_series(LUNG1 / "image")
    assert image.get_data_dtype() == np.int16
    assert np.array_equal(np.asarray(image.dataobj), expected)
    assert np.allclose(image.affine, affine, atol=1e-3)
    assert np.allclose(nib.load(out / "GTV-1.nii.gz").affine, image.affine, atol=1e-6)


def test_masks_on_the_dose_grid_keep_the_image_on_its_own(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder, dose_grid, _ = _dose_case(tmp_path, ("PLAN",))
    out = tmp_path / "out"
    code, output = _run(
        capsys, "convert", str(folder), "-o", str(out), "--dose-grid", str(folder / "RD0_PLAN.dcm")
    )
    assert code == 0, output
    assert "keeps the image series' own grid" in output
    image = nib.load(out / "image.nii.gz")
    expected, affine = _sitk_series(folder / "ct")
    assert np.array_equal(np.asarray(image.dataobj), expected)
    assert np.allclose(image.affine, affine, atol=1e-4)
    mask = nib.load(out / "Disc.nii.gz")
    assert mask.shape == dose_grid.shape[::-1]
    assert np.allclose(mask.affine, nib.load(out / "dose.nii.gz").affine, atol=1e-4)
    summary = _summary(out)
    assert summary["image"]["on_mask_grid"] is False
    assert summary["dose"]["on_image_grid"] is False


def test_a_late_fractional_slice_turns_the_whole_image_float(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import rtmask.convert._volumes as volumes

    monkeypatch.setattr(volumes, "_READ_SLICES", 3)  # the image is read 3 slices at a time
    grid = _grid()
    hu = _hu(grid)
    folder, _ = _case(tmp_path, grid, hu=hu)
    last = max(
        (folder / "ct").iterdir(),
        key=lambda p: (
            np.asarray(pydicom.dcmread(p).ImagePositionPatient, dtype=float) @ grid.normal
        ),
    )
    dataset = pydicom.dcmread(last)
    dataset.RescaleSlope = "0.5"
    dataset.save_as(last)
    out = tmp_path / "out"
    code, output = _run(capsys, "convert", str(folder), "-o", str(out))
    assert code == 0, output
    image = nib.load(out / "image.nii.gz")
    assert image.get_data_dtype() == np.float32
    expected = hu.astype(np.float64)
    expected[-1] = (hu[-1] + 1024) * 0.5 - 1024
    assert np.array_equal(np.asarray(image.dataobj).transpose(2, 1, 0), expected)


def _write_plan(path: Path, structure_set: Path, patient_id: str) -> str:
    """A minimal RT Plan referring to ``structure_set``; returns its SOPInstanceUID."""
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, RTPlanStorage, generate_uid

    rs = pydicom.dcmread(structure_set)
    plan = Dataset()
    plan.file_meta = FileMetaDataset()
    plan.file_meta.MediaStorageSOPClassUID = RTPlanStorage
    plan.SOPInstanceUID = plan.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    plan.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    plan.SOPClassUID = RTPlanStorage
    plan.Modality = "RTPLAN"
    plan.PatientID = patient_id
    plan.StudyInstanceUID = rs.StudyInstanceUID
    plan.SeriesInstanceUID = generate_uid()
    plan.FrameOfReferenceUID = rs.ReferencedFrameOfReferenceSequence[0].FrameOfReferenceUID
    plan.RTPlanLabel = "PLAN"
    item = Dataset()
    item.ReferencedSOPClassUID = rs.SOPClassUID
    item.ReferencedSOPInstanceUID = rs.SOPInstanceUID
    plan.ReferencedStructureSetSequence = [item]
    plan.save_as(path, enforce_file_format=True)
    return str(plan.SOPInstanceUID)


def test_dose_follows_plan_references_and_leaves_other_plans_doses_alone(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    grid = _grid()
    folder, ct = _case(tmp_path, grid)
    other = write_rtstruct(folder / "RS_other.dcm", _rois(ct.grid, "Other"), ct)
    ours = _write_plan(folder / "RP.dcm", folder / "RS.dcm", ct.patient_id)
    theirs = _write_plan(folder / "RP_other.dcm", other, ct.patient_id)
    dose_grid = ImageGrid.from_explicit(
        origin_mm=tuple(grid.slice_origins_mm()[0]),
        spacing_mm=(5.0, 4.0, 4.0),
        shape=(4, 8, 10),
        frame_of_reference_uid=ct.frame_of_reference_uid,
    )
    mine = np.full(dose_grid.shape, 2.0)
    for name, plan_uid, value in (("RD_ours.dcm", ours, mine), ("RD_theirs.dcm", theirs, 7.0)):
        write_rtdose(
            folder / name,
            dose_grid,
            np.broadcast_to(value, dose_grid.shape),
            ct,
            referenced_plan_uid=plan_uid,
        )
    inventory = scan(folder)
    by_name = {s.path.name: s for s in inventory.structure_sets}
    chosen = choose_dose(by_name["RS.dcm"], inventory)
    assert chosen is not None
    assert chosen.files == (folder / "RD_ours.dcm",)
    assert chosen.link.startswith("references")
    other_choice = choose_dose(by_name["RS_other.dcm"], inventory)
    assert other_choice is not None
    assert other_choice.files == (folder / "RD_theirs.dcm",)
    out = tmp_path / "out"
    code, output = _run(capsys, "convert", str(folder), "-o", str(out), "--jobs", "1")
    assert code == 0, output
    # An archive of two structure sets: one case folder each, named in cases.csv.
    with (out / "cases.csv").open(newline="") as handle:
        cases = {row["structure_set"]: row["output"] for row in csv.DictReader(handle)}
    for name, gray in (("RS.dcm", 2.0), ("RS_other.dcm", 7.0)):
        values = np.asarray(nib.load(out / cases[name] / "dose.nii.gz").dataobj)
        assert np.allclose(values, gray, atol=1e-5), name
