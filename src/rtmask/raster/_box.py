"""The bounding box of a mask: where writers and readers need to look at all."""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

__all__ = ["Box", "bounding_box"]

#: ``(slice, row, column)`` slices of a 3D array.
Box = tuple[slice, slice, slice]


def bounding_box(array: NDArray[Any], slices: NDArray[np.intp] | None = None) -> Box | None:
    """Smallest box holding every nonzero voxel of a ``(slices, rows, columns)`` array.

    ``slices``: the slices known to hold voxels, when the caller knows them (saves reading
    the empty planes of a large, mostly empty mask). None when the array is all zero.
    """
    n_slices, n_rows, n_columns = array.shape
    if slices is None:
        slices = np.flatnonzero(array.reshape(n_slices, -1).any(axis=1))
    if slices.size == 0:
        return None
    k0, k1 = int(slices[0]), int(slices[-1]) + 1
    slab = array[k0:k1]
    rows = np.flatnonzero(slab.reshape(-1, n_columns).any(axis=1).reshape(-1, n_rows).any(axis=0))
    if slab.dtype == np.bool_ and slab.flags.c_contiguous and n_columns % 8 == 0:
        # OR of whole rows, eight pixels at a time.
        words = np.bitwise_or.reduce(slab.view(np.uint64).reshape(-1, n_columns // 8), axis=0)
        columns = np.flatnonzero(words.view(np.bool_))
    else:
        columns = np.flatnonzero(slab.any(axis=(0, 1)))
    return (
        slice(k0, k1),
        slice(int(rows[0]), int(rows[-1]) + 1),
        slice(int(columns[0]), int(columns[-1]) + 1),
    )
