"""The report in a real browser: headless Chromium renders it, sorts, filters, logs no error.

A copy of the page gets two scripts of this test: one at the top that records every error
(uncaught exceptions, console.error/warn, Content-Security-Policy violations, images that
fail to load), one that, once the page has loaded, clicks headers and types into the filter
boxes as a person would and writes what the page then shows into the DOM as JSON. Chromium's
``--dump-dom`` returns that DOM; the assertions are here, against cases.csv.

Skipped when no Chromium is found (Debian: ``apt-get install -y chromium``; ``.ci/run``
installs it; ``RTMASK_CHROMIUM`` names another binary).
"""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from cohort_archive import make_archive
from report_pages import dump_dom, find_chromium, json_in_element, write_cases
from rtmask.cli import main

BROWSER = find_chromium()
pytestmark = pytest.mark.skipif(
    BROWSER is None,
    reason="no Chromium found (apt-get install -y chromium, or set RTMASK_CHROMIUM)",
)

RECORD_ERRORS = """<script>
window.rtmaskErrors = [];
window.addEventListener("error", function (event) {
  var target = event.target && event.target.tagName ? event.target.tagName + " " : "";
  window.rtmaskErrors.push("error: " + target + (event.message || "failed to load"));
}, true);
window.addEventListener("unhandledrejection", function (event) {
  window.rtmaskErrors.push("rejection: " + event.reason);
});
document.addEventListener("securitypolicyviolation", function (event) {
  window.rtmaskErrors.push("csp: " + event.violatedDirective + " " + event.blockedURI);
});
["error", "warn"].forEach(function (level) {
  var original = console[level];
  console[level] = function () {
    window.rtmaskErrors.push("console." + level + ": " +
      Array.prototype.join.call(arguments, " "));
    original.apply(console, arguments);
  };
});
</script>"""

DRIVE = """<script>
window.addEventListener("load", function () {
  var result = {};
  function column(tableId, index) {
    var rows = document.getElementById(tableId).tBodies[0].rows;
    return Array.prototype.map.call(rows, function (row) {
      return row.cells[index].textContent.trim();
    });
  }
  function visible(tableId) {
    var rows = document.getElementById(tableId).tBodies[0].rows;
    return Array.prototype.filter.call(rows, function (row) {
      return !row.hidden && row.getClientRects().length > 0;
    }).map(function (row) { return row.cells[0].textContent.trim(); });
  }
  try {
    var table = document.getElementById("cases");
    var headers = table.tHead.rows[0].cells;
    result.headers = Array.prototype.map.call(headers, function (h) {
      return h.textContent.trim();
    });
    result.rows = Array.prototype.map.call(table.tBodies[0].rows, function (row) {
      return row.textContent;
    });
    result.rendered_height = table.getBoundingClientRect().height;
    headers[0].click();
    result.ascending = column("cases", 0);
    result.ascending_mark = headers[0].getAttribute("aria-sort");
    headers[0].click();
    result.descending = column("cases", 0);
    result.descending_mark = headers[0].getAttribute("aria-sort");
    headers[4].click();
    result.by_rois = column("cases", 4);
    var filter = document.getElementById("cases-filter");
    filter.value = "CONVERTED";
    filter.dispatchEvent(new Event("input"));
    result.filtered = visible("cases");
    result.count = document.getElementById("cases-filter-count").textContent;
    filter.value = "";
    filter.dispatchEvent(new Event("input"));
    result.unfiltered = visible("cases").length;
    var cases = document.getElementById("case-filter");
    cases.value = "P004";
    cases.dispatchEvent(new Event("input"));
    result.sections_shown = Array.prototype.filter.call(
      document.querySelectorAll("section.case"), function (s) { return !s.hidden; }).length;
    var images = document.images;
    result.images = images.length;
    result.broken_images = Array.prototype.filter.call(images, function (image) {
      return !image.complete || image.naturalWidth === 0;
    }).length;
  } catch (error) {
    window.rtmaskErrors.push("driver: " + error);
  }
  result.errors = window.rtmaskErrors;
  var out = document.createElement("pre");
  out.id = "rtmask-test-result";
  out.textContent = JSON.stringify(result);
  document.body.appendChild(out);
});
</script>"""


def _instrumented(page: Path, copy: Path, extra: str = "") -> Path:
    text = page.read_text(encoding="utf-8")
    assert text.count("<head>") == 1
    assert text.count("</body>") == 1
    text = text.replace("<head>", "<head>" + RECORD_ERRORS).replace(
        "</body>", extra + DRIVE + "</body>"
    )
    copy.write_text(text, encoding="utf-8")
    return copy


