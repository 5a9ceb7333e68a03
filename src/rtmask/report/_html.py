"""The QA report: one self-contained HTML page (inline style and script, PNG data URIs).

The page loads nothing from anywhere (its Content-Security-Policy forbids it), so it works
offline and can be mailed or archived as one file. Every text from the data (patient IDs,
ROI names, error messages) is HTML-escaped.
"""

from __future__ import annotations

import base64
import dataclasses
import html
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from rtmask._atomic import atomic_path
from rtmask._version import __version__
from rtmask.errors import InvalidInputError
from rtmask.report._assets import SCRIPT, STYLE
from rtmask.report._checks import (
    MIN_CASES,
    Z_THRESHOLD,
    DuplicateName,
    MissingRoi,
    Outlier,
    find_duplicates,
    find_missing,
    find_outliers,
)
from rtmask.report._png import CT_WINDOW
from rtmask.report._read import ReportCase, ReportSource, read_source
from rtmask.report._views import CaseViews, case_views

__all__ = ["ReportSummary", "write_report"]

#: Statuses of a case that did not give a result.
FAILED_STATUSES = ("failed", "excluded")
_CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'; script-src 'unsafe-inline'"


class Swatch(str):
    """A cell showing a colour (``#rrggbb``) as a small square."""

    __slots__ = ()


class Link(str):
    """A cell whose text links to an anchor of the page (``target``, without ``#``)."""

    target = ""

    def __new__(cls, text: str, target: str) -> Link:
        link = super().__new__(cls, text)
        link.target = target
        return link


#: A cell: its text and, for numbers, the value it sorts by.
Cell = tuple[str, float | None]


@dataclass(frozen=True, slots=True, kw_only=True)
class ReportSummary:
    """What :func:`write_report` wrote: the page and the counts it shows."""

    path: Path
    kind: str
    cases: int
    detailed: int
    failed: int
    outliers: int
    missing: int
    duplicates: int
    seconds: float


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def _text(value: str) -> Cell:
    return value, None


def _num(value: float | None, digits: int = 2) -> Cell:
    if value is None:
        return "", None
    shown = f"{value:.0f}" if float(value).is_integer() and digits else f"{value:.{digits}f}"
    return shown, float(value)


def _table(
    table_id: str,
    headers: Sequence[str],
    rows: Iterable[tuple[Sequence[Cell], str]],
    *,
    filter_label: str | None = None,
) -> str:
    """A sortable table (and its filter box when ``filter_label`` is given)."""
    parts = []
    if filter_label is not None:
        parts.append(
            f'<p><input type="search" id="{table_id}-filter" data-filter="{table_id}" '
            f'placeholder="{_e(filter_label)}" aria-label="{_e(filter_label)}">'
            f'<span class="count" id="{table_id}-filter-count"></span></p>'
        )
    parts.append(f'<table class="sortable" id="{table_id}"><thead><tr>')
    parts.extend(f"<th>{_e(h)}</th>" for h in headers)
    parts.append("</tr></thead><tbody>")
    for cells, css in rows:
        parts.append(f'<tr class="{_e(css)}">' if css else "<tr>")
        for text, value in cells:
            if isinstance(text, Swatch):
                parts.append(
                    f'<td data-value="" title="{_e(text)}"><span class="swatch" '
                    f'style="background:{_e(text)}"></span>{_e(text)}</td>'
                )
            elif isinstance(text, Link):
                parts.append(f'<td><a href="#{_e(text.target)}">{_e(text)}</a></td>')
            elif value is None:
                parts.append(f"<td>{_e(text)}</td>")
            else:
                parts.append(f'<td class="num" data-value="{value!r}">{_e(text)}</td>')
        parts.append("</tr>")
    parts.append("</tbody></table>")
    return "".join(parts)


def _case_anchor(index: int) -> str:
    return f"case-{index + 1}"


def _cases_table(cases: Sequence[ReportCase]) -> str:
    """One row per case; a drawn case's output links to its section."""
    rows = []
    drawn = 0
    for case in cases:
        output: Cell = _text(case.output)
        if case.detailed:
            output = Link(case.output or "(details)", _case_anchor(drawn)), None
            drawn += 1
        rows.append(
            (
                [
                    _text(case.patient_id),
                    _text(case.status),
                    _text(case.structure_set),
                    output,
                    _num(
                        float(sum(1 for r in case.rois if r.voxel_count)) if case.detailed else None
                    ),
                    _text(case.error),
                ],
                case.status,
            )
        )
    headers = ("Patient ID", "Status", "Structure set", "Output", "ROIs with voxels", "Error")
    return _table("cases", headers, rows, filter_label="filter cases (any text)")


