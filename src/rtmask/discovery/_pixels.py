"""Reading the pixels of chosen slices of an image series (for pictures, not for masks)."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from rtmask._dicom import read_dataset
from rtmask._errors import DicomReadError, InvalidInputError
from rtmask._rawdicom import read_raw
from rtmask.discovery._series import ImageSeries

__all__ = ["read_slices", "read_slices_int16"]

#: Transfer syntaxes whose pixel data :func:`read_slices_int16` reads from the bytes.
_LITTLE_ENDIAN_NATIVE = frozenset({"1.2.840.10008.1.2", "1.2.840.10008.1.2.1"})
_INT16 = np.iinfo(np.int16)

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


def read_slices_int16(series: ImageSeries, indices: Sequence[int]) -> NDArray[np.int16] | None:
    """The values :func:`read_slices` gives, as int16, read straight from the files' bytes.

    The fast path of the common CT: uncompressed little-endian 16-bit single-frame slices
    with a whole-number RescaleSlope and RescaleIntercept (or none) and no Modality LUT,
    whose values lie within int16. Then ``stored * slope + intercept`` in integers is
    exactly what pydicom computes in float64 and :func:`read_slices` rounds to float32.

    Returns
    -------
    numpy.ndarray or None
        ``(len(indices), rows, columns)`` int16, or None as soon as one slice is not of
        that kind (unreadable, compressed, fractional rescale, a value beyond int16 ...):
        the caller then reads the slices with :func:`read_slices`, which also words the
        errors.
    """
    n_slices, rows, columns = series.grid.shape
    result = np.empty((len(indices), rows, columns), dtype=np.int16)
    for position, index in enumerate(indices):
        k = int(index)
        if not 0 <= k < n_slices:
            return None
        plane = _plane_int16(series.files[k], rows, columns)
        if plane is None:
            return None
        result[position] = plane
    return result


def _plane_int16(path: Path, rows: int, columns: int) -> NDArray[np.int16] | None:
    """One slice's modality values as int16, or None when the fast path does not apply."""
    try:
        raw = read_raw(path)
        if (
            raw.transfer_syntax not in _LITTLE_ENDIAN_NATIVE
            or raw.integer("BitsAllocated") != 16
            or raw.integer("SamplesPerPixel") != 1
            or (raw.integer("NumberOfFrames") or 1) != 1
            or raw.integer("Rows") != rows
            or raw.integer("Columns") != columns
            or "ModalityLUTSequence" in raw
        ):
            return None
        representation = raw.integer("PixelRepresentation")
        pixels = raw.pixel_data()
        if representation not in (0, 1) or pixels is None or len(pixels) < 2 * rows * columns:
            return None
        rescale = ("RescaleSlope" in raw, "RescaleIntercept" in raw)
        slope, intercept = raw.number("RescaleSlope"), raw.number("RescaleIntercept")
    except (DicomReadError, ValueError):
        return None
    slope_i: int | None = 1
    intercept_i: int | None = 0
    if rescale == (True, True):
        slope_i, intercept_i = _whole(slope), _whole(intercept)
    elif rescale != (False, False):
        return None  # one of the two: pydicom applies neither; not worth a special case
    if slope_i is None or intercept_i is None:
        return None
    stored = np.frombuffer(pixels, dtype="<u2" if representation == 0 else "<i2")
    values = stored[: rows * columns].astype(np.int64)
    if slope_i != 1:
        values *= slope_i
    values += intercept_i
    if values.size and (int(values.min()) < _INT16.min or int(values.max()) > _INT16.max):
        return None
    return values.astype(np.int16).reshape(rows, columns)


def _whole(value: float | None) -> int | None:
    """``value`` as an int when it is a small whole number (exact in any float), else None."""
    if value is None or not np.isfinite(value) or value != round(value) or abs(value) > 2**15:
        return None
    return int(value)
