"""A DVH curve in stated units, and DVHs built from histograms or from dose samples.

:class:`DVHCurve` is what :meth:`DVH.relative_volume`, :meth:`DVH.relative_dose`,
:meth:`DVH.absolute_dose`, :meth:`DVH.absolute_volume`, :meth:`DVH.cumulative` and
:meth:`DVH.differential` return: the curve with its kind (cumulative or differential),
its dose unit (Gy or % of the prescription) and its volume unit (cm3 or % of the ROI's
volume), which converts between them and back to a :class:`DVH` (:meth:`DVHCurve.to_dvh`).
:func:`dvh_from_counts` and :func:`dvh_from_data` build a DVH from a histogram's counts and
bins, or from dose samples and their volumes.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

from rtmask._atomic import atomic_path
from rtmask._errors import InvalidInputError
from rtmask._optional import import_optional
from rtmask.dvh._histogram import DVH, cumulative_curve

__all__ = ["DVHCurve", "dvh_from_counts", "dvh_from_data", "plot_curves"]

FloatArray = NDArray[np.float64]
Kind = Literal["cumulative", "differential"]

_DOSE_LABELS = {"Gy": "dose (Gy)", "%": "dose (% of prescription)"}
_VOLUME_LABELS = {"cm3": "volume (cm3)", "%": "volume (% of ROI)"}


def _readonly(values: ArrayLike) -> FloatArray:
    array = np.array(values, dtype=np.float64).reshape(-1)
    array.flags.writeable = False
    return array


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class DVHCurve:
    """A dose-volume histogram in stated units (a view of a :class:`DVH`, or a file's).

    Parameters
    ----------
    dose_edges
        ``(B + 1,)`` increasing dose bin edges in ``dose_units``.
    volume
        Cumulative: ``(B + 1,)`` volume receiving at least each edge's dose. Differential:
        ``(B,)`` volume within each bin. In ``volume_units``.
    kind
        ``"cumulative"`` or ``"differential"``.
    dose_units
        ``"Gy"``, or ``"%"`` of ``prescription_gy``.
    volume_units
        ``"cm3"``, or ``"%"`` of ``total_cm3``.
    prescription_gy, total_cm3
        What the percentages refer to, where known (needed to convert back).
    roi_number, roi_name, color
        The ROI, for labels and plots.
    """

    dose_edges: FloatArray
    volume: FloatArray
    kind: Kind = "cumulative"
    dose_units: Literal["Gy", "%"] = "Gy"
    volume_units: Literal["cm3", "%"] = "cm3"
    prescription_gy: float | None = None
    total_cm3: float | None = None
    roi_number: int = 0
    roi_name: str = ""
    color: tuple[int, int, int] | None = None

    def __post_init__(self) -> None:
        edges, volume = _readonly(self.dose_edges), _readonly(self.volume)
        label = f"DVH curve of ROI {self.roi_number} {self.roi_name!r}"
        if self.kind not in ("cumulative", "differential"):
            raise ValueError(f"kind must be 'cumulative' or 'differential', got {self.kind!r}")
        if self.dose_units not in ("Gy", "%") or self.volume_units not in ("cm3", "%"):
            raise ValueError(
                f"dose_units must be 'Gy' or '%' and volume_units 'cm3' or '%', got "
                f"{self.dose_units!r} and {self.volume_units!r}"
            )
        wanted = edges.size - (self.kind == "differential")
        if edges.size < 2 or volume.size != wanted:
            raise InvalidInputError(
                f"{label}: {edges.size} dose edges need {max(wanted, 1)} {self.kind} volumes "
                f"(at least 2 edges), got {volume.size}"
            )
        if not (np.all(np.isfinite(edges)) and np.all(np.isfinite(volume))):
            raise InvalidInputError(f"{label}: doses and volumes must be finite numbers")
        if np.any(np.diff(edges) <= 0) or np.any(volume < 0):
            raise InvalidInputError(f"{label}: dose edges must increase, volumes be >= 0")
        if self.kind == "cumulative" and volume.size > 1:
            # The volume at or above a dose cannot grow with the dose (rounding aside).
            rises = np.flatnonzero(np.diff(volume) > 1e-6 * float(volume.max()))
            if rises.size:
                k = int(rises[0])
                raise InvalidInputError(
                    f"{label}: a cumulative curve cannot rise with dose, but the volume goes "
                    f"from {volume[k]:g} to {volume[k + 1]:g} at edge {k + 1} "
                    f"({edges[k + 1]:g} {self.dose_units}); per-bin volumes are "
                    "kind='differential'"
                )
        for name in ("prescription_gy", "total_cm3"):
            value = getattr(self, name)
            if value is not None and not (np.isfinite(value) and value > 0):
                raise InvalidInputError(f"{label}: {name} must be positive, got {value}")
        object.__setattr__(self, "dose_edges", edges)
        object.__setattr__(self, "volume", volume)

    # ------------------------------------------------------------------ views
    @property
    def dose_centres(self) -> FloatArray:
        """``(B,)`` bin centres in ``dose_units``."""
        return np.asarray((self.dose_edges[1:] + self.dose_edges[:-1]) / 2)

    def cumulative(self) -> DVHCurve:
        """The cumulative curve: volume at or above each edge (last edge 0)."""
        if self.kind == "cumulative":
            return self
        above = np.concatenate([np.cumsum(self.volume[::-1])[::-1], [0.0]])
        return dataclasses.replace(self, volume=above, kind="cumulative")

    def differential(self) -> DVHCurve:
        """The differential curve: volume within each bin."""
        if self.kind == "differential":
            return self
        within = np.maximum(self.volume[:-1] - self.volume[1:], 0.0)
        return dataclasses.replace(self, volume=within, kind="differential")

    def _total(self) -> float:
        """The volume of the curve in ``volume_units``."""
        return float(self.volume[0] if self.kind == "cumulative" else self.volume.sum())

    def relative_volume(self) -> DVHCurve:
        """Volumes in % of the ROI's volume (``total_cm3`` is kept to convert back)."""
        if self.volume_units == "%":
            return self
        total = self._total()
        scale = 100.0 / total if total > 0 else 0.0
        return dataclasses.replace(
            self,
            volume=self.volume * scale,
            volume_units="%",
            total_cm3=total if total > 0 else self.total_cm3,
        )

    def absolute_volume(self, total_cm3: float | None = None) -> DVHCurve:
        """Volumes in cm3; a % curve needs ``total_cm3`` unless it knows its own."""
        if self.volume_units == "cm3":
            return self
        total = self.total_cm3 if total_cm3 is None else float(total_cm3)
        if total is None or not total > 0:
            raise InvalidInputError(
                f"DVH curve of ROI {self.roi_number} {self.roi_name!r}: volumes are in % "
                f"of an unknown volume; give total_cm3 (a positive number, got {total})"
            )
        return dataclasses.replace(
            self, volume=self.volume * (total / 100.0), volume_units="cm3", total_cm3=total
        )

    def relative_dose(self, rx_gy: float | None = None) -> DVHCurve:
        """Doses in % of the prescription (``rx_gy``, default the curve's own)."""
        if self.dose_units == "%":
            return self
        rx = self._rx(rx_gy, "relative doses")
        return dataclasses.replace(
            self, dose_edges=self.dose_edges * (100.0 / rx), dose_units="%", prescription_gy=rx
        )

    def absolute_dose(self, rx_gy: float | None = None) -> DVHCurve:
        """Doses in Gy; a % curve needs the prescription (``rx_gy`` or its own)."""
        if self.dose_units == "Gy":
            return self
        rx = self._rx(rx_gy, "absolute doses of a % curve")
        return dataclasses.replace(
            self, dose_edges=self.dose_edges * (rx / 100.0), dose_units="Gy", prescription_gy=rx
        )

    def _rx(self, rx_gy: float | None, what: str) -> float:
        rx = self.prescription_gy if rx_gy is None else float(rx_gy)
        if rx is None or not (np.isfinite(rx) and rx > 0):
            raise InvalidInputError(
                f"DVH curve of ROI {self.roi_number} {self.roi_name!r}: {what} need a "
                f"prescription; give rx_gy (a positive number of Gy, got {rx})"
            )
        return rx

    def to_dvh(self, *, total_cm3: float | None = None, rx_gy: float | None = None) -> DVH:
        """The :class:`DVH` (cumulative, Gy and cm3) of this curve.

        Dmin is the lowest edge below which no volume lies, Dmax the edge above which none
        does, Dmean the volume-weighted mean of the bin centres.
        """
        absolute = self.absolute_dose(rx_gy).absolute_volume(total_cm3).cumulative()
        return _dvh_of_cumulative(
            absolute.dose_edges,
            absolute.volume,
            prescription_gy=absolute.prescription_gy,
            roi_number=self.roi_number,
            roi_name=self.roi_name,
            color=self.color,
        )

    def equals(self, other: object, *, atol: float = 1e-9) -> bool:
        """Same kind, units and ROI, and curves equal within ``atol`` (in their units)."""
        if not isinstance(other, DVHCurve):
            return False
        same = (self.kind, self.dose_units, self.volume_units, self.roi_number, self.roi_name)
        theirs = (
            other.kind,
            other.dose_units,
            other.volume_units,
            other.roi_number,
            other.roi_name,
        )
        return (
            same == theirs
            and self.volume.shape == other.volume.shape
            and self.dose_edges.shape == other.dose_edges.shape
            and bool(np.allclose(self.dose_edges, other.dose_edges, rtol=0, atol=atol))
            and bool(np.allclose(self.volume, other.volume, rtol=0, atol=atol))
        )

    def plot(self, path: str | Path | None = None) -> None:
        """Draw this curve; to ``path`` (PNG) when given, else in a window (see plot_curves)."""
        plot_curves([self], path)

    def __repr__(self) -> str:
        return (
            f"DVHCurve(roi={self.roi_name!r}, {self.kind}, {self.dose_edges.size - 1} bins "
            f"up to {self.dose_edges[-1]:.4g} {self.dose_units}, volume "
            f"{self._total():.4g} {self.volume_units})"
        )


def _dvh_of_cumulative(edges: FloatArray, volume: FloatArray, **fields: Any) -> DVH:
    """A DVH of a cumulative curve in Gy and cm3, with min/max/mean from the curve."""
    volume = np.maximum(np.minimum.accumulate(volume), 0.0)
    if volume[-1] > 0:  # volume at the last edge: one more (empty) bin above it
        edges = np.append(edges, edges[-1] + (edges[-1] - edges[-2]))
        volume = np.append(volume, 0.0)
    if edges[0] > 0:  # the curve starts at 0 Gy with the whole volume
        edges, volume = np.insert(edges, 0, 0.0), np.insert(volume, 0, volume[0])
    drops = volume[:-1] - volume[1:]
    filled = np.flatnonzero(drops > 0)
    total = float(volume[0])
    if filled.size == 0:
        low = high = mean = 0.0
    else:
        low, high = float(edges[filled[0]]), float(edges[filled[-1] + 1])
        mean = float(np.sum(drops * (edges[1:] + edges[:-1]) / 2) / total)
    return DVH(dose_gy=edges, volume_cm3=volume, min_gy=low, max_gy=high, mean_gy=mean, **fields)


def dvh_from_counts(
    counts: ArrayLike,
    bins: ArrayLike,
    *,
    kind: Kind = "cumulative",
    dose_units: Literal["Gy", "%"] = "Gy",
    volume_units: Literal["cm3", "%"] = "cm3",
    prescription_gy: float | None = None,
    total_cm3: float | None = None,
    roi_number: int = 0,
    roi_name: str = "",
    color: tuple[int, int, int] | None = None,
) -> DVH:
    """A :class:`DVH` from a histogram (dicompyler-core's ``DVH(counts, bins)``).

    Parameters
    ----------
    counts
        Cumulative: ``(B + 1,)`` volume at or above each bin edge, or ``(B,)`` per bin
        (the volume above the last edge is then 0). Differential: ``(B,)`` volume within
        each bin.
    bins
        ``(B + 1,)`` increasing bin edges; a first edge above 0 gets 0 added in front
        (with no volume for a differential, the whole volume for a cumulative curve).
    kind, dose_units, volume_units
        What ``counts`` and ``bins`` are: ``"cumulative"`` or ``"differential"``; ``"Gy"``
        or ``"%"`` (of ``prescription_gy``); ``"cm3"`` or ``"%"`` (of ``total_cm3``).
    prescription_gy, total_cm3
        Needed for % units; the prescription is kept in the DVH either way.
    roi_number, roi_name, color
        Stored in the DVH.
    """
    edges = np.asarray(bins, dtype=np.float64).reshape(-1)
    values = np.asarray(counts, dtype=np.float64).reshape(-1)
    if kind == "cumulative" and values.size == edges.size - 1:
        values = np.append(values, 0.0)
    if edges.size and edges[0] > 0 and kind == "differential":
        edges, values = np.insert(edges, 0, 0.0), np.insert(values, 0, 0.0)
    curve = DVHCurve(
        dose_edges=edges,
        volume=values,
        kind=kind,
        dose_units=dose_units,
        volume_units=volume_units,
        prescription_gy=prescription_gy,
        total_cm3=total_cm3,
        roi_number=roi_number,
        roi_name=roi_name,
        color=color,
    )
    return curve.to_dvh()  # keeps the prescription


def dvh_from_data(
    doses_gy: ArrayLike,
    weights_cm3: ArrayLike | None = None,
    *,
    bin_width_gy: float = 0.01,
    prescription_gy: float | None = None,
    roi_number: int = 0,
    roi_name: str = "",
    color: tuple[int, int, int] | None = None,
) -> DVH:
    """A cumulative :class:`DVH` of dose samples (dicompyler-core's ``DVH.from_data``).

    Parameters
    ----------
    doses_gy
        ``(N,)`` doses in Gy (e.g. the dose at the voxels of a mask; any shape is
        flattened). Negative doses count at 0 Gy.
    weights_cm3
        ``(N,)`` volume of each sample, cm3 (default: 0.001 cm3, i.e. 1 mm3, each).
    bin_width_gy
        Width of the dose bins, Gy.
    prescription_gy, roi_number, roi_name, color
        Stored in the DVH.

    Min, max and mean are those of the samples; the curve counts each sample's volume at
    every edge at or below its dose.
    """
    doses = np.asarray(doses_gy, dtype=np.float64).reshape(-1)
    weights = (
        np.full(doses.shape, 0.001)
        if weights_cm3 is None
        else np.asarray(weights_cm3, dtype=np.float64).reshape(-1)
    )
    label = f"DVH of ROI {roi_number} {roi_name!r}"
    if doses.size == 0 or doses.shape != weights.shape:
        raise InvalidInputError(
            f"{label}: give one weight per dose sample, at least one ({doses.size} doses, "
            f"{weights.size} weights)"
        )
    if not (np.all(np.isfinite(doses)) and np.all(np.isfinite(weights)) and np.all(weights >= 0)):
        raise InvalidInputError(f"{label}: doses must be finite and weights finite and >= 0")
    total = float(weights.sum())
    if not total > 0:
        raise InvalidInputError(f"{label}: the weights add up to no volume")
    clipped = np.maximum(doses, 0.0)
    edges, volume = cumulative_curve(clipped, weights, bin_width_gy=bin_width_gy)
    used = weights > 0
    return DVH(
        dose_gy=edges,
        volume_cm3=volume,
        min_gy=float(clipped[used].min()),
        max_gy=float(clipped[used].max()),
        mean_gy=float(np.dot(clipped, weights) / total),
        roi_number=roi_number,
        roi_name=roi_name,
        color=color,
        prescription_gy=prescription_gy,
    )


def plot_curves(
    curves: Sequence[DVHCurve], path: str | Path | None = None, *, title: str | None = None
) -> None:
    """Draw DVH curves on one set of axes, labelled with their units.

    With ``path`` the figure is written there (PNG, atomically); without, it is shown in a
    window (``matplotlib.pyplot.show``). Differential curves are drawn as steps. All
    curves must share their dose and volume units.

    Raises
    ------
    MissingDependencyError
        matplotlib is not installed (``pip install 'rtmask[plot]'``).
    """
    if not curves:
        raise InvalidInputError("no DVH curve to plot; give at least one")
    units = {(c.dose_units, c.volume_units) for c in curves}
    if len(units) > 1:
        raise InvalidInputError(
            f"DVH curves in different units cannot share axes: {sorted(units)}; convert them "
            "first (relative_volume(), absolute_dose(), ...)"
        )
    feature = "DVH plots"
    if path is None:
        pyplot = import_optional("matplotlib.pyplot", extra="plot", feature=feature)
        figure = pyplot.figure(figsize=(8, 5))
    else:
        figure_module = import_optional("matplotlib.figure", extra="plot", feature=feature)
        agg = import_optional("matplotlib.backends.backend_agg", extra="plot", feature=feature)
        figure = figure_module.Figure(figsize=(8, 5), dpi=100)
        agg.FigureCanvasAgg(figure)
    _draw(figure.add_subplot(), curves, title)
    figure.tight_layout()
    if path is None:
        pyplot.show()
        pyplot.close(figure)
        return
    with atomic_path(Path(path)) as temporary:
        figure.savefig(temporary, format="png")


def _draw(axes: Any, curves: Sequence[DVHCurve], title: str | None) -> None:
    for curve in curves:
        color = None if curve.color is None else tuple(c / 255 for c in curve.color)
        if color is not None and min(color) > 0.9:  # white on white: matplotlib's cycle
            color = None
        label = f"{curve.roi_number} {curve.roi_name}"
        if curve.kind == "cumulative":
            axes.plot(curve.dose_edges, curve.volume, color=color, label=label, linewidth=1.5)
        else:
            axes.stairs(curve.volume, curve.dose_edges, color=color, label=label, linewidth=1.5)
    axes.set_xlabel(_DOSE_LABELS[curves[0].dose_units])
    axes.set_ylabel(_VOLUME_LABELS[curves[0].volume_units])
    axes.set_xlim(left=0)
    axes.set_ylim(bottom=0)
    axes.grid(alpha=0.3)
    axes.legend(loc="upper right", fontsize="small")
    if title:
        axes.set_title(title)
