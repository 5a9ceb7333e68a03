"""Loading volume files (NIfTI, NRRD, rtmask ``.npz``) with the geometry that places them.

Each loader returns the data in the file's own axis order together with a
:class:`FileGeometry`; :func:`rtmask.masks._placement.place_on_grid` then decides how it
lies on the reference grid. Every failure to read a file becomes one
:class:`InvalidInputError` (or :class:`GeometryError` for missing patient geometry) naming
the file.
"""

from __future__ import annotations

import logging
import struct
import warnings
import zipfile
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nibabel as nib
import nrrd
import numpy as np
from numpy.typing import NDArray

from rtmask._errors import GeometryError, InvalidInputError
from rtmask._npz import NPZ_AFFINE_KEY, NPZ_ROI_PREFIX, NPZ_SLICE_POSITIONS_KEY
from rtmask.geometry import ImageGrid
from rtmask.masks._inflate import inflate_rtmask_gzip
from rtmask.masks._placement import FileGeometry
from rtmask.masks._tables import SlicerSegment, slicer_segments

__all__ = ["LoadedVolume", "NpzMasks", "load_nifti", "load_nrrd", "open_npz"]

logger = logging.getLogger(__name__)

#: RAS <-> LPS: negate x and y.
_RAS_TO_LPS = np.diag([-1.0, -1.0, 1.0, 1.0])
#: NRRD ``space`` values rtmask understands, with the matrix that turns them into LPS.
_NRRD_SPACES = {
    "left-posterior-superior": np.diag([1.0, 1.0, 1.0]),
    "lps": np.diag([1.0, 1.0, 1.0]),
    "right-anterior-superior": np.diag([-1.0, -1.0, 1.0]),
    "ras": np.diag([-1.0, -1.0, 1.0]),
    "left-anterior-superior": np.diag([1.0, -1.0, 1.0]),
    "las": np.diag([1.0, -1.0, 1.0]),
}
#: Data kinds a mask or labelmap may have: bool, signed, unsigned, float.
_MASK_KINDS = frozenset("biuf")
_READ_ERRORS = (
    OSError,
    EOFError,
    ValueError,
    zlib.error,
    struct.error,
    KeyError,
    TypeError,
    IndexError,
    MemoryError,
)


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class LoadedVolume:
    """A volume file's data and geometry.

    Parameters
    ----------
    path
        The file.
    layers
        One or more 3D arrays in the file's axis order (several only for a 3D Slicer
        segmentation with overlapping segments in layers).
    geometry
        Shape and index -> LPS map of each layer.
    segments
        Segments declared by a 3D Slicer ``.seg.nrrd`` header (empty otherwise).
    """

    path: Path
    layers: tuple[NDArray[Any], ...]
    geometry: FileGeometry
    segments: tuple[SlicerSegment, ...] = ()

    @property
    def data(self) -> NDArray[Any]:
        """The first (usually only) layer."""
        return self.layers[0]


def _unreadable(path: Path, error: BaseException, what: str) -> InvalidInputError:
    detail = str(error).splitlines()[0] if str(error) else type(error).__name__
    return InvalidInputError(
        f"{path}: not a readable {what} file ({detail}); check that the file is complete, "
        "or remove it from the input"
    )


def _check_kind(data: NDArray[Any], path: Path) -> None:
    if data.dtype.kind not in _MASK_KINDS:
        raise InvalidInputError(
            f"{path}: holds {data.dtype} values, not a mask or labelmap (expected integers, "
            "booleans or 0/1 floats)"
        )


def _spatial_shape(shape: tuple[int, ...], path: Path) -> tuple[int, int, int]:
    """Drop trailing one-sized axes (a 4D file with one volume); a 2D file is one slice."""
    dims = list(shape)
    while len(dims) > 3 and dims[-1] == 1:
        dims.pop()
    if len(dims) == 2:
        dims.append(1)
    if len(dims) != 3:
        raise InvalidInputError(
            f"{path}: holds a {len(shape)}D volume of shape {tuple(shape)}; a mask file must "
            "be 3D (one file per ROI, or one labelmap)"
        )
    return (dims[0], dims[1], dims[2])


def _inflate(blob: bytes, path: Path) -> bytes:
    """Decompress one or more concatenated gzip members."""
    parts = []
    rest = blob
    while rest:
        inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
        parts.append(inflater.decompress(rest))
        if not inflater.eof:
            raise InvalidInputError(
                f"{path}: the compressed data end early (truncated file?); write the file again"
            )
        rest = inflater.unused_data
        if rest[:2] != b"\x1f\x8b":
            break  # trailing padding after the last member
    return b"".join(parts)


