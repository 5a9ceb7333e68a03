"""One structure set (or one set of masks) -> one folder of masks and a summary.

The work of ``rtmask convert``: :func:`convert_structure_set` rasterises a structure set's
ROIs and writes them; :func:`convert_masks` writes masks that already exist (read from a
DICOM SEG) the same way.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from rtmask._parallel import default_workers, ordered_map
from rtmask.convert._containers import Containers, write_mask_file
from rtmask.convert._options import (
    OVERLAY_NAME,
    VOLUME_CONVENTION,
    VOLUME_SUFFIXES,
    ConversionOptions,
    OutputFormat,
)
from rtmask.convert._report import (
    ConversionReport,
    grid_info,
    structure_set_info,
    summary_row,
)
from rtmask.convert._select import RoiPlan, canonical_stems, plan_rois, select_rois
from rtmask.convert._volumes import (
    DOSE_STEM,
    IMAGE_STEM,
    DoseSelection,
    VolumeOutcome,
    write_dose,
)
from rtmask.convert._volumes import (
    write_image as write_image_file,
)
from rtmask.discovery import ImageSeries, read_slices
from rtmask.errors import RtmaskError
from rtmask.export import (
    SummaryRow,
    choose_overlay_slices,
    safe_file_stems,
    write_overlay,
    write_summary,
)
from rtmask.export._overlay import OverlayMask
from rtmask.geometry import ImageGrid
from rtmask.masks import read_seg
from rtmask.raster import Mask, rasterize, resample_slices
from rtmask.rtstruct import ROI, StructureSet

if TYPE_CHECKING:
    from rtmask.names import RoiMap

__all__ = ["convert_masks", "convert_structure_set"]

logger = logging.getLogger(__name__)

#: What rasterising and writing one ROI gives: its row and mask, or the error met.
_Outcome = tuple[SummaryRow, Mask] | RtmaskError | OSError


@dataclass(slots=True)
class _Results:
    """What the per-ROI loop collects: rows, messages, the masks for containers, overlay."""

    source: str
    containers: Containers
    overlay: bool = False
    rows: list[SummaryRow] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    overlay_masks: list[OverlayMask] = field(default_factory=list)
    volumes: dict[str, VolumeOutcome] = field(default_factory=dict)

    def add_problem(self, roi: ROI, text: str) -> None:
        """Say what went wrong with ``roi``: ``source: ROI <number> '<name>': text``."""
        self.problems.append(f"{self.source}: ROI {roi.number} {roi.name!r}: {text}")

    def add_volume(self, role: str, outcome: VolumeOutcome) -> None:
        """Keep the image's or dose's facts for the summary, and its messages."""
        self.problems.extend(outcome.problems)
        self.notes.extend(outcome.notes)
        if outcome.facts is not None:
            self.volumes[role] = outcome

    def finish(
        self,
        folder: Path,
        grid: ImageGrid,
        series: ImageSeries | None,
        info: dict[str, object],
        draw_overlay: Callable[[], Path | None] | None = None,
        *,
        uneven_slices: bool = False,
    ) -> ConversionReport:
        """Write the format's container file (if any), the overlay, then the summary."""
        rows = self.containers.write(
            folder,
            grid,
            self.rows,
            series=series,
            source=self.source,
            problems=self.problems,
            notes=self.notes,
        )
        overlay = None if draw_overlay is None else draw_overlay()
        summary = write_summary(
            rows,
            folder,
            structure_set=info,
            volume_convention=VOLUME_CONVENTION,
            overlay=None if overlay is None else overlay.name,
            volumes={role: v.facts for role, v in self.volumes.items() if v.facts is not None},
            problems=self.problems,
        )
        image, dose = self.volumes.get(IMAGE_STEM), self.volumes.get(DOSE_STEM)
        return ConversionReport(
            folder=folder,
            rows=tuple(rows),
            summary_files=tuple(summary),
            problems=tuple(self.problems),
            notes=tuple(self.notes),
            overlay=overlay,
            uneven_slices=uneven_slices,
            image=None if image is None else image.path,
            dose=None if dose is None else dose.path,
        )


