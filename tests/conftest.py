"""Shared pytest configuration: the fuzz test's budget options (see tests/test_fuzz.py)."""

from __future__ import annotations

import os

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("fuzz", "mutation fuzzing (tests/test_fuzz.py)")
    group.addoption(
        "--fuzz-cases",
        type=int,
        default=int(os.environ.get("RTMASK_FUZZ_CASES", "0")) or None,
        metavar="N",
        help="run N fuzz cases instead of the small default budget (env RTMASK_FUZZ_CASES); "
        "more than the default also uses the real files in ../shared/data when present",
    )
    group.addoption(
        "--fuzz-seed",
        type=int,
        default=int(os.environ.get("RTMASK_FUZZ_SEED", "0")),
        metavar="S",
        help="seed of the fuzz cases (env RTMASK_FUZZ_SEED, default 0)",
    )
    group.addoption(
        "--fuzz-jobs",
        type=int,
        default=int(os.environ.get("RTMASK_FUZZ_JOBS", "1")),
        metavar="J",
        help="fuzz cases run at once, each in its own process (env RTMASK_FUZZ_JOBS)",
    )
    group.addoption(
        "--fuzz-report",
        default=os.environ.get("RTMASK_FUZZ_REPORT"),
        metavar="FILE",
        help="write every fuzz case's result to FILE as JSON lines (env RTMASK_FUZZ_REPORT)",
    )
