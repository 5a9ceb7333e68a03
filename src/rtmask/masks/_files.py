"""Reading masks from files onto a reference grid: per-ROI folders, labelmaps, npz, DICOM SEG.

:func:`read_masks` accepts what rtmask and the common tools write:

- a folder of per-ROI binary masks (``.nii``, ``.nii.gz``, ``.nrrd``, ``.nhdr``): one ROI
  per file, named after the file, in natural name order, numbered 1..n; when the folder
  holds rtmask's ``summary.json`` (``rtmask convert`` output) the original ROI numbers,
  names, colours and types are restored from it;
- a single binary mask file (NIfTI or NRRD);
- a labelmap (NIfTI or NRRD, integer labels, or a file with a colour table next to it:
  3D Slicer ``<stem>.ctbl``, ITK-SNAP ``<stem>.itksnap.txt`` or ``<stem>.txt``): one ROI
  per label present, named from the table (``label_<n>`` otherwise), numbered by label;
- a 3D Slicer segmentation (``.seg.nrrd``): one ROI per segment;
- an ``.npz`` written by :func:`rtmask.export.write_npz`;
- a DICOM SEG (needs the :class:`~rtmask.discovery.ImageSeries`, whose UIDs it references).

Every file must lie exactly on the reference grid: its voxel centres must coincide with
the grid's, up to an axis permutation and flips (a file in any axis order maps back
exactly); anything else raises :class:`GeometryError`. Nothing is resampled.
"""

from __future__ import annotations

import json
import logging
import re
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from rtmask._dicom import read_dataset
from rtmask._errors import DicomReadError, GeometryError, GeometryWarning, InvalidInputError
from rtmask._parallel import default_workers, ordered_map
from rtmask.discovery import ImageSeries
from rtmask.geometry import ImageGrid
from rtmask.masks._loaders import LoadedVolume, load_nifti, load_nrrd, open_npz
from rtmask.masks._placement import Placement, place_on_grid
from rtmask.masks._resample import (
    OUTSIDE_TOLERANCE_MM,
    RESAMPLE_RULES,
    Resampling,
    resample_on_grid,
)
from rtmask.masks._seg import read_seg
from rtmask.masks._tables import (
    COMPLETE_TABLE_SUFFIXES,
    DATASET_JSON,
    LabelInfo,
    color_tables_next_to,
    non_mask_volumes,
    read_label_table,
    read_summary,
)
from rtmask.raster._box import bounding_box
from rtmask.raster._mask import Mask
from rtmask.raster._memory import sparse_zeros
from rtmask.rtstruct import ROI

__all__ = ["MASK_SUFFIXES", "read_masks", "roi_name_of"]

logger = logging.getLogger(__name__)

#: File name endings read as volume masks (case-insensitive), longest first.
MASK_SUFFIXES = (".seg.nrrd", ".nii.gz", ".nii", ".nrrd", ".nhdr")
_NIFTI_SUFFIXES = (".nii.gz", ".nii")
#: Segmentation Storage and Label Map Segmentation Storage.
_DICOM_SEG_SOP_CLASSES = frozenset({"1.2.840.10008.5.1.4.1.1.66.4", "1.2.840.10008.5.1.4.1.1.66.7"})
#: Voxels checked per chunk when counting labels (bounds the temporary memory).
_LABEL_CHUNK_VOXELS = 1 << 22
#: Largest label value counted with bincount; larger ones go through numpy.unique.
_MAX_BINCOUNT_LABEL = 1 << 20

Color = tuple[int, int, int]
Progress = Callable[[Mask], None]


@dataclass(frozen=True, slots=True, kw_only=True)
class _Identity:
    """Who a mask is: number, name, colour and type before numbers are made unique."""

    number: int | None
    name: str
    color: Color | None = None
    interpreted_type: str | None = None


# ----------------------------------------------------------------------------- names
def roi_name_of(path: Path) -> str:
    """The ROI name a mask file stands for: its name without the mask suffix."""
    name = path.name
    lowered = name.lower()
    for suffix in MASK_SUFFIXES:
        if lowered.endswith(suffix) and len(name) > len(suffix):
            return name[: -len(suffix)]
    return path.stem


