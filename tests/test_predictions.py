"""Predictions on their own grid placed on the image grid (``read_masks(resample=...)``).

The predictions are written with SimpleITK and nibabel (not rtmask); the expected image
masks come from SimpleITK's own nearest-neighbour ``Resample`` onto the image grid, and
the majority rule from counting sub-voxels by reshaping an exactly nested finer grid.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import nibabel as nib
import nrrd
import numpy as np
import pytest
import SimpleITK as sitk

from conftest import HFS, OBLIQUE, orthonormal
from rtmask import ImageGrid, read_image_series, read_masks, read_rtstruct
from rtmask._errors import GeometryError, GeometryWarning, InvalidInputError
from rtmask.cli import main
from rtmask.export import write_seg
from rtmask.export._profiles import PROFILES, check_written, fit_names
from rtmask.masks import read_seg
from rtmask.masks._placement import FileGeometry
from rtmask.masks._resample import resample_on_grid
from rtmask.masks._tables import read_label_table
from rtmask.names import STANDARD_COLOURS, standard_colour
from rtmask.raster import rasterize
from rtmask.synthetic import write_ct_series

#: Sphere centres (mm from the image centre, LPS) and radii of labels 1, 2, 3 (3 overlaps 2).
SPHERES = (((-10.0, -4.0, -2.0), 8.0), ((8.0, 4.0, 2.0), 7.0), ((13.0, 7.0, 5.0), 4.0))
#: Image voxel index of the image centre.
CENTRE_INDEX = (9.5, 29.5, 31.5)
#: A shift (mm) keeping prediction voxel centres off the image's half-voxel faces (no ties).
SHIFT = np.array([0.37, -0.21, 0.13])


def ct_grid(orientation: tuple[float, ...] = HFS) -> ImageGrid:
    """An image grid off the origin with anisotropic voxels."""
    return ImageGrid.from_explicit(
        origin_mm=(-45.3, 7.9, -231.4),
        spacing_mm=(2.5, 0.9, 1.1),
        shape=(20, 60, 64),
        orientation=orthonormal(orientation),
        frame_of_reference_uid="1.2.826.0.1.3680043.8.498.1",
    )


def grid_directions(grid: ImageGrid) -> np.ndarray:
    """Unit directions of the image's (column, row, slice) axes as matrix columns."""
    ijk = grid.ijk_affine_lps()[:3, :3]
    return np.asarray(ijk / np.linalg.norm(ijk, axis=0))


def sitk_reference(grid: ImageGrid) -> sitk.Image:
    """An empty SimpleITK image on ``grid`` (i = column, j = row, k = slice)."""
    ijk = grid.ijk_affine_lps()
    image = sitk.Image([grid.shape[2], grid.shape[1], grid.shape[0]], sitk.sitkUInt8)
    image.SetSpacing([float(s) for s in np.linalg.norm(ijk[:3, :3], axis=0)])
    image.SetDirection([float(v) for v in grid_directions(grid).ravel()])
    image.SetOrigin([float(v) for v in ijk[:3, 3]])
    return image


def prediction(
    grid: ImageGrid,
    *,
    size: tuple[int, int, int] = (44, 40, 30),
    spacing: float = 1.5,
    turn: np.ndarray | None = None,
    spheres: tuple[tuple[tuple[float, float, float], float], ...] = SPHERES,
) -> sitk.Image:
    """A label map of ``spheres`` on a grid of its own, centred on the image's centre.

    ``turn``: the prediction's axes relative to the image's (a flip, permutation, rotation).
    """
    direction = grid_directions(grid) @ (np.eye(3) if turn is None else turn)
    centre = grid.index_to_patient([CENTRE_INDEX])[0]
    origin = centre - direction @ (np.array(size) - 1) * spacing / 2 + SHIFT
    k, j, i = np.indices(size[::-1])
    index = np.column_stack([i.ravel(), j.ravel(), k.ravel()]).astype(np.float64)
    points = index @ (direction * spacing).T + origin
    labels = np.zeros(len(points), np.uint8)
    for value, (offset, radius) in enumerate(spheres, start=1):
        labels[np.linalg.norm(points - centre - offset, axis=1) <= radius] = value
    image = sitk.GetImageFromArray(labels.reshape(size[::-1]))
    image.SetSpacing([spacing] * 3)
    image.SetOrigin([float(v) for v in origin])
    image.SetDirection([float(v) for v in direction.ravel()])
    return image


