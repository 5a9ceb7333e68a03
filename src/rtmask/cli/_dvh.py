"""``rtmask dvh STRUCTURE_SET DOSE``: DVH statistics of every ROI in an RT Dose."""

from __future__ import annotations

import argparse
import math
import sys
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from rich.console import Console
from rich.markup import escape

from rtmask._errors import InvalidInputError, RtmaskError
from rtmask.cli._dvh_table import add_table_options, check_table_usage, run_table
from rtmask.cli._options import (
    add_json_option,
    add_roi_map_option,
    add_roi_option,
    read_roi_map_option,
    roi_listing,
    roi_options,
    roi_patterns,
)
from rtmask.cli._output import json_text, located, print_error, print_warning, progress_bar, reword
from rtmask.cli._prescription import (
    PrescriptionChoice,
    add_plan_option,
    choose_prescription,
    embedded_stats_scale,
)
from rtmask.convert._select import select_rois
from rtmask.dose import boundary_dose_note, read_dose
from rtmask.dvh import DVH, EndCaps
from rtmask.dvh._embedded import EmbeddedDVH, read_embedded_dvhs
from rtmask.dvh._get_dvh import compute_roi_dvhs
from rtmask.dvh._report import plot_dvhs, stat_unit, write_dvh_entries_csv
from rtmask.rtstruct import ROI, StructureSet, read_rtstruct

if TYPE_CHECKING:
    from rtmask.names import RoiMap

__all__ = ["CLI_WORDING", "DEFAULT_STATS", "add_parser", "run"]

DEFAULT_STATS = ("D99", "D95", "D50", "D5", "D1", "D0.03cc")

#: The library's keyword hints in this command's options (see ``reword``).
CLI_WORDING = {
    "(prescription_gy=...)": "(--prescription GY)",
    "prescription_gy": "--prescription",
    "count_outside=True": "--count-outside",
    "give slab_thickness_mm to choose": "give --slab-thickness MM to choose",
    "resolution_mm": "--resolution MM",
    " or give a wider bin_width_gy": "",
}


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:  # type: ignore[type-arg]
    """Register ``dvh``."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "dvh",
        help="dose-volume histograms and their statistics",
        description=(
            "Compute the cumulative DVH of every ROI of STRUCTURE_SET that encloses volume "
            "(or of the --roi ones) in the RT Dose DOSE: partial-volume sampling on a "
            "calculation grid, trilinear dose interpolation, half-slice end caps, D-values "
            "interpolated on the curve. Doses in Gy, volumes in cm3."
        ),
    )
    parser.add_argument(
        "structure_set",
        type=Path,
        metavar="STRUCTURE_SET",
        help="RTSTRUCT file, or a folder ROOT with --table (every structure set under it)",
    )
    parser.add_argument(
        "dose", type=Path, nargs="?", metavar="DOSE", help="RTDOSE file (not with ROOT)"
    )
    add_roi_option(parser, numbers=True)
    add_roi_map_option(parser)
    parser.add_argument(
        "--stats",
        default=",".join(DEFAULT_STATS),
        metavar="LIST",
        help=(
            "comma-separated statistics: D<x> (Gy to x %% of the volume), D<x>cc, V<x>Gy "
            "(cm3), V<x>%% (cm3, needs a prescription: --prescription, the plan's, or with "
            "--table each case's), Dmin, Dmax, Dmean, Dmedian; "
            "V<x>Gy%% and V<x>%%%% give %% of the volume "
            f"(default: {','.join(DEFAULT_STATS)})"
        ),
    )
    add_json_option(parser)
    parser.add_argument(
        "--csv",
        type=Path,
        metavar="FILE",
        help="also write one CSV row per ROI to FILE (with the table or --json)",
    )
    parser.add_argument(
        "--plot", type=Path, metavar="FILE.png", help="draw the cumulative DVHs to a PNG file"
    )
    add_table_options(parser)
    parser.add_argument(
        "--resolution",
        type=float,
        metavar="MM",
        help="in-plane spacing of the calculation grid, mm (default: automatic)",
    )
    parser.add_argument(
        "--count-outside",
        action="store_true",
        help="count the part of an ROI outside the dose grid at 0 Gy (default: leave it out)",
    )
    add_shape_options(parser)
    parser.add_argument(
        "--end-caps",
        choices=[e.value for e in EndCaps],
        default=EndCaps.HALF.value,
        help="half: end planes reach half a gap outward (default); none: stop at them",
    )
    parser.add_argument(
        "--prescription",
        type=float,
        metavar="GY",
        help=(
            "prescription dose, Gy (for V<x>%% statistics and RELATIVE dose units; default: "
            "the plan's, see --plan)"
        ),
    )
    add_plan_option(parser)
    parser.add_argument(
        "--embedded",
        action="store_true",
        help="also show the DVHs the planning system embedded in DOSE (DVHSequence)",
    )
    parser.add_argument(
        "--embedded-dose-scale",
        type=float,
        metavar="F",
        help=(
            "multiply the embedded curves' doses (DVHData) by F to get Gy (default: 1 for "
            "DoseUnits GY, prescription/100 for RELATIVE)"
        ),
    )
    parser.add_argument(
        "--embedded-stats-percent-of",
        type=float,
        metavar="GY",
        help=(
            "the embedded DVHMinimumDose/MaximumDose/MeanDose are percent of GY although "
            "labelled GY (some planning systems; default: scaled like the curve)"
        ),
    )
    parser.set_defaults(dvh_parser=parser, late_positional="dose")
    return parser


def add_shape_options(parser: argparse.ArgumentParser) -> None:
    """``--limit``, ``--slab-thickness``, ``--interpolate``: :func:`rtmask.get_dvh`'s options."""
    parser.add_argument(
        "--limit",
        type=float,
        metavar="GY",
        help="dose cap, Gy: volume receiving more is counted at GY (Dmax is then GY; warned)",
    )
    parser.add_argument(
        "--slab-thickness",
        type=float,
        metavar="MM",
        help=(
            "thickness of an ROI drawn on a single plane, mm (default: the usual gap between "
            "the structure set's contour planes, else the dose grid's slice spacing; stated "
            "in a warning)"
        ),
    )
    interpolation = parser.add_mutually_exclusive_group()
    interpolation.add_argument(
        "--interpolate",
        action="store_true",
        help=(
            "interpolate the contour shape between neighbouring contour planes, splitting "
            "every gap into pieces of at most 1 mm (for coarse contour spacing)"
        ),
    )
    interpolation.add_argument(
        "--interpolate-planes",
        type=int,
        metavar="N",
        help="as --interpolate, with N interpolated planes in every gap",
    )


