"""``--scheduler``: its usage errors, and servers that are not a Dask scheduler (real sockets)."""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from cohort_archive import Archive, make_archive
from rtmask._scheduler import scheduler_problem
from rtmask.cli import main
from rtmask.cohort import DaskExecutor
from rtmask.cohort import _executors as executors
from rtmask.errors import RtmaskError

CLI = [sys.executable, "-c", "import sys; from rtmask.cli import main; sys.exit(main())"]
BAD_ADDRESSES = ("local:0", "local:x", "local:", "bogus", "tcp://", "tcp://host", "tcp://:8786")


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> Archive:
    return make_archive(tmp_path_factory.mktemp("scheduler-archive"))


# ------------------------------------------------------------------------ usage errors
@pytest.mark.parametrize(
    "address",
    [
        "local:1",
        "local:16",
        "tcp://127.0.0.1:8786",
        "tcp://[::1]:1",
        "tls://dask.example.org:65535",
    ],
)
def test_accepted_addresses(address: str) -> None:
    assert scheduler_problem(address) == ""


@pytest.mark.parametrize(
    "address",
    [*BAD_ADDRESSES, "local:²", "127.0.0.1:8786", "http://h:1", "tcp://h:0", "tcp://h:70000"],
)
def test_rejected_addresses_name_the_accepted_forms(address: str) -> None:
    problem = scheduler_problem(address)
    assert repr(address) in problem
    assert "tcp://HOST:PORT" in problem
    assert "local:" in problem
    with pytest.raises(RtmaskError, match=r"^--scheduler "):
        DaskExecutor(address, Path("root"), Path("out"))


def _usage(
    command: str, root: Path, out: Path, address: str
) -> list[str]:  # the command line of each command that takes --scheduler
    return {
        "convert": ["convert", str(root), "-o", str(out), "--scheduler", address],
        "dvh": ["dvh", str(root), "--table", str(out / "dvh.csv"), "--scheduler", address],
        "dataset": [
            "dataset",
            str(root),
            "-o",
            str(out),
            "--labels",
            "Cord",
            "--id",
            "1",
            "--name",
            "x",
            "--scheduler",
            address,
        ],
    }[command]


@pytest.mark.parametrize("command", ["convert", "dvh", "dataset"])
@pytest.mark.parametrize("address", BAD_ADDRESSES)
def test_a_bad_address_is_a_usage_error_before_anything_is_written(
    archive: Archive,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    command: str,
    address: str,
) -> None:
    out = tmp_path / "out"
    with pytest.raises(SystemExit) as caught:
        main(_usage(command, archive.root, out, address))
    assert caught.value.code == 2
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if "error:" in line]
    assert len(errors) == 1, err
    assert "argument --scheduler" in errors[0]
    assert "tcp://HOST:PORT" in errors[0]
    assert not out.exists()


# ------------------------------------------------------- servers that are not Dask's
class Server:
    """A TCP server on 127.0.0.1 that accepts and either never answers or answers HTTP."""

    def __init__(self, answer: bytes) -> None:
        self.answer = answer
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen()
        self.listener.settimeout(0.1)
        self.port = self.listener.getsockname()[1]
        self.stop = threading.Event()
        self.connections: list[socket.socket] = []
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while not self.stop.is_set():
            try:
                connection, _ = self.listener.accept()
            except TimeoutError:
                continue
            self.connections.append(connection)
            if self.answer:
                connection.sendall(self.answer)

    def close(self) -> None:
        self.stop.set()
        self.thread.join()
        for connection in [*self.connections, self.listener]:
            connection.close()


@pytest.fixture(params=["silent", "http"])
def server(request: pytest.FixtureRequest) -> Iterator[Server]:
    answer = b"HTTP/1.0 400 Bad request\r\nContent-Length: 0\r\n\r\n"
    started = Server(answer if request.param == "http" else b"")
    try:
        yield started
    finally:
        started.close()


def test_a_server_that_is_not_dask_is_one_error_line_soon(
    archive: Archive, server: Server, tmp_path: Path
) -> None:
    pytest.importorskip("distributed")
    address = f"tcp://127.0.0.1:{server.port}"
    command = [
        *CLI,
        "convert",
        str(archive.root),
        "-o",
        str(tmp_path / "o"),
        "--scheduler",
        address,
    ]
    start = time.monotonic()
    result = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
    assert time.monotonic() - start < 30
    assert result.returncode == 1
    assert server.connections  # it was asked
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, result.stderr
    assert errors[0].startswith(f"error: --scheduler {address}: cannot reach the Dask scheduler (")
    assert errors[0].endswith("check the address and that `dask scheduler` runs there")


@pytest.mark.parametrize(
    "address",
    [
        "tcp://127.0.0.1:9",  # nothing listens: refused
        "tcp://10.255.255.1:8786",  # unroutable (in some sandboxes a proxy answers, not Dask)
    ],
)
def test_an_unreachable_scheduler_is_one_error_line(
    archive: Archive,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    address: str,
) -> None:
    pytest.importorskip("distributed")
    monkeypatch.setattr(executors, "CONNECT_TIMEOUT_S", 2.0)
    start = time.monotonic()
    code = main(["convert", str(archive.root), "-o", str(tmp_path / "o"), "--scheduler", address])
    err = capsys.readouterr().err
    assert code == 1
    assert time.monotonic() - start < 20
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, err
    assert errors[0].startswith(f"error: --scheduler {address}: cannot reach the Dask scheduler")
    assert "out of memory" not in err
    assert "Traceback" not in err


def test_a_call_that_never_returns_is_a_timeout() -> None:
    release = threading.Event()
    start = time.monotonic()
    with pytest.raises(TimeoutError, match=r"no answer within 0\.2 s"):
        executors._within(0.2, release.wait)
    assert time.monotonic() - start < 2
    release.set()
    with pytest.raises(ZeroDivisionError):
        executors._within(5, lambda: 1 / 0)
    assert executors._within(5, lambda: 42) == 42


def test_details_of_failed_calls_are_short() -> None:
    assert "not speak Dask's protocol" in executors._detail(MemoryError("Unable to allocate 3 EiB"))
    assert executors._detail(OSError("refused\nmore")) == "OSError: refused"
    assert executors._detail(ValueError()) == "ValueError"
    assert len(executors._detail(ValueError("x" * 500))) < 200
    assert executors._detail(TimeoutError("no answer within 2 s")) == "no answer within 2 s"