def expected_labels(pred: sitk.Image, grid: ImageGrid) -> np.ndarray:
    """SimpleITK's nearest-neighbour resampling of ``pred`` onto ``grid`` (slice, row, col)."""
    resampled = sitk.Resample(
        pred, sitk_reference(grid), sitk.Transform(), sitk.sitkNearestNeighbor, 0
    )
    return sitk.GetArrayFromImage(resampled)


def rotation_z(degrees: float) -> np.ndarray:
    angle = np.radians(degrees)
    return np.array(
        [[np.cos(angle), -np.sin(angle), 0], [np.sin(angle), np.cos(angle), 0], [0, 0, 1]]
    )


TURNS = {
    "parallel": np.eye(3),
    "flipped": np.diag([-1.0, -1.0, 1.0]),
    "permuted": np.array([[0.0, 0.0, 1.0], [1.0, 0.0, 0.0], [0.0, -1.0, 0.0]]),
    "rotated": rotation_z(7.0),
}
NNUNET_LABELS = {"background": 0, "Liver": 1, "Spleen": 2, "Kidney_L": 3}


@pytest.mark.parametrize("orientation", [HFS, OBLIQUE], ids=["HFS", "oblique"])
@pytest.mark.parametrize("turn", TURNS)
def test_nearest_matches_simpleitk(
    tmp_path: Path, turn: str, orientation: tuple[float, ...]
) -> None:
    grid = ct_grid(orientation)
    pred = prediction(grid, turn=TURNS[turn])
    sitk.WriteImage(pred, str(tmp_path / "case.nii.gz"))
    (tmp_path / "dataset.json").write_text(json.dumps({"labels": NNUNET_LABELS}))
    expected = expected_labels(pred, grid)
    with pytest.warns(GeometryWarning, match=r"case\.nii\.gz: resampled onto the image grid"):
        masks = read_masks(tmp_path / "case.nii.gz", grid, resample="nearest")
    assert [m.roi.name for m in masks] == ["Liver", "Spleen", "Kidney_L"]
    for value, mask in enumerate(masks, start=1):
        assert mask.array.shape == grid.shape
        assert mask.array.sum() > 50
        np.testing.assert_array_equal(mask.array, expected == value)


def _nifti(array_kji: np.ndarray, affine_lps: np.ndarray, path: Path) -> None:
    """Write ``(k, j, i)`` data with an LPS index affine through nibabel (RAS on disk)."""
    ras = np.diag([-1.0, -1.0, 1.0, 1.0]) @ affine_lps
    nib.save(nib.Nifti1Image(np.ascontiguousarray(array_kji.transpose(2, 1, 0)), ras), path)


def test_cropped_box_is_a_pure_copy(tmp_path: Path) -> None:
    grid = ct_grid()
    labels = expected_labels(prediction(grid), grid)
    box = (slice(3, 17), slice(10, 50), slice(5, 60))
    ijk = grid.ijk_affine_lps()
    ijk[:3, 3] = grid.index_to_patient([[b.start for b in box]])[0]
    _nifti(labels[box], ijk, tmp_path / "crop.nii.gz")
    with pytest.warns(
        GeometryWarning, match=r"copied .*largest displacement 0 mm.*0 voxels changed"
    ):
        masks = read_masks(tmp_path / "crop.nii.gz", grid, resample="nearest")
    for value, mask in enumerate(masks, start=1):
        assert mask.roi.name == f"label_{value}"
        np.testing.assert_array_equal(mask.array, labels == value)


