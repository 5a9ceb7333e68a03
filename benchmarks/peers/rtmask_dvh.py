"""rtmask through the API: the DVH of every ROI of an RTSTRUCT in an RTDOSE.

    python rtmask_dvh.py RTSTRUCT RTDOSE

The counterpart of ``dicompyler_dvh.py``, with the same output: one JSON document with
per ROI volume (cm3), mean, min, max, D99, D95, D5, D1, D0.03cc (Gy) or the error, the time of the
whole run (``time_s``: imports, reading and every DVH) and of the work after the imports
(``compute_s``). ``rtmask.dvh.compute_dvhs`` at its default settings computes the ROIs
on worker threads.
"""

import argparse
import json
import sys
import time
import warnings

STATS = ("D99", "D95", "D5", "D1", "D0.03cc")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("rtstruct")
    parser.add_argument("rtdose")
    args = parser.parse_args()
    start = time.perf_counter()
    from rtmask import RtmaskError, read_rtstruct
    from rtmask.dose import read_dose
    from rtmask.dvh import compute_dvhs

    imported = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        structure_set = read_rtstruct(args.rtstruct, on_invalid="ignore")
        dose = read_dose(args.rtdose)
        rois = [roi for roi in structure_set.rois if roi.encloses_volume]
        results = []
        for roi, dvh in zip(rois, compute_dvhs(rois, dose, on_invalid="ignore"), strict=True):
            entry = {"number": roi.number, "name": roi.name}
            if isinstance(dvh, RtmaskError):
                entry["error"] = f"{type(dvh).__name__}: {dvh}"
            else:
                entry["volume_cm3"] = dvh.total_cm3
                entry["mean_gy"] = dvh.mean_gy
                entry["min_gy"] = dvh.min_gy
                entry["max_gy"] = dvh.max_gy
                entry["stats"] = {name: dvh.statistic(name) for name in STATS}
            results.append(entry)
    end = time.perf_counter()
    print(json.dumps({"rois": results, "time_s": end - start, "compute_s": end - imported}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