def _is_mask_file(path: Path) -> bool:
    return (
        not path.name.startswith(".")
        and path.name.lower().endswith(MASK_SUFFIXES)
        and path.is_file()
    )


def _natural_key(text: str) -> tuple[tuple[int, int | str], ...]:
    """Sort key putting ``label_2`` before ``label_10``, case-insensitively."""
    parts = re.split(r"(\d+)", text.casefold())
    return tuple((0, int(p)) if p.isdigit() else (1, p) for p in parts if p)


# ----------------------------------------------------------------------------- values
def _value_range(data: NDArray[Any], path: Path) -> tuple[float, float]:
    """(min, max) of the data; non-finite values are an error."""
    if data.size == 0:
        raise InvalidInputError(f"{path}: holds no voxels")
    if data.dtype == np.bool_:
        return 0.0, 1.0
    low, high = data.min(), data.max()
    if data.dtype.kind == "f" and not (np.isfinite(low) and np.isfinite(high)):
        raise InvalidInputError(f"{path}: holds NaN or infinite values; not a mask")
    return float(low), float(high)


def _is_binary(data: NDArray[Any], low: float, high: float) -> bool:
    """True when every value is 0 or 1."""
    if low < 0 or high > 1:
        return False
    if data.dtype.kind == "f":
        return bool(np.all((data == 0) | (data == 1)))
    return True


def _require_binary(volume: LoadedVolume, data: NDArray[Any]) -> None:
    low, high = _value_range(data, volume.path)
    if _is_binary(data, low, high):
        return
    if data.dtype.kind == "f" and low >= 0 and high <= 1:
        raise InvalidInputError(
            f"{volume.path}: holds fractional values between 0 and 1, not a binary mask; "
            "threshold it into 0/1 first (rtmask does not guess a threshold)"
        )
    raise InvalidInputError(
        f"{volume.path}: holds values from {low:g} to {high:g}, not only 0 and 1; a per-ROI "
        "mask file must be binary (give a labelmap as a file on its own)"
    )


def _sparse_bool(inside: NDArray[Any]) -> NDArray[np.bool_]:
    """A C-order bool copy of ``inside != 0`` that only touches memory inside its bounding box."""
    result = np.asarray(sparse_zeros(inside.shape, np.bool_))
    box = bounding_box(inside)
    if box is not None:
        np.not_equal(inside[box], 0, out=result[box])
    return result


def _labels_present(data: NDArray[Any], path: Path) -> list[int]:
    """Sorted nonzero label values of a labelmap (integers >= 0, or floats holding them)."""
    low, high = _value_range(data, path)
    if low < 0:
        raise InvalidInputError(
            f"{path}: holds negative values ({low:g}); a labelmap holds labels 0, 1, 2, ..."
        )
    if data.dtype.kind == "f" and not bool(np.all(data == np.floor(data))):
        raise InvalidInputError(
            f"{path}: holds non-integer values, not a labelmap or binary mask; threshold "
            "or round it first"
        )
    top = int(high)
    if top == 0:
        return []
    if top > _MAX_BINCOUNT_LABEL:
        values = np.unique(data[data != 0])
        return [int(v) for v in values]
    flat = data.reshape(-1, order="A")
    if data.dtype in (np.uint8, np.uint16):  # flag the values seen: no cast, no counting
        seen = np.zeros(top + 1, bool)
        for start in range(0, flat.size, _LABEL_CHUNK_VOXELS):
            seen[flat[start : start + _LABEL_CHUNK_VOXELS]] = True
        return [int(v) for v in np.flatnonzero(seen[1:]) + 1]
    counts = np.zeros(top + 1, dtype=np.int64)
    for start in range(0, flat.size, _LABEL_CHUNK_VOXELS):
        chunk = flat[start : start + _LABEL_CHUNK_VOXELS]
        counts += np.bincount(chunk.astype(np.intp), minlength=top + 1)
    return [int(v) for v in np.flatnonzero(counts[1:]) + 1]


