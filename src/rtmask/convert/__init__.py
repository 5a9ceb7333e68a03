"""The conversion workflow: one structure set (or one set of masks) -> a folder and a summary.

:func:`convert_structure_set` selects a structure set's ROIs, rasterises them onto a grid,
writes one file per ROI (or one container: ``.npz``, labelmap, DICOM SEG) and a summary
(``summary.json``, ``summary.csv``); :func:`convert_masks` writes masks that already exist
the same way, and :func:`convert_seg` those of a DICOM SEG. Beside the masks they write the
image series (``image.nii.gz``) and the dose :func:`choose_dose` links (``dose.nii.gz``). All are
plain functions of objects, a folder and options that return a
:class:`ConversionReport`: what ``rtmask convert`` runs once per structure set, and what a
cohort's per-case task builds on.
"""

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rtmask.convert._options import (
        SEG_FILE_NAME,
        VOLUME_CONVENTION,
        ConversionOptions,
        OutputFormat,
    )
    from rtmask.convert._report import ConversionReport
    from rtmask.convert._select import RoiPlan, plan_rois, select_rois
    from rtmask.convert._volumes import DoseSelection, choose_dose
    from rtmask.convert._workflow import convert_masks, convert_seg, convert_structure_set

#: Where each public name lives: the submodules load on first use, so a command that only
#: selects ROIs (``rtmask dvh``) does not pay for the writers' imports (nibabel, shapely).
_LOCATIONS = {
    "SEG_FILE_NAME": "_options",
    "VOLUME_CONVENTION": "_options",
    "ConversionOptions": "_options",
    "OutputFormat": "_options",
    "ConversionReport": "_report",
    "RoiPlan": "_select",
    "plan_rois": "_select",
    "select_rois": "_select",
    "DoseSelection": "_volumes",
    "choose_dose": "_volumes",
    "convert_masks": "_workflow",
    "convert_seg": "_workflow",
    "convert_structure_set": "_workflow",
}


def __getattr__(name: str) -> Any:
    """Import a public name's submodule when the name is first used (PEP 562)."""
    module = _LOCATIONS.get(name)
    if module is None:
        raise AttributeError(f"module 'rtmask.convert' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"rtmask.convert.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LOCATIONS})


__all__ = [
    "SEG_FILE_NAME",
    "VOLUME_CONVENTION",
    "ConversionOptions",
    "ConversionReport",
    "DoseSelection",
    "OutputFormat",
    "RoiPlan",
    "choose_dose",
    "convert_masks",
    "convert_seg",
    "convert_structure_set",
    "plan_rois",
    "select_rois",
]
