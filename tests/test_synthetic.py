"""The synthetic DICOM writers and shape generators, checked with plain pydicom, SimpleITK
and shapely (never with rtmask's own readers for expected values)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.errors import InvalidDicomError

from conftest import rotated
from rtmask import synthetic
from rtmask.geometry import ImageGrid
from rtmask.synthetic import (
    RoiSpec,
    c_shape_uv,
    circle_uv,
    cone_contours,
    cylinder_contours,
    ellipse_uv,
    ellipsoid_contours,
    format_ds,
    keyhole_annulus_uv,
    rectangle_uv,
    sphere_contours,
    to_patient,
    to_uv,
    write_ct_series,
    write_demo_case,
    write_rtdose,
    write_rtstruct,
)

CT_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.2"
RTSTRUCT_STORAGE = "1.2.840.10008.5.1.4.1.1.481.3"
RTDOSE_STORAGE = "1.2.840.10008.5.1.4.1.1.481.2"


def _oblique_orientation() -> tuple[float, ...]:
    return rotated(0.17, -0.26, 0.35)


def axial_grid() -> ImageGrid:
    return ImageGrid.from_explicit(
        origin_mm=(-123.4, 56.7, -301.25), spacing_mm=(2.5, 0.9, 1.3), shape=(6, 11, 17)
    )


def oblique_grid() -> ImageGrid:
    return ImageGrid.from_explicit(
        origin_mm=(12.3, -45.6, 78.9),
        spacing_mm=(3.0, 1.1, 0.7),
        shape=(5, 9, 13),
        orientation=_oblique_orientation(),
    )


def sagittal_grid() -> ImageGrid:
    return ImageGrid.from_explicit(
        origin_mm=(-20.5, -60.25, 80.0),
        spacing_mm=(4.0, 1.5, 1.25),
        shape=(4, 10, 8),
        orientation=(0, 1, 0, 0, 0, -1),
    )


def nonuniform_grid() -> ImageGrid:
    z = np.array([-10.0, -7.5, -5.0, 2.5, 5.0])  # two slices missing
    return ImageGrid.from_slices(
        positions_mm=np.column_stack([np.full(5, -50.2), np.full(5, 30.1), z]),
        orientation=(1, 0, 0, 0, 1, 0),
        pixel_spacing_mm=(1.2, 0.8),
        rows=7,
        columns=9,
    )


GRIDS = {
    "axial": axial_grid,
    "oblique": oblique_grid,
    "sagittal": sagittal_grid,
    "nonuniform": nonuniform_grid,
}


def _hu(grid: ImageGrid) -> np.ndarray:
    return (np.arange(grid.n_voxels) % 3000 - 1024).astype(np.int16).reshape(grid.shape)


def _read_floats(dataset: pydicom.Dataset, keyword: str) -> np.ndarray:
    return np.array([float(v) for v in dataset[keyword].value])


# ----------------------------------------------------------------------------- API
def test_public_api_is_sorted_and_complete() -> None:
    assert synthetic.__all__ == sorted(synthetic.__all__)
    for name in synthetic.__all__:
        assert getattr(synthetic, name) is not None


def test_format_ds_fits_16_characters() -> None:
    values = [0.0, -0.0, 1.5, -123.45678901234567, 1e-7, -3.3333333333333335e-5, 123456789.123]
    for value in [*values, *np.random.default_rng(1).normal(0, 300, 200)]:
        text = format_ds(value)
        assert len(text) <= 16
        assert abs(float(text) - value) <= 1e-12 * max(1.0, abs(value))
    assert format_ds(0.1) == "0.1"  # shortest round-trip text when it fits
    assert format_ds(2.0 / 3.0, "%.2f") == "0.67"
    with pytest.raises(ValueError, match="finite"):
        format_ds(float("nan"))
    with pytest.raises(ValueError, match="16"):
        format_ds(1.0, "%.20f")


# ----------------------------------------------------------------------------- CT
@pytest.mark.parametrize("name", list(GRIDS))
def test_ct_headers_place_every_slice_on_the_grid(tmp_path: Path, name: str) -> None:
    grid = GRIDS[name]()
    hu = _hu(grid)
    ct = write_ct_series(tmp_path, grid, hu=hu)
    origins = grid.slice_origins_mm()
    assert len(ct.files) == len(ct.sop_instance_uids) == grid.shape[0]
    assert ct.grid.frame_of_reference_uid == ct.frame_of_reference_uid
    for k, path in enumerate(ct.files):
        raw = path.read_bytes()
        assert raw[128:132] == b"DICM"
        ds = pydicom.dcmread(path)
        assert ds.file_meta.TransferSyntaxUID == "1.2.840.10008.1.2.1"
        assert ds.SOPClassUID == CT_IMAGE_STORAGE
        assert ds.SOPInstanceUID == ct.sop_instance_uids[k]
        assert ds.SeriesInstanceUID == ct.series_instance_uid
        assert ds.StudyInstanceUID == ct.study_instance_uid
        assert ds.FrameOfReferenceUID == ct.frame_of_reference_uid
        np.testing.assert_allclose(
            _read_floats(ds, "ImagePositionPatient"), origins[k], rtol=0, atol=1e-9
        )
        np.testing.assert_allclose(
            _read_floats(ds, "ImageOrientationPatient"), grid.orientation, rtol=0, atol=1e-12
        )
        np.testing.assert_allclose(_read_floats(ds, "PixelSpacing"), grid.spacing_mm[1:])
        assert (ds.Rows, ds.Columns) == grid.shape[1:]
        assert float(ds.SliceLocation) == pytest.approx(origins[k] @ grid.normal)
        assert ds.InstanceNumber == k + 1
        values = ds.pixel_array.astype(np.int32) * float(ds.RescaleSlope) + float(
            ds.RescaleIntercept
        )
        np.testing.assert_array_equal(values, hu[k])


def test_ct_patient_position_follows_orientation(tmp_path: Path) -> None:
    prone = ImageGrid.from_explicit(
        origin_mm=(0, 0, 0), spacing_mm=(1, 1, 1), shape=(2, 3, 4), orientation=(-1, 0, 0, 0, -1, 0)
    )
    assert (
        pydicom.dcmread(write_ct_series(tmp_path / "a", axial_grid()).files[0]).PatientPosition
        == "HFS"
    )
    assert pydicom.dcmread(write_ct_series(tmp_path / "b", prone).files[0]).PatientPosition == "HFP"


def test_ct_default_hu_is_air_with_water(tmp_path: Path) -> None:
    ct = write_ct_series(tmp_path, axial_grid())
    ds = pydicom.dcmread(ct.files[0])
    values = ds.pixel_array.astype(np.int32) - 1024
    assert set(np.unique(values)) == {-1000, 0}
    assert values[5, 8] == 0
    assert values[0, 0] == -1000


def test_ct_shuffled_names_do_not_follow_slice_order(tmp_path: Path) -> None:
    grid = axial_grid()
    ct = write_ct_series(tmp_path, grid, file_names="shuffled", instance_numbers="shuffled", seed=3)
    by_name = sorted(ct.files, key=lambda p: p.name)
    assert by_name != list(ct.files)
    assert by_name != list(reversed(ct.files))
    assert all(p.suffix == ".dcm" for p in ct.files)
    # ct.files is in slice order: the positions along the normal increase.
    normal = np.cross(grid.orientation[:3], grid.orientation[3:])
    distances = [
        _read_floats(pydicom.dcmread(p), "ImagePositionPatient") @ normal for p in ct.files
    ]
    assert np.all(np.diff(distances) > 0)
    numbers = [int(pydicom.dcmread(p).InstanceNumber) for p in ct.files]
    assert sorted(numbers) == list(range(1, grid.shape[0] + 1))
    assert numbers != sorted(numbers)


def test_ct_without_extension(tmp_path: Path) -> None:
    ct = write_ct_series(tmp_path, axial_grid(), file_names="no_extension")
    assert all(p.suffix == "" for p in ct.files)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(p.name for p in ct.files)
    assert pydicom.dcmread(ct.files[0]).Modality == "CT"


def test_ct_rejects_a_wrong_hu_shape(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="shape"):
        write_ct_series(tmp_path, axial_grid(), hu=np.zeros((2, 2, 2), np.int16))


@pytest.mark.parametrize("name", ["axial", "oblique"])
def test_simpleitk_reads_the_series_with_the_grid_geometry(tmp_path: Path, name: str) -> None:
    sitk = pytest.importorskip("SimpleITK")
    grid = GRIDS[name]()
    hu = _hu(grid)
    write_ct_series(tmp_path, grid, hu=hu, file_names="shuffled")
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(reader.GetGDCMSeriesFileNames(str(tmp_path)))
    image = reader.Execute()
    assert image.GetSize() == (grid.shape[2], grid.shape[1], grid.shape[0])
    np.testing.assert_allclose(image.GetOrigin(), grid.origin_mm, atol=1e-6)
    np.testing.assert_allclose(image.GetSpacing(), grid.spacing_mm[::-1], atol=1e-6)
    direction = np.array(image.GetDirection()).reshape(3, 3)
    expected = np.column_stack([grid.row_direction, grid.column_direction, grid.normal])
    np.testing.assert_allclose(direction, expected, atol=1e-6)
    np.testing.assert_array_equal(sitk.GetArrayFromImage(image), hu)


# ----------------------------------------------------------------------------- RTDOSE
@pytest.mark.parametrize(
    ("name", "bits", "offsets", "reverse"),
    [
        ("axial", 32, "relative", False),
        ("axial", 16, "absolute", False),
        ("axial", 32, "relative", True),
        ("oblique", 16, "relative", False),
    ],
)
def test_rtdose_reproduces_dose_and_frame_positions(
    tmp_path: Path, name: str, bits: int, offsets: str, reverse: bool
) -> None:
    grid = GRIDS[name]()
    ct = write_ct_series(tmp_path / "ct", grid)
    dose = np.random.default_rng(5).uniform(0, 71.3, grid.shape)
    path = write_rtdose(
        tmp_path / "rd.dcm",
        grid,
        dose,
        ct,
        bits=bits,  # type: ignore[arg-type]
        offsets=offsets,
        reverse_frames=reverse,
    )  # type: ignore[arg-type]
    ds = pydicom.dcmread(path)
    assert ds.SOPClassUID == RTDOSE_STORAGE
    assert ds.FrameOfReferenceUID == ct.frame_of_reference_uid
    assert (ds.DoseUnits, ds.DoseType, ds.DoseSummationType) == ("GY", "PHYSICAL", "PLAN")
    assert ds.BitsAllocated == bits
    assert int(ds.NumberOfFrames) == grid.shape[0]
    assert ds.FrameIncrementPointer == 0x3004000C
    scaling = float(ds.DoseGridScaling)
    assert dose.max() / scaling <= 2**bits - 1
    assert dose.max() / scaling > 0.99 * (2**bits - 1)
    order = np.arange(grid.shape[0])[::-1] if reverse else np.arange(grid.shape[0])
    read = ds.pixel_array.astype(np.float64) * scaling
    np.testing.assert_allclose(read, dose[order], rtol=0, atol=scaling * 0.5 + 1e-12)

    ipp = _read_floats(ds, "ImagePositionPatient")
    gfov = _read_floats(ds, "GridFrameOffsetVector")
    normal = np.cross(grid.orientation[:3], grid.orientation[3:])
    if offsets == "absolute":
        assert gfov[0] == pytest.approx(ipp @ normal)
        gfov = gfov - gfov[0]
    else:
        assert gfov[0] == 0.0
    assert np.all(np.diff(gfov) < 0) if reverse else np.all(np.diff(gfov) > 0)
    frames = ipp + np.outer(gfov, normal)
    np.testing.assert_allclose(frames, grid.slice_origins_mm()[order], atol=1e-9)


def test_rtdose_rejects_negative_dose(tmp_path: Path) -> None:
    grid = axial_grid()
    ct = write_ct_series(tmp_path / "ct", grid)
    with pytest.raises(ValueError, match="non-negative"):
        write_rtdose(tmp_path / "rd.dcm", grid, -np.ones(grid.shape), ct)


# ----------------------------------------------------------------------------- RTSTRUCT
def _structure_rois(grid: ImageGrid) -> list[RoiSpec]:
    center = grid.index_to_patient([[2.4, 5.3, 8.1]])[0]
    sphere = sphere_contours(grid, center, 4.0)
    keyhole = to_patient(grid, 1, keyhole_annulus_uv((8.0, 6.0), 4.0, 1.5, n=12))
    point = to_patient(grid, 3, [[3.3, 2.2]])
    return [
        RoiSpec(
            number=3,
            name="Sphere",
            contours=tuple((c, "CLOSED_PLANAR") for c in sphere),
            color=(10, 20, 30),
            interpreted_type="PTV",
        ),
        RoiSpec(number=7, name="Ring", contours=((keyhole, "CLOSED_PLANAR"),)),
        RoiSpec(number=8, name="Point", contours=((point, "POINT"),), interpreted_type="MARKER"),
        RoiSpec(number=9, name="Empty", interpreted_type="AVOIDANCE"),
    ]


@pytest.mark.parametrize("name", ["axial", "oblique", "nonuniform"])
def test_rtstruct_content_round_trips(tmp_path: Path, name: str) -> None:
    grid = GRIDS[name]()
    ct = write_ct_series(tmp_path / "ct", grid, file_names="shuffled")
    rois = _structure_rois(grid)
    path = write_rtstruct(tmp_path / "rs.dcm", rois, ct, label="TEST")
    ds = pydicom.dcmread(path)
    assert ds.SOPClassUID == RTSTRUCT_STORAGE
    assert ds.Modality == "RTSTRUCT"
    assert ds.file_meta.MediaStorageSOPClassUID == RTSTRUCT_STORAGE
    assert ds.StructureSetLabel == "TEST"
    assert (ds.PatientID, ds.StudyInstanceUID) == (ct.patient_id, ct.study_instance_uid)
    assert ds.SeriesInstanceUID != ct.series_instance_uid

    frame = ds.ReferencedFrameOfReferenceSequence[0]
    assert frame.FrameOfReferenceUID == ct.frame_of_reference_uid
    series = frame.RTReferencedStudySequence[0].RTReferencedSeriesSequence[0]
    assert series.SeriesInstanceUID == ct.series_instance_uid
    assert {i.ReferencedSOPInstanceUID for i in series.ContourImageSequence} == set(
        ct.sop_instance_uids
    )

    assert [(i.ROINumber, i.ROIName) for i in ds.StructureSetROISequence] == [
        (r.number, r.name) for r in rois
    ]
    assert all(
        i.ReferencedFrameOfReferenceUID == ct.frame_of_reference_uid
        for i in ds.StructureSetROISequence
    )
    assert [
        (o.ReferencedROINumber, o.RTROIInterpretedType) for o in ds.RTROIObservationsSequence
    ] == [(r.number, r.interpreted_type) for r in rois]

    # Which CT image lies in each plane, from the CT headers alone.
    normal = np.cross(grid.orientation[:3], grid.orientation[3:])
    plane_of = {}
    for p in ct.files:
        header = pydicom.dcmread(p, stop_before_pixels=True)
        plane_of[header.SOPInstanceUID] = _read_floats(header, "ImagePositionPatient") @ normal

    for roi, item in zip(rois, ds.ROIContourSequence, strict=True):
        assert item.ReferencedROINumber == roi.number
        assert [int(c) for c in item.ROIDisplayColor] == list(roi.color)
        if not roi.contours:
            assert "ContourSequence" not in item
            continue
        assert len(item.ContourSequence) == len(roi.contours)
        for (points, kind), contour in zip(roi.contours, item.ContourSequence, strict=True):
            assert contour.ContourGeometricType == kind
            texts = [str(v) for v in contour.ContourData]
            assert all(len(t) <= 16 for t in texts)
            data = np.array([float(t) for t in texts]).reshape(-1, 3)
            assert contour.NumberOfContourPoints == len(points) == len(data)
            np.testing.assert_allclose(data, points, rtol=1e-12, atol=1e-12)
            reference = contour.ContourImageSequence[0].ReferencedSOPInstanceUID
            np.testing.assert_allclose(points @ normal, plane_of[reference], atol=1e-9)


def test_rtstruct_options_for_defective_files(tmp_path: Path) -> None:
    grid = axial_grid()
    ct = write_ct_series(tmp_path / "ct", grid)
    rois = _structure_rois(grid)
    path = write_rtstruct(
        tmp_path / "rs.dcm",
        rois,
        ct,
        preamble=False,
        reference_images=False,
        reference_series=False,
        raw_numbers="%.2f",
        number_of_points_override={(3, 1): 5},
    )
    raw = path.read_bytes()
    assert raw[128:132] != b"DICM"
    with pytest.raises(InvalidDicomError):
        pydicom.dcmread(path)
    ds = pydicom.dcmread(path, force=True)
    assert ds.Modality == "RTSTRUCT"
    frame = ds.ReferencedFrameOfReferenceSequence[0]
    assert "RTReferencedStudySequence" not in frame
    contours = ds.ROIContourSequence[0].ContourSequence
    assert all("ContourImageSequence" not in c for c in contours)
    assert contours[1].NumberOfContourPoints == 5
    assert contours[0].NumberOfContourPoints == len(rois[0].contours[0][0])
    text = str(contours[0].ContourData[0])
    assert text == f"{rois[0].contours[0][0][0, 0]:.2f}"


def test_rtstruct_writes_non_finite_coordinates_on_purpose(tmp_path: Path) -> None:
    grid = axial_grid()
    ct = write_ct_series(tmp_path / "ct", grid)
    points = to_patient(grid, 1, circle_uv((4.0, 4.0), 2.0, n=4))
    points[1, 0] = np.nan
    roi = RoiSpec(number=1, name="bad", contours=((points, "CLOSED_PLANAR"),))
    raw = write_rtstruct(tmp_path / "rs.dcm", [roi], ct).read_bytes()
    assert b"\\nan\\" in raw


def test_rtstruct_references_the_nearest_plane_within_half_a_gap(tmp_path: Path) -> None:
    grid = axial_grid()  # 2.5 mm slice gap
    ct = write_ct_series(tmp_path / "ct", grid)
    on_plane = to_patient(grid, 2, circle_uv((5.0, 5.0), 2.0))
    first = to_patient(grid, 0, circle_uv((5.0, 5.0), 2.0))
    last = to_patient(grid, 5, circle_uv((5.0, 5.0), 2.0))
    contours = (
        on_plane,
        on_plane + 1.2 * grid.normal,  # nearer to slice 2
        on_plane + 1.3 * grid.normal,  # nearer to slice 3
        first - 1.0 * grid.normal,  # before the first slice, within half a gap
        last + 2.0 * grid.normal,  # beyond the last slice by more than half a gap
    )
    roi = RoiSpec(number=1, name="x", contours=tuple((c, "CLOSED_PLANAR") for c in contours))
    ds = pydicom.dcmread(write_rtstruct(tmp_path / "rs.dcm", [roi], ct))
    items = ds.ROIContourSequence[0].ContourSequence
    uids = [
        c.ContourImageSequence[0].ReferencedSOPInstanceUID if "ContourImageSequence" in c else None
        for c in items
    ]
    expected = [ct.sop_instance_uids[k] for k in (2, 2, 3, 0)]
    assert uids == [*expected, None]


# ----------------------------------------------------------------------------- shapes
def _signed_area(uv: np.ndarray) -> float:
    x, y = uv[:, 0], uv[:, 1]
    return float(0.5 * (x @ np.roll(y, -1) - y @ np.roll(x, -1)))


def test_plane_mapping_puts_points_on_the_slice_plane() -> None:
    grid = oblique_grid()
    uv = np.random.default_rng(2).uniform(-20, 20, (50, 2))
    for k in range(grid.shape[0]):
        points = to_patient(grid, k, uv)
        offsets = (points - grid.slice_origins_mm()[k]) @ grid.normal
        np.testing.assert_allclose(offsets, 0.0, atol=1e-12)
        np.testing.assert_allclose(to_uv(grid, k, points), uv, atol=1e-12)
    # (u, v) = (column * column spacing, row * row spacing) at voxel centres.
    index = grid.patient_to_index(to_patient(grid, 1, [[2 * 0.7, 3 * 1.1]]))[0]
    np.testing.assert_allclose(index, [1, 3, 2], atol=1e-9)
    with pytest.raises(IndexError):
        to_patient(grid, grid.shape[0], uv)


def test_polygon_areas_and_orientation() -> None:
    shapely = pytest.importorskip("shapely")
    n = 40
    circle = circle_uv((1.0, 2.0), 5.0, n=n)
    np.testing.assert_allclose(np.hypot(circle[:, 0] - 1, circle[:, 1] - 2), 5.0)
    exact = n / 2 * np.sin(2 * np.pi / n) * 25.0
    assert shapely.Polygon(circle).area == pytest.approx(exact)
    assert _signed_area(circle) > 0
    assert _signed_area(circle_uv((1.0, 2.0), 5.0, n=n, clockwise=True)) < 0

    ellipse = ellipse_uv((0.0, 0.0), (6.0, 2.0), n=n, rotation=0.4)
    assert shapely.Polygon(ellipse).area == pytest.approx(n / 2 * np.sin(2 * np.pi / n) * 12)

    rectangle = rectangle_uv((3.0, 4.0), (2.0, 6.0), rotation=0.2)
    assert _signed_area(rectangle) == pytest.approx(12.0)
    assert shapely.Polygon(rectangle).centroid.coords[0] == pytest.approx((3.0, 4.0))

    keyhole = keyhole_annulus_uv((0.5, -0.5), 10.0, 4.0, n=n)
    ring = n / 2 * np.sin(2 * np.pi / n) * (100.0 - 16.0)
    assert _signed_area(keyhole) == pytest.approx(ring)
    assert _signed_area(
        keyhole_annulus_uv((0, 0), 10.0, 4.0, n=n, clockwise=True)
    ) == pytest.approx(-ring)
    assert len(keyhole) == 2 * n + 2
    # Outer ring closes on itself, the cut goes straight in, the inner ring closes too.
    np.testing.assert_array_equal(keyhole[0], keyhole[n])
    np.testing.assert_array_equal(keyhole[n + 1], keyhole[-1])

    gap = np.pi / 2
    c_shape = c_shape_uv((0.0, 0.0), 8.0, 5.0, gap_angle=gap, opening_angle=0.0, n=n)
    step = (2 * np.pi - gap) / (n - 1)
    assert _signed_area(c_shape) == pytest.approx((n - 1) / 2 * np.sin(step) * (64.0 - 25.0))
    assert shapely.Polygon(c_shape).is_valid
    assert not shapely.Polygon(c_shape).contains(shapely.Point(6.5, 0.0))  # in the gap
    assert shapely.Polygon(c_shape).contains(shapely.Point(-6.5, 0.0))


def test_sphere_contours_lie_on_planes_and_on_the_sphere() -> None:
    grid = oblique_grid()
    center = grid.index_to_patient([[2.3, 4.1, 6.6]])[0]
    radius = 5.0
    contours = sphere_contours(grid, center, radius, n=32)
    distances = grid.slice_positions_mm - center @ grid.normal
    expected_slices = np.flatnonzero(np.abs(distances) < radius)
    assert len(contours) == len(expected_slices)
    for k, points in zip(expected_slices, contours, strict=True):
        assert points.shape == (32, 3)
        np.testing.assert_allclose(np.linalg.norm(points - center, axis=1), radius, atol=1e-9)
        np.testing.assert_allclose(
            (points - grid.slice_origins_mm()[k]) @ grid.normal, 0, atol=1e-9
        )


def test_sphere_vertices_are_off_voxel_centres() -> None:
    grid = axial_grid()
    center = grid.index_to_patient([[3.0, 5.0, 8.0]])[0]  # on a voxel centre
    for points in sphere_contours(grid, center, 2.6):
        index = grid.patient_to_index(points)[:, 1:]
        assert np.all(np.abs(index - np.rint(index)) > 1e-6)


def test_ellipsoid_cylinder_and_cone_sections() -> None:
    grid = oblique_grid()
    center = grid.index_to_patient([[2.0, 4.2, 6.3]])[0]
    axes = np.column_stack([grid.row_direction, grid.column_direction, grid.normal])

    semi = (4.0, 3.0, 5.0)
    ellipsoid = ellipsoid_contours(grid, center, semi)
    assert len(ellipsoid) == 3  # slices 1, 2, 3 lie within 5 mm of the centre (3 mm gaps)
    for points in ellipsoid:
        local = (points - center) @ axes
        np.testing.assert_allclose(((local / semi) ** 2).sum(axis=1), 1.0, atol=1e-9)

    cylinder = cylinder_contours(grid, center, 2.5, 6.0)  # spans +-3 mm: slices 1, 2, 3
    assert len(cylinder) == 3
    for points in cylinder:
        local = (points - center) @ axes
        np.testing.assert_allclose(np.hypot(local[:, 0], local[:, 1]), 2.5, atol=1e-9)

    apex = grid.slice_origins_mm()[0] + 0.5 * grid.normal + 4 * grid.row_direction
    cone = cone_contours(grid, apex, 6.0, 12.0)  # planes at 2.5, 5.5, 8.5, 11.5 mm
    assert len(cone) == 4
    for points, t in zip(cone, [2.5, 5.5, 8.5, 11.5], strict=True):
        local = (points - apex) @ axes
        np.testing.assert_allclose(local[:, 2], t, atol=1e-9)
        np.testing.assert_allclose(np.hypot(local[:, 0], local[:, 1]), 6.0 * t / 12.0, atol=1e-9)
    # Pointing the other way, only slice 0 (0.5 mm below the apex) cuts the cone.
    (below,) = cone_contours(grid, apex, 6.0, -12.0)
    local = (below - apex) @ axes
    np.testing.assert_allclose(local[:, 2], -0.5, atol=1e-9)
    np.testing.assert_allclose(np.hypot(local[:, 0], local[:, 1]), 0.25, atol=1e-9)


# ----------------------------------------------------------------------------- demo
def test_demo_case(tmp_path: Path) -> None:
    case = write_demo_case(tmp_path / "dicom")
    assert len(case.ct.files) == 50
    header = pydicom.dcmread(case.ct.files[0], stop_before_pixels=True)
    assert (header.Rows, header.Columns) == (200, 240)
    assert [float(v) for v in header.PixelSpacing] == [1.8, 1.6]
    assert header.PatientPosition == "HFS"

    rs = pydicom.dcmread(case.rtstruct)
    names = {i.ROINumber: i.ROIName for i in rs.StructureSetROISequence}
    types = {o.ReferencedROINumber: o.RTROIInterpretedType for o in rs.RTROIObservationsSequence}
    by_name = {names[n]: types[n] for n in names}
    required = {"BODY", "Lung_L", "Lung_R", "SpinalCord", "Heart", "PTV", "Esophagus", "Marker"}
    assert required <= set(by_name)
    assert by_name["BODY"] == "EXTERNAL"
    assert by_name["PTV"] == "PTV"
    colors = [tuple(int(c) for c in i.ROIDisplayColor) for i in rs.ROIContourSequence]
    assert len(set(colors)) == len(colors)
    number_of = {v: k for k, v in names.items()}
    for lung in ("Lung_L", "Lung_R"):
        item = next(i for i in rs.ROIContourSequence if i.ReferencedROINumber == number_of[lung])
        per_plane: dict[float, int] = {}
        for contour in item.ContourSequence:
            z = round(float(contour.ContourData[2]), 3)
            per_plane[z] = per_plane.get(z, 0) + 1
        counts = sorted(set(per_plane.values()))
        assert counts == [1, 2, 3]  # plain, with a hole, with an island in the hole

    # HU follow the anatomy: sample voxel centres by index.
    ct = np.stack([pydicom.dcmread(p).pixel_array.astype(np.int32) - 1024 for p in case.ct.files])
    grid = case.ct.grid
    lung_r = grid.patient_to_index([[3.7 - 90.0, -11.3 - 5.0 - 60.0, -250.0]])[0]
    assert ct[tuple(np.rint(lung_r).astype(int))] == pytest.approx(-800, abs=40)
    assert ct[0, 0, 0] == -1000

    dose = pydicom.dcmread(case.rtdose)
    assert dose.FrameOfReferenceUID == case.ct.frame_of_reference_uid
    gy = dose.pixel_array * float(dose.DoseGridScaling)
    assert 60.0 < gy.max() <= 66.0
    assert case.dose_grid.spacing_mm == pytest.approx((3.0, 3.0, 3.0))


def test_demo_case_refuses_a_folder_with_other_files(tmp_path: Path) -> None:
    from rtmask._errors import InvalidInputError

    (tmp_path / "mine.txt").write_text("keep me")
    with pytest.raises(InvalidInputError, match=r"mine\.txt"):
        write_demo_case(tmp_path)
    assert [p.name for p in tmp_path.iterdir()] == ["mine.txt"]


def test_demo_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip(
        "rtmask.cli._convert", reason="convert command not available", exc_type=ImportError
    )
    from rtmask.cli import main

    code = main(["demo", "-o", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 0, err
    assert len(list((tmp_path / "out" / "dicom").glob("CT_*.dcm"))) == 50
    assert any((tmp_path / "out" / "masks").rglob("*.nii.gz"))
    assert "rtmask info" in err
    assert "rtmask convert" in err
    # A second run overwrites its own files.
    assert main(["demo", "-o", str(tmp_path / "out"), "--no-convert"]) == 0
