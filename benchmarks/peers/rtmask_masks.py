"""rtmask through the API: a mask for every ROI, kept in memory, nothing written.

    python rtmask_masks.py IMAGE_DIR RTSTRUCT

The counterpart of ``rtutils_masks.py`` without OUT: read the structure set, read the
image series (headers only), rasterise every ROI and keep the masks in a dict. The JSON
line printed holds ``compute_s``: the time after the imports (reading and every mask).
"""

import argparse
import json
import sys
import time


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("image")
    parser.add_argument("rtstruct")
    args = parser.parse_args()

    from rtmask import read_rtstruct
    from rtmask.discovery import read_image_series
    from rtmask.raster import rasterize_all

    start = time.perf_counter()
    structure_set = read_rtstruct(args.rtstruct, on_invalid="ignore")
    series = read_image_series(args.image)
    masks = {
        mask.roi.name: mask.array
        for mask in rasterize_all(structure_set, series.grid, on_invalid="ignore")
    }
    compute_s = time.perf_counter() - start
    print(json.dumps({"masks": len(masks), "failed": {}, "compute_s": compute_s}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
