"""rtmask through the API: the DVH of every ROI of RTSTRUCTs in RTDOSEs.

    python rtmask_dvh.py RTSTRUCT RTDOSE [RTSTRUCT RTDOSE ...]

The counterpart of ``dicompyler_dvh.py``, with the same output: one JSON document with,
per case (a structure set in a dose, both read afresh), per ROI volume (cm3), mean, min,
max, D99, D95, D5, D1, D0.03cc (Gy) or the error; the time of the whole run
(``time_s``: imports, reading and every DVH) and of the work after the imports
(``compute_s``). One case prints ``{"rois": [...], ...}``, several
``{"cases": [{"rois": [...]}, ...], ...}``. ``rtmask.dvh.compute_dvhs`` runs at its
default settings (the ROIs one after the other).
"""

import argparse
import json
import sys
import time
import warnings

STATS = ("D99", "D95", "D5", "D1", "D0.03cc")


def one_case(rtstruct, rtdose):
    """Every ROI's values (or error) for one structure set in one dose."""
    from rtmask import RtmaskError, read_rtstruct
    from rtmask.dose import read_dose
    from rtmask.dvh import compute_dvhs

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        structure_set = read_rtstruct(rtstruct, on_invalid="ignore")
        dose = read_dose(rtdose)
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
    return results


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("files", nargs="+", help="RTSTRUCT RTDOSE pairs")
    args = parser.parse_args()
    if len(args.files) % 2:
        parser.error("give RTSTRUCT RTDOSE pairs")
    start = time.perf_counter()
    import rtmask.dvh  # noqa: F401  (the imports, timed apart from the work)
    from rtmask import read_rtstruct  # noqa: F401
    from rtmask.dose import read_dose  # noqa: F401

    imported = time.perf_counter()
    pairs = list(zip(args.files[::2], args.files[1::2], strict=True))
    cases = [{"rois": one_case(rtstruct, rtdose)} for rtstruct, rtdose in pairs]
    end = time.perf_counter()
    document = cases[0] if len(cases) == 1 else {"cases": cases}
    document.update(time_s=end - start, compute_s=end - imported)
    print(json.dumps(document))
    return 0


if __name__ == "__main__":
    sys.exit(main())
