"""Planning a training data set: options, case identifiers, labels and channels per case.

Planning reads headers only (discovery's scan, and each structure set's ROI names): it
decides which ROI of which structure set becomes which label, which series are the
channels, which cases go to the test set, and which cases are left out before any voxel is
rasterised (a label missing under ``missing="skip"``, a channel series not found).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, get_args

from rtmask._errors import DicomReadError
from rtmask._rawdicom import read_raw
from rtmask.cohort._archive import UNREADABLE_KINDS, duplicate_error
from rtmask.cohort._layout import short_uid
from rtmask.cohort._rows import scanned_relative
from rtmask.cohort._tasks import CaseResult
from rtmask.discovery import ImageSeries, Inventory, RTObject, link_image_series, scan
from rtmask.errors import InvalidInputError, RoiMapError
from rtmask.names import RoiMap

__all__ = [
    "DATASET_FORMATS",
    "MISSING_POLICIES",
    "OVERLAP_POLICIES",
    "DatasetFormat",
    "DatasetOptions",
    "DatasetPlan",
    "DatasetTask",
    "Missing",
    "Overlap",
    "case_identifiers",
    "plan_dataset",
]

DatasetFormat = Literal["nnunet", "monai"]
Overlap = Literal["error", "priority", "regions"]
Missing = Literal["skip", "empty", "error"]
DATASET_FORMATS: tuple[DatasetFormat, ...] = get_args(DatasetFormat)
OVERLAP_POLICIES: tuple[Overlap, ...] = get_args(Overlap)
MISSING_POLICIES: tuple[Missing, ...] = get_args(Missing)
#: The label values a uint8 label map holds besides background.
MAX_LABELS = 255
#: Characters kept in case identifiers and data set names (nnU-Net's file names).
_UNSAFE = re.compile(r"[^A-Za-z0-9_-]+")
#: Longest case identifier part taken from a PatientID.
_MAX_ID_CHARS = 40


@dataclass(frozen=True, slots=True, kw_only=True)
class DatasetOptions:
    """What data set to build (plain values: pickled with each task).

    Parameters
    ----------
    labels
        The label names in label order: label 1 is ``labels[0]``, and so on. ROIs are
        matched by name (case-insensitively), or by canonical name with ``roi_map``.
    dataset_id, name
        nnU-Net: both required; the folder is ``Dataset<id, 3 digits>_<name>`` (nnU-Net's
        naming). MONAI: not needed (the data set goes directly in OUT); a ``name`` is
        written into ``datalist.json``.
    dataset_format
        ``"nnunet"`` (``imagesTr``, ``labelsTr``, ``dataset.json``, ``splits_final.json``)
        or ``"monai"`` (``images``, ``labels``, ``datalist.json``).
    overlap
        ``"error"``: a case whose labels overlap is left out; ``"priority"``: the earlier
        label in ``labels`` keeps an overlapping voxel; ``"regions"``: one label value per
        combination of labels met (nnU-Net's region-based training).
    missing
        ``"skip"``: a case without one of the labels is left out; ``"empty"``: kept, its
        absent labels listed in its JSON; ``"error"``: nothing is written.
    channels
        Modality of each input channel; the first is the structure set's own series,
        the others series of the same frame of reference, resampled linearly onto it.
    test_patients
        PatientIDs whose cases go to the test set (``imagesTs``).
    roi_map
        Canonical ROI names (``--roi-map``).
    seed, folds
        The patient-disjoint cross-validation folds.
    rule
        How several contours on one plane combine (:func:`rtmask.raster.rasterize`).
    force
        Replace a data set of the same id in OUT.
    """

    labels: tuple[str, ...]
    dataset_id: int | None = None
    name: str | None = None
    dataset_format: DatasetFormat = "nnunet"
    overlap: Overlap = "error"
    missing: Missing = "skip"
    channels: tuple[str, ...] = ("CT",)
    test_patients: frozenset[str] = field(default_factory=frozenset)
    roi_map: RoiMap | None = None
    seed: int = 0
    folds: int = 5
    rule: str = "auto"
    force: bool = False

    def __post_init__(self) -> None:
        if not self.labels:
            raise InvalidInputError("labels=: give at least one label name")
        folded = [label.strip().casefold() for label in self.labels]
        repeated = sorted({label for label in self.labels if folded.count(label.casefold()) > 1})
        if repeated or "" in folded or "background" in folded:
            raise InvalidInputError(
                f"labels=: names must be unique, not empty and not 'background' (label 0); "
                f"got {', '.join(self.labels)}"
            )
        if len(self.labels) > MAX_LABELS:
            raise InvalidInputError(f"labels=: at most {MAX_LABELS} labels fit a uint8 label map")
        if self.dataset_id is not None and not 0 <= self.dataset_id <= 999:
            raise InvalidInputError(f"dataset_id=: {self.dataset_id} is not a 3-digit number")
        if self.name is not None and (not self.name or _UNSAFE.search(self.name)):
            raise InvalidInputError(
                f"name=: {self.name!r}: use letters, digits, '_' and '-' only (a folder name)"
            )
        for value, allowed, what in (
            (self.dataset_format, DATASET_FORMATS, "format="),
            (self.overlap, OVERLAP_POLICIES, "overlap="),
            (self.missing, MISSING_POLICIES, "missing="),
        ):
            if value not in allowed:
                raise InvalidInputError(f"{what}: {value!r} is not one of {', '.join(allowed)}")
        if self.dataset_format == "nnunet" and (self.dataset_id is None or self.name is None):
            raise InvalidInputError(
                "dataset_id=, name=: an nnU-Net data set needs both (its folder is "
                "Dataset<id>_<name>)"
            )
        if not self.channels:
            raise InvalidInputError("channels=: give at least one channel modality")
        if self.folds < 2:
            raise InvalidInputError(f"folds=: {self.folds}; give at least 2")

    @property
    def folder_name(self) -> str:
        """``Dataset501_Thorax`` (nnU-Net); ``""`` for MONAI, whose files go directly in OUT."""
        if self.dataset_format != "nnunet" or self.dataset_id is None:
            return ""
        return f"Dataset{self.dataset_id:03d}_{self.name}"


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class DatasetTask:
    """One structure set to turn into one training (or test) case.

    Parameters
    ----------
    source, structure_set
        The RTSTRUCT file, and its path relative to the archive (for ``cases.csv``).
    case_id
        The case identifier of the file names (safe, unique).
    patient_id, study_uid, structure_set_uid
        Identity, for ``cases.csv`` and the splits.
    series, link
        The image series the structure set was drawn on (the first channel) and how it
        was found.
    channels
        The further channels' series, in channel order.
    roi_numbers
        Per label (in label order), the ROI number of the structure set that is it, or
        None when the structure set has none.
    test
        Whether the case goes to the test set.
    staging
        The data set folder being built.
    options
        The data set's options.
    """

    source: Path
    structure_set: str
    case_id: str
    patient_id: str
    study_uid: str
    structure_set_uid: str
    series: ImageSeries
    link: str
    channels: tuple[ImageSeries, ...]
    roi_numbers: tuple[int | None, ...]
    test: bool
    staging: Path
    options: DatasetOptions


@dataclass(frozen=True, slots=True, kw_only=True)
class DatasetPlan:
    """The tasks, and the rows decided at planning (left out, or failed to read)."""

    tasks: tuple[DatasetTask, ...]
    rows: tuple[CaseResult, ...]


def _safe_identifier(text: str, fallback: str) -> str:
    """``text`` in ``[A-Za-z0-9_-]``; with a short hash of ``text`` when that changed it."""
    safe = _UNSAFE.sub("_", text).strip("_")[:_MAX_ID_CHARS] or fallback
    if safe == text:
        return safe
    digest = hashlib.sha1(text.encode("utf-8", "surrogatepass")).hexdigest()[:6]
    return f"{safe}_{digest}"


def case_identifiers(cases: Sequence[tuple[str, str]]) -> list[str]:
    """A safe, unique case identifier per ``(PatientID, structure set SOPInstanceUID)``.

    ``<PatientID>_<last 8 UID digits>``: letters, digits, ``_`` and ``-`` only (a hostile
    PatientID such as ``../..`` becomes ``patient_<hash>``), so each is a valid file name
    stem on every system. Identifiers that still clash (case-insensitively) get ``_2``,
    ``_3`` ... in the order given.
    """
    used: set[str] = set()
    identifiers = []
    for patient_id, uid in cases:
        base = f"{_safe_identifier(patient_id, 'patient')}_{short_uid(uid)}"
        candidate, counter = base, 2
        while candidate.casefold() in used:
            candidate = f"{base}_{counter}"
            counter += 1
        used.add(candidate.casefold())
        identifiers.append(candidate)
    return identifiers


def _row(rt_object: RTObject, source: str, status: str, error: str, output: str) -> CaseResult:
    return CaseResult(
        patient_id=rt_object.patient_id or "",
        study_uid=rt_object.study_instance_uid or "",
        structure_set=source,
        structure_set_uid=rt_object.sop_instance_uid or "",
        image_series_uid="",
        link="none",
        status=status,
        error=error,
        output=output,
        rois_written=0,
        seconds=0.0,
    )


def _roi_names(path: Path) -> list[tuple[int, str]]:
    """``(ROINumber, ROIName)`` of a structure set, from its header."""
    dataset = read_raw(path, stop_before_pixels=True)
    return [
        (item.integer("ROINumber") or 0, item.text("ROIName") or "")
        for item in dataset.sequence("StructureSetROISequence")
    ]


def _label_rois(
    names: list[tuple[int, str]], options: DatasetOptions, source: str
) -> tuple[int | None, ...]:
    """Per label, the ROI number that is it (None when absent).

    Raises
    ------
    RoiMapError
        Two ROIs would be one label (the map's conflicts, or two ROIs of one name).
    """
    if options.roi_map is not None:
        canonical = options.roi_map.resolve(names, source=source)
        named = [(number, canonical[number]) for number, _ in names if number in canonical]
    else:
        named = names
    found: dict[str, list[tuple[int, str]]] = {}
    for number, name in named:
        found.setdefault(name.strip().casefold(), []).append((number, name))
    numbers: list[int | None] = []
    for label in options.labels:
        matches = found.get(label.casefold(), [])
        if len(matches) > 1:
            listed = " and ".join(f"ROI {n} {name!r}" for n, name in matches)
            raise RoiMapError(f"{source}: {listed} would both be label {label!r}; keep one")
        numbers.append(matches[0][0] if matches else None)
    return tuple(numbers)


def _channel_series(series: ImageSeries, modality: str, inventory: Inventory) -> ImageSeries | None:
    """The series of ``modality`` in ``series``' frame of reference, or None.

    Of several: the same study first, then the most slices, then by SeriesInstanceUID.
    """
    candidates = [
        s
        for s in inventory.image_series
        if s.modality == modality
        and s.series_instance_uid != series.series_instance_uid
        and s.frame_of_reference_uid
        and s.frame_of_reference_uid == series.frame_of_reference_uid
    ]
    candidates.sort(
        key=lambda s: (
            s.study_instance_uid != series.study_instance_uid,
            -s.grid.shape[0],
            s.series_instance_uid,
        )
    )
    return candidates[0] if candidates else None


@dataclass(slots=True)
class _Planned:
    """A structure set on its way to a task: what planning found so far."""

    rt_object: RTObject
    source: str
    case_id: str
    names: list[tuple[int, str]] = field(default_factory=list)
    numbers: tuple[int | None, ...] = ()
    problem: str = ""  # failed
    reason: str = ""  # excluded


def plan_dataset(
    root: Path, staging: Path, options: DatasetOptions, *, inventory: Inventory | None = None
) -> DatasetPlan:
    """Find every structure set under ``root`` and plan its case of the data set.

    Raises
    ------
    InvalidInputError
        A label that no structure set has (nothing to train it on), no structure set at
        all, or ``missing="error"`` and a structure set without one of the labels.
    """
    base = root if root.is_dir() else root.parent
    if inventory is None:
        inventory = scan(root)
    objects = sorted(inventory.structure_sets, key=lambda o: scanned_relative(o.path, base))
    unique: dict[str, RTObject] = {}
    copies: list[CaseResult] = []
    for rt_object in objects:  # a copy of a structure set is one case, not two
        first = unique.setdefault(rt_object.sop_instance_uid or str(rt_object.path), rt_object)
        if first is not rt_object:
            original = scanned_relative(first.path, base)
            error = duplicate_error(original, rt_object.sop_instance_uid, "used instead")
            source = scanned_relative(rt_object.path, base)
            copies.append(_row(rt_object, source, "excluded", error, ""))
    kept = list(unique.values())
    if not kept:
        raise InvalidInputError(f"{root}: no RT Structure Set found; nothing to build")
    ids = case_identifiers([(o.patient_id or "", o.sop_instance_uid or "") for o in kept])
    planned = [
        _Planned(rt_object=o, source=scanned_relative(o.path, base), case_id=i)
        for o, i in zip(kept, ids, strict=True)
    ]
    for case in planned:
        try:
            case.names = _roi_names(case.rt_object.path)
            case.numbers = _label_rois(case.names, options, str(case.rt_object.path))
        except (DicomReadError, RoiMapError, OSError) as error:
            case.problem = str(error)
    _check_labels(planned, options, root)
    tasks = []
    for case in planned:
        task = _task(case, options, inventory, staging)
        if task is not None:
            tasks.append(task)
    rows = [
        _row(
            c.rt_object,
            c.source,
            "failed" if c.problem else "excluded",
            c.problem or c.reason,
            "",  # nothing of it is written
        )
        for c in planned
        if c.problem or c.reason
    ]
    rows.extend(copies)
    rows.extend(
        CaseResult(
            patient_id="",
            study_uid="",
            structure_set=scanned_relative(s.path, base),
            structure_set_uid="",
            image_series_uid="",
            link="none",
            status="failed",
            error=f"{s.path}: {s.reason}",
            output="",
            rois_written=0,
            seconds=0.0,
        )
        for s in inventory.skipped
        if s.kind in UNREADABLE_KINDS
    )
    return DatasetPlan(tasks=tuple(tasks), rows=tuple(rows))


def _check_labels(planned: Sequence[_Planned], options: DatasetOptions, root: Path) -> None:
    """Refuse labels no case has, and (``missing="error"``) cases without a label."""
    readable = [c for c in planned if not c.problem]
    unseen = [
        label
        for index, label in enumerate(options.labels)
        if not any(c.numbers[index] is not None for c in readable)
    ]
    if unseen:
        seen = sorted({name for c in readable for _, name in c.names}, key=str.casefold)
        shown = ", ".join(repr(n) for n in seen[:30]) + (" ..." if len(seen) > 30 else "")
        how = "mapped by roi_map= onto" if options.roi_map is not None else "named"
        raise InvalidInputError(
            f"labels=: no structure set under {root} has a ROI {how} "
            f"{', '.join(repr(u) for u in unseen)}; ROI names found: {shown or 'none'}"
        )
    if options.missing == "error":
        lacking = [
            f"{c.source} lacks {', '.join(_absent(c.numbers, options))}"
            for c in readable
            if None in c.numbers
        ]
        if lacking:
            raise InvalidInputError(
                f"missing=error: {len(lacking)} structure set(s) lack a label, nothing written: "
                + "; ".join(lacking[:10])
                + (" ..." if len(lacking) > 10 else "")
            )


def _absent(numbers: Sequence[int | None], options: DatasetOptions) -> list[str]:
    return [label for label, number in zip(options.labels, numbers, strict=True) if number is None]


def _task(
    case: _Planned, options: DatasetOptions, inventory: Inventory, staging: Path
) -> DatasetTask | None:
    """The case's task, or None with ``case.reason`` / ``case.problem`` saying why not."""
    if case.problem:
        return None
    rt_object = case.rt_object
    if options.missing == "skip" and None in case.numbers:
        case.reason = f"missing label(s) {', '.join(_absent(case.numbers, options))}"
        return None
    if all(number is None for number in case.numbers):
        case.reason = "none of the labels is in this structure set"
        return None
    link = link_image_series(rt_object, inventory.image_series)
    if link.series is None:
        case.problem = f"{rt_object.path}: {link.message}"
        return None
    if link.series.modality != options.channels[0]:
        case.reason = (
            f"its image series is {link.series.modality}, not the first channel "
            f"{options.channels[0]}"
        )
        return None
    channels = []
    for modality in options.channels[1:]:
        found = _channel_series(link.series, modality, inventory)
        if found is None:
            case.reason = (
                f"no {modality} series in the frame of reference "
                f"{link.series.frame_of_reference_uid} of its {options.channels[0]} series"
            )
            return None
        channels.append(found)
    return DatasetTask(
        source=rt_object.path,
        structure_set=case.source,
        case_id=case.case_id,
        patient_id=rt_object.patient_id or "",
        study_uid=rt_object.study_instance_uid or "",
        structure_set_uid=rt_object.sop_instance_uid or "",
        series=link.series,
        link=link.method,
        channels=tuple(channels),
        roi_numbers=case.numbers,
        test=(rt_object.patient_id or "") in options.test_patients,
        staging=staging,
        options=options,
    )
