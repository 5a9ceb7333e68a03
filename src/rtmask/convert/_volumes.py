"""The image and the dose written beside the masks (``image.nii.gz``, ``dose.nii.gz``).

:func:`choose_dose` picks the RT Dose files discovery links to a structure set (the PLAN
dose, else the sum of the BEAM doses); :func:`write_image` and :func:`write_dose` write
them in the masks' layout. Each returns what ``summary.json`` says about the file.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from rtmask.discovery import ImageSeries, Inventory, RTObject, read_slices, read_slices_int16
from rtmask.dose import DoseGrid, add_doses, read_dose, sample_dose
from rtmask.errors import GeometryError, GeometryWarning, RtmaskError
from rtmask.export import image_storage_dtype, write_image_volume, write_nifti, write_nrrd
from rtmask.geometry import ImageGrid
from rtmask.raster import interpolate_slices

__all__ = [
    "DOSE_STEM",
    "IMAGE_STEM",
    "DoseSelection",
    "VolumeOutcome",
    "choose_dose",
    "write_dose",
    "write_image",
]

#: File name stems of the image and the dose (``image.nii.gz``, ``dose.nrrd``, ...).
IMAGE_STEM = "image"
DOSE_STEM = "dose"
#: Image slices read at a time.
_READ_SLICES = 16
#: DoseSummationType values, most wanted first after PLAN (BEAM doses are summed).
_SUMMATION_TYPES = (
    "PLAN",
    "MULTI_PLAN",
    "BEAM",
    "FRACTION",
    "BRACHY",
    "FRACTION_SESSION",
    "BEAM_SESSION",
    "BRACHY_SESSION",
    "CONTROL_POINT",
    "RECORD",
)


@dataclass(frozen=True, slots=True, kw_only=True)
class DoseSelection:
    """The RT Dose file(s) that go with a structure set and how they were chosen.

    Parameters
    ----------
    files
        One dose file, or the BEAM doses to add up.
    choice
        ``"plan"``, ``"sum of 2 beam doses"``, ``"beam"``, ... (for the summary).
    link
        How discovery tied them to the structure set, in words.
    """

    files: tuple[Path, ...]
    choice: str
    link: str


@dataclass(frozen=True, slots=True)
class VolumeOutcome:
    """What writing the image or the dose gave: summary facts (or None), notes, problems."""

    path: Path | None
    facts: dict[str, object] | None
    notes: tuple[str, ...] = ()
    problems: tuple[str, ...] = ()


def _summation_type(dose: RTObject) -> str:
    """DoseSummationType from the scan's label (``"PLAN PHYSICAL GY"``), or ``""``."""
    first = (dose.label or "").split(" ", 1)[0].upper()
    return first if first in _SUMMATION_TYPES else ""


def _linked_doses(structure_set: RTObject, inventory: Inventory) -> tuple[list[RTObject], str]:
    """Doses referring to the structure set (directly or through a plan), else same frame."""
    uid = structure_set.sop_instance_uid
    plans = {p.sop_instance_uid for p in inventory.plans if uid and uid in p.referenced_rt_uids}
    plans.discard(None)
    by_reference = [
        d
        for d in inventory.doses
        if (uid and uid in d.referenced_rt_uids) or plans & set(d.referenced_rt_uids)
    ]
    if by_reference:
        return by_reference, "references (dose -> plan -> structure set)"
    known = {o.sop_instance_uid for o in inventory.rt_objects} - {None}
    frame = structure_set.frame_of_reference_uid
    same_frame = [
        d
        for d in inventory.doses
        if frame
        and d.frame_of_reference_uid == frame
        and d.patient_id == structure_set.patient_id
        # a dose that refers to another plan or structure set found here is theirs
        and not known & set(d.referenced_rt_uids)
    ]
    return same_frame, f"frame of reference {frame}"


