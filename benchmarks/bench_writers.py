"""Writer benchmark: masks -> RTSTRUCT with rtmask and rt-utils, and masks -> DICOM SEG.

    python benchmarks/bench_writers.py [--work /work/bench] [--repeat N] [--skip TOOL ...]

On the large synthetic case (``make_large_case.py``: 512 x 512 x 200 CT, 60 ROIs; written
first when missing) the 60 masks are made with ``rtmask convert`` (one ``.nii.gz`` per ROI
plus ``summary.json``: the input folder). Then, each as its own subprocess, on a warm file
cache, wall time around the subprocess and peak memory from GNU time's ``%M``:

- ``rtmask to-rtstruct MASKS --image CT -o RS.dcm`` (exact contours, and once with
  ``--simplify 0.5``);
- rt-utils (``peers/rtutils_writer.py``, peers' venv): ``RTStructBuilder.create_new``,
  ``add_roi`` for every mask (loaded with nibabel, put in rt-utils' (rows, columns,
  slices) order through the files' affines), ``save``.

Every output is read back with rtmask (``read_rtstruct`` + ``rasterize`` on the CT grid,
rule ``auto``) and compared voxel by voxel with the input masks. DICOM SEG export is timed
in-process (``rtmask.export._seg.write_seg`` on the 60 masks already in memory) and read
back with ``read_seg``. Results: Markdown tables on stdout, JSON in
``WORK/results-writers.json``.
"""

from __future__ import annotations

import argparse
import json
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
sys.path.insert(0, str(HERE))

from bench_convert import compile_rtmask, machine, measure, versions  # noqa: E402

PEERS = HERE / "peers"
DEFAULT_BENCH = Path("/work/bench")


@dataclass(slots=True)
class Run:
    tool: str
    command: list[str]
    output: str
    returncode: int | None = None
    wall_s: list[float] = field(default_factory=list)
    peak_mb: list[float] = field(default_factory=list)
    size_mb: float | None = None
    error: str = ""
    exactness: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and bool(self.wall_s)


def warm(paths: list[Path]) -> None:
    """Read every file once, so that no tool pays for a cold page cache."""
    for root in paths:
        files = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file())
        for path in files:
            with path.open("rb") as stream:
                while stream.read(1 << 22):
                    pass


def rtmask_command(rtmask_bin: Path) -> list[str]:
    """The ``rtmask to-rtstruct`` console script next to this Python."""
    return [str(rtmask_bin), "to-rtstruct"]


def run_tool(run: Run, logs: Path, repeat: int) -> Run:
    log = logs / f"{run.tool.replace(' ', '_').replace('/', '_')}.log"
    output = Path(run.output)
    for _ in range(repeat):
        output.unlink(missing_ok=True)
        code, wall, peak = measure(run.command, log)
        run.returncode = code
        if code != 0 or not output.exists():
            tail = log.read_text(errors="replace").strip().splitlines()[-3:]
            run.error = f"exit code {code}: " + " | ".join(tail)
            return run
        run.wall_s.append(wall)
        run.peak_mb.append(peak)
    run.size_mb = output.stat().st_size / 1e6
    return run


def compare(reference: dict[str, np.ndarray], found: dict[str, np.ndarray]) -> dict[str, Any]:
    """Voxels that differ between the input masks and the masks read back, per ROI."""
    per_roi = {}
    for name, expected in reference.items():
        got = found.get(name)
        if got is None:
            per_roi[name] = {"differing": int(np.count_nonzero(expected)), "missing": True,
                             "voxels": int(np.count_nonzero(expected))}  # fmt: skip
            continue
        differing = int(np.count_nonzero(got != expected))
        per_roi[name] = {
            "differing": differing,
            "extra": int(np.count_nonzero(got & ~expected)),
            "lost": int(np.count_nonzero(expected & ~got)),
            "voxels": int(np.count_nonzero(expected)),
        }
    worst_name = max(per_roi, key=lambda n: per_roi[n]["differing"])
    worst = per_roi[worst_name]
    share = {n: r["differing"] / max(r["voxels"], 1) for n, r in per_roi.items()}
    worst_share = max(share, key=lambda n: share[n])
    return {
        "rois": len(reference),
        "identical": sum(1 for r in per_roi.values() if r["differing"] == 0),
        "differing_voxels": sum(r["differing"] for r in per_roi.values()),
        "extra_voxels": sum(r.get("extra", 0) for r in per_roi.values()),
        "lost_voxels": sum(r.get("lost", 0) for r in per_roi.values()),
        "input_voxels": sum(r["voxels"] for r in per_roi.values()),
        "worst_roi": worst_name,
        "worst_differing": worst["differing"],
        "worst_fraction": worst["differing"] / max(worst["voxels"], 1),
        "worst_share_roi": worst_share,
        "worst_share": share[worst_share],
        "missing": [n for n, r in per_roi.items() if r.get("missing")],
        "per_roi": per_roi,
    }


