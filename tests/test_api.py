"""The public API: curated, sorted, importable, and ``import rtmask`` stays light."""

from __future__ import annotations

import subprocess
import sys

import pytest

import rtmask


def _isort_key(name: str) -> tuple[int, str]:
    """Constants, then classes, then functions (ruff RUF022's isort-style order)."""
    return (0 if name.isupper() else 1 if name[0].isupper() else 2, name)


def test_all_is_sorted_and_every_name_resolves() -> None:
    assert list(rtmask.__all__) == sorted(rtmask.__all__, key=_isort_key)
    for name in rtmask.__all__:
        assert getattr(rtmask, name) is not None


def test_import_rtmask_does_not_load_writers_or_terminal_libraries() -> None:
    code = (
        "import sys, rtmask\n"
        "heavy = {'nibabel', 'nrrd', 'rich', 'matplotlib', 'SimpleITK', 'shapely', 'highdicom'}\n"
        "print(sorted(heavy & {m.split('.')[0] for m in sys.modules}))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"


def _run(code: str) -> str:
    """Run ``code`` in a fresh interpreter (nothing imported yet); return its output."""
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    return result.stdout.strip()


def test_public_names_load_their_module_on_first_use() -> None:
    code = (
        "import sys, rtmask\n"
        "def loaded(name): return name in sys.modules\n"
        "print(loaded('numpy'), loaded('pydicom'), loaded('rtmask.export'),"
        " 'write_nifti' in vars(rtmask))\n"
        "from rtmask.export import write_nifti\n"
        "print(rtmask.write_nifti is write_nifti, 'write_nifti' in vars(rtmask))\n"
        "print(loaded('rtmask.convert'))\n"
        "from rtmask.convert import convert_structure_set\n"
        "print(rtmask.convert_structure_set is convert_structure_set)\n"
    )
    assert _run(code).splitlines() == [
        "False False False False",  # import rtmask: nothing behind the names yet
        "True True",  # the first use imports the module and keeps the name
        "False",  # the writers do not bring the conversion workflow
        "True",
    ]


def test_the_version_is_written_once() -> None:
    from importlib.metadata import version
    from pathlib import Path

    tomllib = pytest.importorskip("tomllib", reason="tomllib needs Python 3.11")
    project = tomllib.loads(
        (Path(__file__).resolve().parents[1] / "pyproject.toml").read_text(encoding="utf-8")
    )["project"]
    assert "version" not in project
    assert project["dynamic"] == ["version"]
    assert version("rtmask") == rtmask.__version__
