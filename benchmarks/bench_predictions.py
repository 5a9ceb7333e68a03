"""Prediction -> RTSTRUCT benchmark: a 1.5 mm label map of 20 labels onto a 512x512x200 CT.

    python benchmarks/bench_predictions.py [--folder /work/bench/predictions] [--json FILE]

Writes (once, reused afterwards) a CT of 512 x 512 x 200 voxels of 0.98 x 0.98 x 3 mm
(HFS) and a model-style prediction on its own grid: 1.5 mm isotropic voxels covering the
CT's field of view, origin half a voxel off the CT's, 20 labelled ellipsoids, written with
SimpleITK as ``case_0001.nii.gz`` beside an nnU-Net ``dataset.json``. Then:

1. ``rtmask to-rtstruct case_0001.nii.gz --image CT -o RS.dcm`` runs as a subprocess
   (the console script next to this Python), three times; wall time of each, the median
   against the issue's target (under 3 s).
2. Check: the written RTSTRUCT is read back with rtmask and every ROI rasterised on the
   CT grid; each is compared with the resampled mask (``read_masks(..., "nearest")``) and
   with SimpleITK's own nearest-neighbour ``Resample`` of the label map (independent).
   Reported: voxels that differ, and the largest distance (in voxels, chessboard) from a
   differing voxel to the other mask (the issue's target: within one voxel everywhere).

3. ``rtmask to-seg`` of the same prediction (with the ``seg`` extra): its time, and the
   voxels where the SEG read back differs from the resampled masks.

Results go to stdout and to ``--json`` (default /work/bench/results-predictions.json).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

from rtmask import ImageGrid, read_image_series, read_masks, read_rtstruct
from rtmask.raster import rasterize
from rtmask.synthetic import write_ct_series

SHAPE = (200, 512, 512)
SPACING_MM = (3.0, 0.9765625, 0.9765625)
ORIGIN_MM = (-249.51171875, -262.01171875, -601.0)
PREDICTION_MM = 1.5
N_LABELS = 20
TARGET_SECONDS = 3.0
RUNS = 3


def ct_grid() -> ImageGrid:
    """The CT grid: HFS, 512 x 512 x 200 voxels of 0.98 x 0.98 x 3 mm."""
    return ImageGrid.from_explicit(origin_mm=ORIGIN_MM, spacing_mm=SPACING_MM, shape=SHAPE)


def _ellipsoids(seed: int = 14) -> list[tuple[NDArray[np.float64], NDArray[np.float64]]]:
    """20 ellipsoids (centre, semi-axes in mm) inside the CT, a 5 x 4 layout, some touching."""
    rng = np.random.default_rng(seed)
    grid = ct_grid()
    centre = grid.index_to_patient([[(n - 1) / 2 for n in SHAPE]])[0]
    shapes = []
    for index in range(N_LABELS):
        row, column = divmod(index, 5)
        offset = np.array([(column - 2) * 80.0, (row - 1.5) * 90.0, rng.uniform(-150, 150)])
        semi = rng.uniform([15, 15, 20], [42, 45, 120])
        shapes.append((centre + offset, semi))
    return shapes


def write_inputs(folder: Path) -> tuple[Path, Path]:
    """The CT series and the prediction (written when missing): (ct folder, label map)."""
    import SimpleITK as sitk  # noqa: N813

    ct = folder / "ct"
    prediction = folder / "prediction" / "case_0001.nii.gz"
    grid = ct_grid()
    if not (ct / "done").is_file():
        write_ct_series(ct, grid)
        (ct / "done").write_text("ok\n")
    if prediction.is_file():
        return ct, prediction
    prediction.parent.mkdir(parents=True, exist_ok=True)
    low = grid.index_to_patient([[0, 0, 0]])[0]
    high = grid.index_to_patient([[n - 1 for n in SHAPE]])[0]
    size = np.ceil((high - low) / PREDICTION_MM).astype(int) + 1  # x, y, z
    origin = low + PREDICTION_MM / 2 * np.array([1, 1, 0.5]) - 0.2371  # no half-voxel ties
    labels = np.zeros(size[::-1], np.uint8)  # (z, y, x)
    for value, (centre, semi) in enumerate(_ellipsoids(), start=1):
        lo = np.maximum(np.floor((centre - semi - origin) / PREDICTION_MM).astype(int), 0)
        hi = np.minimum(np.ceil((centre + semi - origin) / PREDICTION_MM).astype(int) + 1, size)
        z, y, x = np.ogrid[lo[2] : hi[2], lo[1] : hi[1], lo[0] : hi[0]]
        inside = (
            ((x * PREDICTION_MM + origin[0] - centre[0]) / semi[0]) ** 2
            + ((y * PREDICTION_MM + origin[1] - centre[1]) / semi[1]) ** 2
            + ((z * PREDICTION_MM + origin[2] - centre[2]) / semi[2]) ** 2
        ) <= 1.0
        labels[lo[2] : hi[2], lo[1] : hi[1], lo[0] : hi[0]][inside] = value
    image = sitk.GetImageFromArray(labels)
    image.SetSpacing([PREDICTION_MM] * 3)
    image.SetOrigin([float(v) for v in origin])
    sitk.WriteImage(image, str(prediction), useCompression=True)
    names = {"background": 0, **{f"Organ_{v:02d}": v for v in range(1, N_LABELS + 1)}}
    (prediction.parent / "dataset.json").write_text(json.dumps({"labels": names}, indent=1))
    return ct, prediction


def run_cli(
    ct: Path, prediction: Path, output: Path, command_name: str = "to-rtstruct"
) -> tuple[float, float]:
    """Wall and CPU (user + system) seconds of one ``rtmask to-rtstruct`` (or to-seg) subprocess.

    The CPU time tells what the run costs when other work shares the machine's cores.
    """
    script = Path(sys.executable).with_name("rtmask")
    command = [str(script), command_name, str(prediction), "--image", str(ct), "-o", str(output)]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if done.returncode != 0:
        failed = f"rtmask {command_name} failed ({done.returncode}):\n{done.stdout}{done.stderr}"
        raise SystemExit(failed)
    return seconds, cpu


def _sitk_labels(prediction: Path, grid: ImageGrid) -> NDArray[Any]:
    """SimpleITK's nearest-neighbour resampling of the label map onto the CT grid."""
    import SimpleITK as sitk  # noqa: N813

    reference = sitk.Image([SHAPE[2], SHAPE[1], SHAPE[0]], sitk.sitkUInt8)
    ijk = grid.ijk_affine_lps()
    spacing = np.linalg.norm(ijk[:3, :3], axis=0)
    reference.SetSpacing([float(s) for s in spacing])
    reference.SetDirection([float(v) for v in (ijk[:3, :3] / spacing).ravel()])
    reference.SetOrigin([float(v) for v in ijk[:3, 3]])
    image = sitk.ReadImage(str(prediction))
    resampled = sitk.Resample(image, reference, sitk.Transform(), sitk.sitkNearestNeighbor, 0)
    return sitk.GetArrayFromImage(resampled)


