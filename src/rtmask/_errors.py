"""The former home of rtmask's exceptions and warnings: see :mod:`rtmask.errors`.

Kept so that ``from rtmask._errors import ...`` goes on working; new code imports from
:mod:`rtmask.errors`.
"""

from rtmask import errors as _public
from rtmask.errors import *  # noqa: F403 - every public name of rtmask.errors, the same objects

__all__ = _public.__all__
