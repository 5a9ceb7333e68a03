"""Mutation fuzzing: damaged inputs must give rtmask's own errors, never a crash or a stray file.

The default budget (:data:`DEFAULT_CASES` cases on the synthetic seed, about 12 s) runs in
every test run. A long run also damages the real files in ``../shared/data`` when present::

    python -m pytest tests/test_fuzz.py --fuzz-cases 2000 --fuzz-jobs 2 --fuzz-report fuzz.jsonl

(or ``RTMASK_FUZZ_CASES=2000``; ``--fuzz-seed S`` draws other cases; 2 000 cases take about
20 minutes on two CPUs). A failing case is replayed alone with ``python tests/fuzzing.py
--seed S --case I --keep DIR`` (add ``--real`` for a case of a long run, which drew from the
real files too). The harness itself is tested below: each property it checks is shown to
catch a violation.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

import fuzz_inputs
import fuzzing
from fuzzing import CaseResult, Failure, Seed, Target

DEFAULT_CASES = 32

posix_only = pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")


@pytest.fixture(scope="module")
def synthetic_seed(tmp_path_factory: pytest.TempPathFactory) -> Seed:
    return fuzzing.write_synthetic_seed(tmp_path_factory.mktemp("seed") / "synthetic")


def test_fuzzed_inputs_fail_cleanly(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> None:
    config = request.config
    cases = config.getoption("--fuzz-cases") or DEFAULT_CASES
    seed = config.getoption("--fuzz-seed")
    root = tmp_path_factory.mktemp("fuzz")
    seeds = fuzzing.write_seeds(root / "seeds", real=cases > DEFAULT_CASES)
    report_path = config.getoption("--fuzz-report")
    results: list[CaseResult] = []
    start = time.perf_counter()
    with contextlib.ExitStack() as stack:
        report = stack.enter_context(Path(report_path).open("w")) if report_path else None
        for result in fuzzing.run_cases(
            seed, range(cases), seeds, root, jobs=max(1, config.getoption("--fuzz-jobs"))
        ):
            results.append(result)
            if report:
                report.write(json.dumps(result.to_json()) + "\n")
                report.flush()
    seconds = time.perf_counter() - start
    assert len(results) == cases
    assert all(result.commands for result in results if not result.failures)
    groups = fuzzing.distinct(results)
    failed = sum(1 for result in results if result.failures)
    summary = (
        f"{failed} of {cases} fuzz cases failed (seed {seed}, {seconds:.0f} s, sources "
        f"{sorted({s.name for s in seeds})}); {len(groups)} distinct failures:\n"
    )
    if groups:
        pytest.fail(summary + fuzzing.describe(groups, tracebacks=True), pytrace=False)


# --------------------------------------------------------------------------------------
# The mutations: deterministic, and each one changes the input.


def _copy(seed: Seed, folder: Path) -> Target:
    shutil.copytree(seed.folder, folder)
    return Target(folder)


def _contents(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


@pytest.mark.parametrize("name", sorted(fuzzing.MUTATIONS))
def test_every_mutation_changes_the_input_deterministically(
    name: str, synthetic_seed: Seed, tmp_path: Path
) -> None:
    original = _contents(synthetic_seed.folder)
    outcomes = []
    for run in range(2):
        target = _copy(synthetic_seed, tmp_path / f"run{run}")
        description = fuzz_inputs.MUTATIONS[name](np.random.default_rng(5), target)
        outcomes.append((description, _contents(target.folder)))
    assert outcomes[0] == outcomes[1]
    description, mutated = outcomes[0]
    assert "nothing" not in description
    assert mutated != original, description


def test_cases_are_reproducible(synthetic_seed: Seed) -> None:
    draws = [fuzzing.plan_case(3, 11, [synthetic_seed, synthetic_seed])[0].random() for _ in "ab"]
    assert draws[0] == draws[1]
    assert fuzzing.plan_case(3, 12, [synthetic_seed])[0].random() != draws[0]


def test_absurd_value_reaches_the_file_unchanged(synthetic_seed: Seed, tmp_path: Path) -> None:
    # A value no VR allows (pydicom refuses to write it) must arrive in the file as written.
    import pydicom

    target = _copy(synthetic_seed, tmp_path / "in")
    ds = pydicom.dcmread(target.rtdose)
    ds[0x3004000E] = fuzz_inputs._raw(0x3004000E, "DS", "one", implicit=False)
    ds.save_as(target.rtdose)
    assert pydicom.dcmread(target.rtdose).get_item(0x3004000E).value == b"one "


# --------------------------------------------------------------------------------------
# The checks: each catches what it is meant to catch.


def _case_with_outputs(tmp_path: Path) -> tuple[Path, dict[str, tuple[int, int]]]:
    case = tmp_path / "case"
    (case / "in").mkdir(parents=True)
    (case / "in" / "RS.dcm").write_bytes(b"x")
    (case / "a" / "b" / "out").mkdir(parents=True)
    return case, fuzzing._snapshot(case)


def test_check_outputs_accepts_complete_files(tmp_path: Path) -> None:
    import nibabel as nib

    case, before = _case_with_outputs(tmp_path)
    out = case / "a" / "b" / "out"
    nib.save(nib.Nifti1Image(np.zeros((2, 3, 4), np.uint8), np.eye(4)), out / "m.nii.gz")
    np.savez_compressed(out / "m.npz", a=np.arange(3))
    (out / "summary.json").write_text('{"volume_cm3": null}')
    assert fuzzing.check_outputs(case, before) == []


def test_check_outputs_finds_escapes_temporaries_and_broken_files(tmp_path: Path) -> None:
    import nibabel as nib

    case, before = _case_with_outputs(tmp_path)
    out = case / "a" / "b" / "out"
    (case / "x").write_text("escaped")  # what '../../../x' as a name would give
    (case / "in" / "RS.dcm").write_bytes(b"changed")
    nib.save(nib.Nifti1Image(np.zeros((20, 30, 40), np.uint8), np.eye(4)), out / "m.nii.gz")
    data = (out / "m.nii.gz").read_bytes()
    (out / "m.nii.gz").write_bytes(data[: len(data) // 2])
    (out / ".m.0123abcd.tmp.nii.gz").write_bytes(b"")
    (out / "summary.json").write_text('{"volume_cm3": NaN}')
    (out / "sum.dcm").write_bytes(b"DICM")
    found = {(f.kind, f.message.split(":")[0]) for f in fuzzing.check_outputs(case, before)}
    assert found == {
        ("escaped", "file written outside OUT"),
        ("escaped", "input file changed"),
        ("half-written", "temporary file left"),
        ("half-written", "a/b/out/m.nii.gz"),
        ("half-written", "a/b/out/summary.json"),
        ("half-written", "a/b/out/sum.dcm"),
    }


def test_run_command_reports_foreign_exceptions_and_bad_json(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import rtmask.cli._info as info

    monkeypatch.setattr(info, "run", lambda args, console: 1 // 0)
    code, failures = fuzzing.run_command(["info", str(tmp_path)], timeout_s=5)
    assert code == "ZeroDivisionError"
    assert [(f.kind, f.message) for f in failures] == [
        ("exception", "ZeroDivisionError: integer division or modulo by zero")
    ]
    assert "ZeroDivisionError" in failures[0].traceback

    def nan_json(args: object, console: object) -> int:
        print('{"volume": NaN}')
        return 0

    monkeypatch.setattr(info, "run", nan_json)
    code, failures = fuzzing.run_command(["info", str(tmp_path), "--json"], timeout_s=5)
    assert code == 0
    assert [f.kind for f in failures] == ["json"]


def test_run_command_accepts_rtmask_errors_and_usage_errors(tmp_path: Path) -> None:
    assert fuzzing.run_command(["info", str(tmp_path / "missing")], timeout_s=5) == (1, [])
    assert fuzzing.run_command(["convert", "--no-such-option"], timeout_s=5) == (
        "SystemExit(2)",
        [],
    )


def test_failures_are_grouped_by_type_and_location() -> None:
    def result(index: int, *failures: Failure) -> CaseResult:
        return CaseResult(seed=0, index=index, source="synthetic", failures=list(failures))

    a = Failure("exception", "dvh x y", "OSError: no memory", "raster/_memory.py:f:3")
    b = Failure("exception", "volumes x", "OSError: other text", "raster/_memory.py:f:3")
    c = Failure("exception", "dvh x y", "OSError: no memory", "dvh/_slabs.py:g:9")
    groups = fuzzing.distinct([result(0, a), result(1, b, c)])
    assert [len(members) for members in groups.values()] == [2, 1]
    assert "--seed 0 --case 0" in fuzzing.describe(groups, tracebacks=False)


@posix_only
def test_a_dying_or_hanging_case_is_a_failure_not_a_dead_run(
    monkeypatch: pytest.MonkeyPatch, synthetic_seed: Seed, tmp_path: Path
) -> None:
    def die(*args: object, progress: Callable[[str], None], **kwargs: object) -> CaseResult:
        progress('case {"source": "synthetic", "mutations": ["truncate: RS.dcm: ..."]}')
        progress("volumes RS.dcm")
        os.kill(os.getpid(), signal.SIGSEGV)
        raise AssertionError  # pragma: no cover

    monkeypatch.setattr(fuzzing, "run_case", die)
    (died,) = fuzzing.run_cases(0, [0], [synthetic_seed], tmp_path, timeout_s=5)
    assert [(f.kind, f.command, f.message) for f in died.failures] == [
        ("crash", "volumes RS.dcm", "SIGSEGV (the process died)")
    ]
    assert (died.source, died.mutations) == ("synthetic", ["truncate: RS.dcm: ..."])

    def hang(*args: object, **kwargs: object) -> CaseResult:
        time.sleep(60)
        raise AssertionError  # pragma: no cover

    monkeypatch.setattr(fuzzing, "run_case", hang)
    start = time.monotonic()
    (hung,) = fuzzing.run_cases(0, [1], [synthetic_seed], tmp_path, timeout_s=0.2)
    assert time.monotonic() - start < 10
    assert [f.kind for f in hung.failures] == ["timeout"]


@posix_only
def test_memory_cap_turns_a_runaway_allocation_into_a_failure(
    monkeypatch: pytest.MonkeyPatch, synthetic_seed: Seed, tmp_path: Path
) -> None:
    def allocate(*args: object, **kwargs: object) -> CaseResult:
        result = CaseResult(seed=0, index=0, source="synthetic")
        try:
            np.empty(8 * fuzzing.GIB, dtype=np.uint8)
        except MemoryError as error:
            result.failures.append(Failure("exception", "lib", f"MemoryError: {error}"))
        return result

    monkeypatch.setattr(fuzzing, "run_case", allocate)
    (result,) = fuzzing.run_cases(0, [0], [synthetic_seed], tmp_path, memory_bytes=6 * fuzzing.GIB)
    assert [f.message.split(":")[0] for f in result.failures] == ["MemoryError"]
