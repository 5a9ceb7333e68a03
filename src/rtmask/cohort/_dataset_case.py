"""One case of a training data set: channels, label map and the case's JSON, in one task.

:func:`run_dataset_case` is a plain function of a picklable
:class:`~rtmask.cohort._dataset_plan.DatasetTask` (a loop, a process pool or a Dask worker
runs it alike). It rasterises the labels' ROIs on the first channel's grid by the
pixel-centre rule, applies the overlap and missing-label policies, writes the images (the
further channels resampled linearly onto the first one's grid), the uint8 label map on
exactly that grid and affine, and the case's JSON last; each file atomically. It never
raises for a bad case: its row says why the case was left out or failed.
"""

from __future__ import annotations

import contextlib
import json
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from rtmask._atomic import atomic_path
from rtmask._errors import RtmaskError
from rtmask.cohort._dataset_plan import DatasetTask
from rtmask.cohort._tasks import CaseResult
from rtmask.convert._volumes import _read_volume, write_image
from rtmask.errors import GeometryWarning
from rtmask.export import write_image_volume, write_nifti
from rtmask.geometry import ImageGrid
from rtmask.raster import rasterize
from rtmask.rtstruct import read_rtstruct

__all__ = [
    "FILE_ENDING",
    "DatasetCaseResult",
    "case_folders",
    "failed_dataset_result",
    "resample_linear",
    "run_dataset_case",
]

FILE_ENDING = ".nii.gz"
#: Folder (inside the data set) of each case's JSON, and of the staged region codes.
CASES_FOLDER = "cases"
REGIONS_FOLDER = ".regions"


class _LeftOutError(RtmaskError):
    """A case the policies leave out (``excluded``), not one that failed."""


@dataclass(frozen=True, slots=True, kw_only=True)
class DatasetCaseResult:
    """What one case gave: its ``cases.csv`` row and what the data set files need.

    Parameters
    ----------
    row
        The ``cases.csv`` row (status ``included``, ``excluded`` or ``failed``).
    case_id, patient_id, test
        The case identifier, its patient, and whether it is a test case.
    annotated, absent
        Label names that are truly annotated (at least one voxel), and those that are not.
    combinations
        ``overlap="regions"``: the label-bit codes met in the case (bit ``i`` = label
        ``i + 1``), for the data set's numbering of combinations.
    notes
        What the case's user should know (voxels given to an earlier label, ...).
    grid
        The case's grid (the region codes' label map is written on it at the end).
    """

    row: CaseResult
    case_id: str
    patient_id: str
    test: bool
    annotated: tuple[str, ...] = ()
    absent: tuple[str, ...] = ()
    combinations: tuple[int, ...] = ()
    notes: tuple[str, ...] = field(default=())
    grid: ImageGrid | None = None


def case_folders(dataset_format: str, test: bool) -> tuple[str, str]:
    """The image and label folders of a case inside the data set folder."""
    if dataset_format == "monai":
        return "images", "labels"
    return ("imagesTs", "labelsTs") if test else ("imagesTr", "labelsTr")


def _row(task: DatasetTask, status: str, error: str, labels: int, seconds: float) -> CaseResult:
    return CaseResult(
        patient_id=task.patient_id,
        study_uid=task.study_uid,
        structure_set=task.structure_set,
        structure_set_uid=task.structure_set_uid,
        image_series_uid=task.series.series_instance_uid,
        link=task.link,
        status=status,
        error=error,
        output=task.case_id if status == "included" else "",
        rois_written=labels,
        seconds=round(seconds, 3),
    )


def _result(
    task: DatasetTask, status: str, error: str = "", seconds: float = 0.0, **facts: object
) -> DatasetCaseResult:
    annotated = facts.get("annotated", ())
    assert isinstance(annotated, tuple)
    return DatasetCaseResult(
        row=_row(task, status, error, len(annotated), seconds),
        case_id=task.case_id,
        patient_id=task.patient_id,
        test=task.test,
        **facts,  # type: ignore[arg-type]
    )


