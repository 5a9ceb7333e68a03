"""The per-case task: one structure set (or SEG) in, one small summary out.

:func:`run_case` is a plain function of a picklable :class:`CaseTask`: it shares no state,
so the same call runs in a loop, a process pool or on a Dask worker. It never raises for a
bad case (the failure is the summary's ``error``) and writes through the conversion
library, whose files are written atomically with ``summary.json`` last: a case is finished
when its ``summary.json`` exists and lists no problem (a case that failed part-way is
converted again by a rerun).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from rtmask._errors import GeometryError, RtmaskError
from rtmask.convert import (
    ConversionOptions,
    ConversionReport,
    DoseSelection,
    convert_seg,
    convert_structure_set,
    select_rois,
)
from rtmask.discovery import ImageSeries
from rtmask.geometry import ImageGrid
from rtmask.names import RoiMap
from rtmask.rtstruct import StructureSet, read_rtstruct

__all__ = [
    "CASE_COLUMNS",
    "SUMMARY_NAME",
    "CaseOptions",
    "CaseResult",
    "CaseTask",
    "covering_grid",
    "failed_result",
    "finished",
    "run_case",
    "written_output",
]

#: The file whose presence (with no problem listed in it) marks a finished case.
SUMMARY_NAME = "summary.json"
#: The columns of ``cases.csv``, in order.
CASE_COLUMNS = (
    "patient_id",
    "study_uid",
    "structure_set",
    "structure_set_uid",
    "image_series_uid",
    "link",
    "status",
    "error",
    "output",
    "rois_written",
    "seconds",
)
#: Test hooks (environment variables read by the task): a task whose source file name
#: contains the first one's value ends its process at once (a worker that dies); the second
#: makes every task sleep that many seconds first (time to kill a run mid-way).
EXIT_HOOK = "RTMASK_TEST_EXIT_ON"
DELAY_HOOK = "RTMASK_TEST_TASK_DELAY"
#: The temporary names of :func:`rtmask._atomic.atomic_path`: ``.<name>.<8 hex>.tmp<suffix>``.
_TEMPORARY = re.compile(r"^\..+\.[0-9a-f]{8}\.tmp[^/]*$")


@dataclass(frozen=True, slots=True, kw_only=True)
class CaseOptions:
    """How every case of a run is converted (plain values: pickled with each task).

    Parameters
    ----------
    conversion
        The conversion library's options.
    roi_patterns, roi_map
        ROI selection, as ``--roi`` and ``--roi-map``.
    force
        Convert again a finished case (``summary.json`` listing no problem; else skipped).
    mask_grid, mask_grid_note
        One grid for every case's masks (``--dose-grid``; convert with
        ``slice_mode="slab"``) and the words saying which it is.
    grid_spacing_mm
        Masks on a grid of this spacing (mm) covering each structure set's contours
        (``--grid-spacing``; convert with ``slice_mode="slab"``).
    """

    conversion: ConversionOptions = field(default_factory=ConversionOptions)
    roi_patterns: tuple[str, ...] = ()
    roi_map: RoiMap | None = None
    force: bool = False
    mask_grid: ImageGrid | None = None
    mask_grid_note: str = ""
    grid_spacing_mm: float | None = None

    @property
    def own_grid(self) -> bool:
        """True when the masks go on a grid other than the image series' (no series needed)."""
        return self.mask_grid is not None or self.grid_spacing_mm is not None


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class CaseTask:
    """One structure set (or DICOM SEG) to convert into one folder.

    Parameters
    ----------
    source
        The file.
    structure_set
        ``source`` relative to the archive root, POSIX style (for ``cases.csv``).
    folder
        The case folder (absolute); ``output`` is it relative to OUT.
    modality
        ``"RTSTRUCT"`` or ``"SEG"``.
    series, link, link_message
        The linked image series (None when none), the link method and its message.
    patient_id, study_uid, structure_set_uid
        Identity, for ``cases.csv``.
    options
        How to convert.
    dose
        The RT Dose linked to the structure set (:func:`rtmask.convert.choose_dose`),
        written beside the masks unless the options say otherwise.
    """

    source: Path
    structure_set: str
    folder: Path
    output: str
    modality: str
    series: ImageSeries | None
    link: str
    link_message: str
    patient_id: str
    study_uid: str
    structure_set_uid: str
    options: CaseOptions
    dose: DoseSelection | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class CaseResult:
    """One row of ``cases.csv`` (see :data:`CASE_COLUMNS`).

    ``output`` is the case folder relative to OUT; empty for a ``failed`` case that wrote
    nothing (a failed case that wrote some files names its folder).
    """

    patient_id: str
    study_uid: str
    structure_set: str
    structure_set_uid: str
    image_series_uid: str
    link: str
    status: str  # converted, failed or skipped
    error: str
    output: str
    rois_written: int
    seconds: float

    def row(self) -> dict[str, str | int | float]:
        """The row as a mapping of :data:`CASE_COLUMNS`."""
        return {column: getattr(self, column) for column in CASE_COLUMNS}


