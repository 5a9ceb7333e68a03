"""The archive run on a real Dask cluster: a scheduler and two workers started on 127.0.0.1."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from cohort_archive import Archive, make_archive, read_rows, tree
from rtmask.cli import main
from rtmask.cohort import CaseOptions, DaskExecutor, plan_archive
from rtmask.cohort import _executors as executors
from rtmask.cohort._tasks import DELAY_HOOK
from rtmask.errors import RtmaskError

distributed = pytest.importorskip("distributed")
DASK = str(Path(sys.executable).with_name("dask"))
NO_DASHBOARD = ("--no-dashboard", "--scheduler-file")  # followed by the file
ONE_THREAD = ("--nworkers", "1", "--nthreads", "1")
#: Runs a command (after the folder) in its own mount namespace, the folder an empty tmpfs.
HIDING = (
    "unshare",
    "--mount",
    "--propagation",
    "private",
    "sh",
    "-c",
    'mount -t tmpfs rtmask-test "$1" && shift && exec "$@"',
    "sh",
)


class Cluster:
    """A scheduler and workers as subprocesses (each in its own process group)."""

    def __init__(
        self, folder: Path, workers: int, env: dict[str, str], hidden: Path | None = None
    ) -> None:
        self.processes: list[subprocess.Popen[bytes]] = []
        file = folder / "scheduler.json"
        self._start(
            [DASK, "scheduler", "--host", "127.0.0.1", "--port", "0", *NO_DASHBOARD, str(file)],
            env,
        )
        deadline = time.monotonic() + 30
        while not file.is_file() and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(0.2)  # written at once, but let it finish
        self.address = json.loads(file.read_text())["address"]
        worker = [DASK, "worker", *NO_DASHBOARD, str(file), *ONE_THREAD, "--host", "127.0.0.1"]
        self.workers = [self._start(worker, env) for _ in range(workers)]
        if hidden is not None:  # one more worker, where ``hidden`` is an empty file system
            self.workers.append(self._start([*HIDING, str(hidden), *worker], env))
            workers += 1
        with distributed.Client(self.address, timeout=30) as client:
            client.wait_for_workers(workers, timeout=60)

    def _start(self, command: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
        process = subprocess.Popen(
            command,
            env={**os.environ, **env},
            start_new_session=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.processes.append(process)
        return process

    def kill(self, process: subprocess.Popen[bytes]) -> None:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()

    def close(self) -> None:
        for process in reversed(self.processes):
            self.kill(process)


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> Archive:
    return make_archive(tmp_path_factory.mktemp("dask-archive"))


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    started = Cluster(tmp_path, 2, {})
    try:
        yield started
    finally:
        started.close()


def test_dask_gives_the_same_results_as_processes(
    archive: Archive, cluster: Cluster, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    by_dask, by_jobs = tmp_path / "dask", tmp_path / "jobs"
    code = main(["convert", str(archive.root), "-o", str(by_dask), "--scheduler", cluster.address])
    assert code == 1, capsys.readouterr().err  # the broken and the orphan structure sets
    assert main(["convert", str(archive.root), "-o", str(by_jobs), "--jobs", "2"]) == 1
    capsys.readouterr()
    dask_rows, jobs_rows = read_rows(by_dask), read_rows(by_jobs)
    for rows in (dask_rows, jobs_rows):
        for row in rows.values():
            row.pop("seconds")
    assert dask_rows == jobs_rows
    assert {r["status"] for r in dask_rows.values()} == {"converted", "skipped", "failed"}
    assert tree(by_dask) == tree(by_jobs)
    assert not list(by_dask.rglob(".*"))  # the probe file is gone too


def test_a_worker_killed_mid_run(archive: Archive, tmp_path: Path) -> None:
    slow = Cluster(tmp_path, 2, {DELAY_HOOK: "0.8"})
    out = tmp_path / "out"

    def kill_one_worker() -> None:
        deadline = time.monotonic() + 60
        while not list(out.rglob("summary.json")) and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.3)  # the next cases are in progress
        slow.kill(slow.workers[0])

    killer = threading.Thread(target=kill_one_worker)
    try:
        killer.start()
        code = main(["convert", str(archive.root), "-o", str(out), "--scheduler", slow.address])
        killer.join()
    finally:
        slow.close()
    assert slow.workers[0].returncode is not None
    assert code == 1
    rows = read_rows(out)
    for source in archive.converted:
        row = rows[source]
        assert row["status"] in ("converted", "failed"), row
        finished = (out / row["output"] / "summary.json").is_file()
        assert finished == (row["status"] == "converted")
    assert sum(rows[s]["status"] == "converted" for s in archive.converted) >= 3
    assert not [p for p in out.rglob(".*") if p.parent != out]  # no half-written file


def test_local_cluster_and_bad_local_spec(archive: Archive, tmp_path: Path) -> None:
    out = tmp_path / "out"
    plan = plan_archive(archive.root, out, CaseOptions())
    results = []
    # Dask's default HTTP port held, as by another scheduler on the machine: the local
    # cluster takes a free port instead of warning (warnings are errors here) or failing.
    with contextlib.ExitStack() as stack:
        holder = stack.enter_context(socket.socket())
        with contextlib.suppress(OSError):  # already held: the same situation
            holder.bind(("0.0.0.0", 8787))
            holder.listen()
        DaskExecutor("local:1", archive.root, out).run(
            plan.tasks[:2], lambda index, result: results.append((index, result.status))
        )
    assert sorted(results) == [(0, "converted"), (1, "converted")]
    with pytest.raises(RtmaskError, match="local:N takes a number of workers"):
        DaskExecutor("local:x", archive.root, out).run(plan.tasks, lambda i, r: None)


def test_blind_worker_is_one_clear_error(tmp_path: Path) -> None:
    class Blind:  # a client whose workers see neither ROOT nor OUT
        def wait_for_workers(self, n: int, timeout: float) -> None:
            pass

        def run(self, function: object, root: str, probe: str) -> dict[str, str]:
            return {"tcp://10.0.0.2:4000": f"ROOT {root}", "tcp://10.0.0.3:4000": "ROOT"}

    executor = DaskExecutor("tcp://10.0.0.1:8786", tmp_path / "root", tmp_path / "out")
    with pytest.raises(RtmaskError, match=r"tcp://10\.0\.0\.2:4000 cannot see ROOT") as caught:
        executor._check_workers(Blind())
    assert "file system every worker shares" in str(caught.value)
    assert "2 workers" in str(caught.value)
    assert not list((tmp_path / "out").iterdir())  # the probe file is removed


def test_no_worker_is_one_clear_error(tmp_path: Path) -> None:
    class Empty:  # a scheduler no worker joins
        def wait_for_workers(self, n: int, timeout: float) -> None:
            raise TimeoutError(f"only 0 of {n} workers within {timeout} s")

    executor = DaskExecutor("tcp://10.0.0.1:8786", tmp_path / "root", tmp_path / "out")
    with pytest.raises(RtmaskError, match="no Dask worker joined the scheduler") as caught:
        executor._check_workers(Empty())
    assert "dask worker tcp://10.0.0.1:8786" in str(caught.value)


def _can_hide_folders() -> bool:
    """Whether this machine lets a process mount an empty file system over a folder."""
    if shutil.which("unshare") is None:
        return False
    command = [*HIDING[:-2], 'mount -t tmpfs rtmask-test "$1"', "sh", tempfile.gettempdir()]
    return subprocess.run(command, capture_output=True, check=False).returncode == 0


def test_a_worker_where_root_is_another_empty_folder_is_one_clear_error(
    archive: Archive, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    if not _can_hide_folders():
        pytest.skip("mount namespaces (unshare --mount) are not allowed here")
    # The second worker sees ROOT as an existing, empty folder (a share not mounted there).
    cluster = Cluster(tmp_path, 1, {}, hidden=archive.root)
    out = tmp_path / "out"
    try:
        with distributed.Client(cluster.address, timeout=30) as client:
            parents = {a: _parent(pid) for a, pid in client.run(os.getpid).items()}
        code = main(["convert", str(archive.root), "-o", str(out), "--scheduler", cluster.address])
    finally:
        cluster.close()
    err = capsys.readouterr().err
    assert code == 1
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, err
    # the worker named is the one in the other mount namespace (a child of its nanny)
    blind = next(a for a, parent in parents.items() if parent == cluster.workers[-1].pid)
    assert f"Dask worker {blind} cannot see ROOT {archive.root.resolve()}" in errors[0]
    assert "is missing there" in errors[0]
    assert "file system every worker shares" in errors[0]
    assert not list(out.rglob("summary.json"))  # no case was sent


def _parent(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(next(line for line in status.splitlines() if line.startswith("PPid:")).split()[1])


def test_a_scheduler_lost_or_workers_silent_during_the_check(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(executors, "CONNECT_TIMEOUT_S", 0.2)
    release = threading.Event()

    class Gone:  # the scheduler went away after the connection
        def wait_for_workers(self, n: int, timeout: float) -> None:
            raise OSError("connection reset by peer")

    class Silent(Gone):  # workers that never answer the check
        def wait_for_workers(self, n: int, timeout: float) -> None:
            pass

        def run(self, *arguments: object) -> dict[str, str]:
            release.wait(10)
            return {}

    executor = DaskExecutor("tcp://10.0.0.1:8786", tmp_path / "root", tmp_path / "out")
    with pytest.raises(RtmaskError, match=r"cannot reach the Dask scheduler \(OSError: connection"):
        executor._check_workers(Gone())
    try:
        with pytest.raises(RtmaskError, match=r"did not answer .* \(no answer within 0\.6 s\)"):
            executor._check_workers(Silent())
    finally:
        release.set()
    assert not list((tmp_path / "out").iterdir())  # the probe file is removed