# ----------------------------------------------------------------------------- masks
def _unique_numbers(preferred: Sequence[int | None]) -> list[int]:
    """Keep each preferred positive number once; give the rest numbers after the largest."""
    taken: set[int] = set()
    result: list[int | None] = []
    for number in preferred:
        if number is not None and number > 0 and number not in taken:
            taken.add(number)
            result.append(number)
        else:
            result.append(None)
    following = max(taken, default=0) + 1
    numbers = []
    for number in result:
        if number is None:
            numbers.append(following)
            following += 1
        else:
            numbers.append(number)
    return numbers


def _make_masks(
    arrays: Sequence[NDArray[np.bool_]], identities: Sequence[_Identity], grid: ImageGrid
) -> list[Mask]:
    numbers = _unique_numbers([identity.number for identity in identities])
    return [
        Mask(
            array=array,
            grid=grid,
            roi=ROI(
                number=number,
                name=identity.name,
                color=identity.color,
                interpreted_type=identity.interpreted_type,
                frame_of_reference_uid=grid.frame_of_reference_uid,
            ),
        )
        for array, identity, number in zip(arrays, identities, numbers, strict=True)
    ]


@dataclass(slots=True)
class _Context:
    """Per-call state: the grid, the files whose slices could not be checked, progress."""

    grid: ImageGrid
    progress: Progress | None = None
    unchecked_slices: list[Path] = field(default_factory=list)
    resample: str = "exact"
    tolerance_mm: float = OUTSIDE_TOLERANCE_MM
    resampled: list[str] = field(default_factory=list)

    def place(self, path: Path, volume: LoadedVolume) -> Placement | Resampling:
        """Exactly on the grid when the voxel centres coincide, else resampled (if allowed)."""
        try:
            placement = place_on_grid(path, volume.geometry, self.grid)
        except GeometryError:
            if self.resample == "exact":
                raise
            return resample_on_grid(
                path,
                volume.geometry,
                volume.layers,
                self.grid,
                rule=self.resample,
                tolerance_mm=self.tolerance_mm,
            )
        if placement.slice_positions_unchecked:
            self.unchecked_slices.append(path)  # list.append is atomic across threads
        return placement

    def note(
        self, placement: Placement | Resampling, source: Sequence[NDArray[Any]], placed: int
    ) -> None:
        """Record how a resampled file was placed (``source``: its labelled layers)."""
        if isinstance(placement, Resampling):
            voxels = sum(int(np.count_nonzero(layer)) for layer in source)
            self.resampled.append(placement.describe(voxels, placed))

    def report(self, masks: Sequence[Mask]) -> None:
        if self.progress is not None:
            for mask in masks:
                self.progress(mask)


def _load(path: Path) -> LoadedVolume:
    if path.name.lower().endswith(_NIFTI_SUFFIXES):
        return load_nifti(path)
    return load_nrrd(path)


def _binary_array(path: Path, context: _Context) -> NDArray[np.bool_]:
    """Load one per-ROI file and return its mask on the grid."""
    volume = _load(path)
    if len(volume.layers) > 1:
        raise InvalidInputError(
            f"{path}: a segmentation with {len(volume.layers)} layers, not a binary mask; "
            "give it as a file on its own"
        )
    _require_binary(volume, volume.data)
    placement = context.place(path, volume)
    array = _sparse_bool(placement.apply(volume.data))
    context.note(placement, [volume.data], int(np.count_nonzero(array)))
    return array


