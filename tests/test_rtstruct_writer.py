"""Masks -> RT Structure Set writer, checked against independent readers and tools.

- Round trip: write, read back with :func:`rtmask.rtstruct.read_rtstruct`, rasterise
  (independent code from the tracer): the masks come back voxel for voxel.
- File content with plain pydicom: references, UIDs, DS lengths, every image listed, each
  contour referencing the CT whose plane (from the CT files' own headers) it lies in.
- dciodvfy (DICOM validator) and plastimatch (another rasteriser) when installed; masks
  from plastimatch are mapped onto ours through the two affines, not by assumption.
- Real files from ``../shared/data`` when present.
"""

from __future__ import annotations

import shutil
import subprocess
import warnings
from dataclasses import dataclass, replace
from pathlib import Path

import nibabel as nib
import numpy as np
import pydicom
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import orientations, unit
from rtmask._errors import GeometryError, InvalidInputError, StructureSetWarning
from rtmask.discovery import ImageSeries, read_image_series
from rtmask.export._rtstruct_writer import format_ds_bytes, write_rtstruct
from rtmask.geometry import ImageGrid
from rtmask.raster import Mask, rasterize
from rtmask.rtstruct import ROI, read_rtstruct
from rtmask.synthetic import CTSeries, RoiSpec, circle_uv, to_patient, write_ct_series
from rtmask.synthetic import write_rtstruct as write_synthetic_rtstruct

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
CT_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.2"
RTSTRUCT_STORAGE = "1.2.840.10008.5.1.4.1.1.481.3"


ORIENTATIONS = orientations("HFS", "FFS", "HFP", "sagittal", "oblique")
SHAPE = (5, 27, 33)  # non-square
SPACING = (2.5, 0.7, 1.3)  # anisotropic
ORIGIN = (-123.4, 56.7, -300.2)  # off-origin


@dataclass(frozen=True)
class Case:
    folder: Path
    series: ImageSeries
    orientation: tuple[float, ...]

    def index_to_lps(self) -> np.ndarray:
        """4x4 (slice, row, column) -> LPS from the DICOM numbers given, by hand."""
        row_dir = unit(np.array(self.orientation[:3]))
        col_dir = unit(np.array(self.orientation[3:]))
        affine = np.eye(4)
        affine[:3, 0] = np.cross(row_dir, col_dir) * SPACING[0]
        affine[:3, 1] = col_dir * SPACING[1]
        affine[:3, 2] = row_dir * SPACING[2]
        affine[:3, 3] = ORIGIN
        return affine


def make_case(folder: Path, name: str) -> Case:
    orientation = ORIENTATIONS[name]
    grid = ImageGrid.from_explicit(
        origin_mm=ORIGIN, spacing_mm=SPACING, shape=SHAPE, orientation=orientation
    )
    write_ct_series(folder / "ct", grid, file_names="shuffled", patient_name="Test^Ünïcode")
    return Case(folder, read_image_series(folder / "ct"), orientation)


def make_masks(grid: ImageGrid, seed: int = 0) -> list[Mask]:
    """Awkward masks: holes, islands in holes, diagonal contacts, single pixels, noise."""
    rng = np.random.default_rng(seed)
    _, rows, columns = grid.shape
    r, c = np.meshgrid(np.arange(rows), np.arange(columns), indexing="ij")
    depth = np.minimum(np.minimum(r - 2, c - 3), np.minimum(rows - 3 - r, columns - 4 - c))
    rings = np.zeros(grid.shape, dtype=bool)
    rings[1:4] = (depth >= 0) & (depth % 4 < 2)
    checker = np.zeros(grid.shape, dtype=bool)
    checker[2, 5:15, 5:15] = ((r + c) % 2 == 0)[5:15, 5:15]
    checker[0, 3, 3] = True
    noise = np.zeros(grid.shape, dtype=bool)
    noise[:, 2:-2, 2:-2] = rng.random((grid.shape[0], rows - 4, columns - 4)) < 0.45
    disc = np.zeros(grid.shape, dtype=bool)
    disc[1:] = np.hypot(r - 12.3, c - 17.1) < 9.5
    specs = [
        (rings, 3, "Rings", (255, 0, 0), "ORGAN"),
        (checker, 7, "Checker", None, None),
        (noise, 11, "Noise", (0, 0, 255), "CONTROL"),
        (disc, 12, "Disc", (1, 2, 3), "PTV"),
    ]
    return [
        Mask(
            array=array,
            grid=grid,
            roi=ROI(number=number, name=name, color=color, interpreted_type=kind),
        )
        for array, number, name, color, kind in specs
    ]


