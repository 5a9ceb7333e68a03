"""Dose planes, isodose lines, boundary dose and DoseGrid arithmetic, against analytic doses.

Expected values: a linear dose (reproduced exactly by linear interpolation) evaluated at
the plane's points; circles (and their intersections with the grid's box, by shapely) for
the isodoses of a radially symmetric dose.
"""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import numpy as np
import pydicom
import pytest
import shapely
from numpy.typing import NDArray
from pydicom.uid import RLELossless

from conftest import FFS, HFP, HFS, OBLIQUE, run_cli
from rtmask import GeometryError, ImageGrid, InvalidInputError
from rtmask._errors import GeometryWarning
from rtmask.dose import (
    DoseGrid,
    DosePlane,
    boundary_dose_note,
    dose_plane,
    isodose_lines,
    max_boundary_dose_gy,
    read_dose,
    read_dose_reference,
)
from rtmask.export import write_rtdose
from rtmask.synthetic import write_ct_series, write_demo_case
from rtmask.synthetic import write_rtdose as write_synthetic_dose

FloatArray = NDArray[np.float64]
GRADIENT = np.array([0.3, -0.2, 0.45])
CENTRE = np.array([4.0, -3.0, 2.0])


def _centres(grid: ImageGrid) -> FloatArray:
    index = np.stack(np.meshgrid(*(np.arange(n) for n in grid.shape), indexing="ij"), axis=-1)
    return grid.index_to_patient(index.reshape(-1, 3)).reshape(*grid.shape, 3)


def _linear(points: FloatArray) -> FloatArray:
    return np.asarray(50.0 + (points - CENTRE) @ GRADIENT)


def _grid(
    orientation: tuple[float, ...] = HFS, shape: tuple[int, int, int] = (9, 14, 11)
) -> ImageGrid:
    return ImageGrid.from_explicit(
        origin_mm=(-21.0, -17.5, -12.25),
        spacing_mm=(2.5, 3.0, 2.0),
        shape=shape,
        orientation=orientation,
        frame_of_reference_uid="1.2.3",
    )


def _dose(grid: ImageGrid, field: FloatArray | None = None) -> DoseGrid:
    values = _linear(_centres(grid)) if field is None else field
    return DoseGrid(dose_gy=values, grid=grid, dose_type="PHYSICAL", summation_type="PLAN")


def _inside_coordinate(grid: ImageGrid, coordinate: int, fraction: float) -> float:
    points = _centres(grid)[..., coordinate]
    return float(points.min() + fraction * (points.max() - points.min()))


@pytest.mark.parametrize("orientation", [HFS, HFP, FFS], ids=["HFS", "HFP", "FFS"])
@pytest.mark.parametrize("axis", ["axial", "coronal", "sagittal"])
def test_plane_of_a_linear_dose_is_exact(orientation: tuple[float, ...], axis: str) -> None:
    grid = _grid(orientation)
    dose = _dose(grid)
    coordinate = {"sagittal": 0, "coronal": 1, "axial": 2}[axis]
    position = _inside_coordinate(grid, coordinate, 0.37)  # between two frames
    plane = dose.plane(position, axis)  # type: ignore[arg-type]
    points = plane.points_mm()
    assert np.allclose(points[..., coordinate], position, atol=1e-9)
    assert np.allclose(plane.dose_gy, _linear(points), atol=1e-9)
    assert plane.position_mm == position
    assert plane.axis == axis
    assert plane.frame_of_reference_uid == "1.2.3"
    assert plane.max_gy == pytest.approx(float(_linear(points).max()))
    # Sample spacing along the plane matches the grid's steps in that plane.
    assert plane.shape == tuple(
        n for k, n in enumerate(grid.shape) if k != _along(grid, coordinate)
    )
    middle = plane.index_to_patient(np.array([[0.5, 0.5]]))[0]
    assert np.allclose(middle, points[:2, :2].reshape(-1, 3).mean(axis=0))


def _along(grid: ImageGrid, coordinate: int) -> int:
    directions = np.stack([grid.normal, grid.column_direction, grid.row_direction])
    return int(np.argmax(np.abs(directions[:, coordinate])))


