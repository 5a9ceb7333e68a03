"""``rtmask dose-sum DOSE1 DOSE2 ... -o SUM.dcm``: add RT Doses, each scaled, into a new RT Dose.

The sum lives on the first dose's grid; the other doses are trilinearly interpolated onto
it when their grids differ (shown as a warning). The new file carries the first dose's
patient, study and frame of reference and references the plans of every input. Doses of
different DoseType are refused unless --force; different DoseSummationTypes are warned about;
ImageComments lists every part (factor, file, DoseType, DoseSummationType). A RELATIVE dose
(percent of the prescription) is read in Gy with ``--prescription GY``, else with the
prescription of the plan it references when that lies beside it (as ``rtmask dvh`` finds it).
"""

from __future__ import annotations

import argparse
import math
import warnings
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape

from rtmask._dicom import read_dataset
from rtmask._errors import InvalidInputError
from rtmask._limits import MAX_DOSE_GY
from rtmask.cli._options import add_output_option
from rtmask.cli._output import print_error, print_warning
from rtmask.cli._prescription import prescription_from
from rtmask.dose import DoseGrid, add_doses, read_dose, scale_dose
from rtmask.export import write_rtdose

__all__ = ["CLI_WORDING", "add_parser", "run"]

#: The library's keyword hints in this command's words (see ``reword``).
CLI_WORDING = {
    "pass the prescription (prescription_gy=...) to read the dose in Gy": (
        "give --prescription GY (the dose is percent of it) to add it in Gy"
    ),
    "(pass dose_type='ERROR')": "(a sum is of DoseType ERROR when every DOSE is)",
    "(pass force=True to add them anyway)": "(use --force to add them anyway)",
    "added anyway as asked": "added anyway (--force)",
}

EXIT_OK, EXIT_FAILURE, EXIT_USAGE = 0, 1, 2


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register ``dose-sum``."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "dose-sum",
        help="add RT Doses (each optionally scaled) into a new RT Dose",
        description=(
            "Read every DOSE (RT Dose files in one frame of reference), multiply each by its "
            "--scale factor, add them on the first dose's grid (trilinear interpolation for "
            "the others when their grids differ) and write the sum as a new RT Dose with new "
            "UIDs, the first dose's patient, study and frame of reference, and references to "
            "the plans of every input. Exit code 0 when written, 1 on bad input, 2 on a "
            "usage error."
        ),
    )
    parser.add_argument("doses", nargs="+", type=Path, metavar="DOSE", help="RT Dose files")
    add_output_option(parser, "SUM.dcm", "RT Dose to write")
    parser.add_argument(
        "--scale",
        nargs="+",
        type=float,
        metavar="F",
        help="one factor per DOSE, in the same order (default: 1 for each)",
    )
    parser.add_argument(
        "--bits",
        type=int,
        choices=(16, 32),
        default=32,
        help="bits per stored dose value (default: 32)",
    )
    parser.add_argument(
        "--force",
        action="store_true",
        help=(
            "add doses of different DoseType (PHYSICAL, EFFECTIVE) anyway; the sum is "
            "labelled EFFECTIVE and its parts are listed in ImageComments"
        ),
    )
    parser.add_argument(
        "--prescription",
        type=float,
        metavar="GY",
        help=(
            "prescription dose in Gy for the DOSEs in RELATIVE units (percent of it; default: "
            "the prescription of the plan such a DOSE references, when it lies beside it)"
        ),
    )
    return parser


def _relative_prescriptions(
    paths: list[Path], prescription: float | None, console: Console
) -> tuple[list[float | None], list[str]]:
    """The prescription (Gy) each DOSE in RELATIVE units is read with (None for GY ones).

    ``--prescription`` when given, else that of the plan the dose references beside it;
    a note per RELATIVE dose saying which. InvalidInputError, naming ``--prescription``,
    when a RELATIVE dose has neither.
    """
    if prescription is not None and not (math.isfinite(prescription) and prescription > 0):
        raise InvalidInputError(f"--prescription {prescription:g} must be a positive number of Gy")
    found: list[float | None] = []
    notes: list[str] = []
    for path in paths:
        header = read_dataset(path, headers_only=True)
        if str(header.get("DoseUnits", "")).strip().upper() != "RELATIVE":
            found.append(None)
            continue
        choice = prescription_from(
            prescription=prescription, plan_path=None, dose=path, console=console
        )
        if choice.dose_gy is None:
            raise InvalidInputError(
                f"{path}: DoseUnits is RELATIVE (percent of the prescription) and no plan it "
                "references lies beside it; give --prescription GY to add it in Gy"
            )
        found.append(choice.dose_gy)
        notes.append(
            f"{path}: DoseUnits RELATIVE, read as percent of {choice.dose_gy:g} Gy "
            f"(from {choice.source})"
        )
    if prescription is not None and not notes:
        notes.append(f"--prescription {prescription:g}: every DOSE is in Gy; it is not used")
    return found, notes


