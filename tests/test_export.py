"""Export writers: geometry against hand-computed DICOM values, round trips, labelmaps.

Expected affines are computed here from the DICOM numbers (ImagePositionPatient,
ImageOrientationPatient, PixelSpacing), never through ``ImageGrid.nifti_affine()``; files are
read back with nibabel, SimpleITK, pynrrd and numpy.
"""

from __future__ import annotations

import csv
import gzip
import json
import re
import zlib
from pathlib import Path

import nibabel as nib
import nrrd
import numpy as np
import pytest
import SimpleITK as sitk
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import FFS, HFP, HFS, SAGITTAL, rotated
from rtmask import ImageGrid
from rtmask._errors import GeometryError, GeometryWarning
from rtmask._gzip import crc32_after_zeros, write_gzip
from rtmask.export import (
    LabelmapResult,
    SummaryRow,
    atomic_path,
    write_labelmap,
    write_nifti,
    write_npz,
    write_nrrd,
    write_summary,
)
from rtmask.raster._mask import Mask
from rtmask.rtstruct import ROI

# ----------------------------------------------------------------------------- fixtures


ORIENTATIONS = {
    "head first supine": HFS,
    "feet first supine": FFS,
    "head first prone": HFP,
    "sagittal": SAGITTAL,
    "oblique": rotated(about_x=0.7, about_y=-0.3, about_z=0.4),
}


class Series:
    """DICOM numbers of a small awkward series: non-square, anisotropic, off-origin."""

    rows, columns, n_slices = 7, 9, 5
    pixel_spacing = (0.8, 1.3)  # (between rows, between columns)
    gap = 2.5
    first = np.array([-31.5, 12.25, 104.0])

    def __init__(self, orientation: tuple[float, ...]) -> None:
        self.orientation = orientation
        self.row_cosine = np.asarray(orientation[:3])
        self.column_cosine = np.asarray(orientation[3:])
        self.normal = np.cross(self.row_cosine, self.column_cosine)
        self.positions = self.first + np.outer(np.arange(self.n_slices) * self.gap, self.normal)

    def grid(self) -> ImageGrid:
        shuffled = self.positions[[3, 0, 4, 1, 2]]  # files come in any order
        return ImageGrid.from_slices(
            positions_mm=shuffled,
            orientation=self.orientation,
            pixel_spacing_mm=self.pixel_spacing,
            rows=self.rows,
            columns=self.columns,
        )

    def expected_ras_affine(self) -> np.ndarray:
        """(column, row, slice) -> RAS: DICOM C.7.6.2.1.1 with x and y negated."""
        lps = np.eye(4)
        lps[:3, 0] = self.row_cosine * self.pixel_spacing[1]
        lps[:3, 1] = self.column_cosine * self.pixel_spacing[0]
        lps[:3, 2] = self.normal * self.gap
        lps[:3, 3] = self.first
        return np.diag([-1.0, -1.0, 1.0, 1.0]) @ lps

    def shape(self) -> tuple[int, int, int]:
        return (self.n_slices, self.rows, self.columns)


def _random_mask(shape: tuple[int, int, int], seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).random(shape) < 0.3


def _roi(number: int, name: str, color: tuple[int, int, int] | None = None) -> ROI:
    return ROI(number=number, name=name, color=color)


def _mask(array: np.ndarray, grid: ImageGrid, number: int, name: str) -> Mask:
    return Mask(array=array, grid=grid, roi=_roi(number, name))


def _folder_files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


# ----------------------------------------------------------------------------- NIfTI


