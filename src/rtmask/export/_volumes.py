"""Volume file writers: NIfTI (``.nii`` / ``.nii.gz``), NRRD (``.nrrd``) and NumPy (``.npz``).

Every writer takes an array indexed ``(slice, row, column)`` and the :class:`ImageGrid` that
places it, and writes atomically (:func:`atomic_path`). Stored data types: bool -> uint8 0/1
(bool in ``.npz``), floating point -> float32, uint8/uint16/int16/int32 unchanged.

NIfTI files are laid out as SimpleITK and dcm2niix write the image series: data axes
``i = column, j = row, k = slice`` with the RAS affine :meth:`ImageGrid.nifti_affine` in both
qform and sform (code 1, scanner), units mm. ``.nii.gz`` is written by
:func:`rtmask._gzip.write_gzip`, which skips the empty parts of a mask.
"""

from __future__ import annotations

import io
import logging
import warnings
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import nrrd
import numpy as np
from numpy.typing import NDArray

from rtmask._atomic import atomic_path
from rtmask._errors import GeometryError, GeometryWarning
from rtmask._gzip import write_gzip
from rtmask._limits import NIFTI1_MAX_DIMENSION
from rtmask._npz import NPZ_AFFINE_KEY, NPZ_ROI_PREFIX, NPZ_SLICE_POSITIONS_KEY
from rtmask.geometry import ImageGrid

__all__ = [
    "image_storage_dtype",
    "storable_array",
    "write_image_volume",
    "write_nifti",
    "write_npz",
    "write_nrrd",
]

logger = logging.getLogger(__name__)

_KEPT_INTEGER_TYPES = (np.uint8, np.uint16, np.int16, np.int32)
_INT16 = np.iinfo(np.int16)
#: Slices examined at a time when deciding an image's stored type (bounded temporaries).
_CHECK_SLICES = 16
_NPZ_FORBIDDEN = frozenset("/\\\0")


def storable_array(array: NDArray[np.generic], *, keep_bool: bool = False) -> NDArray[np.generic]:
    """Return ``array`` as stored in a file: C-contiguous, native byte order.

    bool becomes uint8 0/1 (a view, no copy) unless ``keep_bool``; floating point becomes
    float32; uint8, uint16, int16 and int32 stay. Other types raise ``TypeError``.
    """
    array = np.asarray(array)
    if array.ndim != 3:
        raise ValueError(f"expected a 3D (slice, row, column) array, got shape {array.shape}")
    if array.dtype == np.bool_:
        array = np.ascontiguousarray(array)
        return array if keep_bool else array.view(np.uint8)
    if array.dtype.kind == "f":
        return np.ascontiguousarray(array, dtype=np.float32)
    for kind in _KEPT_INTEGER_TYPES:
        if array.dtype == np.dtype(kind):
            return np.ascontiguousarray(array, dtype=np.dtype(kind).newbyteorder("="))
    raise TypeError(
        f"cannot store a {array.dtype} array; use bool, a float type, uint8, uint16, int16 or int32"
    )


def _check_shape(array: NDArray[np.generic], grid: ImageGrid, path: Path) -> None:
    if tuple(array.shape) != grid.shape:
        raise ValueError(
            f"cannot write {path}: array shape {tuple(array.shape)} differs from the grid "
            f"shape {grid.shape}"
        )


def _warn_if_non_uniform(grid: ImageGrid, path: Path) -> None:
    """Warn that an affine-only format cannot hold non-uniform slice positions."""
    if grid.is_uniform:
        return
    mean = grid.spacing_mm[0]
    implied = grid.slice_positions_mm[0] + mean * np.arange(grid.shape[0])
    error = float(np.abs(implied - grid.slice_positions_mm).max())
    warnings.warn(
        f"{path.name}: the grid's slice spacing is not uniform; the file places slices at "
        f"the mean spacing {mean:.4g} mm, up to {error:.3g} mm from their true positions. "
        "Resample to a uniform grid (ImageGrid.with_uniform_slices) for exact geometry.",
        GeometryWarning,
        stacklevel=3,
    )


def _nifti_header(data: NDArray[np.generic], grid: ImageGrid, *, intent: str | None) -> Any:
    import nibabel as nib  # noqa: PLC0415 - a third of a second; only writers need it

    header_class: Any = nib.Nifti1Header  # nibabel is only partly typed
    header: Any = header_class()
    header.set_data_dtype(data.dtype)
    header.set_data_shape(data.shape[::-1])
    affine = grid.nifti_affine()
    header.set_qform(affine, code=1)
    header.set_sform(affine, code=1)
    header.set_xyzt_units(xyz="mm")
    header.set_slope_inter(1.0, 0.0)
    if intent is not None:
        header.set_intent(intent)
    header["descrip"] = b"rtmask"
    return header


