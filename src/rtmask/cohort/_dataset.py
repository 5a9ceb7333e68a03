"""Build a training data set (nnU-Net v2 or MONAI) from an archive, all or nothing.

:func:`build_dataset` plans the cases (:mod:`~rtmask.cohort._dataset_plan`), runs
:func:`~rtmask.cohort._dataset_case.run_dataset_case` over them with an executor, then
writes what needs every case: the label values of region combinations, the
patient-disjoint folds, ``dataset.json`` and ``splits_final.json`` (nnU-Net) or
``datalist.json`` (MONAI). The data set is built in a hidden folder beside its final name
and renamed into place at the end (``OUT/Dataset<NNN>_<name>``; a MONAI data set's
``images``, ``labels``, ``cases`` and ``datalist.json`` go directly in OUT, each renamed
into place once every case is built), so OUT never holds half a data set; ``OUT/cases.csv``
lists every structure set with its status (``included``, ``excluded``, ``failed``).
"""

from __future__ import annotations

import json
import random
import secrets
import shutil
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from rtmask import __version__
from rtmask._atomic import atomic_path
from rtmask.cohort._cases import write_cases
from rtmask.cohort._dataset_case import (
    CASES_FOLDER,
    FILE_ENDING,
    REGIONS_FOLDER,
    DatasetCaseResult,
    case_folders,
)
from rtmask.cohort._dataset_plan import DatasetOptions, DatasetPlan, plan_dataset
from rtmask.cohort._executors import Executor
from rtmask.cohort._tasks import CaseResult
from rtmask.discovery import Inventory
from rtmask.errors import GeometryWarning, InvalidInputError
from rtmask.export import write_nifti

__all__ = [
    "DATALIST_JSON",
    "DATASET_JSON",
    "SPLITS_JSON",
    "DatasetReport",
    "build_dataset",
    "patient_folds",
    "region_labels",
]

DATASET_JSON = "dataset.json"
SPLITS_JSON = "splits_final.json"
DATALIST_JSON = "datalist.json"
#: What a MONAI data set puts directly in OUT.
MONAI_ENTRIES = ("images", "labels", CASES_FOLDER, DATALIST_JSON)
#: What dataset.json says of the further channels.
RESAMPLING = (
    "resampled onto channel 0's grid by trilinear interpolation in patient space "
    "(outside its own extent: its minimum value)"
)

Progress = Callable[[DatasetCaseResult | CaseResult], None]


@dataclass(frozen=True, slots=True, kw_only=True)
class DatasetReport:
    """What :func:`build_dataset` did.

    Parameters
    ----------
    folder
        The data set folder (None when no case was included and nothing was written).
    rows
        Every ``cases.csv`` row, in structure set order.
    results
        The cases that were built (included or not), in task order.
    label_values
        Label value -> the label names it stands for (one name, or a combination with
        ``overlap="regions"``).
    folds
        The folds' validation patients (empty without splits).
    notes
        Data-set-wide notes (fewer patients than folds, ...).
    """

    folder: Path | None
    rows: tuple[CaseResult, ...]
    results: tuple[DatasetCaseResult, ...]
    label_values: dict[int, tuple[str, ...]]
    folds: tuple[tuple[str, ...], ...]
    notes: tuple[str, ...]


def _existing(out: Path, options: DatasetOptions) -> list[Path]:
    """Data set folders in ``out`` with the same id (nnU-Net ids are unique)."""
    if not out.is_dir() or options.dataset_id is None:
        return []
    prefix = f"Dataset{options.dataset_id:03d}_"
    return sorted(p for p in out.iterdir() if p.name.startswith(prefix) and p.is_dir())


def _check_output(out: Path, options: DatasetOptions) -> Path:
    """The final data set folder; one clear error when OUT or it cannot be used."""
    if out.exists() and not out.is_dir():
        raise InvalidInputError(f"{out}: the output folder is a file; give a folder")
    if options.dataset_format == "monai":
        present = [name for name in MONAI_ENTRIES if (out / name).exists()]
        if present and not options.force:
            raise InvalidInputError(
                f"{out}: already holds {', '.join(present)} of a data set; pass force=True "
                "to replace them, or give another output folder"
            )
        return out
    final = out / options.folder_name
    if final.exists() and not final.is_dir():
        raise InvalidInputError(f"{final}: a file is in the way of the data set folder")
    used = _existing(out, options)
    if used and not options.force:
        raise InvalidInputError(
            f"{out}: data set id {options.dataset_id:03d} is already used by "
            f"{', '.join(p.name for p in used)}; pass force=True to replace it, or give "
            "another dataset_id="
        )
    return final


