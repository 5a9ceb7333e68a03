"""One labelmap from many masks, with colour tables for 3D Slicer and ITK-SNAP.

Label ``k`` (1-based) marks the voxels of the ``k``-th mask; 0 is background. Where masks
overlap a voxel can hold one label only, so a priority decides and every overlapping pair
is reported.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from rtmask._atomic import atomic_path, full_suffix
from rtmask._errors import GeometryError
from rtmask.export._volumes import write_nifti, write_nrrd
from rtmask.raster._box import Box, bounding_box
from rtmask.raster._mask import Mask

__all__ = [
    "DEFAULT_COLORS",
    "LabelmapEntry",
    "LabelmapResult",
    "color_of",
    "write_labelmap",
]

logger = logging.getLogger(__name__)

#: Colours for ROIs without ROIDisplayColor, cycled by label (Trubetskoy's 20 distinct colours).
DEFAULT_COLORS: tuple[tuple[int, int, int], ...] = (
    (230, 25, 75), (60, 180, 75), (255, 225, 25), (0, 130, 200), (245, 130, 48),
    (145, 30, 180), (70, 240, 240), (240, 50, 230), (210, 245, 60), (250, 190, 212),
    (0, 128, 128), (220, 190, 255), (170, 110, 40), (255, 250, 200), (128, 0, 0),
    (170, 255, 195), (128, 128, 0), (255, 215, 180), (0, 0, 128), (128, 128, 128),
)  # fmt: skip

_PRIORITIES = {"smallest": "smallest first", "order": "later in list wins"}
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_WHITESPACE = re.compile(r"\s+")


@dataclass(frozen=True, slots=True, kw_only=True)
class LabelmapEntry:
    """One label of a labelmap.

    Parameters
    ----------
    label
        Voxel value (1-based position of the mask in the input list).
    roi_number, name
        The ROI it stands for.
    color
        ``(r, g, b)`` 0-255: ROIDisplayColor, or :data:`DEFAULT_COLORS` when absent.
    voxel_count
        Voxels that carry this label in the written file (fewer than the ROI's own mask
        where it lost overlapping voxels to another ROI).
    """

    label: int
    roi_number: int
    name: str
    color: tuple[int, int, int]
    voxel_count: int


@dataclass(frozen=True, slots=True, kw_only=True)
class LabelmapResult:
    """What :func:`write_labelmap` wrote.

    Parameters
    ----------
    path
        The labelmap file.
    entries
        One entry per input mask, in input order.
    overlaps
        ``(roi_number_a, roi_number_b, voxels)`` for every pair of ROIs sharing voxels,
        ``a`` before ``b`` in the input order.
    color_tables
        The ITK-SNAP label description file and the 3D Slicer colour table.
    warnings
        One line per overlapping pair, naming both ROIs and which label the voxels got.
    """

    path: Path
    entries: tuple[LabelmapEntry, ...]
    overlaps: tuple[tuple[int, int, int], ...]
    color_tables: tuple[Path, ...]
    warnings: tuple[str, ...]


def color_of(color: tuple[int, int, int] | None, label: int) -> tuple[int, int, int]:
    """Return ``color`` clipped to 0-255, or the default colour of ``label`` when None."""
    if color is None:
        return DEFAULT_COLORS[(label - 1) % len(DEFAULT_COLORS)]
    r, g, b = (min(max(int(c), 0), 255) for c in color)
    return (r, g, b)


def _binary(mask: Mask) -> NDArray[np.bool_]:
    """The mask as bool; fractional masks count where the fraction is at least 0.5."""
    if mask.is_fractional:
        return np.asarray(mask.array >= 0.5)
    return np.asarray(mask.array, dtype=np.bool_)


def _intersect(a: Box, b: Box) -> Box | None:
    parts = []
    for sa, sb in zip(a, b, strict=True):
        start, stop = max(sa.start, sb.start), min(sa.stop, sb.stop)
        if start >= stop:
            return None
        parts.append(slice(start, stop))
    return (parts[0], parts[1], parts[2])


def _label_text(name: str) -> str:
    return _CONTROL.sub(" ", name).strip()


def _write_itksnap(path: Path, entries: Sequence[LabelmapEntry]) -> Path:
    """Write an ITK-SNAP label description file (``IDX R G B A VIS MSH "LABEL"``)."""
    lines = [
        "################################################",
        "# ITK-SnAP Label Description File",
        "# Written by rtmask",
        "# File format:",
        "# IDX   -R-  -G-  -B-  -A--  VIS MSH  LABEL",
        "# Fields:",
        "#    IDX:   Zero-based index",
        "#    -R-:   Red color component (0..255)",
        "#    -G-:   Green color component (0..255)",
        "#    -B-:   Blue color component (0..255)",
        "#    -A-:   Label transparency (0.00 .. 1.00)",
        "#    VIS:   Label visibility (0 or 1)",
        "#    MSH:   Label mesh visibility (0 or 1)",
        "#  LABEL:   Label description",
        "################################################",
        f'{0:5d} {0:5d} {0:4d} {0:4d} {0:8d} {0:2d} {0:2d}    "Clear Label"',
    ]
    for entry in entries:
        text = _label_text(entry.name).replace('"', "'") or f"ROI {entry.roi_number}"
        r, g, b = entry.color
        lines.append(f'{entry.label:5d} {r:5d} {g:4d} {b:4d} {1:8d} {1:2d} {1:2d}    "{text}"')
    with atomic_path(path) as temporary:
        temporary.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _write_slicer_ctbl(path: Path, entries: Sequence[LabelmapEntry]) -> Path:
    """Write a 3D Slicer colour table (``index name r g b a``, names without spaces)."""
    lines = [
        f"# Color table file {path.name}",
        f"# {len(entries) + 1} values",
        "0 Background 0 0 0 0",
    ]
    for entry in entries:
        text = _WHITESPACE.sub("_", _label_text(entry.name)) or f"ROI_{entry.roi_number}"
        r, g, b = entry.color
        lines.append(f"{entry.label} {text} {r} {g} {b} 255")
    with atomic_path(path) as temporary:
        temporary.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def write_labelmap(
    masks: Sequence[Mask], path: Path, *, priority: str = "smallest"
) -> LabelmapResult:
    """Write the masks as one labelmap volume plus ITK-SNAP and 3D Slicer colour tables.

    Parameters
    ----------
    masks
        Masks on one grid; the ``k``-th gets label ``k``. Fractional masks count where the
        fraction is >= 0.5.
    path
        ``.nii.gz``/``.nii`` (NIfTI, as :func:`write_nifti`) or ``.nrrd``. The colour tables
        are written next to it as ``<stem>.itksnap.txt`` and ``<stem>.ctbl``.
    priority
        Who gets a voxel covered by several ROIs: ``"smallest"`` (the ROI with the fewest
        voxels, so small structures inside big ones stay visible; ties go to the later one
        in the list) or ``"order"`` (the later one in the list).

    Returns
    -------
    LabelmapResult
        Paths, labels and overlaps; the volume is uint8 for up to 255 masks, else uint16.

    Raises
    ------
    ValueError
        For no masks, more than 65535, or an unknown priority.
    GeometryError
        When the masks are not all on the same grid.
    """
    path = Path(path)
    _check_masks(masks, path, priority)
    grid = masks[0].grid
    binaries = [_binary(mask) for mask in masks]
    counts = [int(np.count_nonzero(b)) for b in binaries]
    boxes = [bounding_box(b) for b in binaries]
    order = list(range(len(masks)))
    if priority == "smallest":
        order.sort(key=lambda i: (-counts[i], i))
    rank = {index: position for position, index in enumerate(order)}

    dtype = np.uint8 if len(masks) <= np.iinfo(np.uint8).max else np.uint16
    labels = np.zeros(grid.shape, dtype=dtype)
    for index in order:
        box = boxes[index]
        if box is not None:
            np.copyto(labels[box], dtype(index + 1), where=binaries[index][box])

    overlaps, messages = _overlaps(masks, binaries, boxes, rank, priority)

    labelled = np.bincount(labels.reshape(-1), minlength=len(masks) + 1)
    entries = tuple(
        LabelmapEntry(
            label=index + 1,
            roi_number=mask.roi.number,
            name=mask.roi.name,
            color=color_of(mask.roi.color, index + 1),
            voxel_count=int(labelled[index + 1]),
        )
        for index, mask in enumerate(masks)
    )
    if path.name.lower().endswith(".nrrd"):
        write_nrrd(labels, grid, path)
    else:
        write_nifti(labels, grid, path, intent="label")
    suffix = full_suffix(path.name)
    stem = path.name[: len(path.name) - len(suffix)] if suffix else path.name
    tables = (
        _write_itksnap(path.with_name(f"{stem}.itksnap.txt"), entries),
        _write_slicer_ctbl(path.with_name(f"{stem}.ctbl"), entries),
    )
    for message in messages:
        logger.info("%s", message)
    return LabelmapResult(
        path=path,
        entries=entries,
        overlaps=tuple(overlaps),
        color_tables=tables,
        warnings=tuple(messages),
    )


def _check_masks(masks: Sequence[Mask], path: Path, priority: str) -> None:
    """Refuse an unknown priority, no masks, too many, or masks on different grids."""
    if priority not in _PRIORITIES:
        raise ValueError(f"unknown labelmap priority {priority!r}; use 'smallest' or 'order'")
    if not masks:
        raise ValueError(f"cannot write labelmap {path}: no masks given")
    if len(masks) > np.iinfo(np.uint16).max:
        raise ValueError(f"cannot write {len(masks)} labels: at most 65535 fit in a labelmap")
    grid = masks[0].grid
    for mask in masks[1:]:
        if not mask.grid.equals(grid):
            raise GeometryError(
                f"cannot combine ROI {mask.roi.number} '{mask.roi.name}' into labelmap "
                f"{path.name}: its grid {mask.grid} differs from that of ROI "
                f"{masks[0].roi.number} '{masks[0].roi.name}' ({grid}); rasterise all "
                "ROIs on one grid"
            )


def _overlaps(
    masks: Sequence[Mask],
    binaries: Sequence[NDArray[np.bool_]],
    boxes: Sequence[Box | None],
    rank: dict[int, int],
    priority: str,
) -> tuple[list[tuple[int, int, int]], list[str]]:
    """``(roi a, roi b, voxels)`` of every overlapping pair, and a sentence for each."""
    overlaps: list[tuple[int, int, int]] = []
    messages: list[str] = []
    for a in range(len(masks)):
        for b in range(a + 1, len(masks)):
            box_a, box_b = boxes[a], boxes[b]
            common = None if box_a is None or box_b is None else _intersect(box_a, box_b)
            if common is None:
                continue
            shared = int(np.count_nonzero(binaries[a][common] & binaries[b][common]))
            if shared == 0:
                continue
            roi_a, roi_b = masks[a].roi, masks[b].roi
            winner = roi_a if rank[a] > rank[b] else roi_b
            overlaps.append((roi_a.number, roi_b.number, shared))
            messages.append(
                f"ROIs {roi_a.number} '{roi_a.name}' and {roi_b.number} '{roi_b.name}' "
                f"overlap in {shared} voxels; labelled {winner.name} "
                f"({_PRIORITIES[priority]})"
            )
    return overlaps, messages
