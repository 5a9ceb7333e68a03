"""read_masks: mask files of every kind placed exactly on a reference grid.

Expected arrays are the arrays written; expected geometry for foreign files is computed
here from the DICOM numbers (ImagePositionPatient, ImageOrientationPatient, PixelSpacing),
and foreign files are written with nibabel, SimpleITK and pynrrd directly, never through
the code under test.
"""

from __future__ import annotations

import gzip
import io
import itertools
import json
import re
from pathlib import Path

import nibabel as nib
import nrrd
import numpy as np
import pytest
import SimpleITK as sitk
from hypothesis import given, settings
from hypothesis import strategies as st

import rtmask.masks
from conftest import FFS, HFP, HFS, SAGITTAL, rotated
from rtmask import ImageGrid
from rtmask._errors import GeometryError, GeometryWarning, InvalidInputError, RtmaskWarning
from rtmask._gzip import CHUNK_BYTES, write_gzip
from rtmask.convert import ConversionOptions, convert_structure_set
from rtmask.export import (
    write_labelmap,
    write_nifti,
    write_npz,
    write_nrrd,
)
from rtmask.masks import read_masks, roi_name_of
from rtmask.masks._inflate import inflate_rtmask_gzip
from rtmask.raster import Mask, rasterize
from rtmask.rtstruct import ROI, read_rtstruct
from rtmask.synthetic import (
    RoiSpec,
    circle_uv,
    sphere_contours,
    to_patient,
    write_ct_series,
    write_rtstruct,
)

# ----------------------------------------------------------------------------- geometry


ORIENTATIONS = {
    "head first supine": HFS,
    "feet first supine": FFS,
    "head first prone": HFP,
    "sagittal": SAGITTAL,
    "oblique": rotated(about_x=0.7, about_y=-0.3, about_z=0.4),
}


class Series:
    """DICOM numbers of a small awkward series: non-square, anisotropic, off-origin.

    ``gaps`` None: uniform slices ``gap`` apart; else the gaps between consecutive slices.
    """

    rows, columns = 7, 9
    pixel_spacing = (0.8, 1.3)  # (between rows, between columns)
    first = np.array([-31.5, 12.25, 104.0])

    def __init__(
        self, orientation: tuple[float, ...], gaps: tuple[float, ...] | None = None
    ) -> None:
        self.orientation = orientation
        self.row_cosine = np.asarray(orientation[:3])
        self.column_cosine = np.asarray(orientation[3:])
        self.normal = np.cross(self.row_cosine, self.column_cosine)
        self.gaps = gaps or (2.5,) * 4
        distances = np.concatenate([[0.0], np.cumsum(self.gaps)])
        self.n_slices = distances.size
        self.positions = self.first + np.outer(distances, self.normal)

    def grid(self) -> ImageGrid:
        order = np.random.default_rng(7).permutation(self.n_slices)  # files in any order
        return ImageGrid.from_slices(
            positions_mm=self.positions[order],
            orientation=self.orientation,
            pixel_spacing_mm=self.pixel_spacing,
            rows=self.rows,
            columns=self.columns,
            frame_of_reference_uid="1.2.3.4",
        )

    def shape(self) -> tuple[int, int, int]:
        return (self.n_slices, self.rows, self.columns)

    def lps_affine(self) -> np.ndarray:
        """(slice, row, column) -> LPS from the DICOM numbers (mean slice step)."""
        affine = np.eye(4)
        affine[:3, 0] = (self.positions[-1] - self.positions[0]) / (self.n_slices - 1)
        affine[:3, 1] = self.column_cosine * self.pixel_spacing[0]
        affine[:3, 2] = self.row_cosine * self.pixel_spacing[1]
        affine[:3, 3] = self.first
        return affine


def _random_masks(shape: tuple[int, int, int], count: int, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.random(shape) < 0.3 for _ in range(count)]


def _disjoint(arrays: list[np.ndarray]) -> list[np.ndarray]:
    """Each array minus every earlier one (labelmaps hold one label per voxel)."""
    taken = np.zeros_like(arrays[0])
    result = []
    for array in arrays:
        result.append(array & ~taken)
        taken |= array
    return result


def _mask(array: np.ndarray, grid: ImageGrid, number: int, name: str, color=None) -> Mask:
    return Mask(array=array, grid=grid, roi=ROI(number=number, name=name, color=color))


def _permuted_nifti(
    array: np.ndarray, lps_affine: np.ndarray, axes: tuple[int, ...], flips: tuple[bool, ...]
) -> nib.Nifti1Image:
    """A NIfTI whose data axis a is grid axis axes[a], reversed where flips[a]."""
    data = np.transpose(array, axes).astype(np.uint8)
    shape = array.shape
    to_grid = np.zeros((4, 4))  # file index -> grid index
    to_grid[3, 3] = 1
    for file_axis, grid_axis in enumerate(axes):
        if flips[file_axis]:
            data = np.flip(data, axis=file_axis)
            to_grid[grid_axis, file_axis] = -1
            to_grid[grid_axis, 3] = shape[grid_axis] - 1
        else:
            to_grid[grid_axis, file_axis] = 1
    ras = np.diag([-1.0, -1.0, 1.0, 1.0]) @ lps_affine @ to_grid
    image = nib.Nifti1Image(np.ascontiguousarray(data), ras)
    image.set_qform(ras, code=1)
    image.set_sform(ras, code=1)
    return image