def _make_staging(staging: Path, options: DatasetOptions) -> None:
    """Make the hidden folder beside the final one (stale ones of killed runs are removed)."""
    out = staging.parent
    out.mkdir(parents=True, exist_ok=True)
    for stale in out.glob(f".{_staging_name(options)}.building-*"):
        shutil.rmtree(stale, ignore_errors=True)
    staging.mkdir()
    images, labels = case_folders(options.dataset_format, False)
    test_images, test_labels = case_folders(options.dataset_format, True)
    for name in {images, labels, test_images, test_labels, CASES_FOLDER, REGIONS_FOLDER}:
        (staging / name).mkdir(exist_ok=True)


def build_dataset(
    root: Path,
    out: Path,
    options: DatasetOptions,
    executor: Executor,
    *,
    inventory: Inventory | None = None,
    progress: Progress | None = None,
    planned: Callable[[DatasetPlan], None] | None = None,
) -> DatasetReport:
    """Build the data set of ``root``'s structure sets in ``out``.

    Parameters
    ----------
    root, out
        The archive, and the folder that receives ``Dataset<NNN>_<name>/`` and ``cases.csv``.
    options
        What to build.
    executor
        Runs the cases: a :class:`SerialExecutor`, :class:`ProcessExecutor` or
        :class:`DaskExecutor` made with ``function=run_dataset_case`` and
        ``failure=failed_dataset_result``.
    inventory
        ``scan(root)`` when already made.
    progress
        Called with each row decided at planning and each case's result.
    planned
        Called with the plan before any case runs.

    Raises
    ------
    InvalidInputError
        OUT is a file, the id is used (without ``force``), a label no case has, or
        ``missing="error"`` and a case without a label: nothing is written.
    """
    final = _check_output(out, options)
    staging = out / f".{_staging_name(options)}.building-{secrets.token_hex(4)}"
    plan = plan_dataset(root, staging, options, inventory=inventory)
    _make_staging(staging, options)
    if planned is not None:
        planned(plan)
    results: dict[int, DatasetCaseResult] = {}

    def on_result(index: int, result: DatasetCaseResult) -> None:
        results[index] = result
        if progress is not None:
            progress(result)

    write_cases(_ordered(plan.rows, []), out, parquet=False)
    for row in plan.rows:
        if progress is not None:
            progress(row)
    try:
        executor.run(plan.tasks, on_result)
        built = tuple(results[i] for i in sorted(results))
        report = _finish(staging, final, options, plan.rows, built)
        known = {t.patient_id for t in plan.tasks} | {r.patient_id for r in plan.rows}
        unknown = sorted(options.test_patients - known)
        if unknown:
            note = f"test patient(s) not in the archive: {', '.join(unknown)}"
            report = replace(report, notes=(*report.notes, note))
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    write_cases(list(report.rows), out)
    return report


def _ordered(rows: Sequence[CaseResult], built: Sequence[DatasetCaseResult]) -> list[CaseResult]:
    return sorted([*rows, *(r.row for r in built)], key=lambda r: r.structure_set)


def _finish(
    staging: Path,
    final: Path,
    options: DatasetOptions,
    rows: Sequence[CaseResult],
    built: tuple[DatasetCaseResult, ...],
) -> DatasetReport:
    """Write the data-set-wide files and move the data set into place."""
    included = [r for r in built if r.row.status == "included"]
    all_rows = tuple(_ordered(rows, built))
    if not included:
        return DatasetReport(
            folder=None,
            rows=all_rows,
            results=built,
            label_values={},
            folds=(),
            notes=("no case was included: no data set written",),
        )
    values = _label_values(options, included)
    if options.overlap == "regions":
        _write_regions(staging, options, included, values)
    training = [r for r in included if not r.test]
    folds, notes = patient_folds(
        [(r.case_id, r.patient_id) for r in training], options.folds, options.seed
    )
    if options.dataset_format == "nnunet":
        _write_json(staging / DATASET_JSON, _dataset_json(options, values, included))
        if folds:
            splits = [{"train": train, "val": val} for train, val in folds]
            _write_json(staging / SPLITS_JSON, splits)
    else:
        _write_json(staging / DATALIST_JSON, _datalist(options, values, included, folds))
    shutil.rmtree(staging / REGIONS_FOLDER, ignore_errors=True)
    _swap(staging, final, options)
    return DatasetReport(
        folder=final,
        rows=all_rows,
        results=built,
        label_values=values,
        folds=tuple(
            tuple(sorted({r.patient_id for r in training if r.case_id in val})) for _, val in folds
        ),
        notes=tuple(notes),
    )