def _read_folder(
    folder: Path, context: _Context, workers: int, color_table: Path | None
) -> list[Mask]:
    """One ROI per mask file of ``folder`` (names from summary.json or the file names).

    The image and dose ``rtmask convert`` writes beside the masks are not masks.
    """
    volumes = non_mask_volumes(folder)
    files = sorted(
        (p for p in folder.iterdir() if _is_mask_file(p) and p.name not in volumes),
        key=lambda p: (_natural_key(roi_name_of(p)), p.name),
    )
    if len(files) == 1:
        return _read_volume_file(files[0], context, color_table)
    if not files:
        npz = sorted(p for p in folder.iterdir() if p.suffix.lower() == ".npz" and p.is_file())
        if len(npz) == 1:
            return _read_npz(npz[0], context)
        raise InvalidInputError(
            f"{folder}: no mask files (.nii, .nii.gz, .nrrd, .nhdr) in this folder"
            + (f" and {len(npz)} .npz files (give one of them)" if npz else "")
            + "; give a folder of per-ROI masks, a labelmap, an .npz or a DICOM SEG"
        )
    summary = read_summary(folder)
    identities = []
    seen: dict[str, Path] = {}
    for path in files:
        info = summary.get(path.name, LabelInfo())
        name = info.name if info.name is not None else roi_name_of(path)
        if name.casefold() in seen:
            raise InvalidInputError(
                f"{folder}: {seen[name.casefold()].name} and {path.name} both give ROI name "
                f"{name!r}; rename or remove one of them"
            )
        seen[name.casefold()] = path
        identities.append(
            _Identity(
                number=info.number,
                name=name,
                color=info.color,
                interpreted_type=info.interpreted_type,
            )
        )
    if summary and any(identity.number is not None for identity in identities):
        # rtmask convert output: back in the structure set's ROI order.
        order = sorted(
            range(len(files)),
            key=lambda i: (identities[i].number is None, identities[i].number or 0, i),
        )
        files = [files[i] for i in order]
        identities = [identities[i] for i in order]
    numbers = _unique_numbers([identity.number for identity in identities])
    masks: list[Mask] = []
    arrays = ordered_map(lambda p: _binary_array(p, context), files, workers)
    try:
        for identity, number, array in zip(identities, numbers, arrays, strict=True):
            (mask,) = _make_masks([array], [replace(identity, number=number)], context.grid)
            masks.append(mask)
            context.report([mask])
    finally:
        arrays.close()
    return masks


def _names_labels(path: Path) -> bool:
    """True when ``path`` is a JSON file with a ``labels`` object (nnU-Net dataset.json)."""
    if not path.is_file():
        return False
    try:
        document = json.loads(path.read_text(encoding="utf-8-sig"))
    except (OSError, UnicodeDecodeError, ValueError):
        return False
    return isinstance(document, dict) and isinstance(document.get("labels"), dict)


def _label_identities(
    path: Path, labels: Sequence[int], color_table: Path | None
) -> list[_Identity]:
    """Name, colour and number of each label: summary.json, then the colour table."""
    stem = roi_name_of(path)
    tables = [color_table] if color_table is not None else color_tables_next_to(path, stem)
    if not tables and _names_labels(path.parent / DATASET_JSON):
        tables = [path.parent / DATASET_JSON]  # nnU-Net writes it beside its predictions
    table: dict[int, LabelInfo] = read_label_table(tables[0]) if tables else {}
    if tables and tables[0].name.lower().endswith(COMPLETE_TABLE_SUFFIXES):
        missing = [label for label in labels if label not in table]
        if missing:
            named = ", ".join(f"{k} {v.name}" for k, v in sorted(table.items())[:12])
            raise InvalidInputError(
                f"{path}: label(s) {', '.join(map(str, missing[:12]))} are not in "
                f"{tables[0]} (it names {named}{', ...' if len(table) > 12 else ''}); add "
                "them to the table or give the table of the model that wrote the label map"
            )
    summary = read_summary(path.parent)
    identities = []
    for label in labels:
        from_summary = summary.get(f"{path.name}#{label}", LabelInfo())
        from_table = table.get(label, LabelInfo())
        identities.append(
            _Identity(
                number=from_summary.number if from_summary.number is not None else label,
                name=from_summary.name or from_table.name or f"label_{label}",
                color=from_summary.color or from_table.color,
                interpreted_type=from_summary.interpreted_type,
            )
        )
    return identities


