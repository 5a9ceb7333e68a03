"""Structure volumes (and, later, dose-volume histograms) with named conventions.

:func:`contour_volume` gives the contour-based volume: polygon areas (holes by the same
rules as the rasteriser) times slab thickness, with the end-cap convention named
(:class:`EndCaps`). Voxel-based volumes are :attr:`rtmask.raster.Mask.volume_cm3` of a
binary mask (voxel count) or of a fractional one (partial volumes).
"""

from rtmask.dvh._volume import ContourVolume, EndCaps, contour_volume

__all__ = ["ContourVolume", "EndCaps", "contour_volume"]
