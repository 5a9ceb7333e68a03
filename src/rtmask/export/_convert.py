"""One structure set (or one set of masks) -> one folder of masks and a summary.

The work of ``rtmask convert``: :func:`convert_structure_set` rasterises a structure set's
ROIs and writes them; :func:`convert_masks` writes masks that already exist (read from a
DICOM SEG) the same way.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

from rtmask._errors import RtmaskError
from rtmask._parallel import default_workers, ordered_map
from rtmask.discovery import ImageSeries
from rtmask.export._labelmap import write_labelmap
from rtmask.export._names import safe_file_stems
from rtmask.export._overlay import OverlayMask, choose_overlay_slices, write_overlay
from rtmask.export._seg import write_seg
from rtmask.export._summary import SummaryRow, write_summary
from rtmask.export._volumes import write_nifti, write_npz, write_nrrd
from rtmask.geometry import ImageGrid
from rtmask.raster import CombinationRule, Mask, SliceMode, rasterize, resample_slices
from rtmask.rtstruct import ROI, StructureSet

__all__ = [
    "SEG_FILE_NAME",
    "VOLUME_CONVENTION",
    "ConversionReport",
    "OutputFormat",
    "convert_masks",
    "convert_structure_set",
]

logger = logging.getLogger(__name__)

OutputFormat = Literal["nifti", "nrrd", "npz", "labelmap", "seg"]

VOLUME_CONVENTION = (
    "voxel count: voxels whose centre lies inside the ROI (pixel-centre rule) x voxel volume "
    "(fractional masks: sum of covered fractions x voxel volume)"
)
_SUFFIX = {"nifti": ".nii.gz", "nrrd": ".nrrd"}
OVERLAY_NAME = "overlay.png"
#: The one DICOM Segmentation written per structure set by ``output_format="seg"``.
SEG_FILE_NAME = "segmentation.dcm"


@dataclass(frozen=True, slots=True, kw_only=True)
class ConversionReport:
    """What one structure set's conversion wrote and what it could not."""

    folder: Path
    rows: tuple[SummaryRow, ...]
    summary_files: tuple[Path, ...]
    problems: tuple[str, ...]  # failures: each makes the command exit non-zero
    notes: tuple[str, ...]  # warnings that did not stop anything
    overlay: Path | None = None  # the overlay picture, when asked for and written

    @property
    def ok(self) -> bool:
        """True when every selected ROI was converted."""
        return not self.problems


def _row(
    roi: ROI, *, file: str | None, mask: Mask | None, status: str, warnings: Sequence[str]
) -> SummaryRow:
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
    )


