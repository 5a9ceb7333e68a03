"""The public API: curated, sorted, importable, and ``import rtmask`` stays light."""

from __future__ import annotations

import subprocess
import sys

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


def test_writers_load_on_first_use() -> None:
    from rtmask.export import write_nifti

    assert rtmask.write_nifti is write_nifti
