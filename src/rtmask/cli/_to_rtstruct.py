"""``rtmask to-rtstruct MASKS --image DIR -o RS.dcm``: binary masks -> a DICOM RT Structure Set."""

from __future__ import annotations

import argparse
import math
import warnings
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from rtmask._errors import RtmaskError
from rtmask.cli._options import add_output_option
from rtmask.cli._output import counting_bar, print_error, print_warning
from rtmask.discovery import read_image_series
from rtmask.export._profiles import PROFILES, check_written, fit_names
from rtmask.export._rtstruct_writer import RtstructWriteReport, write_rtstruct
from rtmask.masks import MASK_SUFFIXES, non_mask_volumes, read_masks
from rtmask.masks._resample import OUTSIDE_TOLERANCE_MM, RESAMPLE_RULES
from rtmask.raster import Mask

__all__ = ["add_parser", "parse_color", "run"]

#: Warnings printed without --verbose.
MAX_NOTES = 12


def parse_color(text: str) -> tuple[int, int, int]:
    """``"R,G,B"`` (0-255 each) -> ``(r, g, b)``; argparse turns errors into exit code 2."""
    parts = text.replace(" ", "").split(",")
    try:
        r, g, b = (int(part) for part in parts)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"colour {text!r} is not R,G,B (three integers 0-255, e.g. 255,0,0)"
        ) from None
    if not all(0 <= c <= 255 for c in (r, g, b)):
        raise argparse.ArgumentTypeError(f"colour {text!r}: each value must be 0-255")
    return (r, g, b)


def _name_list(text: str) -> list[str]:
    """``"Liver,Spleen"`` -> ``["Liver", "Spleen"]``; argparse turns errors into exit code 2."""
    names = [part.strip() for part in text.split(",") if part.strip()]
    if not names:
        raise argparse.ArgumentTypeError("--labels takes ROI names separated by commas")
    return names


def _add_prediction_options(parser: argparse.ArgumentParser) -> None:
    """``--labels``, ``--resample-rule``, ``--tolerance``: masks from a model's output."""
    parser.add_argument(
        "--labels",
        type=_name_list,
        metavar="NAME,...",
        help="write only these ROIs (names from the label table or the files), in this order",
    )
    parser.add_argument(
        "--resample-rule",
        choices=RESAMPLE_RULES,
        default="nearest",
        help=(
            "masks whose voxels are not the image's (a prediction on its own grid): 'nearest' "
            "(default) gives each image voxel the label of the mask voxel holding its centre, "
            "'majority' keeps a voxel when most finer mask voxels in it are inside (binary "
            "masks), 'exact' refuses them; masks on the image grid are always copied exactly"
        ),
    )
    parser.add_argument(
        "--tolerance",
        type=float,
        default=OUTSIDE_TOLERANCE_MM,
        metavar="MM",
        dest="tolerance_mm",
        help=(
            "how far labelled voxels of a resampled mask may reach beyond the image before it "
            f"is refused (default {OUTSIDE_TOLERANCE_MM:g} mm)"
        ),
    )


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
    parser.add_argument("masks", type=Path, metavar="MASKS", help="mask folder or file")
    parser.add_argument(
        "--image",
        type=Path,
        required=True,
        metavar="DIR",
        help="folder of the image series the masks were made on",
    )
    add_output_option(parser, "RS.dcm", "RTSTRUCT file to write")
    parser.add_argument(
        "--names",
        nargs="+",
        metavar="NAME",
        help="ROI names, one per mask in the order listed (default: from the files)",
    )
    parser.add_argument(
        "--colors",
        nargs="+",
        type=parse_color,
        metavar="R,G,B",
        help="ROI display colours, one per mask, e.g. 255,0,0 (default: from the files)",
    )
    parser.add_argument(
        "--color-table",
        "--label-table",
        type=Path,
        metavar="FILE",
        dest="color_table",
        help=(
            "table naming the labels of a labelmap: nnU-Net dataset.json (found beside the "
            "labelmap by itself), a CSV/TSV of value,name, a 3D Slicer .ctbl or an ITK-SNAP "
            "label file"
        ),
    )
    _add_prediction_options(parser)
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


def _mask_count(path: Path) -> int | None:
    """How many files a mask folder holds (for the progress bar), None otherwise."""
    if not path.is_dir():
        return None
    volumes = non_mask_volumes(path)  # the image and dose rtmask convert writes
    count = sum(
        1
        for p in path.iterdir()
        if not p.name.startswith(".")
        and p.name.lower().endswith(MASK_SUFFIXES)
        and p.name not in volumes
    )
    return count or None


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


def _show_warnings(messages: Sequence[str], console: Console, verbose: bool) -> None:
    shown = messages if verbose else messages[:MAX_NOTES]
    for message in shown:
        print_warning(console, message)
    if len(shown) < len(messages):
        console.print(f"... and {len(messages) - len(shown)} more warnings (-v lists them)")


def run(args: argparse.Namespace, console: Console) -> int:
    """Run ``to-rtstruct`` from parsed arguments; 0 all written, 1 failures, 2 usage."""
    if not (math.isfinite(args.simplify_mm) and args.simplify_mm >= 0):
        print_error(console, "--simplify takes a distance in mm >= 0")
        return 2
    if not (math.isfinite(args.tolerance_mm) and args.tolerance_mm >= 0):
        print_error(console, "--tolerance takes a distance in mm >= 0")
        return 2
    if args.max_points is not None and args.max_points < 3:
        print_error(console, "--max-points takes a number of points >= 3")
        return 2
    masks_path: Path = args.masks
    output: Path = args.output
    if not masks_path.exists():
        raise RtmaskError(f"{masks_path}: no such file or folder; give the masks to write")
    if not args.image.is_dir():
        raise RtmaskError(f"{args.image}: no such folder; give the image series with --image")
    if output.is_dir():
        raise RtmaskError(f"{output}: is a folder; give the file to write, e.g. {output}/RS.dcm")
    if args.add_to is not None and not args.add_to.is_file():
        raise RtmaskError(f"{args.add_to}: no such file (--add-to takes an RTSTRUCT file)")
    verbose = bool(getattr(args, "verbose", False))
    messages: list[str] = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        series = read_image_series(args.image)
        with counting_bar(console) as progress:
            reading = progress.add_task("reading masks", total=_mask_count(masks_path))
            masks = read_masks(
                masks_path,
                series,
                names=args.names,
                colors=args.colors,
                color_table=args.color_table,
                progress=lambda mask: progress.advance(reading),
                resample=args.resample_rule,
                tolerance_mm=args.tolerance_mm,
                labels=args.labels,
            )
            progress.update(reading, visible=False)
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
    for text in [*(str(w.message) for w in caught), *series.warnings]:
        if text not in messages and not any(label in text for label in left_out):
            messages.append(text)
    _print_report(report, console)
    _show_warnings(messages, console, verbose)
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