@pytest.mark.parametrize("orientation", ORIENTATIONS.values(), ids=ORIENTATIONS.keys())
def test_nifti_layout_and_affine_match_hand_computed_dicom_geometry(
    tmp_path: Path, orientation: tuple[float, ...]
) -> None:
    series = Series(orientation)
    array = _random_mask(series.shape())
    path = write_nifti(array, series.grid(), tmp_path / "mask.nii.gz")

    image = nib.load(path)
    data = np.asanyarray(image.dataobj)
    assert data.dtype == np.uint8
    assert np.array_equal(data, array.transpose(2, 1, 0))
    expected = series.expected_ras_affine()
    assert np.allclose(image.affine, expected, atol=1e-5)
    header = image.header
    assert int(header["qform_code"]) == 1
    assert int(header["sform_code"]) == 1
    assert np.allclose(header.get_qform(), expected, atol=1e-4)
    assert np.allclose(header.get_sform(), expected, atol=1e-5)
    assert header.get_xyzt_units()[0] == "mm"
    assert _folder_files(tmp_path) == ["mask.nii.gz"]


@pytest.mark.parametrize("orientation", ORIENTATIONS.values(), ids=ORIENTATIONS.keys())
def test_simpleitk_reads_dicom_lps_geometry(tmp_path: Path, orientation: tuple[float, ...]) -> None:
    series = Series(orientation)
    array = _random_mask(series.shape(), seed=1)
    path = write_nifti(array, series.grid(), tmp_path / "mask.nii.gz")

    image = sitk.ReadImage(str(path))
    assert image.GetPixelID() == sitk.sitkUInt8
    assert np.allclose(image.GetOrigin(), series.first, atol=1e-4)
    assert np.allclose(image.GetSpacing(), (1.3, 0.8, series.gap), atol=1e-5)
    direction = np.array(image.GetDirection()).reshape(3, 3)
    expected = np.column_stack([series.row_cosine, series.column_cosine, series.normal])
    assert np.allclose(direction, expected, atol=1e-5)
    assert np.array_equal(sitk.GetArrayFromImage(image), array.astype(np.uint8))


def test_nifti_matches_what_simpleitk_writes_for_the_series(tmp_path: Path) -> None:
    series = Series(ORIENTATIONS["oblique"])
    array = _random_mask(series.shape(), seed=2)
    reference = sitk.GetImageFromArray(array.astype(np.uint8))
    reference.SetOrigin(tuple(series.first))
    reference.SetSpacing((1.3, 0.8, series.gap))
    reference.SetDirection(
        tuple(np.column_stack([series.row_cosine, series.column_cosine, series.normal]).ravel())
    )
    sitk.WriteImage(reference, str(tmp_path / "sitk.nii.gz"))
    write_nifti(array, series.grid(), tmp_path / "ours.nii.gz")

    theirs, ours = nib.load(tmp_path / "sitk.nii.gz"), nib.load(tmp_path / "ours.nii.gz")
    assert ours.shape == theirs.shape
    assert np.allclose(ours.affine, theirs.affine, atol=1e-5)
    assert np.array_equal(np.asanyarray(ours.dataobj), np.asanyarray(theirs.dataobj))
    assert ours.header.get_data_dtype() == theirs.header.get_data_dtype()


def test_nifti_uncompressed_and_float(tmp_path: Path) -> None:
    series = Series(ORIENTATIONS["head first supine"])
    fractions = np.random.default_rng(3).random(series.shape())
    fractions[fractions < 0.5] = 0.0
    path = write_nifti(fractions, series.grid(), tmp_path / "fractions.nii")
    image = nib.load(path)
    data = np.asanyarray(image.dataobj)
    assert data.dtype == np.float32
    assert np.array_equal(data, fractions.astype(np.float32).transpose(2, 1, 0))
    assert np.allclose(image.affine, series.expected_ras_affine(), atol=1e-5)
    gz = write_nifti(fractions, series.grid(), tmp_path / "fractions.nii.gz")
    assert np.array_equal(np.asanyarray(nib.load(gz).dataobj), data)


def test_nifti_rejects_bad_input(tmp_path: Path) -> None:
    grid = Series(ORIENTATIONS["sagittal"]).grid()
    with pytest.raises(ValueError, match=r"\.nii"):
        write_nifti(np.zeros(grid.shape, bool), grid, tmp_path / "mask.img")
    with pytest.raises(ValueError, match="shape"):
        write_nifti(np.zeros((1, 2, 3), bool), grid, tmp_path / "mask.nii.gz")
    with pytest.raises(TypeError, match="complex"):
        write_nifti(np.zeros(grid.shape, complex), grid, tmp_path / "mask.nii.gz")
    assert _folder_files(tmp_path) == []