def convert_structure_set(
    structure_set: StructureSet,
    grid: ImageGrid,
    folder: Path,
    *,
    rois: Sequence[ROI] | None = None,
    rule: CombinationRule | str = CombinationRule.AUTO,
    output_format: OutputFormat = "nifti",
    fractional: int | None = None,
    resample_mm: float | None = None,
    image_series: str | None = None,
    slice_mode: SliceMode = "exact",
    progress: Callable[[ROI], None] | None = None,
    workers: int | None = None,
    overlay: bool = False,
    read_images: Callable[[Sequence[int]], NDArray[np.floating[Any]]] | None = None,
    series: ImageSeries | None = None,
) -> ConversionReport:
    """Rasterise the selected ROIs onto ``grid`` and write them into ``folder``.

    Parameters
    ----------
    structure_set
        The structure set (``read_rtstruct``).
    grid
        Its image grid; masks keep its full geometry.
    folder
        Output folder (created). Files: one ``<safe ROI name><suffix>`` per ROI for
        ``nifti``/``nrrd``, ``masks.npz`` for ``npz``, ``labels.nii.gz`` plus colour
        tables for ``labelmap``, ``segmentation.dcm`` (one DICOM SEG, one segment per ROI
        with volume) for ``seg``; always ``summary.json`` and ``summary.csv``.
    rois
        ROIs to convert (default: all); unselected ROIs are listed as "not selected".
    rule, fractional
        As :func:`rtmask.raster.rasterize`.
    output_format
        ``"nifti"``, ``"nrrd"``, ``"npz"``, ``"labelmap"`` or ``"seg"`` (needs ``series``,
        the image series ``grid`` belongs to, and highdicom: ``pip install 'rtmask[seg]'``).
    resample_mm
        Resample the native slices onto a uniform grid of this slice spacing.
    image_series
        Description of the image series (or other grid source), for the summary.
    slice_mode
        ``"exact"`` for the image grid the contours were drawn on; ``"slab"`` for other
        grids (dose, covering grid), see :func:`rtmask.raster.rasterize`.
    progress
        Called once per ROI after it is done.
    workers
        Threads that rasterise and write ROIs (default: the usable CPUs, at most 4).
    overlay
        Also write ``overlay.png``: the ROI outlines on up to six slices that hold
        contours (needs matplotlib, ``pip install 'rtmask[plot]'``). A failure to draw it
        is one of the report's problems; the masks are written all the same.
    read_images
        Reads ``(n, rows, columns)`` image slices (modality units) of ``grid`` by slice
        index, for the overlay's background (e.g. ``rtmask.discovery.read_slices``); None
        draws the outlines on black.
    series
        The image series of ``grid``: the DICOM SEG references its images.

    Raises
    ------
    RtmaskError
        ``output_format="seg"`` without the image series, or with resampling.
    """
    if output_format == "seg" and (series is None or resample_mm):
        raise RtmaskError(
            f"{structure_set.source}: a DICOM SEG is made on the image series the contours "
            "were drawn on; give the images (no --resample, --dose-grid or --grid-spacing)"
        )
    folder.mkdir(parents=True, exist_ok=True)
    selected = {roi.number for roi in (structure_set.rois if rois is None else rois)}
    stems = safe_file_stems(structure_set.rois)
    target_grid = grid.with_uniform_slices(resample_mm) if resample_mm else grid
    problems: list[str] = []
    notes: list[str] = [f"{structure_set.source}: {w}" for w in structure_set.warnings]
    if not grid.is_uniform and not resample_mm:
        notes.append(
            f"{structure_set.source}: image slices are not evenly spaced ("
            + "; ".join(grid.irregularities())
            + f"); masks follow the {grid.shape[0]} native slices and the file header states "
            f"the mean spacing {grid.spacing_mm[0]:.3g} mm; use --resample MM for a uniform grid"
        )
    rows: list[SummaryRow] = []
    kept: list[Mask] = []
    npz_arrays: dict[str, np.ndarray] = {}
    # Only the overlay's few slices of each mask are kept, never whole masks.
    overlay_slices = (
        choose_overlay_slices([r for r in structure_set.rois if r.number in selected], target_grid)
        if overlay
        else ()
    )
    overlay_masks: list[OverlayMask] = []

    def convert(roi: ROI) -> tuple[SummaryRow, Mask] | RtmaskError | OSError:
        try:
            return _convert_roi(
                roi,
                grid,
                target_grid,
                folder,
                stems[roi.number],
                rule=rule,
                fractional=fractional,
                output_format=output_format,
                resample=bool(resample_mm),
                slice_mode=slice_mode,
            )
        except (RtmaskError, OSError) as error:
            return error

    # ROIs with volume are rasterised and written by worker threads, in ROI order.
    with_volume = [r for r in structure_set.rois if r.number in selected and r.encloses_volume]
    results = ordered_map(convert, with_volume, default_workers() if workers is None else workers)
    for roi in structure_set.rois:
        if roi.number not in selected:
            rows.append(_row(roi, file=None, mask=None, status="not selected", warnings=()))
            continue
        label = f"ROI {roi.number} {roi.name!r}"
        if roi.dropped_contours:
            positions = ", ".join(str(i) for i in roi.dropped_contours[:10])
            problems.append(
                f"{structure_set.source}: {label}: contour(s) {positions}"
                f"{' ...' if len(roi.dropped_contours) > 10 else ''} have unusable coordinates "
                "(NaN, infinite, beyond 100 m or not numbers) and were dropped; fix them in the "
                "planning system and export again"
            )
        if not roi.contours:
            problems.append(f"{structure_set.source}: {label} has no contours; no mask written")
            rows.append(_row(roi, file=None, mask=None, status="empty", warnings=roi.warnings))
        elif not roi.encloses_volume:
            types = ", ".join(t.value for t in roi.geometric_types)
            notes.append(
                f"{structure_set.source}: {label} has only {types} contours, which "
                "enclose no volume; listed, not filled"
            )
            rows.append(_row(roi, file=None, mask=None, status="no volume", warnings=roi.warnings))
        else:
            outcome = next(results)
            if isinstance(outcome, (RtmaskError, OSError)):
                problems.append(f"{structure_set.source}: {label}: {outcome}")
                rows.append(_row(roi, file=None, mask=None, status="failed", warnings=roi.warnings))
            else:
                row, mask = outcome
                rows.append(row)
                notes.extend(f"{structure_set.source}: {w}" for w in mask.warnings)
                if row.status == "empty":
                    problems.append(
                        f"{structure_set.source}: {label}: no voxel centre lies "
                        "inside its contours on this grid; empty mask written"
                    )
                if overlay:
                    picked = mask.array[list(overlay_slices)]  # a copy (fancy indexing)
                    overlay_masks.append((roi.name, roi.color, picked))
                if output_format in ("labelmap", "seg"):
                    kept.append(mask)
                elif output_format == "npz":
                    npz_arrays[stems[roi.number]] = mask.array
        if progress is not None:
            progress(roi)
    results.close()  # joins the worker threads
    if output_format == "npz":
        write_npz(npz_arrays, target_grid, folder / "masks.npz")
    if output_format == "labelmap" and kept:
        result = write_labelmap(kept, folder / "labels.nii.gz")
        notes.extend(f"{structure_set.source}: {w}" for w in result.warnings)
        labels = {entry.roi_number: entry.label for entry in result.entries}
        rows = [
            replace(row, file=f"labels.nii.gz#{labels[row.roi_number]}")
            if row.roi_number in labels
            else row
            for row in rows
        ]
    if output_format == "seg" and kept and series is not None:
        rows = _write_seg_rows(
            kept, series, folder, rows, problems=problems, source=str(structure_set.source)
        )
    overlay_path: Path | None = None
    if overlay:
        try:
            overlay_path = _write_overlay(
                folder / OVERLAY_NAME,
                structure_set,
                grid=grid,
                target_grid=target_grid,
                slices=overlay_slices,
                masks=overlay_masks,
                read_images=read_images,
            )
        except Exception as error:  # a picture must never cost the masks or the summary
            logger.debug("overlay of %s failed", structure_set.source, exc_info=True)
            problems.append(f"{structure_set.source}: {OVERLAY_NAME} not written: {error}")
    summary_files = write_summary(
        rows,
        folder,
        structure_set=_structure_set_info(structure_set, target_grid, image_series),
        volume_convention=VOLUME_CONVENTION,
        overlay=None if overlay_path is None else overlay_path.name,
    )
    return ConversionReport(
        folder=folder,
        rows=tuple(rows),
        summary_files=tuple(summary_files),
        problems=tuple(problems),
        notes=tuple(notes),
        overlay=overlay_path,
    )