@dataclass(frozen=True, slots=True)
class _Work:
    """One structure set's conversion: where masks are made and written, and how."""

    structure_set: StructureSet
    grid: ImageGrid  # the contours' grid
    target_grid: ImageGrid  # the masks' grid (resampled when asked)
    folder: Path
    options: ConversionOptions
    stems: dict[int, str]  # file name stem of each ROI number
    overlay_slices: tuple[int, ...]  # the slices of target_grid the overlay shows
    series: ImageSeries | None
    canonical: dict[int, str] = field(default_factory=dict)  # ROI number -> canonical name


def _uneven_slices_note(source: str, grid: ImageGrid) -> str:
    """What masks on a grid with unevenly spaced slices are (the CLI adds --resample)."""
    return (
        f"{source}: image slices are not evenly spaced ("
        + "; ".join(grid.irregularities())
        + f"); masks follow the {grid.shape[0]} native slices and the file header states "
        f"the mean spacing {grid.spacing_mm[0]:.3g} mm"
    )


def _check_seg_source(
    structure_set: StructureSet, options: ConversionOptions, series: ImageSeries | None
) -> None:
    """A DICOM SEG needs the image series itself: no resampling, no other grid."""
    if options.output_format == "seg" and (series is None or options.resample_mm):
        raise RtmaskError(
            f"{structure_set.source}: a DICOM SEG is made on the image series the contours "
            "were drawn on; give that series, without resampling or another grid"
        )


def _start(
    structure_set: StructureSet, grid: ImageGrid, options: ConversionOptions
) -> tuple[_Results, bool]:
    """The results to collect into, with what is known before any ROI; True when uneven."""
    source = str(structure_set.source)
    results = _Results(source, Containers(options.output_format), overlay=options.overlay)
    results.notes.extend(f"{source}: {w}" for w in structure_set.warnings)
    uneven = not grid.is_uniform and not options.resample_mm
    if uneven:
        results.notes.append(_uneven_slices_note(source, grid))
    results.problems.extend(structure_set.read_problems([], skipped=True))  # ROIs left out
    return results, uneven


