"""Bounds on numbers no patient, image or dose can have, checked before any work.

A damaged or hostile file can hold finite numbers far beyond anything real (a contour
vertex at 1e38 mm, PixelSpacing 1e308, a dose of 4e9 Gy). Left alone they overflow the
pixel-index arithmetic, size arrays of terabytes or put infinities into output headers.
Every reader refuses such values with a message naming the file and attribute, and every
grid is sized against these bounds before anything is allocated.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

__all__ = [
    "MAX_COORDINATE_MM",
    "MAX_DOSE_GY",
    "MAX_DVH_BINS",
    "MAX_DVH_LATTICE_VOXELS",
    "MAX_DVH_SAMPLES",
    "MAX_EXTENT_MM",
    "MAX_GRID_VOXELS",
    "NIFTI1_MAX_DIMENSION",
    "coordinate_problem",
    "voxel_count",
]

#: Largest ``|x|``, ``|y|`` or ``|z|`` (mm) of a point read from a file: 100 m. Patient
#: coordinates lie within a couple of metres of the frame of reference's origin (a
#: treatment couch moves less than 2 m), so a contour vertex, image or dose position
#: beyond this is damage, not anatomy.
MAX_COORDINATE_MM = 1e5
#: Largest size (mm) of an image or dose grid along any axis (spacing x count): 100 m.
MAX_EXTENT_MM = 1e5
#: Most voxels of one grid: 2**31 (2 GiB as a bool mask). A 1024 x 1024 x 2000 volume,
#: beyond any CT or dose grid in clinical use, has 2.1e9.
MAX_GRID_VOXELS = 2**31
#: Most voxels of one ROI's DVH calculation grid: 1e8. The automatic spacing gives a few
#: million at most; more means absurd coordinates or a far too fine resolution.
MAX_DVH_LATTICE_VOXELS = 100_000_000
#: Most dose samples of one ROI's DVH (covered voxels x sub-slabs, about 33 bytes each):
#: 1e8. A body outline on 1 mm voxels over 500 planes needs 5e7; more means contour
#: planes absurdly far apart.
MAX_DVH_SAMPLES = 100_000_000
#: Largest dose (Gy) an RT Dose may hold: 100 kGy, ten times what even a grid point
#: next to a brachytherapy source reaches; more means a wrong or missing DoseGridScaling.
MAX_DOSE_GY = 1e5
#: Most dose bins of one DVH curve: 2**24 (100 kGy in 0.01 Gy bins needs 1e7).
MAX_DVH_BINS = 2**24

#: Most voxels along one axis of a NIfTI-1 file (its header stores them as int16).
NIFTI1_MAX_DIMENSION = 32767


def coordinate_problem(values: Sequence[float], keyword: str) -> str | None:
    """Why patient coordinates (mm) of ``keyword`` cannot be real, or None when they can.

    Non-finite values and values beyond :data:`MAX_COORDINATE_MM` are refused.
    """
    bad = [v for v in values if not math.isfinite(v) or abs(v) > MAX_COORDINATE_MM]
    if not bad:
        return None
    return (
        f"{keyword} holds {bad[0]:g} mm, beyond the {MAX_COORDINATE_MM:g} mm "
        f"({MAX_COORDINATE_MM / 1000:g} m) that any patient coordinate stays within"
    )


def voxel_count(shape: Sequence[int]) -> int:
    """Number of voxels of ``shape`` as a Python int (no integer overflow)."""
    return math.prod(int(n) for n in shape)
