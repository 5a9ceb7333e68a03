"""Entry point: one sub-command per module, each with ``add_parser`` and ``run``.

Only the module of the command being run is imported (``rtmask dvh`` never loads the
NIfTI writers), so every command starts fast; ``rtmask --help`` and usage errors load
them all to list every command.

Exit codes: 0 everything done, 1 something failed (what could be done was done), 2 usage
error. Expected failures (:class:`RtmaskError`) and file-system errors (an output path
that is a file, not writable, a full disk) print one line, never a traceback.
"""

from __future__ import annotations

import argparse
import errno
import importlib
import logging
import os
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

from rich.console import Console

from rtmask import __version__
from rtmask._errors import RtmaskError
from rtmask.cli._output import print_error, reword

__all__ = ["EXIT_FAILURE", "EXIT_OK", "EXIT_USAGE", "main"]

EXIT_OK, EXIT_FAILURE, EXIT_USAGE = 0, 1, 2


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose usage errors exit with code 2 and one clear line."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        sys.stderr.write(f"rtmask: error: {message}\n")
        raise SystemExit(EXIT_USAGE)


#: Command name -> its module in rtmask.cli, in the order ``--help`` lists them.
COMMANDS = {
    "convert": "_convert",
    "to-rtstruct": "_to_rtstruct",
    "to-seg": "_to_seg",
    "info": "_info",
    "volumes": "_volumes",
    "dvh": "_dvh",
    "dose-sum": "_dose_sum",
    "dose-view": "_dose_view",
    "index": "_index",
    "query": "_query",
    "names": "_names",
    "report": "_report",
    "demo": "_demo",
    "dataset": "_dataset",
}


def _commands(argv: Sequence[str] | None = None) -> list[ModuleType]:
    """The command modules the parser needs: the one named in ``argv``, else all."""
    names = list(COMMANDS)
    if argv is not None:
        first = next((a for a in argv if not a.startswith("-")), None)
        before = set(argv if first is None else argv[: argv.index(first)])
        if "--version" in before and not {"-h", "--help"} & before:
            names = []  # prints the version and exits: no command needed
        elif first in COMMANDS and not {"-h", "--help"} & before:
            names = [first]
    return [importlib.import_module(f"rtmask.cli.{COMMANDS[name]}") for name in names]


def build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The argument parser: one sub-parser per command, or only the one ``argv`` runs."""
    parser = _Parser(
        prog="rtmask",
        description="Exact voxel masks from DICOM RT Structure Sets.",
    )
    parser.add_argument("--version", action="version", version=f"rtmask {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    subparsers.required = True
    for module in _commands(argv):
        sub = module.add_parser(subparsers)
        verbosity = sub.add_mutually_exclusive_group()
        verbosity.add_argument(
            "-v", "--verbose", action="store_true", help="more detail (every warning, debug log)"
        )
        verbosity.add_argument(
            "-q", "--quiet", action="store_true", help="only errors; no progress bars or tables"
        )
        # CLI_WORDING: library phrases (Python keywords) -> the command's options.
        sub.set_defaults(run=module.run, wording=getattr(module, "CLI_WORDING", {}))
    return parser


#: What to do about the file-system errors a command meets most, by errno.
_OS_ERROR_ADVICE = {
    errno.EEXIST: "a file of that name is in the way of a folder; give another output path",
    errno.ENOTDIR: "part of the path is a file, not a folder; give another output path",
    errno.EISDIR: "it is a folder; give a file name",
    errno.ENOENT: "check the path",
    errno.EACCES: "check the permissions or give another output path",
    errno.EPERM: "check the permissions or give another output path",
    errno.EROFS: "the file system is read-only; give another output path",
    errno.ENOSPC: "the disk is full; free some space or write elsewhere",
    errno.EDQUOT: "the disk quota is used up; free some space or write elsewhere",
    errno.EFBIG: "the file is larger than this file system or limit allows; write elsewhere",
    errno.ENAMETOOLONG: "the name is too long for the file system; give a shorter path",
}


def describe_os_error(error: OSError) -> str:
    """One line for a file-system error: the path, what failed, what to do.

    The writers are atomic, so whatever the error, no half-written file is left: the line
    says so, since a user who sees "disk full" will wonder.
    """
    filename, cause = error.filename, error
    # Some writers (pydicom) re-raise a new OSError without errno, the real one as cause.
    while cause.errno is None and isinstance(cause.__cause__, OSError):
        cause = cause.__cause__
        filename = cause.filename if filename is None else filename
    where = f"{os.fspath(filename)}: " if filename is not None else ""
    reason = (cause.strerror or str(cause) or type(cause).__name__).rstrip(".")
    advice = _OS_ERROR_ADVICE.get(cause.errno or -1, "")
    return (
        f"{where}{reason[:1].lower()}{reason[1:]}"
        + (f"; {advice}" if advice else "")
        + " (files already written are complete; none is left half-written)"
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code."""
    arguments = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser(arguments)
    args, extras = parser.parse_known_args(arguments)
    late = getattr(args, "late_positional", None)
    # ``dvh RS --roi X RD``: a positional after an option lands among the extras.
    if late and len(extras) == 1 and getattr(args, late) is None and extras[0][:1] != "-":
        setattr(args, late, Path(extras[0]))
        extras = []
    if extras:
        parser.error(f"unrecognized arguments: {' '.join(extras)}")
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
        print_error(console, reword(str(error), args.wording))
        return EXIT_FAILURE
    except MemoryError:  # the last resort: arrays are sized against limits before
        print_error(
            console,
            f"rtmask {' '.join(arguments)}: out of memory; the input is larger than this "
            "machine can hold (check its geometry, or use a coarser grid)",
        )
        return EXIT_FAILURE
    except OSError as error:  # the file system refused: OUT is a file, not writable, full
        print_error(console, describe_os_error(error))
        return EXIT_FAILURE
    except KeyboardInterrupt:
        print_error(console, "interrupted; the files already written are complete")
        return 130