def test_plane_through_uneven_frames_is_exact() -> None:
    positions = np.array([[-10.0, -8.0, z] for z in (-6.0, -3.5, 0.0, 1.0, 6.5)])
    grid = ImageGrid.from_slices(
        positions_mm=positions,
        orientation=HFS,
        pixel_spacing_mm=(2.0, 2.5),
        rows=6,
        columns=7,
        frame_of_reference_uid="1.2.3",
    )
    dose = _dose(grid)
    axial = dose.plane(0.4, "axial")
    assert np.allclose(axial.dose_gy, _linear(axial.points_mm()), atol=1e-9)
    coronal = dose.plane(-3.0, "coronal")
    assert np.allclose(coronal.row_offsets_mm, [0.0, 2.5, 6.0, 7.0, 12.5])
    assert np.allclose(coronal.dose_gy, _linear(coronal.points_mm()), atol=1e-9)


def test_plane_snaps_to_a_near_frame_or_refuses() -> None:
    grid = _grid()
    dose = _dose(grid)
    frame_z = float(_centres(grid)[3, 0, 0, 2])
    snapped = dose.plane(frame_z + 0.4, snap_mm=0.5)
    assert snapped.position_mm == pytest.approx(frame_z)
    assert np.array_equal(snapped.dose_gy, dose.dose_gy[3])
    interpolated = dose.plane(frame_z + 0.4)
    assert np.allclose(interpolated.dose_gy, dose.dose_gy[3] + 0.4 * GRADIENT[2])
    with pytest.raises(InvalidInputError, match=r"no axial dose frame lies within 0\.1 mm"):
        dose_plane(dose, frame_z + 0.4, snap_mm=0.1, interpolate=False)
    with pytest.raises(InvalidInputError, match="outside the dose grid"):
        dose.plane(500.0)
    with pytest.raises(InvalidInputError, match="axial, coronal or sagittal"):
        dose.plane(0.0, "transverse")  # type: ignore[arg-type]
    with pytest.raises(GeometryError, match="oblique"):
        _dose(_grid(OBLIQUE)).plane(0.0)
    single = _dose(_grid(shape=(1, 5, 6)))
    assert np.array_equal(
        single.plane(float(_centres(single.grid)[0, 0, 0, 2])).dose_gy, single.dose_gy[0]
    )


# ------------------------------------------------------------------------- isodose
SIGMA_MM = 18.0
PEAK_GY = 60.0


def _gaussian(grid: ImageGrid, centre: FloatArray) -> DoseGrid:
    r2 = np.sum((_centres(grid) - centre) ** 2, axis=-1)
    return _dose(grid, PEAK_GY * np.exp(-r2 / (2 * SIGMA_MM**2)))


def _radius(level: float, dz: float) -> float:
    return float(np.sqrt(-2 * SIGMA_MM**2 * np.log(level / PEAK_GY) - dz**2))


@pytest.mark.parametrize("level", [50.0, 30.0, 12.0])
def test_isodose_of_a_spherical_dose_is_a_circle(level: float) -> None:
    grid = ImageGrid.from_explicit(
        origin_mm=(-60.0, -55.0, -20.0),
        spacing_mm=(2.0, 1.5, 2.0),  # anisotropic pixels
        shape=(21, 75, 61),
        frame_of_reference_uid="1.2.3",
    )
    centre = np.array([1.3, -0.7, 0.4])
    dose = _gaussian(grid, centre)
    z = 5.0
    lines = dose.isodose_lines(level, z)
    assert len(lines) == 1
    ring = lines[0]
    assert np.allclose(ring[:, 2], z)
    radius = _radius(level, z - centre[2])
    # Every vertex within half a voxel of the circle (the largest pixel side, 2 mm).
    distance = np.hypot(ring[:, 0] - centre[0], ring[:, 1] - centre[1])
    assert np.abs(distance - radius).max() < 1.0
    polygon = shapely.Polygon(ring[:, :2])
    circle = shapely.Point(centre[:2]).buffer(radius, quad_segs=256)
    assert polygon.is_valid
    # Between the rings, a band a quarter of a millimetre wide on average at most.
    assert polygon.symmetric_difference(circle).area / circle.length < 0.25


