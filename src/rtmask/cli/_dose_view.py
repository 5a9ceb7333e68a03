"""``rtmask dose-view DOSE [--image DIR] [--structures RS] -o view.png``: a dose picture.

A dose colour wash with isodose lines (in Gy, or percent of the prescription) over the
CT (grey window from the CT's WindowCenter/WindowWidth, or ``--window W/L``) with ROI
outlines, on the planes given with ``--slice`` or chosen automatically (through the dose
maximum and the target's centre). The prescription is ``--prescription GY``, else that
of ``--plan RP.dcm``, else that of the plan DOSE references when it lies beside DOSE or
``--structures`` (as ``rtmask dvh`` takes it). Needs matplotlib (``rtmask[plot]``).
"""

from __future__ import annotations

import argparse
import fnmatch
import math
import warnings
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.markup import escape

from rtmask._dicom import read_dataset
from rtmask._errors import InvalidInputError
from rtmask.cli._options import add_output_option
from rtmask.cli._output import print_error, print_warning
from rtmask.cli._prescription import PrescriptionChoice, add_plan_option, prescription_from
from rtmask.discovery import read_image_series
from rtmask.discovery._pixels import read_slices
from rtmask.dose import DoseGrid, read_dose
from rtmask.errors import DoseWarning
from rtmask.export import IsodoseLevel, choose_view_positions, write_dose_view
from rtmask.rtstruct import ROI, read_rtstruct

__all__ = ["CLI_WORDING", "add_parser", "run"]

#: The library's keyword hints in this command's words.
CLI_WORDING = {
    "pass the prescription (prescription_gy=...) to read the dose in Gy": (
        "give --prescription GY to read it in Gy"
    ),
    "resample it onto an axis-aligned grid first": "rtmask dose-view shows axis-aligned grids",
    "give a position inside it": "give a --slice inside it",
}

EXIT_OK, EXIT_FAILURE, EXIT_USAGE = 0, 1, 2
#: Default isodose levels, percent of the prescription (or of the maximum without one).
DEFAULT_PERCENTS = (100.0, 95.0, 80.0, 50.0, 20.0)
#: Soft-tissue window (level, width) when the CT names none.
DEFAULT_WINDOW = (40.0, 400.0)
#: Target names tried, in order, for the automatic planes.
TARGET_PATTERNS = ("ptv*", "ctv*", "gtv*")
#: An image plane whose dose stays at or below this share of the maximum is not shown
#: automatically (nothing to see of the dose there).
EMPTY_PLANE_SHARE = 0.01


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register ``dose-view``."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "dose-view",
        help="draw a dose colour wash and isodose lines over the CT with ROI outlines (PNG)",
        description=(
            "Draw the RT Dose DOSE as a colour wash with isodose lines, over the CT of "
            "--image and the ROI outlines of --structures, one panel per plane, and write a "
            "PNG. Planes: --slice positions in mm along --axis, else through the dose "
            "maximum and the target's centre. Needs rtmask[plot]. Exit code 0 when "
            "written, 1 on bad input, 2 on a usage error."
        ),
    )
    parser.add_argument("dose", type=Path, metavar="DOSE", help="RT Dose file")
    add_output_option(parser, "VIEW.png", "PNG to write")
    parser.add_argument("--image", type=Path, metavar="DIR", help="folder of the CT series")
    parser.add_argument("--structures", type=Path, metavar="RS", help="RT Structure Set")
    parser.add_argument(
        "--roi",
        action="append",
        default=[],
        metavar="NAME",
        help="outline only this ROI (name or glob pattern; repeat for more); default all",
    )
    parser.add_argument(
        "--axis", choices=("axial", "coronal", "sagittal"), default="axial", help="plane kind"
    )
    parser.add_argument(
        "--slice",
        action="append",
        default=[],
        metavar="MM",
        help=(
            "plane position in mm (z axial, y coronal, x sagittal); repeat or give a comma "
            "list, e.g. --slice=-12.5,0"
        ),
    )
    parser.add_argument(
        "--levels",
        metavar="LIST",
        help=(
            "isodose levels: Gy (10,20,30) or percent of the prescription (95%%,50%%); "
            "default 100,95,80,50,20 %% of the prescription, or of the maximum"
        ),
    )
    parser.add_argument(
        "--prescription",
        type=float,
        metavar="GY",
        help="prescription dose in Gy (default: the plan's, see --plan)",
    )
    add_plan_option(parser, beside="--structures")
    parser.add_argument(
        "--window", metavar="W/L", help="grey window width/level in HU, e.g. 400/40"
    )
    return parser


