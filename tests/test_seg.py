"""DICOM SEG export and import, checked against decoders that share no code with rtmask.

Every SEG written is decoded again in this file with plain pydicom and numpy: frames are
placed by matching their ImagePositionPatient with the CT files' own positions, and bits
are unpacked here (shift and mask, least significant bit first). highdicom's reader
(which places frames by their source image references) must agree as well, and so must
``read_seg``.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
import pydicom.data
import pytest
from numpy.typing import NDArray

from conftest import orientations
from rtmask import ImageGrid, read_image_series
from rtmask._errors import (
    ContourWarning,
    DicomReadError,
    GeometryError,
    InvalidInputError,
    RtmaskError,
)
from rtmask.discovery import ImageSeries
from rtmask.export._seg import SegWriteReport, segment_label, write_seg
from rtmask.masks._seg import lab_to_rgb, read_seg, read_seg_info
from rtmask.raster import Mask, rasterize, rasterize_all
from rtmask.rtstruct import ROI, read_rtstruct
from rtmask.synthetic import (
    CTSeries,
    RoiSpec,
    circle_uv,
    cylinder_contours,
    ellipsoid_contours,
    sphere_contours,
    write_ct_series,
    write_rtstruct,
)

hd = pytest.importorskip("highdicom")

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"

# Non-square, anisotropic; 37 x 51 = 1887 pixels, not a multiple of 8, so BINARY frames
# are packed across byte boundaries.
SHAPE = (9, 37, 51)
SPACING = (2.5, 0.9, 1.3)


ORIENTATIONS = orientations("HFS", "FFS", "sagittal", "oblique")

NAMES = {
    1: "Body",
    2: "PTV 70\\35 Gy",  # a backslash: the DICOM value separator
    3: "Cord",
    4: "Lens",
}
COLORS = {1: (0, 255, 0), 2: (255, 0, 0), 3: (30, 144, 255), 4: (255, 255, 0)}
TYPES = {1: "EXTERNAL", 2: "PTV", 3: "ORGAN", 4: ""}


@dataclass
class Case:
    ct: CTSeries
    series: ImageSeries
    masks: list[Mask]
    rtstruct: Path


def _grid(orientation: tuple[float, ...]) -> ImageGrid:
    return ImageGrid.from_explicit(
        origin_mm=(-23.4, 41.7, -130.2),
        spacing_mm=SPACING,
        shape=SHAPE,
        orientation=orientation,
    )


def _centre(grid: ImageGrid) -> NDArray[np.float64]:
    middle = [(n - 1) / 2 for n in grid.shape]
    return grid.index_to_patient([middle])[0]


def _write_case(folder: Path, orientation: tuple[float, ...], *, tiny: bool = False) -> Case:
    grid = _grid(orientation)
    ct = write_ct_series(folder / "ct", grid, file_names="shuffled")
    grid = ct.grid
    centre = _centre(grid)
    offset = 6.0 * grid.row_direction
    shapes = {
        1: ellipsoid_contours(grid, centre, (28.0, 14.0, 9.0)),
        2: sphere_contours(grid, centre + offset, 6.5),
        3: cylinder_contours(grid, centre - offset, 3.1, 12.0),
        4: sphere_contours(grid, centre + 2.0 * offset, 2.2),
    }
    if tiny:
        # A polygon between voxel centres: it encloses no voxel centre, an empty mask.
        middle_uv = (np.array(SHAPE[2:0:-1]) - 1) / 2 * np.array(SPACING[2:0:-1])
        uv = circle_uv(middle_uv + np.array(SPACING[2:0:-1]) / 2, 0.2, n=8)
        plane = grid.slice_origins_mm()[4]
        shapes[4] = [
            plane
            + np.outer(uv[:, 0], grid.row_direction)
            + np.outer(uv[:, 1], grid.column_direction)
        ]
    rois = [
        RoiSpec(
            number=number,
            name=NAMES[number],
            contours=tuple((points, "CLOSED_PLANAR") for points in shapes[number]),
            color=COLORS[number],
            interpreted_type=TYPES[number],
        )
        for number in NAMES
    ]
    rtstruct = write_rtstruct(folder / "RS.dcm", rois, ct)
    series = read_image_series(folder / "ct")
    structure_set = read_rtstruct(rtstruct)
    masks = list(rasterize_all(structure_set, series.grid, workers=1))
    return Case(ct=ct, series=series, masks=masks, rtstruct=rtstruct)


# ----------------------------------------------------------------------------- decoders
def _decode(path: Path, ct_files: Sequence[Path]) -> dict[int, NDArray[Any]]:
    """Segment number -> (slices, rows, columns) values, by plain pydicom and numpy.

    Slice ``k`` is ``ct_files[k]``; a frame goes to the CT file whose own
    ImagePositionPatient equals the frame's. Binary values are bool, fractional ones
    value / MaximumFractionalValue (float32).
    """
    ds = pydicom.dcmread(path)
    assert ds.SOPClassUID == "1.2.840.10008.5.1.4.1.1.66.4"
    assert ds.file_meta.TransferSyntaxUID == pydicom.uid.ExplicitVRLittleEndian
    cts = [pydicom.dcmread(f, stop_before_pixels=True) for f in ct_files]
    ct_positions = np.array([[float(v) for v in ct.ImagePositionPatient] for ct in cts])
    shared = ds.SharedFunctionalGroupsSequence[0]
    orientation = [float(v) for v in shared.PlaneOrientationSequence[0].ImageOrientationPatient]
    np.testing.assert_allclose(orientation, [float(v) for v in cts[0].ImageOrientationPatient])
    spacing = [float(v) for v in shared.PixelMeasuresSequence[0].PixelSpacing]
    np.testing.assert_allclose(spacing, [float(v) for v in cts[0].PixelSpacing])
    rows, columns, n_frames = int(ds.Rows), int(ds.Columns), int(ds.NumberOfFrames)
    assert (rows, columns) == (int(cts[0].Rows), int(cts[0].Columns))
    raw = np.frombuffer(ds.PixelData, dtype=np.uint8)
    size = n_frames * rows * columns
    if int(ds.BitsAllocated) == 1:
        bits = (raw[:, None] >> np.arange(8, dtype=np.uint8)) & 1  # LSB first
        frames: NDArray[Any] = bits.reshape(-1)[:size].reshape(n_frames, rows, columns) == 1
    else:
        assert int(ds.BitsAllocated) == 8
        scale = np.float32(ds.MaximumFractionalValue)
        frames = raw[:size].reshape(n_frames, rows, columns) / scale
    result = {
        int(item.SegmentNumber): np.zeros((len(ct_files), rows, columns), frames.dtype)
        for item in ds.SegmentSequence
    }
    for item, frame in zip(ds.PerFrameFunctionalGroupsSequence, frames, strict=True):
        position = np.array([float(v) for v in item.PlanePositionSequence[0].ImagePositionPatient])
        matches = np.flatnonzero(np.linalg.norm(ct_positions - position, axis=1) < 1e-3)
        assert matches.size == 1, f"frame at {position} matches {matches.size} CT slices"
        # One segment: highdicom identifies it in the shared functional groups.
        identification = item.get("SegmentIdentificationSequence") or shared.get(
            "SegmentIdentificationSequence"
        )
        number = int(identification[0].ReferencedSegmentNumber)
        result[number][matches[0]] = frame
    return result


def _highdicom_pixels(path: Path, ct: CTSeries) -> NDArray[np.float64]:
    """``(slices, rows, columns, segments)`` from highdicom's reader, by source image UIDs."""
    seg = hd.seg.segread(path)
    return np.asarray(
        seg.get_pixels_by_source_instance(
            source_sop_instance_uids=list(ct.sop_instance_uids),
            assert_missing_frames_are_empty=True,
            dtype=np.float64,
        )
    )


