"""DVH benchmark: ``rtmask dvh`` against dicompyler-core, for time and accuracy.

    python benchmarks/bench_dvh.py [--breast FOLDER] [--peers-venv VENV] [--work DIR]
        [--json FILE] [--repeat N] [--analytic-repeat N] [--quick] [--lying] [--breast-only]

Two parts, every tool run as a subprocess on a warm file cache:

- ``analytic``: the analytic set of Nelms et al. (Med Phys 2015), written here with
  ``rtmask.synthetic``. For each contour spacing s of 0.2, 1, 2 and 3 mm, an axial CT
  grid (1 mm pixels, s mm slices) and an RTSTRUCT of three ROIs with their axes along z,
  42 mm apart along y, every centre at the same x and on the same CT slice: ``Sphere``
  (radius 12 mm), ``Cylinder`` (radius 12 mm, length 24 mm) and ``Cone`` (base radius
  12 mm, 12 mm below the centre, apex 12 mm above), every contour a 256-gon. For each
  dose grid of 1, 2 and 3 mm, each gradient direction (``across``: 16 Gy + 1 Gy/mm x
  (x - centre); ``along``: the same in z) and each shift (0: every centre on a dose voxel
  centre; 0.5: half a voxel off in all three axes), an RTDOSE covering the shapes and
  their half-slice end caps with a margin of at least 2 voxels (the dose clipped at 0 Gy
  more than 16 mm below the centre, at least 2.5 mm outside every ROI): 48 cases of three
  ROIs. References (``rtmask.synthetic.SlabStack.of_contours``): the exact solid of each
  ROI's contour stack with half-slice end caps, each contour the circle of its polygon's
  area; for the 0.2 mm contours the benchmark also prints how far these lie from the
  continuous solids (``SlabStack.of_solid``: the sphere, the cylinder 24 + s mm long and
  the cone with an s/2 mm disc under its base). Printed: times summed over the cases,
  the start-up floor of one process per case (median wall time of ``python -c pass``
  and of ``python -c "import numpy"``, as a share of dicompyler-core's time per case),
  Nelms-style pass rates (the share of volume, mean, min, max, D99, D95, D5, D1 and
  D0.03cc within 1 % and 3 % of the reference, overall and per contour spacing), the
  largest deviation per quantity, every deviation for the 2 mm dose grid without shift,
  every rtmask dvh value beyond 1 %, failed runs and ROI errors, and how far the rtmask
  API's values lie from rtmask dvh's. Then the two API scripts once more, each given
  every case in one process (the files of each case read afresh; start-up paid once, as
  in a batch script), ``--repeat`` times: their times and ratio, and how far those
  values lie from the per-case runs. ``--quick``: only s = 0.2 and 2 mm, the 2 mm dose
  grid, no shift (4 cases).
- ``lying`` (``--lying``, alone): a cylinder and a cone with their axis in the image
  plane (rectangle and hyperbola-bounded contours), gradient along the axis and across
  it in-plane and along the normal, against ``rtmask.synthetic.SectionStack``, in process
  (see ``analytic_lying.py``).
- ``breast``: ``../shared/data/dicompyler-breast`` (rtss.dcm, rtdose.dcm), compared with
  the volumes of the planning system's embedded DVHs (from that folder's README.txt).

Tools: ``rtmask dvh RS RD --json`` (the console script next to this Python, default
settings), ``peers/rtmask_dvh.py`` (the API: ``rtmask.dvh.compute_dvhs`` at its default
settings) and ``peers/dicompyler_dvh.py`` (``dicompylercore.dvhcalc.get_dvh`` at its
default settings, in the peers' venv with ``pydicom<3``; see ``setup_peers.sh``). Three
times per run: wall time around the subprocess (interpreter start-up and imports
included), and, reported by the two API scripts themselves, the in-process time
(imports, reading and every DVH) and the time after the imports (reading and every DVH:
the work each library does for the user). ``--repeat N`` runs each tool N times on the
breast plan and shows medians; ``--analytic-repeat N`` (default 1) runs the analytic
matrix N times (the cases interleaved, tool after tool) and shows the median of the
summed times. Markdown tables go to stdout, progress to stderr, everything to ``--json``
(default /work/bench/results-dvh.json).
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from rtmask.geometry import ImageGrid
from rtmask.synthetic import (
    CTSeries,
    RoiSpec,
    SlabStack,
    cone_contours,
    cylinder_contours,
    sphere_contours,
    write_ct_series,
    write_rtdose,
    write_rtstruct,
)

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))

from analytic_lying import print_lying, run_lying  # noqa: E402
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
QUANTITIES = ("volume_cm3", "mean_gy", "min_gy", "max_gy", "D99", "D95", "D5", "D1", "D0.03cc")
TOOLS = ("rtmask dvh", "rtmask API", "dicompyler-core")

# ----------------------------------------------------------------- the analytic set
CONTOUR_SPACINGS_MM = (0.2, 1.0, 2.0, 3.0)
DOSE_SPACINGS_MM = (1.0, 2.0, 3.0)
DIRECTIONS = ("across", "along")
SHIFTS = (0.0, 0.5)
RADIUS_MM = 12.0
LENGTH_MM = 24.0
N_VERTICES = 256
#: LPS mm: x and z of every ROI's centre, y of the Cylinder's (off every round number).
CENTRE_MM = np.array([3.3, -20.1, 12.4])
#: y offset of each ROI's centre from CENTRE_MM: a multiple of every dose grid spacing.
ROI_OFFSETS_MM = {"Sphere": -42.0, "Cylinder": 0.0, "Cone": 42.0}
CT_MARGIN_MM = 4.0
DOSE_MARGIN_VOXELS = 2
CENTRE_GY = 16.0
PASS_PERCENTS = (1.0, 3.0)
#: The configuration whose every deviation is printed: dose grid (mm) and shift.
SHOWN_GRID_MM, SHOWN_SHIFT = 2.0, 0.0


@dataclass(frozen=True, slots=True, kw_only=True)
class ContourSet:
    """One contour spacing: the CT written for it, its RTSTRUCT and each ROI's stack."""

    spacing_mm: float
    rtstruct: Path
    ct: CTSeries
    stacks: dict[str, SlabStack]


