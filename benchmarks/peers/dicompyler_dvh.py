"""dicompyler-core: the DVH of every ROI of an RTSTRUCT in an RTDOSE (run with the peers' venv).

    python dicompyler_dvh.py RTSTRUCT RTDOSE

Calls ``dicompylercore.dvhcalc.get_dvh(rtss, rtdose, roi_number)`` at its default settings
for every ROI of the structure set (both files read once). Prints one JSON document: per
ROI volume (cm3), mean, min, max, D99, D95, D5, D1, D0.03cc (Gy; a statistic this
dicompyler-core cannot give is left out) or the error, and the wall time of the whole
run (``time_s``, imports and reading included) and of the work after the imports
(``compute_s``: reading both files and every DVH).
"""

import argparse
import json
import time
import warnings

STATS = ("D99", "D95", "D5", "D1", "D0.03cc")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("rtstruct")
    parser.add_argument("rtdose")
    args = parser.parse_args()
    start = time.perf_counter()
    from dicompylercore import dicomparser, dvhcalc

    imported = time.perf_counter()
    rtss = dicomparser.DicomParser(args.rtstruct)
    rtdose = dicomparser.DicomParser(args.rtdose)
    results = []
    for number, structure in sorted(rtss.GetStructures().items()):
        entry = {"number": int(number), "name": str(structure["name"])}
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                dvh = dvhcalc.get_dvh(rtss.ds, rtdose.ds, number)
            entry["volume_cm3"] = float(dvh.volume)
            entry["mean_gy"] = float(dvh.mean)
            entry["min_gy"] = float(dvh.min)
            entry["max_gy"] = float(dvh.max)
            entry["stats"] = {}
            for name in STATS:
                try:
                    entry["stats"][name] = float(dvh.statistic(name).value)
                except Exception:  # e.g. D0.03cc in an older dicompyler-core: leave it out
                    continue
        except Exception as error:  # report and go on, as a benchmark must
            entry["error"] = f"{type(error).__name__}: {error}"
        results.append(entry)
    end = time.perf_counter()
    print(json.dumps({"rois": results, "time_s": end - start, "compute_s": end - imported}))


if __name__ == "__main__":
    main()
