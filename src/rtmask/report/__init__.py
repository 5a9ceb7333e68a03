"""The QA report: one self-contained HTML page about a converted cohort or a data set.

``write_report(OUT, "report.html")`` reads ``OUT/cases.csv`` and each case's
``summary.json`` (or a data set's ``dataset.json`` and label maps), draws three thumbnails
per case and writes the page with the cohort checks (volume outliers, missing ROIs,
duplicate names, failed cases).
"""

from __future__ import annotations

from rtmask.report._checks import MIN_CASES, Z_THRESHOLD, robust_z
from rtmask.report._html import ReportSummary, write_report
from rtmask.report._png import encode_png
from rtmask.report._read import read_source

__all__ = [
    "MIN_CASES",
    "Z_THRESHOLD",
    "ReportSummary",
    "encode_png",
    "read_source",
    "robust_z",
    "write_report",
]
