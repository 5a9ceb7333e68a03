"""Dose pictures: a colour wash and isodose lines over the image, with ROI outlines.

One panel per plane (axial, coronal or sagittal), drawn in patient millimetres as
radiotherapy viewers show them: axial with the patient's right on the left of the picture
and anterior up, coronal and sagittal with superior up. matplotlib (the ``plot`` extra) is
imported on first use and drawn with the Agg canvas (no pyplot, no global state).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from rtmask._atomic import atomic_path
from rtmask._errors import GeometryError, InvalidInputError
from rtmask._optional import import_optional
from rtmask.dose import DoseGrid, DosePlane, image_plane, isodose_lines
from rtmask.dose._planes import PlaneAxis
from rtmask.export._overlay import PALETTE
from rtmask.geometry import ImageGrid
from rtmask.raster import rasterize
from rtmask.rtstruct import ROI

__all__ = ["DoseView", "IsodoseLevel", "ViewPanel", "choose_view_positions", "write_dose_view"]

FloatArray = NDArray[np.float64]

#: Patient coordinates (LPS index) across and up each kind of panel.
_DISPLAY = {"axial": (0, 1), "coronal": (0, 2), "sagittal": (1, 2)}
_PANEL_IN = 6.0
_LEGEND_IN = 2.4
_HEIGHT_IN = 6.8
_DPI = 100
_WASH_ALPHA = 0.45
#: The wash is drawn on a grid this many times finer (linear interpolation): its edge at
#: the lowest level then follows the isodose line instead of the dose voxels' steps.
_WASH_REFINE = 4
_BACKGROUND = "#161616"
_TEXT = "#f0f0f0"
_COLOURMAP = "jet"


@dataclass(frozen=True, slots=True, kw_only=True)
class IsodoseLevel:
    """An isodose level: ``dose_gy`` and how the legend names it (``"95 % (57 Gy)"``)."""

    dose_gy: float
    label: str


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class ViewPanel:
    """Where one panel of a written picture shows patient space.

    Parameters
    ----------
    axis, position_mm
        The plane shown.
    pixel_affine
        ``(2, 3)``: PNG pixel ``(column, row)`` = ``pixel_affine @ (h, v, 1)`` for the
        patient coordinates ``h`` across and ``v`` up the panel (see ``coordinates``).
    coordinates
        LPS indices (0 x, 1 y, 2 z) of ``h`` and ``v``.
    """

    axis: PlaneAxis
    position_mm: float
    pixel_affine: FloatArray
    coordinates: tuple[int, int]

    def pixel_of(self, points_mm: FloatArray) -> FloatArray:
        """PNG ``(column, row)`` pixel positions of ``(N, 3)`` LPS points on the plane."""
        points = np.asarray(points_mm, dtype=np.float64).reshape(-1, 3)
        h, v = points[:, self.coordinates[0]], points[:, self.coordinates[1]]
        pixels: FloatArray = (self.pixel_affine @ np.stack([h, v, np.ones_like(h)])).T
        return pixels


@dataclass(frozen=True, slots=True, kw_only=True)
class DoseView:
    """What :func:`write_dose_view` wrote: the PNG, its size and its panels."""

    path: Path
    width_px: int
    height_px: int
    panels: tuple[ViewPanel, ...]
    levels: tuple[IsodoseLevel, ...]


def choose_view_positions(
    dose: DoseGrid, axis: PlaneAxis, *, target: ROI | None = None
) -> tuple[float, ...]:
    """Planes worth showing: through the dose maximum, and the target's centre if given.

    Positions are patient coordinates (z axial, y coronal, x sagittal) in mm; the
    target's centre (mean of its contour points) is added when it lies in the dose grid
    and more than one dose voxel away from the maximum's plane.
    """
    coordinate = {"sagittal": 0, "coronal": 1, "axial": 2}[axis]
    hottest = np.unravel_index(int(np.argmax(dose.dose_gy)), dose.shape)
    point = dose.grid.index_to_patient(np.asarray(hottest, dtype=np.float64))[0]
    positions = [float(point[coordinate])]
    if target is not None:
        points = [c.points_mm for c in target.contours if c.geometric_type.encloses_volume]
        if points:
            centre = float(np.concatenate(points)[:, coordinate].mean())
            corners = dose.grid.index_to_patient(
                np.array([[0.0, 0, 0], np.subtract(dose.shape, 1)])
            )
            low, high = sorted(corners[:, coordinate])
            if low <= centre <= high and abs(centre - positions[0]) > max(dose.grid.spacing_mm):
                positions.append(centre)
    return tuple(sorted(positions))


def _display(plane: DosePlane, axis: PlaneAxis) -> tuple[FloatArray, FloatArray, FloatArray]:
    """The plane as ``(v, h)`` array with increasing ``h`` and ``v`` sample coordinates."""
    across, up = _DISPLAY[axis]
    points = plane.points_mm()
    values = np.asarray(plane.dose_gy)
    if abs(plane.row_direction[across]) < abs(plane.column_direction[across]):
        values, points = values.T, points.transpose(1, 0, 2)
    h, v = points[0, :, across], points[:, 0, up]
    if h.size > 1 and h[1] < h[0]:
        values, h = values[:, ::-1], h[::-1]
    if v.size > 1 and v[1] < v[0]:
        values, v = values[::-1], v[::-1]
    return values, np.asarray(h), np.asarray(v)


def _refine(
    values: FloatArray, h: FloatArray, v: FloatArray
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """``values`` linearly interpolated on a grid ``_WASH_REFINE`` times finer."""

    def along(
        array: FloatArray, coordinates: FloatArray, axis: int
    ) -> tuple[FloatArray, FloatArray]:
        n = array.shape[axis]
        if n < 2:
            return array, coordinates
        position = np.linspace(0.0, n - 1.0, (n - 1) * _WASH_REFINE + 1)
        low = np.minimum(np.floor(position).astype(np.intp), n - 2)
        t = position - low
        shape = [1, 1]
        shape[axis] = -1
        first, second = np.take(array, low, axis=axis), np.take(array, low + 1, axis=axis)
        finer = first + t.reshape(shape) * (second - first)
        return finer, np.interp(position, np.arange(n), coordinates)

    finer, fine_v = along(values, v, 0)
    finer, fine_h = along(finer, h, 1)
    return finer, fine_h, fine_v


def _extent(h: FloatArray, v: FloatArray) -> tuple[float, float, float, float]:
    """The imshow extent: sample centres at their coordinates, half a sample around."""
    dh = float(np.mean(np.diff(h))) if h.size > 1 else 1.0
    dv = float(np.mean(np.diff(v))) if v.size > 1 else 1.0
    return (h[0] - dh / 2, h[-1] + dh / 2, v[0] - dv / 2, v[-1] + dv / 2)


def _roi_rings(roi: ROI, dose: DoseGrid, plane: DosePlane, axis: PlaneAxis) -> list[FloatArray]:
    """A ROI's outline on ``plane``: its contours on an axial plane, else a mask section."""
    closed = [c for c in roi.contours if c.geometric_type.encloses_volume and c.n_points > 2]
    if not closed:
        return []
    normal = np.cross(
        closed[0].points_mm[1] - closed[0].points_mm[0],
        closed[0].points_mm[2] - closed[0].points_mm[0],
    )
    if axis == "axial" and abs(normal[2]) > 0.999 * np.linalg.norm(normal) > 0:
        planes = np.array([float(c.points_mm[0, 2]) for c in closed])
        gaps = np.diff(np.unique(planes))
        half = float(gaps.min()) / 2 if gaps.size else 0.5 * dose.grid.spacing_mm[0]
        nearest = planes[np.argmin(np.abs(planes - plane.position_mm))]
        if abs(nearest - plane.position_mm) > half + 1e-6:
            return []
        return [c.points_mm for c, z in zip(closed, planes, strict=True) if z == nearest]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the contours were checked when they were read
        mask = rasterize(roi, dose.grid, slice_mode="slab", fractional=4, on_invalid="ignore")
    section = DoseGrid(dose_gy=np.asarray(mask.array, dtype=np.float64), grid=dose.grid)
    return isodose_lines(0.5, section.plane(plane.position_mm, axis))


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class _Layers:
    """What every panel draws: dose, image, levels, ROIs and their colours."""

    dose: DoseGrid
    axis: PlaneAxis
    levels: tuple[IsodoseLevel, ...]
    image: tuple[NDArray[Any], ImageGrid] | None
    window: tuple[float, float]
    rois: tuple[ROI, ...]
    colours: tuple[tuple[float, ...], ...]
    wash_from_gy: float


