"""A NIfTI/NRRD image the user already has, as the grid masks are made on (``--reference``).

:func:`read_reference` reads only the header: the file's voxel centres become an
:class:`ImageGrid` (slice, row, column = the file's k, j, i axes; when the file's axes are
left-handed the slice order is reversed, and :func:`relayout_nifti` puts masks written on
that grid back into the file's own voxel order). :func:`relate_to_series` says how the
reference relates to the DICOM series the contours were drawn on: the same grid, its
voxels with flipped or reordered axes, shifted, or resampled, so mismatched images and
masks are caught before training.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nibabel as nib
import nrrd
import numpy as np
from numpy.typing import NDArray

from rtmask._atomic import atomic_path
from rtmask._errors import GeometryError, InvalidInputError
from rtmask.geometry import ImageGrid
from rtmask.masks._loaders import _RAS_TO_LPS, _nrrd_geometry
from rtmask.masks._placement import FileGeometry, place_on_grid

__all__ = [
    "ReferenceGrid",
    "planes_match",
    "read_reference",
    "relate_to_series",
    "relayout_nifti",
]

#: Largest distance (mm) at which a reference slice counts as one of the series' planes.
PLANE_TOLERANCE_MM = 1e-3
#: Names of the grid axes, (slice, row, column) order.
_AXIS_NAMES = ("slices", "rows", "columns")


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class ReferenceGrid:
    """A reference image's geometry.

    Parameters
    ----------
    path
        The NIfTI or NRRD file.
    geometry
        Its data shape and index -> LPS affine, in the file's ``(i, j, k)`` axis order.
    grid
        The same voxel centres as an :class:`ImageGrid` (``(k, j, i)`` order).
    reversed_slices
        True when the grid's slices run opposite to the file's ``k`` axis.
    ras_affine
        The file's own RAS affine (written into relaid-out masks).
    """

    path: Path
    geometry: FileGeometry
    grid: ImageGrid
    reversed_slices: bool
    ras_affine: NDArray[np.float64]


def _header_geometry(path: Path) -> FileGeometry:
    """Shape and LPS affine of a NIfTI or NRRD file (header only; ``(i, j, k)`` order)."""
    name = path.name.lower()
    try:
        if name.endswith((".nii", ".nii.gz")):
            image: Any = nib.load(str(path))
            header = image.header
            if not header.get_sform(coded=True)[1] and not header.get_qform(coded=True)[1]:
                raise GeometryError(
                    f"{path}: the NIfTI header places the voxels nowhere (qform and sform codes "
                    "are 0); give an image written with its geometry"
                )
            shape = tuple(int(n) for n in header.get_data_shape())
            affine = _RAS_TO_LPS @ np.asarray(image.affine, dtype=np.float64)
        elif name.endswith((".nrrd", ".nhdr")):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                header = nrrd.read_header(str(path))
            rows, origin = _nrrd_geometry(header, path)
            shape = tuple(int(n) for n in header["sizes"])
            affine = np.eye(4)
            affine[:3, :3] = rows[:3].T  # header axes: i, j, k
            affine[:3, 3] = origin
        else:
            raise InvalidInputError(
                f"{path}: not a NIfTI or NRRD image (.nii, .nii.gz, .nrrd, .nhdr); give the "
                "image whose grid the masks should be on"
            )
    except (OSError, ValueError, KeyError, nrrd.NRRDError, nib.filebasedimages.ImageFileError) as e:
        if isinstance(e, GeometryError | InvalidInputError):
            raise
        raise InvalidInputError(f"{path}: not a readable image ({e})") from e
    while len(shape) > 3 and shape[-1] == 1:
        shape = shape[:-1]
    if len(shape) != 3:
        raise InvalidInputError(f"{path}: holds a {len(shape)}D image; give a 3D image")
    if not np.all(np.isfinite(affine)):
        raise GeometryError(
            f"{path}: the image's voxel-to-patient matrix holds NaN or infinite values; give "
            "an image with a valid affine"
        )
    return FileGeometry(shape=(shape[0], shape[1], shape[2]), affine_lps=affine)


def read_reference(path: str | Path, frame_of_reference_uid: str | None = None) -> ReferenceGrid:
    """Read a reference image's grid from its header.

    Parameters
    ----------
    path
        A NIfTI (``.nii``, ``.nii.gz``) or NRRD (``.nrrd``, ``.nhdr``) image.
    frame_of_reference_uid
        Given to the grid (the file cannot say).

    Raises
    ------
    InvalidInputError
        For a file that is not a readable 3D NIfTI/NRRD image.
    GeometryError
        For a header without geometry, a non-finite or singular affine.
    """
    source = Path(path)
    if not source.is_file():
        raise InvalidInputError(f"{source}: no such file; give the reference image")
    geometry = _header_geometry(source)
    a = geometry.affine_lps
    ni, nj, nk = geometry.shape
    grid_affine = np.eye(4)
    grid_affine[:3, 0], grid_affine[:3, 1], grid_affine[:3, 2] = a[:3, 2], a[:3, 1], a[:3, 0]
    grid_affine[:3, 3] = a[:3, 3]
    normal = np.cross(a[:3, 0], a[:3, 1])
    reversed_slices = bool(nk > 1 and float(a[:3, 2] @ normal) < 0)
    if reversed_slices:
        grid_affine[:3, 0] = -a[:3, 2]
        grid_affine[:3, 3] = a[:3, 3] + (nk - 1) * a[:3, 2]
    try:
        grid = ImageGrid(
            shape=(nk, nj, ni), affine=grid_affine, frame_of_reference_uid=frame_of_reference_uid
        )
    except GeometryError as error:
        raise GeometryError(f"{source}: not a usable image grid ({error})") from error
    return ReferenceGrid(
        path=source,
        geometry=geometry,
        grid=grid,
        reversed_slices=reversed_slices,
        ras_affine=_RAS_TO_LPS @ a,
    )


def _unit(vectors: NDArray[np.float64]) -> NDArray[np.float64]:
    return np.asarray(vectors / np.linalg.norm(vectors, axis=0))


def _corners_mm(grid: ImageGrid) -> NDArray[np.float64]:
    ends = [(0, n - 1) for n in grid.shape]
    index = [[a, b, c] for a in ends[0] for b in ends[1] for c in ends[2]]
    return grid.index_to_patient(np.array(index, dtype=np.float64))


def _check_overlap(reference: ReferenceGrid, series: ImageGrid) -> None:
    """Refuse a reference that does not overlap the series (another patient or frame)."""
    ours, theirs = _corners_mm(reference.grid), _corners_mm(series)
    gap = np.maximum(
        0.0,
        np.maximum(ours.min(axis=0) - theirs.max(axis=0), theirs.min(axis=0) - ours.max(axis=0)),
    )
    if float(np.linalg.norm(gap)) > max(series.spacing_mm):
        raise GeometryError(
            f"{reference.path}: the image lies {float(np.linalg.norm(gap)):.1f} mm away from the "
            "DICOM series (no voxel in common): it belongs to another patient, series or frame "
            "of reference; give the image converted from this series"
        )


def _same_voxels(reference: ReferenceGrid, series: ImageGrid) -> str | None:
    """The relation when the reference's voxel centres are the series', else None."""
    try:
        placement = place_on_grid(reference.path, reference.geometry, series)
    except GeometryError:
        return None
    # rtmask, dcm2niix and SimpleITK write i = column, j = row, k = slice.
    flipped = [_AXIS_NAMES[g] for g in range(3) if placement.flips[g]]
    reordered = placement.axes != (2, 1, 0)
    if not flipped and not reordered:
        return "the same grid as the DICOM series (same voxels in the same order)"
    parts = []
    if flipped:
        parts.append(f"{' and '.join(flipped)} flipped")
    if reordered:
        parts.append("axes reordered")
    return f"the DICOM series' voxels with {', '.join(parts)} (no resampling)"


def _mm(value: float) -> str:
    """A length in mm to 0.001 mm, without trailing zeros (``-0`` as ``0``)."""
    text = f"{round(value, 3) + 0.0:.3f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def _orientation_words(reference: ReferenceGrid, series: ImageGrid) -> list[str]:
    """Which series axes the reference's file axes run against, and whether they are reordered.

    The file axes ``i, j, k`` normally hold columns, rows, slices (rtmask, dcm2niix and
    SimpleITK write them so); anything else is reported as reordered axes.
    """
    to_series = np.linalg.inv(series.affine[:3, :3]) @ reference.geometry.affine_lps[:3, :3]
    targets = np.abs(to_series).argmax(axis=0)  # series axis of each file axis
    flipped = [_AXIS_NAMES[int(targets[a])] for a in range(3) if to_series[targets[a], a] < 0]
    parts = []
    if flipped:
        parts.append(f"{' and '.join(sorted(flipped, key=_AXIS_NAMES.index))} flipped")
    if tuple(int(t) for t in targets) != (2, 1, 0):
        parts.append("axes reordered")
    return parts


def _displaced(reference: ReferenceGrid, series: ImageGrid) -> str:
    """The relation of a reference with the series' axes and voxel size but other centres.

    The reference's voxels, put in the series' axis order and direction, start at a point
    of the series' index space; its displacement from the series' voxel ``(0, 0, 0)`` is
    how far every mask voxel lies from the DICOM voxel with the same index.
    """
    ni, nj, nk = reference.geometry.shape
    corners = np.array(
        [[i, j, k] for i in (0, ni - 1) for j in (0, nj - 1) for k in (0, nk - 1)],
        dtype=np.float64,
    )
    index = series.patient_to_index(reference.geometry.to_patient(corners))
    start, stop = index.min(axis=0), index.max(axis=0)
    shape = tuple(int(n) for n in np.round(stop - start) + 1)
    steps = np.array(series.spacing_mm)
    whole = bool(np.all(np.abs(start - np.round(start)) * steps <= PLANE_TOLERANCE_MM))
    offset = series.index_to_patient(start)[0] - series.origin_mm
    corner = np.round(start)
    cropped = (
        whole
        and shape != series.shape
        and bool(np.all(corner >= 0) and np.all(corner + shape <= series.shape))
    )
    size, theirs = "x".join(str(n) for n in shape), "x".join(str(n) for n in series.shape)
    words = _orientation_words(reference, series)
    parts = [", ".join(["the DICOM series' orientation and voxel size", *words])]
    if cropped:
        parts.append(f"a {size} part of its {theirs} voxels (slices x rows x columns)")
    elif shape != series.shape:
        parts.append(f"{size} voxels (the series: {theirs}; slices x rows x columns)")
    moved = (
        f"displaced by ({', '.join(_mm(v) for v in offset)}) mm (patient LPS x, y, z; "
        f"{_mm(float(np.linalg.norm(offset)))} mm in all)"
    )
    if whole:
        moved += (
            f" = ({', '.join(str(int(v)) for v in corner)}) voxels of the DICOM grid (slices, rows,"
            " columns)"
        )
    else:
        moved += ", not a whole number of the DICOM grid's voxels (centres between the series')"
    undone = " once the flips and reordering are undone" if words else ""
    return (
        f"{'cropped' if cropped else 'shifted'}: {'; '.join(parts)}; {moved}. The masks are on"
        f" the reference's grid: mask voxel (i, j, k){undone} lies that far from the DICOM"
        " image's voxel (i, j, k), so against the DICOM image the masks are displaced by that much"
    )


def relate_to_series(reference: ReferenceGrid, series: ImageGrid) -> str:
    """How the reference grid relates to the DICOM series' grid, in one phrase.

    "The same grid" (or the same voxels with flipped or reordered axes) only when every
    reference voxel centre is a series voxel centre index for index; a reference with the
    series' orientation and voxel size but other centres is "shifted" or "cropped", with
    its whole displacement in mm and, where whole, in voxels of the series.

    Raises
    ------
    GeometryError
        When the reference shares no voxel with the series (another patient or frame).
    """
    _check_overlap(reference, series)
    same = _same_voxels(reference, series)
    if same is not None:
        return same
    ours, theirs = _unit(reference.grid.affine[:3, :3]), _unit(series.affine[:3, :3])
    cosines = np.abs(ours.T @ theirs)  # ours axis x theirs axis
    pairs = cosines.argmax(axis=1)
    ref_spacing = np.array(reference.grid.spacing_mm)
    series_spacing = np.array(series.spacing_mm)[pairs]
    sizes = "x".join(f"{s:.4g}" for s in ref_spacing)
    theirs_text = "x".join(f"{s:.4g}" for s in series.spacing_mm)
    if np.all(cosines.max(axis=1) > 1 - 1e-6) and len(set(pairs.tolist())) == 3:
        if np.allclose(ref_spacing, series_spacing, rtol=1e-4, atol=1e-4):
            return _displaced(reference, series)
        return (
            f"resampled: voxels of {sizes} mm (the DICOM series: {theirs_text} mm), axes "
            "parallel to the series'"
        )
    angle = float(np.degrees(np.arccos(np.clip(cosines.max(axis=1).min(), -1.0, 1.0))))
    return (
        f"resampled and rotated: voxels of {sizes} mm (the DICOM series: {theirs_text} mm), "
        f"axes up to {angle:.1f} degrees from the series'"
    )


def planes_match(reference: ReferenceGrid, series: ImageGrid) -> bool:
    """True when every reference slice lies on one of the series' image planes."""
    if abs(float(reference.grid.normal @ series.normal)) < 1 - 1e-9:
        return False
    distances = reference.grid.slice_origins_mm() @ series.normal
    planes = series.slice_origins_mm() @ series.normal
    nearest = np.abs(distances[:, None] - planes[None, :]).min(axis=1)
    return bool(np.all(nearest <= PLANE_TOLERANCE_MM))


def relayout_nifti(path: Path, reference: ReferenceGrid) -> None:
    """Rewrite a NIfTI written on ``reference.grid`` in the reference file's voxel order.

    Only needed when :attr:`ReferenceGrid.reversed_slices`: the data's ``k`` axis is
    reversed and the reference's own affine written, so the mask's array lines up index for
    index with the reference image's.
    """
    image: Any = nib.load(str(path))
    data = np.asarray(image.dataobj)
    if reference.reversed_slices:
        data = data[:, :, ::-1]
    header = image.header.copy()
    image_class: Any = nib.Nifti1Image  # nibabel is only partly typed
    out: Any = image_class(np.ascontiguousarray(data), reference.ras_affine, header)
    out.set_qform(reference.ras_affine, code=1)
    out.set_sform(reference.ras_affine, code=1)
    with atomic_path(path) as temporary:
        nib.save(out, temporary)
