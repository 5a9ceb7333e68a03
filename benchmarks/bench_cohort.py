"""Cohort benchmark: index, re-index, archive conversion (--jobs 1/2, Dask, plastimatch), memory.

    python benchmarks/bench_cohort.py [--patients 200] [--cases 32] [--slices 100]
        [--work /work/bench/cohort] [--skip plastimatch] [--skip dask]

In one run, with the archives of ``make_archive.py`` (written under ``--work`` unless
there already):

1. ``index``: an archive of ``--patients`` small synthetic patients plus broken files and
   the real data replicated: ``rtmask.cohort.index_archive`` into a new database (time
   per file), then again on the unchanged archive (target: <= 5 % of the first run).
2. ``convert``: ``--cases`` patients of realistic size (512 x 512 x ``--slices`` CT, 5-7
   ROIs), converted image + masks (``--no-dose``: the doses are not what plastimatch
   writes) by ``rtmask convert ROOT -o OUT --jobs 1``, ``--jobs 2`` and ``--scheduler
   local:2``, each a fresh subprocess timed from start to exit (scan, plan, every case,
   ``cases.csv``); and by plastimatch, one process per case, two at a time, each given a
   folder holding the case's CT slices and its RTSTRUCT (symbolic links), which is how
   plastimatch writes the image and the masks of one case::

       plastimatch convert --input CASE_DIR --output-img img.nii.gz
           --output-prefix masks --prefix-format nii.gz

   (``--input RS.dcm --referenced-ct CT_DIR --output-img ...`` writes the masks only:
   plastimatch's ``--output-img`` is the image of ``--input``.)
3. Memory: the peak resident set of every worker process (``VmHWM`` in ``/proc``, polled
   during the run; for ``--jobs 1`` the one process) against a single-case ``rtmask
   convert RS -o OUT`` of the largest case (``wait4``'s ``ru_maxrss``).

Prints each figure, then each target with PASS or FAIL, and writes ``results-cohort.json``
in ``--work``. CPU seconds (user + system of the process and its workers) are printed
beside the wall times: on a busy machine they show what the wall times cannot.
"""

from __future__ import annotations

import argparse
import compileall
import csv
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import rtmask
from make_archive import MANIFEST, REAL_DATA, write_archive
from rtmask.cohort import index_archive

BIN = Path(sys.executable).parent
TICKS = os.sysconf("SC_CLK_TCK")
RTMASK = str(BIN / "rtmask")
TARGETS = {
    "jobs2_speedup": 1.7,
    "dask_within": 0.15,
    "plastimatch_ratio": 5.0,
    "reindex_fraction": 0.05,
    "memory_ratio": 1.5,
}


# ----------------------------------------------------------------------------- processes
@dataclass
class Run:
    """A finished subprocess: wall and CPU seconds, peak memory of itself and its workers."""

    wall_s: float
    cpu_s: float  # the process and every descendant
    maxrss_kb: int  # the process (and the children it waited for), from wait4
    worker_peaks_kb: dict[int, int] = field(default_factory=dict)  # descendant pid -> VmHWM
    returncode: int = 0
    stderr: str = ""
    own_cpu_s: float = 0.0  # the process alone (its serial part, for --jobs N > 1)