def _check_frames(dose: DoseGrid, image: ImageGrid | None, rois: Sequence[ROI]) -> None:
    """Refuse an image or ROIs in another frame of reference than the dose."""
    frame = dose.grid.frame_of_reference_uid
    where = f"{dose.source}: " if dose.source else ""
    others = [("the image series", image.frame_of_reference_uid if image else None)]
    others += [(f"ROI {r.number} {r.name!r}", r.frame_of_reference_uid) for r in rois]
    for what, other in others:
        if frame and other and other != frame:
            raise GeometryError(
                f"{where}the dose's frame of reference {frame} differs from that of {what} "
                f"({other}); give the image series and structure set of this dose"
            )


def _draw_panel(ax: Any, layers: _Layers, position: float, colours: Any) -> None:
    """One plane: image, dose wash, isodose lines, ROI outlines."""
    plane = layers.dose.plane(position, layers.axis)
    dose_values, h, v = _display(plane, layers.axis)
    extent = _extent(h, v)
    ax.set_facecolor("black")
    if layers.image is not None:
        cut = image_plane(*layers.image, position, layers.axis)
        if cut is not None:
            values, ih, iv = _display(cut, layers.axis)
            image_extent = _extent(ih, iv)
            extent = (  # the box holding both: a thin image must not squash the dose
                min(extent[0], image_extent[0]),
                max(extent[1], image_extent[1]),
                min(extent[2], image_extent[2]),
                max(extent[3], image_extent[3]),
            )
            level, width = layers.window
            ax.imshow(
                values,
                cmap="gray",
                vmin=level - width / 2,
                vmax=level + width / 2,
                extent=image_extent,
                origin="lower",
                interpolation="nearest",
            )
    fine, fine_h, fine_v = _refine(dose_values, h, v)
    ax.imshow(
        np.ma.masked_less(fine, layers.wash_from_gy),  # the wash starts at the lowest level
        cmap=_COLOURMAP,
        norm=colours,
        alpha=_WASH_ALPHA,
        extent=_extent(fine_h, fine_v),
        origin="lower",
        interpolation="nearest",
    )
    across, up = _DISPLAY[layers.axis]
    for isodose in layers.levels:
        colour = _level_colour(colours, isodose.dose_gy)
        for ring in isodose_lines(isodose.dose_gy, plane):
            closed = np.vstack([ring, ring[:1]])
            ax.plot(closed[:, across], closed[:, up], color=colour, linewidth=1.5)
    for roi, colour in zip(layers.rois, layers.colours, strict=True):
        for ring in _roi_rings(roi, layers.dose, plane, layers.axis):
            closed = np.vstack([ring, ring[:1]])
            ax.plot(closed[:, across], closed[:, up], color=colour, linewidth=1.0)
    ax.set_xlim(extent[0], extent[1])
    ax.set_ylim(extent[2], extent[3])
    if layers.axis == "axial":
        ax.invert_yaxis()  # posterior (larger y) down
    ax.set_aspect("equal")
    ax.set_axis_off()
    name = "xyz"[{"axial": 2, "coronal": 1, "sagittal": 0}[layers.axis]]
    ax.set_title(f"{layers.axis} {name} = {position:+.1f} mm", fontsize=10, color=_TEXT)


