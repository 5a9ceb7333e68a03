"""RT Dose: dose grids in Gy (any frame order, offsets form, bit depth) and dose arithmetic."""

from rtmask.dose._arithmetic import (
    add_doses,
    dose_difference,
    resample_dose,
    sample_dose,
    scale_dose,
)
from rtmask.dose._model import DoseGrid, DoseReference
from rtmask.dose._planes import (
    DosePlane,
    boundary_dose_note,
    dose_plane,
    image_plane,
    isodose_lines,
    max_boundary_dose_gy,
)
from rtmask.dose._reader import (
    dose_frame_order,
    read_dose,
    read_dose_grid,
    read_dose_reference,
)

__all__ = [
    "DoseGrid",
    "DosePlane",
    "DoseReference",
    "add_doses",
    "boundary_dose_note",
    "dose_difference",
    "dose_frame_order",
    "dose_plane",
    "image_plane",
    "isodose_lines",
    "max_boundary_dose_gy",
    "read_dose",
    "read_dose_grid",
    "read_dose_reference",
    "resample_dose",
    "sample_dose",
    "scale_dose",
]