def _dciodvfy_errors(tool: str, path: Path) -> tuple[set[str], str]:
    run = subprocess.run([tool, str(path)], capture_output=True, text=True, check=False)
    output = run.stdout + run.stderr
    return {line for line in output.splitlines() if line.startswith("Error")}, output


def _dciodvfy(path: Path, source: Path | None = None) -> None:
    """No "Error" line from dciodvfy, except errors the source image already has."""
    tool = shutil.which("dciodvfy")
    if tool is None:
        pytest.skip("dciodvfy is not installed")
    errors, output = _dciodvfy_errors(tool, path)
    inherited = _dciodvfy_errors(tool, source)[0] if source is not None else set()
    assert not errors - inherited, output


# ----------------------------------------------------------------------------- binary
@pytest.fixture(scope="module", params=list(ORIENTATIONS))
def written(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Case, SegWriteReport]:
    folder = tmp_path_factory.mktemp(f"seg_{request.param}")
    case = _write_case(folder, ORIENTATIONS[request.param])
    report = write_seg(case.masks, case.series, folder / "seg.dcm", label="rtmask test")
    return case, report


def test_binary_seg_decodes_to_the_input_masks(written: tuple[Case, SegWriteReport]) -> None:
    case, report = written
    assert [s.roi_number for s in report.segments] == [m.roi.number for m in case.masks]
    assert [s.segment_number for s in report.segments] == list(range(1, len(case.masks) + 1))
    decoded = _decode(report.path, case.ct.files)
    assert sorted(decoded) == [s.segment_number for s in report.segments]
    for segment, mask in zip(report.segments, case.masks, strict=True):
        assert mask.voxel_count > 0
        np.testing.assert_array_equal(decoded[segment.segment_number], mask.array)
    # Empty frames are omitted: one frame per segment and slice it touches.
    frames = sum(int(np.count_nonzero(m.voxels_per_slice)) for m in case.masks)
    assert report.n_frames == frames == int(pydicom.dcmread(report.path).NumberOfFrames)


