"""The README's Python example runs as written."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"


def _python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), re.S)


def test_readme_has_a_python_example() -> None:
    assert _python_blocks()


@pytest.mark.parametrize("block", _python_blocks())
def test_readme_python_example_runs(block: str, capsys: pytest.CaptureFixture[str]) -> None:
    exec(compile(block, str(README), "exec"), {"__name__": "readme"})
    output = capsys.readouterr().out
    if "rtmask.get_dvh" in block:  # the DVH example
        assert "same curve: True\n" in output, output
        assert re.search(r"^\d+\.\d{3} Gy \d+\.\d{3} Gy \d+\.\d{3} cm3$", output, re.M), output
        return
    assert re.search(r"^Lung_L: \d+ voxels, \d+\.\d cm3$", output, re.M), output
    assert re.search(r"^Marker: \d+\.\d mm3 \(partial volume\)$", output, re.M), output
    assert "identical after the round trip: True\n" in output, output