def shape_options(args: argparse.Namespace) -> dict[str, Any]:
    """:func:`rtmask.get_dvh`'s ``limit_gy``, ``slab_thickness_mm``, ``interpolate``, checked."""
    for option, value, unit in (
        ("--limit", args.limit, "Gy"),
        ("--slab-thickness", args.slab_thickness, "mm"),
    ):
        if value is not None and not (math.isfinite(value) and value > 0):
            raise RtmaskError(f"{option} must be a positive number of {unit}, got {value}")
    if args.interpolate_planes is not None and args.interpolate_planes < 0:
        raise RtmaskError(
            f"--interpolate-planes takes a number of planes >= 0, got {args.interpolate_planes}"
        )
    interpolate: int | bool = bool(args.interpolate)
    if args.interpolate_planes is not None:
        interpolate = int(args.interpolate_planes)
    return {
        "limit_gy": args.limit,
        "slab_thickness_mm": args.slab_thickness,
        "interpolate": interpolate,
    }


def _check_stats(
    text: str, prescription: float | None, *, per_case: bool = False
) -> tuple[str, ...]:
    """The ``--stats`` names, each checked on a small DVH; messages name the options.

    ``per_case``: each case may have its own prescription (``--table``), so V<x>%
    statistics are accepted without ``--prescription``.
    """
    if prescription is not None and not (math.isfinite(prescription) and prescription > 0):
        raise RtmaskError(f"--prescription must be a positive number of Gy, got {prescription}")
    if prescription is None and per_case:
        prescription = 1.0  # any: only the names are checked
    names = tuple(name.strip() for name in text.split(",") if name.strip())
    probe = DVH(
        dose_gy=np.array([0.0, 1.0]),
        volume_cm3=np.array([1.0, 0.0]),
        min_gy=0.0,
        max_gy=1.0,
        mean_gy=0.5,
        roi_number=0,
        roi_name="",
        prescription_gy=prescription,
    )
    for name in names:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # a D<x>cc beyond the probe's 1 cm3
                probe.statistic(name)
        except InvalidInputError as error:  # the one statistic needing more: V<x>%
            raise RtmaskError(
                f"--stats {name}: V<x>% statistics are in % of the prescription; give "
                "--prescription GY (or use V<x>Gy)"
            ) from error
        except ValueError as error:
            if "percent must be" in str(error):
                raise RtmaskError(
                    f"--stats {name}: D<x> takes a percentage of the volume within 0-100 "
                    "(D<x>cc for cm3)"
                ) from error
            raise RtmaskError(f"--stats: {error}") from error
    return names


