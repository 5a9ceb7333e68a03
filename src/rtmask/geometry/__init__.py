"""Image grids: shape, index -> patient affine and slice positions. Pure numpy."""

from rtmask.geometry._grid import ImageGrid, slice_order

__all__ = ["ImageGrid", "slice_order"]