def test_majority_of_nested_sub_voxels(tmp_path: Path) -> None:
    grid = ct_grid()
    # A finer grid nesting 3x3x3 sub-voxels in each image voxel of the box 4:16, 15:45, 12:52.
    start = np.array([4, 15, 12])
    shape = np.array([12, 30, 40]) * 3
    origin_index = start - 1 / 3  # image index of the first sub-voxel centre
    fine = np.indices(shape).reshape(3, -1).T / 3 + origin_index
    points = grid.index_to_patient(fine)
    centre = grid.index_to_patient([CENTRE_INDEX])[0]
    inside = (np.linalg.norm((points - centre) / [1.0, 1.3, 0.8], axis=1) <= 12.0).reshape(shape)
    affine = np.eye(4)
    affine[:3, :3] = grid.ijk_affine_lps()[:3, :3] / 3
    affine[:3, 3] = grid.index_to_patient([origin_index])[0]
    _nifti(inside.astype(np.uint8), affine, tmp_path / "fine.nii.gz")  # (k, j, i) of (i, j, k)
    expected = np.zeros(grid.shape, bool)
    counts = inside.reshape(12, 3, 30, 3, 40, 3).sum(axis=(1, 3, 5))
    expected[4:16, 15:45, 12:52] = counts >= 14
    with pytest.warns(GeometryWarning, match="majority of sub-voxels"):
        (mask,) = read_masks(tmp_path / "fine.nii.gz", grid, resample="majority")
    assert expected.sum() > 500
    np.testing.assert_array_equal(mask.array, expected)
    # A coarser mask cannot vote.
    coarse = prediction(grid, spheres=SPHERES[:1])
    sitk.WriteImage(coarse, str(tmp_path / "coarse.nii.gz"))
    with pytest.raises(GeometryError, match=r"coarse\.nii\.gz: the majority rule needs .*1\.5 mm"):
        read_masks(tmp_path / "coarse.nii.gz", grid, resample="majority")


def test_labels_outside_the_image_are_refused_with_numbers(tmp_path: Path) -> None:
    grid = ct_grid()
    # Another frame of reference: the same prediction 300 mm away.
    pred = prediction(grid)
    pred.SetOrigin([v + 300.0 for v in pred.GetOrigin()])
    sitk.WriteImage(pred, str(tmp_path / "far.nii.gz"))
    with pytest.raises(GeometryError) as caught:
        read_masks(tmp_path / "far.nii.gz", grid, resample="nearest")
    message = str(caught.value)
    assert "\n" not in message
    assert "far.nii.gz: the labelled voxels lie entirely outside the image" in message
    assert re.search(r"labels span x -?\d+\.\d\.\.-?\d+\.\d, y .* the image spans x", message)
    assert "--image" in message
    # Reaching 6 mm beyond the last slice (the sphere's edge), tolerance 1 mm (or 10).
    top = (
        ct_grid().index_to_patient([[19.5, 29.5, 31.5]])[0]
        - grid.index_to_patient([CENTRE_INDEX])[0]
    )
    poking = prediction(grid, size=(44, 40, 44), spheres=(((0.0, 0.0, float(top[2]) - 2.0), 8.0),))
    sitk.WriteImage(poking, str(tmp_path / "poking.nii.gz"))
    with pytest.raises(
        GeometryError, match=r"reach [4-6]\.\d mm beyond the image \(tolerance 1 mm\)"
    ):
        read_masks(tmp_path / "poking.nii.gz", grid, resample="nearest")
    with pytest.warns(GeometryWarning):
        (mask,) = read_masks(tmp_path / "poking.nii.gz", grid, resample="nearest", tolerance_mm=10)
    assert mask.array[-1].any()
    # The library's default stays exact: off-grid files are refused as before.
    with pytest.raises(GeometryError, match="does not match the image grid"):
        read_masks(tmp_path / "poking.nii.gz", grid)
    with pytest.raises(ValueError, match="resample must be one of"):
        read_masks(tmp_path / "poking.nii.gz", grid, resample="linear")


def test_nan_affine_is_refused(tmp_path: Path) -> None:
    grid = ct_grid()
    affine = np.diag([-1.5, -1.5, 1.5, 1.0])
    affine[0, 3] = np.nan
    image = nib.Nifti1Image(np.ones((4, 4, 4), np.uint8), affine)
    nib.save(image, tmp_path / "nan.nii.gz")
    for rule in ("exact", "nearest"):
        with pytest.raises(
            GeometryError, match=r"nan\.nii\.gz: the file's voxel-to-patient matrix"
        ):
            read_masks(tmp_path / "nan.nii.gz", grid, resample=rule)


