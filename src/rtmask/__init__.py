"""rtmask: exact voxel masks, volumes and DVHs from DICOM RT Structure Sets.

The public API, in data-flow order::

    structure_set = rtmask.read_rtstruct("RS.dcm")
    series = rtmask.read_image_series("CT/")            # or rtmask.scan(...) + link
    mask = rtmask.rasterize(structure_set.roi("GTV"), series.grid)
    rtmask.write_nifti(mask.array, mask.grid, "GTV.nii.gz")

an archive indexed into DuckDB (``rtmask index ROOT -o INDEX.duckdb``, needs rtmask[cohort])::

    con = rtmask.open_index("INDEX.duckdb")            # read-only DuckDB connection
    con.sql("SELECT ROIName, count(*) FROM rois GROUP BY ROIName").show()

and the way back, masks to DICOM::

    masks = rtmask.read_masks("masks/", series)        # NIfTI/NRRD folder, labelmap, npz, SEG
    rtmask.write_rtstruct(masks, series, "RS.dcm")     # contours along the voxel edges
    rtmask.write_seg(masks, series, "SEG.dcm")         # needs rtmask[seg] (highdicom)

and DVHs, in one call (as dicompyler-core's ``dvhcalc.get_dvh``)::

    dvh = rtmask.get_dvh("RS.dcm", "RD.dcm", "Heart")  # ROI number or name
    dvh.D2cc, dvh.V20Gy, dvh.statistic("V20Gy", volume_units="%")

Every name is imported on first use (``import rtmask`` loads neither numpy nor pydicom;
the writers bring nibabel, pynrrd and highdicom only when called), so scripts and the
command line start fast.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from rtmask._version import __version__ as __version__
from rtmask.errors import (
    DicomReadError,
    GeometryError,
    InvalidInputError,
    MissingReferenceError,
    RtmaskError,
    RtmaskWarning,
    SeriesNotFoundError,
)

if TYPE_CHECKING:
    from rtmask.cohort import open_index
    from rtmask.convert import convert_structure_set
    from rtmask.discovery import (
        ImageSeries,
        Inventory,
        link_image_series,
        read_image_series,
        scan,
    )
    from rtmask.dose import DoseGrid, read_dose
    from rtmask.dvh import DVH, get_dvh, read_embedded_dvhs
    from rtmask.export import (
        write_labelmap,
        write_nifti,
        write_npz,
        write_nrrd,
        write_rtstruct,
        write_seg,
    )
    from rtmask.geometry import ImageGrid
    from rtmask.masks import read_masks
    from rtmask.plan import RTPlan, read_plan
    from rtmask.raster import CombinationRule, Mask, rasterize, rasterize_all
    from rtmask.rtstruct import ROI, Contour, GeometricType, StructureSet, read_rtstruct

__all__ = [
    "DVH",
    "ROI",
    "CombinationRule",
    "Contour",
    "DicomReadError",
    "DoseGrid",
    "GeometricType",
    "GeometryError",
    "ImageGrid",
    "ImageSeries",
    "InvalidInputError",
    "Inventory",
    "Mask",
    "MissingReferenceError",
    "RTPlan",
    "RtmaskError",
    "RtmaskWarning",
    "SeriesNotFoundError",
    "StructureSet",
    "convert_structure_set",
    "get_dvh",
    "link_image_series",
    "open_index",
    "rasterize",
    "rasterize_all",
    "read_dose",
    "read_embedded_dvhs",
    "read_image_series",
    "read_masks",
    "read_plan",
    "read_rtstruct",
    "scan",
    "write_labelmap",
    "write_nifti",
    "write_npz",
    "write_nrrd",
    "write_rtstruct",
    "write_seg",
]

#: The module of every public name imported on first use.
_LAZY: dict[str, str] = {
    **dict.fromkeys(["ImageGrid"], "rtmask.geometry"),
    **dict.fromkeys(["CombinationRule", "Mask", "rasterize", "rasterize_all"], "rtmask.raster"),
    **dict.fromkeys(
        ["ROI", "Contour", "GeometricType", "StructureSet", "read_rtstruct"], "rtmask.rtstruct"
    ),
    **dict.fromkeys(
        ["ImageSeries", "Inventory", "link_image_series", "read_image_series", "scan"],
        "rtmask.discovery",
    ),
    **dict.fromkeys(
        [
            "write_labelmap",
            "write_nifti",
            "write_npz",
            "write_nrrd",
            "write_rtstruct",
            "write_seg",
        ],
        "rtmask.export",
    ),
    "convert_structure_set": "rtmask.convert",
    **dict.fromkeys(["DVH", "get_dvh", "read_embedded_dvhs"], "rtmask.dvh"),
    **dict.fromkeys(["DoseGrid", "read_dose"], "rtmask.dose"),
    "open_index": "rtmask.cohort",
    "read_masks": "rtmask.masks",
    **dict.fromkeys(["RTPlan", "read_plan"], "rtmask.plan"),
}


def __getattr__(name: str) -> Any:
    """Import a public name's module on first use (see the module docstring)."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'rtmask' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # found directly from now on
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