def _assert_same(masks: list[Mask], arrays: list[np.ndarray], grid: ImageGrid) -> None:
    assert len(masks) == len(arrays)
    for mask, array in zip(masks, arrays, strict=True):
        assert mask.array.dtype == np.bool_
        assert mask.array.shape == grid.shape
        assert mask.grid.equals(grid)
        assert np.array_equal(mask.array, array), mask.roi.name


# ----------------------------------------------------------------------------- round trips


@pytest.mark.parametrize("orientation", ORIENTATIONS.values(), ids=ORIENTATIONS.keys())
@pytest.mark.parametrize("suffix", [".nii.gz", ".nii", ".nrrd"])
def test_folder_round_trip(tmp_path: Path, orientation: tuple[float, ...], suffix: str) -> None:
    series = Series(orientation)
    grid = series.grid()
    arrays = _random_masks(grid.shape, 3)
    names = ["roi_10", "Roi_2", "a b"]
    writer = write_nrrd if suffix == ".nrrd" else write_nifti
    for name, array in zip(names, arrays, strict=True):
        writer(array, grid, tmp_path / f"{name}{suffix}")
    (tmp_path / "notes.txt").write_text("not a mask")
    (tmp_path / ".hidden.nii.gz").write_bytes(b"half-written")

    masks = read_masks(tmp_path, grid)

    # natural, case-free name order, numbers 1..n
    assert [m.roi.name for m in masks] == ["a b", "Roi_2", "roi_10"]
    assert [m.roi.number for m in masks] == [1, 2, 3]
    assert all(m.roi.color is None and not m.roi.contours for m in masks)
    assert all(m.roi.frame_of_reference_uid == "1.2.3.4" for m in masks)
    _assert_same(masks, [arrays[2], arrays[1], arrays[0]], grid)


def test_non_uniform_slices_warn_once_and_map_by_index(tmp_path: Path) -> None:
    series = Series(ORIENTATIONS["oblique"], gaps=(2.0, 3.0, 2.0, 5.0))
    grid = series.grid()
    assert not grid.is_uniform
    arrays = _random_masks(grid.shape, 3, seed=4)
    for index, array in enumerate(arrays):
        with pytest.warns(GeometryWarning):
            write_nifti(array, grid, tmp_path / f"m{index}.nii.gz")
    with pytest.warns(GeometryWarning, match="non-uniform slice spacing") as caught:
        masks = read_masks(tmp_path, grid)
    assert len([w for w in caught if issubclass(w.category, GeometryWarning)]) == 1
    _assert_same(masks, arrays, grid)


def test_npz_round_trip_is_exact_on_non_uniform_slices(tmp_path: Path) -> None:
    series = Series(ORIENTATIONS["feet first supine"], gaps=(2.0, 3.0, 2.0, 5.0))
    grid = series.grid()
    arrays = _random_masks(grid.shape, 2, seed=5)
    write_npz({"zeta": arrays[0], "Alpha beta": arrays[1]}, grid, tmp_path / "masks.npz")
    masks = read_masks(tmp_path / "masks.npz", grid)  # no warning: positions are exact
    assert [(m.roi.number, m.roi.name) for m in masks] == [(1, "zeta"), (2, "Alpha beta")]
    _assert_same(masks, arrays, grid)
    # a folder holding one .npz reads the same
    assert [m.roi.name for m in read_masks(tmp_path, grid)] == ["zeta", "Alpha beta"]


def test_npz_slice_positions_are_checked(tmp_path: Path) -> None:
    # Same first and last slice, same count, other positions in between.
    uneven = Series(ORIENTATIONS["head first supine"], gaps=(2.0, 3.0, 2.0, 3.0)).grid()
    even = Series(ORIENTATIONS["head first supine"], gaps=(2.5,) * 4).grid()
    write_npz({"a": np.ones(even.shape, bool)}, even, tmp_path / "even.npz")
    with pytest.raises(GeometryError, match=r"even\.npz.*0\.5 mm apart"):
        read_masks(tmp_path / "even.npz", uneven)


