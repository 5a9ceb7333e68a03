"""``rtmask demo``: write a synthetic thorax case and convert it, to try rtmask in seconds."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from rtmask._errors import MissingDependencyError
from rtmask._optional import import_optional
from rtmask.cli._convert import convert_command
from rtmask.synthetic import write_demo_case

__all__ = ["add_parser", "run"]

DEFAULT_FOLDER = Path("rtmask-demo")


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``demo`` sub-command to ``subparsers``."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "demo",
        help="write a synthetic CT + RTSTRUCT + RTDOSE case and convert it",
        description=(
            "Write a synthetic thorax case (CT series, RT Structure Set with ten ROIs, "
            "RT Dose) into DIR/dicom and convert it to masks in DIR/masks."
        ),
    )
    parser.add_argument(
        "-o",
        "--output",
        metavar="DIR",
        type=Path,
        default=DEFAULT_FOLDER,
        help=f"folder to write into (default: ./{DEFAULT_FOLDER})",
    )
    parser.add_argument(
        "--no-convert",
        action="store_true",
        help="only write the DICOM files; do not convert them",
    )
    return parser


def run(args: argparse.Namespace, console: Console) -> int:
    """Write the demo case, convert it, and say where everything is."""
    folder = Path(args.output)
    dicom, masks = folder / "dicom", folder / "masks"
    case = write_demo_case(dicom)
    console.print(
        f"Wrote a synthetic thorax to {escape(str(dicom))}: {len(case.ct.files)} CT slices, "
        f"{len(case.roi_names)} ROIs ({', '.join(case.roi_names)}) and a dose",
        soft_wrap=True,
    )
    overlay = not args.no_convert and _can_plot(console)
    code = 0 if args.no_convert else convert_command(dicom, masks, console=console, overlay=overlay)

    where = Table.grid(padding=(0, 2))
    where.add_row("DICOM", escape(str(dicom)))
    if not args.no_convert:
        where.add_row("masks", escape(str(masks)))
        summaries = sorted(masks.glob("summary*")) or sorted(masks.rglob("summary*"))
        for summary in summaries:
            where.add_row("summary", escape(str(summary)))
        for picture in sorted(masks.rglob("overlay.png")):
            where.add_row("overlay", escape(str(picture)))
    console.print()
    console.print("[bold]Demo files[/bold]")
    console.print(where)
    console.print("[bold]Next, try[/bold]")
    console.print(f"  rtmask info {escape(str(dicom))}", soft_wrap=True)
    console.print(
        f"  rtmask convert {escape(str(dicom))} -o {escape(str(folder / 'my-masks'))}",
        soft_wrap=True,
    )
    return code


def _can_plot(console: Console) -> bool:
    """True when matplotlib is installed; otherwise print a one-line hint."""
    try:
        import_optional("matplotlib", extra="plot", feature="overlay pictures")
    except MissingDependencyError as error:
        console.print(f"no overlay picture: {escape(str(error))}", soft_wrap=True)
        return False
    return True