def read_back_rtstruct(path: Path, grid: Any) -> tuple[dict[str, np.ndarray], dict[str, int]]:
    from rtmask import read_rtstruct
    from rtmask.raster import rasterize_all

    structure_set = read_rtstruct(path, on_invalid="ignore")
    masks = rasterize_all(structure_set, grid, on_invalid="ignore")
    arrays = {mask.roi.name: np.asarray(mask.array) for mask in masks}
    counts = {
        "contours": sum(roi.n_contours for roi in structure_set.rois),
        "points": sum(roi.n_points for roi in structure_set.rois),
    }
    return arrays, counts


def seg_export(masks: list[Any], series: Any, out: Path, repeat: int) -> dict[str, Any]:
    """write_seg in-process on masks already in memory; size and exactness of the file."""
    try:
        from rtmask.export._seg import write_seg
        from rtmask.masks import read_seg
    except ImportError as error:
        return {"error": f"SEG writer not available: {error}"}
    path = out / "seg.dcm"
    times = []
    for _ in range(repeat):
        path.unlink(missing_ok=True)
        start = time.perf_counter()
        write_seg(masks, series, path)
        times.append(time.perf_counter() - start)
    start = time.perf_counter()
    back = read_seg(path, series)
    read_s = time.perf_counter() - start
    reference = {m.roi.name: np.asarray(m.array) for m in masks}
    found = {m.roi.name: np.asarray(m.array, dtype=bool) for m in back}
    return {
        "write_s": statistics.median(times),
        "read_s": read_s,
        "size_mb": path.stat().st_size / 1e6,
        "exactness": compare(reference, found),
    }


def reading(masks_dir: Path, series: Any, out: Path, repeat: int) -> dict[str, Any]:
    """read_masks in-process on rtmask's .nii.gz files and on the same files gzip-ed anew.

    rtmask's own files are read with the zero runs skipped (masks._inflate); files from
    other writers (here Python's gzip, level 1) are inflated whole.
    """
    import gzip

    from rtmask.masks import read_masks

    plain = out / "masks-plain-gzip"
    plain.mkdir()
    for path in sorted(masks_dir.glob("*.nii.gz")):
        data = gzip.decompress(path.read_bytes())
        (plain / path.name).write_bytes(gzip.compress(data, compresslevel=1))
    shutil.copy(masks_dir / "summary.json", plain / "summary.json")
    result = {}
    for label, folder in (("rtmask .nii.gz", masks_dir), ("plain gzip .nii.gz", plain)):
        warm([folder])
        times = []
        for _ in range(repeat):
            start = time.perf_counter()
            read_masks(folder, series)
            times.append(time.perf_counter() - start)
        result[label] = statistics.median(times)
    return result


def print_results(runs: list[Run], seg: dict[str, Any], n_voxels: int) -> None:
    print("\n| tool | wall s | peak MB | file MB | contours | points | ROIs identical "
          "| voxels differing (extra / lost) "
          "| worst ROI (most voxels; largest share) |")  # fmt: skip
    print("|---|---:|---:|---:|---:|---:|---:|---:|---|")
    for run in runs:
        if not run.ok:
            print(f"| {run.tool} | failed: {run.error} | | | | | | | |")
            continue
        e = run.exactness
        worst = (
            f"{e['worst_roi']}: {e['worst_differing']:,} ({100 * e['worst_fraction']:.1f} %); "
            f"{e['worst_share_roi']}: {100 * e['worst_share']:.1f} %"
            if e["worst_differing"] else "-"
        )  # fmt: skip
        print(
            f"| {run.tool} | {statistics.median(run.wall_s):.2f} | {max(run.peak_mb):.0f} "
            f"| {run.size_mb:.1f} | {e['contours']:,} | {e['points']:,} "
            f"| {e['identical']} / {e['rois']} | {e['differing_voxels']:,} "
            f"({e['extra_voxels']:,} / {e['lost_voxels']:,}) | {worst} |"
        )
    if "error" in seg:
        print(f"\nDICOM SEG: {seg['error']}")
        return
    e = seg["exactness"]
    print(
        f"\nDICOM SEG (write_seg in-process, 60 masks in memory): write {seg['write_s']:.2f} s, "
        f"file {seg['size_mb']:.1f} MB, read back with read_seg {seg['read_s']:.2f} s: "
        f"{e['identical']} / {e['rois']} ROIs identical, {e['differing_voxels']} voxels "
        f"differing (of {n_voxels:,} per mask)"
    )


