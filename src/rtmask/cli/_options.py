"""Options shared by several commands, defined once so they read the same everywhere."""

from __future__ import annotations

import argparse
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console

from rtmask._scheduler import scheduler_problem
from rtmask.cli._output import print_error
from rtmask.discovery import SeriesLink
from rtmask.errors import RoiMapError
from rtmask.raster import CombinationRule

if TYPE_CHECKING:
    from rtmask.names import RoiMap

__all__ = [
    "IMAGE_HINT",
    "add_json_option",
    "add_output_option",
    "add_roi_map_option",
    "add_roi_option",
    "add_rule_option",
    "link_message",
    "read_roi_map_option",
    "roi_listing",
    "roi_options",
    "roi_patterns",
    "scheduler_address",
]

#: How ``convert``, ``volumes`` and ``dvh`` are given the image series explicitly.
IMAGE_HINT = "pass --image DIR with the series it was made on"


def add_output_option(parser: argparse.ArgumentParser, metavar: str, help_text: str) -> None:
    """``-o/--output``: the (required) file or folder the command writes."""
    parser.add_argument("-o", "--output", type=Path, required=True, metavar=metavar, help=help_text)


def add_json_option(parser: argparse._ActionsContainer, instead_of: str = "a table") -> None:
    """``--json``: one JSON document on stdout instead of what is printed otherwise."""
    parser.add_argument(
        "--json",
        action="store_true",
        help=f"print one JSON document on stdout instead of {instead_of}",
    )


def add_roi_option(parser: argparse.ArgumentParser, numbers: bool = False) -> None:
    """``--roi NAME``, repeatable: exact names (case-insensitive) or glob patterns.

    One value per use (``--roi A --roi B``), so the option may come before the file
    arguments without taking them; ``numbers``: a command that also takes ROI numbers.
    """
    what = "exact name (case-insensitive), glob pattern ('PTV*')"
    parser.add_argument(
        "--roi",
        action="append",
        default=[],
        metavar="NAME",
        help=(
            f"only this ROI: {what}{' or ROI number' if numbers else ''}; "
            "repeat for more (--roi A --roi B)"
        ),
    )


def roi_patterns(values: Sequence[str], names_by_number: Mapping[int, str]) -> list[str]:
    """``--roi`` values with ROI numbers replaced by those ROIs' names.

    A value of digits names the ROI of that number, unless some ROI is called so.
    """
    called = {name.casefold() for name in names_by_number.values()}
    return [
        names_by_number.get(int(value), value)
        if value.strip().isdigit() and value.casefold() not in called
        else value
        for value in values
    ]


def roi_listing(names_by_number: Mapping[int, str]) -> str:
    """The ROIs to choose from in a ``--roi`` error: ``1 'BODY', 2 'Heart'`` (number and name)."""
    return ", ".join(f"{number} {name!r}" for number, name in names_by_number.items())


def roi_options(values: Sequence[str]) -> str:
    """``--roi`` values as typed: ``--roi A --roi B``."""
    return " ".join(f"--roi {value}" for value in values)


def add_roi_map_option(parser: argparse.ArgumentParser, help_text: str | None = None) -> None:
    """``--roi-map FILE``: canonical ROI names from a YAML or CSV map."""
    parser.add_argument(
        "--roi-map",
        type=Path,
        metavar="FILE",
        help=help_text
        or (
            "map ROI names onto canonical names (YAML 'canonical: [pattern, ...]' or CSV "
            "'canonical,pattern'); only mapped ROIs (and --roi ones) are selected"
        ),
    )


def read_roi_map_option(path: Path | None, console: Console) -> RoiMap | int | None:
    """The map of ``--roi-map``: None without one, exit code 2 after one line when unusable."""
    if path is None:
        return None
    from rtmask.names import load_roi_map  # noqa: PLC0415 - only with --roi-map

    try:
        return load_roi_map(path)
    except RoiMapError as error:
        print_error(console, f"--roi-map: {error}")
        return 2


def add_rule_option(parser: argparse.ArgumentParser) -> None:
    """``--rule auto|xor|union``: how several contours on one plane combine."""
    parser.add_argument(
        "--rule",
        choices=[r.value for r in CombinationRule],
        default="auto",
        help="how several contours on one plane combine (default: auto)",
    )


def link_message(link: SeriesLink, hint: str = IMAGE_HINT) -> str:
    """A link's message, plus the command's way of giving a guessed or missing series.

    The library's message names no option; each command adds its own ``hint``.
    """
    if link.method in ("none", "geometry"):
        return f"{link.message} ({hint})"
    return link.message


def scheduler_address(text: str) -> str:
    """``--scheduler``'s type: a usage error (exit code 2) when its form is not accepted.

    Checked while the arguments are parsed, so that nothing is written before.
    """
    problem = scheduler_problem(text)
    if problem:
        raise argparse.ArgumentTypeError(problem)
    return text
