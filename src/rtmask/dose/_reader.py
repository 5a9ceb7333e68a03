"""Reading the geometry of an RT Dose: multi-frame, frames placed by GridFrameOffsetVector."""

from __future__ import annotations

import os

import numpy as np
from numpy.typing import NDArray
from pydicom.dataset import Dataset

from rtmask._dicom import RTDOSE_SOP_CLASS, read_dataset
from rtmask._errors import GeometryError, InvalidInputError
from rtmask.geometry import ImageGrid, slice_order

__all__ = ["dose_frame_order", "read_dose_grid"]

_GEOMETRY_TAGS = [
    "SOPClassUID",
    "Modality",
    "ImagePositionPatient",
    "ImageOrientationPatient",
    "PixelSpacing",
    "Rows",
    "Columns",
    "NumberOfFrames",
    "GridFrameOffsetVector",
    "FrameOfReferenceUID",
]


def _frame_positions(dataset: Dataset, name: str) -> tuple[NDArray[np.float64], ImageGrid]:
    """Patient position of every frame in file order, ``(frames, 3)``, and the grid."""
    try:
        position = np.asarray([float(v) for v in dataset.ImagePositionPatient])
        orientation = [float(v) for v in dataset.ImageOrientationPatient]
        spacing = [float(v) for v in dataset.PixelSpacing]
        rows, columns = int(dataset.Rows), int(dataset.Columns)
        n_frames = int(dataset.get("NumberOfFrames", 1) or 1)
        raw_offsets = dataset.get("GridFrameOffsetVector")
        offsets = np.asarray([float(v) for v in raw_offsets] if raw_offsets else [0.0])
    except (AttributeError, TypeError, ValueError) as error:
        raise InvalidInputError(
            f"{name}: RT Dose geometry is incomplete or invalid ({error}); the dose grid "
            "cannot be placed"
        ) from error
    if offsets.size != n_frames:
        raise GeometryError(
            f"{name}: GridFrameOffsetVector has {offsets.size} values for {n_frames} frames"
        )
    # Relative form starts at 0; the absolute form (axial only) starts at the first
    # frame's z. Either way the offsets from the first frame are v - v[0].
    relative = offsets - offsets[0]
    normal = np.cross(orientation[:3], orientation[3:])
    positions = position + np.outer(relative, normal / np.linalg.norm(normal))
    grid = ImageGrid.from_slices(
        positions_mm=positions,
        orientation=orientation,
        pixel_spacing_mm=spacing,
        rows=rows,
        columns=columns,
        frame_of_reference_uid=str(dataset.get("FrameOfReferenceUID", "")) or None,
    )
    return positions, grid


def _read_dose_header(path: str | os.PathLike[str]) -> tuple[Dataset, str]:
    name = os.fspath(path)
    dataset = read_dataset(name, headers_only=True, specific_tags=_GEOMETRY_TAGS)
    if dataset.get("SOPClassUID") != RTDOSE_SOP_CLASS and dataset.get("Modality") != "RTDOSE":
        raise InvalidInputError(
            f"{name}: not an RT Dose (Modality {dataset.get('Modality', 'unknown')}); give an "
            "RTDOSE file"
        )
    return dataset, name


def read_dose_grid(path: str | os.PathLike[str]) -> ImageGrid:
    """The ImageGrid of an RT Dose file (headers only), slices increasing along the normal.

    GridFrameOffsetVector may be relative (first value 0) or absolute, increasing or
    decreasing; :func:`dose_frame_order` says which file frame is which grid slice.

    Raises
    ------
    DicomReadError
        The file cannot be read.
    InvalidInputError, GeometryError
        Not an RT Dose, or its geometry is inconsistent.
    """
    dataset, name = _read_dose_header(path)
    return _frame_positions(dataset, name)[1]


def dose_frame_order(path: str | os.PathLike[str]) -> NDArray[np.intp]:
    """Indices of the file's frames in grid slice order: ``slice k = frame order[k]``."""
    dataset, name = _read_dose_header(path)
    positions, grid = _frame_positions(dataset, name)
    return slice_order(positions, grid.orientation)
