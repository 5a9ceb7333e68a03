"""Overlay pictures: ROI outlines on a few image slices, as one PNG a person can open.

matplotlib is optional (``pip install 'rtmask[plot]'``) and imported on first use; the
picture is drawn with the Agg canvas directly (no pyplot, no global backend change).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from rtmask._atomic import atomic_path
from rtmask._optional import import_optional
from rtmask.geometry import ImageGrid
from rtmask.rtstruct import ROI

__all__ = ["MAX_PANELS", "OverlayMask", "choose_overlay_slices", "write_overlay"]

#: Most slices shown in one overlay picture.
MAX_PANELS = 6
#: ``(ROI name, display colour or None, (n, rows, columns) mask slices)``.
OverlayMask = tuple[str, "tuple[int, int, int] | None", NDArray[Any]]

#: Outline colours of ROIs without a display colour (matplotlib's tab10), 0-255.
PALETTE = (
    (31, 119, 180),
    (255, 127, 14),
    (44, 160, 44),
    (214, 39, 40),
    (148, 103, 189),
    (140, 86, 75),
    (227, 119, 194),
    (188, 189, 34),
    (23, 190, 207),
    (127, 127, 127),
)
_WIDTH_IN = 14.0  # 1400 px at 100 dpi
_MAX_HEIGHT_IN = 12.0
_LEGEND_IN = 2.6
_GAP_IN = 0.1
_MAX_PANEL_IN = 6.0
_PANEL_TITLE_IN = 0.35
_SUPTITLE_IN = 0.9
_DPI = 100
_MAX_LABEL_CHARS = 40
#: Dark surround, as image viewers have: white and pale ROI colours stay visible.
_BACKGROUND = "#161616"
_TEXT = "#f0f0f0"


def choose_overlay_slices(
    rois: Sequence[ROI], grid: ImageGrid, *, max_panels: int = MAX_PANELS
) -> tuple[int, ...]:
    """Pick up to ``max_panels`` slices of ``grid`` worth showing, in increasing order.

    The candidates are the grid slices nearest the planes of the ROIs' closed contours
    (inside the grid). The first and last are always shown, the others spread evenly
    between them, and the slice crossing the most ROIs replaces the nearest pick when it
    is not already one. Without candidates, the middle slice.
    """
    n_slices = grid.shape[0]
    rois_on: dict[int, set[int]] = {}
    for roi in rois:
        planes = [
            float(np.mean(contour.points_mm @ grid.normal))
            for contour in roi.contours
            if contour.geometric_type.encloses_volume and contour.n_points
        ]
        if not planes:
            continue
        nearest = np.rint(grid.slice_index_of(np.asarray(planes)))
        for k in np.unique(nearest[(nearest >= 0) & (nearest < n_slices)]):
            rois_on.setdefault(int(k), set()).add(roi.number)
    candidates = sorted(rois_on)
    if not candidates:
        return ((n_slices - 1) // 2,)
    if len(candidates) <= max_panels:
        return tuple(candidates)
    available = np.asarray(candidates)
    chosen: list[int] = []
    for target in np.linspace(candidates[0], candidates[-1], max_panels):
        free = available[~np.isin(available, chosen)]
        chosen.append(int(free[np.argmin(np.abs(free - target))]))
    middle = (candidates[0] + candidates[-1]) / 2
    best = max(candidates, key=lambda k: (len(rois_on[k]), -abs(k - middle)))
    if best not in chosen:
        interior = chosen[1:-1]
        replaced = min(interior, key=lambda k: abs(k - best))
        chosen[chosen.index(replaced)] = best
    return tuple(sorted(chosen))


def _label(name: str) -> str:
    flat = " ".join(name.split()) or "(no name)"
    return flat if len(flat) <= _MAX_LABEL_CHARS else flat[: _MAX_LABEL_CHARS - 1] + "…"


def _layout(n_panels: int, aspect: float) -> tuple[int, int, float]:
    """Rows, columns and figure height (inches) that give the panels the most room.

    ``aspect`` is a panel's height / width in mm; the figure is ``_WIDTH_IN`` wide and at
    most ``_MAX_HEIGHT_IN`` high.
    """
    best: tuple[float, int, int, int, float] | None = None
    for n_columns in range(1, n_panels + 1):
        n_rows = math.ceil(n_panels / n_columns)
        width = (_WIDTH_IN - _LEGEND_IN) / n_columns - _GAP_IN
        height = (_MAX_HEIGHT_IN - _SUPTITLE_IN) / n_rows - _PANEL_TITLE_IN
        panel_width = min(width, height / aspect, _MAX_PANEL_IN)
        figure_height = n_rows * (panel_width * aspect + _PANEL_TITLE_IN) + _SUPTITLE_IN
        filled = n_panels / (n_rows * n_columns)
        key = (round(panel_width**2 * aspect * filled, 1), -n_rows * n_columns, n_rows, n_columns)
        if best is None or key[:2] > best[:2]:
            best = (*key, max(figure_height, 3.5))
    assert best is not None
    return best[2], best[3], best[4]


def write_overlay(
    path: Path,
    *,
    images: NDArray[np.floating[Any]] | None,
    masks: Sequence[OverlayMask],
    grid: ImageGrid,
    slice_indices: Sequence[int],
    title: str,
    window: tuple[float, float] = (40.0, 400.0),
) -> Path:
    """Draw ROI outlines on image slices and write the picture as a PNG (atomically).

    Parameters
    ----------
    path
        The ``.png`` file to write; its folder must exist.
    images
        ``(n, rows, columns)`` image slices in modality units (HU for CT), one per entry of
        ``slice_indices``; None draws the outlines on black (masks on a dose or covering
        grid, or no images at hand).
    masks
        ``(name, colour, slices)`` per ROI: display colour ``(r, g, b)`` 0-255 or None
        (a fixed palette), and ``(n, rows, columns)`` bool or fractional mask slices. The
        outline is the 0.5 level.
    grid
        The grid the slices come from (pixel aspect, slice positions).
    slice_indices
        The slices shown, one panel each (at most :data:`MAX_PANELS` is sensible).
    title
        Figure title (any characters; nothing is parsed as mathtext).
    window
        Grey window ``(level, width)`` in image units; default a soft-tissue CT window.

    Returns
    -------
    pathlib.Path
        ``path``.

    Raises
    ------
    MissingDependencyError
        When matplotlib is not installed.
    """
    figure_module = import_optional("matplotlib.figure", extra="plot", feature="overlay pictures")
    agg = import_optional(
        "matplotlib.backends.backend_agg", extra="plot", feature="overlay pictures"
    )
    lines = import_optional("matplotlib.lines", extra="plot", feature="overlay pictures")

    indices = [int(k) for k in slice_indices]
    n_panels = len(indices)
    _, rows, columns = grid.shape
    _check_shapes(images, masks, (n_panels, rows, columns))

    _, row_mm, column_mm = grid.spacing_mm
    n_rows, n_columns, height = _layout(n_panels, (rows * row_mm) / (columns * column_mm))
    figure = figure_module.Figure(
        figsize=(_WIDTH_IN, height), dpi=_DPI, layout="constrained", facecolor=_BACKGROUND
    )
    agg.FigureCanvasAgg(figure)
    axes = figure.subplots(n_rows, n_columns, squeeze=False)
    background = np.zeros((rows, columns), dtype=np.float32)
    colours = [
        tuple(c / 255 for c in (colour or PALETTE[i % len(PALETTE)]))
        for i, (_, colour, _) in enumerate(masks)
    ]
    shown = [False] * len(masks)
    for panel, ax in enumerate(axes.flat):
        if panel >= n_panels:
            ax.remove()
            continue
        image = background if images is None else images[panel]
        drawn = _draw_panel(
            ax,
            image,
            [array[panel] for _, _, array in masks],
            colours,
            window=None if images is None else window,
            aspect=row_mm / column_mm,
            title=f"slice {indices[panel]}   {grid.slice_positions_mm[indices[panel]]:+.1f} mm",
        )
        shown = [was or now for was, now in zip(shown, drawn, strict=True)]
    _add_title(figure, title, None if images is None else window)
    if masks:
        _add_legend(figure, lines, masks=masks, colours=colours, shown=shown, height=height)

    path = Path(path)
    with atomic_path(path) as temporary, warnings.catch_warnings():
        # Names in scripts the default font lacks draw as boxes; that is no reason to warn.
        warnings.filterwarnings("ignore", message="Glyph .* missing", category=UserWarning)
        figure.savefig(temporary, format="png", dpi=_DPI, facecolor=_BACKGROUND)
    return path


def _draw_panel(
    ax: Any,
    image: NDArray[Any],
    planes: Sequence[NDArray[Any]],
    colours: Sequence[tuple[float, ...]],
    *,
    window: tuple[float, float] | None,
    aspect: float,
    title: str,
) -> list[bool]:
    """Draw one slice (black without a ``window``) with its outlines and title.

    Returns whether each mask slice holds its ROI.
    """
    if window is None:
        ax.imshow(image, cmap="gray", vmin=0.0, vmax=1.0, aspect=aspect)
    else:
        level, width = window
        ax.imshow(
            image,
            cmap="gray",
            vmin=level - width / 2,
            vmax=level + width / 2,
            aspect=aspect,
            interpolation="nearest",
        )
    drawn = [
        _draw_outline(ax, np.asarray(plane, dtype=np.float32), colour)
        for plane, colour in zip(planes, colours, strict=True)
    ]
    rows, columns = image.shape
    ax.set_xlim(-0.5, columns - 0.5)
    ax.set_ylim(rows - 0.5, -0.5)
    ax.set_axis_off()
    ax.set_title(title, fontsize=10, color=_TEXT, parse_math=False, usetex=False)
    return drawn


def _add_title(figure: Any, title: str, window: tuple[float, float] | None) -> None:
    """The figure title with a caption: the grey window, or that there is no image."""
    caption = (
        "outlines on black: no image on this grid"
        if window is None
        else f"window level {window[0]:g} / width {window[1]:g}"
    )
    figure.suptitle(
        f"{title}\n{caption}; slice positions along the plane normal",
        fontsize=12,
        color=_TEXT,
        parse_math=False,
        usetex=False,
    )


def _check_shapes(
    images: NDArray[np.floating[Any]] | None,
    masks: Sequence[OverlayMask],
    shape: tuple[int, int, int],
) -> None:
    """Refuse no panel, or images or mask slices that are not ``(panels, rows, columns)``."""
    if shape[0] == 0:
        raise ValueError("an overlay needs at least one slice")
    if images is not None and images.shape != shape:
        raise ValueError(f"images have shape {images.shape}, expected {shape}")
    for name, _, array in masks:
        if array.shape != shape:
            raise ValueError(f"mask slices of {name!r} have shape {array.shape}")


def _draw_outline(ax: Any, plane: NDArray[np.float32], colour: tuple[float, ...]) -> bool:
    """Draw a mask slice's 0.5 outline on ``ax``; True when the slice holds the ROI."""
    if plane.max(initial=0.0) <= 0.5:
        return False
    rows, columns = plane.shape
    # A zero border closes outlines that touch the edge of the image.
    ax.contour(
        np.arange(-1, columns + 1, dtype=np.float64),
        np.arange(-1, rows + 1, dtype=np.float64),
        np.pad(plane, 1),
        levels=[0.5],
        colors=[colour],
        linewidths=1.6,
    )
    return True


def _add_legend(
    figure: Any,
    lines: Any,
    *,
    masks: Sequence[OverlayMask],
    colours: Sequence[tuple[float, ...]],
    shown: Sequence[bool],
    height: float,
) -> None:
    """The ROI legend right of the panels; ROIs on none of the slices say so."""
    labels = [
        _label(name) + ("" if on else " (not on these slices)")
        for (name, _, _), on in zip(masks, shown, strict=True)
    ]
    handles = [lines.Line2D([], [], color=colour, linewidth=3) for colour in colours]
    per_column = max(int(height * _DPI / 20) - 3, 5)
    legend = figure.legend(
        handles,
        labels,
        loc="outside right upper",
        frameon=False,
        fontsize=9,
        labelcolor=_TEXT,
        title="ROIs",
        ncols=math.ceil(len(labels) / per_column),
    )
    legend.get_title().set_color(_TEXT)
    for text in (*legend.get_texts(), legend.get_title()):
        text.set_parse_math(False)
        text.set_usetex(False)
