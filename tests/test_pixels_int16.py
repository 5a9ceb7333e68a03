"""read_slices_int16: the int16 fast path of image reading, against plain pydicom."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.dataset import Dataset
from pydicom.uid import RLELossless

from conftest import HFS, small_grid
from rtmask.discovery import read_image_series, read_slices, read_slices_int16
from rtmask.synthetic import write_ct_series

SHAPE = (4, 10, 12)


def _series(tmp_path: Path, change: Callable[[Dataset], object] | None = None) -> Path:
    """A CT of SHAPE with varied HU; ``change`` applied to every slice file."""
    hu = np.arange(np.prod(SHAPE), dtype=np.int64).reshape(SHAPE) * 7 - 1000
    folder = tmp_path / "ct"
    write_ct_series(folder, small_grid(SHAPE, HFS), hu=hu)
    if change is not None:
        for path in folder.iterdir():
            dataset = pydicom.dcmread(path)
            change(dataset)
            dataset.save_as(path)
    return folder


def _pydicom_values(folder: Path) -> np.ndarray:
    """Modality values by hand: pixel_array x RescaleSlope + RescaleIntercept, in slice order."""
    series = read_image_series(folder)
    planes = []
    for path in series.files:
        dataset = pydicom.dcmread(path)
        values = dataset.pixel_array.astype(np.float64)
        if "RescaleSlope" in dataset and "RescaleIntercept" in dataset:
            values = values * float(dataset.RescaleSlope) + float(dataset.RescaleIntercept)
        planes.append(values)
    return np.stack(planes)


def _set(**values: object) -> Callable[[Dataset], None]:
    def change(dataset: Dataset) -> None:
        for keyword, value in values.items():
            setattr(dataset, keyword, value)

    return change


def _signed(dataset: Dataset) -> None:
    """Stored values as signed int16 with intercept 0 (the same HU)."""
    hu = dataset.pixel_array.astype(np.int32) - 1024
    dataset.PixelRepresentation = 1
    dataset.RescaleIntercept = "0"
    dataset.PixelData = hu.astype("<i2").tobytes()


def _without_rescale(dataset: Dataset) -> None:
    del dataset.RescaleSlope
    del dataset.RescaleIntercept


@pytest.mark.parametrize(
    "change",
    [None, _signed, _without_rescale, _set(RescaleSlope="2", RescaleIntercept="-3000")],
    ids=["default", "signed", "no-rescale", "slope-2"],
)
def test_values_equal_pydicom_and_read_slices(tmp_path: Path, change: object) -> None:
    folder = _series(tmp_path, change)  # type: ignore[arg-type]
    series = read_image_series(folder)
    fast = read_slices_int16(series, range(SHAPE[0]))
    assert fast is not None
    assert fast.dtype == np.int16
    np.testing.assert_array_equal(fast, _pydicom_values(folder))
    np.testing.assert_array_equal(fast, read_slices(series, range(SHAPE[0])))
    np.testing.assert_array_equal(read_slices_int16(series, [2, 0]), fast[[2, 0]])


def _only_slope(dataset: Dataset) -> None:
    del dataset.RescaleIntercept


def _rle(dataset: Dataset) -> None:
    dataset.compress(RLELossless)


@pytest.mark.parametrize(
    "change",
    [
        _set(RescaleSlope="0.5"),  # fractional values
        _set(RescaleIntercept="0.25"),
        _set(RescaleSlope="10", RescaleIntercept="0"),  # beyond int16 (stored up to ~3400)
        _set(RescaleSlope="100000"),  # a slope no int16 pixel survives
        _only_slope,  # pydicom applies no rescale at all
        _set(BitsAllocated=8, BitsStored=8, HighBit=7),
        _rle,  # compressed pixel data
    ],
    ids=["slope-0.5", "intercept-0.25", "beyond-int16", "huge-slope", "only-slope", "8-bit", "rle"],
)
def test_other_kinds_fall_back(tmp_path: Path, change: Callable[[Dataset], object]) -> None:
    folder = _series(tmp_path, change)
    assert read_slices_int16(read_image_series(folder), range(SHAPE[0])) is None


def test_a_slice_not_of_the_series_shape_or_index_falls_back(tmp_path: Path) -> None:
    folder = _series(tmp_path)
    series = read_image_series(folder)
    assert read_slices_int16(series, [SHAPE[0]]) is None
    assert read_slices_int16(series, [-1]) is None
    assert read_slices_int16(series, []).shape == (0, *SHAPE[1:])  # type: ignore[union-attr]
    series.files[1].write_bytes(b"not DICOM")
    assert read_slices_int16(series, [0]) is not None
    assert read_slices_int16(series, [0, 1]) is None
    path = series.files[2]
    dataset = pydicom.dcmread(path)
    dataset.Rows = SHAPE[1] - 1
    dataset.save_as(path)
    assert read_slices_int16(series, [2]) is None
