"""The DVH object: a cumulative dose-volume histogram with its statistics.

The curve is cumulative: ``volume_cm3[i]`` is the volume receiving at least
``dose_gy[i]``. D-values are interpolated linearly on that curve (never read off a bin
edge) and clipped to the sampled minimum and maximum, so D100 is Dmin and D0 is Dmax.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from rtmask._errors import DoseWarning, InvalidInputError
from rtmask._limits import MAX_DVH_BINS

if TYPE_CHECKING:
    from rtmask.dvh._curve import DVHCurve
    from rtmask.dvh._statistics import StatisticValue

__all__ = ["DVH", "REPORT_STATS", "bounded_curve", "cumulative_curve"]

REPORT_STATS = ("D98", "D95", "D50", "D2", "D0.03cc")
"""Statistics of :func:`rtmask.dvh.describe_dvh`, the default of comparisons and writers."""

FloatArray = NDArray[np.float64]


def cumulative_curve(
    doses_gy: ArrayLike,
    weights_cm3: ArrayLike,
    *,
    bin_width_gy: float = 0.01,
    spreads_gy: ArrayLike | None = None,
) -> tuple[FloatArray, FloatArray]:
    """Cumulative DVH of weighted dose samples.

    Parameters
    ----------
    doses_gy
        ``(N,)`` sample doses in Gy (negative values count as 0 Gy).
    weights_cm3
        ``(N,)`` volume each sample stands for, cm3.
    bin_width_gy
        Width of the dose bins, Gy.
    spreads_gy
        ``(N,)`` width (Gy) of the dose range each sample's volume covers: the volume is
        spread uniformly over ``dose +- spread / 2`` (a voxel in a dose gradient), which
        removes the staircase a grid aligned with the gradient would give. Default: 0.

    Returns
    -------
    tuple of ndarray
        ``(B,)`` bin edges from 0 Gy (increasing) and ``(B,)`` volume receiving at least
        each edge's dose in cm3 (non-increasing, 0 at the last edge).
    """
    if not bin_width_gy > 0:
        raise ValueError(f"bin_width_gy must be positive, got {bin_width_gy}")
    doses = np.asarray(doses_gy, dtype=np.float64).reshape(-1)
    weights = np.asarray(weights_cm3, dtype=np.float64).reshape(-1)
    spreads = (
        np.zeros_like(doses)
        if spreads_gy is None
        else np.asarray(spreads_gy, dtype=np.float64).reshape(-1)
    )
    # V(e) = sum(w: low > e) + sum over samples with low <= e < high of w (high - e) / width
    #      = sum(w - rate high: low > e) + sum(rate high - e rate: high > e).
    # Sums by the last edge at or below low or high (no factor, factor -e), as far as the
    # doses can reach; trimmed to the edges once the highest dose is known.
    reach = (
        max(float(doses.max()), 0.0) + 0.5 * max(float(spreads.max()), -float(spreads.min()))
        if doses.size
        else 0.0
    )
    bins = np.floor(reach / bin_width_gy) + 2  # sized before it is allocated
    if not bins <= MAX_DVH_BINS:
        raise InvalidInputError(
            f"doses up to {reach:.4g} Gy in bins of {bin_width_gy:g} Gy need {bins:.3g} bins, "
            f"more than the limit of {MAX_DVH_BINS}; check the dose or give a wider "
            "bin_width_gy"
        )
    sums = np.zeros((2, int(bins)))
    points: list[tuple[FloatArray, FloatArray]] = []  # doses and weights of point samples
    top = 0.0
    scratch = _Scratch.of(min(doses.size, _BLOCK))
    for start in range(0, doses.size, _BLOCK):
        block = slice(start, start + _BLOCK)
        found, block_top = _add_block(
            sums,
            doses[block],
            weights[block],
            spreads[block],
            bin_width_gy=bin_width_gy,
            scratch=scratch,
        )
        top = max(top, block_top)
        if found[0].size:
            points.append(found)
    n_bins = int(np.floor(top / bin_width_gy)) + 1
    edges: FloatArray = np.arange(n_bins + 1, dtype=np.float64) * bin_width_gy
    sums = sums[:, : edges.size]
    if points:  # a point counts at the edges at or below it, decided by comparison
        _, at_or_below = _edges_below(edges, np.concatenate([p[0] for p in points]), bin_width_gy)
        point_weights = np.concatenate([p[1] for p in points])
        sums[0] += np.bincount(at_or_below - 1, weights=point_weights, minlength=edges.size)
    volume = _from_top(sums[0]) - edges * _from_top(sums[1])
    volume = np.maximum(np.minimum.accumulate(volume), 0.0)
    volume[-1] = 0.0
    return edges, np.asarray(volume)


def bounded_curve(
    dose_gy: FloatArray, volume_cm3: FloatArray, min_gy: float, max_gy: float
) -> tuple[FloatArray, FloatArray]:
    """The cumulative curve made one distribution with ``min_gy`` and ``max_gy``.

    ``(B,)`` edges (Gy, increasing from 0) and volumes (cm3) of :func:`cumulative_curve`,
    whose samples' spread can reach below the minimum or beyond the maximum (or stop short
    of it). The volume becomes the total at and below ``min_gy`` and 0 at ``max_gy``:
    edges are kept strictly between the two (but for those of no volume: a curve that
    stops short of the maximum falls linearly to it), ``min_gy`` and ``max_gy`` become
    edges of their own, the edges beyond ``max_gy`` are dropped. Volume the spread put below the
    minimum or above the maximum is thereby moved inside; the curve in between keeps
    its values (clipped to the total), so every D-value lies in ``[min_gy, max_gy]``,
    is read off the curve, and falls as the volume rises.

    Returns
    -------
    tuple of ndarray
        ``(C,)`` edges (Gy) and volumes (cm3), ``C >= 2``.
    """
    total = float(volume_cm3[0])
    low, high = max(float(min_gy), 0.0), max(float(max_gy), 0.0)
    below = dose_gy[dose_gy < low]
    inner = (dose_gy > low) & (dose_gy < high) & (volume_cm3 > 0)
    if high <= low:  # a single dose: all of the volume at it, none above
        high = low + 1e-6 * max(low, 1.0)
    edges = np.concatenate([below, [low], dose_gy[inner], [high]])
    volume = np.concatenate(
        [np.full(below.size + 1, total), np.clip(volume_cm3[inner], 0.0, total), [0.0]]
    )
    return edges, np.asarray(np.minimum.accumulate(volume))


#: Samples per block in :func:`cumulative_curve`.
_BLOCK = 16_384


@dataclass(frozen=True, slots=True)
class _Scratch:
    """Work arrays of :func:`_add_block`, ``(size,)`` each, reused from block to block."""

    floats: tuple[FloatArray, FloatArray, FloatArray, FloatArray, FloatArray]
    low_bin: NDArray[np.intp]
    high_bin: NDArray[np.intp]

    @classmethod
    def of(cls, size: int) -> _Scratch:
        """Uninitialised work arrays for blocks of up to ``size`` samples."""
        floats = (np.empty(size), np.empty(size), np.empty(size), np.empty(size), np.empty(size))
        return cls(floats, np.empty(size, dtype=np.intp), np.empty(size, dtype=np.intp))


def _add_block(
    sums: FloatArray,
    doses: FloatArray,
    weights: FloatArray,
    spreads: FloatArray,
    *,
    bin_width_gy: float,
    scratch: _Scratch,
) -> tuple[tuple[FloatArray, FloatArray], float]:
    """Add the shares of ``(n,)`` samples to ``sums`` ``(2, B)`` (see cumulative_curve).

    Returns the dose (Gy, >= 0) and weight of the samples whose spread is far below a
    bin, left out here: they act as points (which keeps the sums well conditioned); and
    the highest dose reached (Gy). A spread sample's share is continuous in the dose, so
    the last edges at or below its low and high ends are found by division alone (an
    edge tied with an end gives the same share either way).
    """
    n = doses.size
    high, low, rate, rate_high, full = (array[:n] for array in scratch.floats)
    np.abs(spreads, out=high)
    high *= 0.5
    np.subtract(doses, high, out=low)
    np.maximum(low, 0.0, out=low)
    np.add(doses, high, out=high)
    np.maximum(high, 0.0, out=high)
    np.subtract(high, low, out=rate)  # the width, Gy
    point = np.flatnonzero(rate < 1e-3 * bin_width_gy)
    rate[point] = 1.0
    np.divide(weights, rate, out=rate)  # cm3 / Gy
    rate[point] = 0.0
    np.multiply(rate, high, out=rate_high)
    np.subtract(weights, rate_high, out=full)  # the full share, less what high adds back
    full[point] = 0.0
    found = (low[point], weights[point])
    top = float(high.max())
    low_bin, high_bin = scratch.low_bin[:n], scratch.high_bin[:n]
    low_bin[...] = np.divide(low, bin_width_gy, out=low)  # truncation: the floor of >= 0
    high_bin[...] = np.divide(high, bin_width_gy, out=high)
    np.add.at(sums[0], low_bin, full)  # unbuffered: faster than bincount then +=
    np.add.at(sums[0], high_bin, rate_high)
    np.add.at(sums[1], high_bin, rate)
    np.subtract.at(sums[1], low_bin, rate)
    return found, top


def _edges_below(
    edges: FloatArray, values: FloatArray, bin_width_gy: float
) -> tuple[NDArray[np.intp], NDArray[np.intp]]:
    """How many of the uniform ``edges`` lie below each value (< and <=), ``(N,)`` each.

    ``values`` must be >= 0 = ``edges[0]``. Found arithmetically, then corrected against
    the edges themselves, so ties are decided exactly as a comparison would.
    """
    last = edges.size - 1
    k = np.clip(np.floor(values / bin_width_gy), 0, last).astype(np.intp)
    k -= edges[k] > values
    k = np.clip(k, 0, last)
    k += (k < last) & (edges[np.minimum(k + 1, last)] <= values)
    at_or_below = k + 1
    below = at_or_below - (edges[k] == values)
    return below, at_or_below


def _from_top(counts: FloatArray) -> FloatArray:
    """``(B,)`` sum of ``counts`` from each index to the end."""
    return np.asarray(np.cumsum(counts[::-1])[::-1])


def _defined(value: float) -> float | None:
    """``value``, or None for an undefined (NaN) statistic: ``null`` in JSON."""
    return None if math.isnan(value) else value


def _readonly(values: ArrayLike) -> FloatArray:
    array = np.array(values, dtype=np.float64).reshape(-1)
    array.flags.writeable = False
    return array


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class DVH:
    """A cumulative dose-volume histogram of one ROI.

    Parameters
    ----------
    dose_gy
        ``(B,)`` increasing dose bin edges in Gy, starting at 0.
    volume_cm3
        ``(B,)`` volume receiving at least ``dose_gy[i]``, cm3, non-increasing.
    min_gy, max_gy, mean_gy
        Minimum, maximum and volume-weighted mean dose of the samples, Gy.
    roi_number, roi_name, color
        The ROI (colour as RGB 0-255, if known).
    prescription_gy
        Prescription dose for relative doses and V<x>% statistics, if known.
    outside_cm3
        Volume of the ROI outside the dose grid, cm3 (counted in the curve at 0 Gy or
        left out, as the calculation chose).
    warnings
        What changed the result (outside the dose grid, contours left out), one each.
    """

    dose_gy: FloatArray
    volume_cm3: FloatArray
    min_gy: float
    max_gy: float
    mean_gy: float
    roi_number: int
    roi_name: str
    color: tuple[int, int, int] | None = None
    prescription_gy: float | None = None
    outside_cm3: float = 0.0
    warnings: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        dose = _readonly(self.dose_gy)
        volume = _readonly(self.volume_cm3)
        if dose.shape != volume.shape or dose.size < 2:
            raise InvalidInputError(
                f"DVH of ROI {self.roi_number} {self.roi_name!r}: dose_gy ({dose.size}) and "
                f"volume_cm3 ({volume.size}) need the same length, at least 2"
            )
        if np.any(np.diff(dose) <= 0) or np.any(np.diff(volume) > 1e-9 * max(volume[0], 1.0)):
            raise InvalidInputError(
                f"DVH of ROI {self.roi_number} {self.roi_name!r}: dose_gy must increase and "
                "volume_cm3 must not (a cumulative curve)"
            )
        if self.prescription_gy is not None and not self.prescription_gy > 0:
            raise InvalidInputError(f"prescription_gy must be positive, got {self.prescription_gy}")
        object.__setattr__(self, "dose_gy", dose)
        object.__setattr__(self, "volume_cm3", volume)
        object.__setattr__(self, "warnings", tuple(self.warnings))

    # ------------------------------------------------------------------ curves
    @property
    def total_cm3(self) -> float:
        """Volume in the curve (receiving >= 0 Gy), cm3."""
        return float(self.volume_cm3[0])

    # Unit-aware views and constructors live in rtmask.dvh._curve, which imports this
    # module; these methods import it when called.
    def cumulative(self) -> DVHCurve:
        """The curve as a :class:`DVHCurve` (cumulative, Gy, cm3)."""
        from rtmask.dvh._curve import DVHCurve  # noqa: PLC0415 - see above

        return DVHCurve(
            dose_edges=self.dose_gy,
            volume=self.volume_cm3,
            prescription_gy=self.prescription_gy,
            total_cm3=self.total_cm3 if self.total_cm3 > 0 else None,
            roi_number=self.roi_number,
            roi_name=self.roi_name,
            color=self.color,
        )

    def differential(self) -> DVHCurve:
        """Volume (cm3) within each dose bin: ``.dose_centres`` (Gy) and ``.volume``."""
        return self.cumulative().differential()

    def relative_volume(self) -> DVHCurve:
        """The cumulative curve with volumes in % of the total volume."""
        return self.cumulative().relative_volume()

    def absolute_volume(self, total_cm3: float | None = None) -> DVHCurve:
        """The cumulative curve in cm3, rescaled to ``total_cm3`` when given."""
        curve = self.cumulative()
        return curve if total_cm3 is None else curve.relative_volume().absolute_volume(total_cm3)

    def relative_dose(self, rx_gy: float | None = None) -> DVHCurve:
        """The cumulative curve with doses in % of ``rx_gy`` (default ``prescription_gy``)."""
        if rx_gy is None:
            self._prescription("relative doses")
        return self.cumulative().relative_dose(rx_gy)

    def absolute_dose(self) -> DVHCurve:
        """The cumulative curve with doses in Gy (as stored)."""
        return self.cumulative()

    @classmethod
    def from_counts(cls, counts: ArrayLike, bins: ArrayLike, **options: Any) -> DVH:
        """A DVH from histogram counts and bin edges (:func:`rtmask.dvh.dvh_from_counts`)."""
        from rtmask.dvh._curve import dvh_from_counts  # noqa: PLC0415 - see above

        return dvh_from_counts(counts, bins, **options)

    @classmethod
    def from_data(
        cls, doses_gy: ArrayLike, weights_cm3: ArrayLike | None = None, **options: Any
    ) -> DVH:
        """A DVH of dose samples and their volumes (:func:`rtmask.dvh.dvh_from_data`)."""
        from rtmask.dvh._curve import dvh_from_data  # noqa: PLC0415 - see above

        return dvh_from_data(doses_gy, weights_cm3, **options)

    def equals(self, other: object, *, atol: float = 1e-9) -> bool:
        """Same ROI and prescription, curves and min/mean/max equal within ``atol``."""
        if not isinstance(other, DVH):
            return False
        mine = (self.roi_number, self.roi_name, self.prescription_gy)
        return (
            mine == (other.roi_number, other.roi_name, other.prescription_gy)
            and self.dose_gy.shape == other.dose_gy.shape
            and bool(np.allclose(self.dose_gy, other.dose_gy, rtol=0, atol=atol))
            and bool(np.allclose(self.volume_cm3, other.volume_cm3, rtol=0, atol=atol))
            and bool(
                np.allclose(
                    [self.min_gy, self.mean_gy, self.max_gy, self.outside_cm3],
                    [other.min_gy, other.mean_gy, other.max_gy, other.outside_cm3],
                    rtol=0,
                    atol=atol,
                )
            )
        )

    # ------------------------------------------------------------- statistics
    def dose_at_volume(self, volume_cm3: float) -> float:
        """Largest dose (Gy) that at least ``volume_cm3`` receives, interpolated linearly.

        The total volume gives Dmin, a volume of 0 gives Dmax. A volume beyond the total
        (D2cc of a 0.5 cm3 ROI) has no dose: NaN, with a :class:`DoseWarning`.
        """
        volume = float(volume_cm3)
        if volume < 0:
            raise ValueError(f"volume must not be negative, got {volume} cm3")
        if volume > self.total_cm3 * (1.0 + 1e-9):
            warnings.warn(
                f"DVH of ROI {self.roi_number} {self.roi_name!r}: no dose to {volume:g} cm3, "
                f"more than its {self.total_cm3:.4g} cm3; the value is undefined (NaN)",
                DoseWarning,
                stacklevel=2,
            )
            return math.nan
        if volume >= self.total_cm3:
            return self.min_gy
        if volume <= 0:
            return self.max_gy
        curve = self.volume_cm3
        i = int(np.searchsorted(-curve, -volume, side="right")) - 1  # last with V >= volume
        drop = curve[i] - curve[i + 1]
        dose = self.dose_gy[i] + (curve[i] - volume) / drop * (
            self.dose_gy[i + 1] - self.dose_gy[i]
        )
        return float(np.clip(dose, self.min_gy, self.max_gy))

    def dose_at_percent(self, percent: float) -> float:
        """Dose (Gy) that at least ``percent`` % of the volume receives (D95, D2, ...)."""
        if not 0 <= percent <= 100:
            raise ValueError(f"percent must be within 0-100, got {percent}")
        if percent == 100:
            return self.min_gy
        return self.dose_at_volume(self.total_cm3 * percent / 100.0)

    def volume_at_dose(self, dose_gy: float) -> float:
        """Volume (cm3) receiving at least ``dose_gy``, interpolated linearly."""
        return float(np.interp(dose_gy, self.dose_gy, self.volume_cm3, left=self.total_cm3))

    def percent_at_dose(self, dose_gy: float) -> float:
        """Volume (% of the total) receiving at least ``dose_gy``."""
        total = self.total_cm3
        return 0.0 if total <= 0 else 100.0 * self.volume_at_dose(dose_gy) / total

    def _prescription(self, what: str) -> float:
        if self.prescription_gy is None:
            raise InvalidInputError(
                f"DVH of ROI {self.roi_number} {self.roi_name!r}: {what} need a prescription; "
                "give prescription_gy"
            )
        return self.prescription_gy

    def statistic(
        self, name: str, *, volume_units: str | None = None, dose_units: str | None = None
    ) -> float:
        """A statistic by name: D-values in Gy, V-values in cm3 (or as asked).

        ``Dmin``, ``Dmax``, ``Dmean``, ``Dmedian``; ``D95`` (dose to 95 % of the volume),
        ``D2cc`` / ``D0.03cc`` (dose to the hottest 2 / 0.03 cm3); ``V20Gy`` (cm3
        receiving >= 20 Gy); ``V95`` or ``V95%`` (cm3 receiving >= 95 % of the
        prescription). ``V20Gy%`` / ``V95%%`` or ``volume_units="%"``: percent of the
        volume; ``dose_units="%"``: D-values in % of the prescription. Unknown names raise
        ValueError listing the accepted forms (:mod:`rtmask.dvh._statistics`).
        """
        return float(self.statistic_value(name, volume_units=volume_units, dose_units=dose_units))

    def statistic_value(
        self, name: str, *, volume_units: str | None = None, dose_units: str | None = None
    ) -> StatisticValue:
        """:meth:`statistic` with its unit (``float()`` of it is the number)."""
        from rtmask.dvh._statistics import evaluate_statistic  # noqa: PLC0415 - see cumulative

        return evaluate_statistic(self, name, volume_units=volume_units, dose_units=dose_units)

    if not TYPE_CHECKING:  # hidden from mypy, which would otherwise accept any attribute

        def __getattr__(self, name: str) -> StatisticValue:
            """``dvh.D2cc``, ``dvh.V20Gy``, ``dvh.D95``, ``dvh.D0_03cc`` with their units."""
            from rtmask.dvh._statistics import attribute_statistic  # noqa: PLC0415

            return attribute_statistic(self, name)

    def to_dict(self, stats: tuple[str, ...] | list[str] = ()) -> dict[str, Any]:
        """The JSON entry of ``rtmask dvh --json`` for this ROI (Gy and cm3).

        An undefined statistic (a D<x>cc beyond the ROI's volume) is None.
        """
        return {
            "number": int(self.roi_number),
            "name": self.roi_name,
            "volume_cm3": self.total_cm3,
            "min_gy": float(self.min_gy),
            "mean_gy": float(self.mean_gy),
            "max_gy": float(self.max_gy),
            "stats": {name: _defined(self.statistic(name)) for name in stats},
            "curve": {
                "dose_gy": self.dose_gy.tolist(),
                "volume_cm3": self.volume_cm3.tolist(),
            },
        }

    # ---------------------------------------------------------------- reports
    # The reports live in rtmask.dvh._report, which imports this module; these shortcuts
    # import it when called, so the model never depends on its reports at import time.
    def describe(self) -> str:
        """A short text summary (see :func:`rtmask.dvh.describe_dvh`)."""
        from rtmask.dvh._report import describe_dvh  # noqa: PLC0415 - see above

        return describe_dvh(self)

    def compare(self, other: DVH, *, stats: Sequence[str] = REPORT_STATS) -> str:
        """Text table of this DVH and ``other`` side by side, differences ``other - self``."""
        from rtmask.dvh._report import format_comparison  # noqa: PLC0415 - see above

        return format_comparison(self, other, stats=stats)

    def plot(self, path: Path | None = None, *, relative_volume: bool = True) -> None:
        """Draw this DVH: a PNG at ``path`` (:func:`rtmask.dvh.plot_dvhs`), else a window."""
        if path is None:
            from rtmask.dvh._curve import plot_curves  # noqa: PLC0415 - see above

            curve = self.relative_volume() if relative_volume else self.cumulative()
            plot_curves([curve])
            return
        from rtmask.dvh._report import plot_dvhs  # noqa: PLC0415 - see above

        plot_dvhs([self], path, relative_volume=relative_volume)

    def __repr__(self) -> str:
        return (
            f"DVH(roi={self.roi_name!r}, volume_cm3={self.total_cm3:.3f}, "
            f"min_gy={self.min_gy:.3f}, mean_gy={self.mean_gy:.3f}, max_gy={self.max_gy:.3f})"
        )