def write_nifti(
    array: NDArray[np.generic],
    grid: ImageGrid,
    path: Path,
    *,
    intent: str | None = None,
    compression_level: int = 1,
) -> Path:
    """Write a ``(slice, row, column)`` array as NIfTI-1 (``.nii`` or ``.nii.gz``).

    Parameters
    ----------
    array
        ``grid.shape`` array: bool (stored uint8 0/1), float (stored float32), or uint8,
        uint16, int16, int32.
    grid
        Where the voxels are. The file holds ``array.transpose(2, 1, 0)`` (i = column,
        j = row, k = slice) with RAS affine ``grid.nifti_affine()`` as qform and sform.
    path
        Output file; must end in ``.nii.gz`` or ``.nii``.
    intent
        Optional NIfTI intent name (e.g. ``"label"`` for labelmaps).
    compression_level
        zlib level for ``.nii.gz`` (1 = fastest; masks barely shrink further).

    Returns
    -------
    pathlib.Path
        ``path``.

    Warns
    -----
    GeometryWarning
        When the grid's slices are not uniformly spaced (NIfTI holds only an affine).
    """
    path = Path(path)
    name = path.name.lower()
    if not name.endswith((".nii.gz", ".nii")):
        raise ValueError(f"cannot write {path} as NIfTI: the name must end in .nii.gz or .nii")
    data = storable_array(array)
    _check_shape(data, grid, path)
    # NIfTI-1 holds dimensions as int16 and the affine as float32: refuse what they cannot.
    if max(grid.shape) > NIFTI1_MAX_DIMENSION:
        raise GeometryError(
            f"cannot write {path}: NIfTI-1 holds at most {NIFTI1_MAX_DIMENSION} voxels per "
            f"axis, the grid has {grid.shape} (slices, rows, columns); write NRRD or NumPy"
        )
    if not np.all(np.isfinite(grid.nifti_affine().astype(np.float32))):
        raise GeometryError(
            f"cannot write {path}: its affine is not finite in the file's float32 numbers"
        )
    _warn_if_non_uniform(grid, path)
    # Fortran order of (i, j, k) = (column, row, slice) is the C order of the array itself.
    header = _nifti_header(data, grid, intent=intent)
    buffer = io.BytesIO()
    header.write_to(buffer)
    offset = int(header["vox_offset"])
    header_bytes = buffer.getvalue().ljust(offset, b"\0")
    with atomic_path(path) as temporary, temporary.open("wb") as stream:
        if name.endswith(".gz"):
            write_gzip(stream, header_bytes, data, level=compression_level)
        else:
            stream.write(header_bytes)
            stream.write(data.reshape(-1).view(np.uint8).data)
    logger.debug("wrote %s", path)
    return path


def write_nrrd(
    array: NDArray[np.generic],
    grid: ImageGrid,
    path: Path,
    *,
    compression_level: int = 1,
) -> Path:
    """Write a ``(slice, row, column)`` array as a gzip-encoded NRRD file (with pynrrd).

    The file's axes are ``(column, row, slice)`` (fastest first), space
    ``left-posterior-superior``, space directions the columns of ``grid.ijk_affine_lps()``,
    space origin the centre of voxel ``[0, 0, 0]``, as ITK and 3D Slicer write it.

    Returns
    -------
    pathlib.Path
        ``path``.

    Warns
    -----
    GeometryWarning
        When the grid's slices are not uniformly spaced.
    """
    path = Path(path)
    data = storable_array(array)
    _check_shape(data, grid, path)
    _warn_if_non_uniform(grid, path)
    ijk = grid.ijk_affine_lps()
    header = {
        "space": "left-posterior-superior",
        "space directions": ijk[:3, :3].T.copy(),
        "space origin": ijk[:3, 3].copy(),
        "kinds": ["domain", "domain", "domain"],
        "encoding": "gzip",
    }
    with atomic_path(path) as temporary:
        # index_order "C": sizes are written reversed, (column, row, slice), data as is.
        nrrd.write(
            str(temporary), data, header, compression_level=compression_level, index_order="C"
        )
    logger.debug("wrote %s", path)
    return path