def test_nifti_warns_for_non_uniform_slices(tmp_path: Path) -> None:
    positions = [[0.0, 0.0, z] for z in (0.0, 2.0, 4.0, 9.0)]
    grid = ImageGrid.from_slices(
        positions_mm=positions,
        orientation=(1, 0, 0, 0, 1, 0),
        pixel_spacing_mm=(1.0, 1.0),
        rows=3,
        columns=4,
    )
    with pytest.warns(GeometryWarning, match="not uniform"):
        write_nifti(np.ones(grid.shape, bool), grid, tmp_path / "m.nii.gz")
    assert (tmp_path / "m.nii.gz").exists()


def test_nifti_large_sparse_mask_round_trips(tmp_path: Path) -> None:
    # Several zlib chunks, with zero runs in between, read back by nibabel and SimpleITK.
    grid = ImageGrid.from_explicit(origin_mm=(0, 0, 0), spacing_mm=(3, 1, 1), shape=(20, 64, 96))
    array = np.zeros(grid.shape, bool)
    array[5:9, 10:40, 20:30] = True
    array[15, 63, 95] = True
    path = write_nifti(array, grid, tmp_path / "sparse.nii.gz")
    assert np.array_equal(np.asanyarray(nib.load(path).dataobj), array.transpose(2, 1, 0))
    assert np.array_equal(sitk.GetArrayFromImage(sitk.ReadImage(str(path))), array)


# ----------------------------------------------------------------------------- gzip stream


@settings(max_examples=60, deadline=None)
@given(
    size=st.integers(0, 3000),
    spots=st.lists(st.tuples(st.integers(0, 2999), st.integers(1, 255)), max_size=8),
    header=st.binary(max_size=40),
    chunk=st.sampled_from([16, 64, 256]),
    dtype=st.sampled_from([np.uint8, np.float32]),
)
def test_gzip_stream_is_standard_gzip(  # noqa: PLR0917 - hypothesis arguments
    tmp_path_factory: pytest.TempPathFactory,
    size: int,
    spots: list[tuple[int, int]],
    header: bytes,
    chunk: int,
    dtype: type,
) -> None:
    data = np.zeros(size, dtype=dtype)
    for index, value in spots:
        if index < size:
            data[index] = value
    path = tmp_path_factory.mktemp("gz") / "data.gz"
    with path.open("wb") as stream:
        write_gzip(stream, header, data.reshape(1, 1, -1), chunk_bytes=chunk)
    compressed = path.read_bytes()
    expected = header + data.tobytes()
    assert gzip.decompress(compressed) == expected  # checks CRC-32 and length too
    assert zlib.decompress(compressed, wbits=31) == expected


@settings(max_examples=50, deadline=None)
@given(crc=st.integers(0, 2**32 - 1), length=st.integers(1, 5000), count=st.integers(0, 40))
def test_crc_of_zero_runs(crc: int, length: int, count: int) -> None:
    assert crc32_after_zeros(crc, length, count) == zlib.crc32(bytes(length * count), crc)


# ----------------------------------------------------------------------------- NRRD


@pytest.mark.parametrize("orientation", ORIENTATIONS.values(), ids=ORIENTATIONS.keys())
def test_nrrd_round_trip(tmp_path: Path, orientation: tuple[float, ...]) -> None:
    series = Series(orientation)
    array = _random_mask(series.shape(), seed=4)
    path = write_nrrd(array, series.grid(), tmp_path / "mask.nrrd")

    data, header = nrrd.read(str(path))
    assert np.array_equal(data, array.transpose(2, 1, 0))
    assert header["space"] == "left-posterior-superior"
    assert header["encoding"] == "gzip"
    directions = np.asarray(header["space directions"], dtype=float)
    assert np.allclose(directions[0], series.row_cosine * 1.3)
    assert np.allclose(directions[1], series.column_cosine * 0.8)
    assert np.allclose(directions[2], series.normal * series.gap)
    assert np.allclose(header["space origin"], series.first)

    image = sitk.ReadImage(str(path))
    assert np.allclose(image.GetOrigin(), series.first, atol=1e-6)
    assert np.array_equal(sitk.GetArrayFromImage(image), array.astype(np.uint8))
    assert _folder_files(tmp_path) == ["mask.nrrd"]