def convert_structure_set(
    structure_set: StructureSet,
    grid: ImageGrid,
    folder: Path,
    options: ConversionOptions = ConversionOptions(),  # noqa: B008 - frozen, never changed
    *,
    rois: Sequence[ROI] | None = None,
    series: ImageSeries | None = None,
    image_series: str | None = None,
    progress: Callable[[ROI], None] | None = None,
    roi_map: RoiMap | None = None,
    dose: DoseSelection | None = None,
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
    options
        Rule, output format, partial volumes, resampling, overlay, threads.
    rois
        ROIs to convert (default: all); unselected ROIs are listed as "not selected".
    series
        The image series ``grid`` belongs to (with ``slice_mode="exact"``): the DICOM SEG
        references its images and the overlay is drawn on its slices (else on black).
        With ``options.write_image`` it is written as ``image.nii.gz`` (``image.nrrd``
        for ``nrrd``; NIfTI beside ``npz``, labelmap and SEG output), on the masks' grid,
        or on its own grid when the masks are on another one (``slice_mode="slab"``).
    image_series
        Description of the image series (or other grid source), for the summary.
    progress
        Called once per ROI after it is done.
    roi_map
        Canonical ROI names (:func:`rtmask.names.load_roi_map`): a mapped ROI's file is
        named by its canonical name and its summary row carries it (``canonical``); with
        ``rois`` None, only the mapped ROIs are converted.
    dose
        The linked dose (:func:`rtmask.convert.choose_dose`): with ``options.write_dose``
        written in Gy as ``dose.nii.gz`` (``dose.nrrd``), on its own grid or, with
        ``options.dose_on_image``, on the image's.

    Returns
    -------
    ConversionReport
        The rows of the summary, the files written, the problems and warnings.

    Raises
    ------
    RtmaskError
        ``output_format="seg"`` without the image series, or with resampling.
    RoiMapError
        ``roi_map`` maps two ROIs onto one canonical name, or one ROI onto two (nothing is
        written).
    """
    image = series if options.write_image else None
    if options.slice_mode != "exact":
        series = None  # the grid is not the series' own: nothing to reference or draw on
    _check_seg_source(structure_set, options, series)
    canonical: dict[int, str] = {}
    if roi_map is not None:
        mapped, canonical = select_rois(structure_set, (), roi_map)
        rois = mapped if rois is None else rois
    folder.mkdir(parents=True, exist_ok=True)
    target_grid = grid.with_uniform_slices(options.resample_mm) if options.resample_mm else grid
    results, uneven = _start(structure_set, grid, options)
    plans = plan_rois(structure_set, rois)
    # Only the overlay's few slices of each mask are kept, never whole masks.
    overlay_slices = (
        choose_overlay_slices([p.roi for p in plans if p.status != "not selected"], target_grid)
        if options.overlay
        else ()
    )
    stems = canonical_stems(safe_file_stems(structure_set.rois), canonical)
    if options.output_format in ("nifti", "nrrd") and (
        image is not None or (dose is not None and options.write_dose)
    ):
        stems = _clear_of_volumes(stems)  # image.nii.gz and dose.nii.gz keep their names
    work = _Work(
        structure_set, grid, target_grid, folder, options, stems, tuple(overlay_slices), series,
        canonical,
    )  # fmt: skip
    _convert_rois(plans, work, results, progress)
    _write_volumes(work, results, image, dose if options.write_dose else None, uneven=uneven)
    info = structure_set_info(structure_set, target_grid, image_series)
    draw = (lambda: _try_overlay(work, results)) if options.overlay else None
    return results.finish(folder, target_grid, series, info, draw, uneven_slices=uneven)


def _clear_of_volumes(stems: dict[int, str]) -> dict[int, str]:
    """Stems that never name ``image`` or ``dose`` (a ROI called "Image" gets "Image_roi")."""
    used = {stem.casefold() for stem in stems.values()}
    clear = {}
    for number, stem in stems.items():
        name = stem
        if stem.casefold() in (IMAGE_STEM, DOSE_STEM):
            name = f"{stem}_roi"
            while name.casefold() in used:
                name += "_"
            used.add(name.casefold())
        clear[number] = name
    return clear


def _write_volumes(
    work: _Work,
    results: _Results,
    image: ImageSeries | None,
    dose: DoseSelection | None,
    *,
    uneven: bool,
) -> None:
    """Write the image and the dose (each atomically) for the summary that follows."""
    suffix = VOLUME_SUFFIXES.get(work.options.output_format, ".nii.gz")
    on_mask_grid = work.options.slice_mode == "exact"
    image_grid = None
    if image is not None:
        image_grid = work.target_grid if on_mask_grid else image.grid
        outcome = write_image_file(
            image,
            image_grid,
            work.folder / f"{IMAGE_STEM}{suffix}",
            on_mask_grid=on_mask_grid,
            source=results.source,
            uneven=uneven,
        )
        results.add_volume(IMAGE_STEM, outcome)
        if outcome.path is not None and not on_mask_grid:
            results.notes.append(
                f"{results.source}: {outcome.path.name} keeps the image series' own grid; "
                "the masks are on another grid"
            )
    if dose is not None:
        on_image = work.options.dose_on_image and image_grid is not None
        if work.options.dose_on_image and image_grid is None:
            results.notes.append(f"{results.source}: no image written: the dose keeps its own grid")
        outcome = write_dose(
            dose,
            work.folder / f"{DOSE_STEM}{suffix}",
            image_grid=image_grid if on_image else None,
            source=results.source,
        )
        results.add_volume(DOSE_STEM, outcome)


def _convert_rois(
    plans: Sequence[RoiPlan],
    work: _Work,
    results: _Results,
    progress: Callable[[ROI], None] | None,
) -> None:
    """The per-ROI loop: rasterise and write on worker threads, collect in ROI order."""

    def convert(roi: ROI) -> _Outcome:
        try:
            return _convert_roi(roi, work)
        except (RtmaskError, OSError) as error:
            return error

    workers = default_workers() if work.options.workers is None else work.options.workers
    outcomes = ordered_map(convert, [p.roi for p in plans if p.rasterise], workers)
    for plan in plans:
        results.problems.extend(plan.problems)
        results.notes.extend(plan.notes)
        if plan.status is not None:
            warnings = () if plan.status == "not selected" else plan.roi.warnings
            results.rows.append(
                summary_row(
                    plan.roi,
                    file=None,
                    mask=None,
                    status=plan.status,
                    warnings=warnings,
                    canonical=work.canonical.get(plan.roi.number),
                )
            )
        else:
            _collect(plan.roi, next(outcomes), work, results)
        if progress is not None:
            progress(plan.roi)
    outcomes.close()  # joins the worker threads


def _collect(roi: ROI, outcome: _Outcome, work: _Work, results: _Results) -> None:
    """Add one rasterised ROI's row, messages, container mask and overlay slices."""
    if isinstance(outcome, (RtmaskError, OSError)):
        results.add_problem(roi, _failure_text(outcome))
        results.rows.append(
            summary_row(
                roi,
                file=None,
                mask=None,
                status="failed",
                warnings=roi.warnings,
                canonical=work.canonical.get(roi.number),
            )
        )
        return
    row, mask = outcome
    results.rows.append(row)
    results.notes.extend(f"{results.source}: {w}" for w in mask.warnings)
    if row.status == "empty":
        results.add_problem(
            roi, "no voxel centre lies inside its contours on this grid; empty mask written"
        )
    if results.overlay:
        picked = mask.array[list(work.overlay_slices)]  # a copy (fancy indexing)
        results.overlay_masks.append((roi.name, roi.color, picked))
    results.containers.add(mask, work.stems[roi.number])


def _convert_roi(roi: ROI, work: _Work) -> tuple[SummaryRow, Mask]:
    """Rasterise one ROI (resampled when asked) and write its own file, if it has one."""
    options = work.options
    mask = rasterize(roi, work.grid, on_invalid="ignore", **options.rasterize_options())
    if options.resample_mm:
        mask = resample_slices(mask, work.target_grid)
    status = "written" if mask.voxel_count > 0 else "empty"
    file = write_mask_file(mask, work.folder, work.stems[roi.number], options.output_format)
    row = summary_row(
        roi,
        file=file,
        mask=mask,
        status=status,
        warnings=(*roi.warnings, *mask.warnings),
        canonical=work.canonical.get(roi.number),
    )
    return row, mask


def _try_overlay(work: _Work, results: _Results) -> Path | None:
    """Draw ``overlay.png``; a failure is one of the problems, never costs the masks."""
    source = work.structure_set.source
    try:
        return _write_overlay(work, results.overlay_masks)
    except Exception as error:  # a picture must never cost the masks or the summary
        logger.debug("overlay of %s failed", source, exc_info=True)
        results.problems.append(f"{source}: {OVERLAY_NAME} not written: {error}")
        return None


def _write_overlay(work: _Work, masks: Sequence[OverlayMask]) -> Path:
    """Read the background slices (nearest native slice when resampled) and draw."""
    images = None
    slices = work.overlay_slices
    if work.series is not None:
        positions = work.target_grid.slice_positions_mm[list(slices)]
        native = np.abs(work.grid.slice_positions_mm[None, :] - positions[:, None]).argmin(axis=1)
        images = np.asarray(read_slices(work.series, [int(k) for k in native]), dtype=np.float32)
    structure_set = work.structure_set
    names = [Path(structure_set.source).name] if structure_set.source else []
    if structure_set.label:
        names.append(structure_set.label)
    return write_overlay(
        work.folder / OVERLAY_NAME,
        images=images,
        masks=masks,
        grid=work.target_grid,
        slice_indices=slices,
        title=f"{' - '.join(names) or 'structure set'}: {len(masks)} ROI(s)",
    )


def convert_masks(
    masks: Sequence[Mask],
    folder: Path,
    *,
    source: str,
    output_format: OutputFormat = "nifti",
    series: ImageSeries | None = None,
    image_series: str | None = None,
    canonical: Mapping[int, str] | None = None,
    write_image: bool = False,
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
        As :class:`ConversionOptions`; ``"seg"`` needs ``series``.
    series
        The image series the masks are on (for ``"seg"``).
    image_series
        Description of the image series, for the summary.
    canonical
        ROI number -> canonical name (:meth:`rtmask.names.RoiMap.resolve`): those masks'
        files are named by it and their rows carry it.
    write_image
        Also write ``series`` as ``image.nii.gz`` (``image.nrrd`` for ``nrrd``), as
        :func:`convert_structure_set` does.
    """
    canonical = dict(canonical or {})
    if not masks:
        raise RtmaskError(f"{source}: no masks to write")
    if output_format == "seg" and series is None:
        raise RtmaskError(f"{source}: a DICOM SEG needs the image series the masks are on")
    folder.mkdir(parents=True, exist_ok=True)
    grid = masks[0].grid
    stems = canonical_stems(safe_file_stems([mask.roi for mask in masks]), canonical)
    image = series if write_image else None
    if image is not None and output_format in ("nifti", "nrrd"):
        stems = _clear_of_volumes(stems)
    results = _Results(source, Containers(output_format))
    for mask in masks:
        number = mask.roi.number
        _write_one_mask(
            mask, folder, stems[number], output_format, results, canonical=canonical.get(number)
        )
    if image is not None:
        suffix = VOLUME_SUFFIXES.get(output_format, ".nii.gz")
        outcome = write_image_file(
            image,
            grid,
            folder / f"{IMAGE_STEM}{suffix}",
            on_mask_grid=True,
            source=source,
            uneven=not grid.is_uniform,
        )
        results.add_volume(IMAGE_STEM, outcome)
    info: dict[str, object] = {"source": source, "image_series": image_series, **grid_info(grid)}
    return results.finish(folder, grid, series, info)


def _write_one_mask(
    mask: Mask,
    folder: Path,
    stem: str,
    output_format: OutputFormat,
    results: _Results,
    *,
    canonical: str | None = None,
) -> None:
    """Write one existing mask's file (or keep it for the container) and its row."""
    roi = mask.roi
    status = "written" if mask.voxel_count > 0 else "empty"
    file: str | None = None
    try:
        file = write_mask_file(mask, folder, stem, output_format)
    except (RtmaskError, OSError) as error:
        results.add_problem(roi, _failure_text(error))
        status = "failed"
    if status == "empty":
        results.problems.append(f"{results.source}: ROI {roi.number} {roi.name!r} is empty")
    results.rows.append(
        summary_row(
            roi,
            file=file,
            mask=mask,
            status=status,
            warnings=mask.warnings,
            canonical=canonical,
        )
    )
    results.containers.add(mask, stem)


def _failure_text(error: RtmaskError | OSError) -> str:
    """Why one ROI's file was not written: a file-system error in words, not ``[Errno 28]``."""
    if isinstance(error, RtmaskError) or not error.strerror:
        return str(error)
    where = f" {error.filename}" if error.filename is not None else ""
    return f"not written{where}: {error.strerror.lower()} (no half-written file is left)"


def convert_seg(
    path: Path,
    series: ImageSeries,
    folder: Path,
    options: ConversionOptions,
    *,
    roi_patterns: Sequence[str] = (),
    roi_map: RoiMap | None = None,
    image_series: str | None = None,
    selection: str = "the ROI selection",
    announce: Callable[[], object] | None = None,
) -> ConversionReport:
    """Write the segments of the DICOM SEG ``path`` into ``folder`` like ROIs.

    Parameters
    ----------
    path
        The DICOM SEG file.
    series
        The image series its segments are on.
    folder, image_series
        As :func:`convert_masks`.
    options
        Its ``output_format`` and ``write_image`` apply.
    roi_patterns, roi_map
        Which segments (as :func:`select_rois`; none: all), and their canonical names.
    selection
        ``roi_patterns`` and ``roi_map`` in words, for the error when no segment matches.
    announce
        Called once the segments are read and chosen, before anything is written.

    Raises
    ------
    RtmaskError
        The SEG cannot be read, or no segment matches the selection.
    """
    masks = read_seg(path, series)
    canonical: dict[int, str] = {}
    if roi_patterns or roi_map is not None:
        segments = StructureSet(rois=tuple(m.roi for m in masks), source=str(path))
        chosen, canonical = select_rois(segments, roi_patterns, roi_map)
        wanted = {roi.number for roi in chosen}
        masks = [mask for mask in masks if mask.roi.number in wanted]
        if not masks:
            raise RtmaskError(f"{path}: no segment matches {selection}")
    if announce is not None:
        announce()
    return convert_masks(
        masks,
        folder,
        source=str(path),
        output_format=options.output_format,
        series=series,
        image_series=image_series,
        canonical=canonical,
        write_image=options.write_image,
    )
