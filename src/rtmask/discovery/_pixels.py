"""Reading the pixels of chosen slices of an image series (for pictures, not for masks)."""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray

from rtmask._dicom import read_dataset
from rtmask._errors import DicomReadError, InvalidInputError
from rtmask.discovery._series import ImageSeries

__all__ = ["read_slices"]

_DECODE_FAILURES = (
    AttributeError,
    KeyError,
    ValueError,
    TypeError,
    IndexError,
    RuntimeError,
    NotImplementedError,
    OSError,
)


def read_slices(series: ImageSeries, indices: Sequence[int]) -> NDArray[np.float32]:
    """Read the pixels of some slices of ``series`` in modality units (e.g. HU for CT).

    Only the files of those slices are read. RescaleSlope / RescaleIntercept (or a
    Modality LUT) are applied.

    Parameters
    ----------
    series
        The image series (``files`` in slice order).
    indices
        Slice indices along the plane normal (0 = first slice of ``series.grid``).

    Returns
    -------
    numpy.ndarray
        ``(len(indices), rows, columns)`` float32.

    Raises
    ------
    IndexError
        When an index is not a slice of the series.
    DicomReadError
        When a file cannot be read or its pixel data cannot be decoded.
    InvalidInputError
        When a file's pixels are not one ``rows x columns`` greyscale plane.
    """
    from pydicom.pixels.processing import (  # noqa: PLC0415 - pydicom only when pixels are read
        apply_modality_lut,
    )

    n_slices, rows, columns = series.grid.shape
    result = np.empty((len(indices), rows, columns), dtype=np.float32)
    for position, index in enumerate(indices):
        k = int(index)
        if not 0 <= k < n_slices:
            raise IndexError(f"slice {k} is not in the series ({n_slices} slices)")
        path = series.files[k]
        dataset = read_dataset(path)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # pydicom warns about harmless deviations
                values = np.asarray(apply_modality_lut(dataset.pixel_array, dataset))
        except _DECODE_FAILURES as error:
            detail = str(error).splitlines()[0] if str(error) else type(error).__name__
            raise DicomReadError(
                f"{path}: cannot decode the pixel data ({detail}); install the pydicom pixel "
                "handler for its transfer syntax (e.g. pylibjpeg) or convert the file"
            ) from error
        if values.shape != (rows, columns):
            raise InvalidInputError(
                f"{path}: pixel data of shape {values.shape}, expected one {rows} x {columns} "
                "greyscale plane"
            )
        result[position] = values
    return result