def _apart(a: NDArray[np.bool_], b: NDArray[np.bool_]) -> tuple[int, int]:
    """(voxels that differ, largest chessboard distance of one to the other mask)."""
    differ = a ^ b
    count = int(differ.sum())
    if not count:
        return 0, 0
    worst = 0
    for mask, other in ((a, b), (b, a)):
        extra = mask & ~other
        if extra.any():
            distance = ndimage.distance_transform_cdt(~other, metric="chessboard")
            worst = max(worst, int(distance[extra].max()))
    return count, worst


def check(ct: Path, prediction: Path, output: Path) -> dict[str, Any]:
    """Compare the re-read RTSTRUCT with the resampled masks and with SimpleITK's."""
    series = read_image_series(ct)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        masks = read_masks(prediction, series, resample="nearest")
    structure_set = read_rtstruct(output)
    by_name = {roi.name: roi for roi in structure_set.rois}
    expected = _sitk_labels(prediction, series.grid)
    rows = []
    for value, mask in enumerate(masks, start=1):
        back = rasterize(by_name[mask.roi.name], series.grid).array
        vs_masks = _apart(back, mask.array)
        vs_sitk = _apart(mask.array, expected == value)
        rows.append(
            {
                "roi": mask.roi.name,
                "voxels": int(mask.array.sum()),
                "rtstruct_vs_resampled_differ": vs_masks[0],
                "rtstruct_vs_resampled_max_voxels": vs_masks[1],
                "resampled_vs_simpleitk_differ": vs_sitk[0],
            }
        )
    return {"rois": rows, "summary": [str(w.message) for w in caught]}