@dataclass(frozen=True, slots=True, kw_only=True)
class AnalyticCase:
    """One RTSTRUCT in one RTDOSE, with the reference values by ROI and quantity."""

    name: str
    spacing_mm: float
    grid_mm: float
    direction: str
    shift: float
    rtstruct: Path
    rtdose: Path
    references: dict[str, dict[str, float]]


def _area(points: NDArray[np.float64]) -> float:
    """Area (mm2) of an axial polygon ``(N, 3)`` (shoelace in x, y)."""
    x, y = (points[:, k] - points[:, k].mean() for k in (0, 1))
    return 0.5 * abs(float(x @ np.roll(y, -1) - y @ np.roll(x, -1)))


def _stack(contours: Sequence[NDArray[np.float64]]) -> SlabStack:
    """The exact solid of axial contours: planes from the centre, equal-area circles."""
    planes = np.array([float(c[:, 2].mean()) - CENTRE_MM[2] for c in contours])
    radii = np.array([math.sqrt(_area(c) / math.pi) for c in contours])
    order = np.argsort(planes)
    return SlabStack.of_contours(planes[order], radii[order], half_end_caps=True)


def _continuous(roi: str, spacing_mm: float) -> SlabStack:
    """The continuous solid of ``roi`` with half-slice end caps of ``spacing_mm`` contours."""
    r, half = RADIUS_MM, LENGTH_MM / 2
    if roi == "Sphere":
        return SlabStack.of_solid(lambda t: np.sqrt(np.maximum(r * r - t * t, 0.0)), -r, r)
    if roi == "Cylinder":
        cap = half + spacing_mm / 2
        return SlabStack.of_solid(lambda t: np.full_like(t, r), -cap, cap)

    def cone(t: NDArray[np.float64]) -> NDArray[np.float64]:
        return np.asarray(np.where(t < -half, r, r * (half - t) / LENGTH_MM))

    return SlabStack.of_solid(cone, -half - spacing_mm / 2, half)


def write_contour_set(folder: Path, spacing_mm: float) -> ContourSet:
    """CT (s mm slices, one through the centres) and RTSTRUCT of the three ROIs."""
    below = math.ceil((LENGTH_MM / 2 + CT_MARGIN_MM) / spacing_mm - 1e-9)
    y_low = min(ROI_OFFSETS_MM.values()) - RADIUS_MM - CT_MARGIN_MM
    y_high = max(ROI_OFFSETS_MM.values()) + RADIUS_MM + CT_MARGIN_MM
    columns = round(2 * (RADIUS_MM + CT_MARGIN_MM)) + 1
    ct_grid = ImageGrid.from_explicit(
        origin_mm=(
            CENTRE_MM[0] - (columns - 1) / 2 + 0.25,
            CENTRE_MM[1] + y_low + 0.25,
            CENTRE_MM[2] - below * spacing_mm,
        ),
        spacing_mm=(spacing_mm, 1.0, 1.0),
        shape=(2 * below + 1, round(y_high - y_low) + 1, columns),
    )
    ct = write_ct_series(folder / "ct", ct_grid)
    centres = {roi: CENTRE_MM + np.array([0.0, dy, 0.0]) for roi, dy in ROI_OFFSETS_MM.items()}
    contours = {
        "Sphere": sphere_contours(ct.grid, centres["Sphere"], RADIUS_MM, n=N_VERTICES),
        "Cylinder": cylinder_contours(
            ct.grid, centres["Cylinder"], RADIUS_MM, LENGTH_MM, n=N_VERTICES
        ),
        "Cone": cone_contours(
            ct.grid,
            centres["Cone"] + np.array([0.0, 0.0, LENGTH_MM / 2]),
            RADIUS_MM,
            -LENGTH_MM,
            n=N_VERTICES,
        ),
    }
    per_side = round(LENGTH_MM / 2 / spacing_mm)
    expected = {"Sphere": 2 * per_side - 1, "Cylinder": 2 * per_side + 1, "Cone": 2 * per_side}
    for roi, found in contours.items():
        if len(found) != expected[roi]:
            raise RuntimeError(f"{roi}: {len(found)} contours at {spacing_mm} mm, not {expected}")
    rois = [
        RoiSpec(number=k, name=roi, contours=tuple((c, "CLOSED_PLANAR") for c in found))
        for k, (roi, found) in enumerate(contours.items(), start=1)
    ]
    rtstruct = write_rtstruct(folder / "rtss.dcm", rois, ct)
    stacks = {roi: _stack(found) for roi, found in contours.items()}
    return ContourSet(spacing_mm=spacing_mm, rtstruct=rtstruct, ct=ct, stacks=stacks)