def _outliers_table(outliers: Sequence[Outlier]) -> str:
    rows = (
        (
            [
                _text(o.key),
                _text(o.case.patient_id),
                _text(o.case.output),
                _text(o.roi.name),
                _num(o.volume_cm3, 3),
                _num(o.median_cm3, 3),
                _num(o.mad_cm3, 3),
                _num(o.z, 2),
            ],
            "",
        )
        for o in outliers
    )
    headers = ("ROI", "Patient ID", "Output", "Name", "Volume cm3", "Median cm3", "MAD cm3", "z")
    return _table("outliers", headers, rows, filter_label="filter outliers")


def _missing_table(missing: Sequence[MissingRoi]) -> str:
    rows = (
        ([_text(m.case.patient_id), _text(m.case.output), _text(", ".join(m.keys))], "")
        for m in missing
    )
    return _table(
        "missing", ("Patient ID", "Output", "Missing ROIs"), rows, filter_label="filter missing"
    )


def _duplicates_table(duplicates: Sequence[DuplicateName]) -> str:
    rows = (
        (
            [
                _text("in one case" if d.kind == "duplicate" else "spellings across cases"),
                _text(d.key),
                _text(" | ".join(d.names)),
                _text("" if d.case is None else d.case.patient_id),
                _text("" if d.case is None else d.case.output),
            ],
            "",
        )
        for d in duplicates
    )
    headers = ("Kind", "Name", "Names as written", "Patient ID", "Output")
    return _table("names", headers, rows, filter_label="filter names")


def _failed_heading(cases: Sequence[ReportCase]) -> str:
    """``Failed cases (N)``, and the excluded ones counted apart (a data set's)."""
    failed = sum(1 for c in cases if c.status == "failed")
    excluded = sum(1 for c in cases if c.status == "excluded")
    heading = f"Failed cases ({failed})"
    if excluded:
        heading += f" and excluded cases ({excluded})"
    return f"<h2>{heading}</h2>"


def _failed_table(cases: Sequence[ReportCase]) -> str:
    rows = (
        (
            [_text(c.patient_id), _text(c.status), _text(c.structure_set), _text(c.error)],
            c.status,
        )
        for c in cases
        if c.status in FAILED_STATUSES
    )
    headers = ("Patient ID", "Status", "Structure set", "Error")
    return _table("failed", headers, rows, filter_label="filter failures")


def _roi_rows(case: ReportCase) -> Iterable[tuple[Sequence[Cell], str]]:
    for roi in case.rois:
        yield (
            [
                (Swatch("#{:02x}{:02x}{:02x}".format(*roi.color)), None),
                _text(roi.canonical or ""),
                _text(roi.name),
                _text(roi.status),
                _num(roi.voxel_count, 1),
                _num(roi.volume_cm3, 3),
                _text(" | ".join(roi.warnings)),
            ],
            "",
        )


def _case_section(index: int, case: ReportCase, views: CaseViews) -> str:
    pictures = "".join(
        f'<figure><img alt="{_e(label)}" src="data:image/png;base64,'
        f'{base64.b64encode(png).decode("ascii")}"><figcaption>{_e(label)}</figcaption></figure>'
        for label, png in views.pictures
    )
    table = _table(
        f"rois-{index + 1}",
        ("Colour", "Canonical", "Name", "Status", "Voxels", "Volume cm3", "Warnings"),
        _roi_rows(case),
    )
    notes = [*case.warnings, *views.notes]
    listed = "".join(f"<li>{_e(n)}</li>" for n in notes)
    return (
        f'<section class="case" id="{_case_anchor(index)}"><h3>{_e(case.patient_id)} '
        f"&middot; {_e(case.output)} &middot; {_e(case.status)}</h3>"
        f'<div class="strip">{pictures}</div>{table}'
        + (f'<ul class="notes warn">{listed}</ul>' if listed else "")
        + "</section>"
    )