def test_binary_seg_agrees_with_highdicom(written: tuple[Case, SegWriteReport]) -> None:
    case, report = written
    pixels = _highdicom_pixels(report.path, case.ct)
    for index, mask in enumerate(case.masks):
        np.testing.assert_array_equal(pixels[..., index], mask.array)


def test_read_seg_round_trips_masks_names_colours_and_types(
    written: tuple[Case, SegWriteReport],
) -> None:
    case, report = written
    masks = read_seg(report.path, case.series)
    assert [m.roi.number for m in masks] == [1, 2, 3, 4]
    for mask, original in zip(masks, case.masks, strict=True):
        assert mask.array.dtype == np.bool_
        assert mask.grid.equals(case.series.grid)
        np.testing.assert_array_equal(mask.array, original.array)
        number = original.roi.number
        assert mask.roi.name == NAMES[number].replace("\\", "/")
        assert mask.roi.color == COLORS[number]
        assert mask.roi.interpreted_type == (TYPES[number] or None)


def test_seg_header_identity_and_codes(written: tuple[Case, SegWriteReport]) -> None:
    case, report = written
    ds = pydicom.dcmread(report.path, stop_before_pixels=True)
    assert ds.Modality == "SEG"
    assert ds.SegmentationType == "BINARY"
    assert ds.PatientID == case.ct.patient_id
    assert ds.StudyInstanceUID == case.ct.study_instance_uid
    assert ds.FrameOfReferenceUID == case.ct.frame_of_reference_uid
    assert ds.SOPInstanceUID == report.sop_instance_uid
    assert ds.ContentLabel == "RTMASK TEST"
    assert ds.ReferencedSeriesSequence[0].SeriesInstanceUID == case.ct.series_instance_uid
    referenced = {
        item.ReferencedSOPInstanceUID
        for item in ds.ReferencedSeriesSequence[0].ReferencedInstanceSequence
    }
    assert referenced == set(case.ct.sop_instance_uids)
    by_number = {int(item.SegmentNumber): item for item in ds.SegmentSequence}
    ptv = by_number[2]
    assert ptv.SegmentLabel == "PTV 70/35 Gy"
    assert ptv.SegmentDescription == "PTV 70\\35 Gy"  # the name as written (ST)
    assert (
        ptv.SegmentedPropertyCategoryCodeSequence[0].CodeValue,
        ptv.SegmentedPropertyCategoryCodeSequence[0].CodingSchemeDesignator,
    ) == ("130041", "DCM")
    assert ptv.SegmentedPropertyTypeCodeSequence[0].CodeValue == "228793007"
    assert by_number[3].SegmentedPropertyTypeCodeSequence[0].CodeValue == "91772007"
    assert by_number[4].SegmentedPropertyTypeCodeSequence[0].CodeValue == "85756007"
    assert {item.SegmentAlgorithmType for item in ds.SegmentSequence} == {"SEMIAUTOMATIC"}
    # The colour written is highdicom's CIELab of the ROI colour.
    assert (
        tuple(by_number[2].RecommendedDisplayCIELabValue)
        == hd.color.CIELabColor.from_rgb(255, 0, 0).value
    )
    info = read_seg_info(report.path)
    assert info.referenced_series_uids == (case.ct.series_instance_uid,)
    assert set(info.referenced_sop_instance_uids) == set(case.ct.sop_instance_uids)
    assert info.frame_of_reference_uid == case.ct.frame_of_reference_uid
    assert [s.label for s in info.segments] == ["Body", "PTV 70/35 Gy", "Cord", "Lens"]
    assert info.segmentation_type == "BINARY"