def _dose_axis(
    centre: float, low: float, high: float, spacing: float, shift: float
) -> NDArray[np.float64]:
    """Voxel centres ``centre + (k + shift) spacing`` covering [low, high] plus the margin."""
    first = math.floor((low - centre) / spacing - shift) - DOSE_MARGIN_VOXELS
    last = math.ceil((high - centre) / spacing - shift) + DOSE_MARGIN_VOXELS
    return np.asarray(centre + (np.arange(first, last + 1) + shift) * spacing)


def write_dose(
    path: Path, contour_set: ContourSet, grid_mm: float, along: bool, shift: float
) -> Path:
    """RTDOSE of 16 Gy + 1 Gy/mm from the centre along z or x (>= 0) over every ROI."""
    low = min(float(stack.lower_mm.min()) for stack in contour_set.stacks.values())
    high = max(float(stack.upper_mm.max()) for stack in contour_set.stacks.values())
    x, z = CENTRE_MM[0], CENTRE_MM[2]
    xs = _dose_axis(x, x - RADIUS_MM, x + RADIUS_MM, grid_mm, shift)
    ys = _dose_axis(
        CENTRE_MM[1],
        CENTRE_MM[1] + min(ROI_OFFSETS_MM.values()) - RADIUS_MM,
        CENTRE_MM[1] + max(ROI_OFFSETS_MM.values()) + RADIUS_MM,
        grid_mm,
        shift,
    )
    zs = _dose_axis(z, z + low, z + high, grid_mm, shift)
    grid = ImageGrid.from_explicit(
        origin_mm=(xs[0], ys[0], zs[0]),
        spacing_mm=(grid_mm,) * 3,
        shape=(zs.size, ys.size, xs.size),
        frame_of_reference_uid=contour_set.ct.frame_of_reference_uid,
    )
    offset = (zs - z)[:, None, None] if along else (xs - x)[None, None, :]
    dose = np.broadcast_to(np.maximum(CENTRE_GY + offset, 0.0), grid.shape)
    return write_rtdose(path, grid, dose, contour_set.ct)


def write_analytic_set(
    folder: Path, spacings: Sequence[float], grids: Sequence[float], shifts: Sequence[float]
) -> tuple[list[AnalyticCase], dict[str, Any]]:
    """Write every case; return them and the continuous-solid references (0.2 mm only)."""
    cases: list[AnalyticCase] = []
    continuous: dict[str, Any] = {}
    for spacing in spacings:
        contour_set = write_contour_set(folder / f"s{spacing:g}", spacing)
        references = {
            direction: {
                roi: stack.reference_values(along=direction == "along", centre_gy=CENTRE_GY)
                for roi, stack in contour_set.stacks.items()
            }
            for direction in DIRECTIONS
        }
        if spacing < 0.5:
            continuous[f"{spacing:g}"] = {
                direction: {
                    roi: {
                        "continuous": _continuous(roi, spacing).reference_values(
                            along=direction == "along", centre_gy=CENTRE_GY
                        ),
                        "contours": references[direction][roi],
                    }
                    for roi in contour_set.stacks
                }
                for direction in DIRECTIONS
            }
        for grid in grids:
            for direction in DIRECTIONS:
                for shift in shifts:
                    name = f"s{spacing:g}-g{grid:g}-{direction}-shift{shift:g}"
                    rtdose = write_dose(
                        folder / f"s{spacing:g}" / f"{name}.dcm",
                        contour_set,
                        grid,
                        direction == "along",
                        shift,
                    )
                    cases.append(
                        AnalyticCase(
                            name=name,
                            spacing_mm=spacing,
                            grid_mm=grid,
                            direction=direction,
                            shift=shift,
                            rtstruct=contour_set.rtstruct,
                            rtdose=rtdose,
                            references=references[direction],
                        )
                    )
    return cases, continuous


# ----------------------------------------------------------------- running the tools
def _flatten(entry: dict[str, Any]) -> dict[str, float]:
    values = {key: float(entry[key]) for key in ("volume_cm3", "mean_gy", "min_gy", "max_gy")}
    values.update({key: float(value) for key, value in entry.get("stats", {}).items()})
    return values


