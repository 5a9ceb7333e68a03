"""rtmask: exact voxel masks from DICOM RT Structure Sets."""

from rtmask._errors import RtmaskError, RtmaskWarning
from rtmask.geometry import ImageGrid
from rtmask.rtstruct import ROI, Contour, GeometricType, StructureSet, read_rtstruct

__all__ = [
    "ROI",
    "Contour",
    "GeometricType",
    "ImageGrid",
    "RtmaskError",
    "RtmaskWarning",
    "StructureSet",
    "read_rtstruct",
]
__version__ = "0.1.0"