def test_label_tables(tmp_path: Path) -> None:
    grid = ct_grid()
    pred = prediction(grid)
    sitk.WriteImage(pred, str(tmp_path / "case.nii.gz"))
    table = tmp_path / "labels.csv"
    table.write_text("value,name\n1,Liver\n2,Spleen\n3,Kidney Left\n")
    with pytest.warns(GeometryWarning):
        masks = read_masks(
            tmp_path / "case.nii.gz",
            grid,
            resample="nearest",
            color_table=table,
            labels=["kidney left", "Liver"],
        )
    assert [(m.roi.number, m.roi.name) for m in masks] == [(3, "Kidney Left"), (1, "Liver")]
    tsv = tmp_path / "labels.tsv"
    tsv.write_text("# model v2\n1\tLiver\n2\tSpleen\n")
    with pytest.raises(
        InvalidInputError,
        match=r"case\.nii\.gz: label\(s\) 3 are not in .*labels\.tsv \(it names 1 Liver, 2 S",
    ):
        read_masks(tmp_path / "case.nii.gz", grid, resample="nearest", color_table=tsv)
    (tmp_path / "dataset.json").write_text(json.dumps({"labels": {"background": 0, "Liver": 1}}))
    with pytest.raises(InvalidInputError, match=r"label\(s\) 2, 3 are not in .*dataset\.json"):
        read_masks(tmp_path / "case.nii.gz", grid, resample="nearest")
    with (
        pytest.raises(
            InvalidInputError, match=r"no ROI named 'Heart' \(it holds 'Liver', 'Spleen'"
        ),
        pytest.warns(GeometryWarning),
    ):
        read_masks(
            tmp_path / "case.nii.gz",
            grid,
            resample="nearest",
            color_table=table,
            labels=["Heart"],
        )
    bad = {
        "regions.json": json.dumps({"labels": {"background": 0, "tumour": [1, 2]}}),
        "nolabels.json": json.dumps({"name": "x"}),
        "broken.json": "{",
        "twice.csv": "1,Liver\n1,Spleen\n",
        "words.csv": "value,name\n1,Liver\nx,y\n",
        "empty.csv": "value,name\n",
    }
    for name, text in bad.items():
        (tmp_path / name).write_text(text)
        with pytest.raises(InvalidInputError, match=re.escape(name)):
            read_masks(
                tmp_path / "case.nii.gz", grid, resample="nearest", color_table=tmp_path / name
            )


def _cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    try:
        code = main(["to-rtstruct", *args])
    except SystemExit as stop:  # argparse's usage errors
        code = int(str(stop.code))
    captured = capsys.readouterr()
    output = captured.out + captured.err
    assert "Traceback" not in output
    return code, output


@pytest.mark.parametrize("orientation", [HFS, OBLIQUE], ids=["HFS", "oblique"])
def test_to_rtstruct_from_a_prediction(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], orientation: tuple[float, ...]
) -> None:
    write_ct_series(tmp_path / "ct", ct_grid(orientation))
    series = read_image_series(tmp_path / "ct")
    pred = prediction(series.grid, turn=TURNS["rotated"])
    (tmp_path / "pred").mkdir()
    sitk.WriteImage(pred, str(tmp_path / "pred" / "case_001.nii.gz"))
    (tmp_path / "pred" / "dataset.json").write_text(json.dumps({"labels": NNUNET_LABELS}))
    expected = expected_labels(pred, series.grid)
    out = tmp_path / "RS.dcm"
    code, output = _cli(
        capsys,
        str(tmp_path / "pred" / "case_001.nii.gz"),
        "--image",
        str(tmp_path / "ct"),
        "-o",
        str(out),
        "--labels",
        "Spleen,Liver",
    )
    assert code == 0, output
    assert "resampled onto the image grid by nearest neighbour" in " ".join(output.split())
    structure_set = read_rtstruct(out, on_invalid="raise")
    assert [roi.name for roi in structure_set.rois] == ["Spleen", "Liver"]
    # Liver has a conventional colour (README: liver brown); Spleen takes the palette.
    assert structure_set.rois[1].color == (139, 69, 19)
    assert structure_set.rois[0].color not in STANDARD_COLOURS.values()
    for roi, value in zip(structure_set.rois, (2, 1), strict=True):
        # Contours follow the voxel edges: the re-read masks are the resampled ones.
        np.testing.assert_array_equal(rasterize(roi, series.grid).array, expected == value)


