"""Imports point one way: the layers of DESIGN.md, read from the source with ast."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "rtmask"

#: The rank of every sub-package and top-level module: a module may import its own
#: package and those of lower rank, never one of the same or a higher rank (rank 0, the
#: shared foundation of errors and file-format facts, may import itself).
RANKS = {
    **dict.fromkeys(
        [
            "errors",
            "_errors",
            "_version",
            "_atomic",
            "_gzip",
            "_npz",
            "_seg_codes",
            "_gaps",
            "_limits",
            "_optional",
            "_parallel",
            "_dicom",
            "_rawdicom",
            "_safe_names",
            "_scheduler",
        ],
        0,
    ),
    "geometry": 1,
    "rtstruct": 2,
    "discovery": 2,
    "plan": 2,
    "names": 3,
    "raster": 3,
    "dose": 3,
    "dvh": 4,
    "export": 4,
    "masks": 4,
    "synthetic": 4,
    "convert": 5,
    "cohort": 6,
    "report": 6,
    "cli": 7,
}


def _unit(path: Path) -> str:
    """The package (or top-level module) a source file belongs to."""
    parts = path.relative_to(SRC).parts
    return parts[0] if len(parts) > 1 else path.stem


def _imported_units(path: Path) -> set[str]:
    """Every rtmask package or top-level module ``path`` imports, at any depth."""
    units = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if node.module == "rtmask":  # only the version is taken from the package itself
                units.update("_version" if a.name == "__version__" else a.name for a in node.names)
            elif node.module.startswith("rtmask."):
                units.add(node.module.split(".")[1])
        elif isinstance(node, ast.Import):
            units.update(a.name.split(".")[1] for a in node.names if a.name.startswith("rtmask."))
    return units


def _sources() -> list[Path]:
    return sorted(p for p in SRC.rglob("*.py") if p != SRC / "__init__.py")


def test_every_package_has_a_rank() -> None:
    assert {_unit(p) for p in _sources()} == set(RANKS)


@pytest.mark.parametrize("path", _sources(), ids=lambda p: str(p.relative_to(SRC)))
def test_imports_point_down_the_layers(path: Path) -> None:
    unit = _unit(path)
    rank = RANKS[unit]
    wrong = sorted(
        other
        for other in _imported_units(path) - {unit}
        if RANKS[other] > rank or (RANKS[other] == rank and rank > 0)
    )
    assert not wrong, f"{unit} (rank {rank}) imports {wrong}"


def _modules_loaded_by(statement: str) -> list[str]:
    """The rtmask modules a fresh interpreter holds after ``statement``."""
    code = (
        f"import sys\n{statement}\nprint(sorted(m for m in sys.modules if m.startswith('rtmask')))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    return list(ast.literal_eval(result.stdout.strip()))


@pytest.mark.parametrize("package", ["rtmask.masks", "rtmask.dvh"])
def test_readers_and_dvh_load_no_writer(package: str) -> None:
    loaded = _modules_loaded_by(f"import {package}")
    assert package in loaded
    assert [m for m in loaded if m.startswith(("rtmask.export", "rtmask.convert"))] == []


def _module_level_imports(path: Path) -> set[str]:
    """Modules imported when ``path`` is imported (not inside functions)."""
    modules = set()
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.ImportFrom) and node.module:
            modules.add(node.module)
        elif isinstance(node, ast.Import):
            modules.update(a.name for a in node.names)
    return modules


def test_the_dvh_report_imports_the_model_not_the_reverse() -> None:
    model = _module_level_imports(SRC / "dvh" / "_histogram.py")
    report = _module_level_imports(SRC / "dvh" / "_report.py")
    assert "rtmask.dvh._histogram" in report
    assert not {m for m in model if m.startswith("rtmask.dvh")}


#: The longest a function may be, def line to last line, docstring included.
MAX_FUNCTION_LINES = 100


def _long_functions(source: str, limit: int = MAX_FUNCTION_LINES) -> list[tuple[str, int]]:
    """``(name, lines)`` of every function (methods and nested ones too) over ``limit``."""
    return [
        (node.name, node.end_lineno - node.lineno + 1)
        for node in ast.walk(ast.parse(source))
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
        and node.end_lineno is not None
        and node.end_lineno - node.lineno + 1 > limit
    ]


def test_the_line_count_sees_a_long_function() -> None:
    body = "".join(f"    x{k} = {k}\n" for k in range(99))
    source = f"class A:\n    def short(self) -> None:\n        pass\n\n\ndef f() -> None:\n{body}"
    assert _long_functions(source) == []  # f: def line + 99 = 100 lines
    assert _long_functions(source + "    x = 0\n") == [("f", 101)]
    nested = "def outer() -> None:\n" + _indented(body + "    y = 0\n")
    assert _long_functions("def g() -> None:\n" + _indented(nested)) == [
        ("g", 102),
        ("outer", 101),
    ]


def _indented(text: str) -> str:
    return "".join("    " + line for line in text.splitlines(keepends=True))


def test_no_function_is_over_100_lines() -> None:
    too_long = [
        f"{path.relative_to(SRC)}: {name} ({lines} lines)"
        for path in sorted(SRC.rglob("*.py"))
        for name, lines in _long_functions(path.read_text(encoding="utf-8"))
    ]
    assert too_long == [], "split these where a name can say what the part does"
