"""RT Dose: dose grids in Gy (any frame order, offsets form, bit depth) and dose arithmetic."""

from rtmask.dose._arithmetic import (
    add_doses,
    dose_difference,
    resample_dose,
    sample_dose,
    scale_dose,
)
from rtmask.dose._model import DoseGrid, DoseReference
from rtmask.dose._reader import (
    dose_frame_order,
    read_dose,
    read_dose_grid,
    read_dose_reference,
)

__all__ = [
    "DoseGrid",
    "DoseReference",
    "add_doses",
    "dose_difference",
    "dose_frame_order",
    "read_dose",
    "read_dose_grid",
    "read_dose_reference",
    "resample_dose",
    "sample_dose",
    "scale_dose",
]
