"""Reporting DVHs: text summaries, side-by-side comparisons, CSV/JSON/PNG files, indices.

Doses in Gy and volumes in cm3 throughout. Every file is written atomically
(:func:`rtmask._atomic.atomic_path`); plots need matplotlib (the ``plot`` extra) and use no
pyplot state. This module reads DVHs (:mod:`rtmask.dvh._histogram`); the DVH's own report
methods (:meth:`DVH.describe`, ...) import it on first use, never at import time.

Indices (definitions as in the literature, nothing fitted):

- :func:`homogeneity_index`: ``(D2 - D98) / D50`` (ICRU Report 83, 2010, section 3.7.1);
  0 for a perfectly uniform dose.
- :func:`conformity_index`: ``V_presc(body) / V(target)``, the volume receiving at least the
  prescription divided by the target volume (the RTOG conformity index, Shaw et al., Int J
  Radiat Oncol Biol Phys 1993;27:1231; reviewed by Feuvret et al., Int J Radiat Oncol
  Biol Phys 2006;64:333). 1 is ideal only when the prescription isodose also covers the
  target; this simple form does not check coverage (Paddick's index does).
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from rtmask._atomic import atomic_path
from rtmask._errors import InvalidInputError
from rtmask._optional import import_optional
from rtmask.dvh._histogram import DVH, REPORT_STATS
from rtmask.dvh._statistics import statistic_unit

__all__ = [
    "REPORT_STATS",
    "compare_dvhs",
    "conformity_index",
    "describe_dvh",
    "dvh_entries_json",
    "format_comparison",
    "homogeneity_index",
    "plot_dvhs",
    "stat_unit",
    "write_dvh_entries_csv",
    "write_dvhs_csv",
    "write_dvhs_json",
]

_PRESCRIPTION_STATS = ("V95%", "V100%", "V107%")
# Main values: key in DVH.to_dict / CSV column, DVH attribute, label of the comparison table.
_MAIN = (
    ("volume_cm3", "total_cm3", "volume (cm3)"),
    ("min_gy", "min_gy", "min (Gy)"),
    ("mean_gy", "mean_gy", "mean (Gy)"),
    ("max_gy", "max_gy", "max (Gy)"),
)


def stat_unit(name: str) -> str:
    """Unit of a statistic by name: ``"Gy"`` for D-values, ``"cm3"`` or ``"%"`` for V-values."""
    try:
        return statistic_unit(name)
    except ValueError:
        return "cm3" if name.strip().lower().startswith("v") else "Gy"


def _column(name: str) -> str:
    """CSV column of a statistic: ``D95_gy``, ``V20Gy_cm3``, ``V20Gy%_percent``."""
    unit = stat_unit(name)
    return f"{name}_{'percent' if unit == '%' else unit.lower()}"


def _number(value: float | None, form: str = ".3f") -> str:
    """``value`` formatted, or ``-`` when undefined (None or NaN: a D<x>cc beyond the volume)."""
    return "-" if value is None or math.isnan(value) else format(value, form)


def _cell(value: Any) -> Any:
    """A CSV cell: an undefined statistic (None or NaN) is ``-``."""
    return "-" if value is None or (isinstance(value, float) and math.isnan(value)) else value


# ------------------------------------------------------------------------------ text
def describe_dvh(dvh: DVH) -> str:
    """A short multi-line summary: volume, min/mean/max, D-values, prescription V-values.

    The V-values (V95%, V100%, V107% of the prescription, in cm3 and % of the volume) are
    listed only when the DVH knows its prescription.
    """
    title = f"DVH of ROI {dvh.roi_number} {dvh.roi_name!r}"
    if dvh.prescription_gy is not None:
        title += f" (prescription {dvh.prescription_gy:.3f} Gy)"
    rows: list[tuple[str, str]] = [
        ("volume", f"{dvh.total_cm3:.3f} cm3"),
        ("min", f"{dvh.min_gy:.3f} Gy"),
        ("mean", f"{dvh.mean_gy:.3f} Gy"),
        ("max", f"{dvh.max_gy:.3f} Gy"),
    ]
    if dvh.outside_cm3 > 0:
        rows.append(("outside dose", f"{dvh.outside_cm3:.3f} cm3"))
    rows += [(name, f"{_number(dvh.statistic(name))} Gy") for name in REPORT_STATS]
    if dvh.prescription_gy is not None:
        total = dvh.total_cm3
        for name in _PRESCRIPTION_STATS:
            volume = dvh.statistic(name)
            percent = 100.0 * volume / total if total > 0 else 0.0
            rows.append((name, f"{volume:.3f} cm3 ({percent:.2f} % of volume)"))
    width = max(len(label) for label, _ in rows)
    return "\n".join([title, *(f"  {label:<{width}}  {value}" for label, value in rows)])


def compare_dvhs(
    a: DVH, b: DVH, *, stats: Sequence[str] = REPORT_STATS
) -> dict[str, dict[str, float | None]]:
    """Side-by-side values of two DVHs with their differences ``b - a``.

    Returns
    -------
    dict
        Keyed by ``"volume_cm3"``, ``"min_gy"``, ``"mean_gy"``, ``"max_gy"`` and each name
        in ``stats``; each value ``{"a": ..., "b": ..., "difference": b - a,
        "percent": 100 (b - a) / a}`` (Gy or cm3; ``percent`` is None when ``a`` is 0).
    """
    result: dict[str, dict[str, float | None]] = {}
    pairs = [(key, getattr(a, attr), getattr(b, attr)) for key, attr, _ in _MAIN]
    pairs += [(name, a.statistic(name), b.statistic(name)) for name in stats]
    for key, first, second in pairs:
        difference = float(second) - float(first)
        percent = None if first == 0 else 100.0 * difference / abs(float(first))
        result[key] = {
            "a": float(first),
            "b": float(second),
            "difference": difference,
            "percent": percent,
        }
    return result


def format_comparison(a: DVH, b: DVH, *, stats: Sequence[str] = REPORT_STATS) -> str:
    """:func:`compare_dvhs` as a plain-text table: one row per value, differences ``b - a``."""
    values = compare_dvhs(a, b, stats=stats)
    labels = {key: label for key, _, label in _MAIN}
    header = (
        "",
        f"{a.roi_number} {a.roi_name}",
        f"{b.roi_number} {b.roi_name}",
        "difference",
        "difference %",
    )
    rows = [header]
    for key, row in values.items():
        percent = row["percent"]
        rows.append(
            (
                labels.get(key, f"{key} ({stat_unit(key)})"),
                _number(row["a"]),
                _number(row["b"]),
                _number(row["difference"], "+.3f"),
                "-" if percent is None or math.isnan(percent) else f"{percent:+.2f} %",
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = [
        "  ".join(
            cell.ljust(width) if i == 0 else cell.rjust(width)
            for i, (cell, width) in enumerate(zip(row, widths, strict=True))
        ).rstrip()
        for row in rows
    ]
    return "\n".join(lines)


# ----------------------------------------------------------------------------- files
def dvh_entries_json(entries: Iterable[dict[str, Any]]) -> str:
    """The ``rtmask dvh --json`` document ``{"rois": [...]}`` of :meth:`DVH.to_dict` entries."""
    return json.dumps({"rois": list(entries)})


def write_dvhs_json(
    dvhs: Iterable[DVH], path: Path, *, stats: Sequence[str] = REPORT_STATS
) -> None:
    """Write ``{"rois": [DVH.to_dict(stats), ...]}`` (the shape of ``rtmask dvh --json``)."""
    text = dvh_entries_json(dvh.to_dict(tuple(stats)) for dvh in dvhs)
    with atomic_path(Path(path)) as temporary:
        temporary.write_text(text + "\n", encoding="utf-8")


def write_dvhs_csv(dvhs: Iterable[DVH], path: Path, *, stats: Sequence[str] = REPORT_STATS) -> None:
    """Write one CSV row per DVH: number, name, volume_cm3, min/mean/max_gy, statistics.

    Statistic columns are named ``<name>_gy`` or ``<name>_cm3`` (e.g. ``D95_gy``,
    ``V20Gy_cm3``). The curves are not included (use :func:`write_dvhs_json`).
    """
    names = tuple(stats)
    write_dvh_entries_csv(Path(path), [dvh.to_dict(names) for dvh in dvhs], names)


def write_dvh_entries_csv(
    path: Path, entries: Sequence[dict[str, Any]], stats: Sequence[str]
) -> None:
    """Write :meth:`DVH.to_dict` entries as CSV; an ``"embedded"`` entry adds its columns.

    Entries of ``rtmask dvh --embedded`` carry ``"embedded"`` (the planning system's values,
    or None): then every row gets ``embedded_<column>`` cells, empty where None. Entries of
    ``rtmask dvh --roi-map`` carry ``"canonical"``: then a ``canonical`` column follows
    ``name``.
    """
    main = [key for key, _, _ in _MAIN]
    canonical = any("canonical" in entry for entry in entries)
    names = ["number", "name", *(["canonical"] if canonical else [])]
    header = [*names, *main, *(_column(n) for n in stats)]
    embedded = any("embedded" in entry for entry in entries)
    if embedded:
        header += [f"embedded_{key}" for key in main]
        header += [f"embedded_{_column(n)}" for n in stats]
    with atomic_path(path) as temporary, temporary.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        for entry in entries:
            row: list[Any] = [entry.get(key) for key in names]
            row += [entry[key] for key in main] + [_cell(entry["stats"][n]) for n in stats]
            if embedded:
                other = entry.get("embedded")
                if other is None:
                    row += [""] * (len(main) + len(stats))
                else:
                    row += [other[key] for key in main]
                    row += [_cell(other["stats"][n]) for n in stats]
            writer.writerow(row)


def plot_dvhs(dvhs: Iterable[DVH], path: Path, *, relative_volume: bool = True) -> None:
    """Cumulative DVHs on one PNG, in the ROI colours, with a legend.

    Volume in % of each ROI (``relative_volume``) or in cm3; dose in Gy. ROIs without a
    colour, or coloured (near) white, get the next colour of matplotlib's cycle.

    Raises
    ------
    MissingDependencyError
        matplotlib is not installed (``pip install 'rtmask[plot]'``).
    """
    figure_module = import_optional("matplotlib.figure", extra="plot", feature="DVH plots")
    agg = import_optional("matplotlib.backends.backend_agg", extra="plot", feature="DVH plots")
    figure = figure_module.Figure(figsize=(8, 5), dpi=100)
    agg.FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    curves = list(dvhs)
    if not curves:
        raise InvalidInputError(f"{path}: no DVH to plot; give at least one")
    for dvh in curves:
        color = None if dvh.color is None else tuple(c / 255 for c in dvh.color)
        if color is not None and min(color) > 0.9:  # white on white: matplotlib's cycle
            color = None
        volume = dvh.relative_volume().volume if relative_volume else dvh.volume_cm3
        label = f"{dvh.roi_number} {dvh.roi_name}"
        axes.plot(dvh.dose_gy, volume, color=color, label=label, linewidth=1.5)
    axes.set_xlabel("dose (Gy)")
    if relative_volume:
        axes.set_ylabel("volume (%)")
        axes.set_ylim(0, 102)
    else:
        axes.set_ylabel("volume (cm3)")
        axes.set_ylim(bottom=0)
    axes.set_xlim(left=0)
    axes.grid(alpha=0.3)
    axes.legend(loc="upper right", fontsize="small")
    figure.tight_layout()
    with atomic_path(Path(path)) as temporary:
        figure.savefig(temporary, format="png")


# --------------------------------------------------------------------------- indices
def homogeneity_index(dvh: DVH) -> float:
    """ICRU 83 homogeneity index ``(D2 - D98) / D50`` (0 for a uniform dose).

    D-values are interpolated on the cumulative curve (:meth:`DVH.statistic`).
    ICRU Report 83 (J ICRU 2010;10(1)), section 3.7.1.
    """
    d50 = dvh.statistic("D50")
    if not d50 > 0:
        raise InvalidInputError(
            f"DVH of ROI {dvh.roi_number} {dvh.roi_name!r}: D50 is {d50} Gy; the homogeneity "
            "index needs a positive median dose"
        )
    return (dvh.statistic("D2") - dvh.statistic("D98")) / d50


def conformity_index(target: DVH, body: DVH, prescription_gy: float) -> float:
    """RTOG conformity index ``V_presc(body) / V(target)``.

    ``V_presc(body)`` is the volume of ``body`` (a structure enclosing all dose, e.g. the
    external contour) receiving at least ``prescription_gy``; ``V(target)`` is the target
    volume, cm3. Shaw et al., Int J Radiat Oncol Biol Phys 1993;27:1231. It does not
    check that the prescription isodose covers the target (Paddick's index does).
    """
    if not prescription_gy > 0:
        raise InvalidInputError(f"prescription_gy must be positive, got {prescription_gy}")
    if not target.total_cm3 > 0:
        raise InvalidInputError(
            f"DVH of ROI {target.roi_number} {target.roi_name!r}: empty target; the "
            "conformity index needs a positive target volume"
        )
    return body.volume_at_dose(prescription_gy) / target.total_cm3