def _read_labelmap(
    volume: LoadedVolume,
    placement: Placement | Resampling,
    context: _Context,
    color_table: Path | None,
) -> list[Mask]:
    labels = _labels_present(volume.data, volume.path)
    identities = _label_identities(volume.path, labels, color_table)
    masks = []
    placed = [0]
    arrays = _label_arrays(placement, volume.data, labels, placed)
    for (array, counts), identity in zip(arrays, identities, strict=True):
        (mask,) = _make_masks([array], [identity], context.grid)
        if counts is not None:
            mask = replace(mask, slice_counts=counts)
        masks.append(mask)
        context.report(masks[-1:])
    context.note(placement, [volume.data], placed[0])
    return masks


def _label_arrays(
    placement: Placement | Resampling,
    layer: NDArray[Any],
    labels: Sequence[int],
    placed: list[int] | None = None,
) -> Iterator[tuple[NDArray[np.bool_], NDArray[np.float64] | None]]:
    """The grid mask of each label of ``layer`` (file axes) and its voxels per slice.

    ``placed[0]`` is increased by the voxels placed, when the placement is a resampling.
    """
    if isinstance(placement, Resampling) and placement.rule == "majority":
        for label in labels:
            array = _sparse_bool(placement.apply(layer == label))
            if placed is not None:
                placed[0] += int(np.count_nonzero(array))
            yield array, None
        return
    view = placement.apply(layer)
    if isinstance(placement, Resampling) and placed is not None:
        placed[0] += int(np.count_nonzero(view))
    yield from _split_labels(view, labels)


def _split_labels(
    view: NDArray[Any], labels: Sequence[int]
) -> Iterator[tuple[NDArray[np.bool_], NDArray[np.float64] | None]]:
    """Per label of a grid-shaped label array: its mask (read only on its slices) and counts."""
    top = max(labels, default=0)
    if len(labels) < 2 or view.dtype.kind not in "biu" or top > _MAX_BINCOUNT_LABEL:
        for label in labels:
            yield _sparse_bool(view == label), None
        return
    uint8 = view.dtype == np.uint8
    presence = np.zeros((view.shape[0], 256 if uint8 else top + 1), bool)
    for k in range(view.shape[0]):
        if uint8:  # flag the values seen: no cast, no counting
            presence[k, view[k]] = True
            continue
        plane = np.asarray(view[k]).reshape(-1).astype(np.intp, copy=False)
        presence[k] = np.bincount(plane, minlength=top + 1) > 0
    for label in labels:
        result = np.asarray(sparse_zeros(view.shape, np.bool_))
        counts = np.zeros(view.shape[0])
        slices = np.flatnonzero(presence[:, label])
        if slices.size:
            k0, k1 = int(slices[0]), int(slices[-1]) + 1
            inside = view[k0:k1] == label
            box = bounding_box(inside, slices - k0)
            if box is not None:
                part = inside[box]
                result[k0 + box[0].start : k0 + box[0].stop, box[1], box[2]] = part
                counts[k0 + box[0].start : k0 + box[0].stop] = np.count_nonzero(
                    part.reshape(part.shape[0], -1), axis=1
                )
        yield result, counts


def _read_slicer_segments(
    volume: LoadedVolume, placement: Placement | Resampling, context: _Context
) -> list[Mask]:
    identities = []
    arrays: list[NDArray[np.bool_]] = []
    for segment in volume.segments:
        if not 0 <= segment.layer < len(volume.layers):
            raise InvalidInputError(
                f"{volume.path}: segment {segment.name!r} is in layer {segment.layer}, but the "
                f"file has {len(volume.layers)} layer(s)"
            )
        arrays.extend(
            array
            for array, _ in _label_arrays(
                placement, volume.layers[segment.layer], [segment.label_value]
            )
        )
        identities.append(
            _Identity(number=segment.index + 1, name=segment.name, color=segment.color)
        )
    masks = _make_masks(arrays, identities, context.grid)
    context.report(masks)
    context.note(placement, volume.layers, sum(int(np.count_nonzero(a)) for a in arrays))
    return masks