def _embedded_scales(args: argparse.Namespace, embedded: EmbeddedDVH) -> tuple[float, float]:
    """Gy per file unit of the embedded curve and of its min/max/mean values."""
    for option, value in (
        ("--embedded-dose-scale", args.embedded_dose_scale),
        ("--embedded-stats-percent-of", args.embedded_stats_percent_of),
    ):
        if value is not None and not (math.isfinite(value) and value > 0):
            raise RtmaskError(f"{option} must be a positive number, got {value}")
    if args.embedded_dose_scale is not None:
        curve = float(args.embedded_dose_scale)
    elif embedded.dose_units == "RELATIVE":
        if args.prescription is None:
            raise RtmaskError(
                f"{args.dose}: embedded DVHs are in RELATIVE dose units; give "
                "--prescription GY or --embedded-dose-scale F"
            )
        curve = float(args.prescription) / 100.0
    else:
        curve = 1.0
    if args.embedded_stats_percent_of is not None:
        return curve, float(args.embedded_stats_percent_of) / 100.0
    return curve, curve


def _embedded_entry(
    args: argparse.Namespace,
    embedded: EmbeddedDVH,
    dvh: DVH,
    stats: tuple[str, ...],
    console: Console,
) -> dict[str, Any]:
    scale, stored_scale = _embedded_scales(args, embedded)
    stats_scale, notes = embedded_stats_scale(
        args, embedded, f"ROI {dvh.roi_number} {dvh.roi_name!r}", scale, stored_scale
    )
    for note in notes:
        print_warning(console, note)
    curve = embedded.to_dvh(  # no stats scale: min/mean/max from the curve
        dose_scale=scale,
        stats_dose_scale=stats_scale,
        total_cm3=dvh.total_cm3,
        roi_name=dvh.roi_name,
        prescription_gy=args.prescription,
        stats_from_curve=stats_scale is None,
    )
    return {
        "volume_cm3": curve.total_cm3,
        "min_gy": curve.min_gy,
        "mean_gy": curve.mean_gy,
        "max_gy": curve.max_gy,
        "stats": {name: _defined(curve.statistic(name)) for name in stats},
        "dose_scale": scale,
        "stats_dose_scale": stats_scale,
        "stats_from": "file" if stats_scale is not None else "curve",
        "dose_units": embedded.dose_units,
        "volume_units": embedded.volume_units,
        "warnings": notes,
    }


def _select(args: argparse.Namespace, rois: tuple[ROI, ...], console: Console) -> list[ROI]:
    """The ROIs to compute; ROIs named by --roi that enclose no volume are errors."""
    if not args.roi and args.roi_map is None:
        return [roi for roi in rois if roi.encloses_volume]
    chosen = []
    for roi in rois:
        if roi.encloses_volume:
            chosen.append(roi)
        elif roi.contours:  # no contours at all: a read problem, reported as such
            print_error(console, f"ROI {roi.number} {roi.name!r}: no closed contour, no DVH")
    return chosen