def _header(source: ReportSource, cases: Sequence[ReportCase]) -> str:
    counts: dict[str, int] = {}
    for case in cases:
        counts[case.status] = counts.get(case.status, 0) + 1
    tally = ", ".join(f"{n} {_e(status)}" for status, n in sorted(counts.items()))
    notes = "".join(f"<li>{_e(n)}</li>" for n in source.notes)
    level, width = CT_WINDOW
    return (
        f"<h1>rtmask QA report</h1><p>{_e(source.kind)} <code>{_e(source.folder)}</code>: "
        f"{len(cases)} case(s): {tally or 'none'}.</p>"
        f'<p class="notes">Volume outliers: robust z-score 0.6745 (v &minus; median) / MAD '
        f"per canonical ROI (Iglewicz &amp; Hoaglin), |z| &gt; {Z_THRESHOLD} with at least "
        f"{MIN_CASES} cases; mean absolute deviation &times; 1.2533 when the MAD is 0. "
        f"Thumbnails: axial, coronal and sagittal planes through the centre of mass of all "
        f"ROIs, patient's right on the left; CT window level {level:.0f} HU, width "
        f"{width:.0f} HU (other images: 1st to 99th percentile). rtmask {_e(__version__)}."
        f"</p>" + (f'<ul class="notes warn">{notes}</ul>' if notes else "")
    )


def _page(source: ReportSource, body: Sequence[str]) -> str:
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{_CSP}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>rtmask QA report: {_e(source.folder.name)}</title>"
        f"<style>{STYLE}</style></head><body>{''.join(body)}"
        f"<script>{SCRIPT}</script></body></html>\n"
    )


def _check_output(output: Path) -> None:
    if output.is_dir():
        raise InvalidInputError(f"{output}: is a folder; give the report's file name (-o)")
    if output.suffix.lower() not in (".html", ".htm"):
        raise InvalidInputError(f"{output}: the report is an HTML page; give a name ending .html")


def write_report(
    folder: Path,
    output: Path,
    *,
    progress: Callable[[int, int], None] | None = None,
) -> ReportSummary:
    """Write the QA page of a converted cohort or data set.

    Parameters
    ----------
    folder
        The output folder of ``rtmask convert`` (``cases.csv`` and one folder per case) or
        of ``rtmask dataset``.
    output
        The HTML file to write (atomically; its folder is created).
    progress
        Called with ``(cases drawn, cases to draw)``.

    Returns
    -------
    ReportSummary
        The page's path and counts.

    Raises
    ------
    InvalidInputError
        ``folder`` is not a converted cohort or data set, or ``output`` is a folder.
    """
    start = time.perf_counter()
    folder, output = Path(folder), Path(output)
    _check_output(output)
    source = read_source(folder)
    drawn = [c for c in source.cases if c.detailed]
    sections: list[str] = []
    cases: list[ReportCase] = []
    for case in source.cases:
        if not case.detailed:
            cases.append(case)
            continue
        views = case_views(case)
        measured = dataclasses.replace(case, rois=views.rois)
        sections.append(_case_section(len(sections), measured, views))
        cases.append(measured)
        if progress is not None:
            progress(len(sections), len(drawn))
    outliers, missing = find_outliers(cases), find_missing(cases)
    duplicates = find_duplicates(cases)
    failed = sum(1 for c in cases if c.status in FAILED_STATUSES)
    body = [
        _header(source, cases),
        "<h2>Cases</h2>",
        _cases_table(cases),
        f"<h2>Volume outliers ({len(outliers)})</h2>",
        _outliers_table(outliers),
        f"<h2>Cases missing a ROI ({len(missing)})</h2>",
        _missing_table(missing),
        f"<h2>Duplicate or ambiguous names ({len(duplicates)})</h2>",
        _duplicates_table(duplicates),
        _failed_heading(cases),
        _failed_table(cases),
        f"<h2>Case details ({len(sections)})</h2>",
        '<p><input type="search" id="case-filter" data-filter-cases="1" '
        'placeholder="filter cases (any text)" aria-label="filter case details">'
        '<span class="count" id="case-filter-count"></span></p>',
        *sections,
    ]
    output.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(output) as temporary:
        temporary.write_text(_page(source, body), encoding="utf-8")
    return ReportSummary(
        path=output,
        kind=source.kind,
        cases=len(cases),
        detailed=len(drawn),
        failed=failed,
        outliers=len(outliers),
        missing=len(missing),
        duplicates=len(duplicates),
        seconds=time.perf_counter() - start,
    )
