"""Contour-based structure volumes against analytic geometry, and ``rtmask volumes``."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import shapely

from rtmask._errors import InvalidInputError
from rtmask.cli import main
from rtmask.dvh import ContourVolume, EndCaps, contour_volume
from rtmask.geometry import ImageGrid
from rtmask.raster import rasterize
from rtmask.rtstruct import ROI, Contour, GeometricType, read_rtstruct
from rtmask.synthetic import RoiSpec, cylinder_contours, write_ct_series, write_rtstruct

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
BREAST = DATA / "dicompyler-breast" / "rtss.dcm"


def _ngon(radius: float, z: float, n: int = 128, center: tuple[float, float] = (0.0, 0.0)):
    angles = 2 * np.pi * np.arange(n) / n
    return np.column_stack(
        [center[0] + radius * np.cos(angles), center[1] + radius * np.sin(angles), np.full(n, z)]
    )


def _ngon_area(radius: float, n: int = 128) -> float:
    return n / 2 * radius**2 * math.sin(2 * math.pi / n)


def _roi(*contours: np.ndarray | Contour, name: str = "X") -> ROI:
    items = tuple(c if isinstance(c, Contour) else Contour(points_mm=c) for c in contours)
    return ROI(number=1, name=name, contours=items)


def _slabs(positions: list[float], half: bool) -> list[float]:
    """Slab thickness per plane, written out independently of the library."""
    gaps = [float(g) for g in np.diff(positions)]
    before = [gaps[0] / 2 if half else 0.0] + [g / 2 for g in gaps]
    after = [g / 2 for g in gaps] + [gaps[-1] / 2 if half else 0.0]
    return [b + a for b, a in zip(before, after, strict=True)]


def test_cylinder_half_and_no_caps_are_exact() -> None:
    planes = np.arange(21) * 2.0 - 20.0
    roi = _roi(*[_ngon(15.0, z) for z in planes])
    a_n = _ngon_area(15.0)
    half = contour_volume(roi)
    none = contour_volume(roi, end_caps="none")
    assert isinstance(half, ContourVolume)
    assert half.end_caps is EndCaps.HALF
    assert half.volume_cm3 == pytest.approx(a_n * 42.0 / 1000, rel=1e-9)
    assert none.volume_cm3 == pytest.approx(a_n * 40.0 / 1000, rel=1e-9)
    np.testing.assert_allclose(half.plane_positions_mm, planes, atol=1e-9)
    np.testing.assert_allclose(half.plane_areas_mm2, a_n, rtol=1e-9)
    assert half.slab_thicknesses_mm.sum() == pytest.approx(42.0)
    assert "half" in half.convention
    assert half.warnings == ()


def test_contour_order_and_direction_do_not_matter() -> None:
    planes = [4.0, -2.0, 0.0, 2.0]
    roi = _roi(*[_ngon(10.0, z)[::-1] for z in planes])
    assert contour_volume(roi).volume_cm3 == pytest.approx(_ngon_area(10.0) * 8.0 / 1000, rel=1e-9)


def test_non_uniform_gaps_use_actual_plane_positions() -> None:
    positions = [0.0, 1.0, 3.0, 6.0, 6.5, 10.0]
    radii = [5.0, 6.0, 7.0, 8.0, 7.5, 4.0]
    roi = _roi(*[_ngon(r, z) for r, z in zip(radii, positions, strict=True)])
    # By hand: half caps 0.5+0.5, 0.5+1, 1+1.5, 1.5+0.25, 0.25+1.75, 1.75+1.75
    half_slabs = [1.0, 1.5, 2.5, 1.75, 2.0, 3.5]
    none_slabs = [0.5, 1.5, 2.5, 1.75, 2.0, 1.75]
    assert _slabs(positions, True) == half_slabs
    assert _slabs(positions, False) == none_slabs
    areas = [_ngon_area(r) for r in radii]
    for caps, slabs in (("half", half_slabs), ("none", none_slabs)):
        result = contour_volume(roi, end_caps=caps)
        expected = sum(a * t for a, t in zip(areas, slabs, strict=True)) / 1000
        assert result.volume_cm3 == pytest.approx(expected, rel=1e-9)
        np.testing.assert_allclose(result.slab_thicknesses_mm, slabs)


def test_a_wide_gap_between_planes_is_reported_and_bridged_half_way() -> None:
    positions = [0.0, 2.0, 4.0, 6.0, 26.0, 28.0, 30.0]  # two pieces, 20 mm apart
    roi = _roi(*[_ngon(10.0, z) for z in positions])
    result = contour_volume(roi)
    gap_messages = [m for m in result.warnings if "gap(s) between contour planes" in m]
    assert len(gap_messages) == 1
    assert "the widest 20.00 mm (planes at 6.00 and 26.00 mm" in gap_messages[0]
    assert "separate pieces" in gap_messages[0]
    # The slabs still meet half-way: the planes beside the gap reach 10 mm into it.
    np.testing.assert_allclose(result.slab_thicknesses_mm, [2, 2, 2, 11, 11, 2, 2])


@pytest.mark.parametrize(
    "positions",
    [np.arange(8) * 2.0, np.cumsum([0.0, 2.0, 2.5, 2.0, 2.5, 2.0, 2.5]), [0.0, 2.0, 4.0]],
    ids=["uniform", "alternating 2 and 2.5 mm", "three planes"],
)
def test_even_or_mildly_uneven_planes_are_not_reported(positions: list[float]) -> None:
    result = contour_volume(_roi(*[_ngon(10.0, float(z)) for z in positions]))
    assert not [m for m in result.warnings if "gap(s)" in m]


@pytest.mark.parametrize("shape", ["sphere", "cone"])
def test_sphere_and_cone_equal_the_prism_model(shape: str) -> None:
    spacing, n = 3.0, 64
    positions, radii = [], []
    for z in np.arange(-12.0, 12.0 + 1e-9, spacing):
        r = math.sqrt(max(0.0, 144 - z * z)) if shape == "sphere" else (z + 12) / 24 * 12
        if r > 1e-6:
            positions.append(float(z))
            radii.append(r)
    roi = _roi(*[_ngon(r, z, n) for r, z in zip(radii, positions, strict=True)])
    expected = (
        sum(_ngon_area(r, n) * t for r, t in zip(radii, _slabs(positions, True), strict=True))
        / 1000
    )
    assert contour_volume(roi).volume_cm3 == pytest.approx(expected, rel=1e-9)


def test_fine_sphere_approaches_the_analytic_volume() -> None:
    radius = 12.0
    contours = [
        _ngon(math.sqrt(radius**2 - z * z), float(z), 512)
        for z in np.arange(-radius, radius + 1e-9, 0.2)
        if radius**2 - z * z > 1e-6
    ]
    volume = contour_volume(_roi(*contours)).volume_cm3
    assert volume == pytest.approx(4 / 3 * math.pi * radius**3 / 1000, rel=0.01)


def _single_plane(*contours: Contour | np.ndarray, rule: str = "auto") -> float:
    result = contour_volume(_roi(*contours), rule=rule, single_plane_thickness_mm=1.0)
    return float(result.plane_areas_mm2[0])


def test_annulus_island_and_rules() -> None:
    outer, inner, island = _ngon(20.0, 0.0), _ngon(10.0, 0.0), _ngon(5.0, 0.0)
    ring = _ngon_area(20.0) - _ngon_area(10.0)
    assert _single_plane(outer, inner) == pytest.approx(ring, rel=1e-9)
    assert _single_plane(outer, inner, rule="xor") == pytest.approx(ring, rel=1e-9)
    assert _single_plane(outer, inner, rule="union") == pytest.approx(_ngon_area(20.0), rel=1e-9)
    assert _single_plane(inner, island, outer) == pytest.approx(ring + _ngon_area(5.0), rel=1e-9)


def test_overlapping_contours_are_united_with_a_warning() -> None:
    a, b = _ngon(10.0, 0.0, center=(-5.0, 0.0)), _ngon(10.0, 0.0, center=(5.0, 0.0))
    union = shapely.Polygon(a[:, :2]).union(shapely.Polygon(b[:, :2])).area
    result = contour_volume(_roi(a, b, name="Pair"), single_plane_thickness_mm=1.0)
    assert result.plane_areas_mm2[0] == pytest.approx(union, rel=1e-9)
    assert len(result.warnings) == 1
    assert "'Pair'" in result.warnings[0]
    assert "overlap" in result.warnings[0]
    assert "0.00 mm" in result.warnings[0]
    assert _single_plane(a, b, rule="union") == pytest.approx(union, rel=1e-9)


def test_closedplanar_xor_pair_is_the_symmetric_difference() -> None:
    a, b = _ngon(10.0, 0.0, center=(-5.0, 0.0)), _ngon(10.0, 0.0, center=(5.0, 0.0))
    expected = shapely.Polygon(a[:, :2]).symmetric_difference(shapely.Polygon(b[:, :2])).area
    xor = GeometricType.CLOSEDPLANAR_XOR
    pair = (Contour(points_mm=a, geometric_type=xor), Contour(points_mm=b, geometric_type=xor))
    for rule in ("auto", "union", "xor"):
        assert _single_plane(*pair, rule=rule) == pytest.approx(expected, rel=1e-9)


def test_keyhole_polygon_gives_the_ring_area() -> None:
    outer, inner = _ngon(20.0, 0.0), _ngon(10.0, 0.0)
    keyhole = np.concatenate([outer, outer[:1], inner[:1], inner[::-1], inner[:1]])
    expected = _ngon_area(20.0) - _ngon_area(10.0)
    assert _single_plane(keyhole) == pytest.approx(expected, rel=1e-9)


def test_single_plane_needs_a_thickness() -> None:
    roi = _roi(_ngon(10.0, 5.0), name="Flat")
    with pytest.raises(
        InvalidInputError,
        match=r"'Flat' is contoured on one plane only \(at 5\.00 mm\).*"
        r"give single_plane_thickness_mm",
    ):
        contour_volume(roi)
    result = contour_volume(roi, single_plane_thickness_mm=2.5)
    assert result.volume_cm3 == pytest.approx(_ngon_area(10.0) * 2.5 / 1000, rel=1e-9)


def test_point_only_roi_has_zero_volume_with_a_warning() -> None:
    point = Contour(points_mm=[[1.0, 2.0, 3.0]], geometric_type=GeometricType.POINT)
    result = contour_volume(_roi(point, name="Marker"))
    assert result.volume_cm3 == 0.0
    assert result.n_planes == 0
    assert "'Marker'" in result.warnings[0]
    assert contour_volume(_roi()).volume_cm3 == 0.0


def test_contour_off_the_common_normal_is_left_out_with_a_warning() -> None:
    tilted = _ngon(10.0, 0.0)
    tilted[:, 2] = tilted[:, 0] * 0.1
    result = contour_volume(_roi(_ngon(15.0, 0.0), _ngon(15.0, 2.0), tilted))
    assert result.n_planes == 2
    assert any("not planar or not parallel" in w for w in result.warnings)


def test_oblique_planes_give_the_same_volume() -> None:
    planes = np.arange(21) * 2.0 - 20.0
    rotation = np.linalg.qr(np.array([[1.0, 0.3, 0.2], [0.1, 1.0, 0.4], [0.3, 0.2, 1.0]]))[0]
    roi = _roi(*[_ngon(15.0, z) @ rotation.T + [10.0, -5.0, 3.0] for z in planes])
    assert contour_volume(roi).volume_cm3 == pytest.approx(_ngon_area(15.0) * 42.0 / 1000, rel=1e-9)


def _cylinder_grid() -> ImageGrid:
    return ImageGrid.from_explicit(
        origin_mm=(-19.75, -19.75, -20.0), spacing_mm=(2.0, 0.5, 0.5), shape=(21, 80, 80)
    )


def test_voxel_volume_matches_the_half_cap_contour_volume() -> None:
    grid = _cylinder_grid()
    contours = cylinder_contours(grid, (0.0, 0.0, 0.0), 15.0, 40.0, n=128)
    assert len(contours) == 21
    roi = _roi(*contours)
    contour = contour_volume(roi).volume_cm3
    assert rasterize(roi, grid).volume_cm3 == pytest.approx(contour, rel=0.02)
    assert rasterize(roi, grid, fractional=4).volume_cm3 == pytest.approx(contour, rel=0.02)


def _case(tmp_path: Path, with_images: bool = True) -> Path:
    grid = _cylinder_grid()
    ct = write_ct_series(tmp_path / "ct", grid)
    contours = cylinder_contours(grid, (0.0, 0.0, 0.0), 15.0, 40.0, n=128)
    point = np.array([[0.0, 0.0, 0.0]])
    disc = cylinder_contours(grid, (0.0, 0.0, 0.0), 5.0, 0.0, n=128)  # one plane
    rois = [
        RoiSpec(number=1, name="Cylinder", contours=tuple((c, "CLOSED_PLANAR") for c in contours)),
        RoiSpec(number=2, name="Marker", contours=((point, "POINT"),)),
        RoiSpec(number=3, name="Disc", contours=tuple((c, "CLOSED_PLANAR") for c in disc)),
    ]
    folder = tmp_path if with_images else tmp_path / "alone"
    folder.mkdir(exist_ok=True)
    return write_rtstruct(folder / "rtss.dcm", rois, ct)


def test_cli_volumes_json_matches_the_library(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _case(tmp_path)
    assert main(["volumes", str(path), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    roi = read_rtstruct(path).roi(1)
    grid = _cylinder_grid()
    first, second, third = report["rois"]
    assert first["number"] == 1
    assert first["name"] == "Cylinder"
    assert first["contour_half_cm3"] == pytest.approx(contour_volume(roi).volume_cm3, rel=1e-12)
    assert first["contour_none_cm3"] == pytest.approx(
        contour_volume(roi, end_caps="none").volume_cm3, rel=1e-12
    )
    assert first["voxel_cm3"] == pytest.approx(rasterize(roi, grid).volume_cm3, rel=1e-9)
    assert first["fractional_cm3"] == pytest.approx(
        rasterize(roi, grid, fractional=4).volume_cm3, rel=1e-9
    )
    assert first["contour_half_cm3"] == pytest.approx(_ngon_area(15.0) * 42 / 1000, rel=1e-5)
    assert second["name"] == "Marker"
    assert second["contour_half_cm3"] is None
    assert second["voxel_cm3"] is None
    # An ROI on one plane stands for one image slice (2 mm) when the images are known.
    assert third["contour_half_cm3"] == pytest.approx(_ngon_area(5.0) * 2.0 / 1000, rel=1e-9)
    assert set(report["conventions"]) >= {"contour_half_cm3", "contour_none_cm3", "voxel_cm3"}


def test_cli_volumes_table_and_explicit_image(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _case(tmp_path, with_images=False)
    assert main(["volumes", str(path), "--image", str(tmp_path / "ct"), "--roi", "cyl*"]) == 0
    out = capsys.readouterr().out
    assert "Cylinder" in out
    assert "Marker" not in out


def test_cli_volumes_without_images_leaves_voxel_columns_empty(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _case(tmp_path, with_images=False)
    assert main(["volumes", str(path), "--json"]) == 0
    first = json.loads(capsys.readouterr().out)["rois"][0]
    assert first["voxel_cm3"] is None
    assert first["fractional_cm3"] is None
    assert first["contour_half_cm3"] > 0
    assert main(["volumes", str(path)]) == 0
    captured = capsys.readouterr()
    assert "Cylinder" in captured.out
    assert "give --image" in captured.err


def test_cli_volumes_rejects_a_file_that_is_no_structure_set(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ct = write_ct_series(tmp_path / "ct", _cylinder_grid())
    assert main(["volumes", str(ct.files[0])]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:")
    assert len(err.splitlines()) == 1


@pytest.mark.skipif(not BREAST.is_file(), reason="../shared/data (dicompyler-breast) absent")
def test_breast_contour_volumes_match_the_planning_system() -> None:
    tps = {
        "Heart": 437.462,
        "Lt Lung": 2008.949,
        "Breast": 396.229,
        "BODY": 13944.42,
        "Tumor Bed": 12.809,
        "Tumor Bed Block": 62.883,
    }
    structure_set = read_rtstruct(BREAST, on_invalid="ignore")
    ours = {name: contour_volume(structure_set.roi(name)).volume_cm3 for name in tps}
    table = "; ".join(
        f"{name}: {ours[name]:.3f} vs TPS {tps[name]} ({(ours[name] / tps[name] - 1):+.2%})"
        for name in tps
    )
    for name in ("Heart", "Lt Lung", "Breast", "Tumor Bed Block"):
        assert ours[name] == pytest.approx(tps[name], rel=0.02), table
