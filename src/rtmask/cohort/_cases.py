"""``cases.csv`` and ``cases.parquet``: one row per structure set of a run, written atomically."""

from __future__ import annotations

import csv
import importlib
import io
from collections.abc import Sequence
from pathlib import Path

from rtmask._atomic import atomic_path
from rtmask.cohort._tasks import CASE_COLUMNS, CaseResult

__all__ = ["CASES_CSV", "CASES_PARQUET", "read_cases", "write_cases"]

CASES_CSV = "cases.csv"
CASES_PARQUET = "cases.parquet"
_PARQUET_TYPES = {"rois_written": "INTEGER", "seconds": "DOUBLE"}


def write_cases(
    results: Sequence[CaseResult], out: Path, *, parquet: bool = True
) -> tuple[Path, ...]:
    """Write ``out/cases.csv`` (and ``cases.parquet`` when DuckDB is installed), atomically.

    Parameters
    ----------
    results
        The rows, in the order to write them.
    out
        The output folder (created when missing).
    parquet
        Also write Parquet when DuckDB (``rtmask[cohort]``) can be imported.

    Returns
    -------
    tuple of pathlib.Path
        The files written.
    """
    out.mkdir(parents=True, exist_ok=True)
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=CASE_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for result in results:
        writer.writerow(result.row())
    csv_path = out / CASES_CSV
    with atomic_path(csv_path) as temporary:
        temporary.write_text(buffer.getvalue(), encoding="utf-8", newline="")
    if not parquet:
        return (csv_path,)
    try:
        duckdb = importlib.import_module("duckdb")
    except ImportError:
        return (csv_path,)
    parquet_path = out / CASES_PARQUET
    columns = ", ".join(f"{name} {_PARQUET_TYPES.get(name, 'VARCHAR')}" for name in CASE_COLUMNS)
    with duckdb.connect() as connection, atomic_path(parquet_path) as temporary:
        connection.execute(f"CREATE TABLE cases ({columns})")
        rows = [tuple(result.row()[name] for name in CASE_COLUMNS) for result in results]
        if rows:
            marks = ", ".join("?" for _ in CASE_COLUMNS)
            connection.executemany(f"INSERT INTO cases VALUES ({marks})", rows)
        literal = str(temporary).replace("'", "''")
        connection.execute(f"COPY cases TO '{literal}' (FORMAT PARQUET)")
    return csv_path, parquet_path


def read_cases(path: Path) -> list[dict[str, str]]:
    """Read a ``cases.csv`` back (every value a string)."""
    with path.open(encoding="utf-8", newline="") as stream:
        return list(csv.DictReader(stream))
