"""``rtmask to-rtstruct MASKS --image DIR -o RS.dcm``: binary masks -> a DICOM RT Structure Set."""

from __future__ import annotations

import argparse
import math
import warnings
from dataclasses import replace
from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from rtmask._errors import RtmaskError
from rtmask.cli._mask_input import (
    add_mask_input_options,
    check_mask_paths,
    collect_messages,
    parse_color,
    read_input_masks,
    show_warnings,
    tolerance_problem,
)
from rtmask.cli._output import counting_bar, print_error
from rtmask.discovery import read_image_series
from rtmask.export._profiles import PROFILES, check_written, fit_names
from rtmask.export._rtstruct_writer import RtstructWriteReport, write_rtstruct
from rtmask.raster import Mask

__all__ = ["add_parser", "parse_color", "run"]


def _add_profile_options(parser: argparse.ArgumentParser) -> None:
    """``--profile`` and ``--max-points``: what the planning system accepts."""
    parser.add_argument(
        "--profile",
        choices=sorted(PROFILES),
        help=(
            "check and fix the structure set for a planning system: ROI names cut to its "
            "limit (eclipse: 16 characters) and kept unique, characters DICOM names cannot "
            "hold replaced; the written file checked for DS values over 16 characters, "
            "contours too long for explicit VR and --max-points"
        ),
    )
    parser.add_argument(
        "--max-points",
        type=int,
        metavar="N",
        dest="max_points",
        help="report contours with more than N points (with --profile; fix with --simplify)",
    )


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:  # type: ignore[type-arg]
    """Register ``to-rtstruct``."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "to-rtstruct",
        help="write binary masks as a DICOM RT Structure Set",
        description=(
            "Write the binary masks in MASKS as contours of a new DICOM RT Structure Set on "
            "the image series in DIR. MASKS is a folder of per-ROI masks (.nii, .nii.gz, "
            ".nrrd, .nhdr; ROI names from the file names, or from summary.json as 'rtmask "
            "convert' writes it), a labelmap with its label table (nnU-Net dataset.json, "
            "CSV, .ctbl or ITK-SNAP .txt), a 3D Slicer .seg.nrrd, an rtmask .npz or a DICOM "
            "SEG. Masks on the image grid (any axis order or flip) are copied exactly; masks "
            "on another grid in the same patient space (a model's prediction) are placed by "
            "--resample-rule and the summary states how. Contours follow the voxel "
            "edges, so rasterising the file by the pixel-centre rule gives the masks back "
            "voxel for voxel. Exit code 0 when every mask was written, 1 when something "
            "failed or a mask was left out, 2 for usage errors."
        ),
    )
    add_mask_input_options(parser, "RS.dcm", "RTSTRUCT file to write")
    _add_profile_options(parser)
    parser.add_argument(
        "--simplify",
        type=float,
        default=0.0,
        metavar="MM",
        dest="simplify_mm",
        help="drop contour points while the outline moves at most MM (default 0: exact)",
    )
    parser.add_argument(
        "--keyholes",
        action="store_true",
        help="join holes to their outer contour by a zero-width cut (one contour each)",
    )
    parser.add_argument(
        "--add-to",
        type=Path,
        metavar="RS.dcm",
        dest="add_to",
        help="keep the ROIs of this RT Structure Set and add the masks after them",
    )
    parser.add_argument(
        "--label",
        default="rtmask",
        metavar="TEXT",
        help="StructureSetLabel of the new structure set (default: rtmask)",
    )
    return parser


def _print_report(report: RtstructWriteReport, console: Console) -> None:
    """ROIs written and left out, as a table on the console."""
    table = Table(title=escape(str(report.path)), title_justify="left")
    for column in ("#", "ROI", "contours", "points", "status"):
        table.add_column(
            column, justify="right" if column in ("#", "contours", "points") else "left"
        )
    for roi in report.rois:
        table.add_row(
            str(roi.number), escape(roi.name), str(roi.contours), str(roi.points), "written"
        )
    for skipped in report.skipped:
        table.add_row(
            str(skipped.number), escape(skipped.name), "-", "-", escape(skipped.reason), style="red"
        )
    console.print(table)
    kept = f", {report.kept} ROI(s) kept from the existing structure set" if report.kept else ""
    console.print(
        f"wrote {escape(str(report.path))}: {len(report.rois)} ROI(s), "
        f"{sum(r.contours for r in report.rois)} contours, {report.n_points} points{kept}",
        soft_wrap=True,
    )


def run(args: argparse.Namespace, console: Console) -> int:
    """Run ``to-rtstruct`` from parsed arguments; 0 all written, 1 failures, 2 usage."""
    if not (math.isfinite(args.simplify_mm) and args.simplify_mm >= 0):
        print_error(console, "--simplify takes a distance in mm >= 0")
        return 2
    problem = tolerance_problem(args)
    if problem is not None:
        print_error(console, problem)
        return 2
    if args.max_points is not None and args.max_points < 3:
        print_error(console, "--max-points takes a number of points >= 3")
        return 2
    output: Path = args.output
    check_mask_paths(args, "RS.dcm")
    if args.add_to is not None and not args.add_to.is_file():
        raise RtmaskError(f"{args.add_to}: no such file (--add-to takes an RTSTRUCT file)")
    verbose = bool(getattr(args, "verbose", False))
    messages: list[str] = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        series = read_image_series(args.image)
        with counting_bar(console) as progress:
            masks = read_input_masks(args, series, progress)
            masks = _fit_profile(masks, args.profile, messages)
            progress.add_task(f"writing {output.name}", total=None)
            output.parent.mkdir(parents=True, exist_ok=True)
            report = write_rtstruct(
                masks,
                series,
                output,
                simplify_mm=args.simplify_mm,
                keyholes=args.keyholes,
                existing=args.add_to,
                label=args.label,
            )
    # Skipped ROIs get an error line below; their warnings would only repeat it.
    left_out = [f"ROI {s.number} {s.name!r}" for s in report.skipped]
    messages = collect_messages(caught, series, left_out, messages)
    _print_report(report, console)
    show_warnings(messages, console, verbose)
    for skipped in report.skipped:
        print_error(console, f"ROI {skipped.number} {skipped.name!r} not written: {skipped.reason}")
    problems = []
    if args.profile is not None or args.max_points is not None:
        problems = check_written(output, args.max_points)
    for problem in problems:
        print_error(console, f"{output}: {problem}; give --simplify MM to write fewer points")
    return 1 if report.skipped or problems else 0


def _fit_profile(masks: list[Mask], profile: str | None, notes: list[str]) -> list[Mask]:
    """The masks with ROI names the planning system accepts (a note per name changed)."""
    if profile is None:
        return masks
    names, changed = fit_names([mask.roi.name for mask in masks], PROFILES[profile])
    notes.extend(f"--profile {profile}: {note}" for note in changed)
    return [
        mask if name == mask.roi.name else replace(mask, roi=replace(mask.roi, name=name))
        for mask, name in zip(masks, names, strict=True)
    ]