def _nifti_data(path: Path, header: Any, offset: int, shape: tuple[int, ...]) -> NDArray[Any]:
    """The voxel array (Fortran order of the file: ``(i, j, k)``), read in one piece.

    Faster than nibabel's array proxy for ``.nii.gz`` (one zlib call instead of Python's
    gzip stream); scaled data (``scl_slope``) fall back to nibabel.
    """
    dtype = np.dtype(header.get_data_dtype())
    count = int(np.prod(shape))
    with path.open("rb") as stream:
        blob = stream.read()
    raw: NDArray[np.uint8] | None = None
    if blob[:2] == b"\x1f\x8b":
        raw = inflate_rtmask_gzip(blob)  # rtmask's own files: zero runs skipped
        if raw is None:
            raw = np.frombuffer(_inflate(blob, path), dtype=np.uint8)
    else:
        raw = np.frombuffer(blob, dtype=np.uint8)
    del blob
    needed = offset + count * dtype.itemsize
    if raw.size < needed:
        raise InvalidInputError(
            f"{path}: holds {raw.size} bytes but its header announces {needed} (truncated "
            "file?); write the file again"
        )
    data: NDArray[Any] = raw[offset:needed].view(dtype)
    return np.asarray(data.reshape(shape, order="F"))


def load_nifti(path: Path) -> LoadedVolume:
    """Load a NIfTI-1/2 file (``.nii``, ``.nii.gz``): data ``(i, j, k)`` and its LPS affine.

    Raises
    ------
    InvalidInputError
        For an unreadable, truncated or non-mask (RGB, complex, 4D) file.
    GeometryError
        When the file gives no orientation (qform and sform codes both 0).
    """
    try:
        image: Any = nib.load(str(path))
    except (*_READ_ERRORS, nib.filebasedimages.ImageFileError) as error:
        raise _unreadable(path, error, "NIfTI") from error
    if not isinstance(image, (nib.Nifti1Image, nib.Nifti2Image)):
        raise InvalidInputError(f"{path}: not a NIfTI image ({type(image).__name__})")
    header: Any = image.header
    raw_shape = tuple(int(n) for n in header.get_data_shape())
    shape = _spatial_shape(raw_shape, path)
    _, sform_code = header.get_sform(coded=True)
    _, qform_code = header.get_qform(coded=True)
    if not sform_code and not qform_code:
        raise GeometryError(
            f"{path}: the NIfTI header places the voxels nowhere (qform and sform codes are "
            "0); write the mask with the image's geometry (e.g. with SimpleITK or rtmask)"
        )
    affine = _RAS_TO_LPS @ np.asarray(image.affine, dtype=np.float64)
    proxy: Any = image.dataobj
    try:
        slope, intercept = header.get_slope_inter()
        if slope not in (None, 1.0) or intercept not in (None, 0.0):
            data = np.asarray(proxy).reshape(shape, order="F")
        else:
            offset = int(proxy.offset)  # nibabel resets header["vox_offset"] on loading
            data = _nifti_data(path, header, offset, raw_shape).reshape(shape, order="F")
    except InvalidInputError:
        raise
    except _READ_ERRORS as error:
        raise _unreadable(path, error, "NIfTI") from error
    _check_kind(data, path)
    return LoadedVolume(
        path=path,
        layers=(data,),
        geometry=FileGeometry(shape=shape, affine_lps=affine),
    )


def _nrrd_geometry(header: dict[str, Any], path: Path) -> tuple[NDArray[np.float64], Any]:
    """(space directions as rows per file axis in LPS, space origin in LPS)."""
    space = str(header.get("space", "")).strip().lower()
    directions = header.get("space directions")
    origin = header.get("space origin")
    if not space or directions is None or origin is None:
        raise GeometryError(
            f"{path}: the NRRD header has no patient geometry (space, space directions and "
            "space origin); write the mask with the image's geometry"
        )
    if space not in _NRRD_SPACES:
        raise GeometryError(
            f"{path}: NRRD space {space!r} is not a patient space rtmask knows (use "
            "left-posterior-superior or right-anterior-superior)"
        )
    to_lps = _NRRD_SPACES[space]
    rows = np.asarray(directions, dtype=np.float64) @ to_lps
    return rows, to_lps @ np.asarray(origin, dtype=np.float64).reshape(3)