def check_seg(ct: Path, prediction: Path, seg: Path) -> int:
    """Voxels where the SEG's segments differ from the resampled masks (all labels)."""
    series = read_image_series(ct)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = read_masks(prediction, series, resample="nearest")
        written = {mask.roi.name: mask.array for mask in read_masks(seg, series)}
    return sum(int((written[mask.roi.name] ^ mask.array).sum()) for mask in expected)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--folder", type=Path, default=Path("/work/bench/predictions"))
    parser.add_argument("--json", type=Path, default=Path("/work/bench/results-predictions.json"))
    args = parser.parse_args(argv)
    ct, prediction = write_inputs(args.folder)
    output = args.folder / "RS_prediction.dcm"
    runs = [run_cli(ct, prediction, output) for _ in range(RUNS)]
    times = [wall for wall, _ in runs]
    cpu_times = [cpu for _, cpu in runs]
    median = statistics.median(times)
    load = os.getloadavg()[0]
    result = check(ct, prediction, output)
    rows = result["rois"]
    worst = max(r["rtstruct_vs_resampled_max_voxels"] for r in rows)
    print(f"to-rtstruct, {N_LABELS} labels, 1.5 mm prediction -> 512x512x200 CT of 0.98x0.98x3 mm")
    print(
        f"wall seconds: {', '.join(f'{t:.2f}' for t in times)}; median {median:.2f} s "
        f"(target < {TARGET_SECONDS:g} s: {'met' if median < TARGET_SECONDS else 'NOT met'}); "
        f"CPU seconds (user + system): {', '.join(f'{t:.2f}' for t in cpu_times)}; "
        f"load average {load:.1f} on {os.cpu_count()} CPUs"
    )
    print(
        "| ROI | voxels | RTSTRUCT vs resampled: differ | max distance (voxels) "
        "| resampled vs SimpleITK: differ |"
    )
    print("|---|---:|---:|---:|---:|")
    for r in rows:
        print(
            f"| {r['roi']} | {r['voxels']} | {r['rtstruct_vs_resampled_differ']} | "
            f"{r['rtstruct_vs_resampled_max_voxels']} | {r['resampled_vs_simpleitk_differ']} |"
        )
    print(f"largest distance of the re-read RTSTRUCT from the resampled masks: {worst} voxel(s)")
    for line in result["summary"]:
        print(line)
    seg_seconds = seg_differ = None
    try:
        import highdicom  # noqa: F401 - the seg extra
    except ImportError:
        print("to-seg: not run (pip install 'rtmask[seg]')")
    else:
        seg = args.folder / "SEG_prediction.dcm"
        seg_seconds = run_cli(ct, prediction, seg, "to-seg")[0]
        seg_differ = check_seg(ct, prediction, seg)
        print(
            f"to-seg (DICOM SEG, highdicom): {seg_seconds:.2f} s wall; voxels differing "
            f"from the resampled masks: {seg_differ}"
        )
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(
        json.dumps(
            {
                "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
                "wall_seconds": times,
                "cpu_seconds": cpu_times,
                "load_average": load,
                "median_seconds": median,
                "target_seconds": TARGET_SECONDS,
                "max_distance_voxels": worst,
                "to_seg_seconds": seg_seconds,
                "to_seg_voxels_differing": seg_differ,
                **result,
            },
            indent=1,
        )
    )
    return 0 if median < TARGET_SECONDS and worst <= 1 else 1


if __name__ == "__main__":
    raise SystemExit(main())