def _read_volume_file(path: Path, context: _Context, color_table: Path | None) -> list[Mask]:
    """One file: a binary mask, a labelmap or a Slicer segmentation."""
    volume = _load(path)
    placement = context.place(path, volume)
    if volume.segments:
        return _read_slicer_segments(volume, placement, context)
    if len(volume.layers) > 1:
        raise InvalidInputError(
            f"{path}: holds {len(volume.layers)} layers but no segment descriptions; give "
            "one mask per file or a labelmap"
        )
    stem = roi_name_of(path)
    summary = read_summary(path.parent)
    has_table = (
        color_table is not None
        or bool(color_tables_next_to(path, stem))
        or _names_labels(path.parent / DATASET_JSON)
    )
    low, high = _value_range(volume.data, path)
    binary = _is_binary(volume.data, low, high)
    has_labels = any(key.startswith(f"{path.name}#") for key in summary)
    if not binary and volume.data.dtype.kind == "f" and low >= 0 and high <= 1:
        _require_binary(volume, volume.data)  # fractional values: say so
    if not binary or has_table or has_labels:
        return _read_labelmap(volume, placement, context, color_table)
    info = summary.get(path.name, LabelInfo())
    identity = _Identity(
        number=info.number if info.number is not None else 1,
        name=info.name if info.name is not None else stem,
        color=info.color,
        interpreted_type=info.interpreted_type,
    )
    array = _sparse_bool(placement.apply(volume.data))
    masks = _make_masks([array], [identity], context.grid)
    context.report(masks)
    context.note(placement, [volume.data], int(np.count_nonzero(array)))
    return masks


def _read_npz(path: Path, context: _Context) -> list[Mask]:
    """Every ``roi/<name>`` array of an rtmask ``.npz``, in file order."""
    summary = read_summary(path.parent)
    masks = []
    with open_npz(path) as npz:
        placement = place_on_grid(path, npz.geometry, context.grid)
        for index, key in enumerate(npz.keys, start=1):
            data = npz.array(key)
            low, high = _value_range(data, path)
            if not _is_binary(data, low, high):
                raise InvalidInputError(
                    f"{path}: array {key!r} holds values from {low:g} to {high:g}, not only 0 "
                    "and 1 (a fractional mask?); threshold it into 0/1 first"
                )
            info = summary.get(f"{path.name}#roi/{key}", LabelInfo())
            identity = _Identity(
                number=info.number if info.number is not None else index,
                name=info.name if info.name is not None else key,
                color=info.color,
                interpreted_type=info.interpreted_type,
            )
            masks.append((_sparse_bool(placement.apply(data)), identity))
            del data
    result = _make_masks([m for m, _ in masks], [i for _, i in masks], context.grid)
    context.report(result)
    return result


# ----------------------------------------------------------------------------- DICOM SEG
def _dicom_kind(path: Path) -> tuple[str, str] | None:
    """(SOPClassUID, Modality) of a DICOM file, or None when it is not DICOM."""
    try:
        dataset = read_dataset(path, headers_only=True, specific_tags=["SOPClassUID", "Modality"])
    except DicomReadError:
        return None
    sop_class = str(dataset.get("SOPClassUID", "") or "")
    modality = str(dataset.get("Modality", "") or "")
    return sop_class, modality


def _read_dicom_seg(path: Path, series: ImageSeries | None) -> list[Mask]:
    if series is None:
        raise InvalidInputError(
            f"{path}: a DICOM SEG refers to its images by UID; pass the ImageSeries "
            "(rtmask.read_image_series) instead of its grid"
        )
    return read_seg(path, series)


