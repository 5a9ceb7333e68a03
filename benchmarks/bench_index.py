"""Index benchmark: ``rtmask index`` time per file, and the re-index of an unchanged archive.

    python benchmarks/bench_index.py [--patients N] [--slices S] [--archive DIR] [--volumes]

Writes a synthetic archive (N patients, each a CT series of S slices in one of four
orientations, an RTSTRUCT with messy ROI names, an RT Plan and an RT Dose; plus a few
broken files) with rtmask.synthetic, unless DIR already holds one, then times in this
process:

1. the first index into a new database (every header read);
2. the same call again on the unchanged archive (nothing read: walk, stat, compare with
   the stamp of the last run), and once more without the stamp (DuckDB opened and its
   records compared);
3. after touching one file (one header read, the derived tables rebuilt).

Prints the time per file of run 1 and the ratio run 2 / run 1 (the target is <= 5 %).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from rtmask.cohort import index_archive
from rtmask.geometry import ImageGrid
from rtmask.synthetic import (
    RoiSpec,
    cylinder_contours,
    write_ct_series,
    write_rtdose,
    write_rtstruct,
)

ORIENTATIONS = {
    "HFS": (1.0, 0.0, 0.0, 0.0, 1.0, 0.0),
    "FFS": (-1.0, 0.0, 0.0, 0.0, 1.0, 0.0),
    "sagittal": (0.0, 1.0, 0.0, 0.0, 0.0, -1.0),
    "coronal": (1.0, 0.0, 0.0, 0.0, 0.0, -1.0),
}
NAMES = [
    ("PTV", "PTV"),
    ("Lung_L", "ORGAN"),
    ("L Lung", "ORGAN"),
    ("LUNG LT", "ORGAN"),
    ("lung left", "ORGAN"),
    ("Lt_Lung_1", "ORGAN"),
    ("Body", "EXTERNAL"),
    ("GTV", "GTV"),
]


def _plan(path: Path, patient: str, study_uid: str) -> str:
    uid = generate_uid()
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.481.5"
    meta.MediaStorageSOPInstanceUID = uid
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID, ds.Modality = meta.MediaStorageSOPClassUID, uid, "RTPLAN"
    ds.PatientID, ds.StudyInstanceUID, ds.SeriesInstanceUID = patient, study_uid, generate_uid()
    ds.RTPlanLabel = "PLAN"
    ds.save_as(path, enforce_file_format=True)
    return uid


def write_archive(root: Path, patients: int, slices: int) -> int:
    """Write the archive; returns the number of files."""
    for p in range(patients):
        orientation = list(ORIENTATIONS.values())[p % len(ORIENTATIONS)]
        grid = ImageGrid.from_explicit(
            origin_mm=(-40.0, -30.0, -10.0),
            spacing_mm=(3.0, 1.0, 1.0),
            shape=(slices, 64, 64),
            orientation=orientation,
        )
        folder = root / f"PAT{p:04d}"
        patient = f"PAT{p:04d}"
        ct = write_ct_series(folder / "CT", grid, patient_id=patient)
        centre = grid.index_to_patient([slices / 2, 32, 32])[0]
        rois = [
            RoiSpec(
                number=i + 1,
                name=NAMES[(p + i) % len(NAMES)][0],
                interpreted_type=NAMES[(p + i) % len(NAMES)][1],
                contours=tuple(
                    (c, "CLOSED_PLANAR")
                    for c in cylinder_contours(grid, centre, 5.0 + 2 * i, 2.0 * slices)
                ),
            )
            for i in range(4)
        ]
        write_rtstruct(folder / "RS.dcm", rois, ct)
        plan = _plan(folder / "RP.dcm", patient, ct.study_instance_uid)
        write_rtdose(folder / "RD.dcm", grid, np.ones(grid.shape), ct, referenced_plan_uid=plan)
        if p % 50 == 7:
            (folder / "broken.dcm").write_bytes(b"\0" * 128 + b"DICM" + b"\x02\x00" * 10)
    return sum(1 for path in root.rglob("*") if path.is_file())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patients", type=int, default=40)
    parser.add_argument("--slices", type=int, default=8)
    parser.add_argument("--archive", type=Path)
    parser.add_argument("--volumes", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        root = args.archive or Path(scratch) / "archive"
        if not root.is_dir() or not any(root.iterdir()):
            root.mkdir(parents=True, exist_ok=True)
            start = time.perf_counter()
            n = write_archive(root, args.patients, args.slices)
            print(f"wrote {n} files in {time.perf_counter() - start:.1f} s")
        index = Path(scratch) / "index.duckdb"
        first = index_archive(root, index, volumes=args.volumes)
        second = index_archive(root, index, volumes=args.volumes)
        Path(f"{index}.stamp.json").unlink()
        unstamped = index_archive(root, index, volumes=args.volumes)
        touched = next(p for p in sorted(root.rglob("RS.dcm")))
        os.utime(touched)
        third = index_archive(root, index, volumes=args.volumes)
        print(
            f"first index: {first.files} files ({first.rois} ROIs) in {first.seconds:.3f} s = "
            f"{1000 * first.seconds / first.files:.2f} ms per file"
        )
        print(
            f"unchanged re-index: {second.files_read} files read in {second.seconds:.4f} s = "
            f"{100 * second.seconds / first.seconds:.1f} % of the first (target <= 5 %)"
        )
        print(
            f"unchanged, without the stamp (DuckDB opened, records compared): "
            f"{unstamped.seconds:.4f} s = {100 * unstamped.seconds / first.seconds:.1f} %"
        )
        print(
            f"one file touched: {third.files_read} file read in {third.seconds:.4f} s = "
            f"{100 * third.seconds / first.seconds:.1f} % of the first"
        )


if __name__ == "__main__":
    main()
