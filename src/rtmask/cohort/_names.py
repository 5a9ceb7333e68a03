"""The ROI names of every structure set in an index, for ``rtmask names INDEX``.

The names package counts :class:`~rtmask.names.StructureSetNames`; a folder yields them by
reading headers, an index written by ``rtmask index`` from its ``rt_objects`` and ``rois``
tables, without opening a DICOM file. Both give the same structure sets, patients and
names, so ``rtmask names INDEX`` prints what ``rtmask names ROOT`` prints.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import Any

from rtmask._errors import InvalidInputError
from rtmask.cohort._index import _DUCKDB_MAGIC, _schema_version, connect
from rtmask.cohort._schema import INFO_TABLE, SCHEMA_VERSION
from rtmask.discovery import SkippedFile
from rtmask.names import StructureSetNames

__all__ = ["structure_sets_in_index"]

#: Every structure set of the index with its ROIs (a set without ROIs still counts).
_STRUCTURE_SETS = """
SELECT o.path, o.PatientID, o.SOPInstanceUID, r.ROINumber, r.ROIName
FROM rt_objects AS o
LEFT JOIN rois AS r ON r.path = o.path AND r.Modality = 'RTSTRUCT'
WHERE o.Modality = 'RTSTRUCT'
ORDER BY o.path, r.ROINumber
"""


def structure_sets_in_index(path: Path | str) -> Iterator[StructureSetNames | str | SkippedFile]:
    """Yield the ROI names of every structure set an index lists (no DICOM file is read).

    Parameters
    ----------
    path
        An index written by ``rtmask index`` (or :func:`index_archive`).

    Yields
    ------
    StructureSetNames or str or SkippedFile
        One per RT Structure Set of the ``rt_objects`` table (its ``source`` the file under
        the indexed root, as ``rtmask names ROOT`` names it); a ``str`` (one line) per file
        the index records as unreadable; a :class:`SkippedFile` per symbolic link that
        loops (a warning).

    Raises
    ------
    InvalidInputError
        The file is missing, not a DuckDB database, not an rtmask index, or an index of
        another schema version.
    MissingDependencyError
        DuckDB is not installed (``pip install 'rtmask[cohort]'``).
    """
    path = Path(path)
    if path.is_file() and not _is_duckdb(path):
        raise InvalidInputError(
            f"{path}: not a folder, nor an rtmask index (not a DuckDB database); give the "
            "archive's folder, or an index written by 'rtmask index ROOT -o INDEX.duckdb'"
        )
    con = connect(path, read_only=True)
    try:
        root = _indexed_root(con, path)
        unreadable = con.execute(
            "SELECT path, reason FROM files WHERE status = 'unreadable' ORDER BY path"
        ).fetchall()
        loops = con.execute(
            "SELECT path, reason FROM files WHERE skip_kind = 'symlink_loop' ORDER BY path"
        ).fetchall()
        rows = con.execute(_STRUCTURE_SETS).fetchall()
    finally:
        con.close()
    for rel, reason in unreadable:
        yield f"{_under(root, str(rel))}: {reason}"
    for rel, reason in loops:
        yield SkippedFile(
            path=Path(_under(root, str(rel))), reason=str(reason), kind="symlink_loop"
        )
    sets: dict[str, tuple[str | None, str | None, list[tuple[int, str]]]] = {}
    for rel, patient_id, uid, number, name in rows:
        _, _, rois = sets.setdefault(str(rel), (patient_id, uid, []))
        if number is not None or name is not None:
            rois.append((int(number or 0), str(name or "").strip()))
    for rel, (patient_id, uid, rois) in sets.items():
        yield StructureSetNames(
            source=_under(root, rel), patient_id=patient_id, rois=tuple(rois), sop_instance_uid=uid
        )


def _is_duckdb(path: Path) -> bool:
    with path.open("rb") as stream:
        return stream.read(12)[8:12] == _DUCKDB_MAGIC


def _indexed_root(con: Any, path: Path) -> str:
    """The root folder the index was made of; raise when it is not a current rtmask index."""
    version = _schema_version(con, path)
    if version is None:
        raise InvalidInputError(
            f"{path}: an empty DuckDB database, not an rtmask index; "
            f"create one with 'rtmask index ROOT -o {path}'"
        )
    if version != SCHEMA_VERSION:
        raise InvalidInputError(
            f"{path}: an rtmask index of schema version {version} (this rtmask reads "
            f"{SCHEMA_VERSION}); run 'rtmask index ROOT -o {path}' again to update it"
        )
    info = dict(con.execute(f"SELECT key, value FROM {INFO_TABLE}").fetchall())
    return str(info.get("root") or "")


def _under(root: str, rel: str) -> str:
    """A path of the index (relative, / separated) under the indexed root, as a string."""
    if not root:
        return rel
    return str(Path(root).joinpath(*PurePosixPath(rel).parts))
