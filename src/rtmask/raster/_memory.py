"""Allocating large, mostly-empty mask arrays cheaply.

A mask is usually a small structure in a large grid. NumPy asks Linux for transparent
huge pages on large arrays, so writing one voxel makes the kernel zero 2 MB; for 60
sparse 512 x 512 x 200 masks that costs about a second. An anonymous memory map advised
``MADV_NOHUGEPAGE`` is zero-filled 4 KB page by page, only where the mask is written.
"""

from __future__ import annotations

import mmap

import numpy as np
from numpy.typing import DTypeLike, NDArray

from rtmask._errors import GeometryError
from rtmask._limits import MAX_GRID_VOXELS, voxel_count

__all__ = ["sparse_zeros"]

#: Arrays smaller than this come from np.zeros (huge pages do not matter there).
_MMAP_THRESHOLD_BYTES = 1 << 22


def sparse_zeros(shape: tuple[int, ...], dtype: DTypeLike) -> NDArray[np.generic]:
    """A writable zero array for data that will be written sparsely.

    Same as ``np.zeros(shape, dtype)``; on Linux large arrays are backed by a private
    anonymous memory map without huge pages (freed with the array).

    Raises
    ------
    GeometryError
        The shape has more than MAX_GRID_VOXELS voxels, or the memory is not available.
    """
    data_type = np.dtype(dtype)
    voxels = voxel_count(shape)  # a Python int: no overflow, however absurd the shape
    size = voxels * data_type.itemsize
    described = f"a {' x '.join(str(n) for n in shape)} array of {data_type}"
    if min(shape, default=1) < 0 or voxels > MAX_GRID_VOXELS:
        raise GeometryError(
            f"{described} ({voxels:.3g} voxels) exceeds the limit of {MAX_GRID_VOXELS:.3g} "
            "voxels; the grid's geometry is absurd (check its spacing and extent)"
        )
    advice = getattr(mmap, "MADV_NOHUGEPAGE", None)
    try:
        if size < _MMAP_THRESHOLD_BYTES or advice is None:
            return np.zeros(shape, dtype=data_type)
        # Private: untouched pages read as the shared zero page instead of being allocated.
        memory = mmap.mmap(-1, size, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
    except (MemoryError, OSError) as error:  # mmap says ENOMEM with an OSError
        raise GeometryError(
            f"not enough memory for {described} ({size / 2**30:.3g} GiB); use a coarser "
            "grid or free memory"
        ) from error
    memory.madvise(advice)
    return np.frombuffer(memory, dtype=data_type).reshape(shape)
