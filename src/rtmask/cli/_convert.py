"""``rtmask convert INPUT -o OUT``: structure sets -> per-ROI masks and a summary."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import cast

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from rtmask._errors import RtmaskError
from rtmask.cli._output import print_error, print_warning
from rtmask.discovery import (
    ImageSeries,
    RTObject,
    SkippedFile,
    link_image_series,
    read_image_series,
    scan,
)
from rtmask.export import (
    ConversionReport,
    OutputFormat,
    convert_structure_set,
    safe_folder_name,
)
from rtmask.raster import CombinationRule
from rtmask.rtstruct import StructureSet, read_rtstruct

__all__ = ["add_parser", "convert_command", "run"]

FORMATS = ("nifti", "nrrd", "npz", "labelmap")
#: Skipped-file kinds that mean a file meant to be used could not be: the run fails.
FAILED_KINDS = frozenset({"unreadable", "truncated", "bad_geometry"})
#: Skipped-file kinds worth a warning line; the rest (not DICOM, ...) are only counted.
WARNED_KINDS = frozenset({"duplicate", "mixed_geometry", "multiframe", "dicomdir"})
#: Warnings printed per structure set without --verbose (all are in summary.json).
MAX_NOTES = 12


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
    parser.add_argument(
        "-o", "--output", type=Path, required=True, metavar="OUT", help="output folder (created)"
    )
    parser.add_argument(
        "--image",
        type=Path,
        metavar="DIR",
        help="folder of the image series (default: found in INPUT's tree)",
    )
    parser.add_argument(
        "--roi",
        nargs="+",
        default=[],
        metavar="NAME",
        help="only these ROIs: exact names (case-insensitive) or glob patterns",
    )
    parser.add_argument(
        "--rule",
        choices=[r.value for r in CombinationRule],
        default="auto",
        help="how several contours on one plane combine (default: auto)",
    )
    parser.add_argument(
        "--format",
        dest="output_format",
        choices=FORMATS,
        default="nifti",
        help="nifti (.nii.gz per ROI, default), nrrd, npz or labelmap",
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
    return parser


def run(args: argparse.Namespace, console: Console) -> int:
    """Run ``convert`` from parsed arguments."""
    if args.fractional is not None and args.fractional < 1:
        print_error(console, "--fractional takes a positive number of samples")
        return 2
    if args.resample_mm is not None and args.resample_mm <= 0:
        print_error(console, "--resample takes a positive spacing in mm")
        return 2
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
        verbose=args.verbose,
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class _Options:
    """What to convert and how (the command's options)."""

    roi_patterns: Sequence[str]
    rule: str
    output_format: OutputFormat
    fractional: int | None
    resample_mm: float | None


@dataclass(frozen=True, slots=True)
class _Job:
    """One structure set to convert: its file, its image series (or why there is none)."""

    path: Path
    series: ImageSeries | None
    link_message: str


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
    input_path: Path, image: Path | None, console: Console, verbose: bool
) -> tuple[list[_Job], list[str]]:
    """Find the structure sets under ``input_path`` and their image series."""
    problems: list[str] = []
    explicit = read_image_series(image) if image is not None else None
    root = input_path if input_path.is_dir() else input_path.parent
    if input_path.is_file() and explicit is not None:
        return [_Job(input_path, explicit, f"image series from {image}")], problems
    inventory = scan(root)
    structure_sets: Sequence[RTObject] = inventory.structure_sets
    if input_path.is_file():
        resolved = input_path.resolve()
        structure_sets = [s for s in structure_sets if s.path.resolve() == resolved]
        if not structure_sets:
            # Not found by the scan: say why (unreadable, not an RTSTRUCT).
            read_rtstruct(input_path, on_invalid="ignore")
            raise RtmaskError(f"{input_path}: no RT Structure Set found")
    if input_path.is_dir():
        problems.extend(_report_skipped(inventory.skipped, console, verbose))
    jobs = []
    for rt_object in structure_sets:
        if explicit is not None:
            jobs.append(_Job(rt_object.path, explicit, f"image series from {image}"))
            continue
        link = link_image_series(rt_object, inventory.image_series)
        jobs.append(_Job(rt_object.path, link.series, link.message))
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
    verbose: bool = False,
) -> int:
    """Convert every structure set under ``input_path`` into ``output``; returns the exit code."""
    if not input_path.exists():
        raise RtmaskError(f"{input_path}: no such file or folder")
    jobs, problems = _jobs(input_path, image, console, verbose)
    if not jobs:
        raise RtmaskError(f"{input_path}: no RT Structure Set found (is this the right folder?)")
    folders = _output_folders(jobs, output)
    options = _Options(
        roi_patterns=roi_patterns,
        rule=rule,
        output_format=cast("OutputFormat", output_format),
        fractional=fractional,
        resample_mm=resample_mm,
    )
    reports: list[ConversionReport] = []
    for job, folder in zip(jobs, folders, strict=True):
        if job.series is None:
            problems.append(f"{job.path}: {job.link_message}")
            continue
        try:
            structure_set = read_rtstruct(job.path, on_invalid="ignore")
            report = _convert_one(structure_set, job, folder, console, options)
        except RtmaskError as error:
            problems.append(str(error))
            continue
        if report is None:
            problems.append(
                f"{job.path}: no ROI matches {' '.join(roi_patterns)!r}; ROIs are "
                f"{', '.join(repr(n) for n in structure_set.roi_names)}"
            )
            continue
        reports.append(report)
        problems.extend(report.problems)
    _print_reports(reports, console, verbose)
    for problem in problems:
        print_error(console, problem)
    return 1 if problems else 0


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
    """Convert one linked structure set with a progress bar; None when no ROI is selected."""
    assert job.series is not None
    rois = structure_set.select(options.roi_patterns)
    if not rois:
        return None
    console.print(
        f"[bold]{escape(str(job.path))}[/bold] -> {escape(str(folder))}  "
        f"({escape(job.link_message)})",
        soft_wrap=True,
    )
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
        disable=not console.is_terminal or console.quiet,
    ) as progress:
        task = progress.add_task("converting ROIs", total=len(structure_set.rois))
        return convert_structure_set(
            structure_set,
            job.series.grid,
            folder,
            rois=rois,
            rule=options.rule,
            output_format=options.output_format,
            fractional=options.fractional,
            resample_mm=options.resample_mm,
            image_series=f"{job.series.series_instance_uid} ({job.series.files[0].parent})",
            progress=lambda roi: progress.advance(task),
        )


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
                escape(row.name),
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
        if len(shown) < len(report.notes):
            console.print(
                f"... and {len(report.notes) - len(shown)} more warnings: see "
                "summary.json, or run with -v"
            )
        console.print(f"summary: {escape(', '.join(str(p) for p in report.summary_files))}")