def _check_npz_key(key: str) -> None:
    if not key or key in {".", ".."} or any(c in _NPZ_FORBIDDEN for c in key):
        raise ValueError(f"invalid .npz array name {key!r}: use a safe file stem (safe_file_stems)")


def write_npz(
    arrays: Mapping[str, NDArray[np.generic]],
    grid: ImageGrid,
    path: Path,
    *,
    compression_level: int = 1,
) -> Path:
    r"""Write several ``(slice, row, column)`` arrays of one grid to a compressed ``.npz``.

    Layout (read with :func:`numpy.load`):

    - ``"roi/<key>"`` for every ``key`` of ``arrays`` (:data:`NPZ_ROI_PREFIX`), in
      ``(slice, row, column)`` order; bool stays bool, floats become float32;
    - ``"affine"``: ``(4, 4)`` float64 ``grid.affine``, mapping ``(slice, row, column, 1)``
      to LPS mm;
    - ``"slice_positions_mm"``: ``(slices,)`` float64 position of each slice plane along the
      normal, exact also for non-uniform grids.

    The prefix keeps ROI arrays apart from the two reserved keys, so no ROI name can
    overwrite them. The file is what :func:`numpy.savez_compressed` writes, at zlib level
    ``compression_level`` (numpy always uses 6, several times slower on masks).

    Raises
    ------
    ValueError
        For an empty key, or one holding ``/``, ``\``, NUL, or equal to ``.``/``..``.
    """
    path = Path(path)
    entries: dict[str, NDArray[np.generic]] = {}
    for key, array in arrays.items():
        _check_npz_key(key)
        data = storable_array(array, keep_bool=True)
        _check_shape(data, grid, path)
        entries[NPZ_ROI_PREFIX + key] = data
    entries[NPZ_AFFINE_KEY] = np.asarray(grid.affine, dtype=np.float64)
    entries[NPZ_SLICE_POSITIONS_KEY] = np.asarray(grid.slice_positions_mm, dtype=np.float64)
    with (
        atomic_path(path) as temporary,
        zipfile.ZipFile(
            temporary, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=compression_level
        ) as archive,
    ):
        for key, data in entries.items():
            with archive.open(key + ".npy", "w", force_zip64=True) as member:
                np.lib.format.write_array(member, data, allow_pickle=False)
    logger.debug("wrote %s", path)
    return path


def image_storage_dtype(values: NDArray[Any]) -> np.dtype[Any]:
    """int16 when every value of ``values`` is a whole number within int16, else float32.

    The stored type of an image volume (:func:`write_image_volume`): int16 loses nothing
    for CT in HU and most rescaled images; anything else (fractional rescale results, MR
    values beyond 32767, NaN) keeps float32.
    """
    if values.dtype == np.int16 or values.dtype in (np.int8, np.uint8, np.bool_):
        return np.dtype(np.int16)  # every value is one of int16's: nothing to look at
    for first in range(0, values.shape[0], _CHECK_SLICES):
        block = values[first : first + _CHECK_SLICES]
        if block.size and not (
            np.all(np.isfinite(block))
            and float(block.min()) >= _INT16.min
            and float(block.max()) <= _INT16.max
            and np.array_equal(block, np.round(block))
        ):
            return np.dtype(np.float32)
    return np.dtype(np.int16)


def write_image_volume(values: NDArray[Any], grid: ImageGrid, path: Path) -> np.dtype[Any]:
    """Write an image volume in modality units as NIfTI or NRRD, int16 when lossless.

    Parameters
    ----------
    values
        ``grid.shape`` values (e.g. HU), ``(slice, row, column)``.
    grid
        Where the voxels are; the layout is the masks' (:func:`write_nifti`,
        :func:`write_nrrd`), so image and masks overlay voxel for voxel.
    path
        ``.nii.gz`` / ``.nii`` (NIfTI) or ``.nrrd``.

    Returns
    -------
    numpy.dtype
        The stored type: int16 when every value is a whole number within int16
        (:func:`image_storage_dtype`), float32 otherwise.

    Warns
    -----
    GeometryWarning
        When the grid's slices are not uniformly spaced.
    """
    path = Path(path)
    dtype = image_storage_dtype(values)
    data = values.astype(dtype) if values.dtype != dtype else values
    if path.name.lower().endswith(".nrrd"):
        write_nrrd(data, grid, path)
    else:
        write_nifti(data, grid, path)
    return dtype
