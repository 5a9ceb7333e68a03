"""``rtmask dvh ROOT --table dvh.csv``: DVH statistics of every structure set of an archive."""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeRemainingColumn

from rtmask.cli._options import read_roi_map_option, scheduler_address
from rtmask.cli._output import print_error, print_warning, progress_bar, reword

if TYPE_CHECKING:  # the cohort layer loads only for --table: `rtmask dvh RS RD` stays quick
    from rtmask.cohort._dvh_table import DvhPlan
    from rtmask.cohort._dvh_tasks import DvhResult
    from rtmask.cohort._executors import Executor

__all__ = ["MAX_ERRORS", "add_table_options", "check_table_usage", "run_table"]

#: Failures printed one per line.
MAX_ERRORS = 20


def add_table_options(parser: argparse.ArgumentParser) -> None:
    """``--table``, ``--jobs``, ``--scheduler``: DVH statistics of a whole archive."""
    parser.add_argument(
        "--table",
        type=Path,
        metavar="FILE",
        help="with a folder ROOT: one row per ROI of every structure set with a linked dose "
        "(PLAN dose, else the BEAM doses summed) in FILE, CSV or .parquet (rtmask[cohort])",
    )
    runners = parser.add_mutually_exclusive_group()
    runners.add_argument(
        "--jobs",
        type=int,
        metavar="N",
        help="with --table: N processes (default: the usable CPUs)",
    )
    runners.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        type=scheduler_address,
        help="with --table: run the cases on a Dask cluster, tcp://HOST:PORT or local:N; "
        "ROOT and the table's folder must be on a file system the workers share",
    )


def check_table_usage(args: argparse.Namespace) -> str:
    """The usage error of an archive run ("" when the arguments fit)."""
    root = Path(args.structure_set)
    if not root.is_dir():
        return f"--table takes a folder ROOT; {root} is not a folder"
    if args.table is None:
        return f"{root} is a folder: give --table FILE (.csv or .parquet) for its DVH table"
    if args.dose is not None:
        return "ROOT --table takes no DOSE: the doses are found under ROOT"
    for option in ("csv", "json", "plot", "embedded"):
        if getattr(args, option):
            return f"--{option} is for one structure set and dose, not with --table"
    if args.jobs is not None and args.jobs < 1:
        return "--jobs takes a positive number of processes"
    return ""


def _executor(args: argparse.Namespace, root: Path, out: Path, jobs: int) -> Executor:
    from rtmask.cohort._dvh_tasks import failed_dvh_result, run_dvh_case  # noqa: PLC0415
    from rtmask.cohort._executors import (  # noqa: PLC0415
        DaskExecutor,
        ProcessExecutor,
        SerialExecutor,
    )

    if args.scheduler is not None:
        return DaskExecutor(
            args.scheduler, root, out, function=run_dvh_case, failure=failed_dvh_result
        )
    if jobs == 1:
        return SerialExecutor(function=run_dvh_case)
    return ProcessExecutor(jobs, function=run_dvh_case, failure=failed_dvh_result)


def run_table(
    args: argparse.Namespace, console: Console, stats: tuple[str, ...], shape: dict[str, Any]
) -> int:
    """Compute the table; 0 when every case worked, 1 when any failed (the rest is written).

    ``shape``: :func:`rtmask.get_dvh`'s ``limit_gy``, ``slab_thickness_mm`` and
    ``interpolate`` for every case.
    """
    from rtmask.cohort._dvh_table import compute_dvh_table, plan_dvh_table  # noqa: PLC0415
    from rtmask.cohort._dvh_tasks import DvhOptions, run_dvh_case  # noqa: PLC0415
    from rtmask.cohort._executors import start_workers_early, usable_cpus  # noqa: PLC0415

    jobs = args.jobs or usable_cpus()
    if args.scheduler is None and jobs > 1:
        start_workers_early(run_dvh_case)  # its imports overlap the archive's scan
    roi_map = read_roi_map_option(args.roi_map, console)
    if isinstance(roi_map, int):
        return roi_map
    root = Path(args.structure_set)
    table = Path(args.table)
    options = DvhOptions(
        stats=stats,
        roi_patterns=tuple(args.roi or ()),
        roi_map=roi_map,
        resolution_mm=args.resolution,
        end_caps=args.end_caps,
        prescription_gy=args.prescription,
        count_outside=args.count_outside,
        prescription_source="--prescription",
        **shape,
    )
    plan = plan_dvh_table(root, options)
    where = f"on the Dask cluster {args.scheduler}" if args.scheduler else f"in {jobs} process(es)"
    console.print(
        f"{len(plan.tasks)} structure set(s) with a dose under {escape(str(root))} {where}",
        soft_wrap=True,
    )
    with progress_bar(
        console,
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
    ) as progress:
        bar = progress.add_task("DVH tables", total=len(plan.tasks))

        def advance(result: DvhResult) -> None:
            progress.advance(bar)

        executor = _executor(args, root, table.parent, jobs)
        results = compute_dvh_table(plan, table, executor, progress=advance)
    rows = sum(len(result.rows) for result in results)
    return _report(plan, results, rows, table, console, wording=getattr(args, "wording", {}))


def _report(
    plan: DvhPlan,
    results: list[DvhResult],
    rows: int,
    table: Path,
    console: Console,
    *,
    wording: Mapping[str, str],
) -> int:
    unreadable, without_dose = plan.unreadable, plan.without_dose
    for warning in plan.warnings:
        print_warning(console, warning)
    errors = [*unreadable]
    for result in sorted(results, key=lambda r: r.structure_set):
        errors.extend(result.errors)
    for result in sorted(results, key=lambda r: r.structure_set):
        for warning in result.warnings:
            print_warning(console, reword(warning, wording))
    for message in errors[:MAX_ERRORS]:
        print_error(console, reword(message, wording))
    if len(errors) > MAX_ERRORS:
        print_error(console, f"... and {len(errors) - MAX_ERRORS} more failures")
    for relative in without_dose:
        console.print(f"skipped {escape(relative)}: no RT Dose linked to it", soft_wrap=True)
    failed = sum(result.status == "failed" for result in results)
    with_rows = sum(bool(result.rows) for result in results)
    console.print(
        f"{rows} ROI row(s) from {with_rows} structure set(s) written to "
        f"{escape(str(table))}; {failed} with failures, {len(without_dose)} without a dose"
        + (f", {len(unreadable)} unreadable file(s)" if unreadable else ""),
        soft_wrap=True,
    )
    return 1 if errors else 0