def test_binary_seg_passes_dciodvfy(written: tuple[Case, SegWriteReport]) -> None:
    _dciodvfy(written[1].path)


# ----------------------------------------------------------------------------- fractional
@pytest.mark.parametrize("orientation", ["HFS", "oblique"])
def test_fractional_seg_round_trips_within_one_step(tmp_path: Path, orientation: str) -> None:
    case = _write_case(tmp_path, ORIENTATIONS[orientation])
    structure_set = read_rtstruct(case.rtstruct)
    grid = case.series.grid
    masks = [rasterize(roi, grid, fractional=4) for roi in structure_set.rois[:3]]
    assert all(m.array.dtype == np.float32 for m in masks)
    assert any(np.any((m.array > 0) & (m.array < 1)) for m in masks)
    report = write_seg(masks, case.series, tmp_path / "fractional.dcm")
    assert report.segmentation_type == "FRACTIONAL"
    ds = pydicom.dcmread(report.path, stop_before_pixels=True)
    assert ds.SegmentationFractionalType == "OCCUPANCY"
    assert int(ds.MaximumFractionalValue) == 255
    decoded = _decode(report.path, case.ct.files)
    pixels = _highdicom_pixels(report.path, case.ct)
    back = read_seg(report.path, case.series)
    for index, mask in enumerate(masks):
        np.testing.assert_allclose(decoded[index + 1], mask.array, atol=1 / 255)
        np.testing.assert_allclose(pixels[..., index], mask.array, atol=1 / 255)
        assert back[index].array.dtype == np.float32
        np.testing.assert_allclose(back[index].array, decoded[index + 1], atol=1e-6)
    _dciodvfy(report.path)


# ----------------------------------------------------------------------------- other writers
def test_read_seg_places_frames_by_position_not_order(tmp_path: Path) -> None:
    """A SEG written by highdicom from a reversed, label-map stack still lands right."""
    case = _write_case(tmp_path, ORIENTATIONS["FFS"])
    body, ptv = case.masks[0], case.masks[1]
    labels = np.where(ptv.array, 2, np.where(body.array, 1, 0)).astype(np.uint8)
    headers = [pydicom.dcmread(f, stop_before_pixels=True) for f in case.ct.files]
    descriptions = [
        hd.seg.SegmentDescription(
            segment_number=number,
            segment_label=label,
            segmented_property_category=hd.sr.CodedConcept("85756007", "SCT", "Tissue"),
            segmented_property_type=hd.sr.CodedConcept("85756007", "SCT", "Tissue"),
            algorithm_type="MANUAL",
        )
        for number, label in ((1, "outside"), (2, "inside"))
    ]
    seg = hd.seg.Segmentation(
        source_images=headers[::-1],  # frames given in reverse slice order
        pixel_array=labels[::-1],
        segmentation_type="BINARY",
        segment_descriptions=descriptions,
        series_instance_uid=hd.UID(),
        series_number=5,
        sop_instance_uid=hd.UID(),
        instance_number=1,
        manufacturer="test",
        manufacturer_model_name="test",
        software_versions="1",
        device_serial_number="1",
    )
    seg.save_as(tmp_path / "other.dcm")
    masks = read_seg(tmp_path / "other.dcm", case.series)
    np.testing.assert_array_equal(masks[0].array, body.array & ~ptv.array)
    np.testing.assert_array_equal(masks[1].array, ptv.array)
    assert [m.roi.name for m in masks] == ["outside", "inside"]
    assert [m.roi.color for m in masks] == [None, None]
    assert [m.roi.interpreted_type for m in masks] == [None, None]


