"""``rtmask report OUT -o report.html``: one HTML page to check a converted cohort by eye.

OUT is the output folder of ``rtmask convert`` (``cases.csv`` and one folder per case) or
of ``rtmask dataset``. The page is self-contained (no network: inline script, thumbnails
as data URIs). The exit code is 0 when the page was written, whatever the cases' status:
the page is where failed cases are shown.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from rich.console import Console

from rtmask.cli._options import add_output_option
from rtmask.cli._output import counting_bar

__all__ = ["add_parser", "run"]


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:  # type: ignore[type-arg]
    """Register ``report``."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "report",
        help="write an HTML QA page of a converted cohort or data set",
        description=(
            "Write one self-contained HTML page (works offline) about OUT, the output "
            "folder of 'rtmask convert' or 'rtmask dataset': every case with its status "
            "and error, per case axial/coronal/sagittal thumbnails with the ROI outlines "
            "and its ROI table, and across the cohort the volume outliers per canonical "
            "ROI (robust z-score), cases missing a ROI, duplicate or differently spelled "
            "names and the failed cases. Tables sort (click a header) and filter (text "
            "box) in the page."
        ),
    )
    parser.add_argument(
        "folder", type=Path, metavar="OUT", help="output folder of 'rtmask convert' or dataset"
    )
    add_output_option(parser, "HTML", "the page to write (e.g. report.html)")
    return parser


def run(args: argparse.Namespace, console: Console) -> int:
    """Write the page."""
    from rtmask.report import write_report  # noqa: PLC0415 - numpy and nibabel on use only

    with counting_bar(console) as bar:
        task = bar.add_task("drawing cases", total=None)
        summary = write_report(
            args.folder,
            args.output,
            progress=lambda done, total: bar.update(task, completed=done, total=total),
        )
    console.print(
        f"{summary.path}: {summary.kind} of {summary.cases} case(s), {summary.detailed} "
        f"drawn, {summary.failed} failed or excluded, {summary.outliers} volume "
        f"outlier(s), {summary.missing} case(s) missing a ROI, {summary.duplicates} name "
        f"problem(s) in {summary.seconds:.1f} s",
        soft_wrap=True,
    )
    return 0