def _staging_name(options: DatasetOptions) -> str:
    return options.folder_name or "monai-dataset"


def _swap(staging: Path, final: Path, options: DatasetOptions) -> None:
    """Rename the built data set into place; replaced data sets of the same id go.

    A MONAI data set's entries are renamed one by one into OUT (``final``), each replacing
    the entry of that name.
    """
    monai = options.dataset_format == "monai"
    old = [final / p.name for p in staging.iterdir()] if monai else _existing(final.parent, options)
    trash = []
    for path in old:
        if path.exists():
            moved = path.with_name(f".{path.name}.replaced-{secrets.token_hex(4)}")
            path.rename(moved)
            trash.append(moved)
    if monai:
        for entry in sorted(staging.iterdir()):
            entry.rename(final / entry.name)
        staging.rmdir()
    else:
        staging.rename(final)
    for path in trash:
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink()


def region_labels(n_labels: int, combinations: Sequence[int]) -> dict[int, int]:
    """Label bit code -> label value: ``1 << i`` is ``i + 1``, other codes follow in order.

    Every single label keeps its own value (1, 2, ... in label order), so
    ``regions_class_order`` is ``[1, 2, ...]``; each combination met gets the next value,
    ordered by the number of labels in it, then by code.
    """
    values = {1 << index: index + 1 for index in range(n_labels)}
    for code in sorted(set(combinations), key=lambda c: (bin(c).count("1"), c)):
        if code not in values:
            values[code] = len(values) + 1
    return values


def _label_values(
    options: DatasetOptions, included: Sequence[DatasetCaseResult]
) -> dict[int, tuple[str, ...]]:
    labels = options.labels
    if options.overlap != "regions":
        return {index + 1: (label,) for index, label in enumerate(labels)}
    codes = region_labels(len(labels), [c for r in included for c in r.combinations])
    if len(codes) > 255:
        raise InvalidInputError(
            f"overlap=regions: {len(codes)} label values (labels and their overlapping "
            "combinations) do not fit a uint8 label map; use fewer labels or overlap=priority"
        )
    return {
        value: tuple(label for i, label in enumerate(labels) if code >> i & 1)
        for code, value in codes.items()
    }


def _write_regions(
    staging: Path,
    options: DatasetOptions,
    included: Sequence[DatasetCaseResult],
    values: dict[int, tuple[str, ...]],
) -> None:
    """Turn each case's staged label-bit codes into its uint8 label map."""
    by_names = {names: value for value, names in values.items()}
    code_of = {
        value: sum(1 << options.labels.index(name) for name in names)
        for names, value in by_names.items()
    }
    lookup_codes = np.array(sorted(code_of.values()), dtype=np.uint64)
    lookup_values = np.array(
        [next(v for v, c in code_of.items() if c == code) for code in lookup_codes], np.uint8
    )
    for result in included:
        codes = np.load(staging / REGIONS_FOLDER / f"{result.case_id}.npy")
        label_map = np.zeros(codes.shape, dtype=np.uint8)
        nonzero = codes != 0
        positions = np.searchsorted(lookup_codes, codes[nonzero].astype(np.uint64))
        label_map[nonzero] = lookup_values[positions]
        _, labels = case_folders(options.dataset_format, result.test)
        assert result.grid is not None
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", GeometryWarning)  # the case's notes say it
            write_nifti(label_map, result.grid, staging / labels / f"{result.case_id}{FILE_ENDING}")