@pytest.mark.parametrize("orientation", ORIENTATIONS.values(), ids=ORIENTATIONS.keys())
@pytest.mark.parametrize("suffix", [".nii.gz", ".nrrd"])
def test_labelmap_round_trip_with_names_and_colours(
    tmp_path: Path, orientation: tuple[float, ...], suffix: str
) -> None:
    grid = Series(orientation).grid()
    arrays = _disjoint(_random_masks(grid.shape, 4, seed=6))
    names = ["PTV 70/35 Gy", "../x", "Ünïcødé ROI", "label_7"]
    colors = [(255, 0, 0), (0, 128, 255), None, (1, 2, 3)]
    masks = [
        _mask(a, grid, number, n, c)
        for number, a, n, c in zip((4, 9, 2, 30), arrays, names, colors, strict=True)
    ]
    result = write_labelmap(masks, tmp_path / f"labels{suffix}", priority="order")

    read = read_masks(tmp_path / f"labels{suffix}", grid)

    assert [m.roi.name for m in read] == names
    assert [m.roi.color for m in read] == [entry.color for entry in result.entries]
    assert [m.roi.number for m in read] == [1, 2, 3, 4]  # the label values
    _assert_same(read, arrays, grid)


def test_labelmap_of_one_mask_is_read_through_its_table(tmp_path: Path) -> None:
    grid = Series(ORIENTATIONS["sagittal"]).grid()
    array = _random_masks(grid.shape, 1, seed=8)[0]
    write_labelmap([_mask(array, grid, 3, "Spinal Cord", (10, 20, 30))], tmp_path / "l.nii.gz")
    (mask,) = read_masks(tmp_path / "l.nii.gz", grid)
    assert (mask.roi.name, mask.roi.color) == ("Spinal Cord", (10, 20, 30))
    _assert_same([mask], [array], grid)


def test_convert_output_folder_restores_roi_identity(tmp_path: Path) -> None:
    """rtmask convert's summary.json gives back numbers, names and colours file names lost."""
    grid = ImageGrid.from_explicit(
        origin_mm=(-61.3, 17.9, -230.4), spacing_mm=(2.5, 0.9, 1.1), shape=(8, 40, 52)
    )
    ct = write_ct_series(tmp_path / "ct", grid)
    centre = grid.index_to_patient([[3.5, 12, 14]])[0]
    # apart from the sphere: a labelmap holds one label per voxel
    disc = [to_patient(grid, k, circle_uv((40 * 1.1, 28 * 0.9), 6.0, n=40)) for k in (2, 3, 4)]
    rois = [
        RoiSpec(
            number=7,
            name="PTV 70/35 Gy",
            contours=tuple((c, "CLOSED_PLANAR") for c in sphere_contours(grid, centre, 6.0)),
            color=(255, 0, 0),
            interpreted_type="PTV",
        ),
        RoiSpec(
            number=3,
            name="../Cord",
            contours=tuple((c, "CLOSED_PLANAR") for c in disc),
            color=(0, 255, 0),
        ),
    ]
    structure_set = read_rtstruct(write_rtstruct(tmp_path / "RS.dcm", rois, ct))
    expected = {roi.number: rasterize(roi, grid).array for roi in structure_set.rois}
    for output_format in ("nifti", "nrrd", "npz", "labelmap"):
        folder = tmp_path / output_format
        options = ConversionOptions(output_format=output_format)
        convert_structure_set(structure_set, grid, folder, options)
        masks = read_masks(folder, grid)
        identity = sorted((m.roi.number, m.roi.name, m.roi.color) for m in masks)
        assert identity == [(3, "../Cord", (0, 255, 0)), (7, "PTV 70/35 Gy", (255, 0, 0))]
        for mask in masks:
            assert np.array_equal(mask.array, expected[mask.roi.number]), output_format
        if output_format != "labelmap":
            ptv = next(m for m in masks if m.roi.number == 7)
            assert ptv.roi.interpreted_type == "PTV"


# ----------------------------------------------------------------------------- foreign files


@pytest.mark.parametrize(
    ("axes", "flips"),
    [
        (axes, flips)
        for axes in itertools.permutations(range(3))
        for flips in itertools.product((False, True), repeat=3)
    ],
)
def test_any_axis_order_and_flip_maps_back_exactly(
    tmp_path: Path, axes: tuple[int, ...], flips: tuple[bool, ...]
) -> None:
    series = Series(ORIENTATIONS["oblique"])
    grid = series.grid()
    (array,) = _random_masks(grid.shape, 1, seed=9)
    nib.save(_permuted_nifti(array, series.lps_affine(), axes, flips), tmp_path / "m.nii.gz")
    (mask,) = read_masks(tmp_path / "m.nii.gz", grid)
    assert mask.roi.name == "m"
    _assert_same([mask], [array], grid)


@pytest.mark.parametrize("orientation", ORIENTATIONS.values(), ids=ORIENTATIONS.keys())
def test_nibabel_closest_canonical_maps_back(tmp_path: Path, orientation: tuple) -> None:
    series = Series(orientation)
    grid = series.grid()
    (array,) = _random_masks(grid.shape, 1, seed=10)
    original = _permuted_nifti(array, series.lps_affine(), (2, 1, 0), (False, False, False))
    canonical = nib.as_closest_canonical(original)
    assert nib.aff2axcodes(canonical.affine) == ("R", "A", "S")
    nib.save(canonical, tmp_path / "canonical.nii")
    _assert_same(read_masks(tmp_path / "canonical.nii", grid), [array], grid)