def choose_dose(structure_set: RTObject, inventory: Inventory) -> DoseSelection | None:
    """The dose to write beside a structure set's masks, or None when none is linked.

    Doses that refer to the structure set (RTDOSE -> RTSTRUCT, or RTDOSE -> RTPLAN ->
    RTSTRUCT) come first; without those, doses of the same frame of reference and patient
    that refer to nothing else found. Among them: the PLAN dose (the first by path when
    there are several), else a MULTI_PLAN dose, else the BEAM doses summed, else the first.

    Parameters
    ----------
    structure_set
        The RTSTRUCT as :func:`rtmask.discovery.scan` found it.
    inventory
        The scan it came from (its doses and plans).
    """
    doses, link = _linked_doses(structure_set, inventory)
    if not doses:
        return None
    doses = sorted(doses, key=lambda d: str(d.path))
    kinds = {kind: [d for d in doses if _summation_type(d) == kind] for kind in _SUMMATION_TYPES}
    for kind in ("PLAN", "MULTI_PLAN"):
        if kinds[kind]:
            choice = kind.lower().replace("_", "-")
            if len(kinds[kind]) > 1:
                choice += f" (the first of {len(kinds[kind])} {choice} doses)"
            return DoseSelection(files=(kinds[kind][0].path,), choice=choice, link=link)
    beams = kinds["BEAM"]
    if len(beams) > 1:
        return DoseSelection(
            files=tuple(d.path for d in beams), choice=f"sum of {len(beams)} beam doses", link=link
        )
    first = beams[0] if beams else doses[0]
    choice = (_summation_type(first) or "dose").lower()
    return DoseSelection(files=(first.path,), choice=choice, link=link)


def _failure(path: Path, error: Exception) -> str:
    """Why ``path`` was not written: a file-system error in words, not ``[Errno 27]``."""
    if isinstance(error, OSError) and not isinstance(error, RtmaskError) and error.strerror:
        return f"{path} not written: {error.strerror.lower()} (no half-written file is left)"
    return f"{path} not written: {error}"


def _caught(messages: Sequence[warnings.WarningMessage]) -> tuple[str, ...]:
    return tuple(str(m.message) for m in messages if issubclass(m.category, GeometryWarning))


def _read_volume(series: ImageSeries) -> NDArray[np.int16] | NDArray[np.float32]:
    """Every slice in modality units: int16 while that is lossless, else float32.

    Read a few slices at a time, so a CT in HU never exists as float32 (half the memory).
    """
    n_slices = series.grid.shape[0]
    volume: NDArray[Any] = np.empty(series.grid.shape, dtype=np.int16)
    for first in range(0, n_slices, _READ_SLICES):
        indices = range(first, min(n_slices, first + _READ_SLICES))
        fast = read_slices_int16(series, indices)  # the common CT, straight from the bytes
        if fast is not None:
            volume[first : first + fast.shape[0]] = fast
            continue
        block = read_slices(series, indices)
        if volume.dtype == np.int16 and image_storage_dtype(block) != np.int16:
            volume = volume.astype(np.float32)  # the slices read so far are exact in both
        volume[first : first + block.shape[0]] = block
    return volume


def write_image(
    series: ImageSeries,
    grid: ImageGrid,
    path: Path,
    *,
    on_mask_grid: bool,
    source: str,
    uneven: bool = False,
) -> VolumeOutcome:
    """Read every slice of ``series`` in modality units and write it on ``grid``.

    Parameters
    ----------
    series
        The image series (RescaleSlope / RescaleIntercept applied slice by slice).
    grid
        ``series.grid`` itself, or a uniform grid of the same planes
        (``with_uniform_slices``): the slices are then interpolated linearly.
    path
        ``image.nii.gz`` or ``image.nrrd``.
    on_mask_grid
        Whether ``grid`` is the masks' grid (for the summary).
    source
        The structure set's file, for messages.
    uneven
        The slices are unevenly spaced and kept (the conversion already says so).

    Returns
    -------
    VolumeOutcome
        The facts for ``summary.json`` (file, series UID, modality, dtype, shape, ...), or a
        problem line naming the file that could not be read or written.
    """
    try:
        values = _read_volume(series)
        resampled = not grid.equals(series.grid)
        if resampled:
            values = interpolate_slices(values, series.grid, grid)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", GeometryWarning)
            dtype = write_image_volume(values, grid, path)
    except (RtmaskError, OSError, ValueError) as error:
        return VolumeOutcome(None, None, problems=(f"{source}: {_failure(path, error)}",))
    facts: dict[str, object] = {
        "file": path.name,
        "series_uid": series.series_instance_uid,
        "modality": series.modality,
        "folder": str(series.files[0].parent),
        "dtype": dtype.name,
        "units": "HU" if series.modality == "CT" else "modality units (rescale applied)",
        "shape": list(grid.shape),
        "on_mask_grid": on_mask_grid,
        "resampled": "linear along the slice normal" if resampled else None,
    }
    notes = () if uneven else _caught(caught)
    return VolumeOutcome(path, facts, notes=tuple(f"{source}: {n}" for n in notes))


