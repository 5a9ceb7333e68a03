"""Masks given to ``to-rtstruct`` and ``to-seg``: the options, the checks and the reading.

Both commands take the same inputs (per-ROI mask folders, a labelmap with its label
table, a .seg.nrrd, an npz, a DICOM SEG), place masks on another grid of the same patient
space onto the image grid the same way (``--resample-rule``, ``--tolerance``) and state
the warnings (among them the resampling: source grid, largest displacement, voxels
changed) in the same words, so both are defined here once.
"""

from __future__ import annotations

import argparse
import math
import warnings
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console

from rtmask._errors import GeometryError, RtmaskError
from rtmask.cli._options import add_output_option
from rtmask.cli._output import print_warning
from rtmask.discovery import ImageSeries
from rtmask.export._rtstruct_writer import default_colour
from rtmask.masks import MASK_SUFFIXES, non_mask_volumes, read_masks
from rtmask.masks._placement import MISMATCH_ADVICE
from rtmask.masks._resample import OUTSIDE_TOLERANCE_MM, RESAMPLE_RULES
from rtmask.raster import Mask

#: What to do when ``--resample-rule exact`` refuses masks off the image grid.
EXACT_ADVICE = (
    "--resample-rule exact copies only masks on the image grid: use --resample-rule nearest "
    "(or majority, for binary masks on a finer grid) to place them on the image grid, or "
    "pass the image series the masks were made on with --image"
)

if TYPE_CHECKING:
    from rich.progress import Progress

    from rtmask.cli._output import _NoProgress

__all__ = [
    "MAX_NOTES",
    "add_mask_input_options",
    "check_mask_paths",
    "collect_messages",
    "mask_count",
    "parse_color",
    "read_input_masks",
    "show_warnings",
    "tolerance_problem",
    "with_default_colours",
]

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


def _add_prediction_options(parser: argparse.ArgumentParser, what: str) -> None:
    """``--labels``, ``--resample-rule``, ``--tolerance``: masks from a model's output."""
    parser.add_argument(
        "--labels",
        type=_name_list,
        metavar="NAME,...",
        help=f"write only these {what} (names from the label table or the files), in this order",
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


def add_mask_input_options(
    parser: argparse.ArgumentParser, output_metavar: str, output_help: str, what: str = "ROIs"
) -> None:
    """Add the options naming the masks, the image series and the file to write.

    MASKS, ``--image``, ``-o``, ``--names``, ``--colors``, ``--color-table`` and the
    prediction options (``--labels``, ``--resample-rule``, ``--tolerance``).
    ``what``: the objects written, for the help texts (``ROIs``, ``segments``).
    """
    parser.add_argument("masks", type=Path, metavar="MASKS", help="mask folder or file")
    parser.add_argument(
        "--image",
        type=Path,
        required=True,
        metavar="DIR",
        help="folder of the image series the masks were made on",
    )
    add_output_option(parser, output_metavar, output_help)
    parser.add_argument(
        "--names",
        nargs="+",
        metavar="NAME",
        help=f"{what[:-1]} names, one per mask in the order listed (default: from the files)",
    )
    parser.add_argument(
        "--colors",
        nargs="+",
        type=parse_color,
        metavar="R,G,B",
        help=f"{what[:-1]} display colours, one per mask, e.g. 255,0,0 (default: from the files)",
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
    _add_prediction_options(parser, what)


def tolerance_problem(args: argparse.Namespace) -> str | None:
    """The usage error of ``--tolerance`` (exit code 2), or None."""
    if not (math.isfinite(args.tolerance_mm) and args.tolerance_mm >= 0):
        return "--tolerance takes a distance in mm >= 0"
    return None


def check_mask_paths(args: argparse.Namespace, example: str) -> None:
    """Raise unless MASKS exists, ``--image`` is a folder and ``-o`` is not a folder.

    ``example``: a file name for the output, for the message.
    """
    masks_path: Path = args.masks
    output: Path = args.output
    if not masks_path.exists():
        raise RtmaskError(f"{masks_path}: no such file or folder; give the masks to write")
    if not args.image.is_dir():
        raise RtmaskError(f"{args.image}: no such folder; give the image series with --image")
    if output.is_dir():
        raise RtmaskError(f"{output}: is a folder; give the file to write, e.g. {output}/{example}")


def mask_count(path: Path) -> int | None:
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


def read_input_masks(
    args: argparse.Namespace, series: ImageSeries, progress: Progress | _NoProgress
) -> list[Mask]:
    """The masks of MASKS on ``series.grid``, as the options say (a bar while reading).

    Resampled files warn (:class:`~rtmask.errors.GeometryWarning`) with the source grid,
    the largest displacement and the voxels changed; the caller records the warnings.
    """
    reading = progress.add_task("reading masks", total=mask_count(args.masks))
    try:
        masks = read_masks(
            args.masks,
            series,
            names=args.names,
            colors=args.colors,
            color_table=args.color_table,
            progress=lambda mask: progress.advance(reading),
            resample=args.resample_rule,
            tolerance_mm=args.tolerance_mm,
            labels=args.labels,
        )
    except GeometryError as error:
        if args.resample_rule != "exact" or MISMATCH_ADVICE not in str(error):
            raise
        raise GeometryError(str(error).replace(MISMATCH_ADVICE, EXACT_ADVICE)) from error
    progress.update(reading, visible=False)
    return masks


def with_default_colours(masks: Sequence[Mask]) -> list[Mask]:
    """The masks, each with the colour an RT Structure Set written from them shows.

    The rule of :func:`~rtmask.export.write_rtstruct`: the mask's own colour, else the
    conventional colour of its name (TG-263, target prefixes), else the palette's next
    colour, counted over the non-empty masks (the ones written).
    """
    coloured: list[Mask] = []
    position = 0
    for mask in masks:
        if mask.roi.color is None and mask.voxel_count > 0:
            colour = default_colour(mask.roi, position)
            mask = replace(mask, roi=replace(mask.roi, color=colour))  # noqa: PLW2901
        position += mask.voxel_count > 0
        coloured.append(mask)
    return coloured


def collect_messages(
    caught: Sequence[warnings.WarningMessage],
    series: ImageSeries,
    left_out: Sequence[str],
    messages: Sequence[str] = (),
) -> list[str]:
    """The warnings to show: ``messages``, then those caught and the series', once each.

    ``left_out`` (``"ROI 3 'Liver'"``, ...): masks not written, which get an error line
    of their own; their warnings would only repeat it.
    """
    shown = list(messages)
    for text in [*(str(w.message) for w in caught), *series.warnings]:
        if text not in shown and not any(label in text for label in left_out):
            shown.append(text)
    return shown


def show_warnings(messages: Sequence[str], console: Console, verbose: bool) -> None:
    """Print the warnings: the first :data:`MAX_NOTES`, or all with ``--verbose``."""
    shown = messages if verbose else messages[:MAX_NOTES]
    for message in shown:
        print_warning(console, message)
    if len(shown) < len(messages):
        console.print(f"... and {len(messages) - len(shown)} more warnings (-v lists them)")