def _sitk_image(array: np.ndarray, series: Series) -> sitk.Image:
    image = sitk.GetImageFromArray(array.astype(np.uint8))  # (slice, row, column) -> (x, y, z)
    image.SetOrigin(tuple(series.first))
    image.SetSpacing((series.pixel_spacing[1], series.pixel_spacing[0], series.gaps[0]))
    image.SetDirection(
        tuple(np.column_stack([series.row_cosine, series.column_cosine, series.normal]).ravel())
    )
    return image


@pytest.mark.parametrize("orientation", ORIENTATIONS.values(), ids=ORIENTATIONS.keys())
@pytest.mark.parametrize("suffix", [".nii.gz", ".nrrd"])
def test_simpleitk_written_masks(tmp_path: Path, orientation: tuple, suffix: str) -> None:
    series = Series(orientation)
    grid = series.grid()
    arrays = _random_masks(grid.shape, 2, seed=11)
    for index, array in enumerate(arrays):
        sitk.WriteImage(_sitk_image(array, series), str(tmp_path / f"s{index}{suffix}"))
    _assert_same(read_masks(tmp_path, grid), arrays, grid)


def test_pynrrd_ras_space_and_detached_header(tmp_path: Path) -> None:
    series = Series(ORIENTATIONS["feet first supine"])
    grid = series.grid()
    (array,) = _random_masks(grid.shape, 1, seed=12)
    lps = series.lps_affine()
    flip = np.diag([-1.0, -1.0, 1.0])
    header = {
        "space": "right-anterior-superior",
        # rows: one per file axis, fastest first = (column, row, slice)
        "space directions": (flip @ lps[:3, [2, 1, 0]]).T,
        "space origin": flip @ lps[:3, 3],
        "kinds": ["domain"] * 3,
    }
    nrrd.write(str(tmp_path / "m.nhdr"), array.astype(np.int16), header, index_order="C")
    assert (tmp_path / "m.raw.gz").is_file() or any(tmp_path.glob("m.*raw*"))
    (mask,) = read_masks(tmp_path / "m.nhdr", grid)
    assert mask.roi.name == "m"
    _assert_same([mask], [array], grid)


def test_slicer_segmentation_with_layers(tmp_path: Path) -> None:
    series = Series(ORIENTATIONS["head first supine"])
    grid = series.grid()
    a, b, c = _random_masks(grid.shape, 3, seed=13)
    b = b & ~a
    layer0 = a.astype(np.uint8) + 2 * b.astype(np.uint8)  # two segments in layer 0
    layer1 = c.astype(np.uint8)  # overlapping segment in layer 1
    lps = series.lps_affine()
    header = {
        "space": "left-posterior-superior",
        "space directions": np.vstack([[np.nan] * 3, lps[:3, [2, 1, 0]].T]),
        "space origin": lps[:3, 3],
        "kinds": ["list", "domain", "domain", "domain"],
        "Segment0_Name": "Liver left",
        "Segment0_Color": "1 0.5 0",
        "Segment0_LabelValue": "1",
        "Segment0_Layer": "0",
        "Segment1_Name": "Tumour",
        "Segment1_Color": "0 0 1",
        "Segment1_LabelValue": "2",
        "Segment1_Layer": "0",
        "Segment2_Name": "Vessels",
        "Segment2_LabelValue": "1",
        "Segment2_Layer": "1",
    }
    data = np.stack([layer0, layer1], axis=-1)  # C order: (slice, row, column, layer)
    nrrd.write(str(tmp_path / "case.seg.nrrd"), data, header, index_order="C")
    masks = read_masks(tmp_path / "case.seg.nrrd", grid)
    assert [(m.roi.number, m.roi.name, m.roi.color) for m in masks] == [
        (1, "Liver left", (255, 128, 0)),
        (2, "Tumour", (0, 0, 255)),
        (3, "Vessels", None),
    ]
    _assert_same(masks, [a, b, c], grid)


def test_single_binary_file_float_zero_one_and_4d(tmp_path: Path) -> None:
    series = Series(ORIENTATIONS["head first prone"])
    grid = series.grid()
    (array,) = _random_masks(grid.shape, 1, seed=14)
    ras = (
        np.diag([-1.0, -1.0, 1.0, 1.0])
        @ series.lps_affine()
        @ np.array([[0, 0, 1, 0], [0, 1, 0, 0], [1, 0, 0, 0], [0, 0, 0, 1]], dtype=float)
    )
    data = array.transpose(2, 1, 0)
    nib.save(nib.Nifti1Image(data.astype(np.float64), ras), tmp_path / "f.nii.gz")
    nib.save(nib.Nifti1Image(data[..., None].astype(np.int32), ras), tmp_path / "four.nii")
    for name in ("f.nii.gz", "four.nii"):
        (mask,) = read_masks(tmp_path / name, grid)
        assert (mask.roi.number, mask.roi.name) == (1, roi_name_of(tmp_path / name))
        _assert_same([mask], [array], grid)


