"""The per-case DVH task: one structure set and its dose in, one table row per ROI out.

:func:`run_dvh_case` is a plain function of a picklable :class:`DvhTask`, like
:func:`rtmask.cohort._tasks.run_case`, so the same executors run it serially, in a process
pool or on a Dask worker. It never raises for a bad case: the result's ``error`` says what
failed (the case, or single ROIs of it) and its rows hold what could be computed.
"""

from __future__ import annotations

import math
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

from rtmask._errors import InvalidInputError, RtmaskError, RtmaskWarning
from rtmask.convert import DoseSelection, select_rois
from rtmask.dose import DoseGrid, add_doses, read_dose
from rtmask.dvh._get_dvh import compute_roi_dvhs
from rtmask.errors import DoseWarning
from rtmask.names import RoiMap
from rtmask.plan import read_plan
from rtmask.rtstruct import read_rtstruct

__all__ = [
    "DVH_COLUMNS",
    "PRESCRIPTION_COLUMNS",
    "DvhOptions",
    "DvhResult",
    "DvhTask",
    "failed_dvh_result",
    "run_dvh_case",
]

#: The fixed columns of the cohort DVH table, in order (one column per statistic follows).
DVH_COLUMNS = (
    "patient_id",
    "structure_set",
    "dose",
    "dose_choice",
    "roi_number",
    "roi_name",
    "canonical",
    "volume_cm3",
    "min_gy",
    "mean_gy",
    "max_gy",
)

#: The columns after the statistics: each case's prescription dose (Gy) and its source.
PRESCRIPTION_COLUMNS = ("prescription_gy", "prescription_source")

Cell = str | int | float | None


@dataclass(frozen=True, slots=True, kw_only=True)
class DvhOptions:
    """How every case's DVHs are computed (plain values: pickled with each task).

    Parameters
    ----------
    stats
        The statistics, as ``rtmask dvh --stats`` names them (``D95``, ``V20Gy``, ...).
    roi_patterns, roi_map
        ROI selection, as ``--roi`` and ``--roi-map``.
    resolution_mm, end_caps, count_outside
        :func:`rtmask.dvh.compute_dvh`'s options.
    prescription_gy
        One prescription dose (Gy) for every case; None: each case's own, from the RT Plan
        linked to its dose (V<x>% statistics are empty for a case without one).
    prescription_source
        What the table says of ``prescription_gy`` in ``prescription_source``.
    limit_gy, slab_thickness_mm, interpolate
        :func:`rtmask.get_dvh`'s dose cap (Gy), slab of an ROI drawn on a single plane (mm)
        and contour interpolation between planes.
    """

    stats: tuple[str, ...] = ()
    roi_patterns: tuple[str, ...] = ()
    roi_map: RoiMap | None = None
    resolution_mm: float | None = None
    end_caps: str = "half"
    prescription_gy: float | None = None
    count_outside: bool = False
    prescription_source: str = "given"
    limit_gy: float | None = None
    slab_thickness_mm: float | None = None
    interpolate: int | bool = False


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class DvhTask:
    """One structure set and the dose discovery linked to it.

    Parameters
    ----------
    source
        The RTSTRUCT file.
    structure_set
        ``source`` relative to the archive root, POSIX style.
    patient_id
        The structure set's PatientID.
    dose
        :func:`rtmask.convert.choose_dose`'s choice (the dose files to add up).
    dose_files
        The dose files relative to the archive root, ``;``-joined.
    options
        How to compute.
    plan
        The RT Plan linked to the dose, for the prescription (None: none is, or
        ``options.prescription_gy`` is given).
    plan_file
        ``plan`` relative to the archive root.
    plan_note
        Why no plan is linked, in words (for the warning when a statistic needs one).
    """

    source: Path
    structure_set: str
    patient_id: str
    dose: DoseSelection
    dose_files: str
    options: DvhOptions
    plan: Path | None = None
    plan_file: str = ""
    plan_note: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class DvhResult:
    """What one case gave: its table rows, and what failed (empty when nothing did)."""

    structure_set: str
    rows: tuple[dict[str, Cell], ...]
    errors: tuple[str, ...]
    seconds: float = 0.0
    warnings: tuple[str, ...] = ()  # what changed a result (rtmask warnings), one line each

    @property
    def status(self) -> str:
        """``failed`` when anything failed (even one ROI), else ``done``."""
        return "failed" if self.errors else "done"


def failed_dvh_result(task: DvhTask, error: str) -> DvhResult:
    """The result of a case that failed outside the task (e.g. its worker process died)."""
    return DvhResult(structure_set=task.structure_set, rows=(), errors=(error,))