def rasterize_quietly(roi: ROI, grid: ImageGrid, rule: str, border: bool) -> np.ndarray:
    """Rasterise; fail on any warning (contours on the grid's outer edge included)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        mask = rasterize(roi, grid, rule=rule)
    assert [str(w.message) for w in caught] == [], f"border: {border}"
    return np.asarray(mask.array)


@pytest.fixture(params=["HFS", "FFS", "oblique"])
def case(request: pytest.FixtureRequest, tmp_path: Path) -> Case:
    return make_case(tmp_path, request.param)


# ----------------------------------------------------------------------------- round trip
@pytest.mark.parametrize("keyholes", [False, True])
def test_read_back_and_rasterised_gives_the_masks(case: Case, keyholes: bool) -> None:
    masks = make_masks(case.series.grid)
    report = write_rtstruct(masks, case.series, case.folder / "rs.dcm", keyholes=keyholes)
    assert report.path == case.folder / "rs.dcm"
    structure_set = read_rtstruct(report.path, on_invalid="raise")
    assert [roi.number for roi in structure_set.rois] == [3, 7, 11, 12]
    assert [roi.name for roi in structure_set.rois] == ["Rings", "Checker", "Noise", "Disc"]
    assert structure_set.rois[0].color == (255, 0, 0)
    assert structure_set.rois[2].interpreted_type == "CONTROL"
    assert structure_set.rois[1].interpreted_type is None
    assert structure_set.frame_of_reference_uid == case.series.frame_of_reference_uid
    for mask, roi, written in zip(masks, structure_set.rois, report.rois, strict=True):
        assert (written.number, written.name) == (roi.number, roi.name)
        assert written.contours == roi.n_contours
        assert written.points == roi.n_points
        for rule in ("auto", "xor"):
            back = rasterize_quietly(roi, case.series.grid, rule, border=False)
            assert np.array_equal(back, mask.array), (roi.name, rule)


def test_masks_touching_the_grid_border(tmp_path: Path) -> None:
    case = make_case(tmp_path, "HFP")
    full = np.ones(SHAPE, dtype=bool)
    full[2, 5:9, 0:4] = False  # a hole open to the border and one inside
    full[3, 10:12, 10:12] = False
    mask = Mask(array=full, grid=case.series.grid, roi=ROI(number=1, name="Everything"))
    report = write_rtstruct([mask], case.series, tmp_path / "rs.dcm")
    (roi,) = read_rtstruct(report.path).rois
    for rule in ("auto", "xor"):
        assert np.array_equal(rasterize_quietly(roi, case.series.grid, rule, border=True), full)


# ----------------------------------------------------------------------------- content
def test_file_content_read_with_plain_pydicom(case: Case) -> None:
    masks = make_masks(case.series.grid)
    report = write_rtstruct(masks, case.series, case.folder / "rs.dcm", label="AI contours")
    ds = pydicom.dcmread(report.path)
    assert ds.preamble == b"\x00" * 128
    assert ds.file_meta.TransferSyntaxUID == pydicom.uid.ExplicitVRLittleEndian
    assert ds.file_meta.MediaStorageSOPInstanceUID == ds.SOPInstanceUID == report.sop_instance_uid
    assert ds.SOPClassUID == RTSTRUCT_STORAGE
    assert ds.Modality == "RTSTRUCT"
    assert ds.Manufacturer == "rtmask"
    assert ds.StructureSetLabel == "AI contours"
    assert ds.SpecificCharacterSet == "ISO_IR 192"  # the patient name is not ASCII
    cts = {
        f.SOPInstanceUID: f for f in (pydicom.dcmread(p) for p in (case.folder / "ct").iterdir())
    }
    first = next(iter(cts.values()))
    assert str(ds.PatientName) == "Test^Ünïcode"
    for keyword in ("PatientID", "StudyInstanceUID", "StudyDate", "StudyID", "FrameOfReferenceUID"):
        assert ds.get(keyword) == first.get(keyword)
    assert ds.SeriesInstanceUID not in {first.SeriesInstanceUID, report.series_instance_uid[:-1]}
    assert ds.SOPInstanceUID not in cts
    (frame,) = ds.ReferencedFrameOfReferenceSequence
    assert frame.FrameOfReferenceUID == first.FrameOfReferenceUID
    (series_item,) = frame.RTReferencedStudySequence[0].RTReferencedSeriesSequence
    assert series_item.SeriesInstanceUID == first.SeriesInstanceUID
    listed = [item.ReferencedSOPInstanceUID for item in series_item.ContourImageSequence]
    assert sorted(listed) == sorted(cts)
    assert {item.ReferencedSOPClassUID for item in series_item.ContourImageSequence} == {
        CT_IMAGE_STORAGE
    }
    # Each contour references the CT whose plane it lies in (positions from the CT files).
    normal = np.cross(
        np.array(first.ImageOrientationPatient[:3], float),
        np.array(first.ImageOrientationPatient[3:], float),
    )
    heights = {
        uid: float(np.array(f.ImagePositionPatient, float) @ normal) for uid, f in cts.items()
    }
    numbers = [item.ROINumber for item in ds.StructureSetROISequence]
    assert [item.ReferencedROINumber for item in ds.ROIContourSequence] == numbers
    assert [item.ReferencedROINumber for item in ds.RTROIObservationsSequence] == numbers
    assert len({item.ObservationNumber for item in ds.RTROIObservationsSequence}) == len(numbers)
    assert all(
        item.ReferencedFrameOfReferenceUID == first.FrameOfReferenceUID
        for item in ds.StructureSetROISequence
    )
    raw = pydicom.dcmread(report.path)  # ContourData text as written
    for roi_contour in raw.ROIContourSequence:
        assert len(roi_contour.ROIDisplayColor) == 3
        for number, item in enumerate(roi_contour.ContourSequence, start=1):
            assert item.ContourGeometricType == "CLOSED_PLANAR"
            assert item.ContourNumber == number
            data = item.ContourData
            assert len(data) == 3 * item.NumberOfContourPoints
            assert max(len(value.original_string) for value in data) <= 16
            points = np.array(data, dtype=float).reshape(-1, 3)
            (image,) = item.ContourImageSequence
            assert image.ReferencedSOPClassUID == CT_IMAGE_STORAGE
            np.testing.assert_allclose(
                points @ normal, heights[image.ReferencedSOPInstanceUID], atol=1e-5
            )


def test_dciodvfy_finds_no_errors(tmp_path: Path) -> None:
    validator = shutil.which("dciodvfy")
    if validator is None:
        pytest.skip("dciodvfy (dicom3tools) not installed")
    case = make_case(tmp_path, "oblique")
    report = write_rtstruct(make_masks(case.series.grid), case.series, tmp_path / "rs.dcm")
    result = subprocess.run(
        [validator, str(report.path)], capture_output=True, text=True, check=False
    )
    output = result.stdout + result.stderr
    errors = [line for line in output.splitlines() if line.startswith("Error")]
    assert errors == [], output


@settings(max_examples=200, deadline=None)
@given(st.lists(st.floats(-9.9e7, 9.9e7, allow_nan=False), min_size=1, max_size=20))
def test_ds_values_are_short_and_exact_to_a_micrometre(values: list[float]) -> None:
    text, ends = format_ds_bytes(np.array(values))
    written = text.tobytes().decode("ascii").split("\\")
    assert written[-1] == ""
    written = written[:-1]
    assert len(written) == len(values) == ends.size
    for value, string in zip(values, written, strict=True):
        assert 1 <= len(string) <= 16
        assert abs(float(string) - value) <= 5e-7 + abs(value) * 1e-15
        assert string != "-0"
        assert not ("." in string and string.endswith(("0", ".")))


# ----------------------------------------------------------------------------- plastimatch
def _plastimatch_masks(case: Case, rtstruct: Path, out: Path) -> dict[str, np.ndarray]:
    """plastimatch's masks, mapped onto (slice, row, column) through the two affines."""
    exe = shutil.which("plastimatch")
    assert exe is not None
    result = subprocess.run(
        [
            exe,
            "convert",
            "--input",
            str(rtstruct),
            "--referenced-ct",
            str(case.series.folder),
            "--xor-contours",
            "--output-prefix",
            str(out),
            "--prefix-format",
            "nii.gz",
        ],
        capture_output=True,
        text=True,
        errors="replace",
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    ours = np.diag([-1.0, -1.0, 1.0, 1.0]) @ case.index_to_lps()  # (s, r, c) -> RAS
    shape = case.series.grid.shape
    masks = {}
    for path in out.glob("*.nii.gz"):
        image = nib.load(path)
        mapping = np.linalg.inv(image.affine) @ ours  # (s, r, c) -> plastimatch (i, j, k)
        whole = np.round(mapping)
        np.testing.assert_allclose(mapping, whole, atol=1e-3)
        data = np.asarray(image.dataobj) != 0
        # A signed permutation with offsets: our axis a runs along their axis b.
        axes = [int(np.flatnonzero(whole[:3, a])[0]) for a in range(3)]
        view = np.transpose(data, axes)
        index: list[slice] = []
        for a, b in enumerate(axes):
            step, start, n = int(whole[b, a]), int(whole[b, 3]), shape[a]
            stop = start + step * n
            assert 0 <= start < view.shape[a]
            assert -1 <= stop <= view.shape[a]
            index.append(slice(start, None if stop < 0 else stop, step))
        masks[path.name.removesuffix(".nii.gz")] = view[tuple(index)]
    return masks


@pytest.mark.parametrize("name", ["HFS", "FFS"])
@pytest.mark.parametrize("keyholes", [False, True])
def test_plastimatch_reads_the_same_masks(tmp_path: Path, name: str, keyholes: bool) -> None:
    if shutil.which("plastimatch") is None:
        pytest.skip("plastimatch not installed")
    case = make_case(tmp_path, name)
    masks = make_masks(case.series.grid, seed=1)
    report = write_rtstruct(masks, case.series, tmp_path / "rs.dcm", keyholes=keyholes)
    theirs = _plastimatch_masks(case, report.path, tmp_path / "out")
    assert sorted(theirs) == sorted(m.roi.name for m in masks)
    for mask in masks:
        assert np.array_equal(theirs[mask.roi.name], mask.array), mask.roi.name


# ----------------------------------------------------------------------------- options
def test_roi_numbers_are_kept_when_unique_else_renumbered(tmp_path: Path) -> None:
    case = make_case(tmp_path, "HFS")
    masks = make_masks(case.series.grid)[:3]
    clash = [replace(m, roi=ROI(number=5, name=m.roi.name)) for m in masks]
    report = write_rtstruct(clash, case.series, tmp_path / "rs.dcm")
    assert [roi.number for roi in report.rois] == [1, 2, 3]
    assert [roi.number for roi in read_rtstruct(report.path).rois] == [1, 2, 3]


def test_non_ascii_roi_names_are_written_in_utf8(tmp_path: Path) -> None:
    grid = ImageGrid.from_explicit(origin_mm=ORIGIN, spacing_mm=SPACING, shape=SHAPE)
    write_ct_series(tmp_path / "ct", grid)
    series = read_image_series(tmp_path / "ct")
    (mask,) = make_masks(series.grid)[3:]
    named = replace(mask, roi=ROI(number=1, name="Rückenmark µ 脊髓"))
    report = write_rtstruct([named], series, tmp_path / "rs.dcm")
    ds = pydicom.dcmread(report.path)
    assert ds.SpecificCharacterSet == "ISO_IR 192"
    assert ds.StructureSetROISequence[0].ROIName == "Rückenmark µ 脊髓"
    assert read_rtstruct(report.path).rois[0].name == "Rückenmark µ 脊髓"


def test_contours_longer_than_64_kb_are_written_in_implicit_vr(tmp_path: Path) -> None:
    grid = ImageGrid.from_explicit(
        origin_mm=(-300.123, -280.456, 12.0), spacing_mm=(3.0, 0.977, 0.977), shape=(2, 320, 620)
    )
    write_ct_series(tmp_path / "ct", grid)
    series = read_image_series(tmp_path / "ct")
    comb = np.zeros(grid.shape, dtype=bool)
    comb[1, 10:310, 10:610] = True
    comb[1, 10, 10:610:2] = comb[1, 309, 10:610:2] = False  # teeth: thousands of corners
    comb[1, 10:310:2, 10] = comb[1, 10:310:2, 609] = False
    mask = Mask(array=comb, grid=series.grid, roi=ROI(number=1, name="Comb"))
    report = write_rtstruct([mask], series, tmp_path / "rs.dcm")
    ds = pydicom.dcmread(report.path)
    assert ds.file_meta.TransferSyntaxUID == pydicom.uid.ImplicitVRLittleEndian
    longest = max(
        len("\\".join(value.original_string for value in item.ContourData))
        for item in ds.ROIContourSequence[0].ContourSequence
    )
    assert longest > 0xFFFF  # too long for an explicit VR DS element
    (roi,) = read_rtstruct(report.path, on_invalid="raise").rois
    assert np.array_equal(rasterize(roi, series.grid, on_invalid="raise").array, comb)


def test_simplified_contours_have_fewer_points(tmp_path: Path) -> None:
    case = make_case(tmp_path, "HFS")
    (disc,) = make_masks(case.series.grid)[3:]
    exact = write_rtstruct([disc], case.series, tmp_path / "exact.dcm")
    simple = write_rtstruct([disc], case.series, tmp_path / "simple.dcm", simplify_mm=1.0)
    assert simple.rois[0].points < exact.rois[0].points
    assert simple.rois[0].contours == exact.rois[0].contours


# ----------------------------------------------------------------------------- existing=
def _existing(
    case: Case, path: Path, frame_of_reference_uid: str | None = None, *, preamble: bool = True
) -> Path:
    grid = case.series.grid
    ct = _ct_of(case)
    rois = [
        RoiSpec(
            number=4,
            name="Body",
            contours=tuple(
                (to_patient(grid, k, circle_uv((15.0, 12.0), 9.0, n=40)), "CLOSED_PLANAR")
                for k in range(1, 4)
            ),
            color=(10, 20, 30),
            interpreted_type="EXTERNAL",
        ),
        RoiSpec(
            number=9,
            name="Disc",
            contours=((to_patient(grid, 2, circle_uv((9.0, 9.0), 3.0, n=7)), "CLOSED_PLANAR"),),
        ),
    ]
    return write_synthetic_rtstruct(
        path,
        rois,
        ct,
        raw_numbers="%.3f",
        frame_of_reference_uid=frame_of_reference_uid,
        preamble=preamble,
    )


def _ct_of(case: Case) -> CTSeries:
    """The synthetic writer's CTSeries for the case's series (rebuilt from the headers)."""
    first = pydicom.dcmread(case.series.files[0], stop_before_pixels=True)
    return CTSeries(
        folder=case.series.folder,
        files=case.series.files,
        sop_instance_uids=case.series.sop_instance_uids,
        series_instance_uid=case.series.series_instance_uid,
        study_instance_uid=str(first.StudyInstanceUID),
        frame_of_reference_uid=str(first.FrameOfReferenceUID),
        patient_id=str(first.PatientID),
        patient_name=str(first.PatientName),
        grid=case.series.grid,
    )


def test_existing_rois_are_kept_exactly_and_new_ones_appended(tmp_path: Path) -> None:
    case = make_case(tmp_path, "FFS")
    existing = _existing(case, tmp_path / "old.dcm")
    masks = make_masks(case.series.grid)
    with pytest.warns(StructureSetWarning, match="'Disc' is used twice"):
        report = write_rtstruct(masks, case.series, tmp_path / "new.dcm", existing=existing)
    assert report.kept == 2
    assert [roi.number for roi in report.rois] == [10, 11, 12, 13]
    old, new = pydicom.dcmread(existing), pydicom.dcmread(report.path)
    assert new.SOPInstanceUID != old.SOPInstanceUID
    assert [i.ROINumber for i in new.StructureSetROISequence] == [4, 9, 10, 11, 12, 13]
    assert [i.ROIName for i in new.StructureSetROISequence][:2] == ["Body", "Disc"]
    for before, after in zip(old.ROIContourSequence, new.ROIContourSequence[:2], strict=False):
        assert after.ReferencedROINumber == before.ReferencedROINumber
        assert list(after.ROIDisplayColor) == list(before.ROIDisplayColor)
        for a, b in zip(before.ContourSequence, after.ContourSequence, strict=True):
            assert [v.original_string for v in b.ContourData] == [
                v.original_string for v in a.ContourData
            ]
    assert [o.RTROIInterpretedType for o in new.RTROIObservationsSequence][:2] == [
        "EXTERNAL",
        "ORGAN",
    ]
    assert len({o.ObservationNumber for o in new.RTROIObservationsSequence}) == 6
    with pytest.warns(StructureSetWarning, match="duplicate ROI name 'Disc'"):
        back = read_rtstruct(report.path)
    previous = read_rtstruct(existing)
    for a, b in zip(previous.rois, back.rois[:2], strict=True):
        assert all(x.equals(y, atol=0.0) for x, y in zip(a.contours, b.contours, strict=True))
    for mask, roi in zip(masks, back.rois[2:], strict=True):
        assert np.array_equal(rasterize(roi, case.series.grid).array, mask.array)


def test_existing_in_implicit_vr_without_preamble(tmp_path: Path) -> None:
    case = make_case(tmp_path, "oblique")
    existing = _existing(case, tmp_path / "old.dcm", preamble=False)
    (mask,) = make_masks(case.series.grid)[:1]
    report = write_rtstruct([mask], case.series, tmp_path / "new.dcm", existing=existing)
    old, new = pydicom.dcmread(existing, force=True), pydicom.dcmread(report.path)
    assert new.file_meta.TransferSyntaxUID == pydicom.uid.ImplicitVRLittleEndian
    for before, after in zip(old.ROIContourSequence, new.ROIContourSequence[:2], strict=False):
        for a, b in zip(before.ContourSequence, after.ContourSequence, strict=True):
            assert [v.original_string for v in b.ContourData] == [
                v.original_string for v in a.ContourData
            ]
    back = read_rtstruct(report.path, on_invalid="raise")
    assert [roi.number for roi in back.rois] == [4, 9, 10]
    assert np.array_equal(rasterize(back.rois[2], case.series.grid).array, mask.array)


def test_existing_in_another_frame_of_reference_is_refused(tmp_path: Path) -> None:
    case = make_case(tmp_path, "HFS")
    existing = _existing(case, tmp_path / "old.dcm", frame_of_reference_uid="1.2.3.4.5")
    with pytest.raises(GeometryError, match=r"frame of reference 1\.2\.3\.4\.5"):
        write_rtstruct(
            make_masks(case.series.grid), case.series, tmp_path / "n.dcm", existing=existing
        )
    assert not (tmp_path / "n.dcm").exists()


# ----------------------------------------------------------------------------- errors
def test_mask_on_another_grid_is_refused(tmp_path: Path) -> None:
    case = make_case(tmp_path, "HFS")
    (mask,) = make_masks(case.series.grid)[:1]
    grid = case.series.grid
    flipped_affine = grid.affine.copy()
    flipped_affine[:3, 1:3] *= -1  # rows and columns flipped: same shape, other geometry
    flipped = ImageGrid(shape=grid.shape, affine=flipped_affine)
    bad = Mask(array=mask.array, grid=flipped, roi=ROI(number=3, name="Rings"))
    with pytest.raises(GeometryError, match=r"ROI 3 'Rings'.*resample or reorient"):
        write_rtstruct([bad], case.series, tmp_path / "rs.dcm")
    small = ImageGrid.from_explicit(origin_mm=ORIGIN, spacing_mm=SPACING, shape=(1, 2, 3))
    tiny = Mask(array=np.ones((1, 2, 3), bool), grid=small, roi=ROI(number=1, name="t"))
    with pytest.raises(GeometryError, match="'t'"):
        write_rtstruct([tiny], case.series, tmp_path / "rs.dcm")
    assert not (tmp_path / "rs.dcm").exists()


def test_fractional_mask_is_refused(tmp_path: Path) -> None:
    case = make_case(tmp_path, "HFS")
    fractions = np.full(SHAPE, 0.5, dtype=np.float32)
    mask = Mask(array=fractions, grid=case.series.grid, roi=ROI(number=1, name="PTV"))
    with pytest.raises(InvalidInputError, match="binary masks"):
        write_rtstruct([mask], case.series, tmp_path / "rs.dcm")


def test_empty_masks_are_skipped_and_reported(tmp_path: Path) -> None:
    case = make_case(tmp_path, "HFS")
    masks = make_masks(case.series.grid)[:1]
    empty = Mask(
        array=np.zeros(SHAPE, dtype=bool), grid=case.series.grid, roi=ROI(number=8, name="Gone")
    )
    with pytest.warns(StructureSetWarning, match="ROI 8 'Gone': the mask is empty"):
        report = write_rtstruct([empty, *masks], case.series, tmp_path / "rs.dcm")
    assert [(s.number, s.name, s.reason) for s in report.skipped] == [(8, "Gone", "empty mask")]
    assert [roi.name for roi in read_rtstruct(report.path).rois] == ["Rings"]
    with pytest.raises(InvalidInputError, match="every mask is empty"):
        write_rtstruct([empty], case.series, tmp_path / "none.dcm")


def test_series_without_frame_of_reference_is_refused(tmp_path: Path) -> None:
    case = make_case(tmp_path, "HFS")
    grid = replace(case.series.grid, frame_of_reference_uid=None)
    series = replace(case.series, frame_of_reference_uid=None, grid=grid)
    masks = [replace(m, grid=grid) for m in make_masks(grid)]
    with pytest.raises(GeometryError, match="no FrameOfReferenceUID"):
        write_rtstruct(masks, series, tmp_path / "rs.dcm")


# ----------------------------------------------------------------------------- real data
def _need(*parts: str) -> Path:
    path = DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"{path} absent (real test data in ../shared/data not installed)")
    return path