def test_read_seg_reads_a_labelmap_seg(tmp_path: Path) -> None:
    case = _write_case(tmp_path, ORIENTATIONS["HFS"])
    cord, ptv = case.masks[2], case.masks[1]
    assert not np.any(cord.array & ptv.array)
    labels = (cord.array * 1 + ptv.array * 2).astype(np.uint8)
    headers = [pydicom.dcmread(f, stop_before_pixels=True) for f in case.ct.files]
    descriptions = [
        hd.seg.SegmentDescription(
            segment_number=number,
            segment_label=label,
            segmented_property_category=hd.sr.CodedConcept("130041", "DCM", "RT Target"),
            segmented_property_type=hd.sr.CodedConcept(code, "SCT", label),
            algorithm_type="MANUAL",
            display_color=hd.color.CIELabColor.from_rgb(*color),
        )
        for number, label, code, color in (
            (1, "Organ", "91772007", (10, 200, 30)),
            (2, "PTV", "228793007", (250, 0, 5)),
        )
    ]
    seg = hd.seg.Segmentation(
        source_images=headers,
        pixel_array=labels,
        segmentation_type="LABELMAP",
        segment_descriptions=descriptions,
        series_instance_uid=hd.UID(),
        series_number=5,
        sop_instance_uid=hd.UID(),
        instance_number=1,
        manufacturer="test",
        manufacturer_model_name="test",
        software_versions="1",
        device_serial_number="1",
    )
    seg.save_as(tmp_path / "labelmap.dcm")
    masks = read_seg(tmp_path / "labelmap.dcm", case.series)
    assert [m.roi.number for m in masks] == [1, 2]
    np.testing.assert_array_equal(masks[0].array, cord.array)
    np.testing.assert_array_equal(masks[1].array, ptv.array)
    assert [m.roi.interpreted_type for m in masks] == ["ORGAN", "PTV"]
    assert [m.roi.color for m in masks] == [(10, 200, 30), (250, 0, 5)]


def _highdicom_seg(headers: list[pydicom.Dataset], pixels: NDArray[Any], **options: Any) -> Any:
    description = hd.seg.SegmentDescription(
        segment_number=1,
        segment_label="Cord",
        segmented_property_category=hd.sr.CodedConcept("91723000", "SCT", "Anatomical Structure"),
        segmented_property_type=hd.sr.CodedConcept("91772007", "SCT", "Organ"),
        algorithm_type="MANUAL",
    )
    return hd.seg.Segmentation(
        source_images=headers,
        pixel_array=pixels,
        segment_descriptions=[description],
        series_instance_uid=hd.UID(),
        series_number=5,
        sop_instance_uid=hd.UID(),
        instance_number=1,
        manufacturer="test",
        manufacturer_model_name="test",
        software_versions="1",
        device_serial_number="1",
        **options,
    )


def test_read_seg_places_frames_smaller_than_the_image(tmp_path: Path) -> None:
    """Frames of 20 x 30 pixels whose origin is pixel (5, 10) of each slice."""
    case = _write_case(tmp_path, ORIENTATIONS["oblique"])
    cord = case.masks[2].array
    grid = case.ct.grid
    rows, columns = slice(5, 25), slice(10, 40)
    assert cord[:, rows, columns].sum() == cord.sum() > 0
    headers = [pydicom.dcmread(f, stop_before_pixels=True) for f in case.ct.files]
    row_mm, column_mm = SPACING[1], SPACING[2]
    positions = []
    for header in headers:
        origin = np.array([float(v) for v in header.ImagePositionPatient])
        corner = origin + 5 * row_mm * grid.column_direction + 10 * column_mm * grid.row_direction
        positions.append(hd.PlanePositionSequence("PATIENT", image_position=corner.tolist()))
    seg = _highdicom_seg(
        headers,
        cord[:, rows, columns].astype(np.uint8),
        segmentation_type="BINARY",
        plane_positions=positions,
        pixel_measures=hd.PixelMeasuresSequence(
            pixel_spacing=[row_mm, column_mm], slice_thickness=SPACING[0]
        ),
        plane_orientation=hd.PlaneOrientationSequence(
            "PATIENT", image_orientation=[float(v) for v in headers[0].ImageOrientationPatient]
        ),
    )
    seg.save_as(tmp_path / "cropped.dcm")
    assert (int(seg.Rows), int(seg.Columns)) == (20, 30)
    (mask,) = read_seg(tmp_path / "cropped.dcm", case.series)
    np.testing.assert_array_equal(mask.array, cord)


