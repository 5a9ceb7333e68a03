"""Writing masks as files: one per ROI, or one container for all (npz, labelmap, SEG).

Shared by :func:`rtmask.convert.convert_structure_set` (masks just rasterised) and
:func:`rtmask.convert.convert_masks` (masks read from a DICOM SEG). A container's summary
rows point into it: ``masks.npz#roi/<stem>``, ``labels.nii.gz#<label>``,
``segmentation.dcm#<segment>``.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from rtmask.convert._options import (
    LABELMAP_FILE_NAME,
    MASK_SUFFIXES,
    NPZ_FILE_NAME,
    SEG_FILE_NAME,
    OutputFormat,
)
from rtmask.discovery import ImageSeries
from rtmask.errors import GeometryWarning, RtmaskError
from rtmask.export import SummaryRow, write_labelmap, write_nifti, write_npz, write_nrrd, write_seg
from rtmask.geometry import ImageGrid
from rtmask.raster import Mask

__all__ = ["Containers", "write_mask_file"]


def write_mask_file(mask: Mask, folder: Path, stem: str, output_format: OutputFormat) -> str | None:
    """Write a mask's own file (``nifti``, ``nrrd``); return the name its summary row gives.

    For ``npz`` nothing is written here (see :class:`Containers`) and the name is the
    array's place in ``masks.npz``; the labelmap and SEG containers name it later (None).
    """
    if output_format in MASK_SUFFIXES:
        path = folder / f"{stem}{MASK_SUFFIXES[output_format]}"
        writer = write_nifti if output_format == "nifti" else write_nrrd
        writer(mask.array, mask.grid, path)
        return path.name
    if output_format == "npz":
        return f"{NPZ_FILE_NAME}#roi/{stem}"
    return None


@dataclass(slots=True)
class Containers:
    """The masks collected for the one file of ``npz``, ``labelmap`` or ``seg`` output.

    Only what the format needs is kept: the arrays for ``npz``, the masks for ``labelmap``
    and ``seg``, nothing for one file per ROI.
    """

    output_format: OutputFormat
    masks: list[Mask] = field(default_factory=list)
    npz_arrays: dict[str, np.ndarray] = field(default_factory=dict)

    def add(self, mask: Mask, stem: str) -> None:
        """Keep ``mask`` (file stem ``stem``) for the container, if the format has one."""
        if self.output_format in ("labelmap", "seg"):
            self.masks.append(mask)
        elif self.output_format == "npz":
            self.npz_arrays[stem] = mask.array

    def write(
        self,
        folder: Path,
        grid: ImageGrid,
        rows: list[SummaryRow],
        *,
        series: ImageSeries | None,
        source: str,
        problems: list[str],
        notes: list[str],
    ) -> list[SummaryRow]:
        """Write the container file; return ``rows`` pointing into it.

        A SEG that cannot be written is one of ``problems`` (its rows lose their file);
        the labelmap's warnings go to ``notes``.
        """
        if self.output_format == "npz":
            write_npz(self.npz_arrays, grid, folder / NPZ_FILE_NAME)
        if self.output_format == "labelmap" and self.masks:
            result = write_labelmap(self.masks, folder / LABELMAP_FILE_NAME)
            notes.extend(f"{source}: {w}" for w in result.warnings)
            labels = {entry.roi_number: entry.label for entry in result.entries}
            rows = _point_into(rows, LABELMAP_FILE_NAME, labels)
        if self.output_format == "seg" and self.masks and series is not None:
            rows = _write_seg_rows(
                self.masks, series, folder, rows, problems=problems, notes=notes, source=source
            )
        return rows


def _point_into(rows: list[SummaryRow], name: str, parts: dict[int, int]) -> list[SummaryRow]:
    """Rows of the ROIs in ``parts`` (ROI number -> part) get the file ``name#part``."""
    return [
        replace(row, file=f"{name}#{parts[row.roi_number]}") if row.roi_number in parts else row
        for row in rows
    ]


def _write_seg_rows(
    masks: Sequence[Mask],
    series: ImageSeries,
    folder: Path,
    rows: list[SummaryRow],
    *,
    problems: list[str],
    notes: list[str],
    source: str,
) -> list[SummaryRow]:
    """Write the DICOM SEG; rows get ``segmentation.dcm#<segment>`` (failures: problems)."""
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", GeometryWarning)
            report = write_seg(masks, series, folder / SEG_FILE_NAME)
        # What the SEG states differently from the images (e.g. a SliceThickness made
        # up from the slice spacing) is a note of the conversion.
        for caught_warning in caught:
            if issubclass(caught_warning.category, GeometryWarning):
                notes.append(str(caught_warning.message))
            else:
                warnings.warn(caught_warning.message, caught_warning.category, stacklevel=2)
    except RtmaskError as error:
        problems.append(f"{source}: {SEG_FILE_NAME} not written: {error}")
        return [replace(row, file=None) if row.status == "written" else row for row in rows]
    segments = {segment.roi_number: segment.segment_number for segment in report.segments}
    return _point_into(rows, SEG_FILE_NAME, segments)
