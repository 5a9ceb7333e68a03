"""Discovery: scanning folder trees, grouping series, skipping files, linking RT objects.

The DICOM files are written here with plain pydicom; expected values come from the
numbers they were written with (positions, UIDs) or from reading the files with pydicom.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence as DicomSequence
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

import rtmask.discovery
from conftest import OBLIQUE_AS_WRITTEN
from rtmask._errors import DicomReadError, GeometryError, InvalidInputError, SeriesNotFoundError
from rtmask.discovery import (
    ImageSeries,
    Inventory,
    SeriesLink,
    contours_on_slices,
    link_image_series,
    read_image_series,
    scan,
)

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
needs_data = pytest.mark.skipif(not DATA.is_dir(), reason="../shared/data (real DICOM) absent")

CT_IMAGE = "1.2.840.10008.5.1.4.1.1.2"
ENHANCED_CT = "1.2.840.10008.5.1.4.1.1.2.1"
RTSTRUCT = "1.2.840.10008.5.1.4.1.1.481.3"
RTDOSE = "1.2.840.10008.5.1.4.1.1.481.2"
RTPLAN = "1.2.840.10008.5.1.4.1.1.481.5"
BASIC_TEXT_SR = "1.2.840.10008.5.1.4.1.1.88.11"
DICOMDIR = "1.2.840.10008.1.3.10"

OBLIQUE = OBLIQUE_AS_WRITTEN  # written to the files as a scanner would, not orthonormal


# ---------------------------------------------------------------------------- writers
def _unit_orientation(orientation: Sequence[float]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    values = np.asarray(orientation, dtype=float)
    row = values[:3] / np.linalg.norm(values[:3])
    column = values[3:] - (values[3:] @ row) * row
    column /= np.linalg.norm(column)
    return row, column, np.cross(row, column)


def _save(dataset: Dataset, sop_class: str, path: Path) -> None:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = sop_class
    meta.MediaStorageSOPInstanceUID = dataset.get("SOPInstanceUID", generate_uid())
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    dataset.file_meta = meta
    path.parent.mkdir(parents=True, exist_ok=True)
    dataset.save_as(path, enforce_file_format=True)


def _identity(dataset: Dataset, *, patient_id: str, study_uid: str, modality: str) -> None:
    dataset.PatientID = patient_id
    dataset.PatientName = f"Test^{patient_id}"
    dataset.StudyInstanceUID = study_uid
    dataset.StudyDate = "20240131"
    dataset.Modality = modality


def write_ct_series(
    folder: Path,
    *,
    n_slices: int = 4,
    rows: int = 5,
    columns: int = 7,
    pixel_spacing: tuple[float, float] = (0.8, 1.3),
    slice_spacing: float = 2.5,
    orientation: Sequence[float] = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0),
    origin: Sequence[float] = (-10.0, 20.0, -30.0),
    offsets_mm: Sequence[float] | None = None,
    series_uid: str | None = None,
    study_uid: str = "1.2.3.4.1",
    frame_uid: str | None = "1.2.3.4.9",
    patient_id: str = "PAT1",
    names: Sequence[str] | None = None,
    series_number: int = 1,
) -> tuple[str, list[tuple[Path, str, np.ndarray]]]:
    """Write single-frame CT slices; returns the series UID and (path, SOP UID, position)."""
    series_uid = series_uid or generate_uid()
    row, column, normal = _unit_orientation(orientation)
    offsets = (
        list(offsets_mm) if offsets_mm is not None else [k * slice_spacing for k in range(n_slices)]
    )
    written = []
    for index, offset in enumerate(offsets):
        position = np.asarray(origin, dtype=float) + offset * normal
        ds = Dataset()
        _identity(ds, patient_id=patient_id, study_uid=study_uid, modality="CT")
        ds.SOPClassUID = CT_IMAGE
        ds.SOPInstanceUID = generate_uid()
        ds.SeriesInstanceUID = series_uid
        ds.SeriesNumber = series_number
        ds.SeriesDescription = "test series"
        ds.PatientPosition = "HFS"
        if frame_uid is not None:
            ds.FrameOfReferenceUID = frame_uid
        ds.ImagePositionPatient = [round(float(v), 6) for v in position]
        ds.ImageOrientationPatient = [round(float(v), 6) for v in (*row, *column)]
        ds.PixelSpacing = list(pixel_spacing)
        ds.InstanceNumber = index + 1
        ds.Rows, ds.Columns = rows, columns
        ds.SamplesPerPixel = 1
        ds.PhotometricInterpretation = "MONOCHROME2"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
        ds.PixelData = np.zeros((rows, columns), dtype=np.uint16).tobytes()
        name = names[index] if names is not None else f"CT{index:03d}.dcm"
        path = folder / name
        _save(ds, CT_IMAGE, path)
        written.append((path, str(ds.SOPInstanceUID), position))
    return series_uid, written


def write_rtstruct(
    path: Path,
    *,
    contours: Sequence[np.ndarray],
    image_uids: Sequence[str | None] = (),
    series_uid: str | None = None,
    frame_uid: str | None = "1.2.3.4.9",
    patient_id: str = "PAT1",
    study_uid: str = "1.2.3.4.1",
    contour_images: bool = True,
    geometric_types: Sequence[str] | None = None,
) -> str:
    """Write an RTSTRUCT whose ROI 1 'Body' (ORGAN) holds ``contours``; returns its SOP UID."""
    ds = Dataset()
    _identity(ds, patient_id=patient_id, study_uid=study_uid, modality="RTSTRUCT")
    ds.SOPClassUID = RTSTRUCT
    ds.SOPInstanceUID = generate_uid()
    ds.SeriesInstanceUID = generate_uid()
    ds.StructureSetLabel = "TestSet"
    frame = Dataset()
    if frame_uid is not None:
        frame.FrameOfReferenceUID = frame_uid
    if series_uid is not None:
        series = Dataset()
        series.SeriesInstanceUID = series_uid
        if contour_images:
            series.ContourImageSequence = DicomSequence(
                [_image_item(uid) for uid in image_uids if uid is not None]
            )
        study = Dataset()
        study.ReferencedSOPInstanceUID = study_uid
        study.RTReferencedSeriesSequence = DicomSequence([series])
        frame.RTReferencedStudySequence = DicomSequence([study])
    ds.ReferencedFrameOfReferenceSequence = DicomSequence([frame])
    roi = Dataset()
    roi.ROINumber = 1
    roi.ROIName = "Body"
    if frame_uid is not None:
        roi.ReferencedFrameOfReferenceUID = frame_uid
    ds.StructureSetROISequence = DicomSequence([roi])
    items = []
    for index, points in enumerate(contours):
        item = Dataset()
        item.ContourGeometricType = geometric_types[index] if geometric_types else "CLOSED_PLANAR"
        item.NumberOfContourPoints = len(points)
        item.ContourData = [f"{v:.6g}" for v in np.asarray(points).reshape(-1)]
        uid = image_uids[index] if index < len(image_uids) else None
        if contour_images and uid is not None:
            item.ContourImageSequence = DicomSequence([_image_item(uid)])
        items.append(item)
    roi_contour = Dataset()
    roi_contour.ReferencedROINumber = 1
    roi_contour.ROIDisplayColor = [255, 128, 0]
    roi_contour.ContourSequence = DicomSequence(items)
    ds.ROIContourSequence = DicomSequence([roi_contour])
    observation = Dataset()
    observation.ObservationNumber = 1
    observation.ReferencedROINumber = 1
    observation.RTROIInterpretedType = "ORGAN"
    ds.RTROIObservationsSequence = DicomSequence([observation])
    _save(ds, RTSTRUCT, path)
    return str(ds.SOPInstanceUID)


def _image_item(uid: str) -> Dataset:
    item = Dataset()
    item.ReferencedSOPClassUID = CT_IMAGE
    item.ReferencedSOPInstanceUID = uid
    return item


def square(centre: Sequence[float], half: float = 1.0) -> np.ndarray:
    """An axial square around ``centre`` (x, y, z), (4, 3)."""
    x, y, z = centre
    return np.array(
        [
            [x - half, y - half, z],
            [x + half, y - half, z],
            [x + half, y + half, z],
            [x - half, y + half, z],
        ]
    )


def _plane_contours(written: list[tuple[Path, str, np.ndarray]]) -> list[np.ndarray]:
    """One small square inside the image on each written slice."""
    return [square(position + np.array([2.0, 2.0, 0.0])) for _, _, position in written]


# ---------------------------------------------------------------------------- API
def test_public_api_is_sorted_and_complete() -> None:
    names = rtmask.discovery.__all__
    assert list(names) == sorted(names)
    for name in names:
        assert hasattr(rtmask.discovery, name)


# ---------------------------------------------------------------------------- grouping
def test_groups_series_and_sorts_slices_along_the_normal(tmp_path: Path) -> None:
    # Oblique, non-square, anisotropic, off-origin; file names without extension whose
    # alphabetical order is neither slice order nor its reverse.
    names = ["b", "d", "a", "c", "e"]
    uid_a, written_a = write_ct_series(
        tmp_path / "mixed",
        n_slices=5,
        rows=6,
        columns=9,
        orientation=OBLIQUE,
        pixel_spacing=(0.7, 1.1),
        slice_spacing=-3.0,
        origin=(12.5, -40.0, 77.0),
        names=names,
    )
    uid_b, _ = write_ct_series(
        tmp_path / "mixed",
        n_slices=3,
        names=["x1", "x2", "x3"],
        study_uid="1.2.3.4.2",
        series_number=2,
    )
    inventory = scan(tmp_path)

    assert isinstance(inventory, Inventory)
    assert inventory.skipped == ()
    assert inventory.n_files == 8
    by_uid = {s.series_instance_uid: s for s in inventory.image_series}
    assert set(by_uid) == {uid_a, uid_b}
    series = by_uid[uid_a]
    _, _, normal = _unit_orientation(OBLIQUE)
    expected = sorted(written_a, key=lambda item: float(item[2] @ normal))
    assert series.files == tuple(path for path, _, _ in expected)
    assert series.sop_instance_uids == tuple(uid for _, uid, _ in expected)
    assert series.grid.shape == (5, 6, 9)
    assert series.grid.spacing_mm == pytest.approx((3.0, 0.7, 1.1), abs=1e-4)
    assert np.allclose(series.grid.origin_mm, expected[0][2], atol=1e-4)
    assert np.all(np.diff(series.grid.slice_positions_mm) > 0)
    assert series.modality == "CT"
    assert series.patient_id == "PAT1"
    assert series.frame_of_reference_uid == "1.2.3.4.9"
    assert series.patient_position == "HFS"
    assert series.warnings == ()
    assert series.folder == tmp_path / "mixed"
    assert by_uid[uid_b].n_slices == 3


def test_a_file_path_list_and_progress(tmp_path: Path) -> None:
    _, written = write_ct_series(tmp_path, n_slices=3)
    calls: list[tuple[int, int]] = []
    inventory = scan([path for path, _, _ in written], progress=lambda d, t: calls.append((d, t)))
    assert calls == [(1, 3), (2, 3), (3, 3)]
    assert inventory.image_series[0].n_slices == 3


def test_missing_path_raises(tmp_path: Path) -> None:
    with pytest.raises(DicomReadError, match="no such file"):
        scan(tmp_path / "nowhere")


def test_missing_slices_are_reported(tmp_path: Path) -> None:
    write_ct_series(tmp_path, offsets_mm=[0.0, 2.0, 4.0, 10.0, 12.0])
    (series,) = scan(tmp_path).image_series
    assert series.n_slices == 5
    assert not series.grid.is_uniform
    assert any("missing" in w for w in series.warnings)


# ---------------------------------------------------------------------------- skipping
def test_non_dicom_truncated_and_dicomdir_files_are_skipped(tmp_path: Path) -> None:
    uid, written = write_ct_series(tmp_path / "ct", n_slices=3)
    (tmp_path / "notes.txt").write_text("not DICOM at all\n")
    (tmp_path / "blob").write_bytes(bytes(range(256)) * 8)
    (tmp_path / "empty").write_bytes(b"")
    data = written[0][0].read_bytes()
    (tmp_path / "cut_header").write_bytes(data[:300])
    (tmp_path / "cut_pixels").write_bytes(data[:-20])
    dicomdir = Dataset()
    dicomdir.FileSetID = "TEST"
    dicomdir.DirectoryRecordSequence = DicomSequence([])
    _save(dicomdir, DICOMDIR, tmp_path / "DICOMDIR")

    inventory = scan(tmp_path)

    (series,) = inventory.image_series
    assert series.series_instance_uid == uid
    assert series.n_slices == 3
    reasons = {s.path.name: s for s in inventory.skipped}
    assert set(reasons) == {"notes.txt", "blob", "empty", "cut_header", "cut_pixels", "DICOMDIR"}
    assert reasons["notes.txt"].kind == "not_dicom"
    assert reasons["blob"].kind == "not_dicom"
    assert reasons["empty"].reason == "empty file"
    assert reasons["cut_header"].kind == "unreadable"
    assert "truncated" in reasons["cut_header"].reason
    assert reasons["cut_pixels"].kind == "truncated"
    assert str(len(data) - 20) in reasons["cut_pixels"].reason
    assert reasons["DICOMDIR"].kind == "dicomdir"
    assert reasons["DICOMDIR"].reason == "DICOMDIR index (the images it lists are read directly)"
    for skipped in inventory.skipped:
        assert "\n" not in skipped.reason
        assert str(skipped.path) not in skipped.reason


def test_hidden_files_and_folders_are_ignored(tmp_path: Path) -> None:
    write_ct_series(tmp_path, n_slices=2)
    write_ct_series(tmp_path / ".cache", n_slices=2)
    (tmp_path / ".DS_Store").write_bytes(b"\x00\x00\x00\x01Bud1")
    inventory = scan(tmp_path)
    assert inventory.n_files == 2
    assert inventory.skipped == ()


def test_duplicate_files_are_kept_once(tmp_path: Path) -> None:
    _, written = write_ct_series(tmp_path / "series", n_slices=3)
    copy = tmp_path / "aa_copy" / "again.dcm"
    copy.parent.mkdir()
    copy.write_bytes(written[1][0].read_bytes())
    inventory = scan(tmp_path)
    (series,) = inventory.image_series
    assert series.n_slices == 3
    # The copy outside the series folder is the one reported, whatever the path order.
    assert set(series.files) == {path for path, _, _ in written}
    (skipped,) = inventory.skipped
    assert skipped.path == copy
    assert skipped.kind == "duplicate"
    assert written[1][1] in skipped.reason


def test_series_mixing_geometries_keeps_the_largest_group(tmp_path: Path) -> None:
    uid, _ = write_ct_series(tmp_path, n_slices=4)
    write_ct_series(
        tmp_path,
        n_slices=1,
        rows=8,
        columns=8,
        series_uid=uid,
        orientation=(1.0, 0.0, 0.0, 0.0, 0.0, -1.0),
        names=["scout"],
    )
    inventory = scan(tmp_path)
    (series,) = inventory.image_series
    assert series.n_slices == 4
    (skipped,) = inventory.skipped
    assert skipped.path.name == "scout"
    assert skipped.kind == "mixed_geometry"
    assert "different geometry" in skipped.reason


def test_series_with_two_images_on_one_plane_is_skipped(tmp_path: Path) -> None:
    write_ct_series(tmp_path, offsets_mm=[0.0, 2.0, 2.0])
    inventory = scan(tmp_path)
    assert inventory.image_series == ()
    assert {s.kind for s in inventory.skipped} == {"bad_geometry"}
    assert len(inventory.skipped) == 3
    with pytest.raises(GeometryError, match="same plane"):
        read_image_series(tmp_path)


def test_multiframe_and_unsupported_objects_are_skipped(tmp_path: Path) -> None:
    enhanced = Dataset()
    _identity(enhanced, patient_id="PAT1", study_uid="1.2.3.4.1", modality="CT")
    enhanced.SOPClassUID = ENHANCED_CT
    enhanced.SOPInstanceUID = generate_uid()
    enhanced.SeriesInstanceUID = generate_uid()
    enhanced.NumberOfFrames = 2
    enhanced.Rows, enhanced.Columns = 4, 4
    enhanced.SamplesPerPixel, enhanced.BitsAllocated = 1, 16
    enhanced.PixelData = bytes(2 * 4 * 4 * 2)
    _save(enhanced, ENHANCED_CT, tmp_path / "enhanced")
    report = Dataset()
    _identity(report, patient_id="PAT1", study_uid="1.2.3.4.1", modality="SR")
    report.SOPClassUID = BASIC_TEXT_SR
    report.SOPInstanceUID = generate_uid()
    _save(report, BASIC_TEXT_SR, tmp_path / "report")

    inventory = scan(tmp_path)

    assert inventory.is_empty
    reasons = {s.path.name: s for s in inventory.skipped}
    assert reasons["enhanced"].kind == "multiframe"
    assert "not supported" in reasons["enhanced"].reason
    assert reasons["report"].kind == "unsupported"
    assert "Basic Text SR" in reasons["report"].reason


# ---------------------------------------------------------------------------- read_image_series
def test_read_image_series_picks_the_only_series(tmp_path: Path) -> None:
    uid, written = write_ct_series(tmp_path / "ct", n_slices=3)
    (tmp_path / "ct" / "readme.txt").write_text("hello")
    series = read_image_series(tmp_path / "ct")
    assert isinstance(series, ImageSeries)
    assert series.series_instance_uid == uid
    assert set(series.files) == {path for path, _, _ in written}


def test_read_image_series_with_several_series_lists_them(tmp_path: Path) -> None:
    uid_a, _ = write_ct_series(tmp_path / "a", n_slices=2)
    uid_b, _ = write_ct_series(tmp_path / "b", n_slices=3)
    with pytest.raises(InvalidInputError) as caught:
        read_image_series(tmp_path)
    assert uid_a in str(caught.value)
    assert uid_b in str(caught.value)
    assert read_image_series(tmp_path, series_instance_uid=uid_b).n_slices == 3


def test_read_image_series_without_images(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("nothing here")
    with pytest.raises(SeriesNotFoundError, match="no image series"):
        read_image_series(tmp_path)


# ---------------------------------------------------------------------------- RT objects
def test_rtstruct_headers_and_first_vertices(tmp_path: Path) -> None:
    uid, written = write_ct_series(tmp_path / "ct", n_slices=3)
    contours = _plane_contours(written)
    image_uids = [sop for _, sop, _ in written]
    sop = write_rtstruct(tmp_path / "rs", contours=contours, image_uids=image_uids, series_uid=uid)
    inventory = scan(tmp_path)
    (structure_set,) = inventory.structure_sets
    assert structure_set.modality == "RTSTRUCT"
    assert structure_set.sop_instance_uid == sop
    assert structure_set.sop_class_uid == RTSTRUCT
    assert structure_set.label == "TestSet"
    assert structure_set.frame_of_reference_uid == "1.2.3.4.9"
    assert structure_set.referenced_series_uids == (uid,)
    assert set(structure_set.referenced_sop_instance_uids) == set(image_uids)
    expected = np.array([c[0] for c in contours])
    assert np.allclose(structure_set.contour_plane_points_mm, expected, atol=1e-4)
    assert not structure_set.contour_plane_points_mm.flags.writeable
    assert inventory.doses == ()
    assert inventory.plans == ()


def test_contours_on_slices_counts_planes_and_field_of_view(tmp_path: Path) -> None:
    _, written = write_ct_series(
        tmp_path,
        n_slices=3,
        orientation=OBLIQUE,
        rows=10,
        columns=10,
        pixel_spacing=(1.0, 1.0),
        slice_spacing=2.0,
        origin=(0, 0, 0),
    )
    (series,) = scan(tmp_path).image_series
    row, column, normal = _unit_orientation(OBLIQUE)
    inside = [position + 4 * row + 4 * column for _, _, position in written]
    points = np.array(
        [
            inside[0],  # on slice 0
            inside[1] + 0.3 * normal,  # 0.3 mm off slice 1: within 0.5 mm
            inside[1] + 1.0 * normal,  # between slices
            inside[2] + 50.0 * row,  # on slice 2 but far outside the image
            inside[2] + 8.0 * normal,  # beyond the last slice
        ]
    )
    assert contours_on_slices(points, series.grid) == 2
    assert contours_on_slices(points[:0], series.grid) == 0


# ---------------------------------------------------------------------------- linking
def _linked_case(tmp_path: Path, **rtstruct_options: object) -> tuple[Inventory, str, str]:
    """Two series in one frame of reference and one RTSTRUCT drawn on the first."""
    uid, written = write_ct_series(tmp_path / "ct", n_slices=4)
    other_uid, _ = write_ct_series(
        tmp_path / "other", n_slices=9, offsets_mm=[1.25 + 2.5 * k for k in range(-2, 7)]
    )
    options: dict[str, object] = {
        "contours": _plane_contours(written)[1:3],
        "image_uids": [sop for _, sop, _ in written][1:3],
        "series_uid": uid,
    }
    options.update(rtstruct_options)
    write_rtstruct(tmp_path / "rs.dcm", **options)  # type: ignore[arg-type]
    return scan(tmp_path), uid, other_uid


def _linked_uid(link: SeriesLink) -> str | None:
    return link.series.series_instance_uid if link.series is not None else None


def test_link_by_series_uid(tmp_path: Path) -> None:
    inventory, uid, _ = _linked_case(tmp_path)
    link = link_image_series(inventory.structure_sets[0], inventory.image_series)
    assert link.method == "series_uid"
    assert _linked_uid(link) == uid
    assert link.warnings == ()
    assert uid in link.message


def test_link_by_instance_uids(tmp_path: Path) -> None:
    inventory, uid, _ = _linked_case(tmp_path, series_uid=None)
    (structure_set,) = inventory.structure_sets
    assert structure_set.referenced_series_uids == ()
    link = link_image_series(structure_set, inventory.image_series)
    assert link.method == "instance_uids"
    assert _linked_uid(link) == uid
    assert "2 of 2" in link.message


def test_link_by_frame_of_reference_prefers_the_series_holding_the_planes(
    tmp_path: Path,
) -> None:
    # Series UID and image references removed (anonymised); the other series in the same
    # frame of reference has more slices but none on the contour planes.
    inventory, uid, other_uid = _linked_case(tmp_path, series_uid=None, image_uids=())
    (structure_set,) = inventory.structure_sets
    assert structure_set.referenced_sop_instance_uids == ()
    link = link_image_series(structure_set, inventory.image_series)
    assert link.method == "frame_of_reference"
    assert _linked_uid(link) == uid
    assert "linked by frame of reference 1.2.3.4.9" in link.message
    assert "2 of 2 contours" in link.message
    only_other = [s for s in inventory.image_series if s.series_instance_uid == other_uid]
    fallback = link_image_series(structure_set, only_other)
    assert fallback.method == "frame_of_reference"
    assert any("0%" in w for w in fallback.warnings)


def test_link_referenced_series_missing_falls_back_to_frame_of_reference(
    tmp_path: Path,
) -> None:
    inventory, uid, _ = _linked_case(tmp_path, series_uid="9.9.9.9", image_uids=())
    link = link_image_series(inventory.structure_sets[0], inventory.image_series)
    assert link.method == "frame_of_reference"
    assert _linked_uid(link) == uid
    assert "referenced series 9.9.9.9 not found" in link.message


def test_link_by_geometry_is_a_guess(tmp_path: Path) -> None:
    inventory, uid, _ = _linked_case(tmp_path, series_uid=None, image_uids=(), frame_uid="5.5.5.5")
    link = link_image_series(inventory.structure_sets[0], inventory.image_series)
    assert link.method == "geometry"
    assert _linked_uid(link) == uid
    assert "guess" in link.message
    assert "give the image series it was made on" in link.message
    assert "--" not in link.message  # the library names no command-line option


def test_no_link_tells_what_to_do(tmp_path: Path) -> None:
    inventory, _, _ = _linked_case(
        tmp_path,
        series_uid="9.9.9.9",
        image_uids=(),
        frame_uid="5.5.5.5",
        patient_id="SOMEONE_ELSE",
    )
    link = link_image_series(inventory.structure_sets[0], inventory.image_series)
    assert link.method == "none"
    assert link.series is None
    assert not link.is_linked
    assert "9.9.9.9" in link.message
    assert "give the image series it was made on" in link.message
    assert "\n" not in link.message


def _write_plan_and_dose(tmp_path: Path, structure_set_uid: str, frame_uid: str) -> None:
    plan = Dataset()
    _identity(plan, patient_id="PAT1", study_uid="1.2.3.4.1", modality="RTPLAN")
    plan.SOPClassUID = RTPLAN
    plan.SOPInstanceUID = generate_uid()
    plan.SeriesInstanceUID = generate_uid()
    plan.FrameOfReferenceUID = frame_uid
    plan.RTPlanLabel = "Plan1"
    reference = Dataset()
    reference.ReferencedSOPClassUID = RTSTRUCT
    reference.ReferencedSOPInstanceUID = structure_set_uid
    plan.ReferencedStructureSetSequence = DicomSequence([reference])
    _save(plan, RTPLAN, tmp_path / "plan.dcm")
    dose = Dataset()
    _identity(dose, patient_id="PAT1", study_uid="1.2.3.4.1", modality="RTDOSE")
    dose.SOPClassUID = RTDOSE
    dose.SOPInstanceUID = generate_uid()
    dose.SeriesInstanceUID = generate_uid()
    dose.FrameOfReferenceUID = frame_uid
    dose.ImagePositionPatient = [0, 0, 0]
    dose.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
    dose.PixelSpacing = [2.0, 2.0]
    dose.Rows, dose.Columns, dose.NumberOfFrames = 3, 3, 2
    dose.GridFrameOffsetVector = [0, 2.5]
    dose.SamplesPerPixel, dose.BitsAllocated = 1, 32
    dose.DoseUnits, dose.DoseType, dose.DoseSummationType = "GY", "PHYSICAL", "PLAN"
    dose.PixelData = bytes(3 * 3 * 2 * 4)
    plan_reference = Dataset()
    plan_reference.ReferencedSOPClassUID = RTPLAN
    plan_reference.ReferencedSOPInstanceUID = plan.SOPInstanceUID
    dose.ReferencedRTPlanSequence = DicomSequence([plan_reference])
    _save(dose, RTDOSE, tmp_path / "dose.dcm")


def test_dose_and_plan_link_through_their_references(tmp_path: Path) -> None:
    uid, written = write_ct_series(tmp_path / "ct", n_slices=3)
    structure_set_uid = write_rtstruct(
        tmp_path / "rs.dcm", contours=_plane_contours(written), series_uid=uid
    )
    _write_plan_and_dose(tmp_path, structure_set_uid, "1.2.3.4.9")
    inventory = scan(tmp_path)
    (dose,) = inventory.doses
    (plan,) = inventory.plans
    assert dose.label == "PLAN PHYSICAL GY"
    assert plan.label == "Plan1"
    assert dose.referenced_rt_uids == (plan.sop_instance_uid,)
    assert dose.contour_plane_points_mm.shape == (0, 3)
    for rt_object in (dose, plan):
        link = link_image_series(rt_object, inventory.image_series, related=inventory.rt_objects)
        assert link.method == "series_uid"
        assert _linked_uid(link) == uid
        assert "through the" in link.message
    alone = link_image_series(dose, inventory.image_series)
    assert alone.method == "frame_of_reference"
    assert _linked_uid(alone) == uid


# ---------------------------------------------------------------------------- real data
def _pydicom_contour_first_vertices(path: Path) -> list[tuple[float, float, float]]:
    dataset = pydicom.dcmread(path)
    return [
        tuple(float(v) for v in contour.ContourData[:3])
        for roi in dataset.ROIContourSequence
        for contour in roi.get("ContourSequence", [])
    ]


@needs_data
def test_real_lung1_links_by_series_uid() -> None:
    folder = DATA / "lung1-001"
    inventory = scan(folder)
    (series,) = inventory.image_series
    (structure_set,) = inventory.structure_sets
    rtstruct = pydicom.dcmread(structure_set.path, stop_before_pixels=True)
    referenced = (
        rtstruct.ReferencedFrameOfReferenceSequence[0]
        .RTReferencedStudySequence[0]
        .RTReferencedSeriesSequence[0]
        .SeriesInstanceUID
    )
    image_files = sorted((folder / "LUNG1-001" / "image").iterdir())
    z_positions = sorted(
        float(pydicom.dcmread(p, stop_before_pixels=True).ImagePositionPatient[2])
        for p in image_files
    )
    assert series.n_slices == len(image_files) == 134
    assert series.grid.slice_positions_mm == pytest.approx(z_positions)
    first_vertices = _pydicom_contour_first_vertices(structure_set.path)
    assert np.allclose(structure_set.contour_plane_points_mm, first_vertices)
    link = link_image_series(structure_set, inventory.image_series)
    assert link.method == "series_uid"
    assert link.series is series
    assert series.series_instance_uid == referenced
    assert link.warnings == ()


@needs_data
def test_real_rt_utils_broken_references() -> None:
    folder = DATA / "rt-utils-samples" / "mock_data"
    inventory = scan(folder)
    (series,) = inventory.image_series
    by_name = {s.path.name: s for s in inventory.structure_sets}

    # No referenced series, but two of its three referenced images are present.
    missing = by_name["non_existent_reference_rt.dcm"]
    link = link_image_series(missing, inventory.image_series)
    present = set(missing.referenced_sop_instance_uids) & set(series.sop_instance_uids)
    assert missing.referenced_series_uids == ()
    assert link.method == "instance_uids"
    assert link.series is series
    assert f"{len(present)} of {len(missing.referenced_sop_instance_uids)}" in link.message

    # References the series present, but images that are not in it.
    invalid = by_name["invalid_reference_rt.dcm"]
    link = link_image_series(invalid, inventory.image_series)
    absent = set(invalid.referenced_sop_instance_uids) - set(series.sop_instance_uids)
    assert link.method == "series_uid"
    assert absent
    assert any(
        f"{len(absent)} of {len(invalid.referenced_sop_instance_uids)} referenced "
        "images are not in the series" in w
        for w in link.warnings
    )


@needs_data
def test_real_dicompyler_breast_one_slice_of_a_98_slice_series() -> None:
    folder = DATA / "dicompyler-breast"
    inventory = scan(folder)
    (series,) = inventory.image_series
    (structure_set,) = inventory.structure_sets
    (dose,) = inventory.doses
    (plan,) = inventory.plans
    rtstruct = pydicom.dcmread(structure_set.path, stop_before_pixels=True)
    referenced_series = (
        rtstruct.ReferencedFrameOfReferenceSequence[0]
        .RTReferencedStudySequence[0]
        .RTReferencedSeriesSequence[0]
    )
    n_referenced = len(referenced_series.ContourImageSequence)
    assert series.n_slices == 1
    link = link_image_series(structure_set, inventory.image_series)
    # Linked to the referenced series (it is the right one), saying how little of it is here.
    assert link.method == "series_uid"
    assert link.series is series
    assert series.series_instance_uid == referenced_series.SeriesInstanceUID
    assert any(
        f"{n_referenced - 1} of {n_referenced} referenced images" in w for w in link.warnings
    )
    assert any("do not lie on a slice" in w for w in link.warnings)
    # The dose follows its plan to the structure set and the same series.
    dose_link = link_image_series(dose, inventory.image_series, related=inventory.rt_objects)
    assert dose_link.series is series
    assert plan.referenced_rt_uids == (structure_set.sop_instance_uid,)


def test_deflated_images_are_read_and_a_cut_one_is_truncated(tmp_path: Path) -> None:
    # Deflated files are smaller than their pixel data: size alone says nothing.
    from pydicom.uid import DeflatedExplicitVRLittleEndian

    from rtmask._dicom import read_dataset

    uid, written = write_ct_series(tmp_path / "ct", n_slices=3, rows=64, columns=64)
    for path, _, _ in written:
        dataset = pydicom.dcmread(path)
        dataset.file_meta.TransferSyntaxUID = DeflatedExplicitVRLittleEndian
        dataset.save_as(path, enforce_file_format=True)
    data = written[0][0].read_bytes()
    assert len(data) < 64 * 64 * 2  # the zero pixels deflate to almost nothing
    (tmp_path / "cut_deflated").write_bytes(data[:-8])

    inventory = scan(tmp_path)

    (series,) = inventory.image_series
    assert series.series_instance_uid == uid
    assert series.n_slices == 3
    (skipped,) = inventory.skipped
    assert skipped.path.name == "cut_deflated"
    assert skipped.kind == "truncated"
    assert "deflated" in skipped.reason
    with pytest.raises(DicomReadError, match="cut_deflated"):  # one clear error, read alone
        read_dataset(tmp_path / "cut_deflated")
    # ... and its pixels read back as written.
    pixels = rtmask.discovery.read_slices(read_image_series(tmp_path / "ct"), [0, 1, 2])
    assert pixels.shape == (3, 64, 64)
    assert not pixels.any()
