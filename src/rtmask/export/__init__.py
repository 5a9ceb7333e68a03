"""Writers: NIfTI, NRRD, NumPy, labelmaps, DICOM SEG, RTSTRUCT, summaries and pictures.

RT Structure Sets are written from masks with contours traced along the voxel edges
(:func:`contours_from_mask`, :func:`write_rtstruct`).

File names come from :func:`safe_file_stems` (ROI names are untrusted free text), and every
file is written atomically (:func:`atomic_path`), so an interrupted run never leaves a
truncated file under its final name.
"""

from rtmask._atomic import atomic_path
from rtmask.export._dose_view import (
    DoseView,
    IsodoseLevel,
    ViewPanel,
    choose_view_positions,
    write_dose_view,
)
from rtmask.export._labelmap import LabelmapEntry, LabelmapResult, write_labelmap
from rtmask.export._names import ensure_inside, safe_file_stems, safe_folder_name
from rtmask.export._overlay import choose_overlay_slices, write_overlay
from rtmask.export._rtdose import DoseReferenceLike, write_rtdose
from rtmask.export._rtstruct_writer import RtstructWriteReport, write_rtstruct
from rtmask.export._seg import SegWriteReport, write_seg
from rtmask.export._summary import SummaryRow, write_summary
from rtmask.export._trace import contours_from_mask
from rtmask.export._volumes import (
    image_storage_dtype,
    write_image_volume,
    write_nifti,
    write_npz,
    write_nrrd,
)

__all__ = [
    "DoseReferenceLike",
    "DoseView",
    "IsodoseLevel",
    "LabelmapEntry",
    "LabelmapResult",
    "RtstructWriteReport",
    "SegWriteReport",
    "SummaryRow",
    "ViewPanel",
    "atomic_path",
    "choose_overlay_slices",
    "choose_view_positions",
    "contours_from_mask",
    "ensure_inside",
    "image_storage_dtype",
    "safe_file_stems",
    "safe_folder_name",
    "write_dose_view",
    "write_image_volume",
    "write_labelmap",
    "write_nifti",
    "write_npz",
    "write_nrrd",
    "write_overlay",
    "write_rtdose",
    "write_rtstruct",
    "write_seg",
    "write_summary",
]
