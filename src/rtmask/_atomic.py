"""Atomic file writing: write to a hidden temporary file, then rename it onto the target.

A reader (or a crash) never sees a half-written output file: the file at the final path is
either the previous one or the complete new one.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Iterator
from pathlib import Path

__all__ = ["atomic_path", "full_suffix"]

#: Suffixes that only say how the real format is compressed (``.nii.gz``, ``.raw.bz2``).
_COMPRESSION_SUFFIXES = frozenset({".gz", ".bz2", ".xz", ".zst", ".lz4"})
#: Longest part of the final name kept in a temporary name (bytes are checked separately).
_MAX_TEMP_NAME_CHARS = 100


def full_suffix(name: str) -> str:
    """Return the format suffix of a file name: ``.nii.gz``, ``.nrrd``, ``.csv`` or ``""``.

    A compression suffix (``.gz``, ``.bz2``, ...) is returned together with the one before
    it, so ``"PTV 70.5 Gy.nii.gz"`` gives ``".nii.gz"`` (not ``".5 Gy.nii.gz"``).
    """
    path = Path(name)
    last = path.suffix
    if last.lower() in _COMPRESSION_SUFFIXES:
        inner = Path(path.stem).suffix
        if inner and " " not in inner:
            return inner + last
    return last


@contextlib.contextmanager
def atomic_path(final: Path) -> Iterator[Path]:
    """Yield a temporary path next to ``final``; move it onto ``final`` when the block succeeds.

    The temporary file is created empty (exclusively, with the usual permissions) in the same
    folder as ``final``, named ``.<name>.<random>.tmp<suffix>`` so that writers that infer the
    format from the suffix (``.nii.gz``) still work. On success it replaces ``final``
    (``os.replace``: atomic on POSIX and Windows); when the block raises, or the rename
    fails, the temporary file is deleted and the exception propagates (an ``OSError`` names
    ``final``, never the temporary file). The data is not
    fsync-ed: atomic against readers and crashes of this process, not against power loss.

    Parameters
    ----------
    final
        Path of the file to write. Its folder must exist.

    Yields
    ------
    pathlib.Path
        The temporary path to write to.
    """
    final = Path(final)
    suffix = full_suffix(final.name)
    base = final.name[: len(final.name) - len(suffix)] if suffix else final.name
    base = base[:_MAX_TEMP_NAME_CHARS]
    temporary: Path | None = None
    for _ in range(100):
        candidate = final.with_name(f".{base}.{secrets.token_hex(4)}.tmp{suffix}")
        try:
            descriptor = os.open(candidate, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        except FileExistsError:
            continue
        except OSError as error:  # no folder, a file in the way, no permission, disk full
            _name_final(error, final, candidate)
            raise
        os.close(descriptor)
        temporary = candidate
        break
    if temporary is None:  # pragma: no cover - 100 random collisions in a row
        raise FileExistsError(f"could not create a temporary file next to {final}")
    try:
        yield temporary
        temporary.replace(final)
    except BaseException as error:
        with contextlib.suppress(OSError):
            temporary.unlink()
        if isinstance(error, OSError):
            _name_final(error, final, temporary)
        raise


def _name_final(error: OSError, final: Path, temporary: Path) -> None:
    """Make ``error`` name the file being written, not its hidden temporary (or nothing).

    A failed write (disk full, file too large) often carries no file name, and a failed
    creation names the temporary file; the user knows ``final``.
    """
    if error.filename is None or os.fspath(error.filename) == os.fspath(temporary):
        error.filename = os.fspath(final)
