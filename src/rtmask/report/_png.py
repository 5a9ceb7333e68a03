"""Thumbnails for the QA report: three planes through the ROIs' centre, as small PNG files.

The PNG writer is a few lines of :mod:`zlib` (an indexed-colour image: grey levels of the
windowed image plus one palette entry per ROI outline), so the report needs no plotting
library and a thumbnail costs milliseconds.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

__all__ = ["GREY_LEVELS", "THUMBNAIL_PX", "Plane", "encode_png", "render_plane", "window_for"]

#: Grey levels of the image in the palette (entries ``0 .. GREY_LEVELS - 1``); the entries
#: after them are the ROI outline colours.
GREY_LEVELS = 192
#: Largest width or height of a thumbnail, in pixels.
THUMBNAIL_PX = 200
#: The CT window (level, width) in HU of every CT thumbnail (a soft-tissue window).
CT_WINDOW = (40.0, 400.0)


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class Plane:
    """One plane of the image and of each ROI, ready to draw.

    Parameters
    ----------
    name
        ``"axial"``, ``"coronal"`` or ``"sagittal"``.
    shape
        ``(rows, columns)`` of the plane.
    image
        ``shape`` image values (e.g. HU), or None when no image is available (black).
    masks
        One ``shape`` boolean array per ROI.
    colors
        The ``(r, g, b)`` outline colour of each mask.
    spacing_mm
        ``(row spacing, column spacing)`` in mm, so that the picture keeps its proportions.
    """

    name: str
    shape: tuple[int, int]
    image: NDArray[np.floating] | None
    masks: Sequence[NDArray[np.bool_]]
    colors: Sequence[tuple[int, int, int]]
    spacing_mm: tuple[float, float]


def _chunk(kind: bytes, data: bytes) -> bytes:
    body = kind + data
    return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body) & 0xFFFFFFFF)


def encode_png(indices: NDArray[np.uint8], palette: Sequence[tuple[int, int, int]]) -> bytes:
    """Encode an indexed-colour picture as PNG (8 bits per pixel, filter 0 on every row).

    Parameters
    ----------
    indices
        ``(height, width)`` palette indices.
    palette
        At most 256 ``(r, g, b)`` colours; every index must have an entry.

    Returns
    -------
    bytes
        The PNG file.
    """
    if indices.ndim != 2 or 0 in indices.shape:
        raise ValueError(f"a PNG needs a non-empty 2-D picture, not shape {indices.shape}")
    if not 0 < len(palette) <= 256 or int(indices.max()) >= len(palette):
        raise ValueError(f"{len(palette)} palette colours for indices up to {int(indices.max())}")
    height, width = indices.shape
    header = struct.pack(">IIBBBBB", width, height, 8, 3, 0, 0, 0)
    raw = np.zeros((height, width + 1), dtype=np.uint8)  # a filter byte (0) before each row
    raw[:, 1:] = indices
    colours = bytes(int(c) & 0xFF for rgb in palette for c in rgb)
    return b"".join(
        (
            b"\x89PNG\r\n\x1a\n",
            _chunk(b"IHDR", header),
            _chunk(b"PLTE", colours),
            _chunk(b"IDAT", zlib.compress(raw.tobytes(), 6)),
            _chunk(b"IEND", b""),
        )
    )


def window_for(values: NDArray[np.floating], *, is_ct: bool) -> tuple[float, float]:
    """The ``(level, width)`` to show ``values`` with.

    CT: :data:`CT_WINDOW` (HU). Anything else: the 1st to 99th percentile of the finite
    values shown (width at least 1e-6).
    """
    if is_ct:
        return CT_WINDOW
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return 0.0, 1.0
    low, high = (float(v) for v in np.percentile(finite, [1.0, 99.0]))
    return (low + high) / 2.0, max(high - low, 1e-6)


def _sample_indices(count: int, spacing_mm: float, step_mm: float) -> NDArray[np.intp]:
    """Nearest source index of each output pixel along one axis (``step_mm`` per pixel)."""
    extent = count * spacing_mm
    n_out = max(1, round(extent / step_mm))
    centres = (np.arange(n_out) + 0.5) * (extent / n_out)
    return np.minimum((centres / spacing_mm).astype(np.intp), count - 1)


def _outline(mask: NDArray[np.bool_]) -> NDArray[np.bool_]:
    """The mask's pixels with a 4-neighbour outside it (the picture's edge counts as outside)."""
    padded = np.pad(mask, 1, constant_values=False)
    inner = (
        padded[1:-1, 1:-1]
        & padded[:-2, 1:-1]
        & padded[2:, 1:-1]
        & padded[1:-1, :-2]
        & padded[1:-1, 2:]
    )
    return mask & ~inner


def render_plane(
    plane: Plane, window: tuple[float, float], *, size_px: int = THUMBNAIL_PX
) -> bytes:
    """Draw one plane: the windowed image in grey, each ROI's outline in its colour.

    The picture is resampled (nearest neighbour) to square pixels, its longer side
    ``size_px`` pixels, so anisotropic voxels keep their true proportions.

    Parameters
    ----------
    plane
        What to draw.
    window
        ``(level, width)`` of the image values.
    size_px
        The longer side of the picture, in pixels.

    Returns
    -------
    bytes
        The PNG file.
    """
    shape = plane.shape
    rows_mm, columns_mm = plane.spacing_mm
    step = max(shape[0] * rows_mm, shape[1] * columns_mm) / size_px
    row_index = _sample_indices(shape[0], rows_mm, step)
    column_index = _sample_indices(shape[1], columns_mm, step)
    picture = np.zeros((row_index.size, column_index.size), dtype=np.uint8)
    if plane.image is not None:
        level, width = window
        values = plane.image[np.ix_(row_index, column_index)].astype(np.float64)
        scaled = (values - (level - width / 2.0)) / width * (GREY_LEVELS - 1)
        scaled = np.nan_to_num(scaled, nan=0.0, posinf=GREY_LEVELS - 1, neginf=0.0)
        picture[...] = np.clip(np.rint(scaled), 0, GREY_LEVELS - 1).astype(np.uint8)
    palette = [(round(i * 255 / (GREY_LEVELS - 1)),) * 3 for i in range(GREY_LEVELS)]
    for mask, colour in zip(plane.masks, plane.colors, strict=True):
        edge = _outline(mask[np.ix_(row_index, column_index)])
        if not edge.any():
            continue
        if colour not in palette[GREY_LEVELS:]:
            if len(palette) == 256:  # more colours than the palette holds: reuse the last
                picture[edge] = 255
                continue
            palette.append(colour)
        picture[edge] = GREY_LEVELS + palette[GREY_LEVELS:].index(colour)
    return encode_png(picture, palette)