def _level_colour(norm: Any, dose_gy: float) -> tuple[float, ...]:
    """The wash's colour at ``dose_gy``: lines match the colour bar."""
    colormaps = import_optional("matplotlib", extra="plot", feature="dose pictures").colormaps
    return tuple(colormaps[_COLOURMAP](float(norm(dose_gy))))


def write_dose_view(
    path: str | Path,
    dose: DoseGrid,
    *,
    axis: PlaneAxis = "axial",
    positions_mm: Sequence[float] | None = None,
    levels: Sequence[IsodoseLevel] = (),
    image: tuple[NDArray[Any], ImageGrid] | None = None,
    window: tuple[float, float] = (40.0, 400.0),
    rois: Sequence[ROI] = (),
    title: str = "",
) -> DoseView:
    """Draw the dose as a colour wash with isodose lines over the image and ROI outlines.

    Parameters
    ----------
    path
        The ``.png`` to write (atomically); its folder must exist.
    dose
        The dose; its grid's axes must lie along the patient axes.
    axis
        ``"axial"``, ``"coronal"`` or ``"sagittal"`` panels.
    positions_mm
        The planes (z, y or x in mm), one panel each; default
        :func:`choose_view_positions` (the dose maximum).
    levels
        Isodose lines; the wash starts at the lowest level (10 % of the maximum without
        levels).
    image
        ``(values, grid)``: the image volume (HU for CT), ``grid.shape``; the nearest
        image plane is shown under the dose (none: black).
    window
        Grey window ``(level, width)`` of the image.
    rois
        ROIs to outline (their contours on an axial plane; a section of their mask on the
        dose grid otherwise).
    title
        First line of the figure title.

    Raises
    ------
    MissingDependencyError
        matplotlib is not installed.
    GeometryError
        The image or a ROI is in another frame of reference; an oblique dose grid.
    InvalidInputError
        A position outside the dose grid, or no position.
    """
    figure_module = import_optional("matplotlib.figure", extra="plot", feature="dose pictures")
    agg = import_optional("matplotlib.backends.backend_agg", extra="plot", feature="dose pictures")
    colors = import_optional("matplotlib.colors", extra="plot", feature="dose pictures")
    _check_frames(dose, image[1] if image else None, rois)
    positions = (
        tuple(positions_mm) if positions_mm is not None else choose_view_positions(dose, axis)
    )
    if not positions:
        raise InvalidInputError("a dose picture needs at least one plane position")
    levels = tuple(sorted(levels, key=lambda lv: -lv.dose_gy))
    layers = _Layers(
        dose=dose,
        axis=axis,
        levels=levels,
        image=image,
        window=window,
        rois=tuple(rois),
        colours=tuple(
            tuple(c / 255 for c in (r.color or PALETTE[i % len(PALETTE)]))
            for i, r in enumerate(rois)
        ),
        wash_from_gy=min((lv.dose_gy for lv in levels), default=0.1 * dose.max_gy),
    )
    width_in = _PANEL_IN * len(positions) + _LEGEND_IN
    figure = figure_module.Figure(
        figsize=(width_in, _HEIGHT_IN), dpi=_DPI, layout="constrained", facecolor=_BACKGROUND
    )
    agg.FigureCanvasAgg(figure)
    axes = figure.subplots(1, len(positions), squeeze=False)[0]
    norm = colors.Normalize(vmin=0.0, vmax=max(dose.max_gy, 1e-9))
    for ax, position in zip(axes, positions, strict=True):
        _draw_panel(ax, layers, float(position), norm)
    _finish(figure, axes, layers, norm, title=title)
    figure.canvas.draw()
    width_px, height_px = (round(n) for n in figure.canvas.get_width_height())
    panels = tuple(
        _panel(ax, axis, float(position), height_px)
        for ax, position in zip(axes, positions, strict=True)
    )
    final = Path(path)
    with atomic_path(final) as temporary, warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Glyph .* missing", category=UserWarning)
        figure.savefig(temporary, format="png", dpi=_DPI, facecolor=_BACKGROUND)
    return DoseView(
        path=final, width_px=width_px, height_px=height_px, panels=panels, levels=levels
    )


