"""``rtmask volumes STRUCTURE_SET``: every ROI's volume under each convention."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from rtmask._errors import RtmaskError
from rtmask.cli._options import (
    add_json_option,
    add_roi_option,
    add_rule_option,
    link_message,
    roi_listing,
    roi_options,
    roi_patterns,
)
from rtmask.cli._output import json_text, print_error, print_warning, reword
from rtmask.discovery import ImageSeries, link_image_series, read_image_series, scan
from rtmask.dvh import EndCaps, contour_volume
from rtmask.raster import rasterize
from rtmask.rtstruct import read_rtstruct

__all__ = ["CLI_WORDING", "add_parser", "run"]

#: The library's keyword hints in this command's options (see ``reword``).
CLI_WORDING = {
    "give single_plane_thickness_mm (e.g. the slice spacing)": (
        "give its image series (--image DIR) for the slice spacing"
    ),
}

#: Skipped-file kinds worth naming when no image series is found (damaged files).
_REFUSED = frozenset({"unreadable", "truncated", "bad_geometry"})
#: In-plane samples per voxel side for the fractional (partial-volume) column.
FRACTIONAL_SAMPLES = 4

CONVENTIONS = {
    "contour_half_cm3": (
        "contour area x slab thickness from the actual plane positions, end planes extending "
        "half the adjacent gap outward (Pinnacle, MIM, RayStation, plastimatch)"
    ),
    "contour_none_cm3": (
        "contour area x slab thickness from the actual plane positions, end planes extending "
        "only inward (no end caps)"
    ),
    "voxel_cm3": "voxels whose centre lies inside, on the image grid, x voxel volume",
    "fractional_cm3": (
        f"covered fraction of each voxel ({FRACTIONAL_SAMPLES}x{FRACTIONAL_SAMPLES} samples "
        "in-plane) on the image grid, x voxel volume"
    ),
}


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:  # type: ignore[type-arg]
    """Register ``volumes``."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "volumes",
        help="list every ROI's volume under each convention",
        description=(
            "List the volume of every ROI of STRUCTURE_SET: from the contours with half-slice "
            "end caps and without end caps, and, when the image series is available, by "
            "voxel count and partial volumes on the image grid."
        ),
    )
    parser.add_argument("structure_set", type=Path, metavar="STRUCTURE_SET", help="RTSTRUCT file")
    parser.add_argument(
        "--image",
        type=Path,
        metavar="DIR",
        help="folder of the image series (default: found next to STRUCTURE_SET)",
    )
    add_roi_option(parser, numbers=True)
    add_rule_option(parser)
    add_json_option(parser)
    return parser