def _children() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", encoding="ascii") as stat:
                ppid = int(stat.read().rpartition(")")[2].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        tree.setdefault(ppid, []).append(int(entry.name))
    return tree


def _descendants(pid: int) -> list[int]:
    tree, found, todo = _children(), [], [pid]
    while todo:
        for child in tree.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def _cpu_s(pid: int) -> float | None:
    """User + system CPU seconds of ``pid`` so far (its children not included)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
            fields = stat.read().rpartition(")")[2].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / TICKS


def _hwm_kb(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def run(command: list[str], *, cwd: Path | None = None) -> Run:
    """Run ``command``; poll its descendants' peak memory every 20 ms; wait4 it."""
    start = time.perf_counter()
    process = subprocess.Popen(
        command, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    peaks: dict[int, int] = {}
    cpu: dict[int, float] = {}
    done = threading.Event()

    def poll() -> None:
        while not done.is_set():
            for pid in _descendants(process.pid):
                hwm = _hwm_kb(pid)
                if hwm is not None:
                    peaks[pid] = max(peaks.get(pid, 0), hwm)
            for pid in [process.pid, *peaks]:
                seconds = _cpu_s(pid)
                if seconds is not None:
                    cpu[pid] = max(cpu.get(pid, 0.0), seconds)
            done.wait(0.02)

    poller = threading.Thread(target=poll, daemon=True)
    poller.start()
    stderr = process.stderr.read() if process.stderr is not None else ""
    os.waitid(os.P_PID, process.pid, os.WEXITED | os.WNOWAIT)  # exited, not reaped yet
    own_cpu = _cpu_s(process.pid) or 0.0  # the zombie's own final CPU time
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - start
    process.returncode = os.waitstatus_to_exitcode(status)
    done.set()
    poller.join()
    return Run(
        wall_s=wall,
        # the process itself exactly; its descendants as last seen (< 20 ms missed each)
        cpu_s=own_cpu + sum(v for pid, v in cpu.items() if pid != process.pid),
        maxrss_kb=usage.ru_maxrss,
        worker_peaks_kb=peaks,
        returncode=process.returncode,
        stderr=stderr,
        own_cpu_s=own_cpu,
    )


def compile_rtmask() -> None:
    """Write rtmask's bytecode before timing it, as ``pip install`` does.

    An editable install run with PYTHONDONTWRITEBYTECODE set would otherwise compile every
    rtmask module from source in every process it starts (~0.5 s of CPU each).
    """
    compileall.compile_dir(Path(rtmask.__file__).parent, quiet=1)


def warm(root: Path) -> None:
    """Read every file once: every tool then starts on a warm file cache."""
    for path in root.rglob("*"):
        if path.is_file():
            with path.open("rb") as stream:
                while stream.read(1 << 22):
                    pass


# ----------------------------------------------------------------------------- archives
def archive(
    folder: Path, patients: int, *, size: str, slices: int | None, plain: bool
) -> dict[str, Any]:
    """The archive in ``folder`` (written when missing or of another size)."""
    manifest_path = folder / MANIFEST
    if manifest_path.is_file():
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        if manifest["patients"] == patients and (slices is None or manifest["shape"][0] == slices):
            return dict(manifest)
        shutil.rmtree(folder)
    start = time.perf_counter()
    manifest = write_archive(folder, patients, size=size, slices=slices, plain=plain)
    print(f"  wrote {folder} in {time.perf_counter() - start:.0f} s")
    return manifest


# ----------------------------------------------------------------------------- parts
def bench_index(root: Path, work: Path) -> dict[str, Any]:
    index = work / "index.duckdb"
    for stale in (index, Path(f"{index}.stamp.json"), Path(f"{index}.wal")):
        stale.unlink(missing_ok=True)
    first = index_archive(root, index)
    second = index_archive(root, index)
    result = {
        "files": first.files,
        "first_s": first.seconds,
        "ms_per_file": 1000 * first.seconds / first.files,
        "reindex_s": second.seconds,
        "reindex_files_read": second.files_read,
        "reindex_fraction": second.seconds / first.seconds,
    }
    print(
        f"index: {first.files} files ({first.rois} ROIs) in {first.seconds:.2f} s = "
        f"{result['ms_per_file']:.2f} ms per file; unchanged re-index {second.seconds:.3f} s "
        f"({second.files_read} files read) = {100 * result['reindex_fraction']:.1f} % of the first"
    )
    return result


def converted(out: Path) -> int:
    with (out / "cases.csv").open(encoding="utf-8", newline="") as stream:
        return sum(row["status"] == "converted" for row in csv.DictReader(stream))


def rtmask_archive(root: Path, out: Path, runner: list[str], cases: int) -> dict[str, Any]:
    shutil.rmtree(out, ignore_errors=True)
    result = run([RTMASK, "convert", str(root), "-o", str(out), "--no-dose", "-q", *runner])
    done = converted(out) if (out / "cases.csv").is_file() else 0
    if done != cases or result.returncode:
        print(f"  {' '.join(runner)}: {done} of {cases} converted, exit {result.returncode}")
        print("  " + result.stderr.strip()[-2000:])
    workers = result.worker_peaks_kb
    return {
        "runner": " ".join(runner),
        "converted": done,
        "wall_s": result.wall_s,
        "cpu_s": result.cpu_s,
        "parent_cpu_s": result.own_cpu_s,
        "per_minute": 60 * done / result.wall_s,
        "peak_main_mb": result.maxrss_kb / 1024,
        "peak_worker_mb": (max(workers.values()) if workers else result.maxrss_kb) / 1024,
        "workers_seen": len(workers),
    }


def plastimatch_cases(manifest: dict[str, Any], root: Path, work: Path) -> dict[str, Any]:
    """plastimatch, one process per case, two at a time; inputs are folders of links."""
    inputs = work / "plastimatch-input"
    shutil.rmtree(inputs, ignore_errors=True)
    outs = work / "out" / "plastimatch"
    shutil.rmtree(outs, ignore_errors=True)
    cases = []
    for entry in manifest["synthetic"]:
        structure_set = root / entry["structure_set"]
        folder = inputs / entry["patient_id"]
        folder.mkdir(parents=True)
        for path in sorted((structure_set.parent / "CT").iterdir()):
            (folder / path.name).symlink_to(path)
        (folder / "RS.dcm").symlink_to(structure_set)
        cases.append((entry["patient_id"], folder))

    def one(case: tuple[str, Path]) -> Run:
        name, folder = case
        out = outs / name
        return run(
            [
                "plastimatch",
                "convert",
                "--input",
                str(folder),
                "--output-img",
                str(out / "img.nii.gz"),
                "--output-prefix",
                str(out / "masks"),
                "--prefix-format",
                "nii.gz",
            ]
        )

    start = time.perf_counter()
    with ThreadPoolExecutor(2) as pool:
        runs = list(pool.map(one, cases))
    wall = time.perf_counter() - start
    written = sum(
        (outs / name / "img.nii.gz").is_file() and any((outs / name / "masks").glob("*.nii.gz"))
        for name, _ in cases
    )
    if written != len(cases):
        print(f"  plastimatch wrote image and masks for {written} of {len(cases)} cases")
    return {
        "runner": "plastimatch, 2 at a time",
        "converted": written,
        "wall_s": wall,
        "cpu_s": sum(r.cpu_s for r in runs),
        "per_minute": 60 * written / wall,
        "peak_worker_mb": max(r.maxrss_kb for r in runs) / 1024,
    }


def single_case(manifest: dict[str, Any], root: Path, work: Path) -> dict[str, Any]:
    """``rtmask convert RS -o OUT`` of the case with the most ROIs (the largest)."""
    entry = max(manifest["synthetic"], key=lambda e: (len(e["rois"]), e["patient_id"]))
    out = work / "out" / "single"
    shutil.rmtree(out, ignore_errors=True)
    result = run(
        [RTMASK, "convert", str(root / entry["structure_set"]), "-o", str(out), "--no-dose", "-q"]
    )
    return {
        "case": entry["patient_id"],
        "wall_s": result.wall_s,
        "peak_mb": result.maxrss_kb / 1024,
    }


# ----------------------------------------------------------------------------- report
def _line(name: str, row: dict[str, Any]) -> None:
    print(
        f"  {name:<28} {row['converted']:>4} cases  {row['wall_s']:7.1f} s wall  "
        f"{row['cpu_s']:7.1f} s CPU  {row['per_minute']:7.1f} cases/min  "
        f"worker peak {row['peak_worker_mb']:6.0f} MB"
        + (f"  (parent {row['parent_cpu_s']:.1f} s CPU)" if "parent_cpu_s" in row else "")
    )


def targets(results: dict[str, Any]) -> list[tuple[str, bool | None, str]]:
    """(target, PASS/FAIL/None when not measured, the figures)."""
    rows: list[tuple[str, bool | None, str]] = []
    index = results.get("index")
    if index:
        fraction = index["reindex_fraction"]
        rows.append(
            (
                "re-index of the unchanged archive <= 5 % of the first run",
                fraction <= TARGETS["reindex_fraction"],
                f"{100 * fraction:.1f} %",
            )
        )
    conv = results.get("convert", {})
    jobs1, jobs2, dask, plasti = (conv.get(k) for k in ("jobs1", "jobs2", "dask2", "plastimatch"))
    if jobs1 and jobs2:
        speedup = jobs2["per_minute"] / jobs1["per_minute"]
        rows.append(
            (
                "--jobs 2 >= 1.7x --jobs 1",
                speedup >= TARGETS["jobs2_speedup"],
                f"{speedup:.2f}x (CPU: {jobs2['cpu_s'] / jobs1['cpu_s']:.2f}x --jobs 1's)",
            )
        )
    if jobs2 and dask:
        gap = 1 - dask["per_minute"] / jobs2["per_minute"]
        rows.append(
            (
                "Dask local:2 within 15 % of --jobs 2",
                gap <= TARGETS["dask_within"],
                (f"{100 * gap:+.1f} % slower" if gap >= 0 else f"{-100 * gap:.1f} % faster")
                + f" (CPU: {dask['cpu_s'] / jobs2['cpu_s']:.2f}x --jobs 2's)",
            )
        )
    if jobs2 and plasti:
        ratio = jobs2["per_minute"] / max(plasti["per_minute"], 1e-9)
        rows.append(
            (
                "--jobs 2 >= 5x plastimatch 2 at a time (image + masks)",
                ratio >= TARGETS["plastimatch_ratio"],
                f"{ratio:.1f}x (CPU per case: {plasti['cpu_s'] / jobs2['cpu_s']:.1f}x rtmask's)",
            )
        )
    single = results.get("single")
    if single:
        for key in ("jobs1", "jobs2", "dask2"):
            if conv.get(key):
                ratio = conv[key]["peak_worker_mb"] / single["peak_mb"]
                rows.append(
                    (
                        f"peak memory per worker ({key}) <= 1.5x a single case",
                        ratio <= TARGETS["memory_ratio"],
                        f"{conv[key]['peak_worker_mb']:.0f} MB / {single['peak_mb']:.0f} MB = "
                        f"{ratio:.2f}x",
                    )
                )
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=Path("/work/bench/cohort"))
    parser.add_argument("--patients", type=int, default=200, help="patients of the index archive")
    parser.add_argument("--cases", type=int, default=32, help="cases of the conversion archive")
    parser.add_argument("--slices", type=int, default=100, help="CT slices of a converted case")
    parser.add_argument(
        "--skip", action="append", default=[], choices=("index", "plastimatch", "dask", "memory")
    )
    args = parser.parse_args()
    if not Path(RTMASK).is_file():
        print(f"no rtmask console script next to {sys.executable}", file=sys.stderr)
        return 2
    if "plastimatch" not in args.skip and shutil.which("plastimatch") is None:
        print("plastimatch not found: install it or pass --skip plastimatch", file=sys.stderr)
        return 2
    args.work.mkdir(parents=True, exist_ok=True)
    compile_rtmask()
    results: dict[str, Any] = {"cases": args.cases, "patients": args.patients}
    if "index" not in args.skip:
        print(f"index archive: {args.patients} patients, broken files, real data ({REAL_DATA})")
        root = args.work / "index-archive"
        archive(root, args.patients, size="small", slices=None, plain=False)
        with tempfile.TemporaryDirectory(dir=args.work) as scratch:
            results["index"] = bench_index(root, Path(scratch))
    print(f"conversion archive: {args.cases} cases of 512 x 512 x {args.slices}")
    root = args.work / "convert-archive"
    manifest = archive(root, args.cases, size="realistic", slices=args.slices, plain=True)
    warm(root)
    out = args.work / "out"
    conv: dict[str, Any] = {}
    conv["jobs1"] = rtmask_archive(root, out / "jobs1", ["--jobs", "1"], args.cases)
    _line("rtmask --jobs 1", conv["jobs1"])
    conv["jobs2"] = rtmask_archive(root, out / "jobs2", ["--jobs", "2"], args.cases)
    _line("rtmask --jobs 2", conv["jobs2"])
    if "dask" not in args.skip:
        conv["dask2"] = rtmask_archive(root, out / "dask2", ["--scheduler", "local:2"], args.cases)
        _line("rtmask --scheduler local:2", conv["dask2"])
    if "plastimatch" not in args.skip:
        conv["plastimatch"] = plastimatch_cases(manifest, root, args.work)
        _line("plastimatch, 2 at a time", conv["plastimatch"])
    results["convert"] = conv
    if "memory" not in args.skip:
        results["single"] = single_case(manifest, root, args.work)
        print(
            f"  single case {results['single']['case']}: peak {results['single']['peak_mb']:.0f}"
            f" MB, {results['single']['wall_s']:.1f} s"
        )
    print("targets:")
    failed = 0
    for name, passed, figure in targets(results):
        failed += passed is False
        print(f"  {'PASS' if passed else 'FAIL'}  {name}: {figure}")
    results["targets"] = [{"target": n, "pass": p, "figure": f} for n, p, f in targets(results)]
    (args.work / "results-cohort.json").write_text(json.dumps(results, indent=1), encoding="utf-8")
    print(f"results: {args.work / 'results-cohort.json'}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
