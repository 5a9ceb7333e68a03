"""What a conversion writes and how: its options, output formats and file names."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, get_args

from rtmask.errors import InvalidInputError
from rtmask.raster import CombinationRule, SliceMode

__all__ = [
    "LABELMAP_FILE_NAME",
    "MASK_SUFFIXES",
    "NPZ_FILE_NAME",
    "OVERLAY_NAME",
    "SEG_FILE_NAME",
    "VOLUME_CONVENTION",
    "VOLUME_SUFFIXES",
    "ConversionOptions",
    "OutputFormat",
]

OutputFormat = Literal["nifti", "nrrd", "npz", "labelmap", "seg"]

VOLUME_CONVENTION = (
    "voxel count: voxels whose centre lies inside the ROI (pixel-centre rule) x voxel volume "
    "(fractional masks: sum of covered fractions x voxel volume)"
)
#: Suffix of the one file per ROI of the formats that write one.
MASK_SUFFIXES = {"nifti": ".nii.gz", "nrrd": ".nrrd"}
#: The one NumPy file per structure set of ``output_format="npz"``.
NPZ_FILE_NAME = "masks.npz"
#: The one label image per structure set of ``output_format="labelmap"``.
LABELMAP_FILE_NAME = "labels.nii.gz"
#: The one DICOM Segmentation written per structure set by ``output_format="seg"``.
SEG_FILE_NAME = "segmentation.dcm"
#: Suffix of the image and dose files by output format (NIfTI beside npz, labelmap, SEG).
VOLUME_SUFFIXES = {"nrrd": ".nrrd"}
#: The picture of ``overlay=True``.
OVERLAY_NAME = "overlay.png"


@dataclass(frozen=True, slots=True, kw_only=True)
class ConversionOptions:
    """How a structure set is converted (plain values: the options pickle with a task).

    Parameters
    ----------
    rule, fractional
        As :func:`rtmask.raster.rasterize`.
    output_format
        ``"nifti"``, ``"nrrd"``, ``"npz"``, ``"labelmap"`` or ``"seg"`` (one DICOM SEG:
        needs the image series the grid belongs to, and highdicom:
        ``pip install 'rtmask[seg]'``).
    resample_mm
        Resample the native slices onto a uniform grid of this slice spacing.
    slice_mode
        ``"exact"`` for the image grid the contours were drawn on; ``"slab"`` for other
        grids (dose, covering grid), see :func:`rtmask.raster.rasterize`.
    overlay
        Also write ``overlay.png``: the ROI outlines on up to six slices that hold
        contours (needs matplotlib, ``pip install 'rtmask[plot]'``). A failure to draw it
        is one of the report's problems; the masks are written all the same.
    workers
        Threads that rasterise and write ROIs (default: the usable CPUs, at most 4).
    write_image
        Also write the image series (``image.nii.gz``; ``image.nrrd`` for ``nrrd``) in
        modality units (HU for CT), int16 when lossless, else float32, in the masks' layout.
        On the masks' grid (resampled linearly along the slices with ``resample_mm``);
        with another grid (``slice_mode="slab"``) on the series' own grid.
    write_dose
        Also write the linked dose in Gy (``dose.nii.gz`` / ``dose.nrrd``) when a dose is
        given to the conversion.
    dose_on_image
        Resample the dose trilinearly onto the image's grid (0 Gy outside the dose grid);
        else the dose keeps its own grid.
    """

    rule: CombinationRule | str = CombinationRule.AUTO
    output_format: OutputFormat = "nifti"
    fractional: int | None = None
    resample_mm: float | None = None
    slice_mode: SliceMode = "exact"
    overlay: bool = False
    workers: int | None = None
    write_image: bool = True
    write_dose: bool = True
    dose_on_image: bool = False

    def __post_init__(self) -> None:
        if self.output_format not in get_args(OutputFormat):
            raise InvalidInputError(
                f"unknown output format {self.output_format!r}; "
                f"use one of {', '.join(get_args(OutputFormat))}"
            )

    def rasterize_options(self) -> dict[str, Any]:
        """The keyword arguments of :func:`rtmask.raster.rasterize` these options set."""
        return {"rule": self.rule, "fractional": self.fractional, "slice_mode": self.slice_mode}