def failed_dataset_result(task: DatasetTask, error: str) -> DatasetCaseResult:
    """The result of a case whose worker died (the executors' ``failure``)."""
    _discard(task)
    return _result(task, "failed", error)


def run_dataset_case(task: DatasetTask) -> DatasetCaseResult:
    """Build one case of the data set; never raises for a bad case.

    A case left out or failed leaves no file in the data set (what it wrote is removed),
    and its row's ``output`` is empty.
    """
    start = time.perf_counter()
    try:
        facts = _build(task)
    except _LeftOutError as reason:
        _discard(task)
        return _result(task, "excluded", str(reason), time.perf_counter() - start)
    except RtmaskError as error:
        _discard(task)
        return _result(task, "failed", str(error), time.perf_counter() - start)
    except (OSError, MemoryError, ValueError) as error:
        _discard(task)
        message = f"{task.source}: {type(error).__name__}: {error}"
        return _result(task, "failed", message, time.perf_counter() - start)
    return _result(task, "included", "", time.perf_counter() - start, **facts)


def _discard(task: DatasetTask) -> None:
    """Remove the files a case not included wrote before it stopped (none: nothing)."""
    images, labels = case_folders(task.options.dataset_format, task.test)
    names = [
        *(f"{images}/{task.case_id}_{i:04d}{FILE_ENDING}" for i in range(len(task.channels) + 1)),
        f"{labels}/{task.case_id}{FILE_ENDING}",
        f"{REGIONS_FOLDER}/{task.case_id}.npy",
        f"{CASES_FOLDER}/{task.case_id}.json",
    ]
    for name in names:
        with contextlib.suppress(OSError):
            (task.staging / name).unlink(missing_ok=True)


def _masks(task: DatasetTask, grid: ImageGrid) -> tuple[list[NDArray[np.bool_] | None], list[str]]:
    """Per label, its binary mask on ``grid`` (None when absent), and notes."""
    structure_set = read_rtstruct(task.source, on_invalid="ignore")
    rois = {roi.number: roi for roi in structure_set.rois}
    masks: list[NDArray[np.bool_] | None] = []
    notes = []
    for label, number in zip(task.options.labels, task.roi_numbers, strict=True):
        roi = rois.get(number) if number is not None else None
        if number is not None and roi is None:
            notes.append(f"label {label!r}: ROI {number} has no usable contours")
        mask = (
            rasterize(roi, grid, rule=task.options.rule, on_invalid="ignore").array
            if roi is not None
            else None
        )
        if mask is not None and not mask.any():
            notes.append(f"label {label!r}: ROI {number} {roi.name!r} holds no voxel centre")  # type: ignore[union-attr]
            mask = None
        masks.append(np.asarray(mask, dtype=bool) if mask is not None else None)
    return masks, notes


def _overlap_text(labels: Sequence[str], masks: Sequence[NDArray[np.bool_] | None]) -> str:
    """``'Lung_L' and 'Heart' share 12 voxels; ...`` for every overlapping pair."""
    pairs = []
    for i, first in enumerate(masks):
        for j in range(i + 1, len(masks)):
            second = masks[j]
            if first is not None and second is not None:
                shared = int(np.count_nonzero(first & second))
                if shared:
                    pairs.append(f"{labels[i]!r} and {labels[j]!r} share {shared} voxels")
    return "; ".join(pairs)


def _label_map(
    task: DatasetTask, masks: Sequence[NDArray[np.bool_] | None], shape: tuple[int, ...]
) -> tuple[NDArray[np.generic], list[str], tuple[int, ...]]:
    """The label map (or region bit codes), notes on overwritten voxels, codes met."""
    labels = task.options.labels
    policy = task.options.overlap
    if policy == "regions":
        bits = len(labels)
        dtype = np.uint8 if bits <= 8 else np.uint16 if bits <= 16 else np.uint32
        dtype = dtype if bits <= 32 else np.uint64
        codes = np.zeros(shape, dtype=dtype)
        for index, mask in enumerate(masks):
            if mask is not None:
                codes[mask] |= dtype(1 << index)
        met = tuple(int(c) for c in np.unique(codes) if c)
        return codes, [], met
    label_map = np.zeros(shape, dtype=np.uint8)
    notes = []
    for index, mask in enumerate(masks):
        if mask is None:
            continue
        taken = mask & (label_map != 0)
        overwritten = int(np.count_nonzero(taken))
        if overwritten and policy == "error":
            raise _LeftOutError(f"labels overlap (overlap=error): {_overlap_text(labels, masks)}")
        if overwritten:
            earlier = sorted({labels[v - 1] for v in np.unique(label_map[taken])})
            notes.append(
                f"{overwritten} voxels of {labels[index]!r} kept by the earlier label(s) "
                f"{', '.join(repr(e) for e in earlier)} (overlap=priority)"
            )
        label_map[mask & (label_map == 0)] = index + 1
    return label_map, notes, ()