def written_output(task: CaseTask) -> str:
    """``task.output`` when its folder holds a file, else ``""`` (nothing was written)."""
    try:
        holds = task.folder.is_dir() and any(task.folder.iterdir())
    except OSError:
        holds = False
    return task.output if holds else ""


def _result(
    task: CaseTask, status: str, *, error: str = "", rois: int = 0, seconds: float = 0.0
) -> CaseResult:
    return CaseResult(
        patient_id=task.patient_id,
        study_uid=task.study_uid,
        structure_set=task.structure_set,
        structure_set_uid=task.structure_set_uid,
        image_series_uid=task.series.series_instance_uid if task.series is not None else "",
        link=task.link,
        status=status,
        error=error,
        output=written_output(task) if status == "failed" else task.output,
        rois_written=rois,
        seconds=round(seconds, 3),
    )


def failed_result(task: CaseTask, error: str) -> CaseResult:
    """The row of a case that failed outside the task (e.g. its worker process died)."""
    return _result(task, "failed", error=error)


def run_case(task: CaseTask) -> CaseResult:
    """Convert one case; never raises for a bad case (its row says what failed).

    A finished case (:func:`finished`) is ``skipped`` unless ``task.options.force``; one
    whose ``summary.json`` lists problems (it failed part-way) is converted again.
    """
    if not task.options.force and finished(task.folder):
        return _result(
            task, "skipped", error=f"already converted ({task.output}/{SUMMARY_NAME} exists)"
        )
    start = time.perf_counter()
    _test_hooks(task)
    _remove_temporaries(task.folder)
    try:
        report = _convert(task)
    except RtmaskError as error:
        return _result(task, "failed", error=str(error), seconds=time.perf_counter() - start)
    except (OSError, MemoryError, ValueError) as error:
        return _result(
            task,
            "failed",
            error=f"{task.source}: {type(error).__name__}: {error}",
            seconds=time.perf_counter() - start,
        )
    written = sum(row.status == "written" for row in report.rows)
    return _result(
        task,
        "failed" if report.problems else "converted",
        error=" | ".join(report.problems),
        rois=written,
        seconds=time.perf_counter() - start,
    )


