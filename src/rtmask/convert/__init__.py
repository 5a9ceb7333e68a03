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