def test_read_seg_decodes_an_rle_compressed_fractional_seg(tmp_path: Path) -> None:
    case = _write_case(tmp_path, ORIENTATIONS["HFS"])
    structure_set = read_rtstruct(case.rtstruct)
    fractions = rasterize(structure_set.rois[2], case.series.grid, fractional=3).array
    headers = [pydicom.dcmread(f, stop_before_pixels=True) for f in case.ct.files]
    seg = _highdicom_seg(
        headers,
        fractions,
        segmentation_type="FRACTIONAL",
        fractional_type="OCCUPANCY",
        transfer_syntax_uid=pydicom.uid.RLELossless,
    )
    seg.save_as(tmp_path / "rle.dcm")
    (mask,) = read_seg(tmp_path / "rle.dcm", case.series)
    assert mask.array.dtype == np.float32
    np.testing.assert_allclose(mask.array, fractions, atol=0.5 / 255 + 1e-6)
    assert mask.roi.interpreted_type == "ORGAN"


def test_non_uniform_slices_round_trip(tmp_path: Path) -> None:
    gaps = [2.0, 2.0, 3.5, 2.0, 5.0, 2.0]
    orientation = ORIENTATIONS["FFS"]
    normal = np.cross(orientation[:3], orientation[3:])
    offsets = np.concatenate([[0.0], np.cumsum(gaps)])
    grid = ImageGrid.from_slices(
        positions_mm=np.array([-20.0, 30.0, -100.0]) + np.outer(offsets, normal),
        orientation=orientation,
        pixel_spacing_mm=SPACING[1:],
        rows=SHAPE[1],
        columns=SHAPE[2],
    )
    assert not grid.is_uniform
    ct = write_ct_series(tmp_path / "ct", grid)
    rois = [
        RoiSpec(
            number=7,
            name="Ball",
            contours=tuple(
                (p, "CLOSED_PLANAR") for p in sphere_contours(ct.grid, _centre(ct.grid), 8.0)
            ),
        )
    ]
    write_rtstruct(tmp_path / "RS.dcm", rois, ct)
    series = read_image_series(ct.folder)
    masks = list(rasterize_all(read_rtstruct(tmp_path / "RS.dcm"), series.grid, workers=1))
    assert np.count_nonzero(masks[0].voxels_per_slice) >= 4
    report = write_seg(masks, series, tmp_path / "seg.dcm")
    decoded = _decode(report.path, ct.files)
    np.testing.assert_array_equal(decoded[1], masks[0].array)
    (back,) = read_seg(report.path, series)
    np.testing.assert_array_equal(back.array, masks[0].array)
    _dciodvfy(report.path)


@pytest.mark.parametrize("name", ["liver_1frame.dcm", "liver_expb_1frame.dcm"])
def test_read_seg_reads_a_third_party_seg(tmp_path: Path, name: str) -> None:
    """A frame of a real liver SEG (pydicom's test files; little and big endian)."""
    ds = pydicom.dcmread(pydicom.data.get_testdata_file(name))
    # The test file keeps one frame of pixel data but three per-frame items and no
    # NumberOfFrames: make the header say one frame (the pixels stay as written).
    ds.NumberOfFrames = 1
    ds.PerFrameFunctionalGroupsSequence = ds.PerFrameFunctionalGroupsSequence[:1]
    path = tmp_path / name
    ds.save_as(path)
    shared = ds.SharedFunctionalGroupsSequence[0]
    position = [
        float(v)
        for v in ds.PerFrameFunctionalGroupsSequence[0]
        .PlanePositionSequence[0]
        .ImagePositionPatient
    ]
    spacing = [float(v) for v in shared.PixelMeasuresSequence[0].PixelSpacing]
    orientation = [float(v) for v in shared.PlaneOrientationSequence[0].ImageOrientationPatient]
    assert orientation == [1.0, 0.0, 0.0, 0.0, 1.0, 0.0]
    # Three CT slices around the frame's plane, in the SEG's frame of reference.
    grid = ImageGrid.from_explicit(
        origin_mm=(position[0], position[1], position[2] - 2.5),
        spacing_mm=(2.5, spacing[0], spacing[1]),
        shape=(3, int(ds.Rows), int(ds.Columns)),
    )
    ct = write_ct_series(tmp_path / "ct", grid, frame_of_reference_uid=ds.FrameOfReferenceUID)
    series = read_image_series(ct.folder)
    (mask,) = read_seg(path, series)
    expected = ds.pixel_array.astype(bool)  # pydicom's own decoder
    assert expected.sum() > 1000
    np.testing.assert_array_equal(mask.array[1], expected)
    assert not mask.array[0].any()
    assert not mask.array[2].any()
    assert mask.roi.name == ds.SegmentSequence[0].SegmentLabel


