"""Run the same case tasks serially, in a process pool, or on a Dask cluster.

An executor is chosen, never special-cased inside the tasks: each one calls
``on_result(index, result)`` once per task, as the results arrive, and turns a worker that
dies into a ``failed`` row of that case. Dask is imported only by :class:`DaskExecutor`.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import secrets
import select
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from multiprocessing import forkserver
from pathlib import Path
from typing import Any, Protocol

from rtmask._errors import RtmaskError
from rtmask._optional import import_optional
from rtmask._scheduler import scheduler_problem
from rtmask.cohort._tasks import failed_result, run_case

__all__ = [
    "DaskExecutor",
    "Executor",
    "ProcessExecutor",
    "SerialExecutor",
    "usable_cpus",
]

ResultCallback = Callable[[int, Any], None]
#: The per-case function an executor runs (a plain, picklable function of one task), and
#: the result it reports for a task whose worker died: ``failure(task, message)``.
TaskFunction = Callable[[Any], Any]
FailureFunction = Callable[[Any, str], Any]
#: Seconds to wait for a Dask scheduler to answer (connection and handshake); three times
#: that for its first worker and for the workers' answers to the shared-file-system check.
CONNECT_TIMEOUT_S = 10.0
#: Dask settings of a ``local:N`` cluster (read when it starts): workers forked from a
#: forkserver, and none of the monitoring meant for a dashboard (``local:N`` has none): the
#: workers' statistical profiler samples every 10 ms and the event loops check their health
#: every 20 ms, a few per cent of the CPUs the cases should have.
LOCAL_CLUSTER_CONFIG = {
    "distributed.worker.multiprocessing-method": "forkserver",
    "distributed.worker.profile.enabled": False,
    "distributed.admin.tick.interval": "1s",
    "distributed.admin.system-monitor.interval": "5s",
}
#: Tasks handed to the pool per worker process (one running, the next one queued).
QUEUED_PER_WORKER = 2
WORKER_DIED = (
    "the worker process converting it died ({detail}); nothing was written under a final name"
)


def usable_cpus() -> int:
    """The CPUs this process may run on (its affinity), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not on Linux
        return max(1, os.cpu_count() or 1)


class Executor(Protocol):
    """Something that runs :func:`run_case` (or another task function) over tasks."""

    def run(self, tasks: Sequence[Any], on_result: ResultCallback) -> None:
        """Run every task; call ``on_result(index, result)`` once for each."""


class SerialExecutor:
    """Every task in this process, one after the other."""

    def __init__(self, *, function: TaskFunction = run_case) -> None:
        self.function = function

    def run(self, tasks: Sequence[Any], on_result: ResultCallback) -> None:
        """Run every task in order."""
        for index, task in enumerate(tasks):
            on_result(index, self.function(task))


def _context(function: TaskFunction) -> multiprocessing.context.BaseContext:
    """Worker processes forked from a clean server that has imported ``function``'s module.

    ``forkserver``: no threads or locks inherited from this process (rich's refresh thread),
    unlike ``fork``; and, unlike ``spawn``, the library is imported once in the server,
    not again in every worker (~0.5 s of CPU each). ``spawn`` where there is no forkserver.
    """
    if "forkserver" not in multiprocessing.get_all_start_methods():  # pragma: no cover
        return multiprocessing.get_context("spawn")
    context = multiprocessing.get_context("forkserver")
    # Only heeded before the server starts (the first pool of this process); later pools
    # reuse the running server, which keeps what it imported.
    context.set_forkserver_preload(_preload(function))
    return context


#: Modules the tasks import on first use (lazily, so that single-case commands stay light):
#: the worker server imports them once, so that no worker pays for them again.
_LAZY_TASK_MODULES = ("nibabel",)


def _preload(function: TaskFunction) -> list[str]:
    return [function.__module__, *_LAZY_TASK_MODULES]


def start_workers_early(function: TaskFunction = run_case) -> None:
    """Start the worker server now, so that it imports rtmask while this process goes on.

    A :class:`ProcessExecutor` made later forks its workers from that server at once: the
    server's imports (about half a second) overlap this process's scan of the archive
    instead of following it. Harmless when the server is running already.
    """
    _start_forkserver(_preload(function))


def _start_forkserver(preload: list[str]) -> None:
    """Start this process's forkserver having imported ``preload`` (if not running yet).

    Started here, before Dask asks for it, so that it holds the task's module as well as
    Dask's; a running server is left as it is.
    """
    if "forkserver" not in multiprocessing.get_all_start_methods():  # pragma: no cover
        return
    multiprocessing.get_context("forkserver").set_forkserver_preload(preload)
    forkserver.ensure_running()


