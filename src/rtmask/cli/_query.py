"""``rtmask query INDEX "SQL"``: run SQL on an index; a table, or CSV / JSON for machines."""

from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from rtmask.cohort import plain_value, run_query

__all__ = ["add_parser", "run"]


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:  # type: ignore[type-arg]
    """Register ``query``."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "query",
        help="run SQL on an index written by 'rtmask index'",
        description=(
            "Run one SQL statement (DuckDB's dialect) on INDEX, opened read-only, and print "
            "the result as a table, or as CSV or JSON on stdout. Exit code 1 when the query "
            "fails (one line with DuckDB's message)."
        ),
    )
    parser.add_argument("index", type=Path, metavar="INDEX", help="the .duckdb file")
    parser.add_argument(
        "sql", metavar="SQL", help='e.g. "SELECT ROIName, count(*) FROM rois GROUP BY 1"'
    )
    output = parser.add_mutually_exclusive_group()
    output.add_argument("--csv", action="store_true", help="CSV with a header row on stdout")
    output.add_argument(
        "--json",
        action="store_true",
        help='{"columns": [...], "rows": [{column: value}]} on stdout (dates as ISO text)',
    )
    return parser


def _cell(value: Any) -> str:
    """A value as CSV / table text: NULL empty, lists and structures as JSON."""
    plain = plain_value(value)
    if plain is None:
        return ""
    if isinstance(plain, (list, dict)):
        return json.dumps(plain)
    return str(plain)


def run(args: argparse.Namespace, console: Console) -> int:
    """Run the query and print its result."""
    result = run_query(args.index, args.sql)
    if args.json:
        rows = [
            dict(zip(result.columns, map(plain_value, row), strict=True)) for row in result.rows
        ]
        json.dump({"columns": list(result.columns), "rows": rows}, sys.stdout, allow_nan=False)
        sys.stdout.write("\n")
    elif args.csv:
        writer = csv.writer(sys.stdout, lineterminator="\n")
        writer.writerow(result.columns)
        writer.writerows([_cell(v) for v in row] for row in result.rows)
    else:
        table = Table(*result.columns, caption=f"{len(result.rows)} row(s)")
        for row in result.rows:
            table.add_row(*(_cell(v) for v in row))
        Console(highlight=False, soft_wrap=True).print(table)
    return 0