def _check_output(option: str, path: Path | None) -> None:
    """Refuse an output file that cannot be written before any DVH is computed."""
    if path is None:
        return
    if Path(path).is_dir():
        raise RtmaskError(f"{option} {path}: is a folder; give a file name")
    parent = Path(path).parent
    if not parent.is_dir():
        # A file where a folder of the path should be, or a folder that is not there.
        blocker = next((p for p in (parent, *parent.parents) if p.is_file()), None)
        if blocker is not None:
            raise RtmaskError(
                f"{option} {path}: {blocker} is a file, not a folder; choose another path"
            )
        raise RtmaskError(f"{option} {path}: the folder {parent} does not exist; create it first")


def _selected(
    args: argparse.Namespace, structure_set: StructureSet, roi_map: RoiMap | None
) -> tuple[tuple[ROI, ...], dict[int, str]]:
    """The ROIs ``--roi`` (names, patterns, numbers) and ``--roi-map`` select; none: an error."""
    numbers = {roi.number: roi.name for roi in structure_set.rois}
    selected, canonical = select_rois(structure_set, roi_patterns(args.roi, numbers), roi_map)
    if (args.roi or roi_map is not None) and not selected:
        wanted = " or ".join(
            [
                *([roi_options(args.roi)] if args.roi else []),
                *([f"--roi-map {roi_map.source}"] if roi_map else []),
            ]
        )
        raise RtmaskError(
            f"{args.structure_set}: no ROI matches {wanted}; the ROIs (number and name) are "
            f"{roi_listing(numbers)}"
        )
    return selected, canonical


def _run_table(args: argparse.Namespace, console: Console) -> int:
    """``dvh ROOT --table FILE``, its usage checked."""
    usage = check_table_usage(args) or (
        "--plan is for one structure set and dose, not with --table" if args.plan else ""
    )
    if usage:
        args.dvh_parser.error(usage)
    _check_output("--table", args.table)
    _check_resolution(args.resolution)
    stats = _check_stats(args.stats, args.prescription, per_case=True)
    return run_table(args, console, stats, shape_options(args))


def _check_resolution(resolution: float | None) -> None:
    if resolution is not None and not (math.isfinite(resolution) and resolution > 0):
        raise RtmaskError(f"--resolution must be a positive number of mm, got {resolution}")


def _check_inputs(args: argparse.Namespace) -> dict[str, Any]:
    """Refuse missing inputs and bad numbers or outputs; :func:`shape_options`' options."""
    if args.dose is None:
        args.dvh_parser.error("give the RTDOSE file DOSE after STRUCTURE_SET")
    for path, kind in ((args.structure_set, "RTSTRUCT"), (args.dose, "RTDOSE")):
        if not Path(path).is_file():
            raise RtmaskError(f"{path}: no such file; give an {kind} file")
    _check_resolution(args.resolution)
    for option, output in (("--csv", args.csv), ("--plot", args.plot)):
        _check_output(option, output)
    return shape_options(args)