def run_tool(name: str, command: list[str], log: Path) -> dict[str, Any]:
    """Run one tool; return its wall time and per-ROI values (by ROI name)."""
    start = time.perf_counter()
    try:
        completed = subprocess.run(command, capture_output=True, text=True, check=False)
    except OSError as error:  # e.g. no peers' venv: report it, as for a failed run
        completed = subprocess.CompletedProcess(command, -1, "", f"{error}")
    wall = time.perf_counter() - start
    log.write_text(f"$ {' '.join(command)}\n{completed.stderr}", encoding="utf-8")
    result: dict[str, Any] = {"tool": name, "wall_s": wall, "returncode": completed.returncode}
    if completed.returncode != 0 and not completed.stdout.strip():
        result["error"] = completed.stderr.strip().splitlines()[-1:] or ["failed"]
        return result
    # Exit code 1 with JSON: some ROIs failed (the breast plan's empty Areola), the rest
    # were computed.
    try:
        document = json.loads(completed.stdout)
        result.update(
            {key: float(document[key]) for key in ("time_s", "compute_s") if key in document}
        )
        result["rois"] = {
            entry["name"]: _flatten(entry) for entry in document["rois"] if "error" not in entry
        }
        result["errors"] = {
            entry["name"]: entry["error"] for entry in document["rois"] if "error" in entry
        }
    except (ValueError, KeyError, TypeError) as error:
        result["returncode"] = -1
        result["error"] = [f"unreadable output: {type(error).__name__}: {error}"]
    return result


def tool_commands(
    rs: Path, rd: Path, rtmask_bin: Path, peer_python: Path
) -> list[tuple[str, list[str]]]:
    """The command of every tool in TOOLS for one structure set and dose."""
    return [
        ("rtmask dvh", [str(rtmask_bin), "dvh", str(rs), str(rd), "--json"]),
        ("rtmask API", [sys.executable, str(PEERS / "rtmask_dvh.py"), str(rs), str(rd)]),
        ("dicompyler-core", [str(peer_python), str(PEERS / "dicompyler_dvh.py"), str(rs), str(rd)]),
    ]


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


def print_times(case: str, runs: list[dict[str, Any]], heading: str | None = None) -> None:
    """Times of every tool and the ratios to dicompyler-core (the last run)."""
    peer = runs[-1]
    if heading is None:
        heading = f"{case}: time (median of {peer.get('repeats', 1)})"
    print(f"\n### {heading}\n")
    print("| tool | wall s | in-process s | after imports s |\n|---|---:|---:|---:|")
    for run in runs:
        status = ""
        if "error" in run:
            status = f" (failed: {run['error']})"
        elif run.get("errors"):
            status = f" (exit {run['returncode']}: {', '.join(sorted(run['errors']))} not computed)"
        print(
            f"| {run['tool']}{status} | {run['wall_s']:.3f} | {_seconds(run, 'time_s')} "
            f"| {_seconds(run, 'compute_s')} |"
        )
    print()
    if peer["returncode"] != 0:
        print(f"- no ratios: {peer['tool']} failed")
        return
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


def planning_system_values(rs: Path, rd: Path, rtmask_bin: Path) -> dict[str, dict[str, float]]:
    """The planning system's DVHs stored in the dose, per ROI name: volume, mean, D95, max.

    Read through ``rtmask dvh --embedded`` (the linked plan's 14 Gy turns the percent
    statistics into Gy); D95 is read off the stored curve.
    """
    command = [str(rtmask_bin), "dvh", str(rs), str(rd), "--embedded", "--json", "--stats", "D95"]
    completed = subprocess.run(command, capture_output=True, text=True, check=False)
    values = {}
    for entry in json.loads(completed.stdout)["rois"]:
        embedded = entry.get("embedded")
        if embedded:
            values[entry["name"]] = {
                "volume_cm3": embedded["volume_cm3"],
                "mean_gy": embedded["mean_gy"],
                "D95": embedded["stats"]["D95"],
                "max_gy": embedded["max_gy"],
            }
    return values


def print_breast_against_planning_system(
    runs: list[dict[str, Any]], planning: dict[str, dict[str, float]]
) -> None:
    """Per ROI and quantity: the planning system, rtmask dvh and dicompyler-core."""
    print("\n### breast: rtmask and dicompyler-core against the planning system's DVHs\n")
    print("| ROI | quantity | planning system | rtmask | dev | dicompyler-core | dev |")
    print("|---|---|---|---|---|---|---|")
    rtmask, peer = (run.get("rois", {}) for run in (runs[0], runs[-1]))
    worst = {"rtmask": 0.0, "dicompyler-core": 0.0}
    for roi, reference in planning.items():
        for quantity in ("volume_cm3", "mean_gy", "D95", "max_gy"):
            expected = reference[quantity]
            cells = [f"{expected:.4g}"]
            for tool, values in (("rtmask", rtmask), ("dicompyler-core", peer)):
                value = values.get(roi, {}).get(quantity)
                cells += ["-" if value is None else f"{value:.4g}", _deviation(value, expected)]
                # Small ROIs (single planes: slab conventions) and doses near 0 Gy
                # (relative deviations of noise) are listed, not summarised.
                if value is not None and expected > 0.5 and reference["volume_cm3"] >= 10:
                    worst[tool] = max(worst[tool], abs(value - expected) / expected * 100)
            print(f"| {roi} | {quantity} | {' | '.join(cells)} |")
    print(
        "\nlargest deviation from the planning system (ROIs of 10 cm3 or more, values above "
        "0.5 cm3 or Gy): " + ", ".join(f"{tool} {value:.2f} %" for tool, value in worst.items())
    )