def _read_selection(selection: DoseSelection) -> tuple[DoseGrid, tuple[str, ...]]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", GeometryWarning)
        doses = [read_dose(path) for path in selection.files]
        total = doses[0]
        for dose in doses[1:]:
            total = add_doses(total, dose)
    return total, (*_caught(caught), *total.warnings)


def _dose_on_grid(dose: DoseGrid, grid: ImageGrid) -> tuple[NDArray[np.float32], float]:
    """Trilinear dose at ``grid``'s voxel centres (0 outside) and the fraction covered."""
    frames = (dose.grid.frame_of_reference_uid, grid.frame_of_reference_uid)
    if all(frames) and frames[0] != frames[1]:
        raise GeometryError(
            f"the dose's frame of reference {frames[0]} differs from the image's {frames[1]}"
        )
    slices, rows, columns = grid.shape
    row_index, column_index = np.meshgrid(np.arange(rows), np.arange(columns), indexing="ij")
    plane = np.column_stack(
        [np.zeros(rows * columns), row_index.ravel(), column_index.ravel()]
    ).astype(np.float64)
    result = np.zeros(grid.shape, dtype=np.float32)
    covered = 0
    for k in range(slices):
        plane[:, 0] = k
        values = sample_dose(dose, grid.index_to_patient(plane))
        inside = ~np.isnan(values)
        covered += int(inside.sum())
        result[k] = np.where(inside, values, 0.0).reshape(rows, columns)
    return result, covered / max(1, slices * rows * columns)


def write_dose(
    selection: DoseSelection,
    path: Path,
    *,
    image_grid: ImageGrid | None,
    source: str,
) -> VolumeOutcome:
    """Read (and sum) the chosen dose files and write the dose in Gy.

    Parameters
    ----------
    selection
        From :func:`choose_dose`.
    path
        ``dose.nii.gz`` or ``dose.nrrd``.
    image_grid
        Resample the dose trilinearly onto this grid (0 Gy outside the dose grid); None
        writes it on its own grid.
    source
        The structure set's file, for messages.
    """
    try:
        dose, notes = _read_selection(selection)
        coverage = None
        values, grid = dose.dose_gy.astype(np.float32), dose.grid
        if image_grid is not None:
            values, coverage = _dose_on_grid(dose, image_grid)
            grid = image_grid
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", GeometryWarning)
            writer = write_nrrd if path.name.lower().endswith(".nrrd") else write_nifti
            writer(values, grid, path)
    except (RtmaskError, OSError, ValueError) as error:
        named = ", ".join(str(p) for p in selection.files)
        return VolumeOutcome(
            None, None, problems=(f"{source}: {_failure(path, error)} (dose from {named})",)
        )
    facts: dict[str, object] = {
        "file": path.name,
        "files": [str(p) for p in selection.files],
        "choice": selection.choice,
        "link": selection.link,
        "units": "Gy",
        "shape": list(grid.shape),
        "on_image_grid": image_grid is not None,
        "coverage": coverage,
        "max_gy": float(values.max()) if values.size else None,
    }
    messages = (*notes, *_caught(caught))
    return VolumeOutcome(path, facts, notes=tuple(f"{source}: {n}" for n in messages))
