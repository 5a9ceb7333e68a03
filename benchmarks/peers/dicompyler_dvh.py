"""dicompyler-core: the DVH of every ROI of RTSTRUCTs in RTDOSEs (run with the peers' venv).

    python dicompyler_dvh.py RTSTRUCT RTDOSE [RTSTRUCT RTDOSE ...]

Calls ``dicompylercore.dvhcalc.get_dvh(rtss, rtdose, roi_number)`` at its default settings
for every ROI of each structure set (both files of a case read afresh). Prints one JSON
document: per case, per ROI volume (cm3), mean, min, max, D99, D95, D5, D1, D0.03cc (Gy;
a statistic this dicompyler-core cannot give is left out) or the error, and the wall
time of the whole run (``time_s``, imports and reading included) and of the work after
the imports (``compute_s``: reading the files and every DVH). One case prints
``{"rois": [...], ...}``, several ``{"cases": [{"rois": [...]}, ...], ...}``.
"""

import argparse
import json
import time
import warnings

STATS = ("D99", "D95", "D5", "D1", "D0.03cc")


def one_case(rtstruct, rtdose):
    """Every ROI's values (or error) for one structure set in one dose."""
    from dicompylercore import dicomparser, dvhcalc

    rtss = dicomparser.DicomParser(rtstruct)
    dose = dicomparser.DicomParser(rtdose)
    results = []
    for number, structure in sorted(rtss.GetStructures().items()):
        entry = {"number": int(number), "name": str(structure["name"])}
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                dvh = dvhcalc.get_dvh(rtss.ds, dose.ds, number)
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
    return results


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("files", nargs="+", help="RTSTRUCT RTDOSE pairs")
    args = parser.parse_args()
    if len(args.files) % 2:
        parser.error("give RTSTRUCT RTDOSE pairs")
    start = time.perf_counter()
    from dicompylercore import dicomparser, dvhcalc  # noqa: F401

    imported = time.perf_counter()
    pairs = list(zip(args.files[::2], args.files[1::2], strict=True))
    cases = [{"rois": one_case(rtstruct, rtdose)} for rtstruct, rtdose in pairs]
    end = time.perf_counter()
    document = cases[0] if len(cases) == 1 else {"cases": cases}
    document.update(time_s=end - start, compute_s=end - imported)
    print(json.dumps(document))


if __name__ == "__main__":
    main()