def patient_folds(
    cases: Sequence[tuple[str, str]], folds: int, seed: int
) -> tuple[list[tuple[list[str], list[str]]], list[str]]:
    """Cross-validation folds in which no patient's cases straddle folds.

    Patients are shuffled with ``random.Random(seed)`` and dealt, those with the most cases
    first, each to the fold holding the fewest cases so far.

    Parameters
    ----------
    cases
        ``(case identifier, PatientID)`` of the training cases.
    folds
        How many folds (fewer when there are fewer patients).
    seed
        The shuffle's seed.

    Returns
    -------
    tuple
        ``[(train case ids, validation case ids), ...]`` (empty with fewer than two
        patients), and notes.
    """
    by_patient: dict[str, list[str]] = {}
    for case_id, patient in cases:
        by_patient.setdefault(patient, []).append(case_id)
    patients = sorted(by_patient)
    notes = []
    if len(patients) < 2:
        return [], [f"{len(patients)} training patient(s): no cross-validation splits written"]
    if len(patients) < folds:
        notes.append(f"{len(patients)} training patients: {len(patients)} folds, not {folds}")
        folds = len(patients)
    random.Random(seed).shuffle(patients)
    patients.sort(key=lambda p: -len(by_patient[p]))  # stable: shuffled among equals
    members: list[list[str]] = [[] for _ in range(folds)]
    sizes = [0] * folds
    for patient in patients:
        fold = sizes.index(min(sizes))
        members[fold].append(patient)
        sizes[fold] += len(by_patient[patient])
    everyone = sorted(c for c, _ in cases)
    result = []
    for fold_patients in members:
        val = sorted(c for p in fold_patients for c in by_patient[p])
        result.append(([c for c in everyone if c not in set(val)], val))
    return result, notes


def _write_json(path: Path, document: object) -> None:
    with atomic_path(path) as temporary:
        temporary.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")


def _dataset_json(
    options: DatasetOptions,
    values: dict[int, tuple[str, ...]],
    included: Sequence[DatasetCaseResult],
) -> dict[str, object]:
    """nnU-Net v2's dataset.json (documentation/dataset_format.md), plus rtmask's notes."""
    labels: dict[str, object] = {"background": 0}
    if options.overlap == "regions":
        for label in options.labels:
            labels[label] = sorted(v for v, names in values.items() if label in names)
    else:
        labels.update({names[0]: value for value, names in values.items()})
    document: dict[str, object] = {
        "channel_names": {str(i): modality for i, modality in enumerate(options.channels)},
        "labels": labels,
        "numTraining": sum(not r.test for r in included),
        "file_ending": FILE_ENDING,
    }
    if options.overlap == "regions":
        document["regions_class_order"] = list(range(1, len(options.labels) + 1))
    document.update(_provenance(options, values, included))
    return document


def _provenance(
    options: DatasetOptions,
    values: dict[int, tuple[str, ...]],
    included: Sequence[DatasetCaseResult],
) -> dict[str, object]:
    """The keys rtmask adds (nnU-Net reads only its own)."""
    facts: dict[str, object] = {
        **({"name": options.name} if options.name is not None else {}),
        "description": f"built by rtmask {__version__} from DICOM RT Structure Sets",
        "numTest": sum(r.test for r in included),
        "overlap": options.overlap,
        "missing": options.missing,
        "label_values": {str(v): list(names) for v, names in values.items()},
        "case_annotations": f"{CASES_FOLDER}/<case>.json",
    }
    if len(options.channels) > 1:
        facts["channel_resampling"] = {
            str(i): f"{m}: {RESAMPLING}" for i, m in enumerate(options.channels) if i
        }
    return facts


def _datalist(
    options: DatasetOptions,
    values: dict[int, tuple[str, ...]],
    included: Sequence[DatasetCaseResult],
    folds: Sequence[tuple[list[str], list[str]]],
) -> dict[str, object]:
    """MONAI's datalist: ``training`` entries with ``image``, ``label`` and ``fold``."""
    fold_of = {case: k for k, (_, val) in enumerate(folds) for case in val}

    def entry(result: DatasetCaseResult) -> dict[str, object]:
        images = [
            f"images/{result.case_id}_{i:04d}{FILE_ENDING}" for i in range(len(options.channels))
        ]
        return {
            "image": images[0] if len(images) == 1 else images,
            "label": f"labels/{result.case_id}{FILE_ENDING}",
        }

    return {
        **({"name": options.name} if options.name is not None else {}),
        "labels": {"0": "background", **{str(v): "+".join(n) for v, n in values.items()}},
        "channel_names": {str(i): modality for i, modality in enumerate(options.channels)},
        "numTraining": sum(not r.test for r in included),
        "training": [
            {**entry(r), "fold": fold_of.get(r.case_id, 0)} for r in included if not r.test
        ],
        "testing": [entry(r) for r in included if r.test],
        **{k: v for k, v in _provenance(options, values, included).items() if k != "name"},
    }