def _image_series(structure_set: Path, image: Path | None) -> tuple[ImageSeries | None, str]:
    """The image series (or None) and a note saying where it came from or why there is none."""
    if image is not None:
        return read_image_series(image), f"image series from {image}"
    inventory = scan(structure_set.parent)
    resolved = structure_set.resolve()
    for rt_object in inventory.structure_sets:
        if rt_object.path.resolve() == resolved:
            link = link_image_series(rt_object, inventory.image_series)
            if link.series is None:
                refused = [f"{s.path}: {s.reason}" for s in inventory.skipped if s.kind in _REFUSED]
                because = f"; {len(refused)} file(s) refused, e.g. {refused[0]}" if refused else ""
                return None, f"no image series: {link_message(link)}{because}"
            return link.series, link_message(link)
    return None, f"no image series found next to {structure_set}"


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def run(args: argparse.Namespace, console: Console) -> int:
    """Compute and print the volumes; 0 on success, 1 on bad input or ROIs not fully read."""
    path: Path = args.structure_set
    if not path.is_file():
        raise RtmaskError(f"{path}: no such file; give an RTSTRUCT file")
    structure_set = read_rtstruct(path, on_invalid="ignore")
    numbers = {roi.number: roi.name for roi in structure_set.rois}
    rois = structure_set.select(roi_patterns(args.roi, numbers))
    if args.roi and not rois:
        raise RtmaskError(
            f"{path}: no ROI matches {roi_options(args.roi)}; the ROIs (number and name) are "
            f"{roi_listing(numbers)}"
        )
    series, grid_note = _image_series(path, args.image)
    grid = None if series is None else series.grid
    # What the reader could not use fails the command, as in convert.
    problems = list(structure_set.read_problems(rois))
    entries: list[dict[str, Any]] = []
    for roi in rois:
        entry: dict[str, Any] = {"number": roi.number, "name": roi.name}
        read_problems = list(structure_set.read_problems([roi], skipped=False))
        if read_problems:
            entry["dropped_contours"] = list(roi.dropped_contours)
        if not roi.encloses_volume:
            entry.update(
                contour_half_cm3=None,
                contour_none_cm3=None,
                voxel_cm3=None,
                fractional_cm3=None,
                warnings=read_problems
                or [f"ROI {roi.number} {roi.name!r}: no closed contour, no volume"],
            )
            entries.append(entry)
            continue
        messages: list[str] = list(read_problems)
        try:
            # An ROI on one plane stands for one image slice, when the images are known.
            thickness = None if grid is None else grid.spacing_mm[0]
            half = contour_volume(
                roi, rule=args.rule, end_caps=EndCaps.HALF, single_plane_thickness_mm=thickness
            )
            none = contour_volume(
                roi, rule=args.rule, end_caps=EndCaps.NONE, single_plane_thickness_mm=thickness
            )
            entry.update(contour_half_cm3=half.volume_cm3, contour_none_cm3=none.volume_cm3)
            messages.extend(half.warnings)
        except RtmaskError as error:  # one plane only and no slab thickness known
            entry.update(contour_half_cm3=None, contour_none_cm3=None)
            messages.append(reword(str(error), CLI_WORDING))
        voxel = fractional = None
        if grid is not None:
            mask = rasterize(roi, grid, rule=args.rule, on_invalid="ignore")
            voxel = mask.volume_cm3
            fractional = rasterize(
                roi, grid, rule=args.rule, fractional=FRACTIONAL_SAMPLES, on_invalid="ignore"
            ).volume_cm3
            messages.extend(m for m in mask.warnings if m not in messages)
        entry.update(voxel_cm3=voxel, fractional_cm3=fractional, warnings=messages)
        entries.append(entry)
    if args.json:
        report = {
            "rois": entries,
            "conventions": CONVENTIONS,
            "image_series": grid_note,
            "problems": problems,
        }
        sys.stdout.write(json_text(report) + "\n")
    else:
        _print_table(entries, grid is not None, grid_note, bool(args.verbose))
        if grid is None:
            print_warning(console, f"voxel columns left empty: {grid_note} (give --image DIR)")
    if series is not None:  # e.g. an image of another patient in the series
        irregular = set(series.grid.irregularities())
        for warning in series.warnings:
            if warning not in irregular:
                print_warning(console, f"image series {series.folder}: {warning}")
    for warning in structure_set.warnings:
        print_warning(console, f"{path}: {warning}")
    for problem in problems:
        print_error(console, problem)
    return 1 if problems else 0


def _print_table(entries: list[dict[str, Any]], has_grid: bool, note: str, verbose: bool) -> None:
    """The volume table on stdout, with the conventions below it."""
    out = Console(highlight=False, width=None if sys.stdout.isatty() else 160)
    table = Table(title="ROI volumes (cm3)")
    table.add_column("#", justify="right")
    table.add_column("ROI")
    table.add_column("contour, half caps", justify="right")
    table.add_column("contour, no caps", justify="right")
    table.add_column("voxel count", justify="right")
    table.add_column(f"fractional {FRACTIONAL_SAMPLES}x{FRACTIONAL_SAMPLES}", justify="right")
    table.add_column("notes")
    for entry in entries:
        warnings = entry["warnings"]
        if entry["contour_half_cm3"] is None and entry["voxel_cm3"] is None:
            notes = "encloses no volume" if not warnings else escape(warnings[0])
        else:
            notes = f"{len(warnings)} warning(s)" if warnings and not verbose else ""
            if verbose:
                notes = escape("; ".join(warnings))
        table.add_row(
            str(entry["number"]),
            escape(entry["name"]),
            _fmt(entry["contour_half_cm3"]),
            _fmt(entry["contour_none_cm3"]),
            _fmt(entry["voxel_cm3"]),
            _fmt(entry["fractional_cm3"]),
            notes,
        )
    out.print(table)
    for key, text in CONVENTIONS.items():
        if has_grid or not key.startswith(("voxel", "fractional")):
            out.print(f"  {key}: {text}", soft_wrap=True)
    if has_grid:
        out.print(f"  grid: {escape(note)}", soft_wrap=True)
