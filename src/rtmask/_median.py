"""The median of a few numbers, without ``numpy.median``.

``numpy.median`` imports ``numpy.ma`` on its first call (~13 ms), a cost a command that
runs for a fraction of a second notices; this needs only a sort.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

__all__ = ["median"]


def median(values: ArrayLike) -> float:
    """Median of the ``(N,)`` values (N >= 1), as ``numpy.median`` gives it."""
    ordered = np.sort(np.asarray(values, dtype=np.float64).reshape(-1))
    if ordered.size == 0:
        raise ValueError("the median of no values is undefined")
    middle = ordered.size // 2
    if ordered.size % 2:
        return float(ordered[middle])
    return float((ordered[middle - 1] + ordered[middle]) / 2)