def _real_round_trip(series: ImageSeries, rtstruct: Path, tmp_path: Path) -> None:
    structure_set = read_rtstruct(rtstruct)
    masks = [rasterize(roi, series.grid) for roi in structure_set.rois if roi.encloses_volume]
    assert all(np.count_nonzero(m.array) for m in masks)
    report = write_rtstruct(masks, series, tmp_path / "rs.dcm")
    back = read_rtstruct(report.path, on_invalid="raise")
    assert [roi.name for roi in back.rois] == [m.roi.name for m in masks]
    for mask, roi in zip(masks, back.rois, strict=True):
        again = rasterize(roi, series.grid, on_invalid="raise")
        assert np.array_equal(again.array, mask.array), roi.name
    if shutil.which("plastimatch") is not None:
        orientation = series.grid.orientation
        case = Case(tmp_path, series, orientation)
        theirs = _plastimatch_masks_real(case, report.path, tmp_path / "out")
        for mask in masks:
            assert np.array_equal(theirs[mask.roi.name], mask.array), mask.roi.name


def _plastimatch_masks_real(case: Case, rtstruct: Path, out: Path) -> dict[str, np.ndarray]:
    """As :func:`_plastimatch_masks`, with our affine from the series' own header values."""
    grid = case.series.grid
    headers = [pydicom.dcmread(p, stop_before_pixels=True) for p in case.series.files]
    first = headers[0]
    row_dir = np.array(first.ImageOrientationPatient[:3], float)
    col_dir = np.array(first.ImageOrientationPatient[3:], float)
    spacing = np.array(first.PixelSpacing, float)
    origin = np.array(first.ImagePositionPatient, float)
    step = (
        (np.array(headers[-1].ImagePositionPatient, float) - origin) / (len(headers) - 1)
        if len(headers) > 1
        else np.cross(row_dir, col_dir)
    )
    affine = np.eye(4)
    affine[:3, 0], affine[:3, 1], affine[:3, 2], affine[:3, 3] = (
        step,
        col_dir * spacing[0],
        row_dir * spacing[1],
        origin,
    )
    np.testing.assert_allclose(affine, grid.affine, atol=1e-4)  # files are in slice order

    class _Case(Case):
        def index_to_lps(self) -> np.ndarray:
            return affine

    return _plastimatch_masks(_Case(case.folder, case.series, case.orientation), rtstruct, out)


def test_lung1_round_trip(tmp_path: Path) -> None:
    folder = _need("lung1-001", "LUNG1-001")
    series = read_image_series(folder / "image")
    _real_round_trip(series, folder / "mask_rtstruct" / "1-1.dcm", tmp_path)


def test_dicomrttool_round_trip(tmp_path: Path) -> None:
    folder = _need("dicomrttool-anon")
    series = read_image_series([folder / f"CT_{n}.dcm" for n in range(1, 5)])
    _real_round_trip(series, _need("dicomrttool-anon", "RS_Body_SpinalCord.dcm"), tmp_path)