def finished(folder: Path) -> bool:
    """Whether ``folder`` holds a finished case: a ``summary.json`` that lists no problem.

    A summary of an older rtmask without the ``problems`` key counts as finished; one
    that cannot be read does not (the case is converted again).
    """
    try:
        document = json.loads((folder / SUMMARY_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(document, dict) and not document.get("problems")


def _remove_temporaries(folder: Path) -> None:
    """Delete the hidden temporary files a killed run left in an unfinished case's folder."""
    if not folder.is_dir():
        return
    for path in folder.iterdir():
        if _TEMPORARY.match(path.name) and path.is_file():
            with contextlib.suppress(OSError):
                path.unlink()


def _test_hooks(task: CaseTask) -> None:
    """The test hooks of :data:`EXIT_HOOK` and :data:`DELAY_HOOK` (unset: nothing)."""
    delay = os.environ.get(DELAY_HOOK)
    if delay:
        time.sleep(float(delay))
    marker = os.environ.get(EXIT_HOOK)
    if marker and marker in task.source.name:
        os._exit(70)


def covering_grid(structure_set: StructureSet, spacing_mm: float, source: Path) -> ImageGrid:
    """A grid of ``spacing_mm`` (mm, every axis) around the contours, the end slabs kept whole.

    Raises
    ------
    RtmaskError
        The structure set (``source``) has no contour points, or no grid fits them.
    """
    points = structure_set.all_points_mm()
    if points.size == 0:
        raise RtmaskError(f"{source}: no contour points to build a grid around")
    # The end planes' slabs reach half a contour gap beyond them: keep them whole.
    planes = np.unique(np.round(points[:, 2], 3))
    half_gap = float(np.diff(planes).max()) / 2 if planes.size > 1 else spacing_mm
    try:
        return ImageGrid.covering(
            points,
            spacing_mm=(spacing_mm, spacing_mm, spacing_mm),
            margin_mm=half_gap + spacing_mm,
            frame_of_reference_uid=structure_set.frame_of_reference_uid,
        )
    except GeometryError as error:
        raise RtmaskError(f"{source}: no grid around its contours: {error}") from error


def _mask_grid(task: CaseTask, structure_set: StructureSet) -> tuple[ImageGrid, str]:
    """The grid of the case's masks and the note saying which it is."""
    options = task.options
    if options.mask_grid is not None:
        return options.mask_grid, options.mask_grid_note
    if options.grid_spacing_mm is not None:
        grid = covering_grid(structure_set, options.grid_spacing_mm, task.source)
        return grid, f"on a {options.grid_spacing_mm:g} mm grid covering the structures"
    assert task.series is not None  # checked by _convert
    return task.series.grid, f"{task.link_message}; images in {task.series.files[0].parent}"


def _convert(task: CaseTask) -> ConversionReport:
    """Read the case's file and write its folder; RtmaskError says why it cannot."""
    options = task.options
    series = task.series
    if task.modality == "SEG" and options.own_grid:
        raise RtmaskError(
            f"{task.source}: a DICOM SEG is written out on its own image grid; "
            "--dose-grid and --grid-spacing apply to structure sets only"
        )
    if series is None and not options.own_grid:
        raise RtmaskError(f"{task.source}: {task.link_message}")
    if task.modality == "SEG":
        assert series is not None
        note = f"{task.link_message}; images in {series.files[0].parent}"
        return convert_seg(
            task.source,
            series,
            task.folder,
            options.conversion,
            roi_patterns=options.roi_patterns,
            roi_map=options.roi_map,
            image_series=note,
        )
    structure_set = read_rtstruct(task.source, on_invalid="ignore")
    if not structure_set.rois:
        details = (*structure_set.skipped_rois, *structure_set.warnings) or ("nothing to convert",)
        raise RtmaskError(f"{task.source}: the structure set holds no ROIs ({'; '.join(details)})")
    rois, _ = select_rois(structure_set, options.roi_patterns, options.roi_map)
    if not rois:
        raise RtmaskError(
            f"{task.source}: no ROI matches the selection; ROIs are "
            + ", ".join(repr(name) for name in structure_set.roi_names)
        )
    grid, note = _mask_grid(task, structure_set)
    return convert_structure_set(
        structure_set,
        grid,
        task.folder,
        options.conversion,
        rois=rois,
        series=series,
        image_series=note,
        roi_map=options.roi_map,
        dose=task.dose,
    )