# ----------------------------------------------------------------------------- npz


def test_npz_round_trip_keeps_reserved_keys_apart(tmp_path: Path) -> None:
    series = Series(ORIENTATIONS["feet first supine"])
    grid = series.grid()
    binary = _random_mask(series.shape(), seed=5)
    fractions = np.random.default_rng(6).random(series.shape())
    path = write_npz(
        {"PTV": binary, "affine": ~binary, "Lung_frac": fractions}, grid, tmp_path / "m.npz"
    )
    with np.load(path) as archive:
        assert sorted(archive.files) == [
            "affine",
            "roi/Lung_frac",
            "roi/PTV",
            "roi/affine",
            "slice_positions_mm",
        ]
        assert archive["roi/PTV"].dtype == np.bool_
        assert np.array_equal(archive["roi/PTV"], binary)
        assert np.array_equal(archive["roi/affine"], ~binary)
        assert archive["roi/Lung_frac"].dtype == np.float32
        assert np.array_equal(archive["roi/Lung_frac"], fractions.astype(np.float32))
        affine = archive["affine"]
        positions = archive["slice_positions_mm"]
    # affine maps (slice, row, column, 1) to LPS: check against the DICOM formula.
    k, j, i = 3, 6, 8
    expected = series.positions[k] + i * 1.3 * series.row_cosine + j * 0.8 * series.column_cosine
    assert np.allclose(affine @ [k, j, i, 1], [*expected, 1])
    assert np.allclose(positions, series.positions @ series.normal)


@pytest.mark.parametrize("key", ["", ".", "..", "a/b", "a\\b", "a\0b"])
def test_npz_rejects_unsafe_keys(tmp_path: Path, key: str) -> None:
    grid = Series(ORIENTATIONS["sagittal"]).grid()
    with pytest.raises(ValueError, match="invalid"):
        write_npz({key: np.zeros(grid.shape, bool)}, grid, tmp_path / "m.npz")
    assert _folder_files(tmp_path) == []


# ----------------------------------------------------------------------------- labelmap


def _box(shape: tuple[int, int, int], k: slice, j: slice, i: slice) -> np.ndarray:
    array = np.zeros(shape, bool)
    array[k, j, i] = True
    return array


@pytest.fixture
def overlapping() -> tuple[ImageGrid, list[Mask]]:
    grid = Series(ORIENTATIONS["oblique"]).grid()
    shape = grid.shape  # (5, 7, 9)
    body = _box(shape, slice(0, 5), slice(0, 7), slice(0, 8))  # 280 voxels
    lung = _box(shape, slice(1, 4), slice(1, 6), slice(1, 5))  # 60 voxels
    ptv = _box(shape, slice(2, 4), slice(2, 4), slice(3, 7))  # 16 voxels
    outside = _box(shape, slice(0, 1), slice(0, 1), slice(8, 9))  # 1 voxel, outside body
    masks = [
        _mask(body, grid, 1, "Body"),
        _mask(ptv, grid, 3, "PTV"),
        _mask(lung, grid, 7, "Lung"),
        _mask(outside, grid, 9, "Marker"),
    ]
    return grid, masks


def _expected_labels(masks: list[Mask], priority: str) -> np.ndarray:
    """Label per voxel from first principles: a loop over voxels and the masks holding it."""
    shape = masks[0].grid.shape
    labels = np.zeros(shape, np.uint8)
    sizes = [int(m.array.sum()) for m in masks]
    for index in np.ndindex(shape):
        holders = [n for n, m in enumerate(masks) if m.array[index]]
        if not holders:
            continue
        if priority == "order":
            winner = holders[-1]
        else:
            smallest = min(sizes[n] for n in holders)
            winner = [n for n in holders if sizes[n] == smallest][-1]
        labels[index] = winner + 1
    return labels


