"""Gaps between planes: their median, and the ones wide enough to report.

One rule for image slices (:meth:`rtmask.geometry.ImageGrid.irregularities`) and contour
planes (:func:`rtmask.dvh._slabs.uneven_gap_warning`). The median is taken without
``numpy.median``, which imports ``numpy.ma`` on its first call (~13 ms), a cost a command
that runs for a fraction of a second notices.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = ["WIDE_GAP_FACTOR", "median", "wide_gaps"]

#: A gap wider than this many times the median gap is reported: a missing plane, or
#: separate pieces.
WIDE_GAP_FACTOR = 1.5


def median(values: ArrayLike) -> float:
    """Median of the ``(N,)`` values (N >= 1), as ``numpy.median`` gives it."""
    ordered = np.sort(np.asarray(values, dtype=np.float64).reshape(-1))
    if ordered.size == 0:
        raise ValueError("the median of no values is undefined")
    middle = ordered.size // 2
    if ordered.size % 2:
        return float(ordered[middle])
    return float((ordered[middle - 1] + ordered[middle]) / 2)


def wide_gaps(gaps_mm: NDArray[np.float64]) -> tuple[float, NDArray[np.intp]]:
    """The median of ``(G,)`` gaps (mm), and the indices of the wide ones.

    Wide: more than WIDE_GAP_FACTOR x the median, and by more than 0.01 mm.
    """
    usual = median(gaps_mm)
    wide = np.flatnonzero((gaps_mm > WIDE_GAP_FACTOR * usual) & (gaps_mm > usual + 0.01))
    return usual, wide
