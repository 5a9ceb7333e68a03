"""RT Dose: the dose grid's geometry (frames in any order, relative or absolute offsets)."""

from rtmask.dose._reader import dose_frame_order, read_dose_grid

__all__ = ["dose_frame_order", "read_dose_grid"]