def _write_seg_rows(
    masks: Sequence[Mask],
    series: ImageSeries,
    folder: Path,
    rows: list[SummaryRow],
    *,
    problems: list[str],
    source: str,
) -> list[SummaryRow]:
    """Write the DICOM SEG; rows get ``segmentation.dcm#<segment>`` (failures: problems)."""
    try:
        report = write_seg(masks, series, folder / SEG_FILE_NAME)
    except RtmaskError as error:
        problems.append(f"{source}: {SEG_FILE_NAME} not written: {error}")
        return [replace(row, file=None) if row.status == "written" else row for row in rows]
    segments = {segment.roi_number: segment.segment_number for segment in report.segments}
    return [
        replace(row, file=f"{SEG_FILE_NAME}#{segments[row.roi_number]}")
        if row.roi_number in segments
        else row
        for row in rows
    ]


def convert_masks(
    masks: Sequence[Mask],
    folder: Path,
    *,
    source: str,
    output_format: OutputFormat = "nifti",
    series: ImageSeries | None = None,
    image_series: str | None = None,
) -> ConversionReport:
    """Write existing masks (e.g. read from a DICOM SEG) into ``folder`` with a summary.

    Parameters
    ----------
    masks
        Masks on one grid, each with its ROI (number, name, colour, type).
    folder
        Output folder (created); files as :func:`convert_structure_set` names them.
    source
        Where the masks came from (a file name), for the summary and messages.
    output_format
        As :func:`convert_structure_set`; ``"seg"`` needs ``series``.
    series
        The image series the masks are on (for ``"seg"``).
    image_series
        Description of the image series, for the summary.
    """
    if not masks:
        raise RtmaskError(f"{source}: no masks to write")
    if output_format == "seg" and series is None:
        raise RtmaskError(f"{source}: a DICOM SEG needs the image series; give --image DIR")
    folder.mkdir(parents=True, exist_ok=True)
    grid = masks[0].grid
    stems = safe_file_stems([mask.roi for mask in masks])
    rows: list[SummaryRow] = []
    problems: list[str] = []
    notes: list[str] = []
    npz_arrays: dict[str, np.ndarray] = {}
    for mask in masks:
        roi, stem = mask.roi, stems[mask.roi.number]
        status = "written" if mask.voxel_count > 0 else "empty"
        file: str | None = None
        try:
            if output_format in _SUFFIX:
                path = folder / f"{stem}{_SUFFIX[output_format]}"
                (write_nifti if output_format == "nifti" else write_nrrd)(mask.array, grid, path)
                file = path.name
            elif output_format == "npz":
                npz_arrays[stem] = mask.array
                file = f"masks.npz#roi/{stem}"
        except (RtmaskError, OSError) as error:
            problems.append(f"{source}: ROI {roi.number} {roi.name!r}: {error}")
            status = "failed"
        if status == "empty":
            problems.append(f"{source}: ROI {roi.number} {roi.name!r} is empty")
        rows.append(_row(roi, file=file, mask=mask, status=status, warnings=mask.warnings))
    if output_format == "npz":
        write_npz(npz_arrays, grid, folder / "masks.npz")
    if output_format == "labelmap":
        result = write_labelmap(masks, folder / "labels.nii.gz")
        notes.extend(f"{source}: {w}" for w in result.warnings)
        labels = {entry.roi_number: entry.label for entry in result.entries}
        rows = [
            replace(row, file=f"labels.nii.gz#{labels[row.roi_number]}")
            if row.roi_number in labels
            else row
            for row in rows
        ]
    if output_format == "seg" and series is not None:
        rows = _write_seg_rows(masks, series, folder, rows, problems=problems, source=source)
    info: dict[str, object] = {
        "source": source,
        "image_series": image_series,
        "grid_shape": list(grid.shape),
        "grid_spacing_mm": list(grid.spacing_mm),
        "grid_uniform": grid.is_uniform,
        "affine_lps": grid.affine.tolist(),
    }
    summary_files = write_summary(
        rows, folder, structure_set=info, volume_convention=VOLUME_CONVENTION
    )
    return ConversionReport(
        folder=folder,
        rows=tuple(rows),
        summary_files=tuple(summary_files),
        problems=tuple(problems),
        notes=tuple(notes),
    )