def _number(value: float | None) -> float | None:
    """A table value: None for a missing or not-a-number value (empty cell, NULL)."""
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def _prescription(task: DvhTask) -> tuple[float | None, str | None, str]:
    """The case's prescription (Gy), its source for the table, and why there is none."""
    options = task.options
    if options.prescription_gy is not None:
        return options.prescription_gy, options.prescription_source, ""
    if task.plan is None:
        return None, None, task.plan_note
    try:
        plan = read_plan(task.plan)
    except RtmaskError as error:
        warnings.warn(f"{error} (the RT Plan of the dose; not used)", DoseWarning, stacklevel=2)
        return None, None, f"its RT Plan {task.plan_file} cannot be read"
    if plan.prescription is None:
        return None, None, f"its RT Plan {task.plan_file} holds no prescription dose"
    return plan.prescription.dose_gy, f"plan {task.plan_file} ({plan.prescription.source})", ""


def _read_dose(task: DvhTask, prescription_gy: float | None) -> DoseGrid:
    """The chosen dose: one file, or the beam doses added on the first one's grid."""
    doses = [read_dose(path, prescription_gy=prescription_gy) for path in task.dose.files]
    total = doses[0]
    for dose in doses[1:]:
        total = add_doses(total, dose)
    return total


def _rows(task: DvhTask) -> tuple[list[dict[str, Cell]], list[str]]:
    """Every selected ROI's row, and the problems (case-level ones raise RtmaskError)."""
    options = task.options
    structure_set = read_rtstruct(task.source, on_invalid="ignore")
    selected, canonical = select_rois(structure_set, options.roi_patterns, options.roi_map)
    if not selected:
        raise RtmaskError(
            f"{task.source}: no ROI matches the selection; ROIs are "
            + ", ".join(repr(name) for name in structure_set.roi_names)
        )
    problems = list(structure_set.read_problems(selected))
    rois = [roi for roi in selected if roi.encloses_volume]
    if not rois:
        raise RtmaskError(f"{task.source}: no selected ROI encloses volume; no DVH")
    prescription, source, why_none = _prescription(task)
    dose = _read_dose(task, prescription)
    rows: list[dict[str, Cell]] = []
    results = compute_roi_dvhs(
        rois,
        structure_set,
        dose,
        limit_gy=options.limit_gy,
        slab_thickness_mm=options.slab_thickness_mm,
        interpolate=options.interpolate,
        resolution_mm=options.resolution_mm,
        end_caps=options.end_caps,
        prescription_gy=prescription,
        count_outside=options.count_outside,
        on_invalid="ignore",
    )
    unknown: dict[str, None] = {}  # statistics needing the prescription the case lacks
    for roi, dvh in zip(rois, results, strict=True):
        if isinstance(dvh, RtmaskError):
            message = str(dvh)
            problems.append(message if str(task.source) in message else f"{task.source}: {message}")
            continue
        row: dict[str, Cell] = {
            "patient_id": task.patient_id,
            "structure_set": task.structure_set,
            "dose": task.dose_files,
            "dose_choice": task.dose.choice,
            "roi_number": int(roi.number),
            "roi_name": roi.name,
            "canonical": canonical.get(roi.number),
            "volume_cm3": _number(dvh.total_cm3),
            "min_gy": _number(dvh.min_gy),
            "mean_gy": _number(dvh.mean_gy),
            "max_gy": _number(dvh.max_gy),
        }
        for name in options.stats:
            try:
                row[name] = _number(dvh.statistic(name))
            except InvalidInputError:  # V<x>%: in % of a prescription the case has not
                row[name] = None
                unknown[name] = None
        row |= {"prescription_gy": prescription, "prescription_source": source}
        rows.append(row)
    if unknown:
        warnings.warn(
            f"{task.source}: {', '.join(unknown)} left empty: no prescription dose, "
            f"{why_none}; give one for all cases (prescription_gy=...)",
            DoseWarning,
            stacklevel=2,
        )
    return rows, problems


def run_dvh_case(task: DvhTask) -> DvhResult:
    """Compute one case's DVH rows; never raises for a bad case (``errors`` says why)."""
    start = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", RtmaskWarning)
        try:
            rows, problems = _rows(task)
        except RtmaskError as error:
            rows, problems = [], [str(error)]
        except (OSError, MemoryError, ValueError) as error:
            rows, problems = [], [f"{task.source}: {type(error).__name__}: {error}"]
    notes = []
    for caught_warning in caught:
        if not issubclass(caught_warning.category, RtmaskWarning):
            warnings.warn(caught_warning.message, caught_warning.category, stacklevel=2)
            continue
        message = str(caught_warning.message)
        notes.append(message if str(task.source) in message else f"{task.source}: {message}")
    return DvhResult(
        structure_set=task.structure_set,
        rows=tuple(rows),
        errors=tuple(problems),
        seconds=round(time.perf_counter() - start, 3),
        warnings=tuple(dict.fromkeys(notes)),
    )
