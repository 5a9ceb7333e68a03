"""DVH statistics of a whole archive: plan one task per structure set with a dose, write the table.

Planning reads headers only (discovery's scan). Each RTSTRUCT with a linked dose
(:func:`rtmask.convert.choose_dose`: the PLAN dose, else the BEAM doses summed) is one
:class:`~rtmask.cohort._dvh_tasks.DvhTask`; a structure set without a linked dose is not a
failure, it is listed as skipped (it has no DVH to compute). Each case takes its
prescription dose (for V<x>% statistics) from the RT Plan linked to its dose
(:func:`linked_plan`), unless one prescription is given for all. The table is CSV, or Parquet
(written with DuckDB, the ``cohort`` extra) when its name ends in ``.parquet``; written
atomically, missing values as an empty cell (CSV) or NULL (Parquet).
"""

from __future__ import annotations

import csv
import io
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from rtmask._atomic import atomic_path
from rtmask._optional import import_optional
from rtmask.cohort._dvh_tasks import (
    DVH_COLUMNS,
    PRESCRIPTION_COLUMNS,
    Cell,
    DvhOptions,
    DvhResult,
    DvhTask,
)
from rtmask.cohort._executors import Executor
from rtmask.cohort._rows import scanned_relative
from rtmask.convert import DoseSelection, choose_dose
from rtmask.discovery import Inventory, RTObject, scan

__all__ = [
    "DvhPlan",
    "compute_dvh_table",
    "linked_plan",
    "plan_dvh_table",
    "sort_rows",
    "write_dvh_table",
]

#: Skipped-file kinds that may hide a structure set or a dose: each is a failure line.
UNREADABLE_KINDS = frozenset({"unreadable", "truncated"})
#: Seconds between rewrites of the table during a run (as ``cases.csv``).
REFRESH_S = 10.0
_INTEGER_COLUMNS = frozenset({"roi_number"})
_TEXT_COLUMNS = frozenset(
    {
        "patient_id",
        "structure_set",
        "dose",
        "dose_choice",
        "roi_name",
        "canonical",
        "prescription_source",
    }
)


@dataclass(frozen=True, slots=True, kw_only=True)
class DvhPlan:
    """The tasks, the structure sets without a dose, and the files that could not be read."""

    tasks: tuple[DvhTask, ...]
    without_dose: tuple[str, ...]  # structure sets (relative to ROOT) with no linked dose
    unreadable: tuple[str, ...]  # one message per file discovery could not read
    warnings: tuple[str, ...] = ()  # folders not read: symbolic links that loop


def plan_dvh_table(
    root: Path, options: DvhOptions, *, inventory: Inventory | None = None
) -> DvhPlan:
    """One task per structure set under ``root`` that discovery links a dose to.

    A structure set whose SOPInstanceUID was met in an earlier path is a copy: not
    computed twice.

    Parameters
    ----------
    root
        The archive (headers only are read here).
    options
        How every case's DVHs are computed.
    inventory
        ``scan(root)`` when already made (else it is made here).

    Returns
    -------
    DvhPlan
        The tasks (for :func:`compute_dvh_table` or any executor running
        :func:`~rtmask.cohort.run_dvh_case`), the structure sets without a linked dose and
        the files that could not be read.
    """
    base = root if root.is_dir() else root.parent
    if inventory is None:
        inventory = scan(root)
    tasks: list[DvhTask] = []
    without: list[str] = []
    seen: set[str] = set()
    for rt_object in sorted(inventory.structure_sets, key=lambda o: scanned_relative(o.path, base)):
        uid = rt_object.sop_instance_uid
        if uid and uid in seen:
            continue
        if uid:
            seen.add(uid)
        relative = scanned_relative(rt_object.path, base)
        dose = choose_dose(rt_object, inventory)
        if dose is None:
            without.append(relative)
            continue
        plan, plan_note = None, ""
        if options.prescription_gy is None:  # given: the same for every case
            plan, plan_note = linked_plan(rt_object, dose, inventory)
        tasks.append(
            DvhTask(
                source=rt_object.path,
                structure_set=relative,
                patient_id=rt_object.patient_id or "",
                dose=dose,
                dose_files=";".join(scanned_relative(path, base) for path in dose.files),
                options=options,
                plan=None if plan is None else plan.path,
                plan_file="" if plan is None else scanned_relative(plan.path, base),
                plan_note=plan_note,
            )
        )
    unreadable = tuple(
        f"{skipped.path}: {skipped.reason}"
        for skipped in inventory.skipped
        if skipped.kind in UNREADABLE_KINDS
    )
    warnings = tuple(
        f"skipped {skipped.path}: {skipped.reason}"
        for skipped in inventory.skipped
        if skipped.kind == "symlink_loop"
    )
    return DvhPlan(
        tasks=tuple(tasks), without_dose=tuple(without), unreadable=unreadable, warnings=warnings
    )


