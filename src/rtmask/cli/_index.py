"""``rtmask index ROOT -o INDEX.duckdb``: a DuckDB index of an archive, updated incrementally.

Walks ROOT (headers only), writes the tables ``files``, ``series``, ``rt_objects`` and
``rois``; a rerun reads only new or changed files. Problems (unreadable files, symbolic
link loops, two files with one SOPInstanceUID) are listed, never fatal: the exit code is
0 when the index was written, 1 when ``--roi-map`` could not resolve a structure set's ROIs
(listed; the index is complete, those ROIs without a canonical name).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from rich.console import Console

from rtmask.cli._options import add_output_option, add_roi_map_option, read_roi_map_option
from rtmask.cli._output import print_warning, progress_bar
from rtmask.cohort import index_archive

__all__ = ["add_parser", "run"]

#: Problems listed one by one; beyond that, a count.
MAX_PROBLEMS_SHOWN = 20


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:  # type: ignore[type-arg]
    """Register ``index``."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "index",
        help="index an archive into a DuckDB database (files, series, RT objects, ROIs)",
        description=(
            "Walk ROOT (headers only) and write the DuckDB database INDEX with the tables "
            "files, series, rt_objects and rois (DICOM keywords as column names, as "
            "Imaging Data Commons' idc-index). Run it again to update: only new or changed "
            "files are read, rows of deleted files are removed. Query it with 'rtmask "
            "query'. Needs the cohort extra: pip install 'rtmask[cohort]'."
        ),
    )
    parser.add_argument("root", type=Path, metavar="ROOT", help="the archive's folder")
    add_output_option(parser, "INDEX", "the .duckdb file")
    parser.add_argument(
        "--volumes",
        action="store_true",
        help="also compute each ROI's contour volume in cm3 (reads the contours)",
    )
    parser.add_argument(
        "--parquet", type=Path, metavar="DIR", help="also write every table as DIR/<table>.parquet"
    )
    add_roi_map_option(parser, help_text="ROI name map (YAML or CSV) filling rois.canonical")
    return parser


def run(args: argparse.Namespace, console: Console) -> int:
    """Index ROOT into INDEX."""
    roi_map = read_roi_map_option(args.roi_map, console)
    if isinstance(roi_map, int):
        return roi_map
    with progress_bar(console) as bar:
        task = bar.add_task("reading headers", total=None)
        report = index_archive(
            args.root,
            args.output,
            volumes=args.volumes,
            canonical=roi_map,
            parquet_dir=args.parquet,
            progress=lambda done, total: bar.update(task, completed=done, total=total),
        )
    for problem in report.problems[:MAX_PROBLEMS_SHOWN]:
        print_warning(console, problem)
    if len(report.problems) > MAX_PROBLEMS_SHOWN:
        more = len(report.problems) - MAX_PROBLEMS_SHOWN
        print_warning(console, f"{more} more problem(s): SELECT * FROM files WHERE status != 'ok'")
    console.print(
        f"{report.index_path}: {report.files} files ({report.files_read} read, "
        f"{report.files_removed} removed), {report.series} image series, "
        f"{report.rt_objects} RT objects, {report.rois} ROIs in {report.seconds:.2f} s",
        soft_wrap=True,
    )
    return 1 if report.map_conflicts else 0
