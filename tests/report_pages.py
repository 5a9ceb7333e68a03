"""Helpers of the report tests (imported by them, not a test): pages, data sets, a browser."""

from __future__ import annotations

import base64
import csv
import html
import io
import json
import os
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import nibabel as nib
import numpy as np
from PIL import Image

COLUMNS = (
    "patient_id",
    "study_uid",
    "structure_set",
    "structure_set_uid",
    "image_series_uid",
    "link",
    "status",
    "error",
    "output",
    "rois_written",
    "seconds",
)


class _Tables(HTMLParser):
    """Every table of a page by id (rows of cell texts, header first) and every image."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: dict[str, list[list[str]]] = {}
        self.images: list[tuple[str, str]] = []  # (alt, src)
        self.links: list[str] = []  # every src/href value
        self._table: str | None = None
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        self.links.extend(v or "" for k, v in attrs if k in ("src", "href"))
        if tag == "table":
            self._table = values.get("id") or f"table{len(self.tables)}"
            self.tables[self._table] = []
        elif tag == "tr" and self._table is not None:
            self.tables[self._table].append([])
        elif tag in ("td", "th"):
            self._cell = []
        elif tag == "img":
            self.images.append((values.get("alt") or "", values.get("src") or ""))

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._cell is not None and self._table is not None:
            self.tables[self._table][-1].append("".join(self._cell).strip())
            self._cell = None
        elif tag == "table":
            self._table = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


def parse_page(path: Path) -> _Tables:
    parser = _Tables()
    parser.feed(path.read_text(encoding="utf-8"))
    return parser


def decode_png(src: str) -> np.ndarray:
    """A data: URI's PNG as an ``(rows, columns, 3)`` uint8 array (decoded by Pillow)."""
    prefix = "data:image/png;base64,"
    assert src.startswith(prefix)
    with Image.open(io.BytesIO(base64.b64decode(src[len(prefix) :]))) as picture:
        return np.asarray(picture.convert("RGB"))


def write_cases(out: Path, rows: list[dict[str, str]]) -> None:
    out.mkdir(parents=True, exist_ok=True)
    with (out / "cases.csv").open("w", encoding="utf-8", newline="") as stream:
        writer = csv.DictWriter(stream, fieldnames=COLUMNS, lineterminator="\n")
        writer.writeheader()
        for row in rows:
            writer.writerow({c: row.get(c, "") for c in COLUMNS})


def write_nifti(path: Path, data: np.ndarray, affine: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(nib.Nifti1Image(data, affine), path)


def find_chromium() -> str | None:
    """Debian's chromium (or another Chromium/Chrome) on PATH, or $RTMASK_CHROMIUM."""
    named = os.environ.get("RTMASK_CHROMIUM")
    if named:
        return named if Path(named).exists() else None
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        found = shutil.which(name)
        if found:
            return found
    return None


def chromium_args(browser: str, profile: Path) -> list[str]:
    """Headless Chromium that runs as root in a container and touches nothing outside."""
    return [
        browser,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--no-first-run",
        "--disable-extensions",
        "--disable-background-networking",
        f"--user-data-dir={profile}",
    ]


def dump_dom(browser: str, page: Path, profile: Path, timeout: float = 90.0) -> str:
    """The page's DOM after its scripts ran (``--dump-dom``)."""
    command = [
        *chromium_args(browser, profile),
        "--virtual-time-budget=5000",
        "--dump-dom",
        page.resolve().as_uri(),
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def json_in_element(dom: str, element_id: str) -> object:
    """The JSON text content of the element ``element_id`` of a dumped DOM."""
    start = f'id="{element_id}">'
    head = dom.index(start) + len(start)
    return json.loads(html.unescape(dom[head : dom.index("</", head)]))