def test_to_rtstruct_refusals(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_ct_series(tmp_path / "ct", ct_grid())
    series = read_image_series(tmp_path / "ct")
    pred = prediction(series.grid)
    sitk.WriteImage(pred, str(tmp_path / "case.nii.gz"))
    pred.SetOrigin([v - 250.0 for v in pred.GetOrigin()])
    sitk.WriteImage(pred, str(tmp_path / "elsewhere.nii.gz"))
    out = tmp_path / "RS.dcm"
    image = ("--image", str(tmp_path / "ct"), "-o", str(out))
    cases = {
        ("elsewhere.nii.gz",): "elsewhere.nii.gz: the labelled voxels lie entirely outside",
        (
            "case.nii.gz",
            "--resample-rule",
            "exact",
        ): "use --resample-rule nearest (or majority, for binary masks",
        ("case.nii.gz", "--labels", "Heart"): "no ROI named 'Heart'",
    }
    for args, text in cases.items():
        code, output = _cli(capsys, str(tmp_path / args[0]), *image, *args[1:])
        assert code == 1
        errors = [line for line in output.splitlines() if line.startswith("error:")]
        assert len(errors) == 1, output
        assert text in " ".join(output.split())
        assert not out.exists()
    for args in (("--tolerance", "-1"), ("--labels", ",")):
        code, output = _cli(capsys, str(tmp_path / "case.nii.gz"), *image, *args)
        assert code == 2
        assert args[0] in output


def test_seg_from_a_prediction(tmp_path: Path) -> None:
    pytest.importorskip("highdicom")
    write_ct_series(tmp_path / "ct", ct_grid())
    series = read_image_series(tmp_path / "ct")
    pred = prediction(series.grid, turn=TURNS["permuted"])
    sitk.WriteImage(pred, str(tmp_path / "case.nii.gz"))
    with pytest.warns(GeometryWarning, match="resampled"):
        masks = read_masks(tmp_path / "case.nii.gz", series, resample="nearest")
    write_seg(masks, series, tmp_path / "seg.dcm")
    expected = expected_labels(pred, series.grid)
    back = read_seg(tmp_path / "seg.dcm", series)
    assert len(back) == 3
    for value, mask in enumerate(back, start=1):
        np.testing.assert_array_equal(mask.array, expected == value)


def test_fit_names_for_eclipse_and_generic() -> None:
    names = [
        "Parotid_Left_Superficial",
        "Parotid_Left_Superior",
        "Heart",
        "A\\B",
        "Parotid_Left_Sup",
    ]
    fixed, notes = fit_names(names, PROFILES["eclipse"])
    assert fixed == ["Parotid_Left_S~1", "Parotid_Left_S~2", "Heart", "A_B", "Parotid_Left_Sup"]
    assert all(len(name) <= 16 for name in fixed)
    assert len({name.casefold() for name in fixed}) == len(fixed)
    assert len(notes) == 3
    assert "longer than 16 characters" in notes[0]
    assert "TG-263" in notes[0]
    assert "written as 'A_B'" in notes[2]
    fixed, notes = fit_names(names, PROFILES["generic"])
    assert fixed == [*names[:3], "A_B", names[4]]
    assert fit_names(["x" * 70, " ", "Tab\tname"], PROFILES["raystation"])[0] == [
        "x" * 64,
        "ROI",
        "Tab_name",
    ]


def test_to_rtstruct_profile_eclipse(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_ct_series(tmp_path / "ct", ct_grid())
    series = read_image_series(tmp_path / "ct")
    pred = prediction(series.grid)
    (tmp_path / "pred").mkdir()
    sitk.WriteImage(pred, str(tmp_path / "pred" / "case.nii.gz"))
    long_names = {
        "background": 0,
        "Kidney_Left_Upper_Pole": 1,
        "Kidney_Left_Lower_Pole": 2,
        "Heart": 3,
    }
    (tmp_path / "pred" / "dataset.json").write_text(json.dumps({"labels": long_names}))
    out = tmp_path / "RS.dcm"
    args = (str(tmp_path / "pred" / "case.nii.gz"), "--image", str(tmp_path / "ct"), "-o", str(out))
    code, output = _cli(capsys, *args, "--profile", "eclipse")
    assert code == 0, output
    names = [roi.name for roi in read_rtstruct(out).rois]
    assert names == ["Kidney_Left_Uppe", "Kidney_Left_Lowe", "Heart"]
    assert all(len(name) <= 16 for name in names)
    assert "--profile eclipse: ROI name 'Kidney_Left_Upper_Pole' longer than 16" in " ".join(
        output.split()
    )
    # Points per contour: the file's contours, counted by rtmask's reader, against the limit.
    limit = 12
    over = {
        roi.name
        for roi in read_rtstruct(out).rois
        if any(len(contour.points_mm) > limit for contour in roi.contours)
    }
    assert over
    code, output = _cli(capsys, *args, "--profile", "eclipse", "--max-points", str(limit))
    assert code == 1
    errors = [line for line in output.splitlines() if line.startswith("error:")]
    assert {re.search(r"ROI '([^']+)'", " ".join(errors)).group(1)} <= over
    assert len(errors) == len(over)
    assert out.exists()  # written, and what the system would reject said
    code, output = _cli(capsys, *args, "--max-points", "2")
    assert code == 2


def test_check_written_reports_long_ds_values_and_long_contours(tmp_path: Path) -> None:
    import pydicom
    from pydicom.dataelem import RawDataElement
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.tag import Tag
    from pydicom.uid import ImplicitVRLittleEndian, generate_uid

    ds = Dataset()
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.481.3"
    ds.SOPInstanceUID = generate_uid()
    roi = Dataset()
    roi.ROINumber = 1
    roi.ROIName = "Long"
    ds.StructureSetROISequence = [roi]
    contours = []
    for text in (b"1.00000000000000001\\2\\3 ", b"\\".join([b"1.5"] * 3 * 9000)):
        contour = Dataset()
        tag = Tag(0x30060050)
        contour[tag] = RawDataElement(tag, "DS", len(text), text, 0, True, True)
        contours.append(contour)
    item = Dataset()
    item.ReferencedROINumber = 1
    item.ContourSequence = contours
    ds.ROIContourSequence = [item]
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ImplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    pydicom.dcmwrite(tmp_path / "rs.dcm", ds, enforce_file_format=True)
    (problem,) = check_written(tmp_path / "rs.dcm", max_points=100)
    assert problem.startswith("ROI 'Long': contour 1 has a DS value of 19 characters")
    assert "contour 2 has 9000 points (limit 100)" in problem
    assert "contour 2 holds 108000 bytes" in problem  # 27000 values of 3 characters, padded
    assert "more than an explicit VR element can" in problem
    assert check_written(tmp_path / "rs.dcm", max_points=None) != []


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("regions.json", '{"labels": {"background": 0, "tumour": [1, 2]}}', "not one integer"),
        ("negative.json", '{"labels": {"background": 0, "x": -1}}', "twice or is negative"),
        ("nolabels.json", '{"name": "x"}', "has no 'labels' object"),
        ("broken.json", "{", "not readable as JSON"),
        ("twice.csv", "1,Liver\n1,Spleen\n", "line 2: label 1 given twice"),
        ("words.csv", "value,name\n1,Liver\nx,y\n", "line 3: not 'value,name'"),
        ("empty.csv", "value,name\n", "no 'value,name' lines"),
    ],
)
def test_bad_label_tables(tmp_path: Path, name: str, text: str, message: str) -> None:
    (tmp_path / name).write_text(text)
    with pytest.raises(InvalidInputError, match=re.escape(message)):
        read_label_table(tmp_path / name)
    (tmp_path / "latin1.tsv").write_bytes(b"1\tL\xe9ber\n")
    with pytest.raises(InvalidInputError, match="cannot read label table"):
        read_label_table(tmp_path / "latin1.tsv")
    (tmp_path / "ok.tsv").write_text("0\tbackground\n1\tLeft lung\n2\t\n")
    assert {k: v.name for k, v in read_label_table(tmp_path / "ok.tsv").items()} == {1: "Left lung"}


