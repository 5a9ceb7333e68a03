"""The stamp of an index's last run: what makes re-indexing an unchanged archive cheap.

``INDEX.duckdb.stamp.json`` holds a digest of the archive as walked (every file's path,
size and modification time, the folder problems, the options) and the size and
modification time of the index file when the run ended. When the next run walks the
same archive and the index file is untouched, there is nothing to do, and DuckDB is not
even opened (starting it costs more than walking a few hundred files). Anything else (no
stamp, a stamp that does not match, an index written since) takes the ordinary path,
which compares the walk with the index's own records: the stamp is only a shortcut,
never the source of truth.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rtmask._atomic import atomic_path
from rtmask._version import __version__
from rtmask.cohort._schema import SCHEMA_VERSION
from rtmask.cohort._walk import FileEntry, FolderProblem

__all__ = ["archive_digest", "read_stamp", "remove_stamp", "write_stamp"]

logger = logging.getLogger(__name__)


def _stamp_path(index_path: Path) -> Path:
    return index_path.with_name(index_path.name + ".stamp.json")


def archive_digest(
    root: Path, entries: Sequence[FileEntry], problems: Sequence[FolderProblem], volumes: bool
) -> str:
    """A digest of the walk and the options: equal exactly when a rerun has nothing to do."""
    digest = hashlib.blake2b(digest_size=20)
    digest.update(f"{__version__}\0{SCHEMA_VERSION}\0{root.resolve()}\0{volumes}\0".encode())
    for entry in entries:
        digest.update(f"{entry.rel}\0{entry.size}\0{entry.mtime_ns}\n".encode())
    for problem in problems:
        digest.update(f"{problem.rel}\0{problem.reason}\n".encode())
    return digest.hexdigest()


def _index_state(index_path: Path) -> list[int] | None:
    try:
        stat = index_path.stat()
    except OSError:
        return None
    return [stat.st_size, stat.st_mtime_ns]


def read_stamp(index_path: Path, digest: str) -> dict[str, Any] | None:
    """The last run's counts and problems when the stamp matches ``digest`` and the index."""
    try:
        stamp = json.loads(_stamp_path(index_path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(stamp, dict) or stamp.get("digest") != digest:
        return None
    if stamp.get("index") != _index_state(index_path):
        return None
    report = stamp.get("report")
    return report if isinstance(report, dict) else None


def remove_stamp(index_path: Path) -> None:
    """Forget the stamp (before the index is changed)."""
    with contextlib.suppress(FileNotFoundError):
        _stamp_path(index_path).unlink()


def write_stamp(index_path: Path, digest: str, report: dict[str, Any]) -> None:
    """Stamp the index as it is now; a stamp that cannot be written is only logged."""
    state = _index_state(index_path)
    if state is None:
        return
    text = json.dumps({"digest": digest, "index": state, "report": report})
    try:
        with atomic_path(_stamp_path(index_path)) as partial:
            partial.write_text(text, encoding="utf-8")
    except OSError as error:
        logger.debug("no stamp written next to %s: %s", index_path, error)
