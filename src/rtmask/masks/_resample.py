"""Placing a mask that is not on the image grid, in patient coordinates.

A model's output is often on a grid of its own: resampled to 1.5 mm, cropped to a box, or
a label map with its own affine. It still lies in the image's patient space, so each image
voxel centre takes the value of the mask voxel that contains it (nearest neighbour in
patient space: the file index ``floor(f + 0.5)`` of the centre's continuous file index
``f``). For a binary mask on a finer grid the ``majority`` rule instead counts the mask
voxels whose centres fall in each image voxel and keeps the voxel when more than half of
them are inside.

When the mask's axes are parallel to the image's (any order or flip), the file index of
each image axis depends on that axis only and the whole volume is one ``numpy.ix_``
gather; otherwise the indices are computed slice by slice. Only the image region the
mask's labelled voxels can reach is visited.

A mask whose labelled voxels reach beyond the image by more than a tolerance is refused
with the numbers: it was made on another image or in another frame of reference.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from rtmask._errors import GeometryError
from rtmask.geometry import ImageGrid
from rtmask.masks._placement import CENTRE_TOLERANCE_MM, FileGeometry
from rtmask.raster._box import Box, bounding_box
from rtmask.raster._memory import sparse_zeros

__all__ = [
    "OUTSIDE_TOLERANCE_MM",
    "RESAMPLE_RULES",
    "Resampling",
    "labelled_box",
    "resample_on_grid",
]

#: ``exact``: refuse masks off the image grid; ``nearest``/``majority``: place them.
RESAMPLE_RULES = ("exact", "nearest", "majority")
#: How far (mm) labelled mask voxel centres may lie beyond the image's outer voxel faces.
OUTSIDE_TOLERANCE_MM = 1.0
#: File-index drift (voxels) below which an axis counts as parallel to a grid axis.
_PARALLEL_TOLERANCE = 1e-4
#: Voxels per chunk when counting sub-voxels for the majority rule.
_CHUNK_VOXELS = 1 << 22

FloatArray = NDArray[np.float64]


def _describe_file(geometry: FileGeometry) -> str:
    spacing = "x".join(f"{np.linalg.norm(geometry.affine_lps[:3, a]):.4g}" for a in range(3))
    size = "x".join(str(n) for n in geometry.shape)
    return f"{size} voxels of {spacing} mm"


def _box_of(layer: NDArray[Any]) -> Box | None:
    """:func:`bounding_box` without copying a Fortran-order array (a NIfTI's data)."""
    if layer.flags.f_contiguous and not layer.flags.c_contiguous:
        box = bounding_box(layer.T)
        return None if box is None else (box[2], box[1], box[0])
    return bounding_box(layer)


def labelled_box(layers: tuple[NDArray[Any], ...]) -> Box | None:
    """Bounding box (file axes) of the nonzero voxels of all layers; None when all zero."""
    boxes = [b for layer in layers if (b := _box_of(layer)) is not None]
    if not boxes:
        return None
    return (
        slice(min(b[0].start for b in boxes), max(b[0].stop for b in boxes)),
        slice(min(b[1].start for b in boxes), max(b[1].stop for b in boxes)),
        slice(min(b[2].start for b in boxes), max(b[2].stop for b in boxes)),
    )


def _corners(box: Box) -> FloatArray:
    """The 8 corner voxel indices of a box, ``(8, 3)``."""
    ends = [(s.start, s.stop - 1) for s in box]
    return np.array([[a, b, c] for a in ends[0] for b in ends[1] for c in ends[2]], float)


def _check_inside(
    path: Path, geometry: FileGeometry, grid: ImageGrid, box: Box, tolerance_mm: float
) -> None:
    """Refuse labelled voxels beyond the image's outer voxel faces (one line, numbers)."""
    patient = geometry.to_patient(_corners(box))
    index = grid.patient_to_index(patient)
    spacing = np.array(grid.spacing_mm)
    shape = np.array(grid.shape, dtype=np.float64)
    below = (-0.5 - index) * spacing
    above = (index - (shape - 0.5)) * spacing
    reach = float(max(below.max(), above.max(), 0.0))
    if reach <= tolerance_mm:
        return
    low, high = patient.min(axis=0), patient.max(axis=0)
    grid_corners = grid.index_to_patient(
        _corners((slice(0, grid.shape[0]), slice(0, grid.shape[1]), slice(0, grid.shape[2])))
    )
    g_low, g_high = grid_corners.min(axis=0), grid_corners.max(axis=0)

    def span(lo: FloatArray, hi: FloatArray) -> str:
        return ", ".join(f"{a} {x:.1f}..{y:.1f}" for a, x, y in zip("xyz", lo, hi, strict=True))

    apart = (
        "lie entirely outside the image"
        if np.any(index.min(axis=0) > shape - 0.5) or np.any(index.max(axis=0) < -0.5)
        else f"reach {reach:.1f} mm beyond the image (tolerance {tolerance_mm:g} mm)"
    )
    raise GeometryError(
        f"{path}: the labelled voxels {apart}: labels span {span(low, high)} mm, the image "
        f"spans {span(g_low, g_high)} mm (voxel centres, LPS); the mask was made on another "
        "image or in another frame of reference; pass the image series it was made on with "
        "--image"
    )


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class Resampling:
    """How a file off the image grid is placed on it (nearest neighbour or majority).

    Parameters
    ----------
    path
        The file (for messages).
    rule
        ``"nearest"`` or ``"majority"``.
    geometry
        The file's shape and index -> LPS map.
    grid
        The image grid.
    region
        The labelled file box (file axes); None when the file is all zero.
    parallel
        For mask axes parallel to the grid's: ``parallel[g]`` is the file axis of grid
        axis ``g``; None for an oblique mask.
    displacement_mm
        Largest distance between an image voxel centre in the labelled region and the
        centre of the mask voxel whose value it took.
    """

    path: Path
    rule: str
    geometry: FileGeometry
    grid: ImageGrid
    region: Box | None
    parallel: tuple[int, int, int] | None
    displacement_mm: float

    @property
    def is_copy(self) -> bool:
        """True when every image voxel centre is a mask voxel centre (a crop or pad)."""
        return self.rule == "nearest" and self.displacement_mm <= CENTRE_TOLERANCE_MM

    def describe(self, source_voxels: int, placed_voxels: int) -> str:
        """One line for the summary: rule, source grid, displacement, voxels changed.

        ``source_voxels`` labelled voxels in the file, ``placed_voxels`` on the image grid.
        """
        if self.is_copy:
            how = "copied (its voxel centres are image voxel centres; a cropped or padded grid)"
        else:
            rule = "nearest neighbour" if self.rule == "nearest" else "majority of sub-voxels"
            how = f"resampled onto the image grid by {rule}"
        expected = round(source_voxels * self.source_voxel_mm3 / self.grid.voxel_volume_mm3)
        changed = abs(placed_voxels - expected)
        share = f" ({100 * changed / expected:.2g} %)" if expected and changed else ""
        moved = self.displacement_mm if self.displacement_mm > CENTRE_TOLERANCE_MM else 0.0
        return (
            f"{self.path}: {how}: source grid {_describe_file(self.geometry)}, largest "
            f"displacement {moved:.3g} mm, {placed_voxels} image voxels where a "
            f"volume-preserving copy gives {expected}: {changed} voxels changed{share}"
        )

    @property
    def source_voxel_mm3(self) -> float:
        """Volume of one file voxel (mm^3)."""
        return float(abs(np.linalg.det(self.geometry.affine_lps[:3, :3])))

    def apply(self, data: NDArray[Any]) -> NDArray[Any]:
        """``data`` (file axes) placed on the grid: a ``grid.shape`` array (0 outside).

        The majority rule needs a binary ``data`` (bool or 0/1) and returns bool.
        """
        if self.rule == "majority":
            return self._majority(data != 0)
        out = np.asarray(sparse_zeros(self.grid.shape, data.dtype))
        if self.region is None:
            return out
        if self.parallel is not None:
            self._gather_parallel(data, out)
        else:
            self._gather_oblique(data, out)
        return out

    # ------------------------------------------------------------------ index maps
    def _file_index_terms(self) -> tuple[FloatArray, FloatArray, FloatArray]:
        """``f(k, r, c) = g[k] + r * b1 + c * b2``: (g ``(K, 3)``, b1, b2) in file indices."""
        inverse = np.linalg.inv(self.geometry.affine_lps)
        origins = self.grid.slice_origins_mm()
        g = origins @ inverse[:3, :3].T + inverse[:3, 3]
        b1 = inverse[:3, :3] @ self.grid.affine[:3, 1]
        b2 = inverse[:3, :3] @ self.grid.affine[:3, 2]
        return g, b1, b2

    def _axis_indices(self) -> list[tuple[NDArray[np.intp], NDArray[np.bool_]]]:
        """Per grid axis: the file index of each grid index and whether it is labelled."""
        assert self.parallel is not None
        assert self.region is not None
        g, b1, b2 = self._file_index_terms()
        result = []
        for grid_axis in range(3):
            file_axis = self.parallel[grid_axis]
            n = self.grid.shape[grid_axis]
            if grid_axis == 0:
                f = g[:, file_axis]
            else:
                step = (b1, b2)[grid_axis - 1][file_axis]
                f = g[0, file_axis] + np.arange(n, dtype=np.float64) * step
            index = np.floor(f + 0.5).astype(np.intp)
            span = self.region[file_axis]
            result.append((index, (index >= span.start) & (index < span.stop)))
        return result

    def _gather_parallel(self, data: NDArray[Any], out: NDArray[Any]) -> None:
        assert self.parallel is not None
        view = np.transpose(data, self.parallel)
        axes = self._axis_indices()
        keep = [np.flatnonzero(inside) for _, inside in axes]
        if any(k.size == 0 for k in keep):
            return
        source = [index[k] for (index, _), k in zip(axes, keep, strict=True)]
        block = view[np.ix_(*source)]
        lo = [int(k[0]) for k in keep]
        hi = [int(k[-1]) + 1 for k in keep]
        if all(k.size == h - low for k, low, h in zip(keep, lo, hi, strict=True)):
            out[lo[0] : hi[0], lo[1] : hi[1], lo[2] : hi[2]] = block
        else:  # pragma: no cover - the labelled region maps to one block of each axis
            out[np.ix_(*keep)] = block

    def _grid_region(self) -> Box:
        """The grid box the labelled file region can reach (clipped to the grid)."""
        assert self.region is not None
        grown = tuple(slice(s.start - 1, s.stop + 1) for s in self.region)
        corners = self.geometry.to_patient(_corners((grown[0], grown[1], grown[2])))
        index = self.grid.patient_to_index(corners)
        lo = np.maximum(np.floor(index.min(axis=0)).astype(int), 0)
        hi = np.minimum(np.ceil(index.max(axis=0)).astype(int) + 1, self.grid.shape)
        return (slice(lo[0], hi[0]), slice(lo[1], hi[1]), slice(lo[2], hi[2]))

    def _gather_oblique(self, data: NDArray[Any], out: NDArray[Any]) -> None:
        assert self.region is not None
        g, b1, b2 = self._file_index_terms()
        box = self._grid_region()
        rows = np.arange(box[1].start, box[1].stop, dtype=np.float64)
        columns = np.arange(box[2].start, box[2].stop, dtype=np.float64)
        plane = rows[:, None, None] * b1 + columns[None, :, None] * b2  # (R, C, 3)
        lo = np.array([s.start for s in self.region])
        hi = np.array([s.stop for s in self.region])
        for k in range(box[0].start, box[0].stop):
            index = np.floor(plane + (g[k] + 0.5)).astype(np.intp)
            inside = np.all((index >= lo) & (index < hi), axis=2)
            r, c = np.nonzero(inside)
            picked = index[r, c]
            values = data[picked[:, 0], picked[:, 1], picked[:, 2]]
            out[k, r + box[1].start, c + box[2].start] = values

    # ------------------------------------------------------------------ majority
    def _majority(self, inside: NDArray[np.bool_]) -> NDArray[np.bool_]:
        """Image voxels in which more than half of the covered mask voxels are inside."""
        out = np.asarray(sparse_zeros(self.grid.shape, np.bool_))
        region = labelled_box((inside,))
        if region is None:
            return out
        grown = tuple(
            slice(max(s.start - 1, 0), min(s.stop + 1, n))
            for s, n in zip(region, inside.shape, strict=True)
        )
        box = self._grid_region()
        size = np.array([s.stop - s.start for s in box])
        if np.any(size <= 0):
            return out
        total = np.zeros(int(np.prod(size)), np.int64)
        inner = np.zeros_like(total)
        j, i = np.mgrid[grown[1], grown[2]]
        per_plane = max(1, _CHUNK_VOXELS // max(1, j.size))
        for start in range(grown[0].start, grown[0].stop, per_plane):
            stop = min(start + per_plane, grown[0].stop)
            k = np.arange(start, stop)
            index = np.column_stack(
                [
                    np.repeat(k, j.size),
                    np.tile(j.ravel(), k.size),
                    np.tile(i.ravel(), k.size),
                ]
            ).astype(np.float64)
            flat, valid = self._flat_grid_index(index, box, size)
            total += np.bincount(flat[valid], minlength=total.size)
            chosen = valid & inside[start:stop, grown[1], grown[2]].ravel()
            inner += np.bincount(flat[chosen], minlength=total.size)
        result = (2 * inner > total).reshape(tuple(int(n) for n in size))
        out[box] = result
        return out

    def _flat_grid_index(
        self, file_index: FloatArray, box: Box, size: NDArray[np.int_]
    ) -> tuple[NDArray[np.intp], NDArray[np.bool_]]:
        """Flat index into ``box`` of the image voxel holding each file voxel centre."""
        grid_index = np.floor(
            self.grid.patient_to_index(self.geometry.to_patient(file_index)) + 0.5
        ).astype(np.intp) - np.array([s.start for s in box])
        valid = np.all((grid_index >= 0) & (grid_index < size), axis=1)
        flat = np.ravel_multi_index(tuple(np.where(valid[:, None], grid_index, 0).T), size)
        return flat.astype(np.intp), valid


def _parallel_axes(
    g: FloatArray, b1: FloatArray, b2: FloatArray, shape: tuple[int, int, int]
) -> tuple[int, int, int] | None:
    """File axis of each grid axis when the file's axes are parallel to the grid's."""
    n_k, n_r, n_c = shape
    axes: list[int] = []
    for step, n in ((b1, n_r), (b2, n_c)):
        big = np.flatnonzero(np.abs(step) * max(n - 1, 1) > _PARALLEL_TOLERANCE)
        if big.size != 1:
            return None
        axes.append(int(big[0]))
    if len(set(axes)) != 2:
        return None
    (slice_axis,) = {0, 1, 2} - set(axes)
    drift = np.ptp(g[:, axes], axis=0) if n_k > 1 else np.zeros(2)
    if np.any(drift > _PARALLEL_TOLERANCE):
        return None
    return (slice_axis, axes[0], axes[1])


def _displacement(
    geometry: FileGeometry,
    terms: tuple[FloatArray, FloatArray, FloatArray],
    *,
    parallel: tuple[int, int, int] | None,
    shape: tuple[int, int, int],
    box: Box | None,
) -> float:
    """Largest distance (mm) between an image voxel centre and its nearest file centre."""
    g, b1, b2 = terms
    steps = geometry.affine_lps[:3, :3]
    if parallel is not None:
        worst = np.zeros(3)
        for grid_axis, file_axis in enumerate(parallel):
            if grid_axis == 0:
                f = g[:, file_axis]
            else:
                step = (b1, b2)[grid_axis - 1][file_axis]
                f = g[0, file_axis] + np.arange(shape[grid_axis]) * step
            offset = float(np.abs(np.floor(f + 0.5) - f).max())
            worst[file_axis] = offset * float(np.linalg.norm(steps[:, file_axis]))
        return float(np.linalg.norm(worst))
    if box is None:
        return 0.0
    rows = np.arange(box[1].start, box[1].stop, dtype=np.float64)
    columns = np.arange(box[2].start, box[2].stop, dtype=np.float64)
    plane = rows[:, None, None] * b1 + columns[None, :, None] * b2
    worst_mm = 0.0
    if plane.size == 0:
        return worst_mm
    for k in range(box[0].start, box[0].stop):
        f = plane + g[k]
        offsets = (np.floor(f + 0.5) - f).reshape(-1, 3) @ steps.T
        worst_mm = max(worst_mm, float(np.sqrt((offsets**2).sum(axis=1)).max()))
    return worst_mm


def _check_majority(path: Path, geometry: FileGeometry, grid: ImageGrid) -> None:
    coarsest = max(float(np.linalg.norm(geometry.affine_lps[:3, a])) for a in range(3))
    finest = min(grid.spacing_mm)
    if coarsest > finest + CENTRE_TOLERANCE_MM:
        raise GeometryError(
            f"{path}: the majority rule needs a mask grid finer than the image (mask voxels "
            f"up to {coarsest:.4g} mm, image voxels down to {finest:.4g} mm); use "
            "--resample-rule nearest"
        )


def resample_on_grid(
    path: Path,
    geometry: FileGeometry,
    layers: tuple[NDArray[Any], ...],
    grid: ImageGrid,
    *,
    rule: str = "nearest",
    tolerance_mm: float = OUTSIDE_TOLERANCE_MM,
) -> Resampling:
    """Plan the placement of a file that is not on ``grid`` (same patient space).

    Parameters
    ----------
    path
        The file (for messages).
    geometry
        Its shape and index -> LPS map (an affine: NIfTI, NRRD).
    layers
        Its data, file axis order (the labelled region and the extent check use them).
    grid
        The image grid.
    rule
        ``"nearest"`` or ``"majority"`` (binary masks on a finer grid).
    tolerance_mm
        How far labelled voxel centres may lie beyond the image's outer voxel faces.

    Raises
    ------
    GeometryError
        For a non-finite or singular affine, labelled voxels outside the image, a file whose
        slices are not on an affine, or the majority rule on a coarser mask grid.
    """
    if rule not in ("nearest", "majority"):
        raise ValueError(f"rule must be 'nearest' or 'majority', got {rule!r}")
    affine = np.asarray(geometry.affine_lps, dtype=np.float64)
    if not np.all(np.isfinite(affine)):
        raise GeometryError(
            f"{path}: the file's voxel-to-patient matrix holds NaN or infinite values; write "
            "the mask with the image's geometry"
        )
    if abs(float(np.linalg.det(affine[:3, :3]))) < 1e-12:
        raise GeometryError(f"{path}: the file's voxel-to-patient matrix is singular")
    if geometry.index_to_patient is not None:
        raise GeometryError(
            f"{path}: the mask's slices are not evenly spaced and not on the image grid; "
            "write it on the image grid"
        )
    if rule == "majority":
        _check_majority(path, geometry, grid)
    region = labelled_box(layers)
    if region is not None:
        _check_inside(path, geometry, grid, region, tolerance_mm)
    probe = Resampling(
        path=path,
        rule=rule,
        geometry=geometry,
        grid=grid,
        region=region,
        parallel=None,
        displacement_mm=0.0,
    )
    g, b1, b2 = probe._file_index_terms()
    parallel = _parallel_axes(g, b1, b2, grid.shape)
    box = probe._grid_region() if region is not None and parallel is None else None
    return Resampling(
        path=path,
        rule=rule,
        geometry=geometry,
        grid=grid,
        region=region,
        parallel=parallel,
        displacement_mm=_displacement(
            geometry, (g, b1, b2), parallel=parallel, shape=grid.shape, box=box
        ),
    )