# ----------------------------------------------------------------------------- entry point
def _override(
    masks: list[Mask],
    names: Sequence[str] | None,
    colors: Sequence[Color] | None,
    source: Path,
) -> list[Mask]:
    """Apply the caller's names and colours (one per mask, in order)."""
    for values, what in ((names, "names"), (colors, "colours")):
        if values is not None and len(values) != len(masks):
            found = ", ".join(repr(m.roi.name) for m in masks[:10])
            raise InvalidInputError(
                f"{len(values)} {what} given for the {len(masks)} masks of {source} "
                f"({found}{', ...' if len(masks) > 10 else ''}); give one per mask, in order"
            )
    if colors is not None:
        for color in colors:
            if len(color) != 3 or not all(0 <= int(c) <= 255 for c in color):
                raise InvalidInputError(f"colour {tuple(color)} is not three values 0-255")
    if names is not None:
        folded = [name.casefold() for name in names]
        duplicates = sorted({n for n in names if folded.count(n.casefold()) > 1})
        if duplicates:
            raise InvalidInputError(f"ROI names given twice: {duplicates}; give unique names")
    result = []
    for index, mask in enumerate(masks):
        roi = mask.roi
        if names is not None:
            roi = replace(roi, name=str(names[index]))
        if colors is not None:
            r, g, b = (int(c) for c in colors[index])
            roi = replace(roi, color=(r, g, b))
        result.append(mask if roi is mask.roi else replace(mask, roi=roi))
    return result


def read_masks(
    path: str | Path,
    grid: ImageGrid | ImageSeries,
    *,
    names: Sequence[str] | None = None,
    colors: Sequence[Color] | None = None,
    color_table: str | Path | None = None,
    progress: Progress | None = None,
    workers: int | None = None,
    resample: str = "exact",
    tolerance_mm: float = OUTSIDE_TOLERANCE_MM,
    labels: Sequence[str] | None = None,
) -> list[Mask]:
    """Read binary masks from files and place them on a reference grid.

    Parameters
    ----------
    path
        A folder of per-ROI masks (``.nii``, ``.nii.gz``, ``.nrrd``, ``.nhdr``), a single
        binary mask, a labelmap with its colour table, a 3D Slicer ``.seg.nrrd``, an
        rtmask ``.npz``, or a DICOM SEG file (see the module docstring for names and
        numbers).
    grid
        The reference: an :class:`ImageGrid`, or the :class:`ImageSeries` the masks were
        made on (required for DICOM SEG, whose frames reference the images by UID; for the
        other formats its ``grid`` is used).
    names, colors
        Override the ROI names / display colours ``(r, g, b)`` 0-255, one per returned
        mask, in the order returned.
    color_table
        A 3D Slicer ``.ctbl`` or ITK-SNAP label file for a labelmap, instead of the one
        found next to it.
    progress
        Called with each mask once it is read.
    workers
        Threads reading the files of a folder (default: the usable CPUs, at most 4).
    resample
        What to do with a NIfTI/NRRD file whose voxel centres are not the grid's:
        ``"exact"`` (default) refuses it; ``"nearest"`` places it in patient coordinates,
        each grid voxel centre taking the value of the file voxel that contains it;
        ``"majority"`` (binary masks on a finer grid) keeps a grid voxel when more than
        half of the file voxels whose centres it holds are inside. Files on the grid are
        always placed exactly. Each resampled file gives one :class:`GeometryWarning`
        stating the source grid, the largest displacement (mm) and the voxels changed
        against a volume-preserving copy.
    tolerance_mm
        How far (mm) labelled voxel centres of a resampled file may lie beyond the image's
        outer voxel faces before it is refused.
    labels
        Keep only the ROIs of these names (case-insensitive), in this order.

    Returns
    -------
    list of Mask
        ``grid.shape`` masks on the reference grid (bool; float32 fractions only from a
        FRACTIONAL DICOM SEG), with ROI number, name and colour (None when unknown);
        their ``roi`` has no contours.

    Raises
    ------
    InvalidInputError
        For a missing, unreadable, truncated or non-mask file (values other than 0/1 in a
        per-ROI file, fractional masks, negative labels), duplicate names, or names /
        colours whose count differs from the masks'.
    GeometryError
        When a file's voxels do not coincide with the grid's and ``resample`` is
        ``"exact"`` (the message gives both geometries and what to do), when a resampled
        file's labelled voxels lie outside the image, or a file has no patient geometry or
        a non-finite affine.

    Warns
    -----
    GeometryWarning
        Once, when the grid has non-uniform slice spacing and the files (NIfTI, NRRD) hold
        only a mean spacing: the in-plane geometry, first and last slice and the slice
        count were compared, each file slice is taken as the image slice of its index.
    """
    source = Path(path)
    series = grid if isinstance(grid, ImageSeries) else None
    reference = grid.grid if isinstance(grid, ImageSeries) else grid
    if not isinstance(reference, ImageGrid):
        raise TypeError(f"grid must be an ImageGrid or ImageSeries, got {type(grid).__name__}")
    table = Path(color_table) if color_table is not None else None
    if table is not None and not table.is_file():
        raise InvalidInputError(f"{table}: colour table not found")
    if resample not in RESAMPLE_RULES:
        raise ValueError(f"resample must be one of {RESAMPLE_RULES}, got {resample!r}")
    context = _Context(
        grid=reference, progress=progress, resample=resample, tolerance_mm=tolerance_mm
    )
    masks = _read_source(source, context, workers, table, series)
    if context.unchecked_slices:
        _warn_unchecked_slices(context.unchecked_slices, reference)
    for message in context.resampled:
        warnings.warn(message, GeometryWarning, stacklevel=2)
    if labels is not None:
        masks = _select(masks, labels, source)
    return _override(masks, names, colors, source)