def test_labelmap_tables_parsing(tmp_path: Path) -> None:
    grid = Series(ORIENTATIONS["head first supine"]).grid()
    labels = np.zeros(grid.shape, np.uint16)
    labels[0, :2] = 3
    labels[2, 3:] = 12
    labels[4, 1, 1] = 5  # not in the table
    write_nifti(labels, grid, tmp_path / "seg.nii.gz")
    (tmp_path / "seg.ctbl").write_text(
        "# Color table file seg.ctbl\n"
        "0 Background 0 0 0 0\n"
        "3 Left_lung 10 20 30 255\n"
        "\n"
        "12 Heart muscle 200 0 5 255\n"
        "40 Absent 1 1 1 255\n",
        encoding="utf-8",
    )
    masks = read_masks(tmp_path / "seg.nii.gz", grid)
    assert [(m.roi.number, m.roi.name, m.roi.color) for m in masks] == [
        (3, "Left_lung", (10, 20, 30)),
        (5, "label_5", None),
        (12, "Heart muscle", (200, 0, 5)),
    ]
    _assert_same(masks, [labels == 3, labels == 5, labels == 12], grid)

    # An ITK-SNAP file wins over the .ctbl (its quoted labels keep spaces).
    (tmp_path / "seg.itksnap.txt").write_text(
        '    0     0    0    0        0  0  0    "Clear Label"\n'
        '    3    11   22   33        1  1  1    "Left lung"\n'
        '   12     1    2    3     0.50  1  1    "Heart \\"LV\\""\n',
        encoding="utf-8",
    )
    masks = read_masks(tmp_path / "seg.nii.gz", grid)
    assert [(m.roi.name, m.roi.color) for m in masks] == [
        ("Left lung", (11, 22, 33)),
        ("label_5", None),
        ('Heart \\"LV\\"', (1, 2, 3)),
    ]
    # An explicit table wins over both.
    (tmp_path / "other.txt").write_text("5 Five 1 1 1 255\n", encoding="utf-8")
    masks = read_masks(tmp_path / "seg.nii.gz", grid, color_table=tmp_path / "other.txt")
    assert [m.roi.name for m in masks] == ["label_3", "Five", "label_12"]

    with pytest.raises(InvalidInputError, match=r"missing\.ctbl: colour table not found"):
        read_masks(tmp_path / "seg.nii.gz", grid, color_table=tmp_path / "missing.ctbl")
    (tmp_path / "bad.ctbl").write_text("3 Lung 10 20\n", encoding="utf-8")
    with pytest.raises(InvalidInputError, match=r"bad\.ctbl, line 1"):
        read_masks(tmp_path / "seg.nii.gz", grid, color_table=tmp_path / "bad.ctbl")
    (tmp_path / "bad.ctbl").write_text("3 Lung 10 20 300 255\n", encoding="utf-8")
    with pytest.raises(InvalidInputError, match="outside 0-255"):
        read_masks(tmp_path / "seg.nii.gz", grid, color_table=tmp_path / "bad.ctbl")


def test_float_labelmap_and_negative_labels(tmp_path: Path) -> None:
    grid = Series(ORIENTATIONS["head first supine"]).grid()
    labels = np.zeros(grid.shape, np.float32)
    labels[1] = 2.0
    labels[3, 2] = 7.0
    write_nifti(labels, grid, tmp_path / "f.nii.gz")
    masks = read_masks(tmp_path / "f.nii.gz", grid)
    assert [m.roi.name for m in masks] == ["label_2", "label_7"]
    _assert_same(masks, [labels == 2, labels == 7], grid)
    labels[0, 0, 0] = -1
    write_nifti(labels.astype(np.int16), grid, tmp_path / "neg.nii.gz")
    with pytest.raises(InvalidInputError, match=r"neg\.nii\.gz: holds negative"):
        read_masks(tmp_path / "neg.nii.gz", grid)
    labels[0, 0, 0] = 2.5
    write_nifti(labels, grid, tmp_path / "half.nii.gz")
    with pytest.raises(InvalidInputError, match="non-integer"):
        read_masks(tmp_path / "half.nii.gz", grid)


def test_names_and_colours_override(tmp_path: Path) -> None:
    grid = Series(ORIENTATIONS["head first supine"]).grid()
    arrays = _random_masks(grid.shape, 2, seed=15)
    write_nifti(arrays[0], grid, tmp_path / "a.nii.gz")
    write_nifti(arrays[1], grid, tmp_path / "b.nii.gz")
    masks = read_masks(tmp_path, grid, names=["GTV", "CTV"], colors=[(1, 2, 3), (4, 5, 6)])
    assert [(m.roi.name, m.roi.color) for m in masks] == [("GTV", (1, 2, 3)), ("CTV", (4, 5, 6))]
    _assert_same(masks, arrays, grid)
    with pytest.raises(InvalidInputError, match=r"1 names given for the 2 masks .*'a', 'b'"):
        read_masks(tmp_path, grid, names=["GTV"])
    with pytest.raises(InvalidInputError, match="3 colours"):
        read_masks(tmp_path, grid, colors=[(1, 2, 3)] * 3)
    with pytest.raises(InvalidInputError, match="0-255"):
        read_masks(tmp_path, grid, colors=[(1, 2, 3), (4, 5, 256)])
    with pytest.raises(InvalidInputError, match="given twice"):
        read_masks(tmp_path, grid, names=["GTV", "gtv"])


