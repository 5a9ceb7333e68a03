"""Which ROI names an archive uses, how often, in which group, and a starting map for them.

The counts come from structure sets described by :class:`StructureSetNames` (its file or
UID, its patient, its ROI names): :func:`structure_sets_in_folder` yields them from a folder
tree (discovery, headers only); another source (an index) only has to yield the same.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from rtmask._safe_names import sanitize_name
from rtmask.errors import RoiMapError
from rtmask.names._map import RoiMap
from rtmask.names._normalise import normalise_name, tg263_match

if TYPE_CHECKING:  # discovery loads numpy; importing rtmask.names must not
    from rtmask.discovery import SkippedFile

__all__ = [
    "NameCount",
    "StructureSetNames",
    "count_names",
    "map_conflicts",
    "structure_sets_in_folder",
    "suggest_map",
]

_GLOB_CHARACTERS = frozenset("*?[")


@dataclass(frozen=True, slots=True, kw_only=True)
class StructureSetNames:
    """The ROI names of one structure set.

    Parameters
    ----------
    source
        The structure set: its file (or SOPInstanceUID when there is no file).
    patient_id
        PatientID as written, or None.
    rois
        ``(ROINumber, ROIName)`` pairs, names stripped of surrounding spaces.
    sop_instance_uid
        SOPInstanceUID of the structure set: two files with one UID (a copy) count as one
        structure set; None counts each ``source`` on its own.
    """

    source: str
    patient_id: str | None
    rois: tuple[tuple[int, str], ...]
    sop_instance_uid: str | None = None

    @property
    def key(self) -> str:
        """What makes two structure sets one when counting: the SOPInstanceUID, else the file."""
        return self.sop_instance_uid or self.source


@dataclass(frozen=True, slots=True, kw_only=True)
class NameCount:
    """One distinct ROI name: how many structure sets and patients use it, and its group."""

    name: str
    structure_sets: int
    patients: int
    group: str
    tg263: str | None
    canonical: str | None = None

    def to_dict(self) -> dict[str, object]:
        """The row of ``rtmask names --json``."""
        return {
            "name": self.name,
            "structure_sets": self.structure_sets,
            "patients": self.patients,
            "group": self.group,
            "tg263": self.tg263,
            "canonical": self.canonical,
        }


def structure_sets_in_folder(root: Path) -> Iterator[StructureSetNames | str | SkippedFile]:
    """Yield the ROI names of every structure set under ``root`` (headers only).

    Yields
    ------
    StructureSetNames or str or SkippedFile
        One per RT Structure Set that discovery finds; a ``str`` (one line naming the file)
        for a file that looked like one and could not be read; a :class:`SkippedFile` for a
        folder not read (a symbolic link that loops), worth a warning.
    """
    from rtmask._rawdicom import read_raw  # noqa: PLC0415 - pydicom/numpy only when used
    from rtmask.discovery import scan  # noqa: PLC0415

    inventory = scan(root)
    for skipped in inventory.skipped:
        if skipped.kind in ("unreadable", "truncated"):
            yield f"{skipped.path}: {skipped.reason}"
        elif skipped.kind == "symlink_loop":
            yield skipped
    for rt_object in inventory.structure_sets:
        try:
            dataset = read_raw(rt_object.path, stop_before_pixels=True)
            rois = tuple(
                (item.integer("ROINumber") or 0, (item.text("ROIName") or "").strip())
                for item in dataset.sequence("StructureSetROISequence")
            )
        except Exception as error:  # a damaged file is one line, never the end of the run
            yield f"{rt_object.path}: ROI names not readable: {error}"
            continue
        yield StructureSetNames(
            source=str(rt_object.path),
            patient_id=rt_object.patient_id,
            rois=rois,
            sop_instance_uid=rt_object.sop_instance_uid,
        )


def count_names(
    structure_sets: Iterable[StructureSetNames], roi_map: RoiMap | None = None
) -> list[NameCount]:
    """Count every distinct ROI name; most structure sets first, then patients, then name.

    Structure sets are counted by SOPInstanceUID (a copy of a file is no second structure
    set, as Imaging Data Commons counts distinct UIDs), patients by PatientID; a name used
    twice in one structure set counts once for it.
    ``canonical`` is the map's canonical name (None without a map, when nothing matches, or
    when the name matches two canonical names: :func:`map_conflicts` lists those).
    """
    sets: defaultdict[str, set[str]] = defaultdict(set)
    patients: defaultdict[str, set[str]] = defaultdict(set)
    for item in structure_sets:
        for _, name in item.rois:
            sets[name].add(item.key)
            patients[name].add(item.patient_id if item.patient_id is not None else item.key)
    counts = [
        NameCount(
            name=name,
            structure_sets=len(sets[name]),
            patients=len(patients[name]),
            group=normalise_name(name),
            tg263=tg263_match(name),
            canonical=None if roi_map is None else _unambiguous(roi_map, name),
        )
        for name in sets
    ]
    counts.sort(key=lambda c: (-c.structure_sets, -c.patients, c.name.casefold(), c.name))
    return counts


def _unambiguous(roi_map: RoiMap, name: str) -> str | None:
    """The one canonical name ``name`` matches; None when it matches none, or two."""
    found = roi_map.matches(name)
    return found[0] if len(found) == 1 else None


def map_conflicts(structure_sets: Iterable[StructureSetNames], roi_map: RoiMap) -> list[str]:
    """One line per structure set whose ROIs the map cannot resolve (see RoiMap.resolve).

    A ROI name matching two canonical names, or two ROIs of one structure set mapping onto
    one canonical name: the structure set's line names the ROIs and the canonical names.
    """
    problems = []
    seen: set[str] = set()
    for item in structure_sets:
        if item.key in seen:
            continue  # a copy of a structure set listed already
        seen.add(item.key)
        try:
            roi_map.resolve(item.rois, source=item.source)
        except RoiMapError as error:
            problems.append(str(error))
    return problems


def _exact_pattern(name: str) -> str:
    """A pattern that matches ``name`` alone (case-insensitively)."""
    if _GLOB_CHARACTERS & set(name) or name.startswith("re:") or name != name.strip():
        return "re:" + re.escape(name.strip())
    return name


def _shared_sets(structure_sets: Iterable[StructureSetNames]) -> Counter[str]:
    """Group -> number of structure sets holding two or more ROIs of that group."""
    shared: Counter[str] = Counter()
    seen: set[str] = set()
    for item in structure_sets:
        if item.key in seen:
            continue
        seen.add(item.key)
        groups = Counter(normalise_name(name) for _, name in item.rois if name.strip())
        shared.update(group for group, n in groups.items() if n > 1)
    return shared


def suggest_map(
    counts: Iterable[NameCount], structure_sets: Iterable[StructureSetNames] = ()
) -> str:
    """A starting YAML ROI map: one entry per group, every name of the group a pattern.

    The canonical name of a group is its TG-263 name when it has one, else its most used
    name made a safe file name. The text loads with :func:`load_roi_map` and maps every
    name it lists; it is meant to be edited by a person (TG-263 names are suggestions).
    A group that two ROIs of one of ``structure_sets`` belong to (``Lung_L`` beside
    ``L Lung``) would be a conflict there: a comment above its entry says so.
    """
    import yaml  # noqa: PLC0415 - only when a map is written

    groups: dict[str, list[NameCount]] = {}
    for count in counts:
        if not count.name.strip():
            continue  # an empty name cannot be a pattern; the map cannot name it
        groups.setdefault(count.group, []).append(count)
    shared = _shared_sets(structure_sets)
    parts: list[str] = []
    taken: set[str] = set()
    n_patterns = 0
    for number, (group, members) in enumerate(groups.items(), start=1):
        tg263 = next((m.tg263 for m in members if m.tg263), None)
        base = tg263 or sanitize_name(members[0].name) or f"ROI_group_{number}"
        canonical, counter = base, 2
        while canonical.casefold() in taken:
            canonical, counter = f"{base}_{counter}", counter + 1
        taken.add(canonical.casefold())
        seen: set[str] = set()
        patterns = []
        for member in members:
            if member.name.casefold() not in seen:
                seen.add(member.name.casefold())
                patterns.append(_exact_pattern(member.name))
        n_patterns += len(patterns)
        if shared[group]:
            parts.append(
                f"# CHECK: {shared[group]} structure set(s) hold two ROIs of this group; "
                "split it, or they are a conflict\n"
            )
        parts.append(
            yaml.safe_dump(
                {canonical: patterns},
                sort_keys=False,
                allow_unicode=True,
                default_flow_style=None,
                width=100,
            )
        )
    header = (
        "# ROI map suggested by `rtmask names --suggest-map`: one entry per group of names\n"
        "# (same words after normalisation), named by its TG-263 name where one matches.\n"
        f"# {len(groups)} canonical names, {n_patterns} patterns. "
        "Check and edit before use:\n"
        "# a pattern is an exact name (case-insensitive), a glob (* ? [) or 're:' + regex.\n"
    )
    return header + "".join(parts)