@pytest.mark.parametrize("priority", ["smallest", "order"])
def test_labelmap_priorities_and_overlaps(
    tmp_path: Path, overlapping: tuple[ImageGrid, list[Mask]], priority: str
) -> None:
    _, masks = overlapping
    result = write_labelmap(masks, tmp_path / "labels.nii.gz", priority=priority)
    assert isinstance(result, LabelmapResult)
    data = np.asanyarray(nib.load(result.path).dataobj)
    assert data.dtype == np.uint8
    expected = _expected_labels(masks, priority)
    assert np.array_equal(data, expected.transpose(2, 1, 0))
    # Overlaps by box intersection: body & ptv 2*2*4, body & lung 3*5*4, ptv & lung 2*2*2.
    assert result.overlaps == ((1, 3, 16), (1, 7, 60), (3, 7, 8))
    assert [e.label for e in result.entries] == [1, 2, 3, 4]
    assert [e.roi_number for e in result.entries] == [1, 3, 7, 9]
    assert [e.voxel_count for e in result.entries] == [
        int(np.count_nonzero(expected == label)) for label in (1, 2, 3, 4)
    ]
    if priority == "smallest":
        assert result.warnings == (
            "ROIs 1 'Body' and 3 'PTV' overlap in 16 voxels; labelled PTV (smallest first)",
            "ROIs 1 'Body' and 7 'Lung' overlap in 60 voxels; labelled Lung (smallest first)",
            "ROIs 3 'PTV' and 7 'Lung' overlap in 8 voxels; labelled PTV (smallest first)",
        )
    else:
        assert result.warnings[2] == (
            "ROIs 3 'PTV' and 7 'Lung' overlap in 8 voxels; labelled Lung (later in list wins)"
        )
    assert np.allclose(
        nib.load(result.path).affine,
        Series(ORIENTATIONS["oblique"]).expected_ras_affine(),
        atol=1e-5,
    )


def _parse_itksnap(path: Path) -> dict[int, tuple[tuple[int, int, int], str]]:
    pattern = re.compile(
        r'^\s*(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s+([0-9.]+)\s+([01])\s+([01])\s+"(.*)"$'
    )
    table = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("#"):
            continue
        match = pattern.match(line)
        assert match, line
        idx, r, g, b = (int(v) for v in match.groups()[:4])
        table[idx] = ((r, g, b), match.group(8))
    return table


def _parse_ctbl(path: Path) -> dict[int, tuple[str, tuple[int, int, int, int]]]:
    table = {}
    lines = path.read_text(encoding="utf-8").splitlines()
    assert lines[0].startswith("# Color table file")
    for line in lines:
        if line.startswith("#"):
            continue
        fields = line.split(" ")
        assert len(fields) == 6, line
        r, g, b, a = (int(v) for v in fields[2:])
        assert all(0 <= v <= 255 for v in (r, g, b, a))
        table[int(fields[0])] = (fields[1], (r, g, b, a))
    return table


def test_labelmap_colour_tables_parse(tmp_path: Path) -> None:
    grid = Series(ORIENTATIONS["head first supine"]).grid()
    masks = [
        Mask(
            array=_box(grid.shape, slice(0, 2), slice(0, 2), slice(0, 2)),
            grid=grid,
            roi=_roi(4, 'Spinal "Cord"\tPRV 5 mm', (10, 20, 30)),
        ),
        Mask(
            array=_box(grid.shape, slice(3, 5), slice(0, 2), slice(0, 2)),
            grid=grid,
            roi=_roi(5, "", None),
        ),
    ]
    result = write_labelmap(masks, tmp_path / "labels.nii.gz")
    itksnap, ctbl = result.color_tables
    assert (itksnap.name, ctbl.name) == ("labels.itksnap.txt", "labels.ctbl")
    snap = _parse_itksnap(itksnap)
    assert snap[0] == ((0, 0, 0), "Clear Label")
    assert snap[1] == ((10, 20, 30), "Spinal 'Cord' PRV 5 mm")
    assert snap[2][1] == "ROI 5"
    slicer = _parse_ctbl(ctbl)
    assert slicer[0] == ("Background", (0, 0, 0, 0))
    assert slicer[1] == ('Spinal_"Cord"_PRV_5_mm', (10, 20, 30, 255))
    assert slicer[2][0] == "ROI_5"
    assert slicer[2][1][:3] == snap[2][0] == result.entries[1].color
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "labels.ctbl",
        "labels.itksnap.txt",
        "labels.nii.gz",
    ]


