"""``rtmask dataset ROOT -o OUT``: an nnU-Net v2 or MONAI training data set from an archive."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from rich.console import Console
from rich.markup import escape

from rtmask.cli._options import (
    add_output_option,
    add_roi_map_option,
    read_roi_map_option,
    scheduler_address,
)
from rtmask.cli._output import print_error, print_warning, progress_bar
from rtmask.cohort import (
    CASES_CSV,
    CaseResult,
    DaskExecutor,
    DatasetCaseResult,
    DatasetOptions,
    DatasetReport,
    Executor,
    ProcessExecutor,
    SerialExecutor,
    build_dataset,
    failed_dataset_result,
    run_dataset_case,
    start_workers_early,
    usable_cpus,
)
from rtmask.cohort._dataset_plan import DATASET_FORMATS, MISSING_POLICIES, OVERLAP_POLICIES
from rtmask.discovery import scan
from rtmask.errors import InvalidInputError
from rtmask.raster import CombinationRule

__all__ = ["CLI_WORDING", "add_parser", "run"]

#: The library's keyword hints in this command's options (see ``reword``).
CLI_WORDING = {
    "force=True": "--force",
    "dataset_id=": "--id",
    "labels=": "--labels",
    "roi_map=": "--roi-map",
    "overlap=": "--overlap ",
    "missing=": "--missing ",
    "channels=": "--channel",
    "format=": "--format",
    "folds=": "--folds",
    "name=": "--name",
}
#: Excluded and failed cases printed one per line; the rest are in cases.csv.
MAX_LINES = 20


def _names(text: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in text.split(",") if part.strip())


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:  # type: ignore[type-arg]
    """Register ``dataset``."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "dataset",
        help="build an nnU-Net v2 or MONAI training data set from an archive",
        description=(
            "Turn every structure set under ROOT into a training case: OUT/Dataset<ID>_<NAME>/ "
            "with imagesTr/<case>_0000.nii.gz, labelsTr/<case>.nii.gz (uint8, label i = the "
            "i-th of --labels, on the image's grid), dataset.json and splits_final.json "
            "(patient-disjoint folds); --id and --name are required for it. --format monai: "
            "images/, labels/ and datalist.json directly in OUT (no --id or --name needed). "
            "OUT/cases.csv lists every structure set as included, excluded or failed."
        ),
    )
    parser.add_argument("root", type=Path, metavar="ROOT", help="the archive's folder")
    add_output_option(parser, "OUT", "the folder receiving the data set and cases.csv")
    parser.add_argument("--format", choices=DATASET_FORMATS, default="nnunet")
    parser.add_argument(
        "--labels",
        type=_names,
        required=True,
        metavar="A,B,...",
        help="the label names, numbered 1, 2, ... in this order (ROI names, or canonical "
        "names with --roi-map)",
    )
    parser.add_argument(
        "--id", type=int, metavar="NNN", help="nnU-Net data set id (required with --format nnunet)"
    )
    parser.add_argument(
        "--name",
        help="data set name (letters, digits, _ -): required with --format nnunet; with "
        "--format monai optional, written into datalist.json",
    )
    add_roi_map_option(parser, help_text="map ROI names onto the canonical names of --labels")
    parser.add_argument(
        "--overlap",
        choices=OVERLAP_POLICIES,
        default="error",
        help="overlapping labels: leave the case out (error, default), the earlier of "
        "--labels keeps the voxel (priority), or one value per combination (regions)",
    )
    parser.add_argument(
        "--missing",
        choices=MISSING_POLICIES,
        default="skip",
        help="a case without one of the labels: leave it out (skip, default), keep it and "
        "list the absent labels in its JSON (empty), or write nothing (error)",
    )
    parser.add_argument(
        "--channel",
        action="append",
        metavar="MODALITY",
        help="input channels in order (default: CT); further ones are series of the same "
        "frame of reference, resampled linearly onto the first one's grid",
    )
    parser.add_argument(
        "--test",
        type=_names,
        default=(),
        metavar="ID,ID,...",
        help="PatientIDs whose cases go to the test set (imagesTs)",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the folds (default 0)")
    parser.add_argument(
        "--rule",
        choices=[r.value for r in CombinationRule],
        default="auto",
        help="how several contours on one plane combine (default: auto)",
    )
    runners = parser.add_mutually_exclusive_group()
    runners.add_argument(
        "--jobs",
        type=int,
        metavar="N",
        help="cases converted in N processes, one CPU each (default: the usable CPUs)",
    )
    runners.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        type=scheduler_address,
        help="run the cases on a Dask cluster: tcp://HOST:PORT of a running scheduler, or "
        "local:N for N local workers; ROOT and OUT must be on a file system the workers share",
    )
    parser.add_argument(
        "--force",
        action="store_true",
        help="replace a data set of the same id in OUT (nnunet), or the MONAI data set in OUT",
    )
    return parser


