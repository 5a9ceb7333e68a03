"""Printing one-line errors and warnings (escaped: file and ROI names may hold '[')."""

from __future__ import annotations

from rich.console import Console
from rich.markup import escape

__all__ = ["print_error", "print_warning"]


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