def test_isodose_cut_by_the_border_is_closed_along_it() -> None:
    grid = ImageGrid.from_explicit(
        origin_mm=(-20.0, -20.0, -4.0), spacing_mm=(2.0, 1.0, 1.0), shape=(5, 41, 41)
    )
    centre = np.array([15.0, 0.0, 0.0])  # the 30 Gy circle reaches beyond x = 20 mm
    dose = _gaussian(grid, centre)
    (ring,) = isodose_lines(30.0, dose.plane(0.0))
    box = shapely.box(-20.0, -20.0, 20.0, 20.0)
    expected = shapely.Point(centre[:2]).buffer(_radius(30.0, 0.0), quad_segs=256) & box
    polygon = shapely.Polygon(ring[:, :2])
    assert polygon.is_valid
    assert np.max(ring[:, 0]) == pytest.approx(20.0)
    assert polygon.symmetric_difference(expected).area / expected.area < 0.02


def test_isodose_of_a_ring_dose_gives_two_rings_and_saddles_stay_valid() -> None:
    grid = ImageGrid.from_explicit(
        origin_mm=(-30.0, -30.0, 0.0), spacing_mm=(1.0, 1.0, 1.0), shape=(1, 61, 61)
    )
    r = np.hypot(_centres(grid)[..., 0], _centres(grid)[..., 1])
    dose = _dose(grid, 40.0 * np.exp(-((r - 15.0) ** 2) / 20.0))
    rings = dose.isodose_lines(20.0, dose.plane(0.0))
    radii = sorted(float(np.hypot(g[:, 0], g[:, 1]).mean()) for g in rings)
    half_width = np.sqrt(20.0 * np.log(2.0))
    assert radii == pytest.approx([15.0 - half_width, 15.0 + half_width], abs=0.5)
    checker = np.kron(np.array([[1.0, 0.0], [0.0, 1.0]]), np.ones((3, 3)))[None]
    small = DoseGrid(
        dose_gy=checker,
        grid=ImageGrid.from_explicit(origin_mm=(0, 0, 0), spacing_mm=(1, 1, 1), shape=(1, 6, 6)),
    )
    for level in (0.5, 0.2, 0.8):  # saddles split one way or the other
        lines = small.isodose_lines(level, 0.0)
        assert all(shapely.Polygon(g[:, :2]).is_valid for g in lines)
        assert sum(shapely.Polygon(g[:, :2]).area for g in lines) > 0
    assert small.isodose_lines(2.0, 0.0) == []
    with pytest.raises(InvalidInputError, match="finite"):
        small.isodose_lines(float("nan"), 0.0)


def test_dose_plane_checks_its_offsets() -> None:
    with pytest.raises(InvalidInputError, match="offsets"):
        DosePlane(
            dose_gy=np.zeros((2, 3)),
            origin_mm=np.zeros(3),
            row_direction=np.array([1.0, 0, 0]),
            column_direction=np.array([0.0, 1, 0]),
            row_offsets_mm=np.arange(3.0),
            column_offsets_mm=np.arange(3.0),
            axis="axial",
            position_mm=0.0,
        )


# ------------------------------------------------------------------- boundary dose
def test_max_boundary_dose_is_the_largest_face_value() -> None:
    grid = _grid(shape=(6, 7, 8))
    values = np.zeros(grid.shape)
    values[2:4, 2:5, 2:6] = 10.0  # interior
    assert max_boundary_dose_gy(_dose(grid, values)) == 0.0
    for face in [(0, 3, 3), (5, 3, 3), (2, 0, 3), (2, 6, 3), (2, 3, 0), (2, 3, 7)]:
        edged = values.copy()
        edged[face] = 1.5
        dose = _dose(grid, edged)
        assert dose.max_boundary_dose_gy == 1.5, face
        assert boundary_dose_note(dose) is not None
        assert boundary_dose_note(dose, share=0.2) is None
    note = boundary_dose_note(DoseGrid(dose_gy=edged, grid=grid, source="RD.dcm"))
    assert note is not None
    assert note.startswith("RD.dcm: the dose on the grid's faces reaches 1.5 Gy, 15 %")
    assert boundary_dose_note(_dose(grid, np.zeros(grid.shape))) is None


