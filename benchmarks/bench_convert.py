"""Conversion benchmark: rtmask against plastimatch, rt-utils and dcmrtstruct2nii.

    python benchmarks/bench_convert.py [--large FOLDER] [--lung1 FOLDER] [--peers-venv VENV]

For each case (the large synthetic case of ``make_large_case.py``, written first when
missing, and LUNG1-001 from ``../shared/data`` when present) every tool runs once as its
own subprocess, one after the other, on a warm file cache:

- ``rtmask convert RTSTRUCT -o OUT --image CT`` (the console script next to this Python),
  per-ROI ``.nii.gz`` end to end;
- ``plastimatch convert --xor-contours --output-prefix OUT --prefix-format nii.gz``;
- rt-utils (``peers/rtutils_masks.py``): every mask, written as ``.nii.gz`` with nibabel;
- dcmrtstruct2nii (``peers/dcmrtstruct2nii_convert.py``), masks only;
- in-memory masks, nothing written: rtmask's API (``peers/rtmask_masks.py``) and rt-utils
  (``peers/rtutils_masks.py`` without OUT), each keeping every mask in a dict.

Wall time is measured around the subprocess, peak memory is the child's maximum resident
set size (``os.wait4``). Every peer's masks are then compared voxel by voxel with
rtmask's, in patient space (each file's own affine). Results go to stdout (Markdown
tables) and to ``--json`` (default /work/bench/results-convert.json). A tool that fails
is reported as failed and the run goes on.
"""

from __future__ import annotations

import argparse
import compileall
import contextlib
import importlib.util
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
PEERS = HERE / "peers"
DEFAULT_BENCH = Path("/work/bench")
DEFAULT_LUNG1 = REPO.parent / "shared" / "data" / "lung1-001" / "LUNG1-001"

#: Targets of the issue, on the large case.
TARGET_WALL_VS_PLASTIMATCH = 0.5
TARGET_PEAK_VS_PLASTIMATCH = 1.0
TARGET_SPEEDUP_VS_RTUTILS = 20.0


@dataclass(frozen=True, slots=True)
class Case:
    name: str
    image: Path
    rtstruct: Path


@dataclass(frozen=True, slots=True)
class Tool:
    name: str
    kind: str  # "convert" (writes .nii.gz) or "masks" (in memory only)
    command: list[str]
    output: Path | None


@dataclass(slots=True)
class Run:
    tool: str
    kind: str
    command: list[str]
    returncode: int | None = None
    wall_s: list[float] = field(default_factory=list)
    peak_mb: list[float] = field(default_factory=list)
    log: str = ""
    error: str = ""
    n_outputs: int | None = None
    compute_s: list[float] = field(default_factory=list)  # after imports, as reported

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and bool(self.wall_s)

    @property
    def wall(self) -> float:
        return statistics.median(self.wall_s)

    @property
    def peak(self) -> float:
        return max(self.peak_mb)

    @property
    def compute(self) -> float | None:
        return statistics.median(self.compute_s) if self.compute_s else None


