"""rtmask: exact voxel masks, volumes and DVHs from DICOM RT Structure Sets.

The public API, in data-flow order::

    structure_set = rtmask.read_rtstruct("RS.dcm")
    series = rtmask.read_image_series("CT/")            # or rtmask.scan(...) + link
    mask = rtmask.rasterize(structure_set.roi("GTV"), series.grid)
    rtmask.write_nifti(mask.array, mask.grid, "GTV.nii.gz")

and the way back, masks to DICOM::

    masks = rtmask.read_masks("masks/", series)        # NIfTI/NRRD folder, labelmap, npz, SEG
    rtmask.write_rtstruct(masks, series, "RS.dcm")     # contours along the voxel edges
    rtmask.write_seg(masks, series, "SEG.dcm")         # needs rtmask[seg] (highdicom)

Writers (``write_*``, ``convert_structure_set``) and :func:`read_masks` load nibabel,
pynrrd and highdicom on first use, and the image discovery (``scan``,
``read_image_series``) loads on first use too, so ``import rtmask`` stays light.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rtmask._errors import (
    DicomReadError,
    GeometryError,
    InvalidInputError,
    MissingReferenceError,
    RtmaskError,
    RtmaskWarning,
    SeriesNotFoundError,
)
from rtmask.geometry import ImageGrid
from rtmask.raster import CombinationRule, Mask, rasterize, rasterize_all
from rtmask.rtstruct import ROI, Contour, GeometricType, StructureSet, read_rtstruct

if TYPE_CHECKING:
    from rtmask.discovery import (
        ImageSeries,
        Inventory,
        link_image_series,
        read_image_series,
        scan,
    )
    from rtmask.export import (
        convert_structure_set,
        write_labelmap,
        write_nifti,
        write_npz,
        write_nrrd,
        write_rtstruct,
        write_seg,
    )
    from rtmask.masks import read_masks

__all__ = [
    "ROI",
    "CombinationRule",
    "Contour",
    "DicomReadError",
    "GeometricType",
    "GeometryError",
    "ImageGrid",
    "ImageSeries",
    "InvalidInputError",
    "Inventory",
    "Mask",
    "MissingReferenceError",
    "RtmaskError",
    "RtmaskWarning",
    "SeriesNotFoundError",
    "StructureSet",
    "convert_structure_set",
    "link_image_series",
    "rasterize",
    "rasterize_all",
    "read_image_series",
    "read_masks",
    "read_rtstruct",
    "scan",
    "write_labelmap",
    "write_nifti",
    "write_npz",
    "write_nrrd",
    "write_rtstruct",
    "write_seg",
]
__version__ = "0.1.0"

#: Loaded on first use: the image discovery (not needed by a DVH or a structure set read).
_LAZY_DISCOVERY = frozenset(
    {"ImageSeries", "Inventory", "link_image_series", "read_image_series", "scan"}
)
_LAZY_EXPORTS = frozenset(
    {
        "convert_structure_set",
        "write_labelmap",
        "write_nifti",
        "write_npz",
        "write_nrrd",
        "write_rtstruct",
        "write_seg",
    }
)


def __getattr__(name: str) -> Any:
    """Import discovery, the writers and the mask reader on first use."""
    if name in _LAZY_DISCOVERY:
        from rtmask import discovery  # noqa: PLC0415 - lazy on purpose (start-up time)

        return getattr(discovery, name)
    if name in _LAZY_EXPORTS:
        from rtmask import export  # noqa: PLC0415 - lazy on purpose (nibabel, pynrrd)

        return getattr(export, name)
    if name == "read_masks":
        from rtmask import masks  # noqa: PLC0415 - lazy on purpose (nibabel, pynrrd)

        return masks.read_masks
    raise AttributeError(f"module 'rtmask' has no attribute {name!r}")