def _build(task: DatasetTask) -> dict[str, object]:
    """Write the case's files; the facts of its result. ``_LeftOutError`` when excluded."""
    options = task.options
    grid = task.series.grid
    masks, notes = _masks(task, grid)
    annotated = tuple(lab for lab, m in zip(options.labels, masks, strict=True) if m is not None)
    absent = tuple(lab for lab, m in zip(options.labels, masks, strict=True) if m is None)
    if not annotated:
        raise _LeftOutError(f"no label holds a voxel: {'; '.join(notes)}")
    if absent and options.missing != "empty":
        raise _LeftOutError(f"missing label(s) {', '.join(absent)} ({'; '.join(notes)})")
    label_map, overlap_notes, combinations = _label_map(task, masks, grid.shape)
    notes.extend(overlap_notes)
    images, labels = case_folders(options.dataset_format, task.test)
    folder = task.staging
    if not grid.is_uniform:
        notes.append(
            f"the image's slices are unevenly spaced ({'; '.join(grid.irregularities())}): "
            "its NIfTI files hold the mean spacing"
        )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", GeometryWarning)  # the note above says it once
        channels = _write_channels(task, folder / images, grid)
        if options.overlap == "regions":
            staged = folder / REGIONS_FOLDER / f"{task.case_id}.npy"
            with atomic_path(staged) as temporary, temporary.open("wb") as stream:
                np.save(stream, label_map)
        else:
            write_nifti(label_map, grid, folder / labels / f"{task.case_id}{FILE_ENDING}")
    counts = {
        label: int(np.count_nonzero(mask))
        for label, mask in zip(options.labels, masks, strict=True)
        if mask is not None
    }
    _write_case_json(
        task,
        folder,
        annotated=annotated,
        absent=absent,
        counts=counts,
        notes=notes,
        channels=channels,
    )
    return {
        "annotated": annotated,
        "absent": absent,
        "combinations": combinations,
        "notes": tuple(notes),
        "grid": grid,
    }


def _write_channels(task: DatasetTask, folder: Path, grid: ImageGrid) -> list[dict[str, object]]:
    """Write ``<case>_0000`` (the structure set's series) and the resampled channels."""
    facts: list[dict[str, object]] = []
    path = folder / f"{task.case_id}_0000{FILE_ENDING}"
    outcome = write_image(
        task.series, grid, path, on_mask_grid=True, source=str(task.source), uneven=True
    )
    if outcome.path is None:
        raise RtmaskError(outcome.problems[0])
    facts.append({"file": path.name, **(outcome.facts or {})})
    for index, series in enumerate(task.channels, start=1):
        path = folder / f"{task.case_id}_{index:04d}{FILE_ENDING}"
        values = _read_volume(series)
        fill = float(values.min()) if values.size else 0.0
        resampled = resample_linear(values, series.grid, grid, fill=fill)
        dtype = write_image_volume(resampled, grid, path)
        facts.append(
            {
                "file": path.name,
                "series_uid": series.series_instance_uid,
                "modality": series.modality,
                "dtype": dtype.name,
                "resampled": "linear, onto channel 0's grid",
                "fill_outside": fill,
            }
        )
    return facts