def test_non_ascii_long_names_and_automatic_rois(hfs: Case, tmp_path: Path) -> None:
    name = "Rückenmark µ " + "x" * 70
    roi = ROI(
        number=9,
        name=name,
        interpreted_type="avoidance",
        generation_algorithm="AUTOMATIC",
    )
    mask = Mask(array=hfs.masks[2].array, grid=hfs.series.grid, roi=roi)
    report = write_seg(
        [mask], hfs.series, tmp_path / "seg.dcm", label="Prüfung", content_description="ü" * 50
    )
    ds = pydicom.dcmread(report.path, stop_before_pixels=True)
    assert ds.SpecificCharacterSet == "ISO_IR 192"
    assert ds.ContentLabel == "PRUFUNG"
    segment = ds.SegmentSequence[0]
    assert segment.SegmentLabel == name[:62]  # 64 bytes: two 2-byte characters
    assert segment.SegmentDescription == name
    assert segment.SegmentAlgorithmType == "AUTOMATIC"
    assert "RecommendedDisplayCIELabValue" not in segment
    (back,) = read_seg(report.path, hfs.series)
    assert back.roi.name == name[:62]
    assert back.roi.interpreted_type == "AVOIDANCE"
    assert back.roi.color is None
    _dciodvfy(report.path)


def test_lab_to_rgb_inverts_highdicom_conversion() -> None:
    for rgb in [(0, 0, 0), (255, 255, 255), (255, 0, 0), (0, 255, 0), (0, 0, 255), (12, 99, 201)]:
        lab = hd.color.CIELabColor.from_rgb(*rgb).value
        assert lab_to_rgb(lab) == rgb


def test_segment_label_is_a_valid_long_string() -> None:
    assert segment_label("PTV\\boost", 3) == "PTV/boost"
    assert segment_label("a\tb\nc", 3) == "a b c"
    assert segment_label("   ", 7) == "ROI 7"
    assert segment_label("x" * 100, 1) == "x" * 64
    assert segment_label("µ" * 40, 1) == "µ" * 32  # 64 bytes in UTF-8


# ----------------------------------------------------------------------------- errors
@pytest.fixture(scope="module")
def hfs(tmp_path_factory: pytest.TempPathFactory) -> Case:
    return _write_case(tmp_path_factory.mktemp("hfs"), ORIENTATIONS["HFS"], tiny=True)


def test_empty_mask_is_skipped_with_a_warning(hfs: Case, tmp_path: Path) -> None:
    assert hfs.masks[3].voxel_count == 0
    with pytest.warns(ContourWarning, match="ROI 4 'Lens' left out of the SEG"):
        report = write_seg(hfs.masks, hfs.series, tmp_path / "seg.dcm")
    assert [(s.roi_number, s.roi_name) for s in report.skipped] == [(4, "Lens")]
    assert [s.roi_number for s in report.segments] == [1, 2, 3]
    assert len(read_seg_info(report.path).segments) == 3


def test_only_empty_masks_is_an_error(hfs: Case, tmp_path: Path) -> None:
    with (
        pytest.warns(ContourWarning),
        pytest.raises(InvalidInputError, match="every mask is empty"),
    ):
        write_seg(hfs.masks[3:], hfs.series, tmp_path / "seg.dcm")
    assert not list(tmp_path.iterdir())


def test_grid_mismatch_is_a_geometry_error(hfs: Case, tmp_path: Path) -> None:
    grid = hfs.series.grid
    shifted = ImageGrid(
        shape=grid.shape,
        affine=grid.affine + np.array([[0, 0, 0, 0.5]] * 3 + [[0, 0, 0, 0]]),
        frame_of_reference_uid=grid.frame_of_reference_uid,
    )
    moved = Mask(array=hfs.masks[0].array, grid=shifted, roi=hfs.masks[0].roi)
    with pytest.raises(GeometryError, match=r"ROI 1 'Body'.*rasterise the masks on series\.grid"):
        write_seg([hfs.masks[1], moved], hfs.series, tmp_path / "seg.dcm")
    assert not list(tmp_path.iterdir())


