"""Commands that write: an output path they cannot use gives one line, no half-written file.

The output is a file where a folder should be, lies under a file, or the disk fills up
(simulated in-process by a rename that fails with ENOSPC, and for real in a subprocess
whose file-size limit makes the writes themselves fail half-way).
"""

from __future__ import annotations

import errno
import gzip
import json
import os
import resource
import signal
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import nibabel as nib
import pytest

from rtmask.cli import main
from rtmask.synthetic import write_demo_case

#: Each command that writes, as a function of (case folder, masks folder, output path).
Command = Callable[[Path, Path, Path], list[str]]
FOLDER_COMMANDS: dict[str, Command] = {
    "convert": lambda case, masks, out: ["convert", str(case / "RS_demo.dcm"), "-o", str(out)],
    "demo": lambda case, masks, out: ["demo", "-o", str(out), "--no-convert"],
}
FILE_COMMANDS: dict[str, Command] = {
    "to-rtstruct": lambda case, masks, out: [
        "to-rtstruct",
        str(masks),
        "--image",
        str(case),
        "-o",
        str(out),
    ],
    "to-seg": lambda case, masks, out: ["to-seg", str(masks), "--image", str(case), "-o", str(out)],
    "dose-sum": lambda case, masks, out: ["dose-sum", str(case / "RD_demo.dcm"), "-o", str(out)],
    "dvh --csv": lambda case, masks, out: [
        "dvh",
        str(case / "RS_demo.dcm"),
        str(case / "RD_demo.dcm"),
        "--roi",
        "GTV",
        "--csv",
        str(out),
    ],
    "dvh --plot": lambda case, masks, out: [
        "dvh",
        str(case / "RS_demo.dcm"),
        str(case / "RD_demo.dcm"),
        "--roi",
        "GTV",
        "--plot",
        str(out),
    ],
}
ALL_COMMANDS = {**FOLDER_COMMANDS, **FILE_COMMANDS}
SUFFIX = {"to-rtstruct": ".dcm", "dose-sum": ".dcm", "dvh --csv": ".csv", "dvh --plot": ".png"}
SUFFIX["to-seg"] = ".dcm"


@pytest.fixture(scope="module")
def case(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The demo case and its masks (for to-rtstruct), written once: (case, masks)."""
    root = tmp_path_factory.mktemp("case")
    write_demo_case(root / "case")
    assert main(["convert", str(root / "case" / "RS_demo.dcm"), "-o", str(root / "masks")]) == 0
    for extra in (root / "masks").glob("summary.*"):
        extra.unlink()
    return root / "case", root / "masks"


def _tree(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def _run(capsys: pytest.CaptureFixture[str], args: list[str]) -> tuple[int, list[str]]:
    code = main(args)
    captured = capsys.readouterr()
    assert "Traceback" not in captured.out + captured.err
    return code, [line for line in captured.err.splitlines() if line.startswith("error:")]


@dataclass(frozen=True)
class Writer:
    """One command that writes, ready to run on the demo case with any output path."""

    name: str
    case: tuple[Path, Path]
    capsys: pytest.CaptureFixture[str]

    def output_in(self, folder: Path) -> Path:
        """The output the command is given in ``folder``: a folder, or a file with its suffix."""
        if self.name in FOLDER_COMMANDS:
            return folder / "out"
        return folder / f"out{SUFFIX[self.name]}"

    def run(self, out: Path) -> tuple[int, list[str]]:
        """Run it writing to ``out``: the exit code and the error lines."""
        return _run(self.capsys, ALL_COMMANDS[self.name](*self.case, out))


@pytest.fixture(params=list(ALL_COMMANDS))
def writer(
    request: pytest.FixtureRequest, case: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> Writer:
    """Each command that writes in turn."""
    return Writer(str(request.param), case, capsys)


def _blocked_outputs(name: str, tmp_path: Path) -> list[Path]:
    """Output paths that cannot be written because of the file ``tmp_path/blocker``."""
    blocker = tmp_path / "blocker"
    if name in FOLDER_COMMANDS:
        return [blocker, blocker / "sub"]
    return [blocker / f"out{SUFFIX[name]}"]


def test_an_output_path_blocked_by_a_file_gives_one_line(writer: Writer, tmp_path: Path) -> None:
    (tmp_path / "blocker").write_bytes(b"precious")
    for out in _blocked_outputs(writer.name, tmp_path):
        before = _tree(tmp_path)
        code, errors = writer.run(out)
        assert code in (1, 2), (writer.name, out)
        assert len(errors) == 1, (writer.name, errors)
        assert str(tmp_path / "blocker") in errors[0]
        assert "file" in errors[0]
        assert _tree(tmp_path) == before  # nothing written, the file untouched


def test_a_full_disk_gives_one_line_and_no_file(
    writer: Writer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every write ends in a rename onto the final name; make that fail as a full disk would."""

    def no_space(source: object, target: object, **kwargs: object) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "replace", no_space)
    out = writer.output_in(tmp_path)
    code, errors = writer.run(out)
    assert code == 1
    assert errors
    assert any(e.startswith(f"error: {out}") and "no space left on device" in e for e in errors)
    written = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert written == []  # no temporary file left, no partial output