def _write_case_json(
    task: DatasetTask,
    folder: Path,
    *,
    annotated: tuple[str, ...],
    absent: tuple[str, ...],
    counts: dict[str, int],
    notes: list[str],
    channels: list[dict[str, object]],
) -> None:
    """The case's JSON (written last): which labels are truly annotated, and why not."""
    document = {
        "case": task.case_id,
        "patient_id": task.patient_id,
        "structure_set": task.structure_set,
        "structure_set_uid": task.structure_set_uid,
        "test": task.test,
        "annotated": list(annotated),
        "absent": list(absent),
        "voxels": counts,
        "notes": notes,
        "channels": channels,
    }
    path = folder / CASES_FOLDER / f"{task.case_id}.json"
    with atomic_path(path) as temporary:
        temporary.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")


def resample_linear(
    values: NDArray[np.generic], source: ImageGrid, target: ImageGrid, *, fill: float = 0.0
) -> NDArray[np.float32]:
    """Trilinear interpolation of ``values`` on ``source`` at ``target``'s voxel centres.

    As ITK's (SimpleITK's) linear interpolator: a target voxel centre within half a voxel
    of the source's outermost centres takes the edge value, one further out takes ``fill``.

    Parameters
    ----------
    values
        ``source.shape`` array, ``(slice, row, column)``.
    source, target
        The grids, in one patient space (LPS mm).
    fill
        The value outside ``source``.

    Returns
    -------
    numpy.ndarray
        ``target.shape`` float32.
    """
    data = np.ascontiguousarray(values, dtype=np.float32)
    result = np.empty(target.shape, dtype=np.float32)
    for k in range(target.shape[0]):
        result[k] = _interpolate(data, _source_indices(source, target, k), fill)
    return result


def _source_indices(source: ImageGrid, target: ImageGrid, k: int) -> NDArray[np.float64]:
    """``(rows, columns, 3)`` continuous source indices of target slice ``k``'s centres."""
    _, rows, columns = target.shape
    if source.is_uniform:  # affine within the slice: three points give every one
        corners = source.patient_to_index(
            target.index_to_patient([[k, 0, 0], [k, 1, 0], [k, 0, 1]])
        )
        origin, down, across = corners[0], corners[1] - corners[0], corners[2] - corners[0]
        return np.asarray(
            origin
            + np.arange(rows)[:, None, None] * down
            + np.arange(columns)[None, :, None] * across
        )
    row_index, column_index = np.meshgrid(np.arange(rows), np.arange(columns), indexing="ij")
    indices = np.column_stack(
        [np.full(rows * columns, k), row_index.ravel(), column_index.ravel()]
    ).astype(np.float64)
    at = source.patient_to_index(target.index_to_patient(indices))
    return at.reshape(rows, columns, 3)


def _interpolate(
    data: NDArray[np.float32], at: NDArray[np.float64], fill: float
) -> NDArray[np.float64]:
    """Trilinear values of ``data`` at the continuous indices ``at`` (``(..., 3)``)."""
    shape = np.array(data.shape)
    inside = np.all((at >= -0.5 - 1e-6) & (at < shape - 0.5 + 1e-6), axis=-1)
    at = np.clip(at, 0, shape - 1)
    base = np.minimum(np.floor(at).astype(np.intp), np.maximum(shape - 2, 0))
    weight = at - base
    strides = [int(np.prod(shape[a + 1 :])) if shape[a] > 1 else 0 for a in range(3)]
    flat = data.ravel()
    start = base[..., 0] * data.shape[1] * data.shape[2] + base[..., 1] * data.shape[2]
    start += base[..., 2]

    def corner(dz: int, dy: int, dx: int) -> NDArray[np.float64]:
        picked = flat[start + dz * strides[0] + dy * strides[1] + dx * strides[2]]
        return np.asarray(picked, dtype=np.float64)

    wz, wy, wx = weight[..., 0], weight[..., 1], weight[..., 2]
    planes = []
    for dz in (0, 1):
        rows = []
        for dy in (0, 1):
            low = corner(dz, dy, 0)
            rows.append(low + (corner(dz, dy, 1) - low) * wx)
        planes.append(rows[0] + (rows[1] - rows[0]) * wy)
    values = planes[0] + (planes[1] - planes[0]) * wz
    return np.where(inside, values, fill)
