"""``rtmask names ROOT|INDEX``: every ROI name of an archive, its count, group, TG-263 name."""

from __future__ import annotations

import argparse
import csv
import sys
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console
from rich.markup import escape

from rtmask._atomic import atomic_path
from rtmask.cli._options import add_json_option, add_roi_map_option, read_roi_map_option
from rtmask.cli._output import json_text, print_error, print_warning
from rtmask.errors import RtmaskError
from rtmask.names import (
    NameCount,
    StructureSetNames,
    count_names,
    map_conflicts,
    structure_sets_in_folder,
    suggest_map,
)

if TYPE_CHECKING:
    from rtmask.discovery import SkippedFile

__all__ = ["CSV_COLUMNS", "add_parser", "run"]

#: Columns of ``--csv`` (and keys of each ``--json`` row), in order.
CSV_COLUMNS = ("name", "structure_sets", "patients", "group", "tg263", "canonical")


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:  # type: ignore[type-arg]
    """Register ``names``."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "names",
        help="which ROI names an archive uses, grouped, with TG-263 names",
        description=(
            "List every distinct ROI name of the structure sets under ROOT (headers only), "
            "or in an INDEX written by 'rtmask index' (no file is read), with the number "
            "of structure sets and patients using it, most frequent first; "
            "its group (the name normalised: case, spaces, _ - ., laterality words, copy "
            "suffixes) and the TG-263 standard name of the group. Exit code 1 when a file "
            "could not be read or the map is ambiguous, 2 for usage errors."
        ),
    )
    parser.add_argument(
        "root",
        type=Path,
        metavar="ROOT|INDEX",
        help="folder tree to scan, or an index file written by 'rtmask index'",
    )
    add_json_option(parser)
    parser.add_argument("--csv", type=Path, metavar="FILE", help="also write the rows to FILE")
    add_roi_map_option(parser)
    parser.add_argument(
        "--unmapped",
        action="store_true",
        help="only the names that match nothing in --roi-map",
    )
    parser.add_argument(
        "--suggest-map",
        type=Path,
        metavar="FILE",
        help="write a starting YAML ROI map (one entry per group) to FILE, to edit",
    )
    return parser


def run(args: argparse.Namespace, console: Console) -> int:
    """Count the names and print/write them; 0 when every structure set was read."""
    if args.unmapped and args.roi_map is None:
        print_error(console, "--unmapped lists the names a map leaves out: give --roi-map FILE")
        return 2
    roi_map = read_roi_map_option(args.roi_map, console)
    if isinstance(roi_map, int):
        return roi_map
    root: Path = args.root
    problems: list[str] = []
    sources: list[StructureSetNames] = []
    warnings: list[str] = []
    for item in _structure_sets(root):
        if isinstance(item, StructureSetNames):
            sources.append(item)
        elif isinstance(item, str):
            problems.append(item)
        else:  # a folder not read (a symbolic link that loops)
            warnings.append(f"skipped {item.path}: {item.reason}")
    if not sources:
        raise RtmaskError(f"{root}: no RT Structure Set found (is this the right folder?)")
    counts = count_names(sources, roi_map)
    if roi_map is not None:
        problems.extend(map_conflicts(sources, roi_map))
    if args.suggest_map is not None:
        _write_text(args.suggest_map, suggest_map(counts, sources))
        console.print(f"suggested ROI map: {escape(str(args.suggest_map))}")
    # Unmapped: matching no pattern (a name matching two canonical names is a conflict).
    rows = counts
    if args.unmapped and roi_map is not None:
        rows = [c for c in counts if not roi_map.matches(c.name)]
    if args.csv is not None:
        _write_csv(args.csv, rows)
    if args.json:
        sys.stdout.write(json_text({"names": [row.to_dict() for row in rows]}, indent=None) + "\n")
    elif not args.quiet:
        distinct = len({item.key for item in sources})
        _print_table(rows, distinct, roi_map is not None, args.unmapped)
    for warning in warnings:
        print_warning(console, warning)
    for problem in problems:
        print_error(console, problem)
    return 1 if problems else 0


def _structure_sets(root: Path) -> Iterator[StructureSetNames | str | SkippedFile]:
    """The structure sets of a folder tree (headers) or of an index file (its tables)."""
    if root.is_dir():
        return structure_sets_in_folder(root)
    if root.is_file():
        from rtmask.cohort import structure_sets_in_index  # noqa: PLC0415 - DuckDB when used

        return structure_sets_in_index(root)
    raise RtmaskError(
        f"{root}: no such folder or index; give the folder tree holding the archive "
        "or an index written by 'rtmask index'"
    )


def _write_text(path: Path, text: str) -> None:
    with atomic_path(path) as temporary:
        temporary.write_text(text, encoding="utf-8")


def _write_csv(path: Path, rows: Iterable[NameCount]) -> None:
    """The rows as CSV (UTF-8); text a spreadsheet would run as a formula gets a quote."""
    with atomic_path(path) as temporary, temporary.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(CSV_COLUMNS)
        for row in rows:
            values = row.to_dict()
            writer.writerow([_cell(values[column]) for column in CSV_COLUMNS])


def _cell(value: object) -> str:
    if value is None:
        return ""
    text = str(value)
    return "'" + text if isinstance(value, str) and text.startswith(("=", "+", "-", "@")) else text


def _print_table(
    rows: Sequence[NameCount], structure_sets: int, mapped: bool, unmapped: bool
) -> None:
    from rich.table import Table  # noqa: PLC0415 - not needed for --json

    out = Console(highlight=False, width=None if sys.stdout.isatty() else 200)
    what = "unmapped ROI names" if unmapped else "ROI names"
    table = Table(
        title=f"{len(rows)} {what} in {structure_sets} structure set(s)", title_justify="left"
    )
    columns = ["ROI name", "structure sets", "patients", "group", "TG-263"]
    if mapped:
        columns.append("canonical")
    for column in columns:
        numeric = column in ("structure sets", "patients")
        table.add_column(column, justify="right" if numeric else "left")
    for row in rows:
        cells = [
            escape(row.name),
            str(row.structure_sets),
            str(row.patients),
            escape(row.group),
            escape(row.tg263 or "-"),
        ]
        if mapped:
            cells.append(escape(row.canonical or "-"))
        table.add_row(*cells)
    out.print(table)
    if not rows:
        print_warning(out, f"no {what}")
