"""The ``rtmask`` command line: parses arguments, shows progress, calls the library."""

from rtmask.cli._main import main

__all__ = ["main"]
