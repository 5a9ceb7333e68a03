"""ImageGrid: construction, slice order, conversions and affines, against hand computation."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from rtmask import ImageGrid
from rtmask._errors import GeometryError
from rtmask.geometry import slice_order


def _orientation(angles: tuple[float, float, float]) -> tuple[float, ...]:
    """A random orthonormal row/column pair from three rotation angles."""
    a, b, c = angles
    rz = np.array([[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1]])
    ry = np.array([[np.cos(b), 0, np.sin(b)], [0, 1, 0], [-np.sin(b), 0, np.cos(b)]])
    rx = np.array([[1, 0, 0], [0, np.cos(c), -np.sin(c)], [0, np.sin(c), np.cos(c)]])
    rotation = rz @ ry @ rx
    return (*rotation[:, 0], *rotation[:, 1])


angles = st.tuples(*(st.floats(-np.pi, np.pi) for _ in range(3)))


def _series(
    orientation: tuple[float, ...],
    n: int = 6,
    gap: float = 2.5,
    origin: tuple[float, float, float] = (10.0, -20.0, 30.0),
) -> np.ndarray:
    normal = np.cross(orientation[:3], orientation[3:])
    return np.asarray(origin) + np.outer(np.arange(n) * gap, normal)


def test_from_slices_sorts_along_the_normal_not_by_z() -> None:
    # Feet first: the normal points to -z, so slice 0 has the highest z.
    orientation = (-1.0, 0.0, 0.0, 0.0, 1.0, 0.0)
    positions = _series(orientation)
    shuffled = positions[[3, 0, 5, 1, 4, 2]]
    grid = ImageGrid.from_slices(
        positions_mm=shuffled,
        orientation=orientation,
        pixel_spacing_mm=(0.8, 0.6),
        rows=20,
        columns=30,
    )
    assert np.allclose(grid.slice_origins_mm(), positions)
    assert np.array_equal(shuffled[slice_order(shuffled, orientation)], positions)
    assert grid.slice_origins_mm()[0, 2] > grid.slice_origins_mm()[-1, 2]


def test_affine_columns_are_dicom_vectors() -> None:
    orientation = (0.0, 1.0, 0.0, 0.0, 0.0, -1.0)  # sagittal
    positions = _series(orientation, gap=3.0)
    grid = ImageGrid.from_slices(
        positions_mm=positions,
        orientation=orientation,
        pixel_spacing_mm=(0.8, 0.6),
        rows=20,
        columns=30,
    )
    # Voxel [k, j, i] = IPP_k + i * col_spacing * row_cosine + j * row_spacing * col_cosine.
    k, j, i = 2, 7, 11
    expected = positions[k] + i * 0.6 * np.array([0, 1, 0]) + j * 0.8 * np.array([0, 0, -1])
    assert np.allclose(grid.index_to_patient([[k, j, i]])[0], expected)
    assert grid.spacing_mm == pytest.approx((3.0, 0.8, 0.6))
    # NIfTI (SimpleITK layout): RAS affine for (column, row, slice).
    nifti = grid.nifti_affine()
    lps = expected
    assert np.allclose(nifti @ [i, j, k, 1], [-lps[0], -lps[1], lps[2], 1])


def test_duplicate_slices_are_an_error() -> None:
    orientation = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0)
    positions = np.concatenate([_series(orientation, n=3), _series(orientation, n=1)])
    with pytest.raises(GeometryError, match="same plane position"):
        ImageGrid.from_slices(
            positions_mm=positions,
            orientation=orientation,
            pixel_spacing_mm=(1, 1),
            rows=4,
            columns=4,
        )


def test_non_orthogonal_orientation_is_an_error() -> None:
    with pytest.raises(GeometryError, match="not orthogonal"):
        ImageGrid.from_explicit(
            origin_mm=(0, 0, 0),
            spacing_mm=(1, 1, 1),
            shape=(2, 2, 2),
            orientation=(1, 0, 0, 0.5, 0.8, 0),
        )


def test_irregular_spacing_is_detected_and_honoured() -> None:
    orientation = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0)
    offsets = np.array([0.0, 2.0, 4.0, 8.0, 10.0])  # one slice missing
    positions = np.array([[0.0, 0.0, z] for z in offsets])
    grid = ImageGrid.from_slices(
        positions_mm=positions, orientation=orientation, pixel_spacing_mm=(1, 1), rows=3, columns=3
    )
    assert not grid.is_uniform
    assert "missing" in grid.irregularities()[0]
    assert np.allclose(grid.index_to_patient([[3, 0, 0]])[0], [0, 0, 8])
    assert np.allclose(grid.patient_to_index([[0, 0, 6]])[0], [2.5, 0, 0])
    uniform = grid.with_uniform_slices(2.0)
    assert uniform.is_uniform
    assert uniform.shape == (6, 3, 3)


def test_covering_grid_contains_the_points() -> None:
    points = np.array([[-10.0, 5.0, 3.0], [20.0, 40.0, 11.0], [0.0, 0.0, 7.0]])
    grid = ImageGrid.covering(points, spacing_mm=(2.0, 1.0, 1.0), margin_mm=1.0)
    index = grid.patient_to_index(points)
    assert np.all(index >= -0.5)
    assert np.all(index <= np.array(grid.shape) - 0.5)


@settings(max_examples=60, deadline=None)
@given(
    rotation=angles,
    spacing=st.tuples(*(st.floats(0.2, 5.0) for _ in range(3))),
    origin=st.tuples(*(st.floats(-500, 500) for _ in range(3))),
    index=arrays(np.float64, (5, 3), elements=st.floats(-50, 600)),
)
def test_index_patient_round_trip(
    rotation: tuple[float, float, float],
    spacing: tuple[float, float, float],
    origin: tuple[float, float, float],
    index: np.ndarray,
) -> None:
    grid = ImageGrid.from_explicit(
        origin_mm=origin, spacing_mm=spacing, shape=(40, 50, 60), orientation=_orientation(rotation)
    )
    back = grid.patient_to_index(grid.index_to_patient(index))
    assert np.allclose(back, index, atol=1e-6)


@settings(max_examples=40, deadline=None)
@given(
    rotation=angles,
    gaps=arrays(np.float64, 6, elements=st.floats(0.5, 6.0)),
    index=arrays(np.float64, (5, 3), elements=st.floats(-3, 9)),
)
def test_round_trip_with_uneven_slices(
    rotation: tuple[float, float, float], gaps: np.ndarray, index: np.ndarray
) -> None:
    orientation = _orientation(rotation)
    normal = np.cross(orientation[:3], orientation[3:])
    positions = np.outer(np.concatenate([[0.0], np.cumsum(gaps)]), normal) + np.array([5.0, -7, 9])
    grid = ImageGrid.from_slices(
        positions_mm=positions,
        orientation=orientation,
        pixel_spacing_mm=(0.9, 1.1),
        rows=8,
        columns=9,
    )
    back = grid.patient_to_index(grid.index_to_patient(index))
    assert np.allclose(back, index, atol=1e-6)
    assert np.allclose(grid.slice_origins_mm(), positions, atol=1e-9)


def test_grids_compare_by_affine_not_shape() -> None:
    orientation = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0)
    a = ImageGrid.from_explicit(
        origin_mm=(0, 0, 0), spacing_mm=(1, 1, 1), shape=(3, 4, 5), orientation=orientation
    )
    b = ImageGrid.from_explicit(
        origin_mm=(0, 0, 0),
        spacing_mm=(1, 1, 1),
        shape=(3, 4, 5),
        orientation=(-1.0, 0.0, 0.0, 0.0, 1.0, 0.0),
    )
    assert a.equals(a)
    assert not a.equals(b)
    with pytest.raises(ValueError, match="read-only"):
        a.affine[0, 0] = 2.0
