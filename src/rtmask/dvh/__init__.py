"""Structure volumes and dose-volume histograms with named conventions.

:func:`contour_volume` gives the contour-based volume: polygon areas (holes by the same
rules as the rasteriser) times slab thickness, with the end-cap convention named
(:class:`EndCaps`). Voxel-based volumes are :attr:`rtmask.raster.Mask.volume_cm3` of a
binary mask (voxel count) or of a fractional one (partial volumes).

:func:`get_dvh` is the one call from files (or Datasets) and an ROI number or name to a
DVH, with a dose cap, interpolated contour planes and a progress callback.
:func:`compute_dvh` samples an ROI with partial volumes on calculation planes in an RT
Dose and returns a cumulative :class:`DVH` with its statistics; :func:`compute_dvhs` does
it for several ROIs (one after the other, or on ``workers`` threads).
:func:`read_embedded_dvhs` reads the DVHs a planning system stored in an RT Dose, for
comparison (:meth:`EmbeddedDVH.to_dvh`). Reports: :meth:`DVH.describe`,
:meth:`DVH.compare` (:func:`compare_dvhs`), :func:`write_dvhs_csv`, :func:`write_dvhs_json`,
:func:`plot_dvhs`, and the :func:`homogeneity_index` and :func:`conformity_index`.

A DVH converts to other units as a :class:`DVHCurve` (``relative_volume()``,
``relative_dose(rx_gy)``, ``differential()``, ...), is built from a histogram or from dose
samples (:meth:`DVH.from_counts`, :meth:`DVH.from_data`), and gives statistics with their
unit (:meth:`DVH.statistic_value`, ``dvh.D2cc``, ``dvh.V20Gy``: :class:`StatisticValue`).
"""

from rtmask.dvh._compute import compute_dvh, compute_dvhs
from rtmask.dvh._curve import DVHCurve, dvh_from_counts, dvh_from_data, plot_curves
from rtmask.dvh._embedded import EmbeddedDVH, read_embedded_dvhs
from rtmask.dvh._get_dvh import cap_dose, get_dvh
from rtmask.dvh._histogram import DVH, cumulative_curve
from rtmask.dvh._report import (
    REPORT_STATS,
    compare_dvhs,
    conformity_index,
    describe_dvh,
    homogeneity_index,
    plot_dvhs,
    write_dvhs_csv,
    write_dvhs_json,
)
from rtmask.dvh._slabs import EndCaps
from rtmask.dvh._statistics import StatisticValue
from rtmask.dvh._volume import ContourVolume, contour_volume

__all__ = [
    "DVH",
    "REPORT_STATS",
    "ContourVolume",
    "DVHCurve",
    "EmbeddedDVH",
    "EndCaps",
    "StatisticValue",
    "cap_dose",
    "compare_dvhs",
    "compute_dvh",
    "compute_dvhs",
    "conformity_index",
    "contour_volume",
    "cumulative_curve",
    "describe_dvh",
    "dvh_from_counts",
    "dvh_from_data",
    "get_dvh",
    "homogeneity_index",
    "plot_curves",
    "plot_dvhs",
    "read_embedded_dvhs",
    "write_dvhs_csv",
    "write_dvhs_json",
]