def run_breast(
    folder: Path, repeat: int, rtmask_bin: Path, peer_python: Path, logs: Path
) -> list[dict[str, Any]]:
    """Time every tool on the breast plan and compare their values."""
    rs, rd = folder / "rtss.dcm", folder / "rtdose.dcm"
    for path in (rs, rd):
        path.read_bytes()  # warm the file cache
    breast = []
    for name, command in tool_commands(rs, rd, rtmask_bin, peer_python):
        log = logs / f"breast-{name.replace(' ', '-')}.log"
        repeats_breast = [run_tool(name, command, log) for _ in range(max(1, repeat))]
        breast.append(_median_run(repeats_breast))
    print_times("breast", breast)
    print_breast(breast)
    print_breast_against_planning_system(breast, planning_system_values(rs, rd, rtmask_bin))
    return breast


# ----------------------------------------------------------------- the analytic matrix
Runs = dict[str, dict[str, list[dict[str, Any]]]]  # case name -> tool -> one run per repeat
#: One value against its reference: case, ROI, quantity, deviation (%) or None if missing.
Row = tuple[AnalyticCase, str, str, "float | None"]
COMPARED = ("rtmask dvh", "dicompyler-core")


def run_analytic(
    cases: Sequence[AnalyticCase], repeats: int, rtmask_bin: Path, peer_python: Path, logs: Path
) -> Runs:
    """Run every tool on every case, ``repeats`` times over the whole matrix."""
    runs: Runs = {case.name: {tool: [] for tool in TOOLS} for case in cases}
    total = repeats * len(cases)
    for repeat in range(repeats):
        for number, case in enumerate(cases, start=1):
            for path in (case.rtstruct, case.rtdose):
                path.read_bytes()  # warm the file cache
            for name, command in tool_commands(case.rtstruct, case.rtdose, rtmask_bin, peer_python):
                log = logs / f"analytic-{case.name}-{name.replace(' ', '-')}.log"
                runs[case.name][name].append(run_tool(name, command, log))
            print(
                f"analytic {repeat * len(cases) + number}/{total}: {case.name}",
                file=sys.stderr,
                flush=True,
            )
    return runs


def summed_times(cases: Sequence[AnalyticCase], runs: Runs, repeats: int) -> list[dict[str, Any]]:
    """Per tool: the times summed over every case, the median over the repeats."""
    summary = []
    for tool in TOOLS:
        per_repeat = []
        for repeat in range(repeats):
            chosen = [runs[case.name][tool][repeat] for case in cases]
            entry: dict[str, Any] = {
                "tool": tool,
                "returncode": 0,
                "wall_s": sum(run["wall_s"] for run in chosen),
            }
            for key in ("time_s", "compute_s"):
                if all(key in run for run in chosen):
                    entry[key] = sum(run[key] for run in chosen)
            failed = sum(run["returncode"] != 0 for run in chosen)
            if failed:
                entry.update(returncode=1, error=f"{failed} of {len(chosen)} runs")
            per_repeat.append(entry)
        summary.append(_median_run(per_repeat))
    return summary


def print_times_by_spacing(cases: Sequence[AnalyticCase], runs: Runs, repeats: int) -> None:
    """Wall and after-import times per contour spacing, and their ratios to dicompyler-core.

    Shows where the summed ratio comes from: start-up is a fixed cost per run, and
    dicompyler-core's work grows with the number of contour planes.
    """
    print("\n### analytic: time per contour spacing (sums over its cases)\n")
    print(
        "| contours mm | cases | rtmask dvh wall s | dicompyler-core wall s | ratio "
        "| rtmask API after imports s | dicompyler-core after imports s | ratio |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|---:|")
    for spacing in sorted({case.spacing_mm for case in cases}):
        chosen = [case for case in cases if case.spacing_mm == spacing]
        times = {run["tool"]: run for run in summed_times(chosen, runs, repeats)}
        cli, api, peer = (times[tool] for tool in TOOLS)
        wall_ratio = cli["wall_s"] / peer["wall_s"]
        cells = [f"{spacing:g}", str(len(chosen)), f"{cli['wall_s']:.2f}"]
        cells += [f"{peer['wall_s']:.2f}", f"{wall_ratio:.3f}"]
        if "compute_s" in api and "compute_s" in peer:
            ratio = api["compute_s"] / peer["compute_s"]
            cells += [f"{api['compute_s']:.2f}", f"{peer['compute_s']:.2f}", f"{ratio:.3f}"]
        else:
            cells += ["-", "-", "-"]
        print(f"| {' | '.join(cells)} |")


