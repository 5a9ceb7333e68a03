"""Where in a partly covered voxel its covered part lies: centroid and spread.

A fractional mask samples ``s x s`` points per voxel. Besides how many are inside, the
sums of their offsets give the centroid of the covered part and its second moments. The
DVH engine uses them: a boundary voxel's dose is taken at the centroid of the part in
the structure, not at the voxel centre, and spread over that part only.

Sub-sample offsets are counted from the voxel's first sub-row (``q``) and sub-column
(``o``), 0 .. s - 1; the sums come in the order of :data:`SUMS`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

__all__ = ["SUMS", "PartialVoxels", "moments_of", "sums_of_block"]

FloatArray = NDArray[np.float64]

#: The per-voxel sums over the covered sub-samples, in this order.
SUMS = ("count", "q", "q2", "o", "qo", "o2")


@dataclass(frozen=True, slots=True)
class PartialVoxels:
    """The partly covered voxels of a fractional mask, by slice.

    ``by_slice[k]``: ``(n,)`` flat in-plane indices (increasing) and ``(5, n)`` float32
    moments of the covered part, in voxel units: centroid row and column offset from the
    voxel centre, variance along rows and along columns, and their covariance (a whole
    voxel has 0, 0, 1/12, 1/12, 0).
    """

    by_slice: dict[int, tuple[NDArray[np.intp], NDArray[np.float32]]]


def moments_of(sums: FloatArray, samples: int) -> FloatArray:
    """``(5, ...)`` moments (see :class:`PartialVoxels`) from ``(6, ...)`` :data:`SUMS`.

    Each sub-sample stands for a square ``1 / s`` voxel wide, whose own variance
    ``1 / (12 s^2)`` is added, so a whole voxel gets exactly 1/12.
    """
    s = float(samples)
    count = np.maximum(sums[0], 1.0)
    mean_q, mean_o = sums[1] / count, sums[3] / count
    own = 1.0 / (12.0 * s * s)
    return np.stack(
        [
            (mean_q + 0.5) / s - 0.5,
            (mean_o + 0.5) / s - 0.5,
            (sums[2] / count - mean_q * mean_q) / (s * s) + own,
            (sums[5] / count - mean_o * mean_o) / (s * s) + own,
            (sums[4] / count - mean_q * mean_o) / (s * s),
        ]
    )


def sums_of_block(block: NDArray[np.bool_], samples: int, voxels: NDArray[np.intp]) -> FloatArray:
    """``(6, m)`` :data:`SUMS` of ``(m,)`` voxels of a sub-sample mask.

    ``block``: ``(planes, rows * s, columns * s)``; ``voxels``: flat indices into
    ``(planes, rows, columns)``.
    """
    s = samples
    planes, height, width = block.shape
    plane, in_plane = np.divmod(np.asarray(voxels, dtype=np.intp), (height // s) * (width // s))
    row, column = np.divmod(in_plane, width // s)
    grouped = block.reshape(planes, height // s, s, width // s, s)
    chosen = grouped[plane, row, :, column, :].astype(np.float64)  # (m, q, o)
    offsets = np.arange(s, dtype=np.float64)
    by_q = chosen.sum(axis=2)  # (m, q)
    by_o = chosen.sum(axis=1)  # (m, o)
    return np.stack(
        [
            by_q.sum(axis=1),
            by_q @ offsets,
            by_q @ (offsets * offsets),
            by_o @ offsets,
            np.einsum("mqo,q,o->m", chosen, offsets, offsets),
            by_o @ (offsets * offsets),
        ]
    )
