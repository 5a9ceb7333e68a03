"""Convert a whole archive: plan one task per structure set, run them, write ``cases.csv``.

Planning reads headers only (discovery's scan and links). A structure set (or SEG) whose
SOPInstanceUID was already met in an earlier path is not converted twice: its row is
``skipped`` and names the copy converted. A file discovery could not read is a ``failed``
row. Everything else is a :class:`~rtmask.cohort._tasks.CaseTask` for an executor.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from rtmask._errors import DicomReadError
from rtmask._rawdicom import read_raw
from rtmask.cohort._cases import write_cases
from rtmask.cohort._executors import Executor
from rtmask.cohort._layout import CaseIdentity, Layout, case_folders
from rtmask.cohort._rows import scanned_relative
from rtmask.cohort._tasks import CaseOptions, CaseResult, CaseTask
from rtmask.convert import choose_dose
from rtmask.discovery import (
    ImageSeries,
    Inventory,
    RTObject,
    link_image_series,
    scan,
)

__all__ = ["ArchivePlan", "convert_archive", "count_statuses", "duplicate_error", "plan_archive"]

logger = logging.getLogger(__name__)

#: Skipped-file kinds that may hide a structure set: each is a ``failed`` row.
UNREADABLE_KINDS = frozenset({"unreadable", "truncated"})
#: Seconds between refreshes of ``cases.csv`` during a run.
REFRESH_S = 10.0

Progress = Callable[[CaseResult], None]


@dataclass(frozen=True, slots=True, kw_only=True)
class ArchivePlan:
    """What a run will do: the tasks, and the rows known without converting anything."""

    tasks: tuple[CaseTask, ...]
    rows: tuple[CaseResult, ...]  # unreadable files (failed) and duplicate copies (skipped)
    layout: Layout


def _study_date(path: Path) -> str:
    """StudyDate of a file's header ("" when it has none or cannot be read)."""
    try:
        return read_raw(path, stop_before_pixels=True).text("StudyDate") or ""
    except (DicomReadError, ValueError):
        return ""


def _row(
    rt_object: RTObject | None, source: str, status: str, error: str, output: str
) -> CaseResult:
    return CaseResult(
        patient_id=(rt_object.patient_id or "") if rt_object is not None else "",
        study_uid=(rt_object.study_instance_uid or "") if rt_object is not None else "",
        structure_set=source,
        structure_set_uid=(rt_object.sop_instance_uid or "") if rt_object is not None else "",
        image_series_uid="",
        link="none",
        status=status,
        error=error,
        output=output,
        rois_written=0,
        seconds=0.0,
    )


def duplicate_error(original: str, uid: str | None, use: str) -> str:
    """The ``error`` of a copy's row: ``duplicate of <original> (same SOPInstanceUID ...)``.

    ``original`` is the path of the file kept, relative to ROOT; ``use`` says what is done
    with it (``"converted"``).
    """
    return f"duplicate of {original} (same SOPInstanceUID {uid}), which is {use}"


def _without_copies(
    sources: Sequence[RTObject],
) -> tuple[list[RTObject], list[tuple[RTObject, RTObject]]]:
    """The objects to convert, and each later copy (same SOPInstanceUID) with its original."""
    kept: list[RTObject] = []
    copies: list[tuple[RTObject, RTObject]] = []
    first: dict[str, RTObject] = {}
    for rt_object in sources:
        uid = rt_object.sop_instance_uid
        if uid and uid in first:
            copies.append((rt_object, first[uid]))
            continue
        if uid:
            first[uid] = rt_object
        kept.append(rt_object)
    return kept, copies


