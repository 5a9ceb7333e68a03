"""Cohorts: an index of a whole archive, and the same per-case tasks over all of it.

:func:`index_archive` walks a folder tree with :mod:`rtmask.discovery` (headers only) and
writes the DuckDB tables ``files``, ``series``, ``rt_objects`` and ``rois`` (columns named
by their DICOM keywords, as Imaging Data Commons' ``idc-index`` does); a rerun reads only
new or changed files. :func:`open_index` returns the DuckDB connection;
:func:`structure_sets_in_index` the ROI names of its structure sets (``rtmask names INDEX``).

:func:`plan_archive` finds every structure set (and SEG) under a folder and plans one
:class:`CaseTask` per structure set (its output folder from :func:`case_folders`);
:func:`convert_archive` runs them with an executor (:class:`SerialExecutor`,
:class:`ProcessExecutor`, :class:`DaskExecutor`) and writes ``cases.csv``. A case is
finished when its ``summary.json`` exists and lists no problem: reruns skip it (and convert
a failed case again).

:func:`build_dataset` turns an archive into a training data set (nnU-Net v2 or MONAI
layout; :class:`DatasetOptions`) with the same executors, all or nothing.

:func:`plan_dvh_table` plans one :class:`DvhTask` per structure set with a linked dose;
:func:`compute_dvh_table` runs them (:func:`run_dvh_case`) on the same executors and
writes the DVH table (one row per ROI, :data:`DVH_COLUMNS` and one column per statistic)
with :func:`write_dvh_table`, rewritten during the run so an interrupted run keeps the
cases it finished.

DuckDB and Dask are the optional extra ``rtmask[cohort]``, imported only when used.
"""

from rtmask.cohort._archive import ArchivePlan, convert_archive, count_statuses, plan_archive
from rtmask.cohort._cases import CASES_CSV, CASES_PARQUET, read_cases, write_cases
from rtmask.cohort._dataset import DatasetReport, build_dataset, patient_folds, region_labels
from rtmask.cohort._dataset_case import (
    DatasetCaseResult,
    failed_dataset_result,
    resample_linear,
    run_dataset_case,
)
from rtmask.cohort._dataset_plan import DatasetOptions, DatasetTask, case_identifiers, plan_dataset
from rtmask.cohort._dvh_table import (
    DvhPlan,
    compute_dvh_table,
    plan_dvh_table,
    sort_rows,
    write_dvh_table,
)
from rtmask.cohort._dvh_tasks import (
    DVH_COLUMNS,
    DvhOptions,
    DvhResult,
    DvhTask,
    failed_dvh_result,
    run_dvh_case,
)
from rtmask.cohort._executors import (
    DaskExecutor,
    Executor,
    ProcessExecutor,
    SerialExecutor,
    start_workers_early,
    usable_cpus,
)
from rtmask.cohort._index import IndexReport, export_parquet, index_archive
from rtmask.cohort._layout import LAYOUTS, CaseIdentity, Layout, case_folders
from rtmask.cohort._names import structure_sets_in_index
from rtmask.cohort._query import QueryResult, open_index, plain_value, run_query
from rtmask.cohort._schema import TABLES
from rtmask.cohort._tasks import CASE_COLUMNS, CaseOptions, CaseResult, CaseTask, run_case

__all__ = [
    "CASES_CSV",
    "CASES_PARQUET",
    "CASE_COLUMNS",
    "DVH_COLUMNS",
    "LAYOUTS",
    "TABLES",
    "ArchivePlan",
    "CaseIdentity",
    "CaseOptions",
    "CaseResult",
    "CaseTask",
    "DaskExecutor",
    "DatasetCaseResult",
    "DatasetOptions",
    "DatasetReport",
    "DatasetTask",
    "DvhOptions",
    "DvhPlan",
    "DvhResult",
    "DvhTask",
    "Executor",
    "IndexReport",
    "Layout",
    "ProcessExecutor",
    "QueryResult",
    "SerialExecutor",
    "build_dataset",
    "case_folders",
    "case_identifiers",
    "compute_dvh_table",
    "convert_archive",
    "count_statuses",
    "export_parquet",
    "failed_dataset_result",
    "failed_dvh_result",
    "index_archive",
    "open_index",
    "patient_folds",
    "plain_value",
    "plan_archive",
    "plan_dataset",
    "plan_dvh_table",
    "read_cases",
    "region_labels",
    "resample_linear",
    "run_case",
    "run_dataset_case",
    "run_dvh_case",
    "run_query",
    "sort_rows",
    "start_workers_early",
    "structure_sets_in_index",
    "usable_cpus",
    "write_cases",
    "write_dvh_table",
]