def _write_overlay(
    path: Path,
    structure_set: StructureSet,
    *,
    grid: ImageGrid,
    target_grid: ImageGrid,
    slices: Sequence[int],
    masks: Sequence[OverlayMask],
    read_images: Callable[[Sequence[int]], NDArray[np.floating[Any]]] | None,
) -> Path:
    """Read the background slices (nearest native slice when resampled) and draw."""
    images = None
    if read_images is not None:
        positions = target_grid.slice_positions_mm[list(slices)]
        native = np.abs(grid.slice_positions_mm[None, :] - positions[:, None]).argmin(axis=1)
        images = np.asarray(read_images([int(k) for k in native]), dtype=np.float32)
    names = [Path(structure_set.source).name] if structure_set.source else []
    if structure_set.label:
        names.append(structure_set.label)
    return write_overlay(
        path,
        images=images,
        masks=masks,
        grid=target_grid,
        slice_indices=slices,
        title=f"{' - '.join(names) or 'structure set'}: {len(masks)} ROI(s)",
    )


def _convert_roi(
    roi: ROI,
    grid: ImageGrid,
    target_grid: ImageGrid,
    folder: Path,
    stem: str,
    *,
    rule: CombinationRule | str,
    fractional: int | None,
    output_format: OutputFormat,
    resample: bool,
    slice_mode: SliceMode,
) -> tuple[SummaryRow, Mask]:
    mask = rasterize(
        roi, grid, rule=rule, fractional=fractional, slice_mode=slice_mode, on_invalid="ignore"
    )
    if resample:
        mask = resample_slices(mask, target_grid)
    status = "written" if mask.voxel_count > 0 else "empty"
    file: str | None = None
    if output_format in _SUFFIX:
        path = folder / f"{stem}{_SUFFIX[output_format]}"
        writer = write_nifti if output_format == "nifti" else write_nrrd
        writer(mask.array, mask.grid, path)
        file = path.name
    elif output_format == "npz":
        file = f"masks.npz#roi/{stem}"
    return _row(
        roi, file=file, mask=mask, status=status, warnings=(*roi.warnings, *mask.warnings)
    ), mask


def _structure_set_info(
    structure_set: StructureSet, grid: ImageGrid, image_series: str | None
) -> dict[str, object]:
    return {
        "source": structure_set.source,
        "label": structure_set.label,
        "sop_instance_uid": structure_set.sop_instance_uid,
        "patient_id": structure_set.patient_id,
        "frame_of_reference_uid": structure_set.frame_of_reference_uid,
        "image_series": image_series,
        "grid_shape": list(grid.shape),
        "grid_spacing_mm": list(grid.spacing_mm),
        "grid_uniform": grid.is_uniform,
        "affine_lps": grid.affine.tolist(),
        "warnings": list(structure_set.warnings),
    }
