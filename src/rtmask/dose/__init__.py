"""RT Dose: dose grids in Gy (any frame order, offsets form, bit depth) and dose arithmetic."""

from rtmask.dose._arithmetic import (
    add_doses,
    dose_difference,
    resample_dose,
    sample_dose,
    scale_dose,
)
from rtmask.dose._model import DoseGrid
from rtmask.dose._reader import dose_frame_order, read_dose, read_dose_grid

__all__ = [
    "DoseGrid",
    "add_doses",
    "dose_difference",
    "dose_frame_order",
    "read_dose",
    "read_dose_grid",
    "resample_dose",
    "sample_dose",
    "scale_dose",
]