def _panel(ax: Any, axis: PlaneAxis, position: float, height_px: int) -> ViewPanel:
    """Where ``ax`` puts patient coordinates in the PNG, from its data transform."""
    corners = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    display = np.asarray(ax.transData.transform(corners))
    display[:, 1] = height_px - display[:, 1]  # PNG rows run down
    origin = display[0]
    affine = np.column_stack([display[1] - origin, display[2] - origin, origin])
    return ViewPanel(
        axis=axis, position_mm=position, pixel_affine=affine, coordinates=_DISPLAY[axis]
    )


def _finish(figure: Any, axes: Any, layers: _Layers, norm: Any, *, title: str) -> None:
    """Colour bar, legend (isodose levels, then ROIs) and the figure title."""
    scalar = import_optional("matplotlib.cm", extra="plot", feature="dose pictures")
    lines = import_optional("matplotlib.lines", extra="plot", feature="dose pictures")
    mappable = scalar.ScalarMappable(norm=norm, cmap=_COLOURMAP)
    bar = figure.colorbar(mappable, ax=list(axes), shrink=0.8, pad=0.01)
    bar.set_label("dose (Gy)", color=_TEXT)
    bar.ax.tick_params(colors=_TEXT)
    handles = [
        lines.Line2D([], [], color=_level_colour(norm, lv.dose_gy), linewidth=2)
        for lv in layers.levels
    ]
    handles += [lines.Line2D([], [], color=c, linewidth=2) for c in layers.colours]
    labels = [lv.label for lv in layers.levels] + [_short(r.name) for r in layers.rois]
    if handles:
        legend = figure.legend(
            handles,
            labels,
            loc="outside right upper",
            frameon=False,
            fontsize=9,
            labelcolor=_TEXT,
            ncols=math.ceil(len(labels) / 30),
        )
        for text in legend.get_texts():
            text.set_parse_math(False)
    level, width = layers.window
    caption = (
        f"window level {level:g} / width {width:g}; " if layers.image is not None else ""
    ) + f"dose max {layers.dose.max_gy:.4g} Gy"
    figure.suptitle(
        f"{title}\n{caption}" if title else caption,
        fontsize=12,
        color=_TEXT,
        parse_math=False,
        usetex=False,
    )


def _short(name: str) -> str:
    flat = " ".join(name.split()) or "(no name)"
    return flat if len(flat) <= 30 else flat[:29] + "…"