def _first_good(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The first run that succeeded (values do not change between repeats), else the first."""
    return next((run for run in runs if run["returncode"] == 0), runs[0])


def deviation_rows(cases: Sequence[AnalyticCase], runs: Runs, tool: str) -> list[Row]:
    """Every value of ``tool`` against its reference, relative deviation in %."""
    rows: list[Row] = []
    for case in cases:
        found = _first_good(runs[case.name][tool]).get("rois", {})
        for roi, expected in case.references.items():
            for quantity in QUANTITIES:
                value = found.get(roi, {}).get(quantity)
                percent = None if value is None else 100.0 * (value / expected[quantity] - 1.0)
                rows.append((case, roi, quantity, percent))
    return rows


def pass_rates(rows: Sequence[Row], spacings: Sequence[float]) -> dict[str, dict[str, Any]]:
    """Share of values within each of PASS_PERCENTS, overall and per contour spacing."""
    groups: dict[str, list[Row]] = {
        f"{s:g}": [r for r in rows if r[0].spacing_mm == s] for s in spacings
    }
    groups["all"] = list(rows)
    rates = {}
    for label, group in groups.items():
        deviations = [abs(row[3]) for row in group if row[3] is not None]
        rates[label] = {
            "values": len(group),
            "missing": len(group) - len(deviations),
            **{
                f"within_{level:g}_percent": sum(d <= level for d in deviations)
                / max(len(group), 1)
                for level in PASS_PERCENTS
            },
        }
    return rates


def _where(case: AnalyticCase, roi: str) -> str:
    return (
        f"{roi}, s {case.spacing_mm:g}, g {case.grid_mm:g}, {case.direction}, shift {case.shift:g}"
    )


def print_accuracy(rows: dict[str, list[Row]], rates: dict[str, Any]) -> None:
    """Pass rates per contour spacing and the largest deviation per quantity."""
    levels = " | ".join(f"{tool} <= {level:g} %" for tool in COMPARED for level in PASS_PERCENTS)
    print("\n### analytic: share of values within 1 % and 3 % of the reference\n")
    print(f"| contours mm | values | {levels} |")
    print("|---|---:|" + "---:|" * (len(COMPARED) * len(PASS_PERCENTS)))
    for label in rates[COMPARED[0]]:
        cells = [
            f"{100 * rates[tool][label][f'within_{level:g}_percent']:.1f} %"
            for tool in COMPARED
            for level in PASS_PERCENTS
        ]
        print(f"| {label} | {rates[COMPARED[0]][label]['values']} | {' | '.join(cells)} |")
    for tool in COMPARED:
        missing = rates[tool]["all"]["missing"]
        if missing:
            print(f"\n- {tool}: {missing} values missing (failed runs or ROI errors: not within)")
    print("\n### analytic: largest |deviation| per quantity\n")
    print("| quantity | " + " | ".join(f"{tool} | where" for tool in COMPARED) + " |")
    print("|---|" + "---:|---|" * len(COMPARED))
    for quantity in QUANTITIES:
        cells = []
        for tool in COMPARED:
            present = [row for row in rows[tool] if row[2] == quantity and row[3] is not None]
            if not present:
                cells += ["-", "-"]
                continue
            worst = max(present, key=lambda row: abs(row[3] or 0.0))
            cells += [f"{worst[3]:+.2f} %", _where(worst[0], worst[1])]
        print(f"| {quantity} | {' | '.join(cells)} |")


def print_case_table(rows: dict[str, list[Row]]) -> None:
    """Every deviation of the shown configuration, both tools in each cell."""
    shown = {
        tool: {
            (row[0].direction, row[0].spacing_mm, row[1], row[2]): row[3]
            for row in rows[tool]
            if row[0].grid_mm == SHOWN_GRID_MM and row[0].shift == SHOWN_SHIFT
        }
        for tool in COMPARED
    }
    keys = list(dict.fromkeys(key[:3] for key in shown[COMPARED[0]]))
    if not keys:
        return
    print(
        f"\n### analytic: deviation (%) per case, dose grid {SHOWN_GRID_MM:g} mm, "
        f"shift {SHOWN_SHIFT:g}: {' / '.join(COMPARED)}\n"
    )
    print("| gradient | contours mm | ROI | " + " | ".join(QUANTITIES) + " |")
    print("|---|---:|---|" + "---:|" * len(QUANTITIES))
    for direction, spacing, roi in keys:
        cells = []
        for quantity in QUANTITIES:
            values = [shown[tool].get((direction, spacing, roi, quantity)) for tool in COMPARED]
            cells.append(" / ".join("-" if v is None else f"{v:+.2f}" for v in values))
        print(f"| {direction} | {spacing:g} | {roi} | {' | '.join(cells)} |")


def print_references(continuous: dict[str, Any]) -> None:
    """How far the contour-stack references lie from the continuous solids (0.2 mm)."""
    for spacing, by_direction in continuous.items():
        print(
            f"\n### analytic: contour-stack reference against the continuous solid, "
            f"{spacing} mm contours (%)\n"
        )
        print("| gradient | ROI | " + " | ".join(QUANTITIES) + " |")
        print("|---|---|" + "---:|" * len(QUANTITIES))
        for direction, by_roi in by_direction.items():
            for roi, pair in by_roi.items():
                cells = [
                    f"{100 * (pair['contours'][q] / pair['continuous'][q] - 1):+.3f}"
                    for q in QUANTITIES
                ]
                print(f"| {direction} | {roi} | {' | '.join(cells)} |")


def print_failures(cases: Sequence[AnalyticCase], runs: Runs) -> None:
    """Failed runs and ROI errors of every tool, and rtmask dvh against its API."""
    lines = []
    for case in cases:
        for tool in TOOLS:
            for run in runs[case.name][tool]:
                if run["returncode"] != 0:
                    lines.append(f"- {tool}, {case.name}: failed: {run.get('error')}")
                lines += [
                    f"- {tool}, {case.name}, {roi}: {error}"
                    for roi, error in run.get("errors", {}).items()
                ]
    if lines:
        print("\n### analytic: failures\n")
        print("\n".join(dict.fromkeys(lines)))
    differences = []
    for case in cases:
        cli, api = (_first_good(runs[case.name][tool]).get("rois", {}) for tool in TOOLS[:2])
        for roi, values in cli.items():
            differences += [
                abs(api[roi][q] / value - 1)
                for q, value in values.items()
                if q in QUANTITIES and q in api.get(roi, {}) and value != 0
            ]
    if differences:
        print(
            f"\nrtmask API against rtmask dvh: largest relative difference {max(differences):.2g} "
            f"over {len(differences)} values"
        )


def print_rtmask_outliers(rows: Sequence[Row], limit: int = 40) -> None:
    """Every rtmask dvh value more than 1 % from its reference (or missing)."""
    outliers = [row for row in rows if row[3] is None or abs(row[3]) > PASS_PERCENTS[0]]
    print(f"\n### analytic: rtmask dvh values beyond {PASS_PERCENTS[0]:g} %: {len(outliers)}\n")
    for case, roi, quantity, percent in outliers[:limit]:
        shown = "missing" if percent is None else f"{percent:+.3f} %"
        print(f"- {_where(case, roi)}: {quantity} {shown}")
    if len(outliers) > limit:
        print(f"- ... and {len(outliers) - limit} more (see the JSON)")


def run_one_process(
    cases: Sequence[AnalyticCase], repeats: int, peer_python: Path, logs: Path
) -> list[dict[str, Any]]:
    """Each API script once over every case (the files of each read afresh), ``repeats``
    times; the median run of each tool, with its values by case and ROI."""
    pairs = [str(path) for case in cases for path in (case.rtstruct, case.rtdose)]
    scripts = {
        "rtmask API": [sys.executable, str(PEERS / "rtmask_dvh.py"), *pairs],
        "dicompyler-core": [str(peer_python), str(PEERS / "dicompyler_dvh.py"), *pairs],
    }
    found = []
    for name, command in scripts.items():
        runs = []
        for repeat in range(repeats):
            print(f"one process: {name} ({repeat + 1}/{repeats})", file=sys.stderr, flush=True)
            log = logs / f"one-process-{name.replace(' ', '-')}.log"
            runs.append(_run_cases(name, command, log, cases))
        found.append(_median_run(runs))
    return found


def _run_cases(
    name: str, command: list[str], log: Path, cases: Sequence[AnalyticCase]
) -> dict[str, Any]:
    """Run an API script on many cases; its times and values by case (like run_tool)."""
    start = time.perf_counter()
    completed = subprocess.run(command, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - start
    log.write_text(f"$ {' '.join(command[:4])} ...\n{completed.stderr}", encoding="utf-8")
    result: dict[str, Any] = {"tool": name, "wall_s": wall, "returncode": completed.returncode}
    try:
        document = json.loads(completed.stdout)
        result.update(time_s=float(document["time_s"]), compute_s=float(document["compute_s"]))
        result["cases"] = {
            case.name: {e["name"]: _flatten(e) for e in entry["rois"] if "error" not in e}
            for case, entry in zip(cases, document["cases"], strict=True)
        }
    except (ValueError, KeyError, TypeError) as error:
        result["returncode"] = result["returncode"] or -1
        result["error"] = [f"unreadable output: {type(error).__name__}: {error}"]
    return result


def print_one_process(found: list[dict[str, Any]], runs: Runs) -> None:
    """Times of the one-process runs, and how far their values lie from the per-case runs."""
    print(f"\n### analytic: every case in one process per tool (median of {found[0]['repeats']})\n")
    print("| tool | wall s | in-process s | after imports s |\n|---|---:|---:|---:|")
    by_tool = {run["tool"]: run for run in found}
    for run in found:
        cells = [run["tool"]] + [_seconds(run, key) for key in ("wall_s", "time_s", "compute_s")]
        print(f"| {' | '.join(cells)} |")
    mine, peer = by_tool["rtmask API"], by_tool["dicompyler-core"]
    if mine["returncode"] == 0 and peer["returncode"] == 0:
        ratios = [f"{mine[key] / peer[key]:.3f}" for key in ("wall_s", "time_s", "compute_s")]
        print(f"| **ratio rtmask / dicompyler-core** | {' | '.join(ratios)} |")
        print(f"\ntarget: ratio <= {TARGET_TIME_RATIO}")
        worst = 0.0
        for case_name, rois in mine["cases"].items():
            for roi, values in rois.items():
                single = _first_good(runs[case_name]["rtmask API"]).get("rois", {}).get(roi, {})
                for quantity, value in values.items():
                    if single.get(quantity):
                        worst = max(worst, abs(value / single[quantity] - 1.0))
        print(
            "rtmask values in one process vs one process per case: "
            f"at most {100 * worst:.2g} % apart"
        )


def startup_floor(repeats: int = 15) -> dict[str, float]:
    """Median wall time (s) of a bare interpreter and of one that imports numpy only."""
    floor = {}
    for label, code in (("python", "pass"), ("python + numpy", "import numpy")):
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            subprocess.run([sys.executable, "-c", code], check=True)
            times.append(time.perf_counter() - start)
        floor[label] = sorted(times)[len(times) // 2]
    return floor


def print_startup_floor(floor: dict[str, float], times: list[dict[str, Any]], n_cases: int) -> None:
    """What start-up alone costs per case, against dicompyler-core's time per case."""
    peer = times[-1]
    if peer["returncode"] != 0:
        return
    per_case = peer["wall_s"] / n_cases
    print(f"\nstart-up floor, one process per case (dicompyler-core: {per_case:.3f} s a case):")
    for label, seconds in floor.items():
        print(f"- {label}: {seconds:.3f} s a case = {seconds / per_case:.3f} x dicompyler-core")


def report_analytic(
    cases: Sequence[AnalyticCase], runs: Runs, continuous: dict[str, Any], repeats: int
) -> dict[str, Any]:
    """Print every analytic table; return the JSON record of the matrix."""
    times = summed_times(cases, runs, repeats)
    print_times(
        "analytic",
        times,
        heading=f"analytic: time summed over {len(cases)} cases (median of {repeats})",
    )
    floor = startup_floor()
    print_startup_floor(floor, times, len(cases))
    print_times_by_spacing(cases, runs, repeats)
    spacings = sorted({case.spacing_mm for case in cases})
    rows = {tool: deviation_rows(cases, runs, tool) for tool in TOOLS}
    rates = {tool: pass_rates(rows[tool], spacings) for tool in TOOLS}
    print_accuracy(rows, rates)
    print_case_table(rows)
    print_references(continuous)
    print_rtmask_outliers(rows["rtmask dvh"])
    print_failures(cases, runs)
    return {
        "times": times,
        "startup_floor_s": floor,
        "pass_rates": rates,
        "continuous_references": continuous,
        "cases": [
            {
                "name": case.name,
                "contour_spacing_mm": case.spacing_mm,
                "dose_grid_mm": case.grid_mm,
                "gradient": case.direction,
                "shift_voxels": case.shift,
                "rtstruct": str(case.rtstruct),
                "rtdose": str(case.rtdose),
                "references": case.references,
                "runs": runs[case.name],
            }
            for case in cases
        ],
    }


def main() -> int:
    compile_rtmask()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--breast", type=Path, default=DEFAULT_BREAST)
    parser.add_argument("--peers-venv", type=Path, default=DEFAULT_BENCH / "peers-venv")
    parser.add_argument("--work", type=Path, default=DEFAULT_BENCH / "dvh")
    parser.add_argument("--json", type=Path, default=DEFAULT_BENCH / "results-dvh.json")
    parser.add_argument("--repeat", type=int, default=3, help="breast runs per tool (median)")
    parser.add_argument(
        "--analytic-repeat", type=int, default=1, help="runs of the analytic matrix per tool"
    )
    parser.add_argument(
        "--quick", action="store_true", help="analytic: 0.2 and 2 mm contours, 2 mm grid, no shift"
    )
    parser.add_argument(
        "--breast-only", action="store_true", help="only the breast plan (times and values)"
    )
    parser.add_argument(
        "--lying",
        action="store_true",
        help="only the shapes lying in the image plane (analytic_lying.py, in process)",
    )
    args = parser.parse_args()
    if args.lying:
        lying = run_lying()
        print_lying(lying)
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.with_name("results-dvh-lying.json").write_text(
            json.dumps(lying, indent=2), encoding="utf-8"
        )
        return 0
    rtmask_bin = Path(sys.executable).with_name("rtmask")
    peer_python = args.peers_venv / "bin" / "python"
    logs = args.work / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    results: dict[str, Any] = {}
    if not args.breast_only:
        print("writing the analytic set", file=sys.stderr, flush=True)
        cases, continuous = write_analytic_set(
            args.work / "analytic",
            (0.2, 2.0) if args.quick else CONTOUR_SPACINGS_MM,
            (SHOWN_GRID_MM,) if args.quick else DOSE_SPACINGS_MM,
            (SHOWN_SHIFT,) if args.quick else SHIFTS,
        )
        repeats = max(1, args.analytic_repeat)
        runs = run_analytic(cases, repeats, rtmask_bin, peer_python, logs)
        results["analytic"] = report_analytic(cases, runs, continuous, repeats)
        one_process = run_one_process(cases, max(1, args.repeat), peer_python, logs)
        print_one_process(one_process, runs)
        results["analytic_one_process"] = one_process
    if (args.breast / "rtss.dcm").is_file():
        results["breast"] = run_breast(args.breast, args.repeat, rtmask_bin, peer_python, logs)
    else:
        print(f"breast case skipped: {args.breast} not found")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(results, indent=2), encoding="utf-8")
    print(f"\nresults: {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