def linked_plan(
    structure_set: RTObject, dose: DoseSelection, inventory: Inventory
) -> tuple[RTObject | None, str]:
    """The RT Plan a case takes its prescription from, or None and why not (in words).

    The plan the chosen dose file(s) reference (ReferencedRTPlanSequence) when it lies
    under the archive root; when the dose references no plan (nothing but structure
    sets), the one plan that references the structure set. Several candidate plans, or a
    referenced plan that is not there, give None: a guess could take another plan's
    prescription.
    """
    plans: dict[str, RTObject] = {}
    for plan in sorted(inventory.plans, key=lambda p: str(p.path)):
        if plan.sop_instance_uid:
            plans.setdefault(plan.sop_instance_uid, plan)  # a copy: the first path
    files = set(dose.files)
    referenced = dict.fromkeys(
        uid for d in inventory.doses if d.path in files for uid in d.referenced_rt_uids
    )
    found = [plans[uid] for uid in referenced if uid in plans]
    if len(found) == 1:
        return found[0], ""
    if found:
        names = ", ".join(p.path.name for p in found)
        return None, f"the dose references {len(found)} RT Plans ({names}), not one"
    structure_uids = {s.sop_instance_uid for s in inventory.structure_sets}
    missing = [uid for uid in referenced if uid not in structure_uids]
    if missing:
        return None, f"the RT Plan the dose references ({missing[0]}) is not under ROOT"
    uid = structure_set.sop_instance_uid
    mine = [p for p in plans.values() if uid and uid in p.referenced_rt_uids]
    if len(mine) == 1:
        return mine[0], ""
    if mine:
        names = ", ".join(p.path.name for p in mine)
        return None, (
            f"the dose references no RT Plan and {len(mine)} reference the structure set "
            f"({names}), not one"
        )
    return None, "no RT Plan is linked (the dose references none, none the structure set)"


def compute_dvh_table(
    plan: DvhPlan,
    table: Path,
    executor: Executor,
    *,
    progress: Callable[[DvhResult], None] | None = None,
    refresh_s: float = REFRESH_S,
) -> list[DvhResult]:
    """Run the plan's tasks with ``executor`` and write their rows to ``table``.

    The table is rewritten (atomically, in full) every ``refresh_s`` seconds with the
    cases done so far, and when the run is interrupted (Ctrl-C, an error of the executor)
    before the exception goes on: an interrupted run leaves a complete table of the cases
    it finished, never a half-written file. The last write holds every case.

    Parameters
    ----------
    plan
        :func:`plan_dvh_table`'s plan.
    table
        ``.csv``, or ``.parquet`` (needs DuckDB, ``rtmask[cohort]``).
    executor
        Runs :func:`~rtmask.cohort.run_dvh_case` (``SerialExecutor(function=run_dvh_case)``,
        a :class:`~rtmask.cohort.ProcessExecutor` or :class:`~rtmask.cohort.DaskExecutor`
        given the same function and :func:`~rtmask.cohort.failed_dvh_result`).
    progress
        Called with each case's result as it arrives.
    refresh_s
        Seconds between rewrites during the run.

    Returns
    -------
    list of DvhResult
        One per task, in the order they finished.
    """
    stats = plan.tasks[0].options.stats if plan.tasks else ()
    results: list[DvhResult] = []
    last_write = time.monotonic()

    def on_result(index: int, result: DvhResult) -> None:
        nonlocal last_write
        results.append(result)
        if progress is not None:
            progress(result)
        if time.monotonic() - last_write >= refresh_s:
            write_dvh_table(sort_rows(results), table, stats)
            last_write = time.monotonic()

    finished = False
    try:
        executor.run(plan.tasks, on_result)
        finished = True
    finally:
        if not finished and results:  # keep what was computed, then let the error go on
            write_dvh_table(sort_rows(results), table, stats)
    write_dvh_table(sort_rows(results), table, stats)
    return results


def sort_rows(results: Sequence[DvhResult]) -> list[dict[str, Cell]]:
    """Every result's rows, ordered by structure set, then ROI number."""
    rows = [row for result in results for row in result.rows]
    return sorted(rows, key=lambda r: (str(r["structure_set"]), int(r["roi_number"] or 0)))


def write_dvh_table(rows: Sequence[dict[str, Cell]], path: Path, stats: Sequence[str]) -> Path:
    """Write the rows to ``path`` atomically: Parquet when it ends in ``.parquet``, else CSV.

    Parameters
    ----------
    rows
        Table rows (:func:`sort_rows`): :data:`~rtmask.cohort.DVH_COLUMNS`, the
        statistics and ``prescription_gy``, ``prescription_source``; doses in Gy, volumes
        in cm3.
    path
        The table; a missing value is an empty CSV cell or a Parquet NULL.
    stats
        The statistics' column names, after the fixed columns and before the prescription
        (its dose in Gy and where it comes from).

    Returns
    -------
    pathlib.Path
        ``path``.
    """
    columns = (*DVH_COLUMNS, *stats, *PRESCRIPTION_COLUMNS)
    if path.suffix.lower() == ".parquet":
        duckdb = import_optional("duckdb", extra="cohort", feature="Parquet DVH tables")
        types = ", ".join(f'"{name}" {_sql_type(name)}' for name in columns)
        with duckdb.connect() as connection, atomic_path(path) as temporary:
            connection.execute(f"CREATE TABLE dvh ({types})")
            if rows:
                marks = ", ".join("?" for _ in columns)
                connection.executemany(
                    f"INSERT INTO dvh VALUES ({marks})",
                    [tuple(row.get(name) for name in columns) for row in rows],
                )
            literal = str(temporary).replace("'", "''")
            connection.execute(f"COPY dvh TO '{literal}' (FORMAT PARQUET)")
        return path
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow(["" if row.get(name) is None else row[name] for name in columns])
    with atomic_path(path) as temporary:
        temporary.write_text(buffer.getvalue(), encoding="utf-8", newline="")
    return path


def _sql_type(column: str) -> str:
    if column in _INTEGER_COLUMNS:
        return "INTEGER"
    return "VARCHAR" if column in _TEXT_COLUMNS else "DOUBLE"