def _executor(args: argparse.Namespace) -> Executor:
    if args.scheduler is not None:
        return DaskExecutor(
            args.scheduler,
            args.root,
            args.output,
            function=run_dataset_case,
            failure=failed_dataset_result,
        )
    if args.jobs == 1:
        return SerialExecutor(function=run_dataset_case)
    return ProcessExecutor(args.jobs, function=run_dataset_case, failure=failed_dataset_result)


def run(args: argparse.Namespace, console: Console) -> int:
    """Build the data set."""
    if args.jobs is None:
        args.jobs = 1 if args.scheduler is not None else usable_cpus()
    elif args.jobs < 1:
        print_error(
            console, f"--jobs {args.jobs}: give at least 1 (this machine has {usable_cpus()})"
        )
        return 2
    if args.format == "nnunet" and (args.id is None or args.name is None):
        missing = [o for o, v in (("--id NNN", args.id), ("--name NAME", args.name)) if v is None]
        print_error(
            console,
            f"--format nnunet needs {' and '.join(missing)} (the data set folder is "
            "OUT/Dataset<ID>_<NAME>); --format monai needs neither",
        )
        return 2
    if args.format == "monai" and args.id is not None:
        print_warning(console, f"--id {args.id}: nnU-Net's data set id, not used by --format monai")
    if not args.root.exists():
        print_error(console, f"{args.root}: no such file or folder; check ROOT")
        return 2
    roi_map = read_roi_map_option(args.roi_map, console)
    if isinstance(roi_map, int):
        return roi_map
    try:
        options = DatasetOptions(
            labels=args.labels,
            dataset_id=args.id,
            name=args.name,
            dataset_format=args.format,
            overlap=args.overlap,
            missing=args.missing,
            channels=tuple(args.channel or ("CT",)),
            test_patients=frozenset(args.test),
            roi_map=roi_map,
            seed=args.seed,
            rule=args.rule,
            force=args.force,
        )
    except InvalidInputError as error:
        from rtmask.cli._output import reword  # noqa: PLC0415 - only on this error

        print_error(console, reword(str(error), CLI_WORDING))
        return 2
    if args.scheduler is None and args.jobs > 1:
        start_workers_early(run_dataset_case)  # its imports overlap the archive's scan
    inventory = scan(args.root)
    for item in inventory.skipped:
        if item.kind == "symlink_loop":  # cases.csv lists files, not folders
            print_warning(console, f"skipped {item.path}: {item.reason}")
    with progress_bar(console) as bar:
        task = bar.add_task("cases", total=None)
        start, done = time.monotonic(), [0]

        def advance(result: DatasetCaseResult | CaseResult) -> None:
            done[0] += 1
            rate = 60 * done[0] / max(time.monotonic() - start, 1e-6)
            bar.update(task, advance=1, description=f"cases ({rate:.1f}/min)")

        report = build_dataset(
            args.root, args.output, options, _executor(args), inventory=inventory, progress=advance
        )
    return _report(report, args.output, console)


def _report(report: DatasetReport, out: Path, console: Console) -> int:
    rows = report.rows
    counts = {
        status: sum(r.status == status for r in rows)
        for status in ("included", "excluded", "failed")
    }
    for row in [r for r in rows if r.status == "failed"][:MAX_LINES]:
        print_error(console, row.error or f"{row.structure_set}: failed")
    for row in [r for r in rows if r.status == "excluded"][:MAX_LINES]:
        print_warning(console, f"{row.structure_set} left out: {row.error}")
    for result in report.results:
        for note in result.notes:
            print_warning(console, f"{result.case_id}: {note}")
    for note in report.notes:
        print_warning(console, note)
    where = escape(str(report.folder)) if report.folder is not None else "nothing written"
    console.print(
        f"included {counts['included']}, excluded {counts['excluded']}, failed "
        f"{counts['failed']} of {len(rows)} structure set(s) -> {where}; list: "
        f"{escape(str(out / CASES_CSV))}",
        soft_wrap=True,
    )
    return 1 if counts["failed"] or report.folder is None else 0