# ---------------------------------------------------------------- DoseGrid + and *
def test_dose_grids_add_and_scale() -> None:
    grid = _grid()
    dose = _dose(grid)
    assert np.allclose((dose * 3).dose_gy, 3 * dose.dose_gy)
    assert np.allclose((2.5 * dose).dose_gy, 2.5 * dose.dose_gy)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert np.allclose(sum([dose, dose, dose]).dose_gy, 3 * dose.dose_gy)  # type: ignore[union-attr]
    with pytest.raises(InvalidInputError, match="scale factor"):
        dose * -1.0
    with pytest.raises(TypeError):
        dose * "2"  # type: ignore[operator]
    with pytest.raises(TypeError):
        dose + 1.0  # type: ignore[operator]
    with pytest.raises(TypeError):
        1.0 + dose  # type: ignore[operator]
    # A shifted grid that covers the first: resampled onto it, exact for a linear dose.
    shifted = ImageGrid.from_explicit(
        origin_mm=(-23.3, -19.1, -15.7),
        spacing_mm=(2.0, 2.0, 2.5),
        shape=(14, 24, 14),
        frame_of_reference_uid="1.2.3",
    )
    with pytest.warns(GeometryWarning, match="resampled"):
        total = dose + _dose(shifted)
    assert total.grid is grid
    assert np.allclose(total.dose_gy, 2 * dose.dose_gy, atol=1e-9)


# -------------------------------------------------------------- Datasets as input
def test_read_dose_takes_a_pydicom_dataset(tmp_path: Path) -> None:
    ct = write_ct_series(tmp_path / "ct", _grid(), patient_id="P-15")
    values = _linear(_centres(ct.grid))
    path = write_synthetic_dose(tmp_path / "RD.dcm", ct.grid, values, ct, bits=16)
    from_file = read_dose(path)
    dataset = pydicom.dcmread(path)
    from_dataset = read_dose(dataset)
    assert from_dataset.equals(from_file, atol=0.0)
    assert from_dataset.source == str(path)
    assert read_dose_reference(dataset) == read_dose_reference(path)
    dataset.compress(RLELossless)  # decoded by pydicom from memory, not from the file
    assert read_dose(dataset).equals(from_file, atol=0.0)
    del dataset.filename
    assert read_dose(dataset).source == "<dataset>"
    with pytest.raises(InvalidInputError, match="RT Dose: prescription_gy must be a positive"):
        read_dose(dataset, prescription_gy=-1.0)
    with pytest.raises(InvalidInputError, match="not an RT Dose"):
        read_dose(pydicom.dcmread(ct.files[0]))


def test_readme_dose_example_runs(capsys: pytest.CaptureFixture[str]) -> None:
    readme = Path(__file__).resolve().parents[1] / "README.md"
    (block,) = re.findall(r"```py\n(.*?)```", readme.read_text(encoding="utf-8"), re.S)
    exec(compile(block, str(readme), "exec"), {"__name__": "readme"})
    first, second = capsys.readouterr().out.splitlines()
    assert re.fullmatch(r"\(\d+, \d+\) [1-9]\d* \d\.\d+ Gy on the grid's faces", first)
    assert second.endswith(" Gy")


def test_cli_dvh_warns_when_the_grid_cuts_the_dose_off(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    case = write_demo_case(tmp_path / "demo")
    dose = read_dose(case.rtdose)
    assert dose.max_boundary_dose_gy <= 0.1 * dose.max_gy
    code, _, err = run_cli(capsys, "dvh", str(case.rtstruct), str(case.rtdose), "--roi", "PTV")
    assert code == 0, err
    assert "faces" not in err
    values = np.array(dose.dose_gy)
    values[:, :, -1] = 0.5 * dose.max_gy  # a face at half the maximum
    cut = tmp_path / "RD_cut.dcm"
    write_rtdose(dose.with_dose(values), cut, reference=case.rtdose)
    code, _, err = run_cli(capsys, "dvh", str(case.rtstruct), str(cut), "--roi", "PTV")
    assert code == 0, err
    assert "the dose on the grid's faces reaches" in " ".join(err.split())
    assert "50 % of the maximum" in " ".join(err.split())