def test_hostile_file_names(tmp_path: Path) -> None:
    grid = Series(ORIENTATIONS["head first supine"]).grid()
    names = ["PTV 70% [boost]", "Ünï cödé", "x.nii", "-rf", "'; DROP TABLE rois;--"]
    arrays = _random_masks(grid.shape, len(names), seed=16)
    for name, array in zip(names, arrays, strict=True):
        write_nifti(array, grid, tmp_path / f"{name}.nii.gz")
    masks = read_masks(tmp_path, grid, workers=1)
    by_name = {m.roi.name: m for m in masks}
    assert sorted(by_name) == sorted(names)
    for name, array in zip(names, arrays, strict=True):
        assert np.array_equal(by_name[name].array, array)


def test_duplicate_names_in_a_folder(tmp_path: Path) -> None:
    grid = Series(ORIENTATIONS["head first supine"]).grid()
    arrays = _random_masks(grid.shape, 2, seed=17)
    write_nifti(arrays[0], grid, tmp_path / "GTV.nii.gz")
    write_nrrd(arrays[1], grid, tmp_path / "gtv.nrrd")
    with pytest.raises(InvalidInputError, match="both give ROI name"):
        read_masks(tmp_path, grid)


def test_progress_and_image_series_reference(tmp_path: Path) -> None:
    grid = Series(ORIENTATIONS["head first supine"]).grid()
    arrays = _random_masks(grid.shape, 3, seed=18)
    for index, array in enumerate(arrays):
        write_nifti(array, grid, tmp_path / f"m{index}.nii.gz")
    seen: list[str] = []
    masks = read_masks(tmp_path, grid, progress=lambda mask: seen.append(mask.roi.name))
    assert seen == [m.roi.name for m in masks] == ["m0", "m1", "m2"]


# ----------------------------------------------------------------------------- mismatches


def test_mismatched_grids_raise_one_line(tmp_path: Path) -> None:
    series = Series(ORIENTATIONS["head first supine"])
    grid = series.grid()
    (array,) = _random_masks(grid.shape, 1, seed=19)
    write_nifti(array, grid, tmp_path / "m.nii.gz")

    shifted = ImageGrid.from_slices(
        positions_mm=series.positions + np.array([0.45, 0, 0]),  # half a pixel to the side
        orientation=series.orientation,
        pixel_spacing_mm=series.pixel_spacing,
        rows=series.rows,
        columns=series.columns,
    )
    smaller = ImageGrid.from_slices(
        positions_mm=series.positions[:-1],
        orientation=series.orientation,
        pixel_spacing_mm=series.pixel_spacing,
        rows=series.rows,
        columns=series.columns,
    )
    finer = ImageGrid.from_slices(
        positions_mm=series.positions,
        orientation=series.orientation,
        pixel_spacing_mm=(0.8, 1.2),
        rows=series.rows,
        columns=series.columns,
    )
    for other, detail in (
        (shifted, r"0\.45 mm apart"),
        (smaller, r"5x7x9 voxels.*4x7x9 voxels"),
        (finer, r"2\.5x0\.8x1\.3 mm.*2\.5x0\.8x1\.2 mm"),
    ):
        with pytest.raises(GeometryError) as caught:
            read_masks(tmp_path / "m.nii.gz", other)
        message = str(caught.value)
        assert "\n" not in message
        assert str(tmp_path / "m.nii.gz") in message
        assert "--image" in message
        assert "resample" in message
        assert re.search(detail, message), message


def test_tolerance_is_one_micrometre(tmp_path: Path) -> None:
    series = Series(ORIENTATIONS["oblique"])
    grid = series.grid()
    (array,) = _random_masks(grid.shape, 1, seed=20)
    for shift, name in ((2e-4, "close"), (5e-3, "far")):
        lps = series.lps_affine()
        lps[:3, 3] += [shift, 0, 0]
        nib.save(_permuted_nifti(array, lps, (2, 1, 0), (False,) * 3), tmp_path / f"{name}.nii")
    _assert_same(read_masks(tmp_path / "close.nii", grid), [array], grid)
    with pytest.raises(GeometryError, match=r"0\.005 mm apart"):
        read_masks(tmp_path / "far.nii", grid)


