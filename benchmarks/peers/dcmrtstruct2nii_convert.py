"""dcmrtstruct2nii: every ROI as ``mask_<name>.nii.gz`` (run with the peers' venv).

    python dcmrtstruct2nii_convert.py IMAGE_DIR RTSTRUCT OUT

Masks only (``convert_original_dicom=False``), foreground 1 like the other tools.
"""

import argparse
import json
import sys
from pathlib import Path


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("image")
    parser.add_argument("rtstruct")
    parser.add_argument("output")
    args = parser.parse_args()

    from dcmrtstruct2nii import dcmrtstruct2nii

    dcmrtstruct2nii(
        args.rtstruct,
        args.image,
        args.output,
        mask_foreground_value=1,
        convert_original_dicom=False,
    )
    files = sorted(p.name for p in Path(args.output).glob("mask_*.nii.gz"))
    print(json.dumps({"masks": len(files)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
