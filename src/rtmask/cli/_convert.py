"""``rtmask convert INPUT -o OUT``: structure sets (or DICOM SEGs) -> masks and a summary."""

from __future__ import annotations

import argparse
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import cast

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from rtmask._errors import RtmaskError
from rtmask._limits import NIFTI1_MAX_DIMENSION
from rtmask._optional import import_optional
from rtmask.cli._archive import archive_command
from rtmask.cli._options import (
    add_output_option,
    add_roi_map_option,
    add_roi_option,
    add_rule_option,
    link_message,
    read_roi_map_option,
    scheduler_address,
)
from rtmask.cli._output import counting_bar, located, print_error, print_warning, reword
from rtmask.cohort import CaseOptions, Layout, start_workers_early, usable_cpus
from rtmask.cohort._tasks import covering_grid
from rtmask.convert import (
    ConversionOptions,
    ConversionReport,
    DoseSelection,
    OutputFormat,
    choose_dose,
    convert_seg,
    convert_structure_set,
    select_rois,
)
from rtmask.discovery import (
    ImageSeries,
    Inventory,
    RTObject,
    SkippedFile,
    link_image_series,
    read_image_series,
    scan,
)
from rtmask.dose import read_dose_grid
from rtmask.export import safe_folder_name
from rtmask.geometry import ImageGrid
from rtmask.masks._reference import (
    ReferenceGrid,
    planes_match,
    read_reference,
    relate_to_series,
    relayout_nifti,
)
from rtmask.names import RoiMap
from rtmask.raster import SliceMode
from rtmask.rtstruct import StructureSet, read_rtstruct

__all__ = ["CLI_WORDING", "add_parser", "convert_command", "run"]

#: The library's keyword hints in this command's options (see ``reword``).
CLI_WORDING = {
    "give a larger slice spacing": "give a larger --resample MM",
    "give a larger spacing_mm": "give a larger --grid-spacing MM",
    "write NRRD or NumPy": "use --format nrrd or npz",
}