def _part(path: Path, factor: float, dose: DoseGrid, prescription: float | None) -> str:
    """One summand as the written file describes it: factor, file name and kind."""
    relative = "" if prescription is None else f", RELATIVE as % of {prescription:g} Gy"
    return (
        f"{factor:g} x {path.name} (DoseType {dose.dose_type or 'unknown'}, "
        f"DoseSummationType {dose.summation_type or 'unknown'}{relative})"
    )


def _sum(
    paths: list[Path],
    factors: list[float],
    prescriptions: list[float | None],
    *,
    force: bool,
) -> tuple[DoseGrid, list[str]]:
    """The scaled sum and the description of each part."""
    total: DoseGrid | None = None
    parts: list[str] = []
    for path, factor, prescription in zip(paths, factors, prescriptions, strict=True):
        if not (math.isfinite(factor) and factor >= 0):
            raise InvalidInputError(f"{path}: --scale {factor} is not a finite number >= 0")
        dose = read_dose(path, prescription_gy=prescription)
        largest = factor * max(dose.max_gy, -float(dose.dose_gy.min()))
        if largest > MAX_DOSE_GY:  # before the product overflows
            raise InvalidInputError(
                f"{path}: --scale {factor:g} makes its dose reach {largest:.4g} Gy, beyond the "
                f"{MAX_DOSE_GY:g} Gy any treatment reaches; check the factor"
            )
        parts.append(_part(path, factor, dose, prescription))
        if factor != 1.0:
            dose = scale_dose(dose, factor)
        total = dose if total is None else add_doses(total, dose, force=force)
    assert total is not None  # argparse requires at least one DOSE
    return total, parts


def _comment(total: DoseGrid, parts: list[str], *, force: bool) -> tuple[str, str]:
    """SeriesDescription and ImageComments of the sum: what it is made of."""
    summations = {part.rsplit("DoseSummationType ", 1)[-1] for part in parts}
    mixed_sums = len(summations) > 1 or total.summation_type is None
    mixed = (
        mixed_sums
        or total.dose_type is None
        or any(f"DoseType {total.dose_type}," not in part for part in parts)
    )
    description = f"rtmask sum of {len(parts)} doses" + (" (mixed types)" if mixed else "")
    comment = f"rtmask sum of {len(parts)} doses: " + " + ".join(parts)
    if any(f"DoseType {total.dose_type}," not in part for part in parts):
        comment += f"; DoseType labelled {total.dose_type or 'PHYSICAL'}" + (
            " (--force)" if force else ""
        )
    if mixed_sums and len(parts) > 1:
        comment += (
            f"; DoseSummationType labelled {total.summation_type or 'by the plans referenced'}"
            ": the parts' DoseSummationTypes differ or are unknown"
        )
    return description, comment


def run(args: argparse.Namespace, console: Console) -> int:
    """Sum the doses and write the result; one line per warning, one summary line."""
    paths: list[Path] = list(args.doses)
    factors: list[float] = list(args.scale) if args.scale is not None else [1.0] * len(paths)
    if len(factors) != len(paths):
        print_error(
            console,
            f"--scale has {len(factors)} factor(s) for {len(paths)} dose(s); give one factor "
            "per DOSE, in the same order",
        )
        return EXIT_USAGE
    output = Path(args.output)
    if not output.parent.is_dir():
        raise InvalidInputError(
            f"{output}: the output folder {output.parent} "
            + ("is a file" if output.parent.exists() else "does not exist; create it first")
        )
    if any(path.resolve() == output.resolve() for path in paths):
        raise InvalidInputError(f"{output}: the output would overwrite an input; choose another")
    prescriptions, notes = _relative_prescriptions(paths, args.prescription, console)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        total, parts = _sum(paths, factors, prescriptions, force=bool(args.force))
        largest = max(total.max_gy, -float(total.dose_gy.min()))
        if largest > MAX_DOSE_GY:  # refused before anything is written
            raise InvalidInputError(
                f"{output}: the sum reaches {largest:.4g} Gy, beyond the {MAX_DOSE_GY:g} Gy "
                "any treatment reaches; check the --scale factors"
            )
        description, comment = _comment(total, parts, force=bool(args.force))
        write_rtdose(
            total,
            output,
            reference=paths,
            bits=args.bits,
            description=description,
            comment=comment,
        )
    shown: set[str] = set()
    for message in [*notes, *total.warnings, *(str(w.message) for w in caught)]:
        if message not in shown:
            shown.add(message)
            print_warning(console, message)
    grid = total.grid
    spacing = " x ".join(f"{s:.4g}" for s in grid.spacing_mm)
    shape = " x ".join(str(n) for n in grid.shape)
    console.print(
        f"wrote {escape(str(output))}: sum of {len(paths)} doses, max {total.max_gy:.4g} Gy, "
        f"grid {shape} (slices x rows x columns) at {spacing} mm",
        soft_wrap=True,
    )
    return EXIT_OK
