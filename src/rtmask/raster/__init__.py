"""Polygons -> masks on any ImageGrid, by the pixel-centre rule (DESIGN.md rules 1-2)."""

from rtmask.raster._mask import CombinationRule, Mask, slab_thicknesses_mm
from rtmask.raster._planes import SliceMode, default_plane_tolerance_mm
from rtmask.raster._rasterize import rasterize, rasterize_all
from rtmask.raster._resample import interpolate_slices, resample_slices

__all__ = [
    "CombinationRule",
    "Mask",
    "SliceMode",
    "default_plane_tolerance_mm",
    "interpolate_slices",
    "rasterize",
    "rasterize_all",
    "resample_slices",
    "slab_thicknesses_mm",
]