FORMATS = ("nifti", "nrrd", "npz", "labelmap", "seg")
#: Skipped-file kinds that mean a file meant to be used could not be: the run fails.
FAILED_KINDS = frozenset({"unreadable", "truncated", "bad_geometry"})
#: Skipped-file kinds worth a warning line; the rest (not DICOM, ...) are only counted.
WARNED_KINDS = frozenset(
    {"duplicate", "mixed_geometry", "other_patient", "multiframe", "dicomdir", "symlink_loop"}
)
#: Warnings printed per structure set without --verbose (all are in summary.json).
MAX_NOTES = 12
#: Said after the notes of a structure set whose slices are unevenly spaced, not resampled
#: (the library states the fact; the option is the command's).
UNEVEN_SLICES_HINT = "image slices are not evenly spaced: use --resample MM for a uniform grid"


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:  # type: ignore[type-arg]
    """Register ``convert``."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "convert",
        help="convert RT structure sets into voxel masks",
        description=(
            "Convert every RT Structure Set in INPUT (a file or a folder tree) into one mask "
            "per ROI on the grid of its image series, plus summary.json/summary.csv. "
            "Exit code 0 when everything converted, 1 when something failed (what could be "
            "converted is still written), 2 for usage errors."
        ),
    )
    parser.add_argument("input", type=Path, metavar="INPUT", help="RTSTRUCT file or folder")
    add_output_option(parser, "OUT", "output folder (created)")
    parser.add_argument(
        "--image",
        type=Path,
        metavar="DIR",
        help="folder of the image series (default: found in INPUT's tree)",
    )
    add_roi_option(parser)
    add_roi_map_option(parser)
    add_rule_option(parser)
    parser.add_argument(
        "--format",
        dest="output_format",
        choices=FORMATS,
        default="nifti",
        help="nifti (.nii.gz per ROI, default), nrrd, npz, labelmap, or seg (one DICOM "
        "Segmentation; needs rtmask[seg])",
    )
    parser.add_argument(
        "--fractional",
        type=int,
        metavar="N",
        help="partial-volume masks: N x N samples per voxel (float output)",
    )
    parser.add_argument(
        "--resample",
        type=float,
        metavar="MM",
        dest="resample_mm",
        help="resample onto uniform slices MM apart",
    )
    parser.add_argument(
        "--overlay",
        action="store_true",
        help="also write overlay.png: ROI outlines on a few slices (needs rtmask[plot])",
    )
    grids = parser.add_mutually_exclusive_group()
    grids.add_argument(
        "--dose-grid",
        type=Path,
        metavar="RTDOSE",
        help="make the masks on this RT Dose's grid instead of the image grid",
    )
    grids.add_argument(
        "--grid-spacing",
        type=float,
        metavar="MM",
        dest="grid_spacing_mm",
        help="make the masks on an axial grid of MM voxels covering the structures",
    )
    grids.add_argument(
        "--reference",
        type=Path,
        metavar="IMAGE",
        help="make the masks on the grid of this NIfTI/NRRD image (e.g. from dcm2niix), in "
        "its voxel order; the summary says how it relates to the DICOM series",
    )
    _add_volume_options(parser)
    _add_archive_options(parser)
    return parser


def _add_volume_options(parser: argparse.ArgumentParser) -> None:
    """``--no-image``, ``--no-dose``, ``--dose-on-image``: the volumes beside the masks."""
    parser.add_argument(
        "--no-image",
        dest="write_image",
        action="store_false",
        help="do not write the image series (image.nii.gz; image.nrrd with --format nrrd)",
    )
    parser.add_argument(
        "--no-dose",
        dest="write_dose",
        action="store_false",
        help="do not write the linked RT Dose (dose.nii.gz, Gy; the PLAN dose, else the sum "
        "of the BEAM doses)",
    )
    parser.add_argument(
        "--dose-on-image",
        action="store_true",
        help="resample the dose trilinearly onto the image grid (0 Gy outside the dose grid)",
    )


def _add_archive_options(parser: argparse.ArgumentParser) -> None:
    """``--layout``, ``--jobs``, ``--scheduler``, ``--force``: converting an archive."""
    parser.add_argument(
        "--layout",
        choices=("patient", "flat"),
        help="output folders of an archive: patient (OUT/<PatientID>/<StudyDate>_<study>/"
        "<label>_<UID>/, the default for several structure sets) or flat "
        "(OUT/<PatientID>_<label>_<UID>/); a single structure set goes into OUT unless given",
    )
    runners = parser.add_mutually_exclusive_group()
    runners.add_argument(
        "--jobs",
        type=int,
        metavar="N",
        help="convert an archive's structure sets in N processes, one CPU each (default: the "
        "usable CPUs)",
    )
    runners.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        type=scheduler_address,
        help="run the cases on a Dask cluster: tcp://HOST:PORT of a running scheduler, or "
        "local:N for N local workers; INPUT and OUT must be on a file system the workers "
        "share (needs rtmask[cohort])",
    )
    parser.add_argument(
        "--force",
        action="store_true",
        help="convert again the finished cases, whose summary.json lists no problem "
        "(default: skip them; failed cases are always converted again)",
    )


def run(args: argparse.Namespace, console: Console) -> int:
    """Run ``convert`` from parsed arguments."""
    if args.fractional is not None and args.fractional < 1:
        print_error(console, "--fractional takes a positive number of samples")
        return 2
    for value, option in (
        (args.resample_mm, "--resample"),
        (args.grid_spacing_mm, "--grid-spacing"),
    ):
        if value is not None and not (math.isfinite(value) and value > 0):
            print_error(console, f"{option} takes a positive spacing in mm")
            return 2
    if args.output_format == "seg" and (
        args.resample_mm is not None
        or args.dose_grid is not None
        or args.grid_spacing_mm is not None
        or args.reference is not None
    ):
        print_error(
            console,
            "--format seg writes on the image series the contours were drawn on; it does not "
            "go with --resample, --dose-grid, --grid-spacing or --reference",
        )
        return 2
    if args.reference is not None and args.resample_mm is not None:
        print_error(console, "--reference gives the grid; it does not go with --resample")
        return 2
    if args.jobs is not None and args.jobs < 1:
        print_error(console, "--jobs takes a positive number of processes")
        return 2
    roi_map = read_roi_map_option(args.roi_map, console)
    if isinstance(roi_map, int):
        return roi_map
    return convert_command(
        args.input,
        args.output,
        console=console,
        image=args.image,
        roi_patterns=args.roi,
        rule=args.rule,
        output_format=args.output_format,
        fractional=args.fractional,
        resample_mm=args.resample_mm,
        dose_grid=args.dose_grid,
        grid_spacing_mm=args.grid_spacing_mm,
        verbose=args.verbose,
        overlay=args.overlay,
        roi_map=roi_map,
        write_image=args.write_image,
        write_dose=args.write_dose,
        dose_on_image=args.dose_on_image,
        reference=args.reference,
        archive=_ArchiveOptions(
            jobs=args.jobs, scheduler=args.scheduler, layout=args.layout, force=args.force
        ),
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class _ArchiveOptions:
    """How an archive of several structure sets is run (see ``rtmask.cohort``)."""

    jobs: int | None = None
    scheduler: str | None = None
    layout: Layout | None = None
    force: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class _Options:
    """What to convert and how (the command's options)."""

    roi_patterns: Sequence[str]
    rule: str
    output_format: OutputFormat
    fractional: int | None
    resample_mm: float | None
    dose_grid: ImageGrid | None
    dose_grid_path: Path | None
    grid_spacing_mm: float | None
    overlay: bool = False
    roi_map: RoiMap | None = None
    write_image: bool = True
    write_dose: bool = True
    dose_on_image: bool = False
    reference: ReferenceGrid | None = None

    @property
    def own_grid(self) -> bool:
        """True when the masks go on a grid other than the image series'."""
        return (
            self.dose_grid is not None
            or self.grid_spacing_mm is not None
            or self.reference is not None
        )

    def conversion(
        self, *, slice_mode: SliceMode = "exact", workers: int | None = None
    ) -> ConversionOptions:
        """The conversion library's options for these, on a grid read as ``slice_mode``."""
        return ConversionOptions(
            rule=self.rule,
            output_format=self.output_format,
            fractional=self.fractional,
            resample_mm=self.resample_mm,
            slice_mode=slice_mode,
            overlay=self.overlay,
            workers=workers,
            write_image=self.write_image and self.reference is None,
            write_dose=self.write_dose,
            dose_on_image=self.dose_on_image,
        )


@dataclass(frozen=True, slots=True)
class _Job:
    """One structure set (or SEG) to convert: its file, its image series (or why none)."""

    path: Path
    series: ImageSeries | None
    link_message: str
    modality: str = "RTSTRUCT"
    dose: DoseSelection | None = None


def _report_skipped(skipped: Sequence[SkippedFile], console: Console, verbose: bool) -> list[str]:
    """Print skipped files by kind; return those that make the run fail."""
    problems = [f"{s.path}: {s.reason}" for s in skipped if s.kind in FAILED_KINDS]
    quiet = [s for s in skipped if s.kind not in FAILED_KINDS | WARNED_KINDS]
    for item in skipped:
        if item.kind in WARNED_KINDS or (verbose and item in quiet):
            print_warning(console, f"skipped {item.path}: {item.reason}")
    if quiet and not verbose:
        console.print(
            f"skipped {len(quiet)} file(s) that are not DICOM images or RT objects (-v lists them)"
        )
    return problems


def _jobs(
    input_path: Path,
    image: Path | None,
    console: Console,
    verbose: bool,
    inventory: Inventory | None = None,
) -> tuple[list[_Job], list[str]]:
    """Find the structure sets and SEGs under ``input_path`` and their image series."""
    problems: list[str] = []
    explicit = read_image_series(image) if image is not None else None
    root = input_path if input_path.is_dir() else input_path.parent
    # With --image, a single file is all there is to scan.
    if inventory is None:
        inventory = scan(input_path if input_path.is_file() and explicit is not None else root)
    sources: Sequence[RTObject] = (*inventory.structure_sets, *inventory.segmentations)
    if input_path.is_file():
        resolved = input_path.resolve()
        sources = [s for s in sources if s.path.resolve() == resolved]
        if not sources:
            # Not found by the scan: say why (unreadable, not an RTSTRUCT).
            read_rtstruct(input_path, on_invalid="ignore")
            raise RtmaskError(f"{input_path}: no RT Structure Set or DICOM SEG found")
    if input_path.is_dir():
        problems.extend(_report_skipped(inventory.skipped, console, verbose))
    elif explicit is None:  # the folder searched for the images: say which were refused
        failed = [s for s in inventory.skipped if s.kind in FAILED_KINDS]
        problems.extend(_report_skipped(failed, console, verbose))
    jobs = []
    for rt_object in sources:
        dose = choose_dose(rt_object, inventory) if rt_object.modality == "RTSTRUCT" else None
        if explicit is not None:
            note = f"image series from {image}"
            jobs.append(_Job(rt_object.path, explicit, note, rt_object.modality, dose))
            continue
        link = link_image_series(rt_object, inventory.image_series)
        jobs.append(_Job(rt_object.path, link.series, link_message(link), rt_object.modality, dose))
    return jobs, problems


def convert_command(
    input_path: Path,
    output: Path,
    *,
    console: Console,
    image: Path | None = None,
    roi_patterns: Sequence[str] = (),
    rule: str = "auto",
    output_format: str = "nifti",
    fractional: int | None = None,
    resample_mm: float | None = None,
    dose_grid: Path | None = None,
    grid_spacing_mm: float | None = None,
    verbose: bool = False,
    overlay: bool = False,
    roi_map: RoiMap | None = None,
    write_image: bool = True,
    write_dose: bool = True,
    dose_on_image: bool = False,
    reference: Path | None = None,
    archive: _ArchiveOptions = _ArchiveOptions(),
) -> int:
    """Convert every structure set under ``input_path`` into ``output``; returns the exit code.

    A folder holding several structure sets (or any folder with ``archive.layout``) is an
    archive: one case per structure set through :mod:`rtmask.cohort`, unless the masks go
    on one given grid (``image``, ``dose_grid``, ``grid_spacing_mm``, ``reference``).
    """
    if not input_path.exists():
        raise RtmaskError(f"{input_path}: no such file or folder")
    if output_format == "seg":  # say so before any work, not after every mask is made
        import_optional("highdicom", extra="seg", feature="DICOM SEG files")
    options = _Options(
        roi_patterns=roi_patterns,
        rule=rule,
        output_format=cast("OutputFormat", output_format),
        fractional=fractional,
        resample_mm=resample_mm,
        dose_grid=read_dose_grid(dose_grid) if dose_grid is not None else None,
        dose_grid_path=dose_grid,
        grid_spacing_mm=grid_spacing_mm,
        overlay=overlay,
        roi_map=roi_map,
        write_image=write_image,
        write_dose=write_dose,
        dose_on_image=dose_on_image,
        reference=read_reference(reference) if reference is not None else None,
    )
    inventory = None
    # --reference stays in this process: the archive runner makes its own grids.
    if input_path.is_dir() and options.reference is None:
        if archive.scheduler is None and (archive.jobs or usable_cpus()) > 1:
            start_workers_early()  # its imports overlap the scan
        inventory = scan(input_path)
        count = len(inventory.structure_sets) + len(inventory.segmentations)
        if count > 1 or archive.layout is not None:
            for item in inventory.skipped:
                if item.kind == "symlink_loop":  # the cases list the files, not the folders
                    print_warning(console, f"skipped {item.path}: {item.reason}")
            explicit = read_image_series(image) if image is not None else None
            return _convert_archive(
                input_path, output, inventory, options, archive, image=explicit, console=console
            )
    jobs, problems = _jobs(input_path, image, console, verbose, inventory)
    if not jobs:
        raise RtmaskError(
            f"{input_path}: no RT Structure Set or DICOM SEG found (is this the right folder?)"
        )
    folders = _output_folders(jobs, output)
    reports: list[ConversionReport] = []
    for job, folder in zip(jobs, folders, strict=True):
        if job.modality == "SEG":
            outcome = _convert_seg(job, folder, console, options)
            if isinstance(outcome, str):
                problems.append(outcome)
            else:
                reports.append(outcome)
                problems.extend(outcome.problems)
            continue
        if job.series is None and not options.own_grid:
            problems.append(f"{job.path}: {job.link_message}")
            continue
        try:
            structure_set = read_rtstruct(job.path, on_invalid="ignore")
            report = _convert_one(structure_set, job, folder, console, options)
        except RtmaskError as error:
            problems.append(located(reword(str(error), CLI_WORDING), job.path))
            continue
        if report is None:
            problems.append(
                f"{job.path}: no ROI matches {_wanted(options)}; ROIs are "
                f"{', '.join(repr(n) for n in structure_set.roi_names)}"
            )
            continue
        reports.append(report)
        problems.extend(reword(problem, CLI_WORDING) for problem in report.problems)
    _print_reports(reports, console, verbose)
    for problem in problems:
        print_error(console, problem)
    return 1 if problems else 0


def _convert_archive(
    root: Path,
    output: Path,
    inventory: Inventory,
    options: _Options,
    archive: _ArchiveOptions,
    *,
    image: ImageSeries | None,
    console: Console,
) -> int:
    """An archive of structure sets: one case each, through :mod:`rtmask.cohort`.

    ``image`` (``--image``) is every case's image series; ``--dose-grid`` and
    ``--grid-spacing`` put every case's masks on their grid.
    """
    jobs = archive.jobs or usable_cpus()
    case_options = CaseOptions(
        # --jobs N uses N CPUs: N cases at a time, each on one thread (--jobs 1 one core)
        conversion=options.conversion(
            slice_mode="slab" if options.own_grid else "exact", workers=1
        ),
        roi_patterns=tuple(options.roi_patterns),
        roi_map=options.roi_map,
        force=archive.force,
        mask_grid=options.dose_grid,
        mask_grid_note=f"on the dose grid of {options.dose_grid_path}",
        grid_spacing_mm=options.grid_spacing_mm,
    )
    return archive_command(
        root,
        output,
        case_options,
        console=console,
        jobs=jobs,
        scheduler=archive.scheduler,
        layout=archive.layout,
        inventory=inventory,
        image=image,
    )


def _convert_seg(
    job: _Job, folder: Path, console: Console, options: _Options
) -> ConversionReport | str:
    """Write the segments of a DICOM SEG like ROIs; a problem line when it cannot be."""
    if options.own_grid or options.resample_mm:
        return (
            f"{job.path}: a DICOM SEG is written out on its own image grid; "
            "--dose-grid, --grid-spacing and --resample apply to structure sets only"
        )
    if job.series is None:
        return f"{job.path}: {job.link_message}"
    note = f"{job.link_message}; images in {job.series.files[0].parent}"

    def announce() -> None:
        console.print(
            f"[bold]{escape(str(job.path))}[/bold] (DICOM SEG) -> {escape(str(folder))}  "
            f"({escape(note)})",
            soft_wrap=True,
        )

    try:
        return convert_seg(
            job.path,
            job.series,
            folder,
            options.conversion(),
            roi_patterns=options.roi_patterns,
            roi_map=options.roi_map,
            image_series=note,
            selection=_wanted(options),
            announce=announce,
        )
    except RtmaskError as error:
        return str(error)


def _wanted(options: _Options) -> str:
    """What --roi and --roi-map asked for, in words."""
    patterns = " ".join(f"--roi {p}" for p in options.roi_patterns)
    if options.roi_map is None:
        return patterns
    mapped = f"--roi-map {options.roi_map.source}"
    return f"{patterns} or {mapped}" if patterns else mapped


def _output_folders(jobs: Sequence[_Job], output: Path) -> list[Path]:
    """OUT itself for one structure set, else one safe, unique sub-folder each."""
    if len(jobs) == 1:
        return [output]
    used: set[str] = set()
    folders = []
    for job in jobs:
        name = safe_folder_name(job.path.stem, "structure_set")
        candidate, counter = name, 2
        while candidate.casefold() in used:
            candidate, counter = f"{name}_{counter}", counter + 1
        used.add(candidate.casefold())
        folders.append(output / candidate)
    return folders


def _convert_one(
    structure_set: StructureSet, job: _Job, folder: Path, console: Console, options: _Options
) -> ConversionReport | None:
    """Convert one structure set with a progress bar; None when no ROI is selected."""
    if not structure_set.rois:
        raise RtmaskError(
            f"{job.path}: the structure set holds no ROIs ("
            + "; ".join(
                (*structure_set.skipped_rois, *structure_set.warnings) or ("nothing to convert",)
            )
            + ")"
        )
    rois, _ = select_rois(structure_set, options.roi_patterns, options.roi_map)
    if not rois:
        return None
    grid, slice_mode, grid_note = _grid_for(structure_set, job, options)
    target = grid.with_uniform_slices(options.resample_mm) if options.resample_mm else grid
    if options.output_format in ("nifti", "labelmap") and max(target.shape) > NIFTI1_MAX_DIMENSION:
        raise RtmaskError(  # once, before any mask is made
            f"{job.path}: the masks' grid would have {target.shape} voxels (slices, rows, "
            f"columns) and NIfTI-1 holds at most {NIFTI1_MAX_DIMENSION} per axis; use "
            "--format nrrd or npz, or check the images' geometry"
        )
    console.print(
        f"[bold]{escape(str(job.path))}[/bold] -> {escape(str(folder))}  ({escape(grid_note)})",
        soft_wrap=True,
    )
    series = job.series
    if series is not None:  # e.g. an image of another patient (the spacing is noted below)
        irregular = set(series.grid.irregularities())
        for warning in series.warnings:
            if warning not in irregular:
                print_warning(console, f"image series {series.folder}: {warning}")
    conversion = options.conversion(slice_mode=slice_mode)
    with counting_bar(console) as progress:
        task = progress.add_task("converting ROIs", total=len(structure_set.rois))
        report = convert_structure_set(
            structure_set,
            grid,
            folder,
            conversion,
            rois=rois,
            series=job.series,
            image_series=grid_note,
            progress=lambda roi: progress.advance(task),
            roi_map=options.roi_map,
            dose=job.dose,
        )
    if options.reference is not None and options.reference.reversed_slices:
        _relayout(report, options.reference)
    return report


def _relayout(report: ConversionReport, reference: ReferenceGrid) -> None:
    """Put the NIfTI masks written on a reference's grid into the reference's voxel order."""
    files = {row.file.split("#")[0] for row in report.rows if row.file}
    for name in sorted(files):
        if name.lower().endswith((".nii.gz", ".nii")):
            relayout_nifti(report.folder / name, reference)


def _reference_grid(
    reference: ReferenceGrid, structure_set: StructureSet, job: _Job
) -> tuple[ImageGrid, SliceMode, str]:
    """The grid of ``--reference``, how contours meet it, and how it relates to the series."""
    grid = ImageGrid(
        shape=reference.grid.shape,
        affine=reference.grid.affine,
        frame_of_reference_uid=structure_set.frame_of_reference_uid,
    )
    if job.series is None:
        return grid, "slab", f"on the grid of {reference.path} (no DICOM series to compare)"
    relation = relate_to_series(reference, job.series.grid)
    mode: SliceMode = "exact" if planes_match(reference, job.series.grid) else "slab"
    return grid, mode, f"on the grid of {reference.path}: {relation}"


def _grid_for(
    structure_set: StructureSet, job: _Job, options: _Options
) -> tuple[ImageGrid, SliceMode, str]:
    """The grid the masks go on, how contours meet its slices, and a note saying which."""
    if options.dose_grid is not None:
        return options.dose_grid, "slab", f"on the dose grid of {options.dose_grid_path}"
    if options.reference is not None:
        return _reference_grid(options.reference, structure_set, job)
    if options.grid_spacing_mm is not None:
        spacing = options.grid_spacing_mm
        grid = covering_grid(structure_set, spacing, job.path)
        return grid, "slab", f"on a {spacing:g} mm grid covering the structures"
    assert job.series is not None
    series = job.series
    return series.grid, "exact", f"{job.link_message}; images in {series.files[0].parent}"


def _print_reports(reports: Sequence[ConversionReport], console: Console, verbose: bool) -> None:
    for report in reports:
        table = Table(title=escape(str(report.folder)), title_justify="left")
        for column in ("#", "ROI", "file", "voxels", "volume cm3", "status", "warnings"):
            table.add_column(
                column, justify="right" if column in ("#", "voxels", "volume cm3") else "left"
            )
        for row in report.rows:
            style = {"written": "", "not selected": "dim", "no volume": "dim"}.get(
                row.status, "red"
            )
            table.add_row(
                str(row.roi_number),
                escape(row.name if row.canonical is None else f"{row.name} -> {row.canonical}"),
                escape(row.file or "-"),
                "-" if row.voxel_count is None else f"{row.voxel_count:.0f}",
                "-" if row.volume_cm3 is None else f"{row.volume_cm3:.3f}",
                row.status,
                str(len(row.warnings)) if row.warnings else "",
                style=style,
            )
        console.print(table)
        shown = report.notes if verbose else report.notes[:MAX_NOTES]
        for note in shown:
            print_warning(console, note)
        if report.uneven_slices:
            print_warning(console, UNEVEN_SLICES_HINT)
        if len(shown) < len(report.notes):
            console.print(
                f"... and {len(report.notes) - len(shown)} more warnings: see "
                "summary.json, or run with -v"
            )
        console.print(f"summary: {escape(', '.join(str(p) for p in report.summary_files))}")
        if report.overlay is not None:
            console.print(f"overlay: {escape(str(report.overlay))}")
        for role, path in (("image", report.image), ("dose", report.dose)):
            if path is not None:
                console.print(f"{role}: {escape(str(path))}")