def test_mixed_binary_and_fractional_is_an_error(hfs: Case, tmp_path: Path) -> None:
    fractional = Mask(
        array=hfs.masks[0].array.astype(np.float32), grid=hfs.series.grid, roi=hfs.masks[0].roi
    )
    with pytest.raises(InvalidInputError, match="binary and fractional masks mixed"):
        write_seg([hfs.masks[1], fractional], hfs.series, tmp_path / "seg.dcm")
    with pytest.raises(InvalidInputError, match="no masks"):
        write_seg([], hfs.series, tmp_path / "seg.dcm")


def test_read_seg_rejects_files_that_are_not_seg(hfs: Case, tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match="not a DICOM Segmentation"):
        read_seg(hfs.rtstruct, hfs.series)
    with pytest.raises(InvalidInputError, match="RTSTRUCT object"):
        read_seg_info(hfs.rtstruct)
    text = tmp_path / "notes.txt"
    text.write_text("not DICOM at all\n")
    with pytest.raises(DicomReadError, match=r"notes\.txt"):
        read_seg(text, hfs.series)


def test_read_seg_on_another_series_is_a_geometry_error(hfs: Case, tmp_path: Path) -> None:
    report = write_seg(hfs.masks[:3], hfs.series, tmp_path / "seg.dcm")
    other = _write_case(tmp_path / "sagittal", ORIENTATIONS["sagittal"])
    # Another frame of reference.
    with pytest.raises(GeometryError, match="frame of reference"):
        read_seg(report.path, other.series)
    # Same frame of reference, other orientation / other planes.
    for folder, grid in (
        ("rotated", _grid(ORIENTATIONS["sagittal"])),
        (
            "shifted",
            ImageGrid.from_explicit(
                origin_mm=(-23.4, 41.7, -129.0), spacing_mm=SPACING, shape=SHAPE
            ),
        ),
    ):
        ct = write_ct_series(
            tmp_path / folder, grid, frame_of_reference_uid=hfs.ct.frame_of_reference_uid
        )
        series = read_image_series(ct.folder)
        with pytest.raises(GeometryError, match=r"seg\.dcm: frame 1 ") as error:
            read_seg(report.path, series)
        assert isinstance(error.value, RtmaskError)
        message = str(error.value)
        assert "orientation" in message if folder == "rotated" else "no slice plane" in message


def test_read_seg_masks_roi_is_plain(hfs: Case, tmp_path: Path) -> None:
    report = write_seg(hfs.masks[:2], hfs.series, tmp_path / "seg.dcm")
    masks = read_seg(report.path, hfs.series)
    assert all(isinstance(m.roi, ROI) and not m.roi.contours for m in masks)


# ----------------------------------------------------------------------------- real data
def test_lung1_rtstruct_to_seg_decodes_to_the_masks(tmp_path: Path) -> None:
    folder = DATA / "lung1-001" / "LUNG1-001"
    if not folder.is_dir():
        pytest.skip(f"real test data not found at {folder}")
    series = read_image_series(folder / "image")
    structure_set = read_rtstruct(folder / "mask_rtstruct" / "1-1.dcm")
    masks = list(rasterize_all(structure_set, series.grid))
    report = write_seg(masks, series, tmp_path / "lung1.dcm")
    assert [s.roi_name for s in report.segments] == [m.roi.name for m in masks]
    decoded = _decode(report.path, series.files)
    for segment, mask in zip(report.segments, masks, strict=True):
        np.testing.assert_array_equal(decoded[segment.segment_number], mask.array)
    back = read_seg(report.path, series)
    assert [m.roi.name for m in back] == [m.roi.name for m in masks]
    for mask, original in zip(back, masks, strict=True):
        np.testing.assert_array_equal(mask.array, original.array)
        assert mask.roi.color == original.roi.color
    # The CT lacks DeidentificationMethod though PatientIdentityRemoved is YES; the SEG
    # copies the patient module, so only errors the CT does not have count.
    _dciodvfy(report.path, source=series.files[0])
