"""Index benchmark: ``rtmask index`` time per file, and the re-index of an unchanged archive.

    python benchmarks/bench_index.py [--patients N] [--slices S] [--archive DIR] [--volumes]

Writes a synthetic archive with ``make_archive.py`` (N patients, each a CT series of S
slices in one of six orientations, an RTSTRUCT with messy ROI names, an RT Plan and RT
Doses; a few broken files and the real data replicated), unless DIR already holds one,
then times in this process:

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
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from make_archive import write_archive
from rtmask.cohort import index_archive


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
            write_archive(root, args.patients, slices=args.slices)
            n = sum(1 for path in root.rglob("*") if path.is_file())
            print(f"wrote {n} files in {time.perf_counter() - start:.1f} s")
        index = Path(scratch) / "index.duckdb"
        first = index_archive(root, index, volumes=args.volumes)
        second = index_archive(root, index, volumes=args.volumes)
        Path(f"{index}.stamp.json").unlink()
        unstamped = index_archive(root, index, volumes=args.volumes)
        touched = next(p for p in sorted(root.rglob("RS*.dcm")))
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