def test_majority_labelmap_and_edge_cases(tmp_path: Path) -> None:
    grid = ct_grid()
    start, shape = np.array([4, 15, 12]), np.array([12, 30, 40]) * 3
    origin_index = start - 1 / 3
    fine = np.indices(shape).reshape(3, -1).T / 3 + origin_index
    points = grid.index_to_patient(fine)
    centre = grid.index_to_patient([CENTRE_INDEX])[0]
    labels = np.zeros(len(points), np.uint8)
    labels[np.linalg.norm(points - centre, axis=1) <= 9.0] = 1
    labels[np.linalg.norm(points - centre - [14.0, 0.0, 0.0], axis=1) <= 5.0] = 2
    labels = labels.reshape(shape)
    # Written with pynrrd in C order (k, j, i) of a (slice, row, column) file: LPS directions.
    affine = np.eye(4)
    affine[:3, :3] = grid.affine[:3, :3] / 3
    affine[:3, 3] = grid.index_to_patient([origin_index])[0]
    nrrd.write(
        str(tmp_path / "fine.nrrd"),
        labels,
        {
            "space": "left-posterior-superior",
            "space directions": affine[:3, [2, 1, 0]].T,  # i = column first
            "space origin": affine[:3, 3],
        },
        index_order="C",
    )
    with pytest.warns(GeometryWarning, match="majority of sub-voxels"):
        masks = read_masks(tmp_path / "fine.nrrd", grid, resample="majority")
    for value, mask in enumerate(masks, start=1):
        counts = (labels == value).reshape(12, 3, 30, 3, 40, 3).sum(axis=(1, 3, 5))
        expected = np.zeros(grid.shape, bool)
        expected[4:16, 15:45, 12:52] = counts >= 14
        assert expected.sum() > 20
        np.testing.assert_array_equal(mask.array, expected)
    # An all-zero file off the grid: an empty mask, placed nowhere.
    nrrd.write(
        str(tmp_path / "zero.nrrd"),
        np.zeros((5, 6, 7), np.uint8),
        {
            "space": "left-posterior-superior",
            "space directions": np.eye(3) * 0.5,
            "space origin": [0.0, 0.0, 0.0],
        },
        index_order="C",
    )
    for rule in ("nearest", "majority"):
        with pytest.warns(GeometryWarning, match="0 image voxels"):
            (empty,) = read_masks(tmp_path / "zero.nrrd", grid, resample=rule)
        assert not empty.array.any()
    nrrd.write(
        str(tmp_path / "flat.nrrd"),
        np.ones((3, 3, 3), np.uint8),
        {
            "space": "left-posterior-superior",
            "space directions": [[1.0, 0, 0], [1.0, 0, 0], [0, 0, 1.0]],
            "space origin": [0.0, 0.0, 0.0],
        },
    )
    with pytest.raises(GeometryError, match="singular"):
        read_masks(tmp_path / "flat.nrrd", grid, resample="nearest")
    geometry = FileGeometry(
        shape=(3, 3, 3), affine_lps=np.eye(4), index_to_patient=lambda index: index
    )
    with pytest.raises(GeometryError, match="not evenly spaced"):
        resample_on_grid(tmp_path / "x.npz", geometry, (np.ones((3, 3, 3)),), grid)
    with pytest.raises(ValueError, match="rule must be"):
        resample_on_grid(tmp_path / "x.npz", geometry, (np.ones((3, 3, 3)),), grid, rule="cubic")


def test_standard_colours_follow_tg263_names_and_target_prefixes() -> None:
    assert standard_colour("LUNG LT") == standard_colour("Lung_L") == (0, 160, 255)
    assert standard_colour("Spinal Cord") == (255, 255, 0)
    assert standard_colour("PTV_High") == (255, 0, 0)
    assert standard_colour("ctv 60") == (255, 128, 0)
    assert standard_colour("Prediction 7") is None
