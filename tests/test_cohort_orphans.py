"""``kill -9`` of a ``--jobs`` run: its worker processes end too, and leave no half file."""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from cohort_archive import Archive, make_archive, read_rows
from rtmask.cohort._executors import _exit_with
from rtmask.cohort._tasks import DELAY_HOOK

CLI = [sys.executable, "-c", "import sys; from rtmask.cli import main; sys.exit(main())"]
#: An environment variable only the processes of one test run carry (from their start:
#: a forkserver's workers show the environment the server was started with).
MARK = "RTMASK_TEST_RUN_MARK"

pytestmark = pytest.mark.skipif(not Path("/proc/self/environ").is_file(), reason="needs /proc")


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> Archive:
    return make_archive(tmp_path_factory.mktemp("orphans"))


def _marked(token: str) -> list[int]:
    """The living (not zombie) processes started with ``MARK=token`` in their environment."""
    wanted = f"{MARK}={token}".encode()
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            environment = (entry / "environ").read_bytes().split(b"\0")
            state = (entry / "stat").read_text().rpartition(")")[2].split()[0]
        except OSError:  # ended meanwhile, or not ours to read
            continue
        if wanted in environment and state != "Z":
            pids.append(int(entry.name))
    return pids


def _wait_for(condition: object, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():  # type: ignore[operator]
            return True
        time.sleep(0.05)
    return False


def test_kill_9_of_the_run_ends_its_workers(archive: Archive, tmp_path: Path) -> None:
    out, token = tmp_path / "out", secrets.token_hex(8)
    env = {**os.environ, MARK: token, DELAY_HOOK: "0.5"}
    command = [*CLI, "convert", str(archive.root), "-o", str(out), "--jobs", "2", "-q"]
    process = subprocess.Popen(command, env=env, start_new_session=True, stderr=subprocess.PIPE)
    try:
        # the run, its forkserver and two workers, one case finished and the next ones begun
        assert _wait_for(lambda: len(_marked(token)) >= 4, 60), _marked(token)
        assert _wait_for(lambda: list(out.rglob("summary.json")), 60), "no case finished"
        time.sleep(0.2)
        os.kill(process.pid, signal.SIGKILL)  # the run only, not its process group
        process.wait()
        start = time.monotonic()
        assert _wait_for(lambda: not _marked(token), 10), f"still running: {_marked(token)}"
        assert time.monotonic() - start < 10
    finally:
        for pid in _marked(token):  # this test's processes
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        if process.poll() is None:
            process.kill()
            process.wait()
        assert process.stderr is not None
        process.stderr.close()
    finished = list(out.rglob("summary.json"))
    assert 0 < len(finished) < len(archive.converted)  # killed part-way
    for summary in finished:
        assert json.loads(summary.read_text(encoding="utf-8"))
    for image in out.rglob("*.nii.gz"):  # whatever has a final name is complete
        assert np.asarray(nib.load(image).dataobj).size > 0
    assert read_rows(out) is not None  # cases.csv as refreshed so far is whole


def test_the_watch_ends_when_the_watched_process_ends() -> None:
    watched = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    ended = threading.Event()
    try:
        _exit_with(watched.pid, ended.set)
        assert not ended.wait(0.3)  # alive: nothing happens
        os.kill(watched.pid, signal.SIGKILL)
        assert ended.wait(5)  # a zombie not yet reaped has ended too
    finally:
        watched.kill()
        watched.wait()
    gone = threading.Event()
    _exit_with(watched.pid, gone.set)  # reaped already: at once
    assert gone.is_set()