def main(argv: list[str] | None = None) -> int:
    compile_rtmask()
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work", type=Path, default=DEFAULT_BENCH)
    parser.add_argument("--large", type=Path, default=None, help="default WORK/large")
    parser.add_argument("--peers-venv", type=Path, default=None, help="default WORK/peers-venv")
    parser.add_argument("--json", type=Path, default=None,
                        help="default WORK/results-writers.json")  # fmt: skip
    parser.add_argument("--repeat", type=int, default=1, help="runs per tool (median wall time)")
    parser.add_argument("--skip", nargs="*", default=[], metavar="TOOL")
    args = parser.parse_args(argv)
    large = args.large or args.work / "large"
    peers_python = (args.peers_venv or args.work / "peers-venv") / "bin" / "python"
    json_path = args.json or args.work / "results-writers.json"
    rtmask_bin = Path(sys.executable).with_name("rtmask")
    if not rtmask_bin.exists():
        print(f"no rtmask console script next to {sys.executable}", file=sys.stderr)
        return 1

    rtstruct, image = large / "rtstruct" / "RS_large.dcm", large / "image"
    if not rtstruct.exists():
        print(f"writing the large case to {large}", file=sys.stderr)
        subprocess.run([sys.executable, str(HERE / "make_large_case.py"), str(large)], check=True)
    out = args.work / "runs" / "writers"
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    masks_dir = out / "masks"
    print("making the input masks with rtmask convert ...", file=sys.stderr, flush=True)
    subprocess.run([str(rtmask_bin), "convert", str(rtstruct), "-o", str(masks_dir),
                    "--image", str(image), "-q"], check=True)  # fmt: skip

    from rtmask.discovery import read_image_series
    from rtmask.masks import read_masks

    series = read_image_series(image)
    masks = read_masks(masks_dir, series)
    reference = {m.roi.name: np.asarray(m.array) for m in masks}
    print(f"input: {len(masks)} masks of {series.grid.shape}", file=sys.stderr)

    command = rtmask_command(rtmask_bin)
    common = [str(masks_dir), "--image", str(image), "-q"]
    runs = [
        Run("rtmask to-rtstruct", [*command, *common, "-o", str(out / "rtmask.dcm")],
            str(out / "rtmask.dcm")),
        Run("rtmask to-rtstruct --simplify 0.5",
            [*command, *common, "--simplify", "0.5", "-o", str(out / "rtmask-simplified.dcm")],
            str(out / "rtmask-simplified.dcm")),
        Run("rt-utils", [str(peers_python), str(PEERS / "rtutils_writer.py"), str(image),
                         str(masks_dir), str(out / "rt-utils.dcm")], str(out / "rt-utils.dcm")),
    ]  # fmt: skip
    runs = [run for run in runs if run.tool not in args.skip]
    for run in runs:
        warm([image, masks_dir])
        print(f"{run.tool} ...", file=sys.stderr, flush=True)
        run_tool(run, out, args.repeat)
        if not run.ok:
            print(f"    {run.error}", file=sys.stderr)
            continue
        print(f"    {statistics.median(run.wall_s):.2f} s, {max(run.peak_mb):.0f} MB",
              file=sys.stderr)  # fmt: skip
        found, counts = read_back_rtstruct(Path(run.output), series.grid)
        run.exactness = {**compare(reference, found), **counts}
    seg = {} if "seg" in args.skip else seg_export(masks, series, out, args.repeat)
    read_s = reading(masks_dir, series, out, args.repeat)

    info = {"machine": machine(), "versions": versions(peers_python)}
    print("## rtmask writer benchmark (large case, 60 ROIs)\n")
    print(f"machine: {info['machine']['cpus']} CPUs ({info['machine']['cpu']}), "
          f"{info['machine']['memory']}")  # fmt: skip
    print("versions: " + ", ".join(f"{k} {v}" for k, v in info["versions"].items()))
    print_results(runs, seg, series.grid.n_voxels)
    print("\nread_masks of the 60 input files, in-process: " + ", ".join(
        f"{label} {seconds:.2f} s" for label, seconds in read_s.items()
    ))  # fmt: skip
    json_path.parent.mkdir(parents=True, exist_ok=True)
    json_path.write_text(json.dumps(
        {**info, "runs": [asdict(run) for run in runs], "seg": seg, "read_masks_s": read_s},
        indent=1,
        default=str,
    ))  # fmt: skip
    print(f"\nresults: {json_path}")
    return 0 if all(run.ok for run in runs) else 1


if __name__ == "__main__":
    sys.exit(main())
