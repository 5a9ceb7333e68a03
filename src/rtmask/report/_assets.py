"""The report page's style sheet and script (inline in the page: it works offline).

The script is plain JavaScript without any library: a click on a column header of a
``table.sortable`` sorts its rows (numbers by the cell's ``data-value``, text otherwise;
again to reverse; empty cells stay last), an ``input[data-filter]`` box hides the rows of
the table it names that do not contain its text (case-insensitively), and
``input[data-filter-cases]`` does the same for the per-case sections.
"""

from __future__ import annotations

__all__ = ["SCRIPT", "STYLE"]

STYLE = """
body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5em; color: #222; background: #fff; }
h1 { font-size: 1.5em; margin: 0 0 .3em; }
h2 { font-size: 1.2em; margin-top: 1.6em; border-bottom: 1px solid #ccc; }
h3 { font-size: 1em; margin: 0 0 .4em; }
table { border-collapse: collapse; margin: .4em 0 1em; }
th, td { border: 1px solid #ccc; padding: 2px 6px; text-align: left; vertical-align: top; }
td { max-width: 40em; min-width: 5.5em; overflow-wrap: anywhere; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
th { background: #f0f0f0; cursor: pointer; user-select: none; white-space: nowrap; }
th[aria-sort="ascending"]::after { content: " \\25B2"; }
th[aria-sort="descending"]::after { content: " \\25BC"; }
tr.failed td, tr.excluded td { background: #fdecea; }
tr.skipped td { color: #777; }
.count { color: #555; margin-left: .5em; }
.notes { color: #555; font-size: .9em; }
.case { border: 1px solid #ddd; border-radius: 4px; padding: .6em; margin: .8em 0; }
.strip { display: flex; gap: 8px; flex-wrap: wrap; }
figure { margin: 0; text-align: center; }
figure img { display: block; background: #000; image-rendering: pixelated; }
figcaption { font-size: .8em; color: #555; }
.swatch { display: inline-block; width: .8em; height: .8em; margin-right: .3em;
  border: 1px solid #888; vertical-align: middle; }
input[type=search] { width: 24em; padding: 2px 4px; }
.warn { color: #a15c00; }
"""

SCRIPT = """
"use strict";
(function () {
  function cellKey(row, index) {
    var cell = row.cells[index];
    if (!cell) { return { number: null, text: "" }; }
    var value = cell.getAttribute("data-value");
    if (value !== null && value !== "" && isFinite(Number(value))) {
      return { number: Number(value), text: "" };
    }
    return { number: null, text: cell.textContent.trim().toLowerCase() };
  }
  function blank(key) { return key.number === null && key.text === ""; }
  function compare(a, b, ascending) {
    if (blank(a) !== blank(b)) { return blank(a) ? 1 : -1; }
    var order = 0;
    if (a.number !== null && b.number !== null) { order = a.number - b.number; }
    else if (a.number !== null) { order = -1; }
    else if (b.number !== null) { order = 1; }
    else if (a.text !== b.text) { order = a.text < b.text ? -1 : 1; }
    return ascending ? order : -order;
  }
  function sortBy(table, header) {
    var index = header.cellIndex;
    var ascending = header.getAttribute("aria-sort") !== "ascending";
    var headers = table.tHead.rows[0].cells;
    for (var i = 0; i < headers.length; i++) { headers[i].removeAttribute("aria-sort"); }
    header.setAttribute("aria-sort", ascending ? "ascending" : "descending");
    var body = table.tBodies[0];
    var rows = Array.prototype.slice.call(body.rows);
    var keyed = rows.map(function (row, position) {
      return { row: row, key: cellKey(row, index), position: position };
    });
    keyed.sort(function (a, b) {
      var order = compare(a.key, b.key, ascending);
      return order !== 0 ? order : a.position - b.position;
    });
    keyed.forEach(function (item) { body.appendChild(item.row); });
  }
  function showCount(input, shown, total) {
    var count = document.getElementById(input.id + "-count");
    if (count) { count.textContent = shown + " of " + total + " shown"; }
  }
  function filterRows(input) {
    var table = document.getElementById(input.getAttribute("data-filter"));
    var text = input.value.trim().toLowerCase();
    var rows = table.tBodies[0].rows, shown = 0;
    for (var i = 0; i < rows.length; i++) {
      var match = rows[i].textContent.toLowerCase().indexOf(text) !== -1;
      rows[i].hidden = !match;
      if (match) { shown++; }
    }
    showCount(input, shown, rows.length);
  }
  function filterCases(input) {
    var text = input.value.trim().toLowerCase();
    var cases = document.querySelectorAll("section.case"), shown = 0;
    for (var i = 0; i < cases.length; i++) {
      var match = cases[i].textContent.toLowerCase().indexOf(text) !== -1;
      cases[i].hidden = !match;
      if (match) { shown++; }
    }
    showCount(input, shown, cases.length);
  }
  function setUp() {
    var tables = document.querySelectorAll("table.sortable");
    Array.prototype.forEach.call(tables, function (table) {
      if (!table.tHead) { return; }
      Array.prototype.forEach.call(table.tHead.rows[0].cells, function (header) {
        header.setAttribute("title", "click to sort");
        header.addEventListener("click", function () { sortBy(table, header); });
      });
    });
    Array.prototype.forEach.call(document.querySelectorAll("input[data-filter]"),
      function (input) {
        input.addEventListener("input", function () { filterRows(input); });
        filterRows(input);
      });
    Array.prototype.forEach.call(document.querySelectorAll("input[data-filter-cases]"),
      function (input) {
        input.addEventListener("input", function () { filterCases(input); });
        filterCases(input);
      });
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", setUp);
  } else {
    setUp();
  }
})();
"""
