"""Data set benchmark: ``rtmask dataset`` throughput in cases per minute at --jobs 1 and 2.

    python benchmarks/bench_dataset.py [--patients N] [--slices S] [--size PX] [--pt]
                                       [--archive DIR] [--jobs 1 2]

Writes a synthetic archive with rtmask.synthetic (N patients, each a CT series of S slices
of PX x PX pixels at 0.98 mm, 3 mm apart, and an RTSTRUCT with Lung_L, Lung_R, Heart and
SpinalCord as cylinders and spheres; with --pt also a coarser PT series of the same frame
of reference), unless DIR already holds one. Then builds the nnU-Net v2 data set of it
once per --jobs value (``rtmask dataset ROOT -o OUT --labels ... --jobs J``, a fresh
process each run as a user starts it: imports and the worker pool's start-up included),
prints the wall time and the cases per minute, the median per --jobs value and the ratio
of --jobs 2 to --jobs 1, and checks that every run wrote the same label maps.
"""

from __future__ import annotations

import argparse
import hashlib
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nibabel as nib
import numpy as np
import pydicom
from pydicom.uid import PositronEmissionTomographyImageStorage

from rtmask.geometry import ImageGrid
from rtmask.synthetic import (
    RoiSpec,
    cylinder_contours,
    sphere_contours,
    write_ct_series,
    write_rtstruct,
)

LABELS = ("Lung_L", "Lung_R", "Heart", "SpinalCord")


def _rois(grid: ImageGrid, slices: int, size: int) -> list[RoiSpec]:
    """Two lungs (cylinders), the heart (a sphere) and the cord (a thin cylinder)."""
    middle = slices / 2
    lung_l = grid.index_to_patient([[middle, size * 0.45, size * 0.78]])[0]
    lung_r = grid.index_to_patient([[middle, size * 0.45, size * 0.22]])[0]
    heart = grid.index_to_patient([[middle, size * 0.4, size * 0.5]])[0]
    cord = grid.index_to_patient([[middle, size * 0.75, size * 0.5]])[0]
    length = 3.0 * slices * 0.8
    shapes = {
        "Lung_L": cylinder_contours(grid, lung_l, size * 0.12, length),
        "Lung_R": cylinder_contours(grid, lung_r, size * 0.12, length),
        "Heart": sphere_contours(grid, heart, min(size * 0.08, 1.5 * slices)),
        "SpinalCord": cylinder_contours(grid, cord, 5.0, 3.0 * slices),
    }
    return [
        RoiSpec(number=n, name=name, contours=tuple((c, "CLOSED_PLANAR") for c in shapes[name]))
        for n, name in enumerate(LABELS, start=1)
    ]


def _write_pt(folder: Path, ct: ImageGrid, patient: str, study: str, frame: str) -> None:
    shape = (max(2, ct.shape[0] * 3 // 4), ct.shape[1] // 3, ct.shape[2] // 3)
    grid = ImageGrid.from_explicit(
        origin_mm=tuple(ct.origin_mm + np.array([1.0, 1.5, 2.0])),
        spacing_mm=(4.0, 4.0, 4.0),
        shape=shape,
        orientation=ct.orientation,
    )
    k, j, i = np.meshgrid(*(np.arange(n) for n in shape), indexing="ij")
    series = write_ct_series(
        folder,
        grid,
        hu=100 + 20 * k + 3 * j + 2 * i,
        patient_id=patient,
        study_instance_uid=study,
        frame_of_reference_uid=frame,
    )
    for path in series.files:
        ds = pydicom.dcmread(path)
        ds.Modality = "PT"
        ds.SOPClassUID = PositronEmissionTomographyImageStorage
        ds.file_meta.MediaStorageSOPClassUID = PositronEmissionTomographyImageStorage
        ds.save_as(path)


def write_archive(root: Path, patients: int, slices: int, size: int, *, pt: bool) -> None:
    """Write the synthetic archive under ``root``."""
    for p in range(patients):
        grid = ImageGrid.from_explicit(
            origin_mm=(-0.49 * size, -0.49 * size, -1.5 * slices),
            spacing_mm=(3.0, 0.98, 0.98),
            shape=(slices, size, size),
        )
        patient = f"PAT{p:04d}"
        ct = write_ct_series(root / patient / "CT", grid, patient_id=patient)
        write_rtstruct(root / patient / "RS.dcm", _rois(ct.grid, slices, size), ct)
        if pt:
            frame = ct.frame_of_reference_uid
            _write_pt(root / patient / "PT", ct.grid, patient, ct.study_instance_uid, frame)


def _labels_digest(folder: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(folder.rglob("labelsTr/*.nii.gz")):
        digest.update(path.name.encode())
        digest.update(np.asarray(nib.load(path).dataobj).tobytes())
    return digest.hexdigest()[:16]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patients", type=int, default=24)
    parser.add_argument("--slices", type=int, default=40)
    parser.add_argument("--size", type=int, default=192)
    parser.add_argument("--pt", action="store_true", help="add a PT channel (resampled)")
    parser.add_argument("--archive", type=Path)
    parser.add_argument("--jobs", type=int, nargs="+", default=[1, 2])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        root = args.archive or Path(scratch) / "archive"
        if not root.is_dir() or not any(root.iterdir()):
            root.mkdir(parents=True, exist_ok=True)
            start = time.perf_counter()
            write_archive(root, args.patients, args.slices, args.size, pt=args.pt)
            print(f"wrote the archive in {time.perf_counter() - start:.1f} s: {root}")
        channels = ["--channel", "CT", "--channel", "PT"] if args.pt else []
        digests = set()
        rates: dict[int, list[float]] = {}
        script = Path(sys.executable).with_name("rtmask")
        for run, jobs in enumerate(args.jobs):
            out = Path(scratch) / f"out-{run}-jobs{jobs}"
            command = [str(script), "dataset", str(root), "-o", str(out)]
            command += ["--labels", ",".join(LABELS), "--id", "501", "--name", "Bench"]
            command += ["--jobs", str(jobs), "-q", *channels]
            start = time.perf_counter()
            code = subprocess.run(command, check=False).returncode
            seconds = time.perf_counter() - start
            if code != 0:
                raise SystemExit(f"--jobs {jobs}: rtmask dataset failed (exit {code})")
            cases = sum(1 for _ in (out / "Dataset501_Bench" / "labelsTr").iterdir())
            digests.add(_labels_digest(out))
            rates.setdefault(jobs, []).append(60 * cases / seconds)
            rate = rates[jobs][-1]
            print(f"--jobs {jobs}: {cases} cases in {seconds:.1f} s = {rate:.1f} cases/min")
        medians = {jobs: statistics.median(values) for jobs, values in rates.items()}
        for jobs, rate in medians.items():
            print(f"--jobs {jobs}: median {rate:.1f} cases/min over {len(rates[jobs])} run(s)")
        if 1 in medians and 2 in medians:
            print(f"--jobs 2 / --jobs 1 throughput: {medians[2] / medians[1]:.2f}x")
        print("label maps identical across runs:", len(digests) == 1)


if __name__ == "__main__":
    main()
