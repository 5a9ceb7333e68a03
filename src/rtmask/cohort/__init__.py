"""Cohorts: an index of a whole archive in DuckDB, queried with SQL.

:func:`index_archive` walks a folder tree with :mod:`rtmask.discovery` (headers only) and
writes the tables ``files``, ``series``, ``rt_objects`` and ``rois`` (columns named by
their DICOM keywords, as Imaging Data Commons' ``idc-index`` does); a rerun reads only
new or changed files. :func:`open_index` returns the DuckDB connection. DuckDB is the
optional extra ``rtmask[cohort]``, imported only when an index is opened.
"""

from rtmask.cohort._index import IndexReport, export_parquet, index_archive
from rtmask.cohort._query import QueryResult, open_index, plain_value, run_query
from rtmask.cohort._schema import TABLES

__all__ = [
    "TABLES",
    "IndexReport",
    "QueryResult",
    "export_parquet",
    "index_archive",
    "open_index",
    "plain_value",
    "run_query",
]
