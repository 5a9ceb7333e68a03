"""A seeded mutation fuzzer for rtmask: damaged DICOM in, clean errors out.

Each case copies a seed input (a small synthetic CT + RTSTRUCT + RTDOSE written here, or
one of the real cases in ``../shared/data`` when present), damages it with one or two
mutations (truncation, byte flips, a deleted required element, an absurd value, a hostile
name, duplicated ROI numbers, a contour scaled by 1e6, a slice of another patient) and
runs the library entry points and every command of the command line on it, in process
(``rtmask.cli.main``). A case fails when

- an exception other than :class:`rtmask.RtmaskError` escapes (a usage error's
  ``SystemExit(2)`` is fine), or the process dies, hangs or exceeds its memory cap;
- a command prints a traceback, returns something other than an int, or prints JSON that
  strict JSON (no NaN, no Infinity) refuses;
- a file appears (or changes) outside OUT, a temporary file is left behind, or a written
  file does not load completely (NIfTI, NRRD, npz, JSON, DICOM, CSV, PNG).

Cases are deterministic: case ``i`` of seed ``s`` draws everything from
``numpy.random.default_rng([s, i])`` and can be replayed alone::

    python tests/fuzzing.py --seed 0 --case 17 --keep /tmp/case17

which writes the damaged input, prints the mutations and commands, and runs them.
Each case runs in a forked child with a time limit per command and a cap on the address
space it may add (4 GB), so a segmentation fault, an endless loop or a runaway allocation
is a reported failure, not a dead test run.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import io
import json
import math
import os
import re
import select
import shutil
import signal
import sys
import time
import traceback
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from fuzz_inputs import (
    MUTATIONS,
    REAL_SOURCES,
    WEIGHTS,
    Seed,
    Target,
    _pick,
    damage_masks,
    write_seeds,
    write_synthetic_seed,
)

__all__ = [
    "MUTATIONS",
    "REAL_SOURCES",
    "CaseResult",
    "Failure",
    "Seed",
    "Target",
    "check_outputs",
    "describe",
    "distinct",
    "run_case",
    "run_cases",
    "run_command",
    "write_seeds",
    "write_synthetic_seed",
]

_TEMP_NAME = re.compile(r"^\..*\.[0-9a-f]{8}\.tmp")  # export/_atomic.py's temporary names
GIB = 1024**3


# --------------------------------------------------------------------------------------
# One case


@dataclass
class Failure:
    """One broken property of one case."""

    kind: str  # exception, crash, timeout, traceback, exit-code, json, escaped, half-written
    command: str
    message: str
    location: str = ""
    traceback: str = ""

    @property
    def key(self) -> str:
        """What makes two failures the same: kind, exception type and where it was raised."""
        if self.kind in {"exception", "timeout"}:
            return f"{self.kind}: {self.message.split(':', 1)[0]} at {self.location}"
        if self.kind == "crash":
            signal_name = self.message.split(" (", 1)[0]
            return f"crash: {signal_name} at {self.location} in {self.command.split(' ', 1)[0]}"
        return f"{self.kind}: {self.command.split(' ', 1)[0]}: {_generic(self.message)}"


def _generic(message: str) -> str:
    """A message with its numbers and paths removed, for deduplication."""
    message = re.sub(r"/\S+", "PATH", message)
    return re.sub(r"\d+(\.\d+)?(e[-+]?\d+)?", "N", message)[:120]


@dataclass
class CaseResult:
    """What one case did and what broke."""

    seed: int
    index: int
    source: str
    mutations: list[str] = field(default_factory=list)
    commands: list[tuple[str, int | str]] = field(default_factory=list)
    failures: list[Failure] = field(default_factory=list)
    seconds: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> CaseResult:
        failures = [Failure(**f) for f in data.pop("failures")]
        commands = [tuple(c) for c in data.pop("commands")]
        return cls(**data, failures=failures, commands=commands)  # type: ignore[arg-type]


class CaseTimeout(BaseException):
    """Raised by the alarm inside a command that ran too long (never caught by rtmask)."""


def _location(error: BaseException) -> str:
    """``file:function:line`` of the innermost rtmask frame (else the innermost frame)."""
    frames = traceback.extract_tb(error.__traceback__)
    ours = [f for f in frames if "/rtmask/" in f.filename.replace("\\", "/")]
    frame = (ours or frames or [None])[-1]
    if frame is None:
        return "?"
    name = frame.filename.replace("\\", "/")
    name = name.split("/rtmask/", 1)[1] if "/rtmask/" in name else Path(name).name
    return f"{name}:{frame.name}:{frame.lineno}"


def plan_case(seed: int, index: int, seeds: Sequence[Seed]) -> tuple[np.random.Generator, Seed]:
    """The random generator and seed input of case ``index``."""
    rng = np.random.default_rng([seed, index])
    return rng, seeds[int(rng.integers(len(seeds)))]


def _commands(rng: np.random.Generator, case: Path, has_dose: bool) -> list[list[str]]:
    """The command lines of one case (inputs under case/in, outputs under case/a/b/out)."""
    inp, out = case / "in", case / "a" / "b" / "out"
    ct, rs, rd = str(inp / "ct"), str(inp / "RS.dcm"), str(inp / "RD.dcm")
    formats = ["nifti", "nifti", "npz", "labelmap", "nrrd", "seg"]
    convert = ["convert", str(inp), "-o", str(out / "masks"), "--format", _pick(rng, formats)]
    extra = _pick(rng, [[], [], [], ["--fractional", "2"], ["--resample", "3"], ["--roi", "*"]])
    if has_dose and rng.random() < 0.15 and "--format" in convert and "seg" not in convert:
        extra = ["--dose-grid", rd]
    commands = [
        ["info", str(inp), "--json"],
        [*convert, *extra],
        ["volumes", rs, "--image", ct, "--json"],
        ["to-rtstruct", str(out / "masks"), "--image", ct, "-o", str(out / "back.dcm")],
    ]
    if rng.random() < 0.2:
        commands.append(["info", str(inp)])
    if has_dose:
        dvh_options = _pick(
            rng, [[], [], ["--embedded"], ["--prescription", "14"], ["--end-caps", "none"]]
        )
        commands.append(["dvh", rs, rd, "--json", *dvh_options])
        if rng.random() < 0.3:
            commands.append(["dvh", rs, rd, "--csv", str(out / "dvh.csv")])
        sum_options = _pick(rng, [[], ["--scale", "1", "0.5"], ["--bits", "16"]])
        commands.append(["dose-sum", rd, rd, "-o", str(out / "sum.dcm"), *sum_options])
    commands.append(["report", str(out / "masks"), "-o", str(out / "report.html")])
    return commands


def _strict_json(text: str) -> None:
    def refuse(constant: str) -> None:
        raise ValueError(f"{constant} is not JSON")

    json.loads(text, parse_constant=refuse)


def run_command(argv: list[str], *, timeout_s: float) -> tuple[int | str, list[Failure]]:
    """Run one command line in process; return its exit code and what broke."""
    from rtmask import RtmaskError
    from rtmask.cli import main

    shown = " ".join(argv)
    failures: list[Failure] = []
    stdout, stderr = io.StringIO(), io.StringIO()
    code: int | str
    signal.alarm(max(1, math.ceil(timeout_s)))
    try:
        with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
            code = main(argv)
    except SystemExit as error:
        code = f"SystemExit({error.code})"
        if error.code != 2:
            failures.append(Failure("exit-code", shown, f"SystemExit({error.code!r})"))
    except CaseTimeout as error:
        code = "timeout"
        failures.append(
            Failure(
                "timeout",
                shown,
                f"CaseTimeout: more than {timeout_s:g} s",
                _location(error),
                traceback.format_exc(),
            )
        )
    except RtmaskError as error:  # main() should have caught it
        code = "RtmaskError"
        failures.append(
            Failure("exit-code", shown, f"{type(error).__name__} escaped main: {error}")
        )
    except BaseException as error:
        code = type(error).__name__
        failures.append(
            Failure(
                "exception",
                shown,
                f"{type(error).__name__}: {str(error)[:300]}",
                _location(error),
                traceback.format_exc(),
            )
        )
    finally:
        signal.alarm(0)
    if not isinstance(code, (int, str)) or isinstance(code, bool):
        failures.append(Failure("exit-code", shown, f"main returned {code!r}"))
    if "Traceback" in stderr.getvalue() or "Traceback" in stdout.getvalue():
        failures.append(Failure("traceback", shown, stderr.getvalue()[-500:]))
    if "--json" in argv and stdout.getvalue().strip():
        try:
            _strict_json(stdout.getvalue())
        except ValueError as error:
            failures.append(Failure("json", shown, f"stdout is not strict JSON: {error}"))
    return code, failures


def run_library(case: Path, *, timeout_s: float) -> list[Failure]:
    """The library entry points on the damaged input; only RtmaskError may escape."""
    from rtmask import RtmaskError, rasterize_all, read_image_series, read_rtstruct

    failures: list[Failure] = []
    inp = case / "in"

    def step(name: str, call: Callable[[], Any]) -> Any:
        signal.alarm(max(1, math.ceil(timeout_s)))
        try:
            return call()
        except RtmaskError:
            return None
        except CaseTimeout as error:
            failures.append(
                Failure(
                    "timeout",
                    f"lib {name}",
                    "CaseTimeout",
                    _location(error),
                    traceback.format_exc(),
                )
            )
        except BaseException as error:
            failures.append(
                Failure(
                    "exception",
                    f"lib {name}",
                    f"{type(error).__name__}: {str(error)[:300]}",
                    _location(error),
                    traceback.format_exc(),
                )
            )
        finally:
            signal.alarm(0)
        return None

    structure_set = step("read_rtstruct", lambda: read_rtstruct(inp / "RS.dcm"))
    series = step("read_image_series", lambda: read_image_series(inp / "ct"))
    if structure_set is not None and series is not None:
        step("rasterize_all", lambda: list(rasterize_all(structure_set, series.grid)))
    if structure_set is not None:
        from rtmask.dvh import compute_dvhs, contour_volume

        for roi in structure_set.rois:
            step("contour_volume", lambda roi=roi: contour_volume(roi))
        if (inp / "RD.dcm").exists():
            from rtmask.dose import read_dose

            dose = step("read_dose", lambda: read_dose(inp / "RD.dcm"))
            if dose is not None:
                step("compute_dvhs", lambda: list(compute_dvhs(structure_set.rois, dose)))
    return failures


def _snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    """Every file under ``folder``: relative path -> (size, mtime_ns)."""
    found = {}
    for path in folder.rglob("*"):
        if path.is_file() or path.is_symlink():
            stat = path.lstat()
            found[str(path.relative_to(folder))] = (stat.st_size, stat.st_mtime_ns)
    return found


def check_outputs(case: Path, before: dict[str, tuple[int, int]]) -> list[Failure]:
    """Nothing outside OUT, no temporary file, every output loads completely."""
    failures = []
    after = _snapshot(case)
    out = Path("a") / "b" / "out"
    for name, stat in sorted(after.items()):
        path = Path(name)
        if _TEMP_NAME.match(path.name):
            failures.append(Failure("half-written", "outputs", f"temporary file left: {name}"))
        elif out not in path.parents:
            if name not in before:
                failures.append(Failure("escaped", "outputs", f"file written outside OUT: {name}"))
            elif before[name] != stat:
                failures.append(Failure("escaped", "outputs", f"input file changed: {name}"))
    failures.extend(
        Failure("escaped", "outputs", f"input file removed: {name}")
        for name in sorted(set(before) - set(after))
    )
    for name in sorted(after):
        path = case / name
        if out in Path(name).parents and not _TEMP_NAME.match(path.name):
            problem = load_problem(path)
            if problem:
                failures.append(Failure("half-written", "outputs", f"{name}: {problem}"))
    return failures


def load_problem(path: Path) -> str | None:
    """Why ``path`` does not load completely by its suffix; None when it does."""
    name = path.name.lower()
    try:
        if name.endswith((".nii.gz", ".nii")):
            import nibabel as nib

            image = nib.load(path)
            np.asarray(image.dataobj)
            if not np.isfinite(image.affine).all():
                return "non-finite affine"
        elif name.endswith(".npz"):
            with np.load(path, allow_pickle=False) as archive:
                for key in archive.files:
                    archive[key]
        elif name.endswith(".json"):
            _strict_json(path.read_text(encoding="utf-8"))
        elif name.endswith(".dcm"):
            import pydicom

            ds = pydicom.dcmread(path)
            if "PixelData" in ds:
                ds.pixel_array  # noqa: B018
        elif name.endswith(".nrrd"):
            import nrrd

            nrrd.read(str(path))
        elif name.endswith(".csv"):
            path.read_text(encoding="utf-8")
        elif name.endswith(".png"):
            data = path.read_bytes()
            if not data.startswith(b"\x89PNG") or b"IEND" not in data[-16:]:
                return "not a complete PNG"
    except Exception as error:
        return f"{type(error).__name__}: {str(error)[:200]}"
    return None


def _on_alarm(signum: int, frame: Any) -> None:
    raise CaseTimeout


def run_case(
    seed: int,
    index: int,
    seeds: Sequence[Seed],
    root: Path,
    *,
    timeout_s: float = 60.0,
    progress: Callable[[str], None] | None = None,
) -> CaseResult:
    """Damage a copy of a seed input under ``root/<index>`` and run every command on it."""
    import pydicom

    rng, chosen = plan_case(seed, index, seeds)
    result = CaseResult(seed=seed, index=index, source=chosen.name)
    start = time.perf_counter()
    case = root / f"case{index:05d}"
    shutil.copytree(chosen.folder, case / "in")
    (case / "cwd").mkdir()
    target = Target(case / "in")
    names, weights = zip(*WEIGHTS.items(), strict=True)
    p = np.asarray(weights) / sum(weights)
    previous_cwd = Path.cwd()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pydicom.config.settings.reading_validation_mode = pydicom.config.IGNORE
        pydicom.config.settings.writing_validation_mode = pydicom.config.IGNORE
        for _ in range(1 if rng.random() < 0.8 else 2):
            mutation = str(rng.choice(names, p=p))
            try:
                result.mutations.append(f"{mutation}: {MUTATIONS[mutation](rng, target)}")
            except Exception as error:  # the seed no longer parses: mutate no further
                result.mutations.append(f"{mutation}: skipped ({type(error).__name__})")
        pydicom.config.settings.reading_validation_mode = pydicom.config.WARN
        pydicom.config.settings.writing_validation_mode = pydicom.config.RAISE
        before = _snapshot(case)
        if progress:  # so that a case whose process dies still says what it was
            progress("case " + json.dumps({"source": chosen.name, "mutations": result.mutations}))
        previous = signal.signal(signal.SIGALRM, _on_alarm)
        os.chdir(case / "cwd")
        try:
            for command in _commands(rng, case, target.rtdose.exists()):
                argv = command
                if argv[0] == "to-rtstruct" and Path(argv[1]).is_dir() and rng.random() < 0.3:
                    # Read back a damaged copy of the masks convert wrote.
                    shutil.copytree(argv[1], case / "masks_in")
                    result.mutations.append(f"masks: {damage_masks(rng, case / 'masks_in')}")
                    before.update(
                        (k, v) for k, v in _snapshot(case).items() if k.startswith("masks_in")
                    )
                    argv = [argv[0], str(case / "masks_in"), *argv[2:]]
                if progress:
                    progress(" ".join(argv))
                code, failures = run_command(argv, timeout_s=timeout_s)
                result.commands.append((" ".join(argv), code))
                result.failures.extend(failures)
            if progress:
                progress("lib")
            result.failures.extend(run_library(case, timeout_s=timeout_s))
        finally:
            os.chdir(previous_cwd)
            signal.signal(signal.SIGALRM, previous)
        result.failures.extend(check_outputs(case, before))
    result.seconds = time.perf_counter() - start
    return result


# --------------------------------------------------------------------------------------
# Isolation and many cases


@dataclass(frozen=True)
class _Settings:
    """What every case of one run shares."""

    seed: int
    seeds: Sequence[Seed]
    root: Path
    timeout_s: float
    memory_bytes: int


def _child(write: int, run: _Settings, index: int) -> None:
    """Body of the forked child: cap memory, run the case, report through the pipe."""
    import faulthandler

    # A fatal signal dumps the Python stack here; the parent reads where it died.
    faulthandler.enable(file=_crash_file(run.root, index).open("w"), all_threads=False)
    cap_address_space(run.memory_bytes)
    handle = os.fdopen(write, "w", buffering=1)

    def progress(text: str) -> None:
        if text.startswith("case "):
            handle.write(json.dumps({"case": json.loads(text[5:])}) + "\n")
        else:
            handle.write(json.dumps({"command": text}) + "\n")

    try:
        result = run_case(
            run.seed, index, run.seeds, run.root, timeout_s=run.timeout_s, progress=progress
        )
        handle.write(json.dumps({"result": result.to_json()}) + "\n")
    except BaseException as error:  # the harness itself broke: say so
        failure = Failure(
            "exception",
            "harness",
            f"{type(error).__name__}: {error}",
            _location(error),
            traceback.format_exc(),
        )
        result = CaseResult(seed=run.seed, index=index, source="?", failures=[failure])
        handle.write(json.dumps({"result": result.to_json()}) + "\n")
    handle.flush()


def cap_address_space(extra_bytes: int) -> None:
    """Let this process grow its address space by ``extra_bytes`` at most (RLIMIT_AS).

    The cap is relative to what the process already maps (a pytest process that ran the
    whole suite may map several GB), so every case gets the same room.
    """
    import resource

    try:
        pages = int(Path("/proc/self/statm").read_text().split()[0])
        current = pages * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        current = 0
    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    soft = current + extra_bytes
    if hard != resource.RLIM_INFINITY:
        soft = min(soft, hard)
    with contextlib.suppress(ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))


def _crash_file(root: Path, index: int) -> Path:
    return root / f"case{index:05d}.crash"


def _crash_location(path: Path) -> str:
    """The innermost rtmask frame of a faulthandler dump (most recent call first)."""
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return "?"
    for match in re.finditer(r'File "([^"]+)", line (\d+) in (\S+)', text):
        name = match.group(1).replace("\\", "/")
        if "/rtmask/" in name:
            return f"{name.split('/rtmask/', 1)[1]}:{match.group(3)}:{match.group(2)}"
    return "?"


@dataclass
class _Running:
    pid: int
    read: Any
    index: int
    deadline: float
    lines: list[str] = field(default_factory=list)


def _start(run: _Settings, index: int) -> _Running:
    read, write = os.pipe()
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        code = 0
        try:
            os.close(read)
            _child(write, run, index)
        except BaseException:
            code = 3
        finally:
            os._exit(code)
    os.close(write)
    # Generous: every command may take up to timeout_s before the child's alarm fires.
    return _Running(pid, os.fdopen(read, "r"), index, time.monotonic() + 12 * run.timeout_s)


def _finish(job: _Running, run: _Settings, timed_out: bool) -> CaseResult:
    if timed_out:
        os.kill(job.pid, signal.SIGKILL)
    _, status = os.waitpid(job.pid, 0)
    rest = job.read.read() if not timed_out else ""
    job.read.close()
    lines = job.lines + rest.splitlines()
    messages = []
    for line in lines:
        with contextlib.suppress(ValueError):  # a line cut short by a dying child
            messages.append(json.loads(line))
    for message in messages:
        if "result" in message:
            return CaseResult.from_json(message["result"])
    last = next((m["command"] for m in reversed(messages) if "command" in m), "?")
    result = CaseResult(seed=run.seed, index=job.index, source="?")
    for message in messages:
        if "case" in message:
            result.source = message["case"]["source"]
            result.mutations = list(message["case"]["mutations"])
    if timed_out:
        result.failures.append(Failure("timeout", last, "the case was killed (no answer)"))
    elif os.WIFSIGNALED(status):
        name = signal.Signals(os.WTERMSIG(status)).name
        where = _crash_location(_crash_file(run.root, job.index))
        result.failures.append(Failure("crash", last, f"{name} (the process died)", where))
    else:
        result.failures.append(
            Failure("crash", last, f"exit status {os.WEXITSTATUS(status)} without a result")
        )
    return result


def _preload() -> None:
    """Import every command and writer once, so that each forked case starts warm."""
    import importlib

    from rtmask.cli._main import COMMANDS

    for module in COMMANDS.values():
        importlib.import_module(f"rtmask.cli.{module}")
    for name in ("rtmask.dose", "rtmask.dvh", "rtmask.export", "rtmask.masks", "highdicom"):
        with contextlib.suppress(ImportError):
            importlib.import_module(name)


def run_cases(
    seed: int,
    indices: Sequence[int],
    seeds: Sequence[Seed],
    root: Path,
    *,
    jobs: int = 1,
    timeout_s: float = 60.0,
    memory_bytes: int = 4 * GIB,
    keep: bool = False,
) -> Iterator[CaseResult]:
    """Run cases in forked children, ``jobs`` at a time; yield their results as they end.

    Without ``os.fork`` (Windows) the cases run in this process, unisolated.
    """
    pending = list(indices)
    if not hasattr(os, "fork"):  # pragma: no cover - Windows
        for index in pending:
            result = run_case(seed, index, seeds, root, timeout_s=timeout_s)
            yield result
        return
    _preload()
    running: dict[int, _Running] = {}
    settings = _Settings(seed, seeds, root, timeout_s, memory_bytes)
    while pending or running:
        while pending and len(running) < jobs:
            job = _start(settings, pending.pop(0))
            running[job.read.fileno()] = job
        ready, _, _ = select.select(list(running), [], [], 1.0)
        now = time.monotonic()
        for fd in list(running):
            job = running[fd]
            timed_out = now > job.deadline
            if fd in ready and not timed_out:
                line = job.read.readline()
                if line:
                    job.lines.append(line)
                    if '"result"' not in line:
                        continue
            elif not timed_out:
                continue
            del running[fd]
            result = _finish(job, settings, timed_out)
            if not keep:
                shutil.rmtree(root / f"case{job.index:05d}", ignore_errors=True)
                _crash_file(root, job.index).unlink(missing_ok=True)
            yield result


def distinct(results: Sequence[CaseResult]) -> dict[str, list[tuple[CaseResult, Failure]]]:
    """Failures grouped by :attr:`Failure.key`, in order of first appearance."""
    groups: dict[str, list[tuple[CaseResult, Failure]]] = {}
    for result in results:
        for failure in result.failures:
            groups.setdefault(failure.key, []).append((result, failure))
    return groups


def describe(groups: dict[str, list[tuple[CaseResult, Failure]]], *, tracebacks: bool) -> str:
    """A readable report: one paragraph per distinct failure with its first reproduction."""
    lines = []
    for key, members in groups.items():
        result, failure = members[0]
        lines.append(f"- {key}  ({len(members)} times)")
        lines.append(f"    case: --seed {result.seed} --case {result.index} ({result.source})")
        lines.extend(f"    mutation: {m}" for m in result.mutations)
        lines.append(f"    command: rtmask {failure.command}")
        lines.append(f"    message: {failure.message[:300]}")
        if tracebacks and failure.traceback:
            lines.extend("      " + t for t in failure.traceback.rstrip().splitlines()[-8:])
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Replay one case (``--case``) or run many (``--cases``) outside pytest."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--case", type=int, help="replay this one case in this process")
    parser.add_argument("--cases", type=int, default=30)
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("--timeout", type=float, default=60.0)
    parser.add_argument("--real", action="store_true", help="also use ../shared/data")
    parser.add_argument("--keep", type=Path, help="folder to work in (kept)")
    parser.add_argument("--report", type=Path, help="write every result as JSON lines here")
    parser.add_argument(
        "--memory-gb", type=float, default=4.0, help="address space a case may add (GB)"
    )
    args = parser.parse_args(argv)
    memory_bytes = int(args.memory_gb * GIB)
    import tempfile

    root = args.keep or Path(tempfile.mkdtemp(prefix="rtmask-fuzz-"))
    root.mkdir(parents=True, exist_ok=True)
    seeds = write_seeds(root / "seeds", real=args.real)
    if args.case is not None:
        cap_address_space(memory_bytes)
        result = run_case(
            args.seed,
            args.case,
            seeds,
            root,
            timeout_s=args.timeout,
            progress=lambda c: print(c if c.startswith("case ") else f"rtmask {c}", flush=True),
        )
        print("\n".join(result.mutations))
        print(describe(distinct([result]), tracebacks=True) or "no failure")
        print(f"files in {root / f'case{args.case:05d}'}")
        return 1 if result.failures else 0
    results = []
    handle = args.report.open("w") if args.report else None
    for result in run_cases(
        args.seed,
        range(args.cases),
        seeds,
        root,
        jobs=args.jobs,
        timeout_s=args.timeout,
        memory_bytes=memory_bytes,
        keep=args.keep is not None,
    ):
        results.append(result)
        if handle:
            handle.write(json.dumps(result.to_json()) + "\n")
            handle.flush()
    print(describe(distinct(results), tracebacks=True) or "no failure")
    print(f"{len(results)} cases")
    return 1 if any(r.failures for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