def _take_environment(environment: dict[str, str]) -> None:
    """In a new worker: the environment of the process that made the pool, as it is now.

    A forkserver's workers inherit the server's environment, fixed when it started.
    """
    os.environ.clear()
    os.environ.update(environment)


def _start_worker(environment: dict[str, str], parent: int) -> None:
    """A new worker's initializer: the pool maker's environment, and an end with it."""
    _take_environment(environment)
    _exit_with(parent)


#: The exit code of a worker that ends because the process that made its pool ended.
ORPHAN_EXIT = 75


def _orphan_exit() -> None:
    os._exit(ORPHAN_EXIT)  # pragma: no cover - ends a worker process


def _exit_with(pid: int, end: Callable[[], None] = _orphan_exit) -> None:
    """End this process as soon as process ``pid`` (the one that made the pool) ends.

    A forkserver's workers are not children of the pool's process: when that process is
    killed (``kill -9``), nothing tells them, and they would wait for tasks forever under
    PID 1. A daemon thread waits for ``pid`` to end, then ends this process at once; a
    case being converted leaves only temporary files (every file is written under a
    temporary name, then renamed), which the next run removes. ``end``: what ends it.
    """
    try:
        handle: int | None = os.pidfd_open(pid)  # readable once ``pid`` has ended
    except ProcessLookupError:  # ended already
        end()
        return
    except (AttributeError, OSError):  # pragma: no cover - no pidfd (not Linux >= 5.3)
        handle = None
    threading.Thread(
        target=_watch, args=(pid, handle, os.getppid(), end), name="rtmask-parent", daemon=True
    ).start()


def _watch(pid: int, handle: int | None, server: int, end: Callable[[], None]) -> None:
    """Wait for process ``pid`` to end (its pidfd ``handle``, else polling); then ``end()``."""
    if handle is not None:
        select.select([handle], [], [])
        os.close(handle)
    else:  # pragma: no cover - no pidfd: polled; a forkserver ends with its maker
        while os.getppid() == server and _alive(pid):
            time.sleep(0.5)
    end()


def _alive(pid: int) -> bool:  # pragma: no cover - only without pidfd
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class ProcessExecutor:
    """Tasks in ``jobs`` worker processes, each converting one case at a time.

    Memory is bounded by ``jobs`` cases: a worker holds one case; the few more tasks
    queued ahead (:data:`QUEUED_PER_WORKER`) are small descriptions, so a worker that
    finishes starts its next case at once instead of waiting for this process.

    A worker that dies (killed, out of memory, ``os._exit``) breaks the pool: the pool is
    restarted, and each case that was in flight is run again alone in a fresh one-process
    pool, so the case that kills its worker is found and reported failed while the others
    are converted. ``function`` and ``failure``: the task function (:func:`run_case` by
    default) and the result of a task whose worker died (:func:`failed_result`).
    """

    def __init__(
        self,
        jobs: int,
        *,
        function: TaskFunction = run_case,
        failure: FailureFunction = failed_result,
    ) -> None:
        if jobs < 1:
            raise ValueError(f"jobs must be at least 1, got {jobs}")
        self.jobs = jobs
        self.function = function
        self.failure = failure

    def _pool(self, workers: int) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(
            max_workers=workers,
            mp_context=_context(self.function),
            initializer=_start_worker,
            initargs=(dict(os.environ), os.getpid()),
        )

    def run(self, tasks: Sequence[Any], on_result: ResultCallback) -> None:
        """Run every task; a dead worker fails only the case that killed it."""
        pending = list(range(len(tasks)))
        pending.reverse()  # popped from the end: task order
        while pending:
            suspects = self._run_until_broken(tasks, pending, on_result)
            for index in suspects:
                on_result(index, self._run_alone(tasks[index]))

    def _run_until_broken(
        self, tasks: Sequence[Any], pending: list[int], on_result: ResultCallback
    ) -> list[int]:
        """Run pending tasks until done or the pool breaks; return the cases in flight then."""
        in_flight: dict[Future[Any], int] = {}
        pool = self._pool(self.jobs)
        try:
            while pending or in_flight:
                while pending and len(in_flight) < QUEUED_PER_WORKER * self.jobs:
                    index = pending.pop()
                    in_flight[pool.submit(self.function, tasks[index])] = index
                done, _ = wait(in_flight, return_when=FIRST_COMPLETED)
                broken = False
                for future in done:
                    error = future.exception()
                    if isinstance(error, BrokenProcessPool):
                        broken = True
                        continue
                    index = in_flight.pop(future)
                    if error is not None:  # e.g. a result that cannot be pickled
                        detail = f"{tasks[index].source}: {type(error).__name__}: {error}"
                        on_result(index, self.failure(tasks[index], detail))
                    else:
                        on_result(index, future.result())
                if broken:
                    return sorted(in_flight.values())
            return []
        finally:
            pool.shutdown(wait=True, cancel_futures=True)

    def _run_alone(self, task: Any) -> Any:
        """Run one task in its own process; a death there is this case's failure."""
        pool = self._pool(1)
        try:
            return pool.submit(self.function, task).result()
        except BrokenProcessPool as error:
            return self.failure(task, f"{task.source}: " + WORKER_DIED.format(detail=error))
        finally:
            pool.shutdown(wait=True)


