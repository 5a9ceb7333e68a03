"""``rtmask info PATH``: what is in a folder tree, as tables or as one JSON document.

Patients -> studies -> image series, structure sets (with their ROIs and the series each
is linked to), doses, plans and segmentations (DICOM SEG), then the files that were
skipped and why. The tables and the JSON document are built from the same report
dictionary, so they say the same.
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, TaskID, TextColumn
from rich.table import Table
from rich.text import Text

from rtmask._errors import RtmaskError
from rtmask.cli._info_plan import plan_details, print_plan
from rtmask.cli._options import add_json_option, link_message
from rtmask.cli._output import json_text, progress_bar
from rtmask.discovery import ImageSeries, Inventory, RTObject, SeriesLink, link_image_series, scan
from rtmask.geometry import ImageGrid
from rtmask.rtstruct import read_rtstruct

__all__ = ["add_parser", "build_report", "orientation_label", "run"]

#: Show a progress bar when scanning more files than this (and stderr is a terminal).
PROGRESS_MIN_FILES = 50
#: Cosine above which a plane normal counts as along a patient axis (about 8 degrees).
_AXIS_COSINE = 0.99
#: How ``info`` is shown an object's image series (it has no --image).
INFO_IMAGE_HINT = "run rtmask info on a folder that also holds the image series"

Report = dict[str, Any]


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:  # type: ignore[type-arg]
    """Register ``info``."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "info",
        help="list the patients, image series, structure sets and ROIs in a folder",
        description=(
            "Scan PATH (files and folder trees, headers only) and show the patients, studies, "
            "image series, structure sets with their ROIs, doses and plans found, how each "
            "structure set is linked to its image series, and the files skipped. Exit code "
            "0 when something DICOM was found, 1 when nothing was or PATH does not exist."
        ),
    )
    parser.add_argument(
        "paths", nargs="+", type=Path, metavar="PATH", help="folder (walked recursively) or file"
    )
    add_json_option(parser, "tables")
    return parser


# ---------------------------------------------------------------------------- report
def orientation_label(grid: ImageGrid, patient_position: str | None = None) -> str:
    """``axial``, ``sagittal``, ``coronal`` or ``oblique``, plus PatientPosition if known."""
    normal = np.abs(grid.normal)
    axis = int(np.argmax(normal))
    label = ("sagittal", "coronal", "axial")[axis] if normal[axis] >= _AXIS_COSINE else "oblique"
    return f"{label} {patient_position}" if patient_position else label


def _relative(path: Path, roots: Sequence[Path]) -> str:
    for root in roots:
        base = root if root.is_dir() else root.parent
        try:
            relative = path.relative_to(base)
        except ValueError:
            continue
        return str(relative) if str(relative) != "." else str(base)
    return str(path)


def _link_report(link: SeriesLink) -> Report:
    return {
        "series_instance_uid": link.series.series_instance_uid if link.series else None,
        "method": link.method,
        "message": link_message(link, INFO_IMAGE_HINT),
        "warnings": list(link.warnings),
    }


def _series_report(series: ImageSeries, roots: Sequence[Path]) -> Report:
    grid = series.grid
    return {
        "series_instance_uid": series.series_instance_uid,
        "series_number": series.series_number,
        "modality": series.modality,
        "description": series.description,
        "frame_of_reference_uid": series.frame_of_reference_uid,
        "n_slices": series.n_slices,
        "shape": list(grid.shape),
        "spacing_mm": [round(v, 6) for v in grid.spacing_mm],
        "image_orientation": [round(v, 6) for v in grid.orientation],
        "origin_mm": [round(float(v), 4) for v in grid.origin_mm],
        "orientation": orientation_label(grid, series.patient_position),
        "patient_position": series.patient_position,
        "uniform_spacing": grid.is_uniform,
        "warnings": list(series.warnings),
        "folder": _relative(series.folder, roots),
    }


def _rt_report(rt_object: RTObject, inventory: Inventory, roots: Sequence[Path]) -> Report:
    link = link_image_series(rt_object, inventory.image_series, related=inventory.rt_objects)
    return {
        "path": str(rt_object.path),
        "file": _relative(rt_object.path, roots),
        "label": rt_object.label,
        "sop_instance_uid": rt_object.sop_instance_uid,
        "series_instance_uid": rt_object.series_instance_uid,
        "frame_of_reference_uid": rt_object.frame_of_reference_uid,
        "referenced_series_uids": list(rt_object.referenced_series_uids),
        "link": _link_report(link),
    }


def _structure_set_report(
    rt_object: RTObject, inventory: Inventory, roots: Sequence[Path]
) -> Report:
    report = _rt_report(rt_object, inventory, roots)
    report.update(rois=[], warnings=[], error=None)
    try:
        structure_set = read_rtstruct(rt_object.path, on_invalid="ignore")
    except RtmaskError as error:
        report["error"] = str(error)
        return report
    report["warnings"] = [*structure_set.skipped_rois, *structure_set.warnings]
    report["rois"] = [
        {
            "number": roi.number,
            "name": roi.name,
            "color": list(roi.color) if roi.color is not None else None,
            "interpreted_type": roi.interpreted_type,
            "n_contours": roi.n_contours,
            "geometric_types": [t.value for t in roi.geometric_types],
            "warnings": list(roi.warnings),
        }
        for roi in structure_set.rois
    ]
    return report


