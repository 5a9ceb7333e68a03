"""Importing optional dependencies lazily, with an error that names the extra to install."""

from __future__ import annotations

import importlib
import types

from rtmask.errors import MissingDependencyError

__all__ = ["import_optional"]


def import_optional(module: str, *, extra: str, feature: str) -> types.ModuleType:
    """Import ``module`` on first use of an optional feature.

    Parameters
    ----------
    module
        Dotted module name, e.g. ``"matplotlib.figure"``.
    extra
        The rtmask extra that installs it, e.g. ``"plot"``.
    feature
        What needs it, as a plural noun phrase, e.g. ``"overlay pictures"``.

    Raises
    ------
    MissingDependencyError
        One line naming the package and the ``pip install 'rtmask[extra]'`` command.
    """
    try:
        return importlib.import_module(module)
    except ImportError as error:
        package = module.partition(".")[0]
        broken = error.name and error.name.partition(".")[0] != package
        detail = f" (it could not import {error.name})" if broken else ""
        raise MissingDependencyError(
            f"{feature} need {package}{detail}: pip install 'rtmask[{extra}]'"
        ) from error
