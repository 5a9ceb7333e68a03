"""Entry point: one sub-command per module, each with ``add_parser`` and ``run``.

Exit codes: 0 everything done, 1 something failed (what could be done was done), 2 usage
error. Expected failures (:class:`RtmaskError`) print one line, never a traceback.
"""

from __future__ import annotations

import argparse
import logging
import sys
import warnings
from collections.abc import Sequence
from types import ModuleType

from rich.console import Console

from rtmask import __version__
from rtmask._errors import RtmaskError
from rtmask.cli import _convert, _demo, _dose_sum, _dvh, _info, _to_rtstruct, _volumes
from rtmask.cli._output import print_error

__all__ = ["EXIT_FAILURE", "EXIT_OK", "EXIT_USAGE", "main"]

EXIT_OK, EXIT_FAILURE, EXIT_USAGE = 0, 1, 2


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose usage errors exit with code 2 and one clear line."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        sys.stderr.write(f"rtmask: error: {message}\n")
        raise SystemExit(EXIT_USAGE)


def _commands() -> list[ModuleType]:
    return [_convert, _to_rtstruct, _info, _volumes, _dvh, _dose_sum, _demo]


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser (one sub-parser per command)."""
    parser = _Parser(
        prog="rtmask",
        description="Exact voxel masks from DICOM RT Structure Sets.",
    )
    parser.add_argument("--version", action="version", version=f"rtmask {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    subparsers.required = True
    for module in _commands():
        sub = module.add_parser(subparsers)
        verbosity = sub.add_mutually_exclusive_group()
        verbosity.add_argument(
            "-v", "--verbose", action="store_true", help="more detail (every warning, debug log)"
        )
        verbosity.add_argument(
            "-q", "--quiet", action="store_true", help="only errors; no progress bars or tables"
        )
        sub.set_defaults(run=module.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    console = Console(stderr=True, quiet=bool(args.quiet), highlight=False)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    if not args.verbose:
        # pydicom logs every deviation it tolerates; rtmask reports what matters itself.
        logging.getLogger("pydicom").setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            # The library warns once per defect; the commands collect and show them
            # in their own summaries, so Python's warning printer stays silent.
            warnings.simplefilter("ignore")
            return int(args.run(args, console))
    except RtmaskError as error:
        print_error(console, str(error))
        return EXIT_FAILURE
    except KeyboardInterrupt:
        print_error(console, "interrupted; the files already written are complete")
        return 130
