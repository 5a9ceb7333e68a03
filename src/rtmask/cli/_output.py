"""Printing one-line errors and warnings (escaped: file and ROI names may hold '[')."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from rich.console import Console
from rich.markup import escape

if TYPE_CHECKING:
    from rich.progress import Progress, ProgressColumn, TaskID

__all__ = [
    "counting_bar",
    "json_text",
    "located",
    "print_error",
    "print_warning",
    "progress_bar",
    "reword",
]


def _finite(value: Any) -> Any:
    """``value`` with every NaN or infinite float (in dicts, lists, tuples) made None."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(item) for item in value]
    return value


def json_text(document: Any, *, indent: int | None = 2) -> str:
    """``document`` as JSON text; NaN and infinities become null (JSON has no such numbers).

    ``allow_nan=False`` guards the rule: a value that slips through raises instead of
    printing ``NaN``, which no JSON reader accepts.
    """
    return json.dumps(_finite(document), indent=indent, allow_nan=False)


def reword(message: str, wording: Mapping[str, str]) -> str:
    """A library message in the command line's words.

    Each key of ``wording`` (a phrase naming a Python keyword argument, e.g.
    ``"prescription_gy=..."``) is replaced by its value (the command's option, or nothing
    when the command has none), in the mapping's order.
    """
    for library, command_line in wording.items():
        message = message.replace(library, command_line)
    return message


def located(message: str, path: Path | str) -> str:
    """``message`` led by ``path:`` unless it names that file already."""
    return message if str(path) in message else f"{path}: {message}"


def print_error(console: Console, message: str) -> None:
    """Print ``error: message`` on the console, even when it is quiet."""
    quiet, console.quiet = console.quiet, False
    try:
        console.print(f"[red]error:[/red] {escape(message)}", soft_wrap=True)
    finally:
        console.quiet = quiet


def print_warning(console: Console, message: str) -> None:
    """Print ``warning: message`` (hidden by --quiet)."""
    console.print(f"[yellow]warning:[/yellow] {escape(message)}", soft_wrap=True)


class _NoProgress:
    """What :func:`progress_bar` gives when no bar is shown: every call does nothing."""

    def __enter__(self) -> _NoProgress:
        return self

    def __exit__(self, *exc_info: object) -> None:
        return None

    def add_task(self, description: str, **options: Any) -> TaskID:
        return cast("TaskID", 0)

    def update(self, task: TaskID, **options: Any) -> None:
        return None

    def advance(self, task: TaskID, advance: float = 1) -> None:
        return None


def progress_bar(
    console: Console, *columns: str | ProgressColumn, **options: Any
) -> Progress | _NoProgress:
    """A transient rich Progress on ``console`` when it is a terminal, else a silent one.

    Output to a pipe or file shows no bar, and then rich.progress is not even imported
    (a faster start for scripted runs). ``columns`` as :class:`rich.progress.Progress`
    (none: rich's default ones).
    """
    if not console.is_terminal or console.quiet:
        return _NoProgress()
    from rich.progress import Progress  # noqa: PLC0415 - only when a bar is shown

    return Progress(*columns, console=console, transient=True, **options)


def counting_bar(console: Console) -> Progress | _NoProgress:
    """:func:`progress_bar` showing the task's description, done of total and time taken."""
    if not console.is_terminal or console.quiet:
        return _NoProgress()
    from rich.progress import (  # noqa: PLC0415 - only when a bar is shown
        BarColumn,
        MofNCompleteColumn,
        TextColumn,
        TimeElapsedColumn,
    )

    return progress_bar(
        console,
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