def _sees(root: str, probe: str, sample: str = "", size: int = -1) -> str:
    """On a worker: empty when it sees ROOT and OUT as this process does, else what differs.

    ``probe``: a file just written into OUT under a random name. ``sample``: a file of ROOT
    the scan found, of ``size`` bytes: a worker where ROOT is another, empty folder (an
    unmounted share's mount point) misses it.
    """
    missing = []
    if not Path(root).exists():
        missing.append(f"ROOT {root}")
    elif sample:
        try:
            seen: int | None = Path(sample).stat().st_size
        except OSError:
            seen = None
        if seen != size:
            state = "is missing" if seen is None else f"has {seen} bytes, not {size}"
            missing.append(f"ROOT {root} as this machine does (its file {sample} {state} there)")
    if not Path(probe).is_file():
        missing.append(f"OUT {Path(probe).parent} (a file written there is not visible)")
    return " and ".join(missing)


def _attempt(call: Callable[[], Any]) -> tuple[bool, Any]:
    try:
        return True, call()
    except BaseException as error:  # handed to the waiting thread, which raises it
        return False, error


def _within(seconds: float, call: Callable[[], Any]) -> Any:
    """``call()``, waited for at most ``seconds``; TimeoutError when it is later.

    Dask's own time limits do not cover every stage: a server that accepts the connection
    and never answers holds ``distributed.Client(...)`` forever. The call runs in a daemon
    thread, which keeps no process alive when it is left waiting.
    """
    outcome: list[tuple[bool, Any]] = []
    thread = threading.Thread(
        target=lambda: outcome.append(_attempt(call)), name="rtmask-dask-call", daemon=True
    )
    thread.start()
    thread.join(seconds)
    if not outcome:
        raise TimeoutError(f"no answer within {seconds:g} s")
    finished, value = outcome[0]
    if not finished:
        raise value
    return value


def _detail(error: BaseException) -> str:
    """A short account of why a Dask call failed, for an error line."""
    if isinstance(error, MemoryError):  # a length read from bytes that are not Dask's
        return "the server there does not speak Dask's protocol: MemoryError reading its answer"
    text = str(error).strip().splitlines()[0] if str(error).strip() else ""
    if len(text) > 160:
        text = text[:157] + "..."
    if isinstance(error, TimeoutError) and text.startswith("no answer within"):
        return text
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