def run(args: argparse.Namespace, console: Console) -> int:
    """Compute and print the DVHs; 0 when every ROI worked, 1 otherwise."""
    if Path(args.structure_set).is_dir() or args.table is not None:
        return _run_table(args, console)
    shape = _check_inputs(args)
    choice = choose_prescription(args, console)  # sets args.prescription
    stats = _check_stats(args.stats, args.prescription)
    roi_map = read_roi_map_option(args.roi_map, console)
    if isinstance(roi_map, int):
        return roi_map
    structure_set = read_rtstruct(args.structure_set, on_invalid="ignore")
    selected, canonical = _selected(args, structure_set, roi_map)
    dose = read_dose(args.dose, prescription_gy=args.prescription)
    if (cut_off := boundary_dose_note(dose)) is not None:  # the grid may cut the dose off
        print_warning(console, cut_off)
    embedded = {e.roi_number: e for e in read_embedded_dvhs(args.dose)} if args.embedded else {}
    rois = _select(args, selected, console)
    failed = len(rois) < len(selected) and bool(args.roi or roi_map)
    # What the reader could not use fails the command, as in convert.
    for warning in structure_set.warnings:
        print_warning(console, f"{args.structure_set}: {warning}")
    for problem in structure_set.read_problems(selected):
        print_error(console, problem)
        failed = True
    if not rois:
        print_error(console, f"{args.structure_set}: no ROI encloses volume; nothing to compute")
        return 1
    dvhs: list[DVH] = []
    entries: list[dict[str, Any]] = []
    with progress_bar(console) as progress:
        task = progress.add_task("DVH", total=len(rois))
        results = compute_roi_dvhs(
            rois,
            structure_set,
            dose,
            **shape,
            resolution_mm=args.resolution,
            end_caps=args.end_caps,
            prescription_gy=args.prescription,
            count_outside=args.count_outside,
            on_invalid="ignore",
        )
        for roi, dvh in zip(rois, results, strict=True):
            progress.update(task, description=f"DVH {escape(roi.name)}")
            try:
                if isinstance(dvh, RtmaskError):
                    raise dvh
                entry = dvh.to_dict(stats)
                if roi_map is not None:  # beside the name, as in convert's summary
                    entry = {"number": entry.pop("number"), "name": entry.pop("name")} | {
                        "canonical": canonical.get(roi.number),
                        **entry,
                    }
            except RtmaskError as error:
                print_error(console, located(reword(str(error), CLI_WORDING), args.structure_set))
                failed = True
                progress.advance(task)
                continue
            for message in dvh.warnings:
                print_warning(console, reword(message, CLI_WORDING))
            _warn_undefined(console, entry, stats)
            if args.embedded:
                match = embedded.get(roi.number)
                if match is None:
                    print_warning(
                        console, f"ROI {roi.number} {roi.name!r}: no embedded DVH in {args.dose}"
                    )
                    entry["embedded"] = None
                else:
                    entry["embedded"] = _embedded_entry(args, match, dvh, stats, console)
            dvhs.append(dvh)
            entries.append(entry)
            progress.advance(task)
    if args.json:
        document = {"prescription": choice.to_dict(), "rois": entries}
        sys.stdout.write(json_text(document, indent=None) + "\n")
    elif not args.quiet:
        _print_table(entries, stats, choice)
    if args.csv is not None:
        write_dvh_entries_csv(args.csv, entries, stats)
    if args.plot is not None and dvhs:
        plot_dvhs(dvhs, args.plot)
    return 1 if failed else 0


def _defined(value: float) -> float | None:
    """``value``, or None when undefined (NaN): ``null`` in JSON, ``-`` in tables."""
    return None if math.isnan(value) else value


def _warn_undefined(console: Console, entry: dict[str, Any], stats: tuple[str, ...]) -> None:
    """A warning line per statistic the ROI has no value for (D<x>cc beyond its volume)."""
    for name in stats:
        if entry["stats"][name] is None:
            print_warning(
                console,
                f"ROI {entry['number']} {entry['name']!r}: {name} is undefined, the ROI has "
                f"only {entry['volume_cm3']:.4g} cm3; shown as '-' (null with --json)",
            )


def _fmt(value: float | None) -> str:
    return "-" if value is None or math.isnan(value) else f"{value:.3f}"


def _print_table(
    entries: list[dict[str, Any]], stats: tuple[str, ...], choice: PrescriptionChoice
) -> None:
    from rich.table import Table  # noqa: PLC0415 - not needed for --json

    out = Console(highlight=False, width=None if sys.stdout.isatty() else 200)
    table = Table(title="Dose-volume histograms (doses in Gy, volumes in cm3)")
    table.add_column("#", justify="right")
    table.add_column("ROI")
    for header in ("volume (cm3)", "min (Gy)", "mean (Gy)", "max (Gy)"):
        table.add_column(header, justify="right")
    for name in stats:
        table.add_column(f"{name} ({stat_unit(name)})", justify="right")
    for entry in entries:
        for source, values in (("", entry), ("  embedded", entry.get("embedded"))):
            if values is None or (source and "embedded" not in entry):
                continue
            name = entry["name"]
            if entry.get("canonical"):
                name = f"{name} -> {entry['canonical']}"
            table.add_row(
                "" if source else str(entry["number"]),
                source.strip() if source else escape(name),
                _fmt(values["volume_cm3"]),
                _fmt(values["min_gy"]),
                _fmt(values["mean_gy"]),
                _fmt(values["max_gy"]),
                *(_fmt(values["stats"][name]) for name in stats),
            )
    out.print(table)
    if choice.source is not None:
        out.print(f"prescription {choice.dose_gy:g} Gy, from {choice.source}", markup=False)