def _usage(console: Console, message: str) -> int:
    print_error(console, message)
    return EXIT_USAGE


def _levels(text: str | None, prescription: float | None, dose: DoseGrid) -> list[IsodoseLevel]:
    """Isodose levels from ``--levels`` (InvalidInputError naming the option when bad)."""
    reference = prescription if prescription is not None else dose.max_gy
    of = f" of {prescription:g} Gy" if prescription is not None else " of max"
    if text is None:
        return [
            IsodoseLevel(
                dose_gy=reference * p / 100, label=f"{p:g} %{of} ({reference * p / 100:.3g} Gy)"
            )
            for p in DEFAULT_PERCENTS
        ]
    levels: list[IsodoseLevel] = []
    for item in (part.strip() for part in text.split(",")):
        percent = item.endswith("%")
        try:
            value = float(item.rstrip("%").strip())
        except ValueError:
            raise InvalidInputError(
                f"--levels {text!r}: {item!r} is not a number of Gy or a percentage"
            ) from None
        if not (math.isfinite(value) and value > 0):
            raise InvalidInputError(f"--levels {text!r}: {item!r} is not a positive level")
        if percent and prescription is None:
            raise InvalidInputError(
                f"--levels {text!r}: percentages need a prescription: give --prescription GY "
                "or --plan RP.dcm (the dose they are of)"
            )
        if percent:
            gy = value * reference / 100
            levels.append(IsodoseLevel(dose_gy=gy, label=f"{value:g} %{of} ({gy:.3g} Gy)"))
        else:
            levels.append(IsodoseLevel(dose_gy=value, label=f"{value:g} Gy"))
    return levels


def _window(text: str | None, series_file: Path | None) -> tuple[float, float]:
    """(level, width): ``--window W/L``, else the CT's first WindowCenter/WindowWidth."""
    if text is not None:
        width_text, _, level_text = text.partition("/")
        try:
            width, level = float(width_text), float(level_text)
        except ValueError:
            raise InvalidInputError(
                f"--window {text!r} is not WIDTH/LEVEL in HU, e.g. 400/40"
            ) from None
        if not (math.isfinite(width) and math.isfinite(level) and width > 0):
            raise InvalidInputError(f"--window {text!r}: the width must be a positive number")
        return level, width
    if series_file is not None:
        header = read_dataset(series_file, headers_only=True)
        centres, widths = (
            np.atleast_1d(np.asarray(header.get(keyword, []) or [], dtype=np.float64))
            for keyword in ("WindowCenter", "WindowWidth")
        )
        if centres.size and widths.size and widths[0] > 0:
            return float(centres[0]), float(widths[0])
    return DEFAULT_WINDOW


def _positions(texts: list[str]) -> list[float] | None:
    values: list[float] = []
    for text in texts:
        for item in text.split(","):
            try:
                values.append(float(item))
            except ValueError:
                raise InvalidInputError(
                    f"--slice {text!r}: {item!r} is not a position in mm"
                ) from None
    return values or None


def _select(rois: tuple[ROI, ...], patterns: list[str]) -> list[ROI]:
    closed = [r for r in rois if any(c.geometric_type.encloses_volume for c in r.contours)]
    if not patterns:
        return closed
    chosen = [
        r for r in closed if any(fnmatch.fnmatch(r.name.lower(), p.lower()) for p in patterns)
    ]
    if not chosen:
        raise InvalidInputError(
            f"--roi {' '.join(patterns)}: no ROI with contours matches; ROIs are "
            f"{[r.name for r in closed]}"
        )
    return chosen


def _target(rois: list[ROI], patterns: list[str]) -> ROI | None:
    """The ROI the automatic planes go through: the first chosen, else a PTV/CTV/GTV."""
    if patterns and rois:
        return rois[0]
    for pattern in TARGET_PATTERNS:
        for roi in rois:
            if fnmatch.fnmatch(roi.name.lower(), pattern):
                return roi
    return None


