"""Reading masks back from files: NIfTI/NRRD folders, labelmaps, npz and DICOM SEG.

``read_masks(path, series_or_grid)`` places every mask exactly on the reference grid (any
axis order or flip, never resampled) and returns :class:`rtmask.raster.Mask` objects ready
for ``rtmask.export`` writers (RTSTRUCT, SEG, NIfTI, ...).
"""

from rtmask.masks._files import MASK_SUFFIXES, read_masks, roi_name_of
from rtmask.masks._seg import SegInfo, read_seg, read_seg_info
from rtmask.masks._tables import non_mask_volumes

__all__ = [
    "MASK_SUFFIXES",
    "SegInfo",
    "non_mask_volumes",
    "read_masks",
    "read_seg",
    "read_seg_info",
    "roi_name_of",
]
