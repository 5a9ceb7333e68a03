"""Synthetic DICOM data: CT series, RT Structure Sets and RT Doses written from analytic shapes.

Used by ``rtmask demo``, by the test suite's fixtures and by the benchmarks. The shape
helpers are pure numpy and put contours exactly on the slice planes of an ImageGrid; the
writers need pydicom. :class:`SlabStack` gives closed-form DVHs of circular contour stacks
and solids of revolution in a linear dose, :class:`SectionStack` those of polygonal
sections (shapes lying in the image plane), to check a DVH engine against.
"""

from rtmask.synthetic._analytic import SectionStack, SlabStack, circular_segment_area
from rtmask.synthetic._demo_case import DemoCase, demo_grid, write_demo_case
from rtmask.synthetic._shapes import (
    c_shape_uv,
    circle_uv,
    cone_contours,
    cylinder_contours,
    ellipse_uv,
    ellipsoid_contours,
    keyhole_annulus_uv,
    rectangle_uv,
    sphere_contours,
    to_patient,
    to_uv,
)
from rtmask.synthetic._writer import (
    CTSeries,
    RoiSpec,
    format_ds,
    write_ct_series,
    write_rtdose,
    write_rtstruct,
)

__all__ = [
    "CTSeries",
    "DemoCase",
    "RoiSpec",
    "SectionStack",
    "SlabStack",
    "c_shape_uv",
    "circle_uv",
    "circular_segment_area",
    "cone_contours",
    "cylinder_contours",
    "demo_grid",
    "ellipse_uv",
    "ellipsoid_contours",
    "format_ds",
    "keyhole_annulus_uv",
    "rectangle_uv",
    "sphere_contours",
    "to_patient",
    "to_uv",
    "write_ct_series",
    "write_demo_case",
    "write_rtdose",
    "write_rtstruct",
]