def test_nifti_without_geometry(tmp_path: Path) -> None:
    grid = Series(ORIENTATIONS["head first supine"]).grid()
    image = nib.Nifti1Image(np.zeros(grid.shape[::-1], np.uint8), np.eye(4))
    image.set_qform(None, code=0)
    image.set_sform(None, code=0)
    nib.save(image, tmp_path / "nowhere.nii.gz")
    with pytest.raises(GeometryError, match=r"nowhere\.nii\.gz: .*qform and sform"):
        read_masks(tmp_path / "nowhere.nii.gz", grid)
    nrrd.write(str(tmp_path / "plain.nrrd"), np.zeros(grid.shape, np.uint8), index_order="C")
    with pytest.raises(GeometryError, match=r"plain\.nrrd: .*no patient geometry"):
        read_masks(tmp_path / "plain.nrrd", grid)


# ----------------------------------------------------------------------------- bad files


def test_non_binary_per_roi_files(tmp_path: Path) -> None:
    grid = Series(ORIENTATIONS["head first supine"]).grid()
    arrays = _random_masks(grid.shape, 2, seed=21)
    write_nifti(arrays[0], grid, tmp_path / "ok.nii.gz")
    write_nifti(arrays[1].astype(np.uint8) * 2, grid, tmp_path / "twos.nii.gz")
    with pytest.raises(InvalidInputError, match=r"twos\.nii\.gz: holds values from 0 to 2"):
        read_masks(tmp_path, grid)
    (tmp_path / "twos.nii.gz").unlink()
    fractions = np.where(arrays[1], 0.4, 0.0).astype(np.float32)
    write_nifti(fractions, grid, tmp_path / "fractional.nii.gz")
    with pytest.raises(InvalidInputError, match=r"fractional\.nii\.gz: .*threshold"):
        read_masks(tmp_path, grid)
    with pytest.raises(InvalidInputError, match="threshold"):
        read_masks(tmp_path / "fractional.nii.gz", grid)
    write_npz({"f": fractions}, grid, tmp_path / "f.npz")
    with pytest.raises(InvalidInputError, match=r"f\.npz: array 'f' .*threshold"):
        read_masks(tmp_path / "f.npz", grid)


def test_unreadable_files_name_the_file(tmp_path: Path) -> None:
    grid = Series(ORIENTATIONS["head first supine"]).grid()
    (array,) = _random_masks(grid.shape, 1, seed=22)
    good = write_nifti(array, grid, tmp_path / "good.nii.gz")
    payload = gzip.decompress(good.read_bytes())
    truncated = tmp_path / "truncated.nii.gz"
    truncated.write_bytes(gzip.compress(payload[:-40]))
    cut_stream = tmp_path / "cut.nii.gz"
    cut_stream.write_bytes(good.read_bytes()[:-30])
    garbage = tmp_path / "garbage.nrrd"
    garbage.write_bytes(b"\x00\x01 not nrrd at all")
    text = tmp_path / "notes.nii"
    text.write_text("hello")
    npz = tmp_path / "plain.npz"
    np.savez(npz, x=np.zeros(3))
    unknown = tmp_path / "mask.png"
    unknown.write_bytes(b"\x89PNG\r\n\x1a\n")
    for path in (truncated, cut_stream, garbage, text, npz, unknown):
        with pytest.raises(InvalidInputError) as caught:
            read_masks(path, grid)
        assert str(path) in str(caught.value)
        assert "\n" not in str(caught.value)
    with pytest.raises(InvalidInputError, match="no such file"):
        read_masks(tmp_path / "missing.nii.gz", grid)
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "readme.txt").write_text("x")
    with pytest.raises(InvalidInputError, match=r"empty: no mask files"):
        read_masks(empty, grid)


def test_dicom_inputs(tmp_path: Path) -> None:
    grid = ImageGrid.from_explicit(
        origin_mm=(-20.0, -10.0, 5.0), spacing_mm=(2.0, 1.0, 1.0), shape=(4, 16, 20)
    )
    ct = write_ct_series(tmp_path / "ct", grid)
    disc = to_patient(grid, 1, circle_uv((10.0, 8.0), 5.0, n=24))
    rs = write_rtstruct(
        tmp_path / "RS.dcm", [RoiSpec(number=1, name="A", contours=((disc, "CLOSED_PLANAR"),))], ct
    )
    with pytest.raises(InvalidInputError, match=r"RS\.dcm: a DICOM RTSTRUCT, not a segmentation"):
        read_masks(rs, grid)


