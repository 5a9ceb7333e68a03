"""``rtmask convert ROOT -o OUT`` for an archive: every structure set, in parallel or on Dask."""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from rtmask.cli._output import print_error, progress_bar
from rtmask.cohort import (
    CASES_CSV,
    CaseOptions,
    CaseResult,
    DaskExecutor,
    Executor,
    Layout,
    ProcessExecutor,
    SerialExecutor,
    convert_archive,
    count_statuses,
    plan_archive,
)
from rtmask.discovery import ImageSeries, Inventory

__all__ = ["MAX_ERRORS", "archive_command"]

#: Failed cases printed one per line; the rest are in cases.csv.
MAX_ERRORS = 20


def _executor(jobs: int, scheduler: str | None, root: Path, out: Path) -> Executor:
    if scheduler is not None:
        return DaskExecutor(scheduler, root, out)
    if jobs == 1:
        return SerialExecutor()
    return ProcessExecutor(jobs)


def archive_command(
    root: Path,
    out: Path,
    options: CaseOptions,
    *,
    console: Console,
    jobs: int,
    scheduler: str | None = None,
    layout: Layout | None = None,
    inventory: Inventory | None = None,
    image: ImageSeries | None = None,
) -> int:
    """Convert every structure set under ``root`` into the cohort layout; the exit code.

    0 when no case failed, 1 otherwise (failed cases are rows of ``cases.csv`` and error
    lines; they never stop the others).
    """
    plan = plan_archive(root, out, options, layout=layout, inventory=inventory, image=image)
    total = len(plan.tasks) + len(plan.rows)
    where = f"on the Dask cluster {scheduler}" if scheduler else f"in {jobs} process(es)"
    console.print(
        f"{len(plan.tasks)} structure set(s) to convert under {escape(str(root))} {where} "
        f"-> {escape(str(out))} ({plan.layout} layout)",
        soft_wrap=True,
    )
    counts = {"converted": 0, "failed": 0, "skipped": 0}
    with progress_bar(
        console,
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[failed]} failed  {task.fields[rate]} cases/min"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    ) as progress:
        bar = progress.add_task("cases", total=total, failed=0, rate="-")
        start = time.monotonic()

        def advance(result: CaseResult) -> None:
            counts[result.status] = counts.get(result.status, 0) + 1
            done = sum(counts.values())
            rate = 60 * done / max(time.monotonic() - start, 1e-6)
            progress.update(bar, advance=1, failed=counts["failed"], rate=f"{rate:.1f}")

        rows = convert_archive(plan, out, _executor(jobs, scheduler, root, out), progress=advance)
    return _report(rows, out, console)


def _report(rows: Sequence[CaseResult], out: Path, console: Console) -> int:
    counts = count_statuses(rows)
    failed = [row for row in rows if row.status == "failed"]
    for row in failed[:MAX_ERRORS]:
        print_error(console, row.error or f"{row.structure_set}: failed")
    if len(failed) > MAX_ERRORS:
        print_error(
            console, f"... and {len(failed) - MAX_ERRORS} more failed cases: see {out / CASES_CSV}"
        )
    console.print(
        f"converted {counts['converted']}, skipped {counts['skipped']}, failed "
        f"{counts['failed']} of {len(rows)} structure set(s); list: {escape(str(out / CASES_CSV))}",
        soft_wrap=True,
    )
    return 1 if failed else 0
