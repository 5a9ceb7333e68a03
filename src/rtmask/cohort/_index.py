"""Indexing an archive into a DuckDB database, incrementally.

Each file's header result is cached (as JSON) with its size and modification time; a
rerun reads only files that are new or changed and drops what was deleted, then rebuilds
the ``files``, ``series`` and ``rt_objects`` tables from the cache (the grouping into
series and the links depend on the whole archive). ``rois`` rows (one per structure set
ROI and one per SEG segment) belong to one file and are replaced only for the files read.
Everything happens in one transaction: an interrupted run leaves the previous index as it
was. A new index is built in a hidden temporary file and renamed onto its name at the
end: a failed first run leaves no file.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rtmask._errors import DicomReadError, InvalidInputError
from rtmask.cohort._rows import (
    Row,
    decode_result,
    duplicates,
    encode_result,
    file_row,
    mark_skipped,
    relative,
    roi_rows,
    rt_object_row,
    segment_rows,
    series_row,
    volumes_by_number,
)
from rtmask.cohort._schema import CACHE_TABLE, INFO_TABLE, SCHEMA_VERSION, TABLES, create_statements
from rtmask.cohort._stamp import archive_digest, read_stamp, remove_stamp, write_stamp
from rtmask.cohort._walk import FileEntry, FolderProblem, walk_archive
from rtmask.discovery import (
    ImageHeader,
    RTObject,
    SkippedFile,
    build_inventory,
    link_image_series,
    read_header,
)
from rtmask.errors import RoiMapError
from rtmask.names import RoiMap

__all__ = ["IndexReport", "connect", "index_archive"]

#: DuckDB's database files carry this magic at byte 8.
_DUCKDB_MAGIC = b"DUCK"

Result = ImageHeader | RTObject | SkippedFile


@dataclass(frozen=True, slots=True, kw_only=True)
class IndexReport:
    """What one :func:`index_archive` run did.

    Parameters
    ----------
    index_path
        The database written.
    files
        Files found under the root.
    files_read
        Files whose headers (or contours, for ``volumes``) were read in this run; 0 when
        nothing changed.
    files_removed
        Files indexed before and gone now.
    series, rt_objects, rois
        Rows of those tables after the run.
    problems
        One line each: unreadable files, folder problems (symbolic link loops), RT objects
        whose SOPInstanceUID another file has too, ``--roi-map`` conflicts.
    seconds
        Wall time of the run.
    map_conflicts
        One line per structure set whose ROIs the ROI map cannot tell apart (their
        ``canonical`` is NULL, the line is in ``rt_objects.roi_map_conflict``); also in
        ``problems``.
    """

    index_path: Path
    files: int
    files_read: int
    files_removed: int
    series: int
    rt_objects: int
    rois: int
    problems: tuple[str, ...]
    seconds: float
    map_conflicts: tuple[str, ...] = ()


def _duckdb() -> Any:
    from rtmask._optional import import_optional  # noqa: PLC0415 - only when indexing

    return import_optional("duckdb", extra="cohort", feature="archive indexes")


def _check_database_file(path: Path) -> None:
    """Raise when ``path`` exists and is not a DuckDB database (it is never overwritten)."""
    if path.is_dir():
        raise InvalidInputError(f"{path}: is a folder; give the index a file name (*.duckdb)")
    if not path.exists() or path.stat().st_size == 0:
        return
    with path.open("rb") as stream:
        head = stream.read(12)
    if head[8:12] != _DUCKDB_MAGIC:
        raise InvalidInputError(
            f"{path}: not a DuckDB database, so not an rtmask index; it was left as it is: "
            "give another index path, or remove the file"
        )


def connect(path: Path | str, *, read_only: bool) -> Any:
    """A DuckDB connection to an index file, with one clear error when it cannot be opened."""
    duckdb = _duckdb()
    path = Path(path)
    if read_only and not path.is_file():
        raise InvalidInputError(
            f"{path}: no such index; create it with 'rtmask index ROOT -o {path}'"
        )
    _check_database_file(path)
    if not read_only:
        path.parent.mkdir(parents=True, exist_ok=True)
    try:
        return duckdb.connect(str(path), read_only=read_only)
    except duckdb.Error as error:
        detail = " ".join(str(error).split()) or type(error).__name__
        hint = (
            "another program (an rtmask index run?) has it open; wait for it or close it"
            if "lock" in detail.lower()
            else "check the path and the permissions"
        )
        raise InvalidInputError(f"{path}: cannot open the index ({detail}); {hint}") from error


def _tables(con: Any) -> set[str]:
    rows = con.execute("SELECT table_name FROM duckdb_tables()").fetchall()
    return {str(r[0]) for r in rows}


def _schema_version(con: Any, path: Path) -> str | None:
    """The index's schema version; None for a new (empty) database.

    Run outside a transaction: a failing query would abort it.
    """
    try:
        info = dict(con.execute(f"SELECT key, value FROM {INFO_TABLE}").fetchall())
    except _duckdb().CatalogException:
        tables = _tables(con)
        if tables:
            raise InvalidInputError(
                f"{path}: a DuckDB database but not an rtmask index (tables: "
                f"{', '.join(sorted(tables)[:5])}); it was left as it is: give another index path"
            ) from None
        return None
    return str(info.get("schema_version"))


def _prepare(con: Any, version: str | None, root: Path) -> None:
    """Create the tables of a new index, or rebuild those of another schema version."""
    if version == SCHEMA_VERSION:
        return
    if version is not None:
        for table in (*TABLES, CACHE_TABLE, INFO_TABLE):
            con.execute(f"DROP TABLE IF EXISTS {table}")
    for statement in create_statements():
        con.execute(statement)
    _set_info(con, root)


def _set_info(con: Any, root: Path) -> None:
    con.execute(f"DELETE FROM {INFO_TABLE}")
    _insert_rows(
        con,
        INFO_TABLE,
        ["key", "value"],
        [
            {"key": "schema_version", "value": SCHEMA_VERSION},
            {"key": "root", "value": str(root)},
        ],
    )


def _insert_rows(con: Any, table: str, columns: Sequence[str], rows: Sequence[Row]) -> None:
    """Insert rows column-wise in one statement (DuckDB's executemany is row by row, slow)."""
    if not rows:
        return
    names = ", ".join(f'"{c}"' for c in columns)
    values = ", ".join(f"unnest(${i + 1})" for i in range(len(columns)))
    con.execute(
        f"INSERT INTO {table} ({names}) SELECT {values}",
        [[row[c] for row in rows] for c in columns],
    )


def _insert(con: Any, table: str, rows: Sequence[Row]) -> None:
    _insert_rows(con, table, [name for name, _, _ in TABLES[table]], rows)


def _delete_paths(con: Any, table: str, paths: Iterable[str]) -> None:
    listed = sorted(paths)
    if listed:
        con.execute(f"DELETE FROM {table} WHERE list_contains($1, path)", [listed])


@dataclass(slots=True)
class _Plan:
    """What a run has to do: files to read, files gone, ROI volumes to fill in."""

    read: list[FileEntry]
    removed: set[str]
    volumes_for: set[str]
    problems_changed: bool
    stored_problems: list[str]

    @property
    def nothing(self) -> bool:
        return not (self.read or self.removed or self.volumes_for or self.problems_changed)


#: The problems an index holds, as :func:`_rebuild` reports them (path, line, is a folder).
_STORED_PROBLEMS = (
    "SELECT path, reason, size IS NULL FROM files WHERE status = 'unreadable' OR size IS NULL "
    "UNION ALL SELECT path, Modality || ' with the SOPInstanceUID of ' || duplicate_of || "
    "' (a copy, or two objects sharing one UID)', false FROM rt_objects "
    "WHERE duplicate_of IS NOT NULL ORDER BY 1"
)


def _plan(
    con: Any, entries: Sequence[FileEntry], problems: Sequence[FolderProblem], volumes: bool
) -> _Plan:
    """Compare the walk with the cache (sizes and times only, the headers stay put)."""
    cached = {
        str(path): (int(size), int(mtime), bool(retry))
        for path, size, mtime, retry in con.execute(
            f"SELECT path, size, mtime_ns, kind = 'SkippedFile' AND "
            f"payload LIKE '%\"cannot be opened%' FROM {CACHE_TABLE}"
        ).fetchall()
    }
    read = []
    for entry in entries:
        known = cached.get(entry.rel)
        # A file that could not be opened (permissions) is tried again on every run.
        if known is None or known != (entry.size, entry.mtime_ns, False):
            read.append(entry)
    present = {e.rel for e in entries}
    removed = set(cached) - present
    stored = con.execute(_STORED_PROBLEMS).fetchall()
    folder_rows = {(str(path), str(reason)) for path, reason, folder in stored if folder}
    problems_changed = folder_rows != {(p.rel, p.reason) for p in problems}
    volumes_for: set[str] = set()
    if volumes:
        pending = con.execute(
            "SELECT DISTINCT path FROM rois WHERE volume_cm3 IS NULL AND volume_error IS NULL"
        ).fetchall()
        volumes_for = {str(p[0]) for p in pending} & present
        volumes_for -= {e.rel for e in read}
    return _Plan(read, removed, volumes_for, problems_changed, [f"{p}: {r}" for p, r, _ in stored])


def _cached_results(con: Any, root: Path, skip: set[str]) -> dict[str, Result]:
    """The cached header results of every file not in ``skip``."""
    rows = con.execute(f"SELECT path, kind, payload FROM {CACHE_TABLE}").fetchall()
    return {
        str(path): decode_result(str(kind), str(payload), root)
        for path, kind, payload in rows
        if path not in skip
    }


def _read(
    entries: Sequence[FileEntry], progress: Callable[[int, int], None] | None
) -> dict[str, Result]:
    results: dict[str, Result] = {}
    for done, entry in enumerate(entries, 1):
        results[entry.rel] = read_header(Path(entry.path))
        if progress is not None:
            progress(done, len(entries))
    return results


def _rois_of(rt_object: RTObject, root: Path, volumes: bool, problems: list[str]) -> list[Row]:
    """The ``rois`` rows of one structure set (with volumes when asked) or SEG."""
    if rt_object.modality == "SEG":
        try:
            return segment_rows(rt_object, root, volumes)
        except (DicomReadError, InvalidInputError) as error:
            problems.append(f"{rt_object.path}: segments not indexed: {error}")
            return []
    try:
        rows = roi_rows(rt_object, root)
    except DicomReadError as error:
        problems.append(f"{rt_object.path}: ROIs not indexed: {error}")
        return []
    if volumes:
        found, failure = volumes_by_number(rt_object.path)
        for row in rows:
            volume, reason = found.get(row["ROINumber"], (None, failure or "ROI has no contours"))
            row["volume_cm3"], row["volume_error"] = volume, reason
    return rows


def _canonical_names(con: Any, canonical: RoiMap | Callable[[str], str | None] | None) -> list[str]:
    """Fill ``rois.canonical`` from a ROI map; the conflicts, one line per structure set.

    With a :class:`RoiMap` each structure set (or SEG) is resolved on its own: one whose
    ROIs the map cannot tell apart (a name matching two canonical names, two ROIs mapping
    onto one) keeps NULL in every ``canonical`` and the reason in
    ``rt_objects.roi_map_conflict``; the others are mapped. A plain function maps names.
    """
    con.execute("UPDATE rt_objects SET roi_map_conflict = NULL WHERE roi_map_conflict IS NOT NULL")
    con.execute("UPDATE rois SET canonical = NULL WHERE canonical IS NOT NULL")
    if canonical is None:
        return []
    rows = con.execute(
        "SELECT path, ROINumber, ROIName FROM rois WHERE ROIName IS NOT NULL "
        "ORDER BY path, ROINumber"
    ).fetchall()
    if not isinstance(canonical, RoiMap):
        names = sorted({str(name) for _, _, name in rows})
        mapped = [canonical(name) for name in names]
        if names:
            con.execute(
                "UPDATE rois SET canonical = m.canonical FROM (SELECT unnest($1) AS name, "
                "unnest($2) AS canonical) AS m WHERE rois.ROIName = m.name",
                [names, mapped],
            )
        return []
    by_path: dict[str, list[tuple[int, str]]] = {}
    for path, number, name in rows:
        by_path.setdefault(str(path), []).append((int(number or 0), str(name)))
    paths, numbers, names_out = [], [], []
    conflicts: dict[str, str] = {}
    for path, rois in by_path.items():
        try:
            resolved = canonical.resolve(rois, source=path)
        except RoiMapError as error:
            conflicts[path] = str(error)
            continue
        for number, name in resolved.items():
            paths.append(path)
            numbers.append(number)
            names_out.append(name)
    if paths:
        con.execute(
            "UPDATE rois SET canonical = m.canonical FROM (SELECT unnest($1) AS path, "
            "unnest($2) AS number, unnest($3) AS canonical) AS m "
            "WHERE rois.path = m.path AND rois.ROINumber = m.number",
            [paths, numbers, names_out],
        )
    if conflicts:
        con.execute(
            "UPDATE rt_objects SET roi_map_conflict = m.reason FROM (SELECT unnest($1) AS path, "
            "unnest($2) AS reason) AS m WHERE rt_objects.path = m.path",
            [list(conflicts), list(conflicts.values())],
        )
    return [conflicts[path] for path in sorted(conflicts)]


def _rebuild(
    con: Any,
    root: Path,
    entries: Sequence[FileEntry],
    folder_problems: Sequence[FolderProblem],
    results: dict[str, Result],
) -> list[str]:
    """Rewrite ``files``, ``series`` and ``rt_objects`` from every file's result."""
    inventory = build_inventory(results.values(), n_files=len(entries))
    rows = {e.rel: file_row(e.rel, e.size, e.mtime_ns, results.get(e.rel)) for e in entries}
    for skipped in inventory.skipped:
        row = rows.get(relative(skipped.path, root))
        if row is not None:
            mark_skipped(row, skipped)
    for problem in folder_problems:
        row = file_row(problem.rel, None, None, None)
        row.update(status="skipped" if problem.kind != "unreadable" else "unreadable")
        row.update(reason=problem.reason, skip_kind=problem.kind)
        rows[problem.rel] = row
    instances = Counter(
        r.series_instance_uid for r in results.values() if isinstance(r, ImageHeader)
    )
    rt_objects = inventory.rt_objects
    copies = duplicates(rt_objects, root)
    rt_rows = [
        rt_object_row(
            o,
            link_image_series(o, inventory.image_series, related=rt_objects),
            copies.get(id(o)),
            root,
        )
        for o in rt_objects
    ]
    for table in TABLES:
        if table != "rois":
            con.execute(f"DELETE FROM {table}")
    _insert(con, "files", sorted(rows.values(), key=lambda r: str(r["path"])))
    _insert(
        con,
        "series",
        [series_row(s, instances[s.series_instance_uid], root) for s in inventory.image_series],
    )
    _insert(con, "rt_objects", sorted(rt_rows, key=lambda r: str(r["path"])))
    problems = [f"{p.rel}: {p.reason}" for p in folder_problems]
    problems += [
        f"{r['path']}: {r['reason']}" for r in rows.values() if r["status"] == "unreadable"
    ]
    problems += [
        f"{r['path']}: {r['Modality']} with the SOPInstanceUID of {r['duplicate_of']} "
        "(a copy, or two objects sharing one UID)"
        for r in rt_rows
        if r["duplicate_of"] is not None
    ]
    return sorted(problems)


def _update(
    con: Any,
    root: Path,
    *,
    entries: Sequence[FileEntry],
    folder_problems: Sequence[FolderProblem],
    plan: _Plan,
    read: dict[str, Result],
    volumes: bool,
) -> list[str]:
    """Write what changed: the cache, the rebuilt tables and the ROIs of the files read."""
    touched = {e.rel for e in plan.read} | plan.removed
    cached = _cached_results(con, root, touched)
    _delete_paths(con, CACHE_TABLE, touched)
    _insert_rows(
        con,
        CACHE_TABLE,
        ["path", "size", "mtime_ns", "kind", "payload"],
        [
            dict(
                zip(("kind", "payload"), encode_result(read[e.rel], root), strict=True),
                path=e.rel,
                size=e.size,
                mtime_ns=e.mtime_ns,
            )
            for e in plan.read
        ],
    )
    results = {e.rel: read[e.rel] if e.rel in read else cached[e.rel] for e in entries}
    problems = _rebuild(con, root, entries, folder_problems, results)
    redo = touched | plan.volumes_for
    _delete_paths(con, "rois", redo)
    rois: list[Row] = []
    for rel in sorted(redo - plan.removed):
        result = results.get(rel)
        if isinstance(result, RTObject) and result.modality in ("RTSTRUCT", "SEG"):
            rois += _rois_of(result, root, volumes, problems)
    _insert(con, "rois", rois)
    return problems


def index_archive(
    root: Path | str,
    index_path: Path | str,
    *,
    volumes: bool = False,
    canonical: RoiMap | Callable[[str], str | None] | None = None,
    parquet_dir: Path | str | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> IndexReport:
    """Index the DICOM files under ``root`` into the DuckDB database ``index_path``.

    Parameters
    ----------
    root
        The archive folder (walked recursively; symbolic links to folders followed once).
    index_path
        The database, created when missing, updated incrementally when it is an index.
    volumes
        Fill ``rois.volume_cm3`` with each ROI's contour volume (reads the contours).
    canonical
        The ROI map for ``rois.canonical`` (each structure set resolved on its own; one the
        map makes ambiguous keeps NULL and is listed in ``map_conflicts``), or a plain
        name mapping ``name -> canonical name or None``.
    parquet_dir
        Also write every table as ``<table>.parquet`` into this folder.
    progress
        Called as ``progress(done, total)`` after each file read.

    Raises
    ------
    InvalidInputError
        ``index_path`` is not a DuckDB database (or not an rtmask index), or is locked.
    DicomReadError
        ``root`` is not a folder.
    MissingDependencyError
        DuckDB is not installed (``pip install 'rtmask[cohort]'``).
    """
    start = time.perf_counter()
    root, index_path = Path(root), Path(index_path)
    if not root.is_dir():
        raise DicomReadError(f"{root}: no such folder; give the archive's folder")
    own = [index_path.with_name(index_path.name + e) for e in ("", ".wal", ".stamp.json")]
    entries, folder_problems = walk_archive(root, exclude=own)
    digest = archive_digest(root, entries, folder_problems, volumes)
    known = read_stamp(index_path, digest) if canonical is None and parquet_dir is None else None
    if known is not None:  # the archive and the index are as the last run left them
        read, removed = 0, 0
    else:
        remove_stamp(index_path)
        read, removed, known = _run(
            root,
            index_path,
            entries,
            folder_problems,
            volumes=volumes,
            canonical=canonical,
            parquet_dir=parquet_dir,
            progress=progress,
        )
        if canonical is None:
            write_stamp(index_path, digest, known)
    return IndexReport(
        index_path=index_path,
        files=len(entries),
        files_read=read,
        files_removed=removed,
        series=int(known["series"]),
        rt_objects=int(known["rt_objects"]),
        rois=int(known["rois"]),
        problems=tuple(str(p) for p in known["problems"]),
        seconds=time.perf_counter() - start,
        map_conflicts=tuple(str(p) for p in known.get("map_conflicts", ())),
    )


def _open_for_update(index_path: Path) -> tuple[Any, str | None, Path | None]:
    """The connection to update, the index's schema version, and the new file's temporary path.

    An existing index is updated in place, in one transaction. A new index (no file, or
    an empty DuckDB database a failed run of an older rtmask left) is built in a hidden
    temporary file beside ``index_path`` and renamed onto it at the end, so a failed or
    killed run never leaves an empty or half-built database under the final name.
    """
    _check_database_file(index_path)
    if index_path.is_file() and index_path.stat().st_size > 0:
        con = connect(index_path, read_only=False)
        try:
            version = _schema_version(con, index_path)
        except BaseException:
            con.close()
            raise
        if version is not None:
            return con, version, None
        con.close()
    partial = index_path.with_name(f".{index_path.name}.{secrets.token_hex(4)}.partial")
    return connect(partial, read_only=False), None, partial


def _discard(partial: Path | None) -> None:
    """Remove a temporary database (and its write-ahead log) of a run that failed."""
    if partial is not None:
        for path in (partial, partial.with_name(partial.name + ".wal")):
            with contextlib.suppress(OSError):
                path.unlink()


def _run(
    root: Path,
    index_path: Path,
    entries: Sequence[FileEntry],
    folder_problems: Sequence[FolderProblem],
    *,
    volumes: bool,
    canonical: RoiMap | Callable[[str], str | None] | None,
    parquet_dir: Path | str | None,
    progress: Callable[[int, int], None] | None,
) -> tuple[int, int, dict[str, Any]]:
    """Bring the index up to date in one transaction: (files read, files removed, report)."""
    con, version, partial = _open_for_update(index_path)
    begun = committed = False
    try:
        con.execute("BEGIN TRANSACTION")
        begun = True
        _prepare(con, version, root)
        plan = _plan(con, entries, folder_problems, volumes)
        read = _read(plan.read, progress)
        if plan.nothing:
            problems = plan.stored_problems
        else:
            problems = _update(
                con,
                root,
                entries=entries,
                folder_problems=folder_problems,
                plan=plan,
                read=read,
                volumes=volumes,
            )
            _set_info(con, root)
        conflicts = _canonical_names(con, canonical)
        counts = con.execute(
            "SELECT (SELECT count(*) FROM series), (SELECT count(*) FROM rt_objects), "
            "(SELECT count(*) FROM rois)"
        ).fetchall()[0]
        con.execute("COMMIT")
        committed = True
        if partial is not None:
            con.execute("CHECKPOINT")  # everything in the one file that is renamed
    except BaseException:
        if begun and not committed:
            con.execute("ROLLBACK")  # the index stays as the previous run left it
        con.close()
        _discard(partial)
        raise
    con.close()
    if partial is not None:
        partial.replace(index_path)
    if parquet_dir is not None:
        con = connect(index_path, read_only=True)
        try:
            export_parquet(con, Path(parquet_dir))
        finally:
            con.close()
    report = dict(zip(("series", "rt_objects", "rois"), map(int, counts), strict=True))
    return (
        len(plan.read) + len(plan.volumes_for),
        len(plan.removed),
        {**report, "problems": sorted([*problems, *conflicts]), "map_conflicts": conflicts},
    )


def export_parquet(con: Any, folder: Path) -> list[Path]:
    """Write every public table as ``<table>.parquet`` in ``folder`` (each atomically)."""
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for table in TABLES:
        final = folder / f"{table}.parquet"
        partial = folder / f".{table}.parquet.{os.getpid()}.partial"
        quoted = str(partial).replace("'", "''")
        con.execute(f"COPY {table} TO '{quoted}' (FORMAT parquet)")
        partial.replace(final)
        written.append(final)
    return written