def _limited_run(args: list[str], limit_bytes: int) -> subprocess.CompletedProcess[str]:
    """Run the CLI in a process that cannot write a file past ``limit_bytes`` (EFBIG)."""

    def limit() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # the write fails instead of the process
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit_bytes, limit_bytes))

    return subprocess.run(
        [sys.executable, "-c", "import sys; from rtmask.cli import main; sys.exit(main())", *args],
        capture_output=True,
        text=True,
        preexec_fn=limit,  # only sets a limit; the test process starts no threads here
        timeout=120,
        check=False,
    )


@pytest.mark.skipif(not hasattr(resource, "RLIMIT_FSIZE"), reason="needs RLIMIT_FSIZE")
def test_writes_failing_half_way_leave_only_complete_files(
    case: tuple[Path, Path], tmp_path: Path
) -> None:
    """Masks larger than the limit fail mid-write; every file left is complete."""
    out = tmp_path / "out"
    result = _limited_run(["convert", str(case[0] / "RS_demo.dcm"), "-o", str(out)], 9000)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    sizes = {p.name: p.stat().st_size for p in case[1].glob("*.nii.gz")}
    too_big = sorted(name for name, size in sizes.items() if size > 9000)
    small = sorted(name for name, size in sizes.items() if size <= 9000)
    assert too_big  # the limit does cut some masks
    assert small
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    for name in too_big:
        assert any(str(out / name) in e and "file too large" in e for e in errors), name
    left = sorted(p.name for p in out.iterdir())
    assert not [n for n in left if n.startswith(".")]  # no temporary file
    assert sorted(n for n in left if n.endswith(".nii.gz")) == small
    for name in small:  # complete: the gzip stream ends and the data has its full shape
        with gzip.open(out / name) as stream:
            stream.read()
        assert nib.load(out / name).get_fdata().shape == nib.load(case[1] / name).shape
    summary = json.loads((out / "summary.json").read_text())
    failed = sorted(f"{r['name']}.nii.gz" for r in summary["rois"] if r["status"] == "failed")
    # The image and the dose are no ROIs: their own error lines are checked above.
    assert failed == [n for n in too_big if n not in ("dose.nii.gz", "image.nii.gz")]

    demo = tmp_path / "demo"
    result = _limited_run(["demo", "-o", str(demo)], 9000)
    assert result.returncode == 1
    (line,) = [e for e in result.stderr.splitlines() if e.startswith("error:")]
    assert "file too large" in line
    assert [p for p in demo.rglob("*") if p.is_file()] == []  # each CT slice is larger


def test_an_output_folder_without_write_permission_gives_one_line(
    writer: Writer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As root chmod does not stop a write: creating any file under ``locked`` is refused."""
    locked = tmp_path / "locked"
    locked.mkdir()
    real_open = os.open

    def refuse(path: str | os.PathLike[str], flags: int, *args: int, **kwargs: int) -> int:
        if str(path).startswith(str(locked)) and flags & os.O_CREAT:
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(path))
        return real_open(path, flags, *args, **kwargs)

    real_mkdir = Path.mkdir

    def refuse_mkdir(self: Path, *args: object, **kwargs: object) -> None:
        if str(self).startswith(str(locked)) and self != locked:
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(self))
        real_mkdir(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "open", refuse)
    monkeypatch.setattr(Path, "mkdir", refuse_mkdir)
    out = writer.output_in(locked)
    code, errors = writer.run(out)
    assert code == 1
    (line,) = errors
    assert line.startswith(f"error: {out}")
    assert "permission denied; check the permissions" in line
    assert list(locked.iterdir()) == []
