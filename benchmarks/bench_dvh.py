"""DVH benchmark: ``rtmask dvh`` against dicompyler-core, for time and accuracy.

    python benchmarks/bench_dvh.py [--breast FOLDER] [--peers-venv VENV] [--work DIR]

Two cases, each tool run once as its own subprocess on a warm file cache:

- ``analytic``: written here with ``rtmask.synthetic`` (axial CT grid, 1 mm planes): a
  sphere (radius 12 mm) and a cylinder (radius 12 mm, length 24 mm, axis along the
  slices) in a linear dose of 1 Gy/mm across both axes, 16 Gy at each centre, on a 2 mm
  dose grid. Analytic references: the exact sphere (spherical caps) and the cylinder with
  half-slice end caps (length 24 + 1 mm), as in ``tests/test_dvh.py``.
- ``breast``: ``../shared/data/dicompyler-breast`` (rtss.dcm, rtdose.dcm), compared with
  the volumes of the planning system's embedded DVHs (from that folder's README.txt).

Tools: ``rtmask dvh RS RD --json`` (the console script next to this Python, default
settings), ``peers/rtmask_dvh.py`` (the API: ``rtmask.dvh.compute_dvhs`` at its default
settings) and ``peers/dicompyler_dvh.py`` (``dicompylercore.dvhcalc.get_dvh`` at its
default settings, in the peers' venv with ``pydicom<3``; see ``setup_peers.sh``). Three
times per run: wall time around the subprocess (interpreter start-up and imports
included), and, reported by the two API scripts themselves, the in-process time
(imports, reading and every DVH) and the time after the imports (reading and every DVH:
the work each library does for the user). ``--repeat N`` runs each tool N times and
shows medians. Markdown tables go to stdout, everything to ``--json`` (default
/work/bench/results-dvh.json).
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from rtmask.geometry import ImageGrid
from rtmask.synthetic import (
    RoiSpec,
    cylinder_contours,
    sphere_contours,
    write_ct_series,
    write_rtdose,
    write_rtstruct,
)

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))

from bench_convert import compile_rtmask  # noqa: E402

PEERS = HERE / "peers"
DEFAULT_BENCH = Path("/work/bench")
DEFAULT_BREAST = REPO.parent / "shared" / "data" / "dicompyler-breast"

#: Target of the issue: rtmask's wall time at most this fraction of dicompyler-core's.
TARGET_TIME_RATIO = 0.1
#: Volumes (cm3) of the planning system's embedded DVHs, from the breast README.txt.
EMBEDDED_VOLUMES_CM3 = {
    "Heart": 437.462,
    "Lt Lung": 2008.949,
    "Breast": 396.229,
    "BODY": 13944.42,
    "Tumor Bed": 12.809,
    "Tumor Bed Block": 62.883,
    "Scar": 0.343,
    "Nodes": 0.566,
    "Borders": 0.745,
}
QUANTITIES = ("volume_cm3", "mean_gy", "min_gy", "max_gy", "D99", "D95", "D5", "D1")

RADIUS_MM = 12.0
LENGTH_MM = 24.0
GAP_MM = 1.0
SPHERE_CENTRE = np.array([3.3, -20.1, 12.4])
CYLINDER_CENTRE = np.array([3.3, 20.2, 12.4])


def _inverse(volume_of: Callable[[float], float], volume_cm3: float) -> float:
    """Dose (Gy) where the decreasing V(D) equals ``volume_cm3`` (bisection)."""
    low, high = 0.0, 50.0
    for _ in range(80):
        middle = (low + high) / 2
        low, high = (middle, high) if volume_of(middle) >= volume_cm3 else (low, middle)
    return (low + high) / 2


def _segment_area(t: float) -> float:
    """Area (mm2) of the disc of radius RADIUS_MM beyond the offset ``t`` from its centre."""
    r = RADIUS_MM
    t = min(max(t, -r), r)
    return r * r * math.acos(t / r) - t * math.sqrt(r * r - t * t)


def _sphere_volume(dose: float) -> float:
    h = RADIUS_MM - min(max(dose - 16.0, -RADIUS_MM), RADIUS_MM)
    return math.pi * h * h * (3 * RADIUS_MM - h) / 3 / 1000.0


def _cylinder_volume(dose: float) -> float:
    return (LENGTH_MM + GAP_MM) * _segment_area(dose - 16.0) / 1000.0


def _analytic_values(volume_of: Callable[[float], float]) -> dict[str, float]:
    total = volume_of(0.0)
    values = {
        "volume_cm3": total,
        "mean_gy": 16.0,
        "min_gy": 16.0 - RADIUS_MM,
        "max_gy": 16.0 + RADIUS_MM,
    }
    for percent in (99, 95, 5, 1):
        values[f"D{percent}"] = _inverse(volume_of, total * percent / 100)
    return values


def write_analytic_case(folder: Path) -> tuple[Path, Path, dict[str, dict[str, float]]]:
    """Write CT, RTSTRUCT and RTDOSE of the analytic case; return the paths and references."""
    folder.mkdir(parents=True, exist_ok=True)
    ct_grid = ImageGrid.from_explicit(
        origin_mm=(-36.7, -49.9, -7.6), spacing_mm=(GAP_MM, 1.0, 1.0), shape=(41, 100, 80)
    )
    ct = write_ct_series(folder / "ct", ct_grid)
    sphere = sphere_contours(ct.grid, SPHERE_CENTRE, RADIUS_MM, n=256)
    cylinder = cylinder_contours(ct.grid, CYLINDER_CENTRE, RADIUS_MM, LENGTH_MM, n=256)
    rois = [
        RoiSpec(number=1, name="Sphere", contours=tuple((c, "CLOSED_PLANAR") for c in sphere)),
        RoiSpec(number=2, name="Cylinder", contours=tuple((c, "CLOSED_PLANAR") for c in cylinder)),
    ]
    rtstruct = write_rtstruct(folder / "rtss.dcm", rois, ct)
    dose_grid = ImageGrid.from_explicit(
        origin_mm=(SPHERE_CENTRE[0] - 15.0 + 0.37, -36.0 + 0.21, -6.0 + 0.13),
        spacing_mm=(2.0, 2.0, 2.0),
        shape=(19, 37, 16),
        frame_of_reference_uid=ct.frame_of_reference_uid,
    )
    index = np.stack(np.meshgrid(*[np.arange(k) for k in dose_grid.shape], indexing="ij"), -1)
    points = dose_grid.index_to_patient(index.reshape(-1, 3))
    dose = (16.0 + points[:, 0] - SPHERE_CENTRE[0]).reshape(dose_grid.shape)
    rtdose = write_rtdose(folder / "rtdose.dcm", dose_grid, dose, ct)
    references = {
        "Sphere": _analytic_values(_sphere_volume),
        "Cylinder": _analytic_values(_cylinder_volume),
    }
    return rtstruct, rtdose, references


def _flatten(entry: dict[str, Any]) -> dict[str, float]:
    values = {key: float(entry[key]) for key in ("volume_cm3", "mean_gy", "min_gy", "max_gy")}
    values.update({key: float(value) for key, value in entry.get("stats", {}).items()})
    return values


def run_tool(name: str, command: list[str], log: Path) -> dict[str, Any]:
    """Run one tool; return its wall time and per-ROI values (by ROI name)."""
    start = time.perf_counter()
    completed = subprocess.run(command, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - start
    log.write_text(f"$ {' '.join(command)}\n{completed.stderr}", encoding="utf-8")
    result: dict[str, Any] = {"tool": name, "wall_s": wall, "returncode": completed.returncode}
    if completed.returncode != 0:
        result["error"] = completed.stderr.strip().splitlines()[-1:] or ["failed"]
        return result
    document = json.loads(completed.stdout)
    for key in ("time_s", "compute_s"):
        if key in document:
            result[key] = float(document[key])
    result["rois"] = {
        entry["name"]: _flatten(entry) for entry in document["rois"] if "error" not in entry
    }
    result["errors"] = {
        entry["name"]: entry["error"] for entry in document["rois"] if "error" in entry
    }
    return result


def _deviation(value: float | None, reference: float) -> str:
    if value is None:
        return "-"
    if reference == 0:
        return f"{value:.3g}"
    return f"{100.0 * (value - reference) / reference:+.2f} %"


def _median_run(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The run with the median wall time, with every time replaced by its median."""
    ordered = sorted(runs, key=lambda run: run["wall_s"])
    chosen = dict(ordered[len(ordered) // 2])
    for key in ("wall_s", "time_s", "compute_s"):
        values = [run[key] for run in runs if key in run]
        if values:
            chosen[key] = float(np.median(values))
    chosen["repeats"] = len(runs)
    return chosen


def _seconds(run: dict[str, Any], key: str) -> str:
    return f"{run[key]:.3f}" if key in run else "-"


def print_times(case: str, runs: list[dict[str, Any]]) -> None:
    """Times of every tool and the ratios to dicompyler-core (the last run)."""
    peer = runs[-1]
    print(f"\n### {case}: time (median of {peer.get('repeats', 1)})\n")
    print("| tool | wall s | in-process s | after imports s |\n|---|---:|---:|---:|")
    for run in runs:
        status = "" if run["returncode"] == 0 else f" (failed: {run.get('error')})"
        print(
            f"| {run['tool']}{status} | {run['wall_s']:.3f} | {_seconds(run, 'time_s')} "
            f"| {_seconds(run, 'compute_s')} |"
        )
    print()
    for run in runs[:-1]:
        for key, what in (
            ("wall_s", "wall"),
            ("time_s", "in-process"),
            ("compute_s", "after imports"),
        ):
            if key in run and key in peer:
                ratio = run[key] / peer[key]
                verdict = "met" if ratio <= TARGET_TIME_RATIO else "not met"
                print(
                    f"- {run['tool']} / dicompyler-core, {what}: {ratio:.3f} "
                    f"(target <= {TARGET_TIME_RATIO}: {verdict})"
                )


def print_analytic(runs: list[dict[str, Any]], references: dict[str, dict[str, float]]) -> None:
    print("\n### analytic: deviation from the analytic value\n")
    print("| ROI | quantity | analytic | rtmask | dev | dicompyler-core | dev |")
    print("|---|---|---|---|---|---|---|")
    for roi, expected in references.items():
        for quantity in QUANTITIES:
            cells = []
            for run in (runs[0], runs[-1]):
                value = run.get("rois", {}).get(roi, {}).get(quantity)
                shown = "-" if value is None else f"{value:.4g}"
                cells += [shown, _deviation(value, expected[quantity])]
            print(f"| {roi} | {quantity} | {expected[quantity]:.4g} | {' | '.join(cells)} |")


def print_breast(runs: list[dict[str, Any]]) -> None:
    print("\n### breast: volume against the planning system's embedded DVH\n")
    print("| ROI | embedded cm3 | rtmask cm3 | dev | dicompyler-core cm3 | dev |")
    print("|---|---|---|---|---|---|")
    for roi, expected in EMBEDDED_VOLUMES_CM3.items():
        cells = []
        for run in (runs[0], runs[-1]):
            value = run.get("rois", {}).get(roi, {}).get("volume_cm3")
            cells += ["-" if value is None else f"{value:.3f}", _deviation(value, expected)]
        print(f"| {roi} | {expected:.3f} | {' | '.join(cells)} |")
    print("\n| ROI | rtmask mean Gy | dicompyler-core mean Gy | rtmask D99 | dicompyler-core D99 |")
    print("|---|---|---|---|---|")
    rtmask, peer = (run.get("rois", {}) for run in (runs[0], runs[-1]))
    for roi in rtmask:
        mine, theirs = rtmask[roi], peer.get(roi, {})
        print(
            f"| {roi} | {mine['mean_gy']:.4f} | {theirs.get('mean_gy', float('nan')):.4f} "
            f"| {mine.get('D99', float('nan')):.4f} | {theirs.get('D99', float('nan')):.4f} |"
        )


def main() -> int:
    compile_rtmask()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--breast", type=Path, default=DEFAULT_BREAST)
    parser.add_argument("--peers-venv", type=Path, default=DEFAULT_BENCH / "peers-venv")
    parser.add_argument("--work", type=Path, default=DEFAULT_BENCH / "dvh")
    parser.add_argument("--json", type=Path, default=DEFAULT_BENCH / "results-dvh.json")
    parser.add_argument("--repeat", type=int, default=3, help="runs per tool (median shown)")
    args = parser.parse_args()
    rtmask_bin = Path(sys.executable).with_name("rtmask")
    peer_python = args.peers_venv / "bin" / "python"
    logs = args.work / "logs"
    logs.mkdir(parents=True, exist_ok=True)

    rtstruct, rtdose, references = write_analytic_case(args.work / "analytic")
    cases: list[tuple[str, Path, Path]] = [("analytic", rtstruct, rtdose)]
    if (args.breast / "rtss.dcm").is_file():
        cases.append(("breast", args.breast / "rtss.dcm", args.breast / "rtdose.dcm"))
    else:
        print(f"breast case skipped: {args.breast} not found")

    results: dict[str, Any] = {}
    for case, rs, rd in cases:
        for path in (rs, rd):
            path.read_bytes()  # warm the file cache
        commands = [
            ("rtmask dvh", [str(rtmask_bin), "dvh", str(rs), str(rd), "--json"]),
            ("rtmask API", [sys.executable, str(PEERS / "rtmask_dvh.py"), str(rs), str(rd)]),
            (
                "dicompyler-core",
                [str(peer_python), str(PEERS / "dicompyler_dvh.py"), str(rs), str(rd)],
            ),
        ]
        runs = []
        for name, command in commands:
            log = logs / f"{case}-{name.replace(' ', '-')}.log"
            repeats = [run_tool(name, command, log) for _ in range(max(1, args.repeat))]
            runs.append(_median_run(repeats))
        results[case] = runs
        print_times(case, runs)
        if case == "analytic":
            print_analytic(runs, references)
        else:
            print_breast(runs)
    results["analytic_references"] = references
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(results, indent=2), encoding="utf-8")
    print(f"\nresults: {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