def test_labelmap_fractional_nrrd_and_many_labels(tmp_path: Path) -> None:
    grid = ImageGrid.from_explicit(origin_mm=(0, 0, 0), spacing_mm=(1, 1, 1), shape=(1, 1, 300))
    masks = []
    for n in range(300):
        array = np.zeros(grid.shape, np.float32)
        array[0, 0, n] = 0.6 if n % 2 else 0.4  # only odd ones reach 0.5
        masks.append(Mask(array=array, grid=grid, roi=_roi(n + 1, f"R{n}")))
    result = write_labelmap(masks, tmp_path / "many.nrrd")
    data, _ = nrrd.read(str(result.path))
    assert data.dtype == np.uint16
    expected = np.where(np.arange(300) % 2 == 1, np.arange(1, 301), 0)
    assert np.array_equal(data[:, 0, 0], expected)
    assert result.overlaps == ()
    assert (tmp_path / "many.ctbl").exists()


def test_labelmap_rejects_bad_input(
    tmp_path: Path, overlapping: tuple[ImageGrid, list[Mask]]
) -> None:
    grid, masks = overlapping
    other = ImageGrid.from_explicit(origin_mm=(0, 0, 0), spacing_mm=(1, 1, 1), shape=grid.shape)
    stranger = Mask(array=np.zeros(grid.shape, bool), grid=other, roi=_roi(99, "X"))
    with pytest.raises(GeometryError, match="ROI 99 'X'"):
        write_labelmap([*masks, stranger], tmp_path / "l.nii.gz")
    with pytest.raises(ValueError, match="priority"):
        write_labelmap(masks, tmp_path / "l.nii.gz", priority="largest")
    with pytest.raises(ValueError, match="no masks"):
        write_labelmap([], tmp_path / "l.nii.gz")
    assert _folder_files(tmp_path) == []


# ----------------------------------------------------------------------------- summary


def test_summary_json_and_csv(tmp_path: Path) -> None:
    rows = [
        SummaryRow(
            roi_number=1,
            name="Body",
            file="Body.nii.gz",
            color=(255, 0, 0),
            interpreted_type="EXTERNAL",
            n_contours=120,
            voxel_count=1234.0,
            volume_cm3=5.5,
            status="written",
        ),
        SummaryRow(
            roi_number=2,
            name='Düse, "x"',
            file=None,
            color=None,
            interpreted_type=None,
            n_contours=1,
            voxel_count=None,
            volume_cm3=None,
            status="no volume",
            warnings=("only POINT contours", "second; note"),
        ),
        SummaryRow(
            roi_number=3,
            name="frac",
            file="frac.nii.gz",
            color=None,
            interpreted_type="ORGAN",
            n_contours=4,
            voxel_count=10.25,
            volume_cm3=float("nan"),
            status="written",
        ),
    ]
    info = {
        "source": tmp_path / "rs.dcm",
        "shape": (200, np.int64(512), 512),
        "spacing_mm": np.array([2.5, 0.977, 0.977]),
        "label": "Plan 1",
    }
    json_path, csv_path = write_summary(
        rows, tmp_path, structure_set=info, volume_convention="voxel count x voxel volume"
    )
    assert (json_path.name, csv_path.name) == ("summary.json", "summary.csv")
    document = json.loads(json_path.read_text(encoding="utf-8"))
    assert document["structure_set"] == {
        "source": str(tmp_path / "rs.dcm"),
        "shape": [200, 512, 512],
        "spacing_mm": [2.5, 0.977, 0.977],
        "label": "Plan 1",
    }
    assert document["volume_convention"] == "voxel count x voxel volume"
    first, second, third = document["rois"]
    assert first == {
        "roi_number": 1,
        "name": "Body",
        "file": "Body.nii.gz",
        "color": [255, 0, 0],
        "interpreted_type": "EXTERNAL",
        "n_contours": 120,
        "voxel_count": 1234,
        "volume_cm3": 5.5,
        "status": "written",
        "warnings": [],
    }
    assert second["voxel_count"] is None
    assert second["warnings"] == ["only POINT contours", "second; note"]
    assert third["volume_cm3"] is None

    with csv_path.open(encoding="utf-8", newline="") as stream:
        table = list(csv.DictReader(stream))
    assert [row["roi_number"] for row in table] == ["1", "2", "3"]
    assert table[0]["color"] == "255,0,0"
    assert table[0]["voxel_count"] == "1234"
    assert table[1]["name"] == 'Düse, "x"'
    assert table[1]["file"] == ""
    assert table[1]["warnings"] == "only POINT contours | second; note"
    assert table[2]["voxel_count"] == "10.25"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["summary.csv", "summary.json"]


