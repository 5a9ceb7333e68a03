"""``--roi-map``: a mapping of ROI names onto canonical names, read from YAML or CSV.

A map lists, for each canonical name, the patterns of the names it stands for::

    Lung_L: ["Lung_L", "L*Lung*", "re:^lung[ _-]?l(ef)?t$"]

or as CSV with the columns ``canonical,pattern`` (one pattern a row). A pattern is

- an exact name, compared case-insensitively (surrounding spaces ignored);
- a glob when it holds ``*``, ``?`` or ``[`` (``fnmatch`` rules, case-insensitive, the
  whole name);
- a regular expression after ``re:``, matched against the whole name, case-insensitively.

The canonical name is listed only where a pattern matches it: write it among its patterns
(as above) to map ROIs already named canonically. A canonical name becomes a file stem, so it
must be a safe file name as it stands (no ``/``, no leading dot, not empty ...).
"""

from __future__ import annotations

import csv
import fnmatch
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from rtmask._safe_names import sanitize_name, unsafe_reason
from rtmask.errors import RoiMapError

__all__ = ["RoiMap", "RoiPattern", "load_roi_map"]

_GLOB_CHARACTERS = frozenset("*?[")


@dataclass(frozen=True, slots=True)
class RoiPattern:
    """One pattern of a map: its text as written, its kind, and the compiled expression."""

    text: str
    kind: Literal["exact", "glob", "regex"]
    expression: re.Pattern[str]

    @classmethod
    def parse(cls, text: str) -> RoiPattern:
        """Compile a pattern; raises :class:`re.error` for a broken ``re:`` expression."""
        if text.startswith("re:"):
            return cls(text, "regex", re.compile(text[3:], re.IGNORECASE))
        stripped = text.strip()
        if _GLOB_CHARACTERS & set(stripped):
            return cls(text, "glob", re.compile(fnmatch.translate(stripped), re.IGNORECASE))
        return cls(text, "exact", re.compile(re.escape(stripped), re.IGNORECASE))

    def matches(self, name: str) -> bool:
        """True when the whole of ``name`` (surrounding spaces ignored) matches."""
        return self.expression.fullmatch(name.strip()) is not None


@dataclass(frozen=True, slots=True, kw_only=True)
class RoiMap:
    """Canonical names and the patterns of the ROI names each stands for.

    Parameters
    ----------
    entries
        ``(canonical name, patterns)`` pairs, in the map's order.
    source
        Where the map was read from (a file name), for messages.
    """

    entries: tuple[tuple[str, tuple[RoiPattern, ...]], ...]
    source: str = "ROI map"

    @classmethod
    def from_patterns(
        cls, patterns: Mapping[str, Sequence[str]], *, source: str = "ROI map"
    ) -> RoiMap:
        """Build a map from ``{canonical: [pattern, ...]}``, checking every entry.

        Raises
        ------
        RoiMapError
            A canonical name that is not a safe file name, two canonical names equal but for
            case, an entry without patterns, or a broken regular expression.
        """
        return _build([(c, list(p), None) for c, p in patterns.items()], source)

    @property
    def canonical_names(self) -> tuple[str, ...]:
        """The canonical names, in the map's order."""
        return tuple(canonical for canonical, _ in self.entries)

    def matches(self, name: str) -> tuple[str, ...]:
        """Every canonical name with a pattern that matches ``name``."""
        return tuple(
            canonical
            for canonical, patterns in self.entries
            if any(pattern.matches(name) for pattern in patterns)
        )

    def canonical(self, name: str) -> str | None:
        """The canonical name of a ROI name, None when no pattern matches it.

        Raises
        ------
        RoiMapError
            When patterns of two canonical names match ``name``.
        """
        found = self.matches(name)
        if len(found) > 1:
            raise RoiMapError(
                f"{self.source}: ROI name {name!r} matches the patterns of "
                f"{' and '.join(repr(c) for c in found)}; make the patterns exclusive"
            )
        return found[0] if found else None

    def resolve(self, rois: Iterable[tuple[int, str]], *, source: str = "") -> dict[int, str]:
        """Canonical name of each mapped ROI of one structure set: ``{roi_number: canonical}``.

        Parameters
        ----------
        rois
            ``(ROI number, ROI name)`` pairs of one structure set.
        source
            The structure set (a file name), for messages.

        Returns
        -------
        dict
            ROI number -> canonical name, for the ROIs the map matches (the others are left
            out), in the order of ``rois``.

        Raises
        ------
        RoiMapError
            One line per conflict: a ROI whose name matches two canonical names, or two ROIs
            that map onto one canonical name (never a silent pick).
        """
        where = f"{source}: " if source else ""
        resolved: dict[int, str] = {}
        names: dict[int, str] = {}
        conflicts: list[str] = []
        for number, name in rois:
            found = self.matches(name)
            if len(found) > 1:
                conflicts.append(
                    f"{where}ROI {number} {name!r} matches {' and '.join(map(repr, found))} "
                    f"in {self.source}"
                )
            elif found:
                resolved[number], names[number] = found[0], name
        by_canonical: dict[str, list[int]] = {}
        for number, canonical in resolved.items():
            by_canonical.setdefault(canonical, []).append(number)
        for canonical, numbers in by_canonical.items():
            if len(numbers) > 1:
                listed = " and ".join(f"ROI {n} {names[n]!r}" for n in numbers)
                conflicts.append(f"{where}{listed} all map to {canonical!r} in {self.source}")
        if conflicts:
            raise RoiMapError(
                "; ".join(conflicts) + "; make the map's patterns tell these ROIs apart"
            )
        return resolved