def run(args: argparse.Namespace, console: Console) -> int:
    """Read the inputs, draw the picture, print one line."""
    output = Path(args.output)
    if output.suffix.lower() != ".png":
        return _usage(console, f"-o {output}: give a .png file name")
    if not output.parent.is_dir():
        raise InvalidInputError(
            f"{output}: the output folder {output.parent} does not exist; create it first"
        )
    if args.prescription is not None and not (
        math.isfinite(args.prescription) and args.prescription > 0
    ):
        return _usage(
            console, f"--prescription {args.prescription:g} must be a positive number of Gy"
        )
    choice = prescription_from(
        prescription=args.prescription,
        plan_path=args.plan,
        dose=args.dose,
        beside=() if args.structures is None else (args.structures,),
        console=console,
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        dose = read_dose(args.dose, prescription_gy=choice.dose_gy)
        levels = _levels(args.levels, choice.dose_gy, dose)
        positions = _positions(args.slice)
        image = None
        series_file = None
        if args.image is not None:
            series = read_image_series(args.image)
            values = read_slices(series, range(series.grid.shape[0]))
            image = (values, series.grid)
            series_file = series.files[len(series.files) // 2]
        window = _window(args.window, series_file)
        rois: list[ROI] = []
        if args.structures is not None:
            rois = _select(read_rtstruct(args.structures).rois, args.roi)
        if positions is None:
            positions = list(choose_view_positions(dose, args.axis, target=_target(rois, args.roi)))
            positions += _thin_image_planes(image, dose, args.axis)
        view = write_dose_view(
            output,
            dose,
            axis=args.axis,
            positions_mm=sorted(set(positions))[:6],
            levels=levels,
            image=image,
            window=window,
            rois=rois,
            title=_title(args, choice),
        )
    for message in dict.fromkeys(str(w.message) for w in caught):
        print_warning(console, message)
    where = ", ".join(f"{p.position_mm:+.1f}" for p in view.panels)
    console.print(
        f"wrote {escape(str(output))}: {len(view.panels)} {args.axis} panel(s) at {where} mm, "
        f"{view.width_px} x {view.height_px} px, isodoses "
        + ", ".join(lv.label for lv in view.levels)
        + ("" if choice.source is None else f"; prescription from {choice.source}"),
        soft_wrap=True,
    )
    return EXIT_OK


def _title(args: argparse.Namespace, choice: PrescriptionChoice) -> str:
    """``rtdose.dcm on CT``, and where the prescription comes from when there is one."""
    title = f"{args.dose.name}" + (f" on {args.image.name}" if args.image else "")
    if choice.dose_gy is None:
        return title
    return f"{title}\nprescription {choice.dose_gy:g} Gy from {choice.short_source}"


def _thin_image_planes(image: tuple[Any, Any] | None, dose: DoseGrid, axis: str) -> list[float]:
    """The planes of an image of at most 3 axial slices that show dose (else nothing shows).

    A plane outside the dose grid, or inside it where the dose stays below
    :data:`EMPTY_PLANE_SHARE` of the maximum (the breast plan's one CT slice lies on the
    grid's last frame, 0.05 %), is left out with a warning naming ``--slice``.
    """
    if image is None or axis != "axial" or image[1].shape[0] > 3:
        return []
    grid = image[1]
    z = grid.index_to_patient(np.array([[k, 0.0, 0.0] for k in range(grid.shape[0])]))[:, 2]
    corners = dose.grid.index_to_patient(np.array([[0.0, 0, 0], np.subtract(dose.shape, 1)]))
    low, high = sorted(corners[:, 2])
    floor = EMPTY_PLANE_SHARE * dose.max_gy
    shown = [
        float(v) for v in z if low <= v <= high and dose.plane(float(v), "axial").max_gy > floor
    ]
    empty = [float(v) for v in z if float(v) not in shown]
    if empty:
        where = ", ".join(f"{v:+.1f}" for v in empty)
        warnings.warn(
            f"the image's axial plane(s) at {where} mm hold no dose (outside the dose grid, "
            f"or below {100 * EMPTY_PLANE_SHARE:g} % of its maximum there); not shown: give "
            "--slice MM to show a plane",
            DoseWarning,
            stacklevel=2,
        )
    return shown