def _read_source(
    source: Path,
    context: _Context,
    workers: int | None,
    table: Path | None,
    series: ImageSeries | None,
) -> list[Mask]:
    """The masks of a folder, a mask file, an .npz or a DICOM SEG (see :func:`read_masks`)."""
    if source.is_dir():
        workers = default_workers() if workers is None else workers
        return _read_folder(source, context, workers, table)
    if not source.is_file():
        raise InvalidInputError(f"{source}: no such file or folder")
    if source.name.lower().endswith(MASK_SUFFIXES):
        return _read_volume_file(source, context, table)
    if source.suffix.lower() == ".npz":
        return _read_npz(source, context)
    masks = _read_other_file(source, series)
    context.report(masks)
    return masks


def _select(masks: list[Mask], labels: Sequence[str], source: Path) -> list[Mask]:
    """The masks named in ``labels`` (case-insensitive), in that order."""
    by_name = {mask.roi.name.casefold(): mask for mask in masks}
    unknown = [name for name in labels if name.casefold() not in by_name]
    if unknown:
        found = ", ".join(repr(m.roi.name) for m in masks[:20])
        raise InvalidInputError(
            f"{source}: no ROI named {', '.join(map(repr, unknown))} (it holds {found}"
            f"{', ...' if len(masks) > 20 else ''})"
        )
    return [by_name[name.casefold()] for name in dict.fromkeys(labels)]


def _read_other_file(source: Path, series: ImageSeries | None) -> list[Mask]:
    """Read a file without a mask suffix: a DICOM SEG, or refused naming what it is."""
    kind = _dicom_kind(source)
    if kind is None:
        raise InvalidInputError(
            f"{source}: not a mask file; give a folder of per-ROI masks, a .nii/.nii.gz/"
            ".nrrd/.nhdr mask or labelmap, an rtmask .npz or a DICOM SEG"
        )
    sop_class, modality = kind
    if sop_class not in _DICOM_SEG_SOP_CLASSES and modality.upper() != "SEG":
        raise InvalidInputError(
            f"{source}: a DICOM {modality or sop_class or 'object'}, not a segmentation "
            "(DICOM SEG); give masks as files, a labelmap, an .npz or a DICOM SEG"
        )
    return _read_dicom_seg(source, series)


def _warn_unchecked_slices(files: Sequence[Path], reference: ImageGrid) -> None:
    """Warn once that files with a mean slice spacing were matched slice by slice index."""
    which = str(files[0]) if len(files) == 1 else f"{len(files)} files ({files[0]}, ...)"
    warnings.warn(
        f"{which}: the image series has non-uniform slice spacing and NIfTI/NRRD hold "
        "only a mean spacing; matched by in-plane geometry, first and last slice position "
        f"and slice count ({reference.shape[0]}), each file slice taken as the image "
        "slice of the same index",
        GeometryWarning,
        stacklevel=3,
    )
