"""RT Dose in Gy and dose arithmetic, checked against analytic linear dose fields.

A linear field ``D(p) = 40 + g . (p - c)`` is reproduced exactly by trilinear
interpolation, so every sampled, resampled or summed value has a closed-form expectation;
the only error left is the rounding of the stored values (half a DoseGridScaling step).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom
import pytest
from numpy.typing import NDArray

from conftest import HFS
from rtmask import GeometryError, ImageGrid, InvalidInputError
from rtmask._errors import GeometryWarning
from rtmask.dose import (
    DoseGrid,
    add_doses,
    dose_difference,
    read_dose,
    read_dose_grid,
    resample_dose,
    sample_dose,
    scale_dose,
)
from rtmask.synthetic import CTSeries, write_ct_series, write_rtdose

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"

GRADIENT_GY_PER_MM = np.array([0.3, -0.4, 0.5])
CENTRE_MM = np.array([-11.0, -6.25, -11.0])
AXIAL = HFS
OBLIQUE = (0.8, 0.6, 0.0, 0.0, 0.0, -1.0)
ORIGIN_MM = (-40.0, -30.0, -20.0)
SPACING_MM = (3.0, 2.5, 2.0)
SHAPE = (7, 20, 30)

FloatArray = NDArray[np.float64]


def _linear(points_mm: FloatArray) -> FloatArray:
    """The analytic dose in Gy at ``(..., 3)`` LPS points."""
    return np.asarray(40.0 + (points_mm - CENTRE_MM) @ GRADIENT_GY_PER_MM)


def _axes(orientation: tuple[float, ...]) -> FloatArray:
    """``(3, 3)`` unit vectors along slice, row and column index (normal, column, row cosine)."""
    row, column = np.asarray(orientation[:3]), np.asarray(orientation[3:])
    row, column = row / np.linalg.norm(row), column / np.linalg.norm(column)
    return np.stack([np.cross(row, column), column, row])


def _points(
    index: FloatArray,
    orientation: tuple[float, ...],
    origin: tuple[float, ...] = ORIGIN_MM,
    spacing: tuple[float, ...] = SPACING_MM,
) -> FloatArray:
    """LPS mm of continuous ``(..., 3)`` indices of a uniform grid, computed by hand."""
    return np.asarray(np.asarray(origin) + (index * np.asarray(spacing)) @ _axes(orientation))


def _all_indices(shape: tuple[int, int, int]) -> FloatArray:
    return np.stack(np.meshgrid(*(np.arange(n) for n in shape), indexing="ij"), axis=-1).astype(
        float
    )


def _grid(
    orientation: tuple[float, ...] = AXIAL,
    origin: tuple[float, ...] = ORIGIN_MM,
    frame_of_reference_uid: str | None = None,
) -> ImageGrid:
    return ImageGrid.from_explicit(
        origin_mm=origin,
        spacing_mm=SPACING_MM,
        shape=SHAPE,
        orientation=orientation,
        frame_of_reference_uid=frame_of_reference_uid,
    )


def _scaling(path: Path) -> float:
    return float(pydicom.dcmread(path, stop_before_pixels=True).DoseGridScaling)


@pytest.fixture(scope="module")
def ct(tmp_path_factory: pytest.TempPathFactory) -> CTSeries:
    small = ImageGrid.from_explicit(origin_mm=(0, 0, 0), spacing_mm=(2, 2, 2), shape=(2, 4, 5))
    return write_ct_series(tmp_path_factory.mktemp("ct"), small)


def _write_linear(
    path: Path, ct: CTSeries, grid: ImageGrid, expected: FloatArray, **options: object
) -> Path:
    return write_rtdose(path, grid, expected, ct, **options)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- reading
@pytest.mark.parametrize("orientation", [AXIAL, OBLIQUE], ids=["axial", "oblique"])
@pytest.mark.parametrize("offsets", ["relative", "absolute"])
@pytest.mark.parametrize(
    ("reverse", "bits"), [(False, 16), (False, 32), (True, 16), (True, 32)], ids=str
)
def test_read_dose_gives_the_linear_field_at_every_voxel(
    tmp_path: Path,
    ct: CTSeries,
    orientation: tuple[float, ...],
    offsets: str,
    *,
    reverse: bool,
    bits: int,
) -> None:
    expected = _linear(_points(_all_indices(SHAPE), orientation))
    path = _write_linear(
        tmp_path / "RD.dcm",
        ct,
        _grid(orientation),
        expected,
        bits=bits,
        offsets=offsets,
        reverse_frames=reverse,
        dose_type="EFFECTIVE",
        summation_type="FRACTION",
    )
    dose = read_dose(path)
    assert dose.dose_gy.shape == SHAPE
    assert dose.dose_gy.dtype == np.float64
    assert not dose.dose_gy.flags.writeable
    assert dose.grid.equals(read_dose_grid(path))
    assert dose.grid.frame_of_reference_uid == ct.frame_of_reference_uid
    step = _scaling(path)
    assert np.abs(dose.dose_gy - expected).max() <= step / 2 + 1e-9
    assert dose.max_gy == pytest.approx(expected.max(), abs=step)
    assert (dose.dose_type, dose.summation_type, dose.units) == ("EFFECTIVE", "FRACTION", "GY")
    assert dose.source == str(path)
    assert dose.warnings == ()


def test_relative_units_need_the_prescription(tmp_path: Path, ct: CTSeries) -> None:
    percent = _linear(_points(_all_indices(SHAPE), AXIAL)) * 2.0
    path = _write_linear(tmp_path / "RD.dcm", ct, _grid(), percent, dose_units="RELATIVE")
    with pytest.raises(InvalidInputError, match=r"RD\.dcm.*RELATIVE.*prescription_gy"):
        read_dose(path)
    with pytest.raises(InvalidInputError, match="positive"):
        read_dose(path, prescription_gy=-1.0)
    dose = read_dose(path, prescription_gy=14.0)
    step_gy = _scaling(path) * 14.0 / 100
    assert np.abs(dose.dose_gy - percent * 0.14).max() <= step_gy / 2 + 1e-9


def test_missing_scaling_is_refused(tmp_path: Path, ct: CTSeries) -> None:
    # DoseGridScaling is required with pixel data: without it the stored integers have no
    # unit (this writer's stored maximum is far above any dose in Gy).
    path = _write_linear(
        tmp_path / "RD.dcm", ct, _grid(), _linear(_points(_all_indices(SHAPE), AXIAL))
    )
    dataset = pydicom.dcmread(path)
    del dataset.DoseGridScaling
    dataset.save_as(path)
    with pytest.raises(InvalidInputError, match=r"RD\.dcm: DoseGridScaling is missing"):
        read_dose(path)


def test_clear_errors(tmp_path: Path, ct: CTSeries) -> None:
    with pytest.raises(InvalidInputError, match="not an RT Dose"):
        read_dose(ct.files[0])
    path = _write_linear(tmp_path / "RD.dcm", ct, _grid(), np.ones(SHAPE))
    dataset = pydicom.dcmread(path)
    del dataset.PixelData
    dataset.save_as(tmp_path / "nopixels.dcm")
    with pytest.raises(InvalidInputError, match=r"nopixels\.dcm: RT Dose has no pixel data"):
        read_dose(tmp_path / "nopixels.dcm")
    dataset = pydicom.dcmread(path)
    dataset.GridFrameOffsetVector = [0, 3, 3, 6, 9, 12, 15]
    dataset.save_as(tmp_path / "duplicate.dcm")
    with pytest.raises(GeometryError, match=r"duplicate\.dcm: RT Dose geometry is invalid"):
        read_dose(tmp_path / "duplicate.dcm")
    dataset.GridFrameOffsetVector = [0, 3, 6]
    dataset.save_as(tmp_path / "short.dcm")
    with pytest.raises(GeometryError, match=r"short\.dcm: GridFrameOffsetVector has 3 values"):
        read_dose(tmp_path / "short.dcm")


# --------------------------------------------------------------------------- sampling
@pytest.mark.parametrize("orientation", [AXIAL, OBLIQUE], ids=["axial", "oblique"])
@pytest.mark.parametrize("bits", [16, 32])
def test_sample_dose_is_exact_for_a_linear_field(
    tmp_path: Path, ct: CTSeries, orientation: tuple[float, ...], bits: int
) -> None:
    expected = _linear(_points(_all_indices(SHAPE), orientation))
    path = _write_linear(
        tmp_path / "RD.dcm", ct, _grid(orientation), expected, bits=bits, reverse_frames=True
    )
    dose = read_dose(path)
    rng = np.random.default_rng(3)
    index = rng.uniform(0, 1, size=(2000, 3)) * (np.asarray(SHAPE) - 1)
    points = _points(index, orientation)
    truth = _linear(points)
    sampled = sample_dose(dose, points)
    assert sampled.shape == (2000,)
    assert np.all(np.abs(sampled - truth) <= 1e-6 * np.abs(truth) + _scaling(path) / 2)


def test_sample_dose_honours_non_uniform_slices(tmp_path: Path, ct: CTSeries) -> None:
    distances = np.array([-20.0, -18.0, -15.0, -14.0, -10.0, -6.5])
    positions = np.column_stack([np.full(6, -40.0), np.full(6, -30.0), distances])
    grid = ImageGrid.from_slices(
        positions_mm=positions, orientation=AXIAL, pixel_spacing_mm=(2.5, 2.0), rows=20, columns=30
    )
    k, r, c = np.meshgrid(np.arange(6), np.arange(20), np.arange(30), indexing="ij")
    centres = np.stack([-40.0 + 2.0 * c, -30.0 + 2.5 * r, distances[k]], axis=-1)
    path = _write_linear(tmp_path / "RD.dcm", ct, grid, _linear(centres), bits=32)
    dose = read_dose(path)
    assert not dose.grid.is_uniform
    step = _scaling(path)
    assert np.abs(dose.dose_gy - _linear(centres)).max() <= step / 2 + 1e-9
    rng = np.random.default_rng(5)
    points = np.column_stack(
        [
            rng.uniform(-40.0, 18.0, 500),
            rng.uniform(-30.0, 17.5, 500),
            rng.uniform(-20.0, -6.5, 500),
        ]
    )
    truth = _linear(points)
    assert np.all(np.abs(sample_dose(dose, points) - truth) <= 1e-6 * truth + step / 2)


def test_points_outside_the_voxel_centres_give_nan() -> None:
    grid = _grid(OBLIQUE)
    dose = DoseGrid(dose_gy=_linear(_points(_all_indices(SHAPE), OBLIQUE)), grid=grid)
    last = np.asarray(SHAPE, dtype=float) - 1
    corners = np.array([[0.0, 0.0, 0.0], last, [0.0, last[1], 0.0]])
    assert np.allclose(
        sample_dose(dose, _points(corners, OBLIQUE)), _linear(_points(corners, OBLIQUE))
    )
    outside = []
    for axis in range(3):
        for index_value in (-0.05, -0.5, last[axis] + 0.05, last[axis] + 0.5):
            index = last / 2
            index[axis] = index_value
            outside.append(index)
    assert np.all(np.isnan(sample_dose(dose, _points(np.array(outside), OBLIQUE))))
    with pytest.raises(InvalidInputError, match=r"\(N, 3\)"):
        sample_dose(dose, np.zeros((4, 2)))


# --------------------------------------------------------------------------- resampling
def _rotation(angle_z: float, angle_x: float) -> FloatArray:
    cz, sz, cx, sx = np.cos(angle_z), np.sin(angle_z), np.cos(angle_x), np.sin(angle_x)
    about_z = np.array([[cz, -sz, 0.0], [sz, cz, 0.0], [0.0, 0.0, 1.0]])
    about_x = np.array([[1.0, 0.0, 0.0], [0.0, cx, -sx], [0.0, sx, cx]])
    return np.asarray(about_x @ about_z)


def test_resample_onto_a_rotated_shifted_grid_is_exact(tmp_path: Path, ct: CTSeries) -> None:
    expected = _linear(_points(_all_indices(SHAPE), AXIAL))
    path = _write_linear(tmp_path / "RD.dcm", ct, _grid(), expected, bits=32)
    dose = read_dose(path)
    rotation = _rotation(np.radians(10.0), np.radians(8.0))
    orientation = (*rotation[:, 0], *rotation[:, 1])
    target_shape, target_spacing = (5, 10, 12), (2.0, 2.0, 2.0)
    source_centre = _points((np.asarray(SHAPE, dtype=float) - 1) / 2, AXIAL)
    half = (np.asarray(target_shape) - 1) / 2 * np.asarray(target_spacing)
    origin = source_centre + np.array([1.3, -0.7, 0.4]) - half @ _axes(orientation)
    target = ImageGrid.from_explicit(
        origin_mm=tuple(origin),
        spacing_mm=target_spacing,
        shape=target_shape,
        orientation=orientation,
        frame_of_reference_uid=ct.frame_of_reference_uid,
    )
    resampled = resample_dose(dose, target)
    truth = _linear(_points(_all_indices(target_shape), orientation, tuple(origin), target_spacing))
    assert resampled.grid is target
    assert np.abs(resampled.dose_gy - truth).max() <= 1e-6 * truth.max() + _scaling(path) / 2
    assert resampled.warnings == ()


def test_resample_partly_outside_gives_zero_and_warns() -> None:
    dose = DoseGrid(dose_gy=_linear(_points(_all_indices(SHAPE), AXIAL)), grid=_grid())
    shifted_origin = (ORIGIN_MM[0] + 20.0, ORIGIN_MM[1], ORIGIN_MM[2])
    target = _grid(origin=shifted_origin)
    with pytest.warns(GeometryWarning, match=r"33\.3 % of the target grid's voxels"):
        resampled = resample_dose(dose, target)
    truth = _linear(_points(_all_indices(SHAPE), AXIAL, shifted_origin))
    assert np.allclose(resampled.dose_gy[..., :20], truth[..., :20], rtol=1e-9)
    assert np.all(resampled.dose_gy[..., 20:] == 0.0)
    assert len(resampled.warnings) == 1


# --------------------------------------------------------------------------- arithmetic
def test_add_doses_on_a_half_voxel_shifted_grid(tmp_path: Path, ct: CTSeries) -> None:
    field_a = _linear(_points(_all_indices(SHAPE), AXIAL))
    a = read_dose(_write_linear(tmp_path / "a.dcm", ct, _grid(), field_a, bits=32))
    shift = np.array([21.0, 1.25, 1.5])  # 10.5 columns, half a row, half a slice
    origin_b = tuple(np.asarray(ORIGIN_MM) + shift)
    field_b = _linear(_points(_all_indices(SHAPE), AXIAL, origin_b))
    b = read_dose(_write_linear(tmp_path / "b.dcm", ct, _grid(origin=origin_b), field_b, bits=32))
    # b's centres span a's indices 0.5..6.5 (slices), 0.5..19.5 (rows), 10.5..39.5 (columns).
    inside = np.zeros(SHAPE, dtype=bool)
    inside[1:, 1:, 11:] = True
    outside_percent = 100 * (1 - (6 / 7) * (19 / 20) * (19 / 30))
    with pytest.warns(GeometryWarning, match=rf"b\.dcm: resampled .* {outside_percent:.3g} %"):
        total = add_doses(a, b)
    assert total.grid is a.grid
    expected = np.where(inside, 2 * field_a, field_a)
    step = _scaling(tmp_path / "a.dcm") + _scaling(tmp_path / "b.dcm")
    assert np.abs(total.dose_gy - expected).max() <= step
    assert total.dose_type == "PHYSICAL"
    with pytest.warns(GeometryWarning, match="NaN"):
        difference = dose_difference(a, b)
    assert np.all(np.isnan(difference[~inside]))
    assert np.abs(difference[inside]).max() <= step


def test_add_scale_and_difference_on_the_same_grid() -> None:
    field = _linear(_points(_all_indices(SHAPE), OBLIQUE))
    a = DoseGrid(dose_gy=field, grid=_grid(OBLIQUE), dose_type="PHYSICAL", summation_type="PLAN")
    b = DoseGrid(dose_gy=field, grid=_grid(OBLIQUE), dose_type="PHYSICAL", summation_type="PLAN")
    total = add_doses(a, b)
    assert np.array_equal(total.dose_gy, 2 * field)
    assert (total.dose_type, total.summation_type) == ("PHYSICAL", "PLAN")
    tripled = scale_dose(a, 3.0)
    assert np.array_equal(tripled.dose_gy, 3 * field)
    assert tripled.grid is a.grid
    assert np.allclose(dose_difference(tripled, a), 2 * field)
    with pytest.raises(InvalidInputError, match="scale factor"):
        scale_dose(a, -1.0)
    with pytest.raises(InvalidInputError, match="scale factor"):
        scale_dose(a, float("nan"))


def test_frame_of_reference_mismatch_raises() -> None:
    field = np.ones(SHAPE)
    a = DoseGrid(dose_gy=field, grid=_grid(frame_of_reference_uid="1.2.3"))
    b = DoseGrid(dose_gy=field, grid=_grid(frame_of_reference_uid="1.2.4"))
    unknown = DoseGrid(dose_gy=field, grid=_grid())
    with pytest.raises(GeometryError, match="frames of reference differ"):
        resample_dose(a, b.grid)
    with pytest.raises(GeometryError, match="frames of reference differ"):
        add_doses(a, b)
    with pytest.raises(GeometryError, match="frames of reference differ"):
        dose_difference(a, b)
    assert np.array_equal(add_doses(a, unknown).dose_gy, 2 * field)


def test_dose_grid_is_a_checked_value_object() -> None:
    field = _linear(_points(_all_indices(SHAPE), AXIAL))
    dose = DoseGrid(dose_gy=field, grid=_grid())
    assert dose.equals(DoseGrid(dose_gy=field + 1e-9, grid=_grid()))
    assert not dose.equals(DoseGrid(dose_gy=field + 1e-3, grid=_grid()))
    assert not dose.equals(DoseGrid(dose_gy=field, grid=_grid(OBLIQUE)))
    assert dose.max_gy == pytest.approx(field.max())
    with pytest.raises(ValueError, match="read-only"):
        dose.dose_gy[0, 0, 0] = 1.0
    with pytest.raises(InvalidInputError, match="shape"):
        DoseGrid(dose_gy=np.ones((2, 2, 2)), grid=_grid())
    with pytest.raises(InvalidInputError, match="NaN"):
        DoseGrid(dose_gy=np.full(SHAPE, np.nan), grid=_grid())
    assert "max_gy" in repr(dose)


# --------------------------------------------------------------------------- real data
@pytest.mark.skipif(not (DATA / "dicompyler-breast").is_dir(), reason="../shared/data absent")
def test_real_breast_dose() -> None:
    path = DATA / "dicompyler-breast" / "rtdose.dcm"
    dose = read_dose(path)
    assert dose.dose_gy.shape == (98, 129, 194)
    assert dose.grid.equals(read_dose_grid(path))
    dataset = pydicom.dcmread(path)
    assert int(dataset.BitsAllocated) == 32
    reference_max = float(dataset.pixel_array.max()) * float(dataset.DoseGridScaling)
    assert dose.max_gy == pytest.approx(reference_max, rel=1e-12)
    assert (dose.dose_type, dose.summation_type) == ("PHYSICAL", "PLAN")