# ----------------------------------------------------------------------------- running
def measure(command: list[str], log: Path) -> tuple[int, float, float]:
    """Run ``command``; return (exit code, wall seconds, peak RSS in MB of the child).

    The command is started through GNU time (``/usr/bin/time``) when present: a child
    forked straight from this process would inherit this process's resident size as the
    starting point of its ``ru_maxrss`` (Linux keeps the high-water mark across exec), and
    this process holds hundreds of MB while it compares masks. GNU time is tiny, and its
    report (``%M``, KiB) is the peak of the tool alone.
    """
    gnu_time = Path("/usr/bin/time")
    report = log.with_suffix(".time")
    wrapped = command
    if gnu_time.exists():
        wrapped = [str(gnu_time), "-f", "%x %M", "-o", str(report), *command]
    with log.open("wb") as stream:
        start = time.perf_counter()
        process = subprocess.Popen(wrapped, stdout=stream, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(process.pid, 0)
        wall = time.perf_counter() - start
    process.returncode = os.waitstatus_to_exitcode(status)
    peak_kib = float(usage.ru_maxrss)  # KiB on Linux
    if wrapped is not command:
        fields = report.read_text().split()
        peak_kib = float(fields[-1])
    return process.returncode, wall, peak_kib / 1024.0


def warm_cache(case: Case) -> None:
    """Read every input file once, so that no tool pays for a cold page cache."""
    for path in [case.rtstruct, *sorted(p for p in case.image.rglob("*") if p.is_file())]:
        with path.open("rb") as stream:
            while stream.read(1 << 22):
                pass


def tools_for(case: Case, out: Path, peers_python: Path, rtmask_bin: Path) -> list[Tool]:
    image, rs = str(case.image), str(case.rtstruct)
    peers = str(peers_python)
    return [
        Tool(
            "rtmask convert",
            "convert",
            # Masks only, as the peers below write them: the image volume that convert
            # writes by default is left out of this like-for-like comparison.
            [
                str(rtmask_bin), "convert", rs, "-o", str(out / "rtmask"), "--image", image,
                "--no-image", "--no-dose",
            ],
            out / "rtmask",
        ),
        Tool(
            "plastimatch",
            "convert",
            [
                "plastimatch", "convert", "--input", rs, "--referenced-ct", image,
                "--xor-contours", "--output-prefix", str(out / "plastimatch"),
                "--prefix-format", "nii.gz",
            ],
            out / "plastimatch",
        ),
        Tool(
            "rt-utils",
            "convert",
            [peers, str(PEERS / "rtutils_masks.py"), image, rs, str(out / "rt-utils")],
            out / "rt-utils",
        ),
        Tool(
            "dcmrtstruct2nii",
            "convert",
            [peers, str(PEERS / "dcmrtstruct2nii_convert.py"), image, rs,
             str(out / "dcmrtstruct2nii")],
            out / "dcmrtstruct2nii",
        ),
        Tool("rtmask API", "masks", [sys.executable, str(PEERS / "rtmask_masks.py"), image, rs],
             None),
        Tool("rt-utils", "masks", [peers, str(PEERS / "rtutils_masks.py"), image, rs], None),
    ]  # fmt: skip


def _reported_compute_s(log: Path) -> float | None:
    """``compute_s`` from the JSON line an API script prints last, if it printed one."""
    lines = log.read_text(errors="replace").strip().splitlines()
    try:
        value = json.loads(lines[-1]).get("compute_s") if lines else None
    except (json.JSONDecodeError, AttributeError):
        return None
    return float(value) if isinstance(value, (int, float)) else None


def run_tool(tool: Tool, logs: Path, repeat: int) -> Run:
    run = Run(tool.name, tool.kind, tool.command)
    log = logs / f"{re.sub(r'[^A-Za-z0-9]+', '_', tool.name)}-{tool.kind}.log"
    run.log = str(log)
    executable = shutil.which(tool.command[0])
    if executable is None:
        run.error = f"{tool.command[0]} not found (run benchmarks/setup_peers.sh)"
        return run
    for _ in range(repeat):
        if tool.output is not None and tool.output.exists():
            shutil.rmtree(tool.output)
        try:
            code, wall, peak = measure(tool.command, log)
        except OSError as error:
            run.error = f"could not start: {error}"
            return run
        run.returncode = code
        if code != 0:
            tail = log.read_text(errors="replace").strip().splitlines()[-3:]
            run.error = f"exit code {code}: " + " | ".join(tail)
            return run
        run.wall_s.append(wall)
        run.peak_mb.append(peak)
        reported = _reported_compute_s(log)
        if reported is not None:
            run.compute_s.append(reported)
    if tool.output is not None:
        run.n_outputs = len(list(tool.output.glob("*.nii.gz")))
    return run


# ----------------------------------------------------------------------------- agreement
def _key(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower())


def mask_files(tool: str, folder: Path, roi_names: list[str]) -> dict[str, Path]:
    """Map each ROI name to the .nii.gz a tool wrote for it (by the tool's naming)."""
    if tool == "rtmask convert":
        summary = json.loads((folder / "summary.json").read_text())
        return {row["name"]: folder / row["file"] for row in summary["rois"] if row.get("file")}
    if tool == "rt-utils":
        names = json.loads((folder / "names.json").read_text())
        return {name: folder / file for name, file in names.items()}
    by_key: dict[str, Path] = {}
    for path in folder.glob("*.nii.gz"):
        stem = path.name[: -len(".nii.gz")]
        if tool == "dcmrtstruct2nii":
            stem = stem.removeprefix("mask_")
        by_key.setdefault(_key(stem), path)
    return {name: by_key[_key(name)] for name in roi_names if _key(name) in by_key}


def load_mask(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """A NIfTI mask as ``(bool array, RAS affine)``."""
    import nibabel as nib

    image = nib.load(str(path))
    data = np.asarray(image.dataobj)
    while data.ndim > 3 and data.shape[-1] == 1:
        data = data[..., 0]
    return data > 0, np.asarray(image.affine, dtype=np.float64)


def resample_into(
    reference_affine: np.ndarray,
    reference_shape: tuple[int, ...],
    affine: np.ndarray,
    data: np.ndarray,
) -> tuple[np.ndarray, int, float]:
    """Put ``data`` (on ``affine``) onto the reference voxel grid, by patient position.

    Returns the mask on the reference grid, the number of its voxels that fall outside
    the reference grid and the largest distance (in voxels) between a mapped voxel centre
    and the reference voxel centre it lands on (0 for the same grid, up to any axis
    permutation or flip).
    """
    transform = np.linalg.solve(reference_affine, affine)  # data index -> reference index
    linear, shift = transform[:3, :3], transform[:3, 3]
    rounded = np.round(linear)
    is_permutation = (
        np.allclose(linear, rounded, atol=1e-3)
        and np.all(np.abs(rounded).sum(axis=0) == 1)
        and np.all(np.abs(rounded).sum(axis=1) == 1)
    )
    if is_permutation:
        axes = [int(np.flatnonzero(rounded[r])[0]) for r in range(3)]
        signs = [int(rounded[r, axes[r]]) for r in range(3)]
        moved = data.transpose(axes)
        offsets = []
        for r in range(3):
            if signs[r] < 0:
                moved = np.flip(moved, axis=r)
                offsets.append(shift[r] - (moved.shape[r] - 1))
            else:
                offsets.append(shift[r])
        integral = np.round(offsets).astype(int)
        deviation = float(np.max(np.abs(np.asarray(offsets) - integral)))
        result = np.zeros(reference_shape, dtype=bool)
        source, target = [], []
        for r in range(3):
            low = max(0, integral[r])
            high = min(reference_shape[r], integral[r] + moved.shape[r])
            target.append(slice(low, max(low, high)))
            source.append(slice(low - integral[r], max(low, high) - integral[r]))
        result[tuple(target)] = moved[tuple(source)]
        outside = int(moved.sum()) - int(result.sum())
        return result, outside, deviation
    # General case: map every set voxel to the nearest reference voxel.
    indices = np.argwhere(data)
    mapped = indices @ linear.T + shift
    nearest = np.round(mapped).astype(np.int64)
    deviation = float(np.max(np.abs(mapped - nearest))) if len(indices) else 0.0
    inside = np.all((nearest >= 0) & (nearest < np.asarray(reference_shape)), axis=1)
    result = np.zeros(reference_shape, dtype=bool)
    result[tuple(nearest[inside].T)] = True
    return result, int((~inside).sum()), deviation


def compare_masks(reference: Path, other: Path) -> dict[str, Any]:
    ref, ref_affine = load_mask(reference)
    data, affine = load_mask(other)
    mapped, outside, deviation = resample_into(ref_affine, ref.shape, affine, data)
    both = int(np.count_nonzero(ref & mapped))
    n_ref, n_other = int(np.count_nonzero(ref)), int(np.count_nonzero(mapped)) + outside
    differing = int(np.count_nonzero(ref ^ mapped)) + outside
    dice = 2.0 * both / (n_ref + n_other) if n_ref + n_other else 1.0
    return {
        "rtmask_voxels": n_ref,
        "peer_voxels": n_other,
        "differing_voxels": differing,
        "only_rtmask": n_ref - both,
        "only_peer": n_other - both,
        "dice": dice,
        "grid_deviation_voxels": deviation,
    }


def agreement(runs: list[Run], outputs: dict[str, Path], roi_names: list[str]) -> dict[str, Any]:
    """Compare every peer's .nii.gz with rtmask convert's, ROI by ROI."""
    ok = {run.tool for run in runs if run.ok and run.kind == "convert"}
    if "rtmask convert" not in ok:
        return {}
    reference = mask_files("rtmask convert", outputs["rtmask convert"], roi_names)
    result: dict[str, Any] = {}
    for tool in ("plastimatch", "rt-utils", "dcmrtstruct2nii"):
        if tool not in ok:
            continue
        try:
            files = mask_files(tool, outputs[tool], roi_names)
        except (OSError, ValueError, KeyError) as error:
            result[tool] = {"error": f"{type(error).__name__}: {error}"}
            continue
        per_roi: dict[str, Any] = {}
        for name in roi_names:
            if name not in reference or name not in files:
                per_roi[name] = {"missing": "rtmask" if name not in reference else tool}
                continue
            per_roi[name] = compare_masks(reference[name], files[name])
        compared = [v for v in per_roi.values() if "dice" in v]
        dices = [v["dice"] for v in compared]
        worst = min(per_roi, key=lambda n: per_roi[n].get("dice", 2.0)) if compared else None
        result[tool] = {
            "rois_compared": len(compared),
            "rois_missing": [n for n, v in per_roi.items() if "missing" in v],
            "rois_identical": sum(v["differing_voxels"] == 0 for v in compared),
            "dice_min": min(dices, default=float("nan")),
            "dice_median": statistics.median(dices) if dices else float("nan"),
            "differing_voxels": sum(v["differing_voxels"] for v in compared),
            "rtmask_voxels": sum(v["rtmask_voxels"] for v in compared),
            "peer_minus_rtmask_voxels": sum(v["peer_voxels"] - v["rtmask_voxels"]
                                            for v in compared),
            "max_grid_deviation_voxels": max(
                (v["grid_deviation_voxels"] for v in compared), default=0.0),
            "worst_roi": worst,
            "per_roi": per_roi,
        }  # fmt: skip
    return result


# ----------------------------------------------------------------------------- reporting
def targets(runs: list[Run]) -> dict[str, Any]:
    by = {(run.tool, run.kind): run for run in runs}
    rtmask, plastimatch = by.get(("rtmask convert", "convert")), by.get(("plastimatch", "convert"))
    api, rtutils = by.get(("rtmask API", "masks")), by.get(("rt-utils", "masks"))
    result: dict[str, Any] = {}
    if rtmask and plastimatch and rtmask.ok and plastimatch.ok:
        wall = rtmask.wall / plastimatch.wall
        peak = rtmask.peak / plastimatch.peak
        result["wall_vs_plastimatch"] = {
            "value": wall,
            "target": f"<= {TARGET_WALL_VS_PLASTIMATCH}",
            "met": wall <= TARGET_WALL_VS_PLASTIMATCH,
        }
        result["peak_vs_plastimatch"] = {
            "value": peak,
            "target": f"<= {TARGET_PEAK_VS_PLASTIMATCH}",
            "met": peak <= TARGET_PEAK_VS_PLASTIMATCH,
        }
    if api and rtutils and api.ok and rtutils.ok:
        speedup = rtutils.wall / api.wall
        result["masks_speedup_vs_rtutils"] = {
            "value": speedup,
            "target": f">= {TARGET_SPEEDUP_VS_RTUTILS}",
            "met": speedup >= TARGET_SPEEDUP_VS_RTUTILS,
        }
        if api.compute and rtutils.compute:
            speedup = rtutils.compute / api.compute
            result["masks_speedup_vs_rtutils_after_imports"] = {
                "value": speedup,
                "target": f">= {TARGET_SPEEDUP_VS_RTUTILS}",
                "met": speedup >= TARGET_SPEEDUP_VS_RTUTILS,
            }
    return result  # fmt: skip


def print_runs(case: Case, runs: list[Run]) -> None:
    baseline = {
        "convert": next((r for r in runs if r.tool == "rtmask convert" and r.ok), None),
        "masks": next((r for r in runs if r.tool == "rtmask API" and r.ok), None),
    }
    print(f"\n### {case.name}\n")
    print("| tool | output | wall s | after imports s | peak MB | wall / rtmask "
          "| peak / rtmask | status |")  # fmt: skip
    print("|---|---|---:|---:|---:|---:|---:|---|")
    for run in runs:
        output = ".nii.gz per ROI" if run.kind == "convert" else "masks in memory"
        base = baseline[run.kind]
        if not run.ok:
            print(f"| {run.tool} | {output} | - | - | - | - | - | FAILED: {run.error} |")
            continue
        wall_ratio = f"{run.wall / base.wall:.2f}" if base else "-"
        peak_ratio = f"{run.peak / base.peak:.2f}" if base else "-"
        status = "ok" if run.n_outputs is None else f"ok, {run.n_outputs} files"
        after = "-" if run.compute is None else f"{run.compute:.2f}"
        print(f"| {run.tool} | {output} | {run.wall:.2f} | {after} | {run.peak:.0f} "
              f"| {wall_ratio} | {peak_ratio} | {status} |")  # fmt: skip


def print_targets(result: dict[str, Any]) -> None:
    labels = {
        "wall_vs_plastimatch": "rtmask convert wall time / plastimatch's",
        "peak_vs_plastimatch": "rtmask convert peak memory / plastimatch's",
        "masks_speedup_vs_rtutils": "rt-utils masks wall time / rtmask API masks'",
        "masks_speedup_vs_rtutils_after_imports": (
            "rt-utils masks time after imports / rtmask API masks' (in-process)"
        ),
    }
    print("\n| target (large case) | measured | target | met |\n|---|---:|---|---|")
    for key, value in result.items():
        met = "yes" if value["met"] else "NO"
        print(f"| {labels[key]} | {value['value']:.3f} | {value['target']} | {met} |")


def print_agreement(result: dict[str, Any]) -> None:
    if not result:
        return
    print("\n| rtmask vs | ROIs | identical | Dice min | Dice median | differing voxels "
          "| peer - rtmask voxels | worst ROI |")  # fmt: skip
    print("|---|---:|---:|---:|---:|---:|---:|---|")
    for tool, value in result.items():
        if "error" in value:
            print(f"| {tool} | - | - | - | - | - | - | {value['error']} |")
            continue
        missing = f" ({len(value['rois_missing'])} missing)" if value["rois_missing"] else ""
        share = value["differing_voxels"] / max(value["rtmask_voxels"], 1)
        print(f"| {tool} | {value['rois_compared']}{missing} | {value['rois_identical']} "
              f"| {value['dice_min']:.4f} | {value['dice_median']:.5f} "
              f"| {value['differing_voxels']} ({share:.3%}) "
              f"| {value['peer_minus_rtmask_voxels']:+d} | {value['worst_roi']} |")  # fmt: skip


def versions(peers_python: Path) -> dict[str, str]:
    found: dict[str, str] = {"python": platform.python_version()}
    from importlib.metadata import version

    for name in ("rtmask", "pydicom", "numpy", "nibabel"):
        found[name] = version(name)
    try:  # read-only: which commit of rtmask was measured, and whether it had local edits
        git = ["git", "-C", str(REPO)]
        head = subprocess.run([*git, "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True, check=True).stdout.strip()  # fmt: skip
        status = [*git, "status", "--porcelain", "--", "src"]
        dirty = subprocess.run(status, capture_output=True, text=True, check=True).stdout.strip()
        found["rtmask commit"] = head + (" (modified)" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        pass
    try:
        line = subprocess.run(["plastimatch", "--version"], capture_output=True, text=True,
                              check=False).stdout.strip()  # fmt: skip
        found["plastimatch"] = line.split()[-1] if line else "?"
    except OSError:
        found["plastimatch"] = "not installed"
    script = (
        "import json\nfrom importlib.metadata import version\nd={}\n"
        "for n in ('rt-utils','dcmrtstruct2nii','pydicom','numpy','opencv-python','SimpleITK'):\n"
        "    try: d[n]=version(n)\n    except Exception: d[n]='not installed'\n"
        "print(json.dumps(d))"
    )
    try:
        out = subprocess.run([str(peers_python), "-c", script], capture_output=True, text=True,
                             check=True).stdout  # fmt: skip
        found.update({f"peers {k}": v for k, v in json.loads(out).items()})
    except (OSError, subprocess.CalledProcessError, json.JSONDecodeError):
        found["peers"] = f"{peers_python} not usable"
    return found


def compile_rtmask() -> None:
    """Write rtmask's bytecode before timing it, as ``pip install`` does.

    An editable install run with PYTHONDONTWRITEBYTECODE set (as on some CI machines)
    would otherwise compile every rtmask module from source at every start (~0.1 s),
    while the peers' installed packages load compiled code.
    """
    spec = importlib.util.find_spec("rtmask")
    if spec is not None and spec.origin is not None:
        compileall.compile_dir(Path(spec.origin).parent, quiet=1)


def machine() -> dict[str, Any]:
    cpu = platform.processor()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = ""
    with contextlib.suppress(OSError, IndexError):
        memory = Path("/proc/meminfo").read_text().splitlines()[0].split(":", 1)[1].strip()
    return {"cpus": os.cpu_count(), "cpu": cpu, "memory": memory,
            "system": platform.platform()}  # fmt: skip


# ----------------------------------------------------------------------------- main
def roi_names_of(rtstruct: Path) -> list[str]:
    from rtmask import read_rtstruct

    return [roi.name for roi in read_rtstruct(rtstruct, on_invalid="ignore").rois]


def bench_case(case: Case, args: argparse.Namespace, rtmask_bin: Path) -> dict[str, Any]:
    out = args.work / "runs" / case.name
    out.mkdir(parents=True, exist_ok=True)
    warm_cache(case)
    tools = [
        tool
        for tool in tools_for(case, out, args.peers_venv / "bin" / "python", rtmask_bin)
        if tool.name not in args.skip
    ]
    runs = []
    for tool in tools:
        print(f"[{case.name}] {tool.name} ({tool.kind}) ...", file=sys.stderr, flush=True)
        run = run_tool(tool, out, args.repeat)
        done = f"{run.wall:.2f} s, {run.peak:.0f} MB" if run.ok else run.error
        print(f"    {done}", file=sys.stderr, flush=True)
        runs.append(run)
    outputs = {tool.name: tool.output for tool in tools if tool.output is not None}
    names = roi_names_of(case.rtstruct)
    agreed = {} if args.no_agreement else agreement(runs, outputs, names)
    print_runs(case, runs)
    result_targets = targets(runs) if case.name == "large" else {}
    if result_targets:
        print_targets(result_targets)
    print_agreement(agreed)
    return {
        "case": case.name,
        "image": str(case.image),
        "rtstruct": str(case.rtstruct),
        "rtstruct_mb": case.rtstruct.stat().st_size / 1e6,
        "n_rois": len(names),
        "runs": [
            {**asdict(run), "wall_median_s": run.wall if run.ok else None,
             "peak_max_mb": run.peak if run.ok else None, "ok": run.ok}
            for run in runs
        ],
        "targets": result_targets,
        "agreement": agreed,
    }  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    compile_rtmask()
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--work",
        type=Path,
        default=DEFAULT_BENCH,
        help="scratch folder for outputs and logs (default /work/bench)",
    )
    parser.add_argument(
        "--large",
        type=Path,
        default=None,
        help="large case folder (default WORK/large; written when missing)",
    )
    parser.add_argument(
        "--lung1",
        type=Path,
        default=DEFAULT_LUNG1,
        help="LUNG1-001 folder (image/, mask_rtstruct/1-1.dcm); skipped if absent",
    )
    parser.add_argument(
        "--peers-venv",
        type=Path,
        default=None,
        help="venv of rt-utils and dcmrtstruct2nii (default WORK/peers-venv)",
    )
    parser.add_argument(
        "--json", type=Path, default=None, help="results file (default WORK/results-convert.json)"
    )
    parser.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="runs per tool: median wall time, largest peak (default 1)",
    )
    parser.add_argument(
        "--skip",
        nargs="*",
        default=[],
        metavar="TOOL",
        help="tools to leave out, e.g. dcmrtstruct2nii",
    )
    parser.add_argument("--cases", nargs="*", default=["large", "lung1-001"])
    parser.add_argument(
        "--no-agreement", action="store_true", help="skip the voxel comparison of the outputs"
    )
    args = parser.parse_args(argv)  # fmt: skip
    args.large = args.large or args.work / "large"
    args.peers_venv = args.peers_venv or args.work / "peers-venv"
    json_path = args.json or args.work / "results-convert.json"

    rtmask_bin = Path(sys.executable).with_name("rtmask")
    if not rtmask_bin.exists():
        print(f"no rtmask console script next to {sys.executable}", file=sys.stderr)
        return 1
    cases = []
    if "large" in args.cases:
        rtstruct = args.large / "rtstruct" / "RS_large.dcm"
        if not rtstruct.exists():
            print(f"writing the large case to {args.large}", file=sys.stderr)
            subprocess.run([sys.executable, str(HERE / "make_large_case.py"), str(args.large)],
                           check=True)  # fmt: skip
        cases.append(Case("large", args.large / "image", rtstruct))
    if "lung1-001" in args.cases:
        lung1 = args.lung1 / "mask_rtstruct" / "1-1.dcm"
        if lung1.exists():
            cases.append(Case("lung1-001", args.lung1 / "image", lung1))
        else:
            print(f"skipping LUNG1-001: {lung1} not found", file=sys.stderr)

    info = {"machine": machine(), "versions": versions(args.peers_venv / "bin" / "python")}
    print("## rtmask conversion benchmark\n")
    print(f"machine: {info['machine']['cpus']} CPUs ({info['machine']['cpu']}), "
          f"{info['machine']['memory']}")  # fmt: skip
    print("versions: " + ", ".join(f"{k} {v}" for k, v in info["versions"].items()))
    results = [bench_case(case, args, rtmask_bin) for case in cases]
    json_path.parent.mkdir(parents=True, exist_ok=True)
    json_path.write_text(json.dumps({**info, "cases": results}, indent=1, default=str))
    print(f"\nresults: {json_path}")
    failed = any(not run["ok"] for case in results for run in case["runs"])
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
