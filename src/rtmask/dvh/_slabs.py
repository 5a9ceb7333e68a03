"""Which slab along the normal each contour plane stands for, and gaps worth a warning.

Every contour plane stands for the slab reaching half-way to its neighbours, from the
actual (possibly non-uniform) plane positions; the end planes reach half the adjacent gap
outward (:attr:`EndCaps.HALF`) or not at all (:attr:`EndCaps.NONE`). Both the
contour-based volume and the DVH use these slabs.
"""

from __future__ import annotations

from enum import Enum

import numpy as np
from numpy.typing import NDArray

from rtmask._gaps import WIDE_GAP_FACTOR, wide_gaps

__all__ = ["EndCaps", "slab_faces", "uneven_gap_warning"]

FloatArray = NDArray[np.float64]


class EndCaps(str, Enum):
    """How far the first and last contour planes reach along the normal.

    ``HALF``: every plane stands for the slab half-way to its neighbours, and the end
    planes extend half the adjacent gap outward (Pinnacle, MIM, RayStation, plastimatch).
    ``NONE``: the end planes extend only inward, so the stack spans first to last plane.
    """

    HALF = "half"
    NONE = "none"


def slab_faces(
    planes_mm: FloatArray, end_caps: EndCaps, single_plane_mm: float
) -> tuple[FloatArray, FloatArray]:
    """``(P,)`` lower and upper faces (mm along the normal) of each plane's slab.

    ``planes_mm``: ``(P,)`` increasing plane positions. A lone plane gets a slab
    ``single_plane_mm`` thick, centred on it.
    """
    if planes_mm.size <= 1:  # a lone plane, or none (empty faces)
        return planes_mm - single_plane_mm / 2, planes_mm + single_plane_mm / 2
    half_gaps = np.diff(planes_mm) / 2
    outward = half_gaps[[0, -1]] if end_caps is EndCaps.HALF else np.zeros(2)
    lower = planes_mm - np.concatenate([[outward[0]], half_gaps])
    upper = planes_mm + np.concatenate([half_gaps, [outward[1]]])
    return lower, upper


def uneven_gap_warning(planes_mm: FloatArray, label: str) -> str | None:
    """One sentence when some gap between ``(P,)`` increasing planes is unusually wide.

    Wider than WIDE_GAP_FACTOR x the median gap (:func:`rtmask._gaps.wide_gaps`). The
    slabs still meet half-way across such a gap, as for any spacing: the sentence says so.
    """
    if planes_mm.size < 3:
        return None
    gaps = np.diff(planes_mm)
    usual, wide = wide_gaps(gaps)
    if wide.size == 0:
        return None
    k = int(wide[np.argmax(gaps[wide])])
    return (
        f"{label}: {wide.size} gap(s) between contour planes wider than "
        f"{WIDE_GAP_FACTOR:g}x the usual {usual:.2f} mm, the widest {gaps[k]:.2f} mm "
        f"(planes at {planes_mm[k]:.2f} and {planes_mm[k + 1]:.2f} mm along the normal); "
        "the slabs meet half-way across, so check for an uncontoured plane or a structure "
        "in separate pieces"
    )
