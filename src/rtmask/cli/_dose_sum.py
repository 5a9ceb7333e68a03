"""``rtmask dose-sum DOSE1 DOSE2 ... -o SUM.dcm``: add RT Doses, each scaled, into a new RT Dose.

The sum lives on the first dose's grid; the other doses are trilinearly interpolated onto
it when their grids differ (shown as a warning). The new file carries the first dose's
patient, study and frame of reference and references the plans of every input.
"""

from __future__ import annotations

import argparse
import math
import warnings
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape

from rtmask._errors import InvalidInputError
from rtmask._limits import MAX_DOSE_GY
from rtmask.cli._options import add_output_option
from rtmask.cli._output import print_error, print_warning
from rtmask.dose import DoseGrid, add_doses, read_dose, scale_dose
from rtmask.export import write_rtdose

__all__ = ["CLI_WORDING", "add_parser", "run"]

#: The library's keyword hints in this command's words (see ``reword``).
CLI_WORDING = {
    "pass the prescription (prescription_gy=...) to read the dose in Gy": (
        "rtmask dose-sum adds doses in Gy only; convert it to Gy first"
    ),
    "(pass dose_type='ERROR')": "(a sum is of DoseType ERROR when every DOSE is)",
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
    return parser


def _sum(paths: list[Path], factors: list[float]) -> DoseGrid:
    total: DoseGrid | None = None
    for path, factor in zip(paths, factors, strict=True):
        if not (math.isfinite(factor) and factor >= 0):
            raise InvalidInputError(f"{path}: --scale {factor} is not a finite number >= 0")
        dose = read_dose(path)
        largest = factor * max(dose.max_gy, -float(dose.dose_gy.min()))
        if largest > MAX_DOSE_GY:  # before the product overflows
            raise InvalidInputError(
                f"{path}: --scale {factor:g} makes its dose reach {largest:.4g} Gy, beyond the "
                f"{MAX_DOSE_GY:g} Gy any treatment reaches; check the factor"
            )
        if factor != 1.0:
            dose = scale_dose(dose, factor)
        total = dose if total is None else add_doses(total, dose)
    assert total is not None  # argparse requires at least one DOSE
    return total


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
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        total = _sum(paths, factors)
        largest = max(total.max_gy, -float(total.dose_gy.min()))
        if largest > MAX_DOSE_GY:  # refused before anything is written
            raise InvalidInputError(
                f"{output}: the sum reaches {largest:.4g} Gy, beyond the {MAX_DOSE_GY:g} Gy "
                "any treatment reaches; check the --scale factors"
            )
        write_rtdose(
            total,
            output,
            reference=paths,
            bits=args.bits,
            description=f"rtmask sum of {len(paths)} doses",
        )
    shown: set[str] = set()
    for message in [*total.warnings, *(str(w.message) for w in caught)]:
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
