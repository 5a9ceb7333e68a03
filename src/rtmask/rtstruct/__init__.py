"""RT Structure Sets: the pydicom-free model and the reader that fills it."""

from rtmask.rtstruct._model import ROI, Contour, GeometricType, StructureSet
from rtmask.rtstruct._reader import is_rtstruct, read_rtstruct

__all__ = ["ROI", "Contour", "GeometricType", "StructureSet", "is_rtstruct", "read_rtstruct"]
