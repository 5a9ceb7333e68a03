"""Options shared by several commands, defined once so they read the same everywhere."""

from __future__ import annotations

import argparse

from rtmask.discovery import SeriesLink
from rtmask.raster import CombinationRule

__all__ = ["IMAGE_HINT", "add_roi_option", "add_rule_option", "link_message"]

#: How ``convert``, ``volumes`` and ``dvh`` are given the image series explicitly.
IMAGE_HINT = "pass --image DIR with the series it was made on"


def add_roi_option(parser: argparse.ArgumentParser) -> None:
    """``--roi NAME...``: exact names (case-insensitive) or glob patterns."""
    parser.add_argument(
        "--roi",
        nargs="+",
        default=[],
        metavar="NAME",
        help="only these ROIs: exact names (case-insensitive) or glob patterns",
    )


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
