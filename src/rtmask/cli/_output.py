"""Printing one-line errors and warnings (escaped: file and ROI names may hold '[')."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

from rich.console import Console
from rich.markup import escape

if TYPE_CHECKING:
    from rich.progress import Progress, TaskID

__all__ = ["print_error", "print_warning", "progress_bar"]


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


def progress_bar(console: Console, **options: Any) -> Progress | _NoProgress:
    """A transient rich Progress on ``console`` when it is a terminal, else a silent one.

    Output to a pipe or file shows no bar, and then rich.progress is not even imported
    (a faster start for scripted runs).
    """
    if not console.is_terminal or console.quiet:
        return _NoProgress()
    from rich.progress import Progress  # noqa: PLC0415 - only when a bar is shown

    return Progress(console=console, transient=True, **options)
