"""``rtmask to-seg MASKS --image DIR -o SEG.dcm``: binary masks -> one DICOM Segmentation."""

from __future__ import annotations

import argparse
import warnings
from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from rtmask._optional import import_optional
from rtmask.cli._mask_input import (
    add_mask_input_options,
    check_mask_paths,
    collect_messages,
    read_input_masks,
    show_warnings,
    tolerance_problem,
    with_default_colours,
)
from rtmask.cli._output import counting_bar, print_error
from rtmask.discovery import read_image_series
from rtmask.export._seg import SegWriteReport, write_seg
from rtmask.raster import Mask

__all__ = ["add_parser", "run"]


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:  # type: ignore[type-arg]
    """Register ``to-seg``."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "to-seg",
        help="write binary masks as one DICOM Segmentation (SEG)",
        description=(
            "Write the binary masks in MASKS as the segments of one new DICOM Segmentation "
            "(BINARY, or FRACTIONAL from a fractional DICOM SEG; needs rtmask[seg]) on the "
            "image series in DIR. MASKS is what "
            "'rtmask to-rtstruct' takes: a folder of per-ROI masks (.nii, .nii.gz, .nrrd, "
            ".nhdr), a labelmap with its label table (nnU-Net dataset.json, CSV, .ctbl or "
            "ITK-SNAP .txt; one segment per label, named by the label), a 3D Slicer "
            ".seg.nrrd, an rtmask .npz or a DICOM SEG. Masks on the image grid are copied "
            "exactly; masks on another grid in the same patient space (a model's prediction) "
            "are placed by --resample-rule and the summary states how. Segments without a "
            "colour get the one an RT Structure Set would show (the standard colour of the "
            "name, else a fixed palette). Exit code 0 when every mask was written, 1 when "
            "something failed or a mask was left out, 2 for usage errors."
        ),
    )
    add_mask_input_options(parser, "SEG.dcm", "DICOM SEG file to write", what="segments")
    parser.add_argument(
        "--label",
        default="rtmask",
        metavar="TEXT",
        help="ContentLabel and SeriesDescription of the new SEG (default: rtmask)",
    )
    return parser


def _amount(voxels: float) -> str:
    """A voxel count as printed: whole for binary masks, one decimal for fractions."""
    return str(round(voxels)) if float(voxels).is_integer() else f"{voxels:.1f}"


def _print_report(report: SegWriteReport, masks: list[Mask], console: Console) -> None:
    """Segments written and left out, as a table on the console."""
    table = Table(title=escape(str(report.path)), title_justify="left")
    for column in ("segment", "ROI #", "name", "voxels", "cm3", "status"):
        table.add_column(column, justify="left" if column in ("name", "status") else "right")
    by_number = {mask.roi.number: mask for mask in masks}
    for segment in report.segments:
        mask = by_number[segment.roi_number]
        table.add_row(
            str(segment.segment_number),
            str(segment.roi_number),
            escape(segment.label),
            _amount(mask.voxel_count),
            f"{mask.volume_cm3:.3f}",
            "written",
        )
    for skipped in report.skipped:
        table.add_row(
            "-",
            str(skipped.roi_number),
            escape(skipped.roi_name),
            "0",
            "0",
            escape(skipped.reason),
            style="red",
        )
    console.print(table)
    console.print(
        f"wrote {escape(str(report.path))}: {len(report.segments)} segment(s), "
        f"{report.segmentation_type}, {report.n_frames} frames",
        soft_wrap=True,
    )


def run(args: argparse.Namespace, console: Console) -> int:
    """Run ``to-seg`` from parsed arguments; 0 all written, 1 failures, 2 usage."""
    problem = tolerance_problem(args)
    if problem is not None:
        print_error(console, problem)
        return 2
    output: Path = args.output
    check_mask_paths(args, "SEG.dcm")
    # Say so before any work, not after every mask is read.
    import_optional("highdicom", extra="seg", feature="DICOM SEG files")
    verbose = bool(getattr(args, "verbose", False))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        series = read_image_series(args.image)
        with counting_bar(console) as progress:
            masks = with_default_colours(read_input_masks(args, series, progress))
            progress.add_task(f"writing {output.name}", total=None)
            output.parent.mkdir(parents=True, exist_ok=True)
            report = write_seg(masks, series, output, label=args.label)
    # Skipped masks get an error line below; their warnings would only repeat it.
    left_out = [f"ROI {s.roi_number} {s.roi_name!r}" for s in report.skipped]
    messages = collect_messages(caught, series, left_out)
    _print_report(report, masks, console)
    show_warnings(messages, console, verbose)
    for skipped in report.skipped:
        print_error(
            console, f"ROI {skipped.roi_number} {skipped.roi_name!r} not written: {skipped.reason}"
        )
    return 1 if report.skipped else 0
