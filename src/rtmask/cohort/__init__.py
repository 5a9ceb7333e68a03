"""Cohorts: the same per-case tasks over a whole archive, in a loop, a process pool or on Dask.

:func:`plan_archive` finds every structure set (and SEG) under a folder and plans one
:class:`CaseTask` per structure set (its output folder from :func:`case_folders`);
:func:`convert_archive` runs them with an executor (:class:`SerialExecutor`,
:class:`ProcessExecutor`, :class:`DaskExecutor`) and writes ``cases.csv``. A case is
finished when its ``summary.json`` exists: reruns skip it.
"""

from rtmask.cohort._archive import ArchivePlan, convert_archive, count_statuses, plan_archive
from rtmask.cohort._cases import CASES_CSV, CASES_PARQUET, read_cases, write_cases
from rtmask.cohort._executors import (
    DaskExecutor,
    Executor,
    ProcessExecutor,
    SerialExecutor,
    usable_cpus,
)
from rtmask.cohort._layout import LAYOUTS, CaseIdentity, Layout, case_folders
from rtmask.cohort._tasks import CASE_COLUMNS, CaseOptions, CaseResult, CaseTask, run_case

__all__ = [
    "CASES_CSV",
    "CASES_PARQUET",
    "CASE_COLUMNS",
    "LAYOUTS",
    "ArchivePlan",
    "CaseIdentity",
    "CaseOptions",
    "CaseResult",
    "CaseTask",
    "DaskExecutor",
    "Executor",
    "Layout",
    "ProcessExecutor",
    "SerialExecutor",
    "case_folders",
    "convert_archive",
    "count_statuses",
    "plan_archive",
    "read_cases",
    "run_case",
    "usable_cpus",
    "write_cases",
]
