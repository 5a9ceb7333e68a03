"""Real third-party DICOM-RT files (``../shared/data``) against independent code.

Image geometry comes from SimpleITK (GDCM) reading the series; contours from plain
pydicom; the expected masks from shapely point-in-polygon tests at voxel centres placed
with SimpleITK's origin, spacing and direction. Centres within 1e-6 mm of a contour edge
are too close to judge and ignored. The whole module skips when the data are absent.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import nibabel as nib
import numpy as np
import pydicom
import pytest
import shapely
import SimpleITK as sitk

from rtmask._errors import ContourWarning, OverlapWarning, StructureSetWarning
from rtmask.discovery import ImageSeries, link_image_series, read_image_series, scan
from rtmask.geometry import ImageGrid
from rtmask.raster import rasterize
from rtmask.rtstruct import StructureSet, read_rtstruct

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
pytestmark = pytest.mark.skipif(
    not DATA.is_dir(), reason=f"real DICOM test data not found at {DATA} (../shared/data)"
)

#: Voxel centres closer than this (mm) to a contour edge are not judged.
EDGE_MM = 1e-6
#: Largest distance (mm) between a contour and the image plane it is assigned to.
PLANE_MM = 1e-3


def _need(*parts: str) -> Path:
    path = DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"{path} absent (real test data folder not installed)")
    return path


# ---------------------------------------------------------------------------- SimpleITK
@dataclass(frozen=True)
class SitkSeries:
    """A series as SimpleITK reads it; axes (i, j, k) = (column, row, slice)."""

    files: tuple[Path, ...]
    origin: np.ndarray  # (3,) LPS mm of voxel (0, 0, 0)
    spacing: np.ndarray  # (3,) mm along i, j, k
    direction: np.ndarray  # (3, 3), column n = unit LPS direction of axis n
    size: tuple[int, int, int]  # (columns, rows, slices)
    image: sitk.Image

    @property
    def shape(self) -> tuple[int, int, int]:
        """Numpy (slice, row, column) shape."""
        return (self.size[2], self.size[1], self.size[0])

    def to_axes(self, points_mm: np.ndarray) -> np.ndarray:
        """LPS points ``(N, 3)`` -> mm along the i, j, k axes from voxel (0, 0, 0)."""
        return np.asarray((points_mm - self.origin) @ self.direction)


def sitk_series(folder: Path, series_uid: str) -> SitkSeries:
    reader = sitk.ImageSeriesReader()
    names = reader.GetGDCMSeriesFileNames(str(folder), series_uid)
    assert names, f"SimpleITK found no series {series_uid} in {folder}"
    reader.SetFileNames(names)
    image = reader.Execute()
    size = image.GetSize()
    return SitkSeries(
        files=tuple(Path(n).resolve() for n in names),
        origin=np.array(image.GetOrigin()),
        spacing=np.array(image.GetSpacing()),
        direction=np.array(image.GetDirection()).reshape(3, 3),
        size=(int(size[0]), int(size[1]), int(size[2])),
        image=image,
    )


def _series_uid_of(path: Path) -> str:
    return str(pydicom.dcmread(path, stop_before_pixels=True).SeriesInstanceUID)


def assert_grid_matches_sitk(grid: ImageGrid, ref: SitkSeries) -> None:
    assert grid.shape == ref.shape
    np.testing.assert_allclose(grid.origin_mm, ref.origin, atol=1e-4)
    np.testing.assert_allclose(grid.spacing_mm, ref.spacing[::-1], rtol=1e-6, atol=1e-5)
    np.testing.assert_allclose(grid.row_direction, ref.direction[:, 0], atol=1e-6)
    np.testing.assert_allclose(grid.column_direction, ref.direction[:, 1], atol=1e-6)
    np.testing.assert_allclose(grid.normal, ref.direction[:, 2], atol=1e-6)
    # The (column, row, slice) affine against SimpleITK's index -> point mapping.
    np.testing.assert_allclose(
        grid.ijk_affine_lps()[:3, :3], ref.direction * ref.spacing, atol=1e-5
    )
    corners = [
        (0, 0, 0),
        (ref.size[0] - 1, 0, 0),
        (0, ref.size[1] - 1, 0),
        (ref.size[0] - 1, ref.size[1] - 1, ref.size[2] - 1),
        (3.25, 7.5, 0.5),
    ]
    expected = np.array([ref.image.TransformContinuousIndexToPhysicalPoint(c) for c in corners])
    ours = grid.index_to_patient(np.array([(c[2], c[1], c[0]) for c in corners], float))
    np.testing.assert_allclose(ours, expected, atol=1e-4)


# ---------------------------------------------------------------------------- truth
def pydicom_contours(path: Path) -> dict[int, list[tuple[np.ndarray, str]]]:
    """``{ROI number: [(points (N, 3), geometric type), ...]}`` decoded by pydicom."""
    dataset = pydicom.dcmread(path)
    result: dict[int, list[tuple[np.ndarray, str]]] = {}
    for item in dataset.ROIContourSequence:
        result[int(item.ReferencedROINumber)] = [
            (
                np.array([float(v) for v in c.ContourData]).reshape(-1, 3),
                str(c.ContourGeometricType),
            )
            for c in item.get("ContourSequence", [])
        ]
    return result


def polygons_by_slice(
    contours: Iterable[np.ndarray], ref: SitkSeries
) -> tuple[dict[int, list[np.ndarray]], list[int]]:
    """In-plane ``(u, v)`` mm polygons per slice, and the indices of contours off the volume."""
    planes: dict[int, list[np.ndarray]] = {}
    outside: list[int] = []
    for index, points in enumerate(contours):
        axes = ref.to_axes(points)
        k = round(float(axes[:, 2].mean()) / ref.spacing[2])
        assert np.abs(axes[:, 2] - k * ref.spacing[2]).max() < PLANE_MM, (
            f"contour {index + 1} is not on an image plane"
        )
        if 0 <= k < ref.size[2]:
            planes.setdefault(k, []).append(axes[:, :2])
        else:
            outside.append(index)
    return planes, outside


def shapely_truth(
    planes: dict[int, list[np.ndarray]], ref: SitkSeries, *, combine: str = "xor"
) -> tuple[np.ndarray, np.ndarray]:
    """Expected mask (even-odd or union of the polygons of each plane) and ambiguous centres.

    Only the bounding box of each polygon is evaluated; ``shapely.contains_xy`` runs on
    arrays of voxel-centre coordinates ``(i * spacing_i, j * spacing_j)``.
    """
    truth = np.zeros(ref.shape, dtype=bool)
    ambiguous = np.zeros(ref.shape, dtype=bool)
    for k, polygons in planes.items():
        for uv in polygons:
            low = np.floor(uv.min(axis=0) / ref.spacing[:2]).astype(int)
            high = np.ceil(uv.max(axis=0) / ref.spacing[:2]).astype(int) + 1
            i0, j0 = max(low[0], 0), max(low[1], 0)
            i1, j1 = min(high[0], ref.size[0]), min(high[1], ref.size[1])
            if i1 <= i0 or j1 <= j0:
                continue
            jj, ii = np.mgrid[j0:j1, i0:i1]
            u, v = ii * ref.spacing[0], jj * ref.spacing[1]
            inside = shapely.contains_xy(shapely.Polygon(uv), u, v)
            box = (k, slice(j0, j1), slice(i0, i1))
            if combine == "xor":
                truth[box] ^= inside
            else:
                truth[box] |= inside
            edge = shapely.buffer(shapely.LinearRing(uv), EDGE_MM)
            ambiguous[box] |= shapely.intersects_xy(edge, u, v)
    return truth, ambiguous


def assert_same_mask(mask: np.ndarray, truth: np.ndarray, ambiguous: np.ndarray, what: str) -> None:
    assert truth.any(), f"{what}: empty truth"
    wrong = (mask != truth) & ~ambiguous
    slices = sorted({int(k) for k in np.nonzero(wrong)[0]})
    assert not wrong.any(), (
        f"{what}: {int(wrong.sum())} wrong voxels of {int(truth.sum())} "
        f"(extra {int((wrong & mask).sum())}, missing {int((wrong & ~mask).sum())}) "
        f"on slices {slices[:10]}"
    )


def dice(a: np.ndarray, b: np.ndarray) -> float:
    return float(2 * np.count_nonzero(a & b) / (np.count_nonzero(a) + np.count_nonzero(b)))


# ---------------------------------------------------------------------------- LUNG1-001
@dataclass(frozen=True)
class Lung:
    series: ImageSeries
    ref: SitkSeries
    structure_set: StructureSet
    contours: dict[int, list[tuple[np.ndarray, str]]]


@pytest.fixture(scope="module")
def lung() -> Lung:
    image_folder = _need("lung1-001", "LUNG1-001", "image")
    rtstruct = _need("lung1-001", "LUNG1-001", "mask_rtstruct", "1-1.dcm")
    series_uid = _series_uid_of(next(image_folder.glob("*.dcm")))
    return Lung(
        series=read_image_series(image_folder),
        ref=sitk_series(image_folder, series_uid),
        structure_set=read_rtstruct(rtstruct),
        contours=pydicom_contours(rtstruct),
    )


def test_lung1_grid_equals_simpleitk(lung: Lung) -> None:
    assert_grid_matches_sitk(lung.series.grid, lung.ref)
    assert lung.series.grid.shape == (134, 512, 512)
    assert tuple(p.resolve() for p in lung.series.files) == lung.ref.files
    assert lung.series.warnings == ()


def test_lung1_structure_set_matches_pydicom(lung: Lung) -> None:
    assert lung.structure_set.warnings == ()
    assert [r.name for r in lung.structure_set.rois] == [
        "GTV-1",
        "Spinal-Cord",
        "Lung-Left",
        "Lung-Right",
    ]
    assert [r.n_contours for r in lung.structure_set.rois] == [21, 84, 139, 114]
    for roi in lung.structure_set.rois:
        expected = lung.contours[roi.number]
        assert roi.warnings == ()
        assert all(
            np.array_equal(c.points_mm, e) for c, (e, _) in zip(roi.contours, expected, strict=True)
        )


@pytest.mark.parametrize("name", ["GTV-1", "Spinal-Cord", "Lung-Left", "Lung-Right"])
def test_lung1_xor_equals_shapely_even_odd(lung: Lung, name: str) -> None:
    roi = lung.structure_set.roi(name)
    planes, outside = polygons_by_slice((p for p, _ in lung.contours[roi.number]), lung.ref)
    assert outside == []
    truth, ambiguous = shapely_truth(planes, lung.ref, combine="xor")
    mask = rasterize(roi, lung.series.grid, rule="xor")
    assert mask.warnings == ()
    assert_same_mask(mask.array, truth, ambiguous, f"LUNG1-001 {name} (xor)")
    # Voxel-count volume against the shapely even-odd areas times the slice spacing.
    area_mm2 = 0.0
    for polygons in planes.values():
        geometry = shapely.Polygon(polygons[0])
        for uv in polygons[1:]:
            geometry = geometry.symmetric_difference(shapely.Polygon(uv))
        area_mm2 += geometry.area
    prism_cm3 = area_mm2 * lung.ref.spacing[2] / 1000
    assert mask.volume_cm3 == pytest.approx(prism_cm3, rel=0.02)


@pytest.mark.parametrize("name", ["GTV-1", "Spinal-Cord", "Lung-Left", "Lung-Right"])
def test_lung1_auto_equals_xor_without_overlap_warnings(lung: Lung, name: str) -> None:
    roi = lung.structure_set.roi(name)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        auto = rasterize(roi, lung.series.grid, rule="auto")
    overlaps = [str(w.message) for w in caught if issubclass(w.category, OverlapWarning)]
    assert not overlaps, f"{name}: unexpected overlap warnings: {overlaps[:3]}"
    assert not caught, [str(w.message) for w in caught]
    xor = rasterize(roi, lung.series.grid, rule="xor")
    positions = lung.series.grid.slice_positions_mm
    differ = [
        f"slice {k} (z {positions[k]:.1f} mm): auto {int(auto.array[k].sum())}, "
        f"xor {int(xor.array[k].sum())}"
        for k in range(auto.array.shape[0])
        if not np.array_equal(auto.array[k], xor.array[k])
    ]
    assert not differ, f"{name}: auto and xor differ on {len(differ)} planes: {differ}"


@pytest.mark.parametrize(("name", "n_nested"), [("Lung-Left", 9), ("Lung-Right", 10)])
def test_lung1_lungs_have_nested_contours(lung: Lung, name: str, n_nested: int) -> None:
    # Guard: the auto/xor equality above is meaningful only with holes or islands.
    roi = lung.structure_set.roi(name)
    planes, _ = polygons_by_slice((p for p, _ in lung.contours[roi.number]), lung.ref)
    nested = 0
    for polygons in planes.values():
        shapes = [shapely.Polygon(uv) for uv in polygons]
        nested += sum(a.contains(b) for a in shapes for b in shapes if a is not b)
    assert nested == n_nested  # README: 9 / 10 nested contours (holes and islands)
    union = rasterize(roi, lung.series.grid, rule="union").array
    xor = rasterize(roi, lung.series.grid, rule="xor").array
    assert union.sum() > xor.sum()


def test_lung1_volumes_are_plausible(lung: Lung) -> None:
    grid = lung.series.grid
    volumes = {r.name: rasterize(r, grid).volume_cm3 for r in lung.structure_set.rois}
    message = ", ".join(f"{k} {v:.1f} cm3" for k, v in volumes.items())
    assert 50 < volumes["GTV-1"] < 400, message
    assert 10 < volumes["Spinal-Cord"] < 100, message
    assert 1000 < volumes["Lung-Left"] < 5000, message
    assert 1000 < volumes["Lung-Right"] < 5000, message


# ---------------------------------------------------------------------------- rt-utils
@pytest.fixture(scope="module")
def mock_data() -> tuple[Path, ImageSeries, SitkSeries]:
    folder = _need("rt-utils-samples", "mock_data")
    series = read_image_series(folder)
    return folder, series, sitk_series(folder, _series_uid_of(folder / "ct_1.dcm"))


def test_rt_utils_square_with_nested_polygon_is_a_hole(
    mock_data: tuple[Path, ImageSeries, SitkSeries],
) -> None:
    folder, series, ref = mock_data
    assert_grid_matches_sitk(series.grid, ref)
    (roi,) = read_rtstruct(folder / "rt.dcm").rois
    (contours,) = pydicom_contours(folder / "rt.dcm").values()
    planes, outside = polygons_by_slice((p for p, _ in contours), ref)
    assert outside == []
    assert [len(p) for p in planes.values()] == [2]
    outer, inner = (shapely.Polygon(uv) for uv in next(iter(planes.values())))
    assert outer.contains(inner)
    xor_truth, xor_ambiguous = shapely_truth(planes, ref, combine="xor")
    union_truth, union_ambiguous = shapely_truth(planes, ref, combine="union")
    for rule in ("auto", "xor"):
        mask = rasterize(roi, series.grid, rule=rule)
        assert_same_mask(mask.array, xor_truth, xor_ambiguous, f"rt.dcm ({rule})")
    union = rasterize(roi, series.grid, rule="union")
    assert_same_mask(union.array, union_truth, union_ambiguous, "rt.dcm (union)")
    hole = union.array & ~rasterize(roi, series.grid, rule="auto").array
    assert hole.sum() > 100  # the inner polygon spans about 15 x 15 mm at 0.49 mm pixels


def test_rt_utils_broken_references_link_as_discovery_reports(
    mock_data: tuple[Path, ImageSeries, SitkSeries],
) -> None:
    folder, _, _ = mock_data
    inventory = scan(folder)
    (series,) = inventory.image_series
    ct_uids = {
        str(pydicom.dcmread(folder / f, stop_before_pixels=True).SOPInstanceUID)
        for f in ("ct_1.dcm", "ct_2.dcm")
    }
    by_name = {o.path.name: o for o in inventory.structure_sets}
    for name in ("invalid_reference_rt.dcm", "non_existent_reference_rt.dcm"):
        plain = pydicom.dcmread(folder / name)
        referenced = {
            str(image.ReferencedSOPInstanceUID)
            for roi in plain.ROIContourSequence
            for contour in roi.ContourSequence
            for image in contour.get("ContourImageSequence", [])
        }
        for frame in plain.ReferencedFrameOfReferenceSequence:
            for study in frame.get("RTReferencedStudySequence", []):
                for listed in study.get("RTReferencedSeriesSequence", []):
                    referenced |= {
                        str(i.ReferencedSOPInstanceUID) for i in listed.ContourImageSequence
                    }
        present = len(referenced & ct_uids)
        link = link_image_series(by_name[name], inventory.image_series)
        assert link.series is series, link.message
        if name == "invalid_reference_rt.dcm":
            assert link.method == "series_uid"
            missing = f"{len(referenced) - present} of {len(referenced)} referenced images"
            assert any(missing in w and "not in the series" in w for w in link.warnings), (
                link.message
            )
        else:
            assert link.method == "instance_uids"
            assert f"{present} of {len(referenced)} referenced image" in link.message
        assert present < len(referenced)
        n_contours = sum(len(r.ContourSequence) for r in plain.ROIContourSequence)
        n_off = sum(
            float(c.ContourData[2]) not in (60.0, 65.0)
            for r in plain.ROIContourSequence
            for c in r.ContourSequence
        )
        assert any(
            f"{n_off} of {n_contours} contours do not lie on a slice" in w for w in link.warnings
        ), link.message


@pytest.mark.parametrize("name", ["invalid_reference_rt.dcm", "non_existent_reference_rt.dcm"])
def test_rt_utils_contours_outside_the_volume_are_reported(
    mock_data: tuple[Path, ImageSeries, SitkSeries], name: str
) -> None:
    folder, series, ref = mock_data
    structure_set = read_rtstruct(folder / name)
    contours = pydicom_contours(folder / name)
    for roi in structure_set.rois:
        planes, outside = polygons_by_slice((p for p, _ in contours[roi.number]), ref)
        assert outside, f"{name} ROI {roi.number}: expected a contour beyond the 2 slices"
        with pytest.warns(ContourWarning) as caught:
            mask = rasterize(roi, series.grid)
        messages = [str(w.message) for w in caught]
        for index in outside:
            assert any(
                f"ROI {roi.number} '{roi.name}', contour {index + 1}" in m
                and "outside the image volume" in m
                for m in messages
            ), messages
        assert len(mask.warnings) == len(outside)
        truth, ambiguous = shapely_truth(planes, ref)
        assert_same_mask(mask.array, truth, ambiguous, f"{name} ROI {roi.number}")


def test_rt_utils_oblique_slices_match_simpleitk() -> None:
    folder = _need("rt-utils-samples", "oriented_data")
    series = read_image_series(folder)
    ref = sitk_series(folder, _series_uid_of(folder / "0.dcm"))
    assert_grid_matches_sitk(series.grid, ref)
    assert series.grid.shape == (3, 50, 100)
    assert abs(float(series.grid.normal[2])) < 0.95  # really oblique
    # Slice order along the normal, from the DICOM numbers.
    headers = [pydicom.dcmread(f, stop_before_pixels=True) for f in series.files]
    orientation = np.array([float(v) for v in headers[0].ImageOrientationPatient])
    normal = np.cross(orientation[:3], orientation[3:])
    distances = [np.array([float(v) for v in h.ImagePositionPatient]) @ normal for h in headers]
    assert np.all(np.diff(distances) > 0)
    np.testing.assert_allclose(series.grid.slice_positions_mm, distances, atol=1e-4)
    assert tuple(p.resolve() for p in series.files) == ref.files


# ---------------------------------------------------------------------------- DicomRTTool
@pytest.fixture(scope="module")
def dicomrttool() -> tuple[ImageSeries, SitkSeries, StructureSet, Path]:
    folder = _need("dicomrttool-anon")
    _need("dicomrttool-anon", "RS_Body_SpinalCord.dcm")
    series = read_image_series([folder / f"CT_{n}.dcm" for n in range(1, 5)])
    ref = sitk_series(folder, _series_uid_of(folder / "CT_1.dcm"))
    return series, ref, read_rtstruct(folder / "RS_Body_SpinalCord.dcm"), folder


@pytest.mark.parametrize("name", ["BODY", "SpinalCord"])
def test_dicomrttool_masks_equal_shapely(
    dicomrttool: tuple[ImageSeries, SitkSeries, StructureSet, Path], name: str
) -> None:
    series, ref, structure_set, folder = dicomrttool
    assert_grid_matches_sitk(series.grid, ref)
    roi = structure_set.roi(name)
    contours = pydicom_contours(folder / "RS_Body_SpinalCord.dcm")[roi.number]
    planes, outside = polygons_by_slice((p for p, _ in contours), ref)
    assert outside == []
    assert sorted(planes) == [0, 1, 2, 3]
    truth, ambiguous = shapely_truth(planes, ref)
    mask = rasterize(roi, series.grid)
    assert mask.warnings == ()
    assert_same_mask(mask.array, truth, ambiguous, f"DicomRTTool {name}")


def test_dicomrttool_agrees_with_its_own_mask(
    dicomrttool: tuple[ImageSeries, SitkSeries, StructureSet, Path],
) -> None:
    # Mask.nii.gz is DicomRTTool's label map (a cross-check, not ground truth).
    series, _, structure_set, _ = dicomrttool
    image = nib.load(_need("dicomrttool-anon", "Mask.nii.gz"))
    # Layout: same affine as SimpleITK writes for this series -> (i=column, j=row, k=slice).
    np.testing.assert_allclose(image.affine, series.grid.nifti_affine(), atol=1e-4)
    labels = np.transpose(np.asarray(image.dataobj), (2, 1, 0))
    assert labels.shape == series.grid.shape
    values = [int(v) for v in np.unique(labels) if v != 0]
    masks = {r.name: rasterize(r, series.grid).array for r in structure_set.rois}
    scores: dict[str, float] = {}
    for name, ours in masks.items():
        # An exclusive label map: an ROI is every label lying mostly inside our mask
        # (BODY = body label + cord label, as the cord is drawn inside the body).
        chosen = [
            v
            for v in values
            if np.count_nonzero(ours & (labels == v)) >= 0.5 * np.count_nonzero(labels == v)
        ]
        assert chosen, f"{name}: no label of {values} lies inside our mask"
        theirs = np.isin(labels, chosen)
        scores[name] = dice(ours, theirs)
        # DicomRTTool also fills centres on and just outside the edge: theirs holds ours.
        assert np.count_nonzero(ours & ~theirs) <= 0.01 * np.count_nonzero(ours), name
    report = ", ".join(f"{k} Dice {v:.4f}" for k, v in scores.items())
    assert scores["BODY"] > 0.99, report
    # A thin structure (about 1.5 cm across, 1 mm pixels): a one-pixel-wider border costs ~7 %.
    assert scores["SpinalCord"] > 0.90, report


# ---------------------------------------------------------------------------- dicompyler
#: ROI name -> contour count, from the folder's README.
BREAST_CONTOURS = {
    "BODY": 141,
    "Areola": 0,
    "Borders": 2,
    "Breast": 48,
    "Heart": 33,
    "Lt Lung": 165,
    "Nodes": 4,
    "Scar": 6,
    "Tumor Bed": 18,
    "Tumor Bed Block": 24,
}
#: Volumes (cm3) from the planning system's embedded DVHs (README).
TPS_VOLUMES_CM3 = {"Heart": 437.462, "Lt Lung": 2008.949, "Breast": 396.229}


@pytest.fixture(scope="module")
def breast() -> StructureSet:
    path = _need("dicompyler-breast", "rtss.dcm")
    with pytest.warns(StructureSetWarning, match="Areola"):
        return read_rtstruct(path)


def test_dicompyler_breast_structure_set(breast: StructureSet) -> None:
    assert {r.name: r.n_contours for r in breast.rois} == BREAST_CONTOURS
    assert len(breast.rois) == 10
    (warning,) = breast.roi("Areola").warnings
    assert "ROI 2 'Areola'" in warning
    assert "ContourSequence" in warning
    assert all(not r.warnings for r in breast.rois if r.name != "Areola")
    plain = pydicom_contours(_need("dicompyler-breast", "rtss.dcm"))
    for roi in breast.rois:
        assert all(
            np.array_equal(c.points_mm, p)
            for c, (p, _) in zip(roi.contours, plain[roi.number], strict=True)
        )


def test_dicompyler_breast_masks_on_a_covering_grid(breast: StructureSet) -> None:
    grid = ImageGrid.covering(
        breast.all_points_mm(),
        spacing_mm=(3, 2, 2),
        frame_of_reference_uid=breast.frame_of_reference_uid,
    )
    volumes = {}
    for roi in breast.rois:
        if roi.encloses_volume:
            mask = rasterize(roi, grid, slice_mode="slab")
            assert mask.warnings == (), mask.warnings
            volumes[roi.name] = mask.volume_cm3
    assert set(volumes) == set(BREAST_CONTOURS) - {"Areola"}
    assert all(v > 0 for v in volumes.values()), volumes
    # Lt Lung has holes: parity (auto) takes them out, union does not.
    lung = breast.roi("Lt Lung")
    auto = rasterize(lung, grid, slice_mode="slab").array
    union = rasterize(lung, grid, slice_mode="slab", rule="union").array
    xor = rasterize(lung, grid, slice_mode="slab", rule="xor").array
    assert np.array_equal(auto, xor)
    assert union.sum() > auto.sum()
    assert not (auto & ~union).any()


@pytest.mark.parametrize("name", sorted(TPS_VOLUMES_CM3))
def test_dicompyler_breast_volumes_against_the_tps(breast: StructureSet, name: str) -> None:
    # Slices on the 3 mm contour planes, 1 mm pixels; the TPS volume is not ground truth
    # (its own convention), but a good converter lands within a few per cent of it.
    grid = ImageGrid.covering(breast.all_points_mm(), spacing_mm=(3, 1, 1))
    volume = rasterize(breast.roi(name), grid, slice_mode="slab").volume_cm3
    tps = TPS_VOLUMES_CM3[name]
    assert volume == pytest.approx(tps, rel=0.03), (
        f"{name} {volume:.3f} cm3 vs TPS {tps} cm3 ({volume / tps - 1:+.2%})"
    )
