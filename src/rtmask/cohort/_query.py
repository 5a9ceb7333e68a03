"""Opening an index and running SQL on it, with values made safe for CSV and JSON."""

from __future__ import annotations

import datetime as dt
import decimal
import math
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rtmask._errors import InvalidInputError
from rtmask.cohort._index import _duckdb, _tables, connect
from rtmask.cohort._schema import INFO_TABLE

__all__ = ["QueryResult", "open_index", "plain_value", "run_query"]


def open_index(path: Path | str, *, read_only: bool = True) -> Any:
    """Open an index written by ``rtmask index`` (or :func:`index_archive`).

    Parameters
    ----------
    path
        The ``.duckdb`` file.
    read_only
        Open it read-only (default), so several readers can share it.

    Returns
    -------
    duckdb.DuckDBPyConnection
        A DuckDB connection: ``con.sql("SELECT ... FROM rois")``; close it when done.

    Raises
    ------
    InvalidInputError
        The file is missing, not a DuckDB database, a DuckDB database without rtmask's
        tables, or locked by a writer.
    MissingDependencyError
        DuckDB is not installed (``pip install 'rtmask[cohort]'``).
    """
    con = connect(path, read_only=read_only)
    if INFO_TABLE not in _tables(con):
        con.close()
        raise InvalidInputError(
            f"{path}: a DuckDB database but not an rtmask index (it has none of its tables); "
            f"create one with 'rtmask index ROOT -o {path}'"
        )
    return con


@dataclass(frozen=True, slots=True)
class QueryResult:
    """Column names and rows of a query, values as DuckDB returned them."""

    columns: tuple[str, ...]
    rows: list[tuple[Any, ...]]


def run_query(path: Path | str, sql: str) -> QueryResult:
    """Run one SQL statement on an index (read-only) and fetch every row.

    Raises
    ------
    InvalidInputError
        The index cannot be opened, or the SQL fails (one line: DuckDB's message).
    """
    duckdb = _duckdb()
    con = open_index(path)
    try:
        try:
            cursor = con.execute(sql)
            columns = tuple(d[0] for d in cursor.description or ())
            rows = cursor.fetchall() if columns else []
        except duckdb.Error as error:
            message = " ".join(str(error).split())
            raise InvalidInputError(f"{path}: the query failed: {message}") from error
    finally:
        con.close()
    return QueryResult(columns, rows)


def plain_value(value: Any) -> Any:
    """A JSON-safe value: dates and times as ISO strings, NaN and infinities as None."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, (dt.date, dt.time)):  # datetime is a date
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    if isinstance(value, decimal.Decimal):
        return plain_value(float(value))
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value).hex()
    if isinstance(value, (list, tuple)):
        return [plain_value(v) for v in value]
    if isinstance(value, dict):
        return {str(k): plain_value(v) for k, v in value.items()}
    return value
