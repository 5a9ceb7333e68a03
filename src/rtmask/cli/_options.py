"""Options shared by several commands, defined once so they read the same everywhere."""

from __future__ import annotations

import argparse

from rtmask.raster import CombinationRule

__all__ = ["add_roi_option", "add_rule_option"]


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
