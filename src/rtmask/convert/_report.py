"""What a conversion returns (:class:`ConversionReport`) and the summary rows it writes."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from rtmask.export import SummaryRow
from rtmask.geometry import ImageGrid
from rtmask.raster import Mask
from rtmask.rtstruct import ROI, StructureSet

__all__ = ["ConversionReport", "grid_info", "structure_set_info", "summary_row"]


@dataclass(frozen=True, slots=True, kw_only=True)
class ConversionReport:
    """What one structure set's conversion wrote and what it could not.

    Every message is one sentence naming the file (and ROI). ``uneven_slices`` is True when
    the grid's slices are not evenly spaced and were not resampled: the masks follow the
    native slices (one of the notes says so).
    """

    folder: Path
    rows: tuple[SummaryRow, ...]  # one per ROI, in the structure set's order
    summary_files: tuple[Path, ...]  # summary.json, summary.csv
    problems: tuple[str, ...]  # failures: each makes the command exit non-zero
    notes: tuple[str, ...]  # warnings that did not stop anything
    overlay: Path | None = None  # the overlay picture, when asked for and written
    image: Path | None = None  # the image volume, when written
    dose: Path | None = None  # the dose volume, when written
    uneven_slices: bool = False

    @property
    def ok(self) -> bool:
        """True when every selected ROI was converted."""
        return not self.problems


def summary_row(
    roi: ROI,
    *,
    file: str | None,
    mask: Mask | None,
    status: str,
    warnings: Sequence[str],
    canonical: str | None = None,
) -> SummaryRow:
    """The summary row of ``roi``: its file, voxel count and volume (from ``mask``), status."""
    return SummaryRow(
        roi_number=roi.number,
        name=roi.name,
        file=file,
        color=roi.color,
        interpreted_type=roi.interpreted_type,
        n_contours=roi.n_contours,
        voxel_count=None if mask is None else mask.voxel_count,
        volume_cm3=None if mask is None else mask.volume_cm3,
        status=status,
        warnings=tuple(warnings),
        canonical=canonical,
    )


def grid_info(grid: ImageGrid) -> dict[str, object]:
    """The summary's facts about the grid the masks are on."""
    return {
        "grid_shape": list(grid.shape),
        "grid_spacing_mm": list(grid.spacing_mm),
        "grid_uniform": grid.is_uniform,
        "affine_lps": grid.affine.tolist(),
    }


def structure_set_info(
    structure_set: StructureSet, grid: ImageGrid, image_series: str | None
) -> dict[str, object]:
    """The summary's facts about a structure set and the grid its masks are on."""
    return {
        "source": structure_set.source,
        "label": structure_set.label,
        "sop_instance_uid": structure_set.sop_instance_uid,
        "patient_id": structure_set.patient_id,
        "frame_of_reference_uid": structure_set.frame_of_reference_uid,
        "image_series": image_series,
        **grid_info(grid),
        "warnings": list(structure_set.warnings),
        "skipped_rois": list(structure_set.skipped_rois),
    }
