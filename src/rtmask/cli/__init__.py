"""The ``rtmask`` command line: parses arguments, shows progress, calls the library.

When the command line is the first to load numpy (the ``rtmask`` program itself), BLAS
gets one thread unless ``OPENBLAS_NUM_THREADS`` says otherwise: rtmask runs its own worker
threads and calls no large linear algebra, and idle BLAS threads busy-wait on the CPUs
those workers need (start-up ~50 ms slower on two CPUs). The library leaves this alone.
"""

import os
import sys

if "numpy" not in sys.modules:
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

from rtmask.cli._main import main  # after the BLAS setting

__all__ = ["main"]