def build_report(inventory: Inventory, roots: Sequence[Path]) -> Report:
    """Everything ``rtmask info`` shows, as JSON-ready data (paths as strings)."""
    patients: dict[str | None, Report] = {}

    def study(patient_id: str | None, patient_name: str | None, uid: str | None) -> Report:
        patient = patients.setdefault(
            patient_id,
            {
                "patient_id": patient_id,
                "patient_name": patient_name,
                "studies": {},
            },
        )
        patient["patient_name"] = patient["patient_name"] or patient_name
        studies: dict[str | None, Report] = patient["studies"]
        return studies.setdefault(
            uid,
            {
                "study_instance_uid": uid,
                "study_date": None,
                "study_description": None,
                "image_series": [],
                "structure_sets": [],
                "doses": [],
                "plans": [],
                "segmentations": [],
            },
        )

    for series in inventory.image_series:
        entry = study(series.patient_id, series.patient_name, series.study_instance_uid)
        entry["study_date"] = entry["study_date"] or series.study_date
        entry["study_description"] = entry["study_description"] or series.study_description
        entry["image_series"].append(_series_report(series, roots))
    for rt_object in inventory.structure_sets:
        entry = study(rt_object.patient_id, rt_object.patient_name, rt_object.study_instance_uid)
        entry["structure_sets"].append(_structure_set_report(rt_object, inventory, roots))
    for key, objects in (
        ("doses", inventory.doses),
        ("plans", inventory.plans),
        ("segmentations", inventory.segmentations),
    ):
        for rt_object in objects:
            entry = study(
                rt_object.patient_id, rt_object.patient_name, rt_object.study_instance_uid
            )
            report = _rt_report(rt_object, inventory, roots)
            if key == "plans":
                report.update(plan_details(rt_object, inventory, lambda p: _relative(p, roots)))
            entry[key].append(report)

    patient_list = []
    for patient in patients.values():
        patient["studies"] = list(patient["studies"].values())
        patient_list.append(patient)
    return {
        "paths": [str(path) for path in roots],
        "n_files": inventory.n_files,
        "n_patients": len(patient_list),
        "n_image_series": len(inventory.image_series),
        "n_structure_sets": len(inventory.structure_sets),
        "n_doses": len(inventory.doses),
        "n_plans": len(inventory.plans),
        "n_segmentations": len(inventory.segmentations),
        "patients": patient_list,
        "skipped": [
            {"path": str(s.path), "kind": s.kind, "reason": s.reason} for s in inventory.skipped
        ],
        "skipped_by_kind": dict(Counter(s.kind for s in inventory.skipped).most_common()),
    }


# ---------------------------------------------------------------------------- tables
def _date(value: str | None) -> str:
    if value and len(value) == 8 and value.isdigit():
        return f"{value[:4]}-{value[4:6]}-{value[6:]}"
    return value or ""


def _swatch(color: list[int] | None) -> Text:
    if color is None:
        return Text("-")
    r, g, b = color
    return Text.assemble(("██", f"rgb({r},{g},{b})"), f" {r},{g},{b}")


def _warnings_text(warnings: Sequence[str], verbose: bool) -> str:
    if not warnings:
        return ""
    if verbose or len(warnings) == 1:
        return "\n".join(warnings)
    return f"{warnings[0]} (+{len(warnings) - 1} more; -v lists them)"


def _series_table(entries: list[Report]) -> Table:
    table = Table(title="Image series", title_justify="left", expand=False)
    for name in (
        "#",
        "modality",
        "description",
        "slices",
        "rows x cols",
        "spacing mm",
        "orientation",
        "uniform",
        "folder",
        "series UID",
    ):
        table.add_column(name, overflow="fold")
    for s in entries:
        slice_mm, row_mm, column_mm = s["spacing_mm"]
        uniform = "yes" if s["uniform_spacing"] else Text("no", style="yellow")
        table.add_row(
            str(s["series_number"] or ""),
            s["modality"],
            s["description"] or "",
            str(s["n_slices"]),
            f"{s['shape'][1]} x {s['shape'][2]}",
            f"{row_mm:.4g} x {column_mm:.4g} x {slice_mm:.4g}",
            s["orientation"],
            uniform,
            s["folder"],
            s["series_instance_uid"],
        )
    return table


def _rt_table(title: str, entries: list[Report]) -> Table:
    table = Table(title=title, title_justify="left")
    for name in ("file", "label", "linked image series", "how"):
        table.add_column(name, overflow="fold")
    for entry in entries:
        link = entry["link"]
        method = Text(
            link["method"],
            style="green"
            if link["method"] == "series_uid"
            else "red"
            if link["method"] == "none"
            else "yellow",
        )
        table.add_row(
            entry["file"], entry["label"] or "", link["series_instance_uid"] or "-", method
        )
    return table


