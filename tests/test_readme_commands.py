"""The README's `rtmask info`, `volumes` and `dvh` lines run as written.

Each synopsis line of the README's command-line block is taken as it stands, its
placeholders (PATH, STRUCTURE_SET, DOSE, DIR, NAME, FILE) filled with the demo case's
files, once without and once with its optional part, and the options its comment names
added one run at a time (`--json`, `--csv FILE`, `--plot`, and both outputs together).
"""

from __future__ import annotations

import csv
import json
import re
import shlex
from pathlib import Path

import pytest

from conftest import run_cli
from rtmask.synthetic import DemoCase, write_demo_case

README = Path(__file__).resolve().parents[1] / "README.md"


def _synopsis(command: str) -> tuple[str, str]:
    """The README's ``rtmask COMMAND ...`` line of the command-line block and its comment."""
    block = re.search(r"## Command line\n\n```bash\n(.*?)```", README.read_text("utf-8"), re.S)
    assert block is not None
    for line in block.group(1).splitlines():
        if line.startswith(f"rtmask {command} "):
            words, _, comment = line.partition("#")
            return words.strip(), comment.strip()
    raise AssertionError(f"no `rtmask {command}` line in the README")


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> DemoCase:
    return write_demo_case(tmp_path_factory.mktemp("readme") / "dicom")


def _filled(words: str, demo: DemoCase, out: Path) -> tuple[list[str], list[str]]:
    """The line's arguments (after ``rtmask``) without and with its ``[...]`` part."""
    values = {
        "PATH": str(demo.folder),
        "STRUCTURE_SET": str(demo.rtstruct),
        "DOSE": str(demo.rtdose),
        "DIR": str(demo.ct.folder),
        "NAME": demo.roi_names[0],
        "FILE": str(out / "dvh.csv"),
    }
    bare = re.sub(r"\s*\[[^]]*\]", "", words)
    full = words.replace("[", "").replace("]", "")
    return (
        [values.get(w, w) for w in shlex.split(bare)[1:]],
        [values.get(w, w) for w in shlex.split(full)[1:]],
    )


def test_info_as_written(
    demo: DemoCase, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    words, _ = _synopsis("info")
    bare, full = _filled(words, demo, tmp_path)
    code, out, err = run_cli(capsys, *bare)
    assert code == 0, err
    assert "structure set" in out
    code, out, err = run_cli(capsys, *full)
    assert code == 0, err
    assert full[-1] == "--json"
    assert json.loads(out)["n_structure_sets"] == 1
    assert "--image" not in out + err  # info has no such option


def test_volumes_as_written(
    demo: DemoCase, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    words, comment = _synopsis("volumes")
    bare, full = _filled(words, demo, tmp_path)
    assert "--image" in full
    for arguments in (bare, full):
        code, out, err = run_cli(capsys, *arguments)
        assert code == 0, err
        assert demo.roi_names[0] in out
    assert "--json" in comment
    code, out, err = run_cli(capsys, *full, "--json")
    assert code == 0, err
    assert json.loads(out)


def test_dvh_as_written(demo: DemoCase, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    words, comment = _synopsis("dvh")
    bare, full = _filled(words, demo, tmp_path)
    for arguments in (bare, full):
        code, out, err = run_cli(capsys, *arguments)
        assert code == 0, err
        assert demo.roi_names[0] in out
    # The comment's options, one at a time and the two outputs together.
    assert all(option in comment for option in ("--json", "--csv FILE", "--plot"))
    table = tmp_path / "dvh.csv"
    code, out, err = run_cli(capsys, *full, "--json", "--csv", str(table))
    assert code == 0, err
    rois = json.loads(out)["rois"]
    assert [r["name"] for r in rois] == [demo.roi_names[0]]
    rows = list(csv.DictReader(table.read_text(encoding="utf-8").splitlines()))
    assert [r["name"] for r in rows] == [demo.roi_names[0]]
    assert float(rows[0]["mean_gy"]) == pytest.approx(rois[0]["mean_gy"])
    code, out, err = run_cli(capsys, *full, "--plot", str(tmp_path / "dvh.png"))
    assert code == 0, err
    assert (tmp_path / "dvh.png").stat().st_size > 0


def test_dvh_roi_before_the_files_and_by_number(
    demo: DemoCase, capsys: pytest.CaptureFixture[str]
) -> None:
    first, second = demo.roi_names[:2]
    rs, rd = str(demo.rtstruct), str(demo.rtdose)
    code, out, err = run_cli(capsys, "dvh", "--roi", first, "--roi", "2", rs, rd, "--json")
    assert code == 0, err
    assert [r["name"] for r in json.loads(out)["rois"]] == [first, second]
    code, out, err = run_cli(capsys, "dvh", rs, rd, "--roi", "99")
    assert code == 1
    assert f"no ROI matches --roi 99; the ROIs (number and name) are 1 {first!r}" in err
    assert "['" not in err  # no Python list


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        (["--stats", "V95%"], "--stats V95%: V<x>% statistics are in % of the prescription; "
         "give --prescription GY"),
        (["--prescription", "0"], "--prescription must be a positive number of Gy, got 0.0"),
        (["--prescription", "-2", "--stats", "V95"], "--prescription must be a positive"),
        (["--stats", "D150"], "--stats D150: D<x> takes a percentage of the volume within 0-100"),
        (["--stats", "Q5"], "--stats: unknown DVH statistic 'Q5'"),
        (["--resolution", "0"], "--resolution must be a positive number of mm"),
    ],
)  # fmt: skip
def test_dvh_messages_name_cli_options(
    demo: DemoCase, capsys: pytest.CaptureFixture[str], options: list[str], expected: str
) -> None:
    code, _, err = run_cli(capsys, "dvh", str(demo.rtstruct), str(demo.rtdose), *options)
    assert code != 0
    assert expected in err
    for python in ("prescription_gy", "count_outside", "resolution_mm", "DVH of ROI 0", "=True"):
        assert python not in err
