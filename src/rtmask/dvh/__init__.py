"""Structure volumes and dose-volume histograms with named conventions.

:func:`contour_volume` gives the contour-based volume: polygon areas (holes by the same
rules as the rasteriser) times slab thickness, with the end-cap convention named
(:class:`EndCaps`). Voxel-based volumes are :attr:`rtmask.raster.Mask.volume_cm3` of a
binary mask (voxel count) or of a fractional one (partial volumes).

:func:`compute_dvh` samples an ROI with partial volumes on a calculation grid in an RT
Dose and returns a cumulative :class:`DVH` with its statistics.
:func:`read_embedded_dvhs` reads the DVHs a planning system stored in an RT Dose, for
comparison (:meth:`EmbeddedDVH.to_dvh`).
"""

from rtmask.dvh._compute import compute_dvh
from rtmask.dvh._embedded import EmbeddedDVH, read_embedded_dvhs
from rtmask.dvh._histogram import DVH, cumulative_curve
from rtmask.dvh._volume import ContourVolume, EndCaps, contour_volume

__all__ = [
    "DVH",
    "ContourVolume",
    "EmbeddedDVH",
    "EndCaps",
    "compute_dvh",
    "contour_volume",
    "cumulative_curve",
    "read_embedded_dvhs",
]
