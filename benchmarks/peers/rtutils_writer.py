"""rt-utils: write an RTSTRUCT from a folder of NIfTI masks (run with the peers' venv).

    python rtutils_writer.py IMAGE_DIR MASK_DIR OUT.dcm

``RTStructBuilder.create_new(dicom_series_path=IMAGE_DIR)``, then ``add_roi(mask=...,
name=..., color=...)`` for every ``*.nii.gz`` / ``*.nii`` of MASK_DIR (in file-name order;
names and colours from rtmask's ``summary.json`` when the folder has one, else the file
stem), then ``save``. rt-utils wants each mask as ``(rows, columns, slices)`` in ITS slice
order (its series sorted by position along the plane normal); every NIfTI is mapped into
that order through its own affine and rt-utils' series geometry (any axis order or flip;
anything that is not an exact axis permutation is refused), so nothing is assumed about
how the files were written. The last line printed is a JSON summary.
"""

import argparse
import json
import sys
from pathlib import Path

import numpy as np

RAS_TO_LPS = np.diag([-1.0, -1.0, 1.0, 1.0])


def rtutils_index_affine(series_data):
    """LPS affine of rt-utils' mask index (row, column, slice), from its sorted series."""
    first, last = series_data[0], series_data[-1]
    orientation = np.asarray(first.ImageOrientationPatient, dtype=float)
    row_cosine, column_cosine = orientation[:3], orientation[3:]
    row_spacing, column_spacing = (float(v) for v in first.PixelSpacing)
    origin = np.asarray(first.ImagePositionPatient, dtype=float)
    n = len(series_data)
    if n > 1:
        step = (np.asarray(last.ImagePositionPatient, dtype=float) - origin) / (n - 1)
    else:
        step = np.cross(row_cosine, column_cosine) * float(first.SliceThickness or 1)
    affine = np.eye(4)
    affine[:3, 0] = column_cosine * row_spacing  # the row index moves down a column
    affine[:3, 1] = row_cosine * column_spacing  # the column index moves along a row
    affine[:3, 2] = step
    affine[:3, 3] = origin
    return affine


def to_rtutils_order(data, file_affine_lps, target_affine, target_shape, name):
    """Re-index ``data`` (file axes) into rt-utils' (rows, columns, slices), exactly."""
    mapping = np.linalg.inv(target_affine) @ file_affine_lps
    rounded = np.round(mapping)
    if np.abs(mapping - rounded).max() > 1e-3:
        raise ValueError(f"{name}: the mask is not on the image grid (not an axis permutation)")
    order = [0, 0, 0]
    flips = [False, False, False]
    for file_axis in range(3):
        target_axis = int(np.argmax(np.abs(rounded[:3, file_axis])))
        order[target_axis] = file_axis
        flips[target_axis] = rounded[target_axis, file_axis] < 0
    result = np.transpose(data, order)
    for target_axis, flip in enumerate(flips):
        if flip:
            result = np.flip(result, axis=target_axis)
    if result.shape != tuple(target_shape):
        raise ValueError(f"{name}: shape {result.shape} differs from the images' {target_shape}")
    return np.ascontiguousarray(result != 0)


def mask_files(folder):
    """(path, name, colour) of every NIfTI mask, names from summary.json when present."""
    summary = {}
    summary_path = folder / "summary.json"
    if summary_path.exists():
        for row in json.loads(summary_path.read_text(encoding="utf-8")).get("rois", []):
            if row.get("file"):
                summary[row["file"]] = (row["name"], row.get("color"))
    found = []
    for path in sorted(folder.iterdir()):
        if not path.name.endswith((".nii.gz", ".nii")):
            continue
        stem = path.name[: -len(".nii.gz")] if path.name.endswith(".gz") else path.stem
        name, color = summary.get(path.name, (stem, None))
        found.append((path, name, color))
    return found


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("image")
    parser.add_argument("masks", type=Path)
    parser.add_argument("output")
    args = parser.parse_args()

    import nibabel as nib
    from rt_utils import RTStructBuilder

    rtstruct = RTStructBuilder.create_new(dicom_series_path=args.image)
    target_affine = rtutils_index_affine(rtstruct.series_data)
    first = rtstruct.series_data[0]
    target_shape = (int(first.Rows), int(first.Columns), len(rtstruct.series_data))
    added, failed = [], {}
    for path, name, color in mask_files(args.masks):
        image = nib.load(str(path))
        data = np.asanyarray(image.dataobj)
        try:
            mask = to_rtutils_order(
                data, RAS_TO_LPS @ image.affine, target_affine, target_shape, path.name
            )
            rtstruct.add_roi(mask=mask, name=name, color=color)
        except Exception as error:  # a peer failing on one ROI is a result
            failed[name] = f"{type(error).__name__}: {error}"
            continue
        added.append(name)
    rtstruct.save(args.output)
    print(json.dumps({"rois": len(added), "failed": failed}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
