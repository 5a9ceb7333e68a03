"""Walking an archive for the index: every file with its size and time, and folder problems.

Unlike :func:`rtmask.discovery.scan`'s walk this follows symbolic links to folders (an
archive assembled from links is common), each real folder once: a link that points back
to one of its own parent folders (a loop) or to a folder already walked is reported, never
followed, and so is a link that loops onto itself or leads nowhere. Hidden files and
folders (name starting with ``.``) are ignored, as discovery does.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path

__all__ = ["FileEntry", "FolderProblem", "walk_archive"]


@dataclass(frozen=True, slots=True)
class FileEntry:
    """A regular file found: path, path relative to the root, size and mtime in ns."""

    path: str
    rel: str
    size: int
    mtime_ns: int


@dataclass(frozen=True, slots=True)
class FolderProblem:
    """Something met while walking that is not a file to read, and why."""

    rel: str
    kind: str
    reason: str


def _link_problem(
    entry: os.DirEntry[str], rel: str, current: str, visited: dict[str, str]
) -> FolderProblem | str | None:
    """For a symbolic link: a problem, the real folder to walk, or None (a file link)."""
    try:
        target = os.path.realpath(entry.path, strict=True)
    except (OSError, RuntimeError) as error:
        if getattr(error, "errno", None) == errno.ENOENT:
            return FolderProblem(rel, "broken_link", "symbolic link to a missing file or folder")
        return FolderProblem(
            rel, "symlink_loop", "symbolic link that loops onto itself; not followed"
        )
    if not Path(target).is_dir():
        return None
    if target in visited:
        if current == target or current.startswith(target.rstrip(os.sep) + os.sep):
            return FolderProblem(
                rel,
                "symlink_loop",
                f"symbolic link to its own parent folder {visited[target] or '.'} (a loop); "
                "not followed",
            )
        return FolderProblem(
            rel,
            "symlink_repeat",
            f"symbolic link to folder {visited[target] or '.'}, indexed there; not followed",
        )
    return target


def walk_archive(
    root: Path, *, exclude: Collection[Path] = ()
) -> tuple[list[FileEntry], list[FolderProblem]]:
    """Every file under ``root`` (sorted by relative path) and the folder problems met.

    ``exclude``: files left out (the index itself when it lies inside the archive).
    """
    excluded = {str(Path(os.path.realpath(p.parent)) / p.name) for p in exclude}
    files: list[FileEntry] = []
    problems: list[FolderProblem] = []
    real_root = os.path.realpath(root)
    visited = {real_root: ""}
    # (folder, its path relative to the root with a trailing "/" or "", its real path)
    stack = [(str(root), "", real_root)]
    # Links are followed after the real tree is walked, so a folder linked from elsewhere
    # in the tree is indexed under its own name, once.
    links: list[tuple[os.DirEntry[str], str, str]] = []
    while stack or links:
        if not stack:
            entry, rel, real = links.pop(0)
            found = _link_problem(entry, rel, real, visited)
            if isinstance(found, FolderProblem):
                problems.append(found)
            elif found is not None:
                visited[found] = rel
                stack.append((entry.path, rel + "/", found))
            continue
        folder, prefix, real = stack.pop()
        try:
            with os.scandir(folder) as listing:
                entries = sorted(listing, key=lambda e: e.name)
        except OSError as error:
            problems.append(
                FolderProblem(
                    prefix.rstrip("/") or ".",
                    "unreadable",
                    f"folder cannot be read ({error.strerror}); check the permissions",
                )
            )
            continue
        subfolders = []
        for entry in entries:
            if entry.name.startswith("."):
                continue
            rel = prefix + entry.name
            target = real + os.sep + entry.name
            if entry.is_symlink() and not Path(entry.path).is_file():
                links.append((entry, rel, real))  # a folder, a loop or a broken link
                continue
            if entry.is_symlink():
                target = os.path.realpath(entry.path)
            try:
                if entry.is_dir():
                    visited[target] = rel
                    subfolders.append((entry.path, rel + "/", target))
                elif entry.is_file() and target not in excluded:
                    stat = entry.stat()
                    files.append(FileEntry(entry.path, rel, stat.st_size, stat.st_mtime_ns))
            except OSError as error:
                problems.append(
                    FolderProblem(rel, "unreadable", f"cannot be read ({error.strerror})")
                )
        stack.extend(reversed(subfolders))
    files.sort(key=lambda f: f.rel)
    return files, problems
