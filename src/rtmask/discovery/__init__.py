"""Discovery: find image series and RT objects in folder trees and link them.

Headers only, no pixel data: :func:`scan` walks files and folders and returns an
:class:`Inventory`; :func:`link_image_series` finds the series an RTSTRUCT (or RTDOSE /
RTPLAN) was made on; :func:`read_image_series` reads the one series of a folder. The one
exception, :func:`read_slices`, reads the pixels of a few chosen slices (for pictures).
"""

from rtmask.discovery._link import SeriesLink, contours_on_slices, link_image_series
from rtmask.discovery._pixels import read_slices, read_slices_int16
from rtmask.discovery._scan import (
    Inventory,
    RTObject,
    build_inventory,
    read_header,
    read_image_series,
    scan,
)
from rtmask.discovery._series import ImageHeader, ImageSeries, SkippedFile

__all__ = [
    "ImageHeader",
    "ImageSeries",
    "Inventory",
    "RTObject",
    "SeriesLink",
    "SkippedFile",
    "build_inventory",
    "contours_on_slices",
    "link_image_series",
    "read_header",
    "read_image_series",
    "read_slices",
    "read_slices_int16",
    "scan",
]
