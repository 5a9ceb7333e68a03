"""Filling an ROI's planes and combining several contours per plane (DESIGN.md rule 2).

Planes whose contours combine by even-odd parity (one contour, or rule ``xor``) are
filled together in stacked numpy passes. On the other planes every CLOSED_PLANAR contour
is filled as its own layer, and the layers are combined by the rule:

- ``union``: OR of the layers;
- ``auto``: a contour whose pixels all lie in a larger contour's pixels is nested in it;
  nesting depth parity makes holes and islands; contours that share pixels without
  nesting are united, and each such pair is reported with its position.

CLOSEDPLANAR_XOR contours of a plane form one more layer (their even-odd parity), XOR-ed
with the result of the CLOSED_PLANAR ones.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from rtmask.geometry import ImageGrid
from rtmask.raster._mask import CombinationRule
from rtmask.raster._partial import PartialVoxels, moments_of, sums_of_block
from rtmask.raster._planes import PlacedContour
from rtmask.raster._polygon import ParityCrossings, PixelBox, fill_parity_stack, polygons_box
from rtmask.rtstruct import ROI, GeometricType

__all__ = ["fill_planes"]

#: Pixels filled in one stacked pass (bounds the temporary arrays of a pass).
STACK_PIXELS = 1 << 25
#: Sub-pixels counted in one pass from crossings (fractional masks). Its temporaries are
#: a few float64 arrays per voxel and per crossing; kept to about 1 MB each, the
#: allocator reuses them instead of handing them back to the kernel after every pass.
CROSSING_STACK_PIXELS = 1 << 20

MaskArray = NDArray[np.bool_] | NDArray[np.float32]
FloatArray = NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class _Target:
    """Where filled planes go: the mask array, its grid and the in-plane supersampling.

    And, when wanted, the moments of the partly covered voxels.
    """

    array: MaskArray
    grid: ImageGrid
    roi: ROI
    samples: int
    counts: NDArray[np.float64]  # (slices,) voxels (or fractions) written per slice
    partial: PartialVoxels | None = None

    @property
    def plane_shape(self) -> tuple[int, int]:
        """Supersampled ``(rows, columns)`` of a plane."""
        return (self.grid.shape[1] * self.samples, self.grid.shape[2] * self.samples)

    def aligned_box(self, items: Sequence[PlacedContour]) -> PixelBox:
        """Pixels the contours' polygons can cover, widened to whole (coarse) voxels."""
        if not items:
            return PixelBox(0, 0, 0, 0)
        box = polygons_box(
            np.array([item.low for item in items]),
            np.array([item.high for item in items]),
            self.plane_shape,
        )
        s = self.samples
        return PixelBox(
            box.row0 // s * s, -(-box.row1 // s) * s, box.col0 // s * s, -(-box.col1 // s) * s
        )

    @property
    def wants_moments(self) -> bool:
        """True when the partly covered voxels' moments are to be kept."""
        return self.partial is not None and self.samples > 1

    def write(
        self,
        slices: Sequence[int],
        box: PixelBox,
        block: NDArray[np.bool_] | NDArray[np.float64],
        sums_at: Callable[[NDArray[np.intp]], NDArray[np.float64]] | None = None,
    ) -> None:
        """Store ``(len(slices), box rows / s, box columns / s)`` voxels into the mask.

        ``block`` is the binary mask (``samples == 1``) or the count of set sub-pixels
        per voxel; ``sums_at`` gives the :data:`~rtmask.raster._partial.SUMS` of the
        block's voxels at flat indices, when moments are wanted. Only each slice's band of
        rows that holds the structure is written: the mask is fresh zero memory, and
        writing zeros would only make the kernel supply pages.
        """
        s = self.samples
        n_rows, n_cols = (box.row1 - box.row0) // s, (box.col1 - box.col0) // s
        coarse = (
            np.asarray(block.astype(np.float32) / np.float32(s * s), dtype=np.float32)
            if s > 1
            else np.asarray(block, dtype=np.bool_)
        )
        occupied = np.asarray(coarse.any(axis=2), dtype=np.bool_)  # (slices, rows)
        first = occupied.argmax(axis=1)
        last = n_rows - occupied[:, ::-1].argmax(axis=1)
        row0, col0 = box.row0 // s, box.col0 // s
        for n, k in enumerate(slices):
            if occupied[n, first[n]]:
                rows = slice(row0 + first[n], row0 + last[n])
                band = coarse[n, first[n] : last[n]]
                self.array[k, rows, col0 : col0 + n_cols] = band
                self.counts[k] = float(band.sum(dtype=np.float64))
        if self.wants_moments and sums_at is not None:
            counts = np.asarray(block, dtype=np.float64)
            self._keep_moments(slices, counts, sums_at, (row0, col0))

    def _keep_moments(
        self,
        slices: Sequence[int],
        counts: NDArray[np.float64],
        sums_at: Callable[[NDArray[np.intp]], NDArray[np.float64]],
        corner: tuple[int, int],
    ) -> None:
        """Keep the moments of the partly covered voxels.

        ``counts``: ``(slices, rows, columns)`` sub-pixels set per voxel of a block whose
        first voxel is at ``corner`` of each slice.
        """
        assert self.partial is not None
        s = self.samples
        _, n_rows, n_cols = counts.shape
        flat = counts.reshape(-1)
        partial = np.flatnonzero((flat > 0) & (flat < s * s))
        moments = moments_of(sums_at(partial), s).astype(np.float32)
        plane, in_plane = np.divmod(partial, n_rows * n_cols)
        row, column = np.divmod(in_plane, n_cols)
        at = (row + corner[0]) * self.grid.shape[2] + column + corner[1]
        bounds = np.searchsorted(plane, np.arange(len(slices) + 1))
        for n, k in enumerate(slices):
            if bounds[n + 1] > bounds[n]:
                part = slice(int(bounds[n]), int(bounds[n + 1]))
                self.partial.by_slice[k] = (at[part], moments[:, part])

    def patient_position(self, slice_index: int, row: float, column: float) -> NDArray[np.float64]:
        """LPS mm of a supersampled pixel position on a slice."""
        s = self.samples
        index = [[slice_index, (row - (s - 1) / 2) / s, (column - (s - 1) / 2) / s]]
        position: NDArray[np.float64] = self.grid.index_to_patient(index)[0]
        return position