def _unsafe_reason(canonical: str) -> str | None:
    """Why ``canonical`` cannot be a file stem as it stands, or None when it can."""
    reason = unsafe_reason(canonical)
    if reason is None:
        return None
    safe = sanitize_name(canonical)
    suggestion = f" (e.g. {safe!r})" if safe and safe != canonical else ""
    return f"not a safe file name: {reason}{suggestion}"


def _build(entries: Sequence[tuple[str, list[str], int | None]], source: str) -> RoiMap:
    """Check and compile ``(canonical, patterns, line)`` entries; same canonical merged."""
    merged: dict[str, list[RoiPattern]] = {}
    folded: dict[str, str] = {}
    for canonical, patterns, line in entries:
        where = f"{source}:{line}" if line is not None else source
        reason = _unsafe_reason(canonical)
        if reason is not None:
            raise RoiMapError(f"{where}: canonical name {canonical!r}: {reason}")
        other = folded.setdefault(canonical.casefold(), canonical)
        if other != canonical:
            raise RoiMapError(
                f"{where}: canonical names {other!r} and {canonical!r} differ only in case "
                "(their files would collide); use one spelling"
            )
        if not patterns:
            raise RoiMapError(f"{where}: canonical name {canonical!r} has no patterns")
        for text in patterns:
            if not text.strip() or text.strip() == "re:":
                raise RoiMapError(f"{where}: canonical name {canonical!r} has an empty pattern")
            try:
                compiled = RoiPattern.parse(text)
            except re.error as error:
                raise RoiMapError(
                    f"{where}: pattern {text!r} of {canonical!r} is not a valid regular "
                    f"expression ({error}); fix it or drop the 're:' prefix"
                ) from None
            merged.setdefault(canonical, []).append(compiled)
    return RoiMap(entries=tuple((c, tuple(p)) for c, p in merged.items()), source=source)


def load_roi_map(path: str | Path) -> RoiMap:
    """Read a ROI map from a YAML (``.yaml``/``.yml``) or CSV (``.csv``) file.

    Parameters
    ----------
    path
        The map. YAML: a mapping ``canonical: [pattern, ...]`` (one pattern may be written
        without the list). CSV: a header with the columns ``canonical`` and ``pattern``,
        one pattern a row.

    Returns
    -------
    RoiMap
        The checked map; its ``source`` is ``path``.

    Raises
    ------
    RoiMapError
        One line naming the file (and the line) for a file that cannot be read, is not
        YAML/CSV of that shape, has a broken regular expression, or a canonical name that
        is not a safe file name.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")  # a spreadsheet's BOM is no column
    except (OSError, UnicodeDecodeError) as error:
        reason = error.strerror if isinstance(error, OSError) and error.strerror else error
        raise RoiMapError(f"{path}: cannot read the ROI map: {reason}") from None
    suffix = path.suffix.lower()
    if suffix in (".yaml", ".yml"):
        return _build(_yaml_entries(text, str(path)), str(path))
    if suffix == ".csv":
        return _build(_csv_entries(text, str(path)), str(path))
    raise RoiMapError(f"{path}: a ROI map is a .yaml, .yml or .csv file")


def _yaml_entries(text: str, source: str) -> list[tuple[str, list[str], int | None]]:
    """``(canonical, patterns, line)`` of a YAML map, with the line of each entry."""
    import yaml  # noqa: PLC0415 - only when a YAML map is read

    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        problem = getattr(error, "problem", None) or str(error).splitlines()[0]
        raise RoiMapError(f"{source}{line}: not valid YAML: {problem}") from None
    if root is None:
        raise RoiMapError(f"{source}: the ROI map is empty")
    if not isinstance(root, yaml.MappingNode):
        kind = "list" if isinstance(root, yaml.SequenceNode) else "single value"
        raise RoiMapError(
            f"{source}: a YAML ROI map is a mapping 'canonical: [pattern, ...]', not a {kind}"
        )
    entries: list[tuple[str, list[str], int | None]] = []
    for key, value in root.value:
        line = key.start_mark.line + 1
        if not isinstance(key, yaml.ScalarNode):
            raise RoiMapError(f"{source}:{line}: a canonical name must be text")
        items = value.value if isinstance(value, yaml.SequenceNode) else [value]
        patterns: list[str] = []
        for item in items:
            if isinstance(item, yaml.ScalarNode) and item.tag.endswith(":null"):
                continue
            if not isinstance(item, yaml.ScalarNode):
                raise RoiMapError(
                    f"{source}:{item.start_mark.line + 1}: the patterns of {key.value!r} "
                    "must be text (one name, glob or 're:' expression each)"
                )
            patterns.append(str(item.value))
        entries.append((str(key.value), patterns, line))
    return entries


def _csv_entries(text: str, source: str) -> list[tuple[str, list[str], int | None]]:
    """``(canonical, [pattern], line)`` per row of a CSV map."""
    reader = csv.DictReader(text.splitlines())
    fields = [name.strip().casefold() for name in reader.fieldnames or ()]
    if "canonical" not in fields or "pattern" not in fields:
        raise RoiMapError(
            f"{source}:1: a CSV ROI map needs the columns 'canonical' and 'pattern' "
            f"(found {', '.join(reader.fieldnames or ()) or 'none'})"
        )
    reader.fieldnames = fields
    entries: list[tuple[str, list[str], int | None]] = []
    for row in reader:
        canonical, pattern = row.get("canonical"), row.get("pattern")
        if not (canonical or "").strip() and not (pattern or "").strip():
            continue  # a blank line
        entries.append(((canonical or "").strip(), [pattern or ""], reader.line_num))
    if not entries:
        raise RoiMapError(f"{source}: the ROI map has no rows")
    return entries