def _roi_table(entry: Report, verbose: bool) -> Table:
    title = f"{entry['file']}: {len(entry['rois'])} ROI(s)"
    table = Table(title=title, title_justify="left")
    for name in ("#", "name", "colour", "type", "contours", "geometric types", "warnings"):
        table.add_column(name, overflow="fold")
    for roi in entry["rois"]:
        table.add_row(
            str(roi["number"]),
            roi["name"],
            _swatch(roi["color"]),
            roi["interpreted_type"] or "",
            str(roi["n_contours"]),
            ", ".join(roi["geometric_types"]),
            Text(_warnings_text(roi["warnings"], verbose), style="yellow"),
        )
    return table


def _print_tables(report: Report, out: Console, verbose: bool) -> None:
    out.print(
        f"[bold]{report['n_files']}[/bold] file(s): {report['n_patients']} patient(s), "
        f"{report['n_image_series']} image series, {report['n_structure_sets']} structure "
        f"set(s), {report['n_doses']} dose(s), {report['n_plans']} plan(s), "
        f"{report['n_segmentations']} segmentation(s), {len(report['skipped'])} skipped"
    )
    for patient in report["patients"]:
        name = f" ({patient['patient_name']})" if patient["patient_name"] else ""
        out.rule(f"Patient {patient['patient_id'] or '(no ID)'}{name}", align="left")
        for study in patient["studies"]:
            details = " ".join(
                t for t in (_date(study["study_date"]), study["study_description"]) if t
            )
            out.print(f"[bold]Study[/bold] {study['study_instance_uid'] or '(no UID)'} {details}")
            if study["image_series"]:
                out.print(_series_table(study["image_series"]))
                for s in study["image_series"]:
                    for warning in s["warnings"]:
                        out.print(
                            f"[yellow]warning:[/yellow] series {s['series_instance_uid']}: "
                            f"{warning}",
                            soft_wrap=True,
                        )
            for key, title in (
                ("structure_sets", "Structure sets"),
                ("doses", "Doses"),
                ("plans", "Plans"),
                ("segmentations", "Segmentations (DICOM SEG)"),
            ):
                if not study[key]:
                    continue
                out.print(_rt_table(title, study[key]))
                for entry in study[key]:
                    out.print(f"  {entry['file']}: {entry['link']['message']}", soft_wrap=True)
                for entry in study[key] if key == "plans" else []:
                    print_plan(entry, out)
            for entry in study["structure_sets"]:
                if entry["error"]:
                    out.print(f"[red]error:[/red] {entry['error']}", soft_wrap=True)
                    continue
                out.print(_roi_table(entry, verbose))
                for warning in entry["warnings"]:
                    out.print(
                        f"[yellow]warning:[/yellow] {entry['file']}: {warning}", soft_wrap=True
                    )
    if report["skipped"]:
        counts = ", ".join(
            f"{count} {kind.replace('_', ' ')}" for kind, count in report["skipped_by_kind"].items()
        )
        out.print(
            f"[yellow]{len(report['skipped'])} file(s) skipped[/yellow]: {counts}"
            + ("" if verbose else " (-v lists them)")
        )
        if verbose:
            for skipped in report["skipped"]:
                out.print(f"  {skipped['path']}: {skipped['reason']}", soft_wrap=True)


# ---------------------------------------------------------------------------- command
def _scan(paths: Sequence[Path], console: Console) -> Inventory:
    """Scan with a progress bar on the (stderr) console when it is a terminal."""
    with progress_bar(
        console, TextColumn("scanning"), BarColumn(), MofNCompleteColumn()
    ) as progress:
        task: list[TaskID] = []

        def advance(done: int, total: int) -> None:
            if total <= PROGRESS_MIN_FILES:
                return
            if not task:
                task.append(progress.add_task("scanning", total=total))
            progress.update(task[0], completed=done)

        return scan(list(paths), progress=advance)


def run(args: argparse.Namespace, console: Console) -> int:
    """Run ``info`` from parsed arguments; 0 when something DICOM was found, else 1."""
    paths: list[Path] = list(args.paths)
    for path in paths:
        if not path.exists():
            console.print(f"[red]error:[/red] {path}: no such file or folder", soft_wrap=True)
            return 1
    inventory = _scan(paths, console)
    report = build_report(inventory, paths)
    if args.json:
        sys.stdout.write(json_text(report) + "\n")
    elif not getattr(args, "quiet", False):
        out = Console(highlight=False, width=None if sys.stdout.isatty() else 160)
        _print_tables(report, out, bool(getattr(args, "verbose", False)))
    if inventory.is_empty:
        where = ", ".join(str(p) for p in paths)
        console.print(
            f"[red]error:[/red] no DICOM image series or RT object found in {where} "
            f"({inventory.n_files} file(s) looked at, {len(inventory.skipped)} skipped)",
            soft_wrap=True,
        )
        return 1
    return 0