def _covered_count(block: NDArray[np.bool_], s: int) -> NDArray[np.float64]:
    """``(planes, rows, columns)`` count of each voxel's ``s x s`` samples that are set.

    ``block`` is ``(planes, rows * s, columns * s)``. The samples are counted by adding
    strided views (several times faster than ``sum`` over two axes).
    """
    planes, height, width = block.shape
    counter = np.uint8 if s * s <= np.iinfo(np.uint8).max else np.uint16
    by_row = block.view(np.uint8).reshape(planes, height // s, s, width)
    rows = by_row[:, :, 0].astype(counter)
    for i in range(1, s):
        rows += by_row[:, :, i]
    by_column = rows.reshape(planes, height // s, width // s, s)
    counts = by_column[..., 0].copy()
    for i in range(1, s):
        counts += by_column[..., i]
    return np.asarray(counts, dtype=np.float64)


def _is_closed(item: PlacedContour) -> bool:
    return item.contour.geometric_type is GeometricType.CLOSED_PLANAR


def _chunks(
    slices: Sequence[int], layers_of: dict[int, int], area: int, budget: int = STACK_PIXELS
) -> list[list[int]]:
    """Split slices into passes of at most ``budget`` pixels (at least one slice each)."""
    chunks: list[list[int]] = []
    current: list[int] = []
    used = 0
    for k in slices:
        size = layers_of[k] * area
        if current and used + size > budget:
            chunks.append(current)
            current, used = [], 0
        current.append(k)
        used += size
    if current:
        chunks.append(current)
    return chunks


def _fill_by_parity(target: _Target, by_slice: dict[int, list[PlacedContour]]) -> None:
    """Planes where even-odd over all contours is the answer, many planes per pass."""
    box = target.aligned_box([i for items in by_slice.values() for i in items])
    if box.is_empty:
        return
    area = (box.row1 - box.row0) * (box.col1 - box.col0)
    budget = CROSSING_STACK_PIXELS if target.samples > 1 else STACK_PIXELS
    for chunk in _chunks(sorted(by_slice), dict.fromkeys(by_slice, 1), area, budget):
        polygons = [item.polygon for k in chunk for item in by_slice[k]]
        planes = [n for n, k in enumerate(chunk) for _ in by_slice[k]]
        if target.samples > 1:
            crossings = ParityCrossings.of(polygons, planes, len(chunk), box, target.samples)
            target.write(chunk, box, crossings.counts(), crossings.sums_at)
        else:
            target.write(chunk, box, fill_parity_stack(polygons, planes, len(chunk), box))


def _fill_by_layers(
    target: _Target,
    by_slice: dict[int, list[PlacedContour]],
    rule: CombinationRule,
    report: list[str],
) -> None:
    """Planes with several CLOSED_PLANAR contours under ``auto`` or ``union``."""
    box = target.aligned_box([i for items in by_slice.values() for i in items])
    if box.is_empty:
        return
    area = (box.row1 - box.row0) * (box.col1 - box.col0)
    layers_of = {k: sum(map(_is_closed, items)) + 1 for k, items in by_slice.items()}
    for chunk in _chunks(sorted(by_slice), layers_of, area):
        # Plane k's layers: one per CLOSED_PLANAR contour, then one for its XOR-type ones.
        starts = np.cumsum([0] + [layers_of[k] for k in chunk])
        polygons: list[NDArray[np.float64]] = []
        layer_of_polygon: list[int] = []
        for start, k in zip(starts, chunk, strict=False):
            closed = [i for i in by_slice[k] if _is_closed(i)]
            xor_type = [i for i in by_slice[k] if not _is_closed(i)]
            polygons.extend(i.polygon for i in (*closed, *xor_type))
            layer_of_polygon.extend(range(start, start + len(closed)))
            layer_of_polygon.extend([start + len(closed)] * len(xor_type))
        layers = fill_parity_stack(polygons, layer_of_polygon, int(starts[-1]), box)
        block = np.empty((len(chunk), box.row1 - box.row0, box.col1 - box.col0), dtype=bool)
        for n, (start, k) in enumerate(zip(starts, chunk, strict=False)):
            closed = [i for i in by_slice[k] if _is_closed(i)]
            own = layers[start : start + len(closed)]
            block[n] = _combine(
                own, closed, rule, target=target, slice_index=k, box=box, report=report
            )
            block[n] ^= layers[start + len(closed)]
        if target.samples > 1:
            counts = _covered_count(block, target.samples)

            def sums_at(voxels: NDArray[np.intp], block: NDArray[np.bool_] = block) -> FloatArray:
                return sums_of_block(block, target.samples, voxels)

            target.write(chunk, box, counts, sums_at)
        else:
            target.write(chunk, box, block)


def _combine(
    layers: NDArray[np.bool_],
    items: Sequence[PlacedContour],
    rule: CombinationRule,
    *,
    target: _Target,
    slice_index: int,
    box: PixelBox,
    report: list[str],
) -> NDArray[np.bool_]:
    """Combine one plane's contour layers ``(n, rows, columns)`` by ``union`` or ``auto``."""
    if rule is CombinationRule.UNION:
        return np.asarray(layers.any(axis=0), dtype=np.bool_)
    n = len(items)
    counts = np.count_nonzero(layers.reshape(n, -1), axis=1)
    # Contours whose bounding boxes (widened by a pixel) are apart share no pixel.
    low = np.array([item.low for item in items]) - 1.0
    high = np.array([item.high for item in items]) + 1.0
    apart = np.any(
        (low[:, None, :] > high[None, :, :]) | (low[None, :, :] > high[:, None, :]), axis=2
    )
    nested = np.zeros((n, n), dtype=bool)  # nested[i, j]: contour i lies inside contour j
    for i in range(n):
        for j in range(n):
            if counts[i] < counts[j] and not apart[i, j]:
                nested[i, j] = not bool(np.any(layers[i] & ~layers[j]))
    depth = nested.sum(axis=1)
    # Parent: the smallest enclosing contour (the deepest of those containing it).
    parent = [
        int(max(np.flatnonzero(nested[i]), key=lambda j: depth[j])) if depth[i] else -1
        for i in range(n)
    ]
    result = np.zeros(layers.shape[1:], dtype=bool)
    for solid in (k for k in range(n) if depth[k] % 2 == 0):
        region = layers[solid].copy()
        for hole in (k for k in range(n) if parent[k] == solid):
            region &= ~layers[hole]
        result |= region
    for i in range(n):
        for j in range(i + 1, n):
            if nested[i, j] or nested[j, i] or apart[i, j]:
                continue
            overlap = layers[i] & layers[j]
            if overlap.any():
                report.append(
                    _overlap_message(
                        items[i], items[j], overlap, target=target, slice_index=slice_index, box=box
                    )
                )
    return result


def _overlap_message(
    first: PlacedContour,
    second: PlacedContour,
    overlap: NDArray[np.bool_],
    *,
    target: _Target,
    slice_index: int,
    box: PixelBox,
) -> str:
    rows, columns = np.nonzero(overlap)
    x, y, z = target.patient_position(
        slice_index, rows.mean() + box.row0, columns.mean() + box.col0
    )
    roi = target.roi
    voxels = rows.size / target.samples**2
    return (
        f"ROI {roi.number} {roi.name!r}: contours {first.index + 1} and {second.index + 1} "
        f"overlap on slice {slice_index} (plane {first.plane_mm:.2f} mm) near "
        f"({x:.1f}, {y:.1f}, {z:.1f}) mm, {voxels:.0f} voxels; invalid for CLOSED_PLANAR, "
        "combined by union"
    )


def fill_planes(
    array: MaskArray,
    grid: ImageGrid,
    roi: ROI,
    by_slice: dict[int, list[PlacedContour]],
    *,
    rule: CombinationRule,
    samples: int,
    partial: PartialVoxels | None = None,
) -> tuple[list[str], NDArray[np.float64]]:
    """Fill the zero mask ``array`` from contours grouped by slice.

    ``array`` is ``(slices, rows, columns)`` bool (``samples == 1``) or float32 (covered
    fraction from ``samples x samples`` points per voxel); polygons are in supersampled
    pixel coordinates. Returns the overlap warnings and the voxels (or summed fractions)
    written per slice, ``(slices,)``. The moments of the partly covered voxels go to
    ``partial`` when given (fractional masks only).
    """
    target = _Target(array, grid, roi, samples, np.zeros(grid.shape[0]), partial)
    by_parity: dict[int, list[PlacedContour]] = {}
    by_layers: dict[int, list[PlacedContour]] = {}
    for k, items in by_slice.items():
        several = sum(map(_is_closed, items)) > 1
        (by_layers if several and rule is not CombinationRule.XOR else by_parity)[k] = items
    report: list[str] = []
    _fill_by_parity(target, by_parity)
    _fill_by_layers(target, by_layers, rule, report)
    return report, target.counts