def _run(page: Path, tmp_path: Path) -> dict[str, object]:
    assert BROWSER is not None
    dom = dump_dom(BROWSER, page, tmp_path / "profile")
    result = json_in_element(dom, "rtmask-test-result")
    assert isinstance(result, dict)
    return result


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[dict[str, str]]]:
    base = tmp_path_factory.mktemp("browser")
    archive = make_archive(base)
    out = base / "out"
    main(["convert", str(archive.root), "-o", str(out), "--jobs", "1", "-q"])
    assert main(["report", str(out), "-o", str(base / "report.html"), "-q"]) == 0
    with (out / "cases.csv").open(encoding="utf-8", newline="") as stream:
        rows = list(csv.DictReader(stream))
    return base / "report.html", rows


def test_the_table_renders_sorts_and_filters_without_errors(
    report: tuple[Path, list[dict[str, str]]], tmp_path: Path
) -> None:
    page, rows = report
    result = _run(_instrumented(page, tmp_path / "page.html"), tmp_path)
    assert result["errors"] == []
    assert result["headers"][:2] == ["Patient ID", "Status"]  # type: ignore[index]
    # Rendered: one row per case, each holding its patient ID and status; laid out.
    shown = result["rows"]
    assert isinstance(shown, list)
    assert len(shown) == len(rows)
    for text, row in zip(shown, rows, strict=True):
        assert row["patient_id"] in text
        assert row["status"] in text
    assert float(result["rendered_height"]) > 20 * len(rows)  # type: ignore[arg-type]
    # Sorting by patient ID (case-insensitively, empty last) and back.
    ids = [r["patient_id"] for r in rows]
    ascending = sorted(ids, key=lambda i: (i == "", i.casefold()))
    assert result["ascending"] == ascending
    assert result["ascending_mark"] == "ascending"
    assert result["descending"] == sorted(ids, key=lambda i: (i != "", i.casefold()), reverse=True)
    assert result["descending_mark"] == "descending"
    # A numeric column sorts as numbers (a case without ROI table last).
    numbers = result["by_rois"]
    assert isinstance(numbers, list)
    values = [int(n) for n in numbers if n]
    assert values == sorted(values)
    assert numbers[len(values) :] == [""] * (len(numbers) - len(values))
    # The filter keeps the rows holding its text in any column (any case), shows how many.
    shown_columns = ("patient_id", "status", "structure_set", "output", "error")
    holding = [
        r["patient_id"]
        for r in rows
        if "converted" in " ".join(r[c] for c in shown_columns).casefold()
    ]
    assert sorted(result["filtered"]) == sorted(holding)  # type: ignore[arg-type]
    assert result["count"] == f"{len(holding)} of {len(rows)} shown"
    converted = [r for r in rows if r["status"] == "converted"]
    assert len(holding) > len(converted)  # the skipped copy's error names its original
    assert result["unfiltered"] == len(rows)
    assert result["sections_shown"] == 1
    assert result["images"] == 3 * len(converted)
    assert result["broken_images"] == 0


def test_errors_in_the_page_are_caught(
    report: tuple[Path, list[dict[str, str]]], tmp_path: Path
) -> None:
    """The error recorder works: a page that throws, fetches and logs is caught thrice."""
    page, _ = report
    faults = (
        "<script>console.error('boom');</script>"
        '<img src="https://example.invalid/x.png" alt="">'
        "<script>null.property;</script>"
    )
    result = _run(_instrumented(page, tmp_path / "bad.html", faults), tmp_path)
    errors = result["errors"]
    assert isinstance(errors, list)
    assert any("console.error: boom" in e for e in errors)
    assert any(e.startswith("csp: img-src") for e in errors)
    assert any("TypeError" in e or "null" in e for e in errors)


def test_a_data_set_report_in_the_browser(tmp_path: Path) -> None:
    out = tmp_path / "out"
    write_cases(
        out,
        [
            {"patient_id": "B", "status": "excluded", "error": "overlap", "output": "x_001"},
            {"patient_id": "a", "status": "failed", "error": "no image", "output": "x_002"},
        ],
    )
    (out / "dataset.json").write_text('{"labels": {"background": 0, "Heart": 1}}')
    (out / "imagesTr").mkdir()
    assert main(["report", str(out), "-o", str(tmp_path / "r.html"), "-q"]) == 0
    result = _run(_instrumented(tmp_path / "r.html", tmp_path / "page.html"), tmp_path)
    assert result["errors"] == []
    assert result["ascending"] == ["a", "B"]
    assert result["descending"] == ["B", "a"]
    assert result["filtered"] == []
    assert result["count"] == "0 of 2 shown"