def test_dicom_seg_round_trip(tmp_path: Path) -> None:
    seg_writer = pytest.importorskip("rtmask.export._seg", reason="SEG writer not available")
    pytest.importorskip("highdicom")
    from rtmask.discovery import read_image_series

    grid = ImageGrid.from_explicit(
        origin_mm=(-20.0, -10.0, 5.0), spacing_mm=(2.0, 1.0, 1.0), shape=(4, 16, 20)
    )
    write_ct_series(tmp_path / "ct", grid)
    series = read_image_series(tmp_path / "ct")
    arrays = _random_masks(grid.shape, 2, seed=23)
    masks = [
        _mask(arrays[0], series.grid, 1, "GTV", (255, 0, 0)),
        _mask(arrays[1], series.grid, 2, "Cord", (0, 255, 0)),
    ]
    seg_writer.write_seg(masks, series, tmp_path / "seg.dcm")
    read = read_masks(tmp_path / "seg.dcm", series, names=["a", "b"])
    assert [m.roi.name for m in read] == ["a", "b"]
    _assert_same(read, arrays, series.grid)
    with pytest.raises(InvalidInputError, match="pass the ImageSeries"):
        read_masks(tmp_path / "seg.dcm", series.grid)


def test_summary_that_is_not_json_warns(tmp_path: Path) -> None:
    grid = Series(ORIENTATIONS["head first supine"]).grid()
    arrays = _random_masks(grid.shape, 2, seed=24)
    write_nifti(arrays[0], grid, tmp_path / "a.nii.gz")
    write_nifti(arrays[1], grid, tmp_path / "b.nii.gz")
    (tmp_path / "summary.json").write_text("{not json")
    with pytest.warns(RtmaskWarning, match="summary.json"):
        masks = read_masks(tmp_path, grid)
    assert [m.roi.name for m in masks] == ["a", "b"]
    (tmp_path / "summary.json").write_text(json.dumps({"something": "else"}))
    assert [m.roi.name for m in read_masks(tmp_path, grid)] == ["a", "b"]


def test_public_api() -> None:
    assert list(rtmask.masks.__all__) == sorted(rtmask.masks.__all__)
    for name in rtmask.masks.__all__:
        assert hasattr(rtmask.masks, name)


# ----------------------------------------------------------------------------- fast inflate


@settings(max_examples=40, deadline=None)
@given(
    data=st.binary(min_size=0, max_size=3000),
    zeros_before=st.integers(0, 5),
    zeros_after=st.integers(0, 5),
    header=st.binary(min_size=0, max_size=400),
)
def test_fast_inflate_matches_gzip(
    data: bytes, zeros_before: int, zeros_after: int, header: bytes
) -> None:
    """rtmask's gzip layout read back byte for byte, checked against Python's gzip."""
    payload = np.frombuffer(
        bytes(zeros_before * CHUNK_BYTES) + data + bytes(zeros_after * CHUNK_BYTES + 7),
        dtype=np.uint8,
    )
    stream = io.BytesIO()
    write_gzip(stream, header, payload)
    blob = stream.getvalue()
    expected = gzip.decompress(blob)
    fast = inflate_rtmask_gzip(blob)
    if fast is not None:
        assert fast.tobytes() == expected
    # A whole, chunk-aligned zero chunk exists (data of any length can shift the trailing
    # zeros off the chunk grid, so one trailing chunk of zeros is not enough).
    if zeros_before or zeros_after >= 2:
        assert fast is not None  # the zero runs are found


def test_fast_inflate_refuses_other_and_damaged_files(tmp_path: Path) -> None:
    big = ImageGrid.from_explicit(origin_mm=(0, 0, 0), spacing_mm=(1, 1, 1), shape=(40, 64, 64))
    array = np.zeros(big.shape, bool)
    array[10:20, 5:30, 7:40] = True
    blob = write_nifti(array, big, tmp_path / "big.nii.gz").read_bytes()
    assert inflate_rtmask_gzip(blob) is not None
    assert inflate_rtmask_gzip(gzip.compress(gzip.decompress(blob))) is None  # plain gzip
    damaged = bytearray(blob)
    damaged[-8] ^= 0xFF  # CRC-32 of the trailer
    assert inflate_rtmask_gzip(bytes(damaged)) is None
    (tmp_path / "damaged.nii.gz").write_bytes(bytes(damaged))
    with pytest.raises(InvalidInputError, match=r"damaged\.nii\.gz: not a readable NIfTI"):
        read_masks(tmp_path / "damaged.nii.gz", big)
    # the same mask, written by Python's gzip: read through the ordinary path
    (tmp_path / "plain.nii.gz").write_bytes(gzip.compress(gzip.decompress(blob)))
    (mask,) = read_masks(tmp_path / "plain.nii.gz", big)
    assert np.array_equal(mask.array, array)


def test_scaled_nifti_values(tmp_path: Path) -> None:
    series = Series(ORIENTATIONS["head first supine"])
    grid = series.grid()
    (array,) = _random_masks(grid.shape, 1, seed=25)
    ras = np.diag([-1.0, -1.0, 1.0, 1.0]) @ series.lps_affine()[:, [2, 1, 0, 3]]
    image = nib.Nifti1Image(array.transpose(2, 1, 0).astype(np.uint8) * 4, ras)
    image.header.set_slope_inter(0.25, 0.0)  # stored 0/4, meaning 0/1
    nib.save(image, tmp_path / "scaled.nii")
    (mask,) = read_masks(tmp_path / "scaled.nii", grid)
    assert np.array_equal(mask.array, array)
