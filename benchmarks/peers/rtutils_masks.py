"""rt-utils: a mask for every ROI, optionally written as .nii.gz (run with the peers' venv).

    python rtutils_masks.py IMAGE_DIR RTSTRUCT [OUT]

Without OUT every mask is kept in memory (a dict name -> array, as a data-set script
would); with OUT each mask is written as ``<n>.nii.gz`` (uint8, i = column, j = row,
k = slice, RAS affine from the sorted series) and dropped, and ``names.json`` maps ROI
names to files. The last line printed is a JSON summary, with ``compute_s``: the time
after the imports (reading the series and the structure set, every mask, writing).
"""

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np


def series_affine_ras(series_data):
    """NIfTI affine (RAS) of rt-utils' sorted series for data indexed (column, row, slice)."""
    first, last = series_data[0], series_data[-1]
    orientation = np.asarray(first.ImageOrientationPatient, dtype=float)
    row_spacing, column_spacing = (float(v) for v in first.PixelSpacing)
    origin = np.asarray(first.ImagePositionPatient, dtype=float)
    n = len(series_data)
    if n > 1:
        step = (np.asarray(last.ImagePositionPatient, dtype=float) - origin) / (n - 1)
    else:
        step = np.cross(orientation[:3], orientation[3:]) * float(first.SliceThickness or 1)
    lps = np.eye(4)
    lps[:3, 0] = orientation[:3] * column_spacing
    lps[:3, 1] = orientation[3:] * row_spacing
    lps[:3, 2] = step
    lps[:3, 3] = origin
    return np.diag([-1.0, -1.0, 1.0, 1.0]) @ lps


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("image")
    parser.add_argument("rtstruct")
    parser.add_argument("output", nargs="?")
    args = parser.parse_args()

    from rt_utils import RTStructBuilder

    if args.output:
        import nibabel  # noqa: F401 - imported before the clock starts, as rt_utils is
    start = time.perf_counter()
    rtstruct = RTStructBuilder.create_from(
        dicom_series_path=args.image, rt_struct_path=args.rtstruct, warn_only=True
    )
    output = Path(args.output) if args.output else None
    if output is not None:
        import nibabel as nib  # already imported: no time on the clock

        output.mkdir(parents=True, exist_ok=True)
        affine = series_affine_ras(rtstruct.series_data)
    masks, files, failed = {}, {}, {}
    for index, name in enumerate(rtstruct.get_roi_names(), start=1):
        try:
            mask = rtstruct.get_roi_mask_by_name(name)  # (rows, columns, slices) bool
        except Exception as error:  # a peer failing on one ROI is a result
            failed[name] = f"{type(error).__name__}: {error}"
            continue
        if output is None:
            masks[name] = mask
            continue
        data = np.ascontiguousarray(mask.transpose(1, 0, 2), dtype=np.uint8)
        image = nib.Nifti1Image(data, affine)
        image.set_qform(affine, code=1)
        image.set_sform(affine, code=1)
        files[name] = f"{index:03d}.nii.gz"
        nib.save(image, output / files[name])
    if output is not None:
        (output / "names.json").write_text(json.dumps(files, indent=1))
    compute_s = time.perf_counter() - start
    summary = {"masks": len(masks) or len(files), "failed": failed, "compute_s": compute_s}
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