class DaskExecutor:
    """Tasks on a Dask distributed cluster.

    Parameters
    ----------
    scheduler
        ``tcp://HOST:PORT`` (or any address ``distributed.Client`` takes) of a running
        scheduler, or ``local:N`` for a :class:`distributed.LocalCluster` of N worker
        processes started here.
    root, out
        The archive and the output folder: every worker must see both (a shared file
        system); :meth:`run` checks it before sending any case.
    function, failure
        As for :class:`ProcessExecutor`.
    """

    def __init__(
        self,
        scheduler: str,
        root: Path,
        out: Path,
        *,
        function: TaskFunction = run_case,
        failure: FailureFunction = failed_result,
    ) -> None:
        problem = scheduler_problem(scheduler)
        if problem:
            raise RtmaskError(f"--scheduler {problem}")
        self.scheduler = scheduler
        self.root = root
        self.out = out
        self.function = function
        self.failure = failure

    def _client(self, distributed: Any) -> tuple[Any, Any]:
        """Connect (or start a local cluster); one clear error when it cannot."""
        if self.scheduler.startswith("local:"):
            count = self.scheduler.partition(":")[2]
            dask = import_optional("dask", extra="cohort", feature="--scheduler (Dask) runs")
            # Worker processes forked from a server that has imported distributed and the
            # task's module: they start in a fraction of spawn's time (each spawned worker
            # imports both again, ~1 s of CPU).
            _start_forkserver(["distributed", *_preload(self.function)])
            with dask.config.set(LOCAL_CLUSTER_CONFIG):
                cluster = distributed.LocalCluster(
                    n_workers=int(count),
                    threads_per_worker=1,
                    processes=True,
                    dashboard_address=None,
                    # No dashboard, but the scheduler's HTTP routes (health, metrics)
                    # still listen: on a free port, not 8787, which another Dask
                    # scheduler on the machine may hold.
                    scheduler_kwargs={"dashboard_address": "127.0.0.1:0"},
                )
            return cluster, distributed.Client(cluster)
        timeout = CONNECT_TIMEOUT_S
        try:
            # Whatever the connection raises (OSError, CommClosedError, a MemoryError from
            # a server that is not Dask's) or a server that never answers: one error.
            # Dask's own limit first, so that its reason (e.g. refused) is the one given.
            client = _within(
                timeout, lambda: distributed.Client(self.scheduler, timeout=0.8 * timeout)
            )
        except Exception as error:
            raise RtmaskError(self._unreachable(_detail(error))) from error
        return None, client

    def _unreachable(self, detail: str) -> str:
        return (
            f"--scheduler {self.scheduler}: cannot reach the Dask scheduler ({detail}); check "
            "the address and that `dask scheduler` runs there"
        )

    def run(self, tasks: Sequence[Any], on_result: ResultCallback) -> None:
        """Check the workers see ROOT and OUT, then run every task (retried once)."""
        distributed = import_optional(
            "distributed", extra="cohort", feature="--scheduler (Dask) runs"
        )
        cluster, client = self._client(distributed)
        try:
            self._check_workers(client, tasks[0].source if tasks else None)
            futures = {}
            token = secrets.token_hex(4)
            for index, task in enumerate(tasks):
                future = client.submit(
                    self.function,
                    task,
                    key=f"rtmask-case-{token}-{index}",
                    retries=1,
                    pure=False,
                )
                futures[future] = index
            for future in distributed.as_completed(futures):
                index = futures[future]
                try:
                    result = future.result()
                except Exception as error:  # KilledWorker, a lost connection
                    result = self.failure(
                        tasks[index],
                        f"{tasks[index].source}: "
                        + WORKER_DIED.format(detail=f"{type(error).__name__}: {error}"),
                    )
                on_result(index, result)
        finally:
            with contextlib.suppress(Exception):  # a scheduler gone: nothing left to close
                _within(CONNECT_TIMEOUT_S, lambda: client.close(timeout=CONNECT_TIMEOUT_S))
            if cluster is not None:
                cluster.close()

    def _check_workers(self, client: Any, sample: Path | None = None) -> None:
        """One clear error when no worker is there or one cannot see ROOT or OUT.

        ``sample``: a file under ROOT (the first case's): each worker must see it with the
        size it has here, not merely a folder named ROOT.
        """
        wait = CONNECT_TIMEOUT_S * 3
        try:
            _within(wait + CONNECT_TIMEOUT_S, lambda: client.wait_for_workers(1, timeout=wait))
        except TimeoutError as error:
            raise RtmaskError(
                f"no Dask worker joined the scheduler {self.scheduler} within {wait:g} s; "
                f"start one with `dask worker {self.scheduler}`"
            ) from error
        except Exception as error:  # the scheduler went away
            raise RtmaskError(self._unreachable(_detail(error))) from error
        seen: tuple[str, int] | tuple[()] = ()
        if sample is not None:
            seen = (str(sample.resolve()), sample.stat().st_size)
        self.out.mkdir(parents=True, exist_ok=True)
        probe = self.out / f".rtmask-probe-{secrets.token_hex(6)}"
        probe.write_text("rtmask: checking that the Dask workers see OUT\n", encoding="utf-8")
        where = (str(self.root.resolve()), str(probe.resolve()))
        try:
            answers = _within(wait, lambda: client.run(_sees, *where, *seen))
        except Exception as error:
            raise RtmaskError(
                f"--scheduler {self.scheduler}: the Dask workers did not answer the check that "
                f"they see ROOT and OUT ({_detail(error)}); check that every `dask worker` "
                "runs and is not busy with another client's tasks"
            ) from error
        finally:
            with contextlib.suppress(OSError):
                probe.unlink()
        blind = {worker: missing for worker, missing in answers.items() if missing}
        if blind:
            worker, missing = sorted(blind.items())[0]
            raise RtmaskError(
                f"Dask worker {worker} cannot see {missing}: ROOT and OUT must be on a file "
                "system every worker shares, under the same paths"
                + (f" ({len(blind)} workers affected)" if len(blind) > 1 else "")
            )