def test_summary_row_rejects_unknown_status() -> None:
    with pytest.raises(ValueError, match="status"):
        SummaryRow(
            roi_number=1,
            name="a",
            file=None,
            color=None,
            interpreted_type=None,
            n_contours=0,
            voxel_count=None,
            volume_cm3=None,
            status="done",
        )


# ----------------------------------------------------------------------------- atomic_path


def test_atomic_path_success_leaves_only_the_final_file(tmp_path: Path) -> None:
    final = tmp_path / "PTV 70.5 Gy.nii.gz"
    with atomic_path(final) as temporary:
        assert temporary.parent == tmp_path
        assert temporary.name.startswith(".PTV 70.5 Gy.")
        assert temporary.name.endswith(".tmp.nii.gz")
        temporary.write_bytes(b"new")
        assert not final.exists()
    assert final.read_bytes() == b"new"
    assert _folder_files(tmp_path) == [final.name]


def test_atomic_path_failure_keeps_the_old_file_and_no_temporary(tmp_path: Path) -> None:
    final = tmp_path / "mask.nii.gz"
    final.write_bytes(b"old")

    def fail_halfway() -> None:
        with atomic_path(final) as temporary:
            temporary.write_bytes(b"half")
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        fail_halfway()
    assert final.read_bytes() == b"old"
    assert _folder_files(tmp_path) == ["mask.nii.gz"]

    fresh = tmp_path / "fresh.csv"
    with pytest.raises(KeyboardInterrupt), atomic_path(fresh):
        raise KeyboardInterrupt
    assert _folder_files(tmp_path) == ["mask.nii.gz"]


def test_writer_failure_leaves_nothing(tmp_path: Path) -> None:
    grid = Series(ORIENTATIONS["sagittal"]).grid()

    class Exploding(dict[str, np.ndarray]):
        def items(self):  # type: ignore[no-untyped-def]
            yield "a", np.zeros(grid.shape, bool)
            raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        write_npz(Exploding(), grid, tmp_path / "m.npz")
    assert _folder_files(tmp_path) == []


def test_summary_csv_defuses_formulas_but_json_keeps_names(tmp_path: Path) -> None:
    hostile = '=HYPERLINK("http://x","y")'
    row = SummaryRow(
        roi_number=1,
        name=hostile,
        file="a.nii.gz",
        color=None,
        interpreted_type="ORGAN",
        n_contours=1,
        voxel_count=-0.0,
        volume_cm3=0.0,
        status="written",
    )
    json_path, csv_path = write_summary(
        [row], tmp_path, structure_set={}, volume_convention="voxel count"
    )
    with csv_path.open(newline="", encoding="utf-8") as handle:
        (cells,) = list(csv.DictReader(handle))
    assert cells["name"] == "'" + hostile
    assert json.loads(json_path.read_text(encoding="utf-8"))["rois"][0]["name"] == hostile