def plan_archive(
    root: Path,
    out: Path,
    options: CaseOptions,
    *,
    layout: Layout | None = None,
    inventory: Inventory | None = None,
    image: ImageSeries | None = None,
) -> ArchivePlan:
    """Find every structure set and SEG under ``root`` and plan its case.

    Parameters
    ----------
    root
        The archive (a folder tree; a single file works too).
    out
        The output folder.
    options
        How each case is converted.
    layout
        ``"patient"``, ``"flat"`` or ``"single"``; None: ``"single"`` for one structure
        set, else ``"patient"``.
    inventory
        ``scan(root)`` when already made (else it is made here).
    image
        One image series for every structure set (``--image``), instead of the series
        discovery links to each; ``cases.csv`` says ``given`` as its link.
    """
    base = root if root.is_dir() else root.parent
    if inventory is None:
        inventory = scan(root)
    sources = sorted(
        (*inventory.structure_sets, *inventory.segmentations),
        key=lambda o: scanned_relative(o.path, base),
    )
    kept, copies = _without_copies(sources)
    chosen: Layout = layout or ("single" if len(kept) == 1 else "patient")
    identities = [
        CaseIdentity(
            patient_id=o.patient_id or "",
            study_date=_study_date(o.path),
            study_uid=o.study_instance_uid or "",
            label=o.label or o.path.stem,
            sop_instance_uid=o.sop_instance_uid or "",
        )
        for o in kept
    ]
    folders = case_folders(identities, chosen)
    tasks = []
    output_of: dict[int, str] = {}
    for rt_object, folder in zip(kept, folders, strict=True):
        if image is None:
            link = link_image_series(rt_object, inventory.image_series)
            series, method, message = link.series, link.method, link.message
        else:
            series, method, message = image, "given", f"image series given ({image.folder})"
        output = folder.as_posix()
        output_of[id(rt_object)] = output
        tasks.append(
            CaseTask(
                source=rt_object.path,
                structure_set=scanned_relative(rt_object.path, base),
                folder=out / folder,
                output=output,
                modality=rt_object.modality,
                series=series,
                link=method,
                link_message=message,
                patient_id=rt_object.patient_id or "",
                study_uid=rt_object.study_instance_uid or "",
                structure_set_uid=rt_object.sop_instance_uid or "",
                options=options,
                dose=choose_dose(rt_object, inventory)
                if rt_object.modality == "RTSTRUCT"
                else None,
            )
        )
    rows = [
        _row(
            copy,
            scanned_relative(copy.path, base),
            "skipped",
            duplicate_error(
                scanned_relative(original.path, base),
                copy.sop_instance_uid,
                "converted",
            ),
            output_of[id(original)],
        )
        for copy, original in copies
    ]
    rows.extend(
        _row(None, scanned_relative(s.path, base), "failed", f"{s.path}: {s.reason}", "")
        for s in inventory.skipped
        if s.kind in UNREADABLE_KINDS
    )
    return ArchivePlan(tasks=tuple(tasks), rows=tuple(rows), layout=chosen)


def convert_archive(
    plan: ArchivePlan,
    out: Path,
    executor: Executor,
    *,
    progress: Progress | None = None,
    refresh_s: float = REFRESH_S,
) -> list[CaseResult]:
    """Run the plan's tasks with ``executor``; write ``out/cases.csv`` (and Parquet).

    ``cases.csv`` is refreshed every ``refresh_s`` seconds during the run (a run killed
    part-way leaves a valid one listing the cases done) and written in full at the end,
    rows in the order of the structure set paths.

    Returns
    -------
    list of CaseResult
        Every row, in ``cases.csv``'s order.
    """
    results: dict[int, CaseResult] = {}
    last_write = time.monotonic()

    def ordered() -> list[CaseResult]:
        # A copy's row names its original's folder: none when that case wrote nothing.
        empty = {plan.tasks[i].output for i, r in results.items() if not r.output}
        copies = [replace(r, output="") if r.output in empty else r for r in plan.rows]
        return sorted([*copies, *results.values()], key=lambda r: r.structure_set)

    def on_result(index: int, result: CaseResult) -> None:
        nonlocal last_write
        results[index] = result
        if result.status == "failed":
            logger.info("failed: %s", result.error)
        if progress is not None:
            progress(result)
        if time.monotonic() - last_write > refresh_s:
            write_cases(ordered(), out, parquet=False)
            last_write = time.monotonic()

    write_cases(ordered(), out, parquet=False)  # from the start: the rows known now
    for row in plan.rows:
        if progress is not None:
            progress(row)
    # Largest cases first: the last cases to finish are small ones, so no worker idles
    # long at the end while another converts a big case (longest-processing-time order).
    order = sorted(range(len(plan.tasks)), key=lambda i: -_voxels(plan.tasks[i]))
    executor.run([plan.tasks[i] for i in order], lambda k, result: on_result(order[k], result))
    rows = ordered()
    write_cases(rows, out)
    return rows


def _voxels(task: CaseTask) -> int:
    """The size of a case's image (voxels), what its conversion time mostly follows."""
    return 0 if task.series is None else int(np.prod(task.series.grid.shape))


def count_statuses(rows: Sequence[CaseResult]) -> dict[str, int]:
    """How many rows have each status."""
    counts = {"converted": 0, "failed": 0, "skipped": 0}
    for row in rows:
        counts[row.status] = counts.get(row.status, 0) + 1
    return counts