def load_nrrd(path: Path) -> LoadedVolume:
    """Load a NRRD file (``.nrrd`` or detached ``.nhdr``), 3D Slicer segmentations included.

    A ``.seg.nrrd`` with overlapping segments has a fourth (``list``) axis of layers; each
    layer becomes one entry of :attr:`LoadedVolume.layers`.

    Raises
    ------
    InvalidInputError
        For an unreadable or truncated file, or more than one non-spatial axis.
    GeometryError
        When the header has no patient space, directions or origin.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # pynrrd warns about harmless header details
            data, header = nrrd.read(str(path), index_order="C")
    except (*_READ_ERRORS, nrrd.NRRDError, StopIteration) as error:
        # pynrrd raises StopIteration for an empty file (its header reader runs out of lines).
        raise _unreadable(path, error, "NRRD") from error
    data = np.asarray(data)
    _check_kind(data, path)
    rows, origin = _nrrd_geometry(header, path)
    n_axes = data.ndim
    if rows.shape[0] != n_axes:
        raise InvalidInputError(
            f"{path}: the NRRD header gives {rows.shape[0]} space directions for "
            f"{n_axes} axes; write the file again"
        )
    spatial = [h for h in range(n_axes) if np.all(np.isfinite(rows[h]))]
    other = [h for h in range(n_axes) if h not in spatial]
    segments = tuple(slicer_segments(header, path))
    if len(spatial) != 3 or len(other) > 1:
        raise InvalidInputError(
            f"{path}: the NRRD holds {len(spatial)} spatial and {len(other)} other axes; a "
            "mask file must be 3D (a 3D Slicer segmentation may add one axis of layers)"
        )
    # With index_order="C" data axis d is header axis (n_axes - 1 - d).
    layers: list[NDArray[Any]]
    if other:
        layer_axis = n_axes - 1 - other[0]
        layers = [np.take(data, i, axis=layer_axis) for i in range(data.shape[layer_axis])]
    else:
        layers = [data]
    header_axes = sorted(spatial, reverse=True)  # header axis of remaining data axes 0, 1, 2
    affine = np.eye(4)
    for data_axis, header_axis in enumerate(header_axes):
        affine[:3, data_axis] = rows[header_axis]
    affine[:3, 3] = origin
    shape = layers[0].shape
    return LoadedVolume(
        path=path,
        layers=tuple(layers),
        geometry=FileGeometry(shape=(shape[0], shape[1], shape[2]), affine_lps=affine),
        segments=segments,
    )


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class NpzMasks:
    """An open rtmask ``.npz``: its grid and the names of its ROI arrays.

    Parameters
    ----------
    path
        The file.
    grid
        The grid the arrays were written on (affine and slice positions from the file).
    keys
        The ROI names (``roi/<name>`` without the prefix), in file order.
    archive
        The open :class:`numpy.lib.npyio.NpzFile`; read arrays with :meth:`array`.
    """

    path: Path
    grid: ImageGrid
    keys: tuple[str, ...]
    archive: Any

    @property
    def geometry(self) -> FileGeometry:
        """The file grid as a :class:`FileGeometry` (exact slice positions)."""
        return FileGeometry(
            shape=self.grid.shape,
            affine_lps=np.asarray(self.grid.affine),
            index_to_patient=self.grid.index_to_patient,
            affine_only=False,
        )

    def array(self, key: str) -> NDArray[Any]:
        """The ``(slice, row, column)`` array of ROI ``key``."""
        try:
            data = np.asarray(self.archive[NPZ_ROI_PREFIX + key])
        except (*_READ_ERRORS, zipfile.BadZipFile) as error:
            raise _unreadable(self.path, error, ".npz") from error
        if data.shape != self.grid.shape:
            raise InvalidInputError(
                f"{self.path}: array {NPZ_ROI_PREFIX + key!r} has shape {data.shape}, not the "
                f"file's grid shape {self.grid.shape}"
            )
        _check_kind(data, self.path)
        return data


@contextmanager
def open_npz(path: Path) -> Iterator[NpzMasks]:
    """Open an ``.npz`` written by :func:`rtmask.export.write_npz`.

    Raises
    ------
    InvalidInputError
        When the file is unreadable or lacks ``affine``, ``slice_positions_mm`` or any
        ``roi/<name>`` array.
    """
    try:
        archive: Any = np.load(path, allow_pickle=False)
    except (*_READ_ERRORS, zipfile.BadZipFile) as error:
        raise _unreadable(path, error, ".npz") from error
    try:
        if not hasattr(archive, "files"):
            raise InvalidInputError(f"{path}: holds one array, not rtmask's .npz of masks")
        files = list(archive.files)
        keys = tuple(k[len(NPZ_ROI_PREFIX) :] for k in files if k.startswith(NPZ_ROI_PREFIX))
        missing = [k for k in (NPZ_AFFINE_KEY, NPZ_SLICE_POSITIONS_KEY) if k not in files]
        if missing or not keys:
            lacking = ", ".join([*missing, *([] if keys else [f"{NPZ_ROI_PREFIX}<name>"])])
            raise InvalidInputError(
                f"{path}: not an rtmask .npz of masks (no {lacking}); write it with "
                "rtmask.export.write_npz or 'rtmask convert --format npz'"
            )
        try:
            affine = np.asarray(archive[NPZ_AFFINE_KEY], dtype=np.float64)
            positions = np.asarray(archive[NPZ_SLICE_POSITIONS_KEY], dtype=np.float64)
            first = archive[NPZ_ROI_PREFIX + keys[0]]
        except (*_READ_ERRORS, zipfile.BadZipFile) as error:
            raise _unreadable(path, error, ".npz") from error
        if first.ndim != 3:
            raise InvalidInputError(f"{path}: array {keys[0]!r} is not 3D ({first.shape})")
        try:
            grid = ImageGrid(
                shape=(first.shape[0], first.shape[1], first.shape[2]),
                affine=affine,
                slice_positions_mm=positions,
            )
        except GeometryError as error:
            raise GeometryError(f"{path}: invalid geometry ({error})") from error
        yield NpzMasks(path=path, grid=grid, keys=keys, archive=archive)
    finally:
        archive.close()
