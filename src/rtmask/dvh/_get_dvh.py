"""One call from a structure set, a dose and an ROI to its DVH (dicompyler-core's ``get_dvh``).

:func:`get_dvh` reads what it is given (paths or pydicom Datasets), finds the ROI by
number or name and runs :func:`rtmask.dvh.compute_dvh`, with the options a dicompyler-core
user reaches for: a dose cap, counting the volume outside the dose grid, the slab
thickness of a structure drawn on one plane, contour shapes interpolated between planes,
and a progress callback.
"""

from __future__ import annotations

import dataclasses
import inspect
import math
import os
import tempfile
import warnings
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from rtmask.dose import DoseGrid, read_dose
from rtmask.dvh._compute import compute_dvh
from rtmask.dvh._histogram import DVH
from rtmask.dvh._slabs import EndCaps
from rtmask.errors import GeometryWarning, InvalidInputError, RtmaskError, StructureSetWarning
from rtmask.rtstruct import ROI, StructureSet, read_rtstruct

if TYPE_CHECKING:
    from pydicom import Dataset

    from rtmask.discovery import ImageSeries

__all__ = ["compute_roi_dvhs", "get_dvh"]

FloatArray = NDArray[np.float64]

#: Contour planes closer than this (mm) along the normal are one plane.
_MERGE_MM = 0.01

Progress = Callable[[int, int], None]


def _structure_set(source: str | os.PathLike[str] | Dataset | StructureSet) -> StructureSet:
    if isinstance(source, StructureSet):
        return source
    return read_rtstruct(source, on_invalid="ignore")  # the chosen ROI's problems are warned


def _dose(
    source: str | os.PathLike[str] | Dataset | DoseGrid, prescription_gy: float | None
) -> DoseGrid:
    if isinstance(source, DoseGrid):
        return source
    if isinstance(source, (str, os.PathLike)):
        return read_dose(source, prescription_gy=prescription_gy)
    try:  # a pydicom Dataset, where read_dose takes one
        return read_dose(source, prescription_gy=prescription_gy)
    except TypeError:  # written to a file for the file reader
        name = str(getattr(source, "filename", None) or "<dataset>")
        with tempfile.TemporaryDirectory(prefix="rtmask-") as folder:
            path = Path(folder) / "RD.dcm"
            source.save_as(path, enforce_file_format=False)
            dose = read_dose(path, prescription_gy=prescription_gy)
        return dataclasses.replace(dose, source=name)


def _roi(structure_set: StructureSet, roi: int | str) -> ROI:
    try:
        return structure_set.roi(roi)
    except KeyError:
        if isinstance(roi, str) and roi.strip().isascii() and roi.strip().isdigit():
            return _roi(structure_set, int(roi))
        where = f"{structure_set.source}: " if structure_set.source else ""
        numbers = ", ".join(f"{r.number} {r.name!r}" for r in structure_set.rois)
        raise InvalidInputError(
            f"{where}no ROI {roi!r}; give one of its ROI numbers or names: {numbers}"
        ) from None


def _plane_positions(rois: tuple[ROI, ...], normal: FloatArray) -> FloatArray:
    """Distinct positions (mm along ``normal``) of the closed contours of ``rois``."""
    positions = [
        float(np.mean(c.points_mm @ normal))
        for roi in rois
        for c in roi.contours
        if c.geometric_type.encloses_volume and c.n_points >= 3
    ]
    along = np.sort(np.asarray(positions, dtype=np.float64))
    if along.size == 0:
        return along
    return np.asarray(along[np.concatenate([[True], np.diff(along) > _MERGE_MM])])


def _single_plane_mm(
    structure_set: StructureSet,
    dose: DoseGrid,
    image: str | os.PathLike[str] | ImageSeries | None,
) -> tuple[float, str]:
    """Default slab thickness of a single-plane ROI (mm) and where it comes from."""
    if image is not None:
        if isinstance(image, (str, os.PathLike)):
            from rtmask.discovery import read_image_series  # noqa: PLC0415 - only when given

            image = read_image_series(Path(image))
        if image.grid.shape[0] > 1:
            return float(image.grid.spacing_mm[0]), "the image series' slice spacing"
    planes = _plane_positions(structure_set.rois, dose.grid.normal)
    if planes.size > 1:
        return (
            float(np.median(np.diff(planes))),
            "the usual gap between the structure set's contour planes (its image slices)",
        )
    return float(dose.grid.spacing_mm[0]), "the dose grid's slice spacing"


def cap_dose(dvh: DVH, limit_gy: float) -> DVH:
    """``dvh`` with every dose above ``limit_gy`` counted at ``limit_gy`` (a dose cap).

    The curve is unchanged up to the limit and 0 above it; the mean loses the area of the
    curve above the limit (integrated linearly), Dmax becomes the limit.
    """
    if not (math.isfinite(limit_gy) and limit_gy > 0):
        raise InvalidInputError(f"limit_gy must be a positive number of Gy, got {limit_gy}")
    if dvh.max_gy <= limit_gy:
        return dvh
    edges, volume = dvh.dose_gy, dvh.volume_cm3
    at_limit = dvh.volume_at_dose(limit_gy)
    above = edges > limit_gy
    tail_edges = np.concatenate([[limit_gy], edges[above]])
    tail_volume = np.concatenate([[at_limit], volume[above]])
    tail = float(np.sum((tail_volume[1:] + tail_volume[:-1]) / 2 * np.diff(tail_edges)))
    total = dvh.total_cm3
    keep = edges < limit_gy
    step = 1e-9 * max(limit_gy, 1.0)
    message = (
        f"ROI {dvh.roi_number} {dvh.roi_name!r}: {at_limit:.3f} cm3 receives more than the "
        f"dose limit of {limit_gy:g} Gy (up to {dvh.max_gy:.3f} Gy) and is counted at it"
    )
    warnings.warn(message, GeometryWarning, stacklevel=3)
    return dataclasses.replace(
        dvh,
        dose_gy=np.concatenate([edges[keep], [limit_gy, limit_gy + step]]),
        volume_cm3=np.concatenate([volume[keep], [at_limit, 0.0]]),
        min_gy=min(dvh.min_gy, limit_gy),
        max_gy=limit_gy,
        mean_gy=dvh.mean_gy - tail / total if total > 0 else dvh.mean_gy,
        warnings=(*dvh.warnings, message),
    )


def get_dvh(
    structure_set: str | os.PathLike[str] | Dataset | StructureSet,
    dose: str | os.PathLike[str] | Dataset | DoseGrid,
    roi: int | str,
    *,
    limit_gy: float | None = None,
    calculate_full_volume: bool = False,
    slab_thickness_mm: float | None = None,
    image: str | os.PathLike[str] | ImageSeries | None = None,
    interpolate: int | bool = False,
    progress: Progress | None = None,
    prescription_gy: float | None = None,
    **options: Any,
) -> DVH:
    """Cumulative DVH of one ROI in an RT Dose, in one call.

    Parameters
    ----------
    structure_set
        The RT Structure Set: a path, a pydicom Dataset or a read :class:`StructureSet`.
    dose
        The RT Dose: a path, a pydicom Dataset or a :class:`~rtmask.dose.DoseGrid`.
    roi
        The ROI's number (int) or name (str; exact, then case-insensitive; a name of
        digits that names no ROI is taken as a number).
    limit_gy
        Dose cap, Gy: volume above it is counted at it (warned about; :func:`cap_dose`).
    calculate_full_volume
        Count the part of the ROI outside the dose grid at 0 Gy (``count_outside`` of
        :func:`compute_dvh`; CLI ``--count-outside``). Default: leave it out.
    slab_thickness_mm
        Slab thickness of an ROI drawn on a single plane, mm. Default: the slice spacing
        of ``image`` when given, else the usual gap between the structure set's contour
        planes (they lie on its image slices), else the dose grid's slice spacing; the
        choice is stated in a :class:`GeometryWarning`.
    image
        The image series (folder or :class:`~rtmask.discovery.ImageSeries`), used only for
        the default slab thickness above.
    interpolate
        Contour shapes interpolated between neighbouring planes (for coarse contour
        spacing): a number of planes per gap, or True for gaps of at most 1 mm
        (:mod:`rtmask.dvh._interpolate`). Default: none.
    progress
        Called as ``progress(steps done, steps)`` once the structure set and the dose are
        read, after each interpolated gap between contour planes, and when the DVH is done.
    prescription_gy
        Prescription dose, Gy: kept in the DVH (relative doses, V<x>% statistics), and
        needed to read a dose in RELATIVE units.
    options
        Further keyword arguments of :func:`compute_dvh` (``bin_width_gy``,
        ``resolution_mm``, ``end_caps``, ``samples``, ``rule``, ``on_invalid``).

    Raises
    ------
    InvalidInputError
        No such ROI, an invalid option, or no DVH can be computed (see compute_dvh).
    DicomReadError
        A file cannot be read.
    """
    _check_options(slab_thickness_mm, limit_gy, interpolate)
    _check_keywords(options)
    structures = _structure_set(structure_set)
    grid = _dose(dose, prescription_gy)
    chosen = _roi(structures, roi)
    for problem in structures.read_problems([chosen], skipped=False):
        warnings.warn(problem, StructureSetWarning, stacklevel=2)
    planes = _plane_positions((chosen,), grid.grid.normal)
    interpolating = bool(interpolate) and planes.size > 1
    steps = 2 + (planes.size - 1 if interpolating else 0)
    if progress is not None:
        progress(1, steps)
    dvh = _roi_dvh(
        chosen,
        structures,
        grid,
        _Extras(limit_gy, slab_thickness_mm, image, interpolate),
        on_gap=None if progress is None else lambda k, _: progress(1 + k, steps),
        count_outside=calculate_full_volume,
        prescription_gy=prescription_gy,
        **options,
    )
    if progress is not None:
        progress(steps, steps)
    return dvh


@dataclasses.dataclass(frozen=True, slots=True)
class _Extras:
    """get_dvh's options beyond compute_dvh's: dose cap, single-plane slab, interpolation."""

    limit_gy: float | None = None
    slab_thickness_mm: float | None = None
    image: str | os.PathLike[str] | ImageSeries | None = None
    interpolate: int | bool = False


def _roi_dvh(
    roi: ROI,
    structures: StructureSet,
    dose: DoseGrid,
    extras: _Extras,
    *,
    on_gap: Progress | None = None,
    **options: Any,
) -> DVH:
    """One ROI's DVH with :func:`get_dvh`'s options (``options``: compute_dvh's)."""
    options = dict(options)  # end_caps is taken out: the caller's dict stays whole
    chosen, end_caps, messages = _stack(
        roi,
        structures=structures,
        dose=dose,
        planes=_plane_positions((roi,), dose.grid.normal),
        slab_thickness_mm=extras.slab_thickness_mm,
        image=extras.image,
        interpolate=extras.interpolate,
        end_caps=EndCaps(options.pop("end_caps", EndCaps.HALF)),
        on_gap=on_gap,
    )
    dvh = compute_dvh(chosen, dose, end_caps=end_caps, **options)
    if messages:
        dvh = dataclasses.replace(dvh, warnings=(*dvh.warnings, *messages))
    if extras.limit_gy is not None:
        dvh = cap_dose(dvh, extras.limit_gy)
    return dvh


def compute_roi_dvhs(
    rois: Iterable[ROI],
    structure_set: StructureSet,
    dose: DoseGrid,
    *,
    limit_gy: float | None = None,
    slab_thickness_mm: float | None = None,
    image: str | os.PathLike[str] | ImageSeries | None = None,
    interpolate: int | bool = False,
    **options: Any,
) -> Iterator[DVH | RtmaskError]:
    """:func:`get_dvh`'s options for several ROIs of one structure set, in ROI order.

    ``limit_gy``, ``slab_thickness_mm``, ``image`` and ``interpolate`` as in
    :func:`get_dvh`; ``options`` are :func:`compute_dvh`'s keyword arguments
    (``count_outside`` is get_dvh's ``calculate_full_volume``). An ROI whose DVH cannot be
    computed yields its :class:`RtmaskError`, as :func:`compute_dvhs` does. Without the
    extra options each DVH is :func:`compute_dvh`'s; an ROI drawn on a single plane gets
    get_dvh's slab (stated in a warning) instead of compute_dvh's dose-grid slice.

    Raises
    ------
    InvalidInputError
        A non-positive ``limit_gy`` or ``slab_thickness_mm``, a negative ``interpolate``
        (when the iteration starts, before any ROI is computed).
    """
    _check_options(slab_thickness_mm, limit_gy, interpolate)
    extras = _Extras(limit_gy, slab_thickness_mm, image, interpolate)
    for roi in rois:
        try:
            yield _roi_dvh(roi, structure_set, dose, extras, **options)
        except RtmaskError as error:
            yield error


def _stack(
    roi: ROI,
    *,
    structures: StructureSet,
    dose: DoseGrid,
    planes: FloatArray,
    slab_thickness_mm: float | None,
    image: str | os.PathLike[str] | ImageSeries | None,
    interpolate: int | bool,
    end_caps: EndCaps,
    on_gap: Progress | None,
) -> tuple[ROI, EndCaps, list[str]]:
    """The ROI's contour stack as computed: a single plane made a slab, or interpolated.

    Returns the ROI, the end caps to compute it with, and what was chosen for the user
    (the default slab thickness, also warned about).
    """
    messages: list[str] = []
    if planes.size == 1:
        if slab_thickness_mm is None:
            slab_thickness_mm, source = _single_plane_mm(structures, dose, image)
            messages.append(
                f"ROI {roi.number} {roi.name!r} is drawn on a single plane; its slab is "
                f"{slab_thickness_mm:.3g} mm thick, {source}; give slab_thickness_mm to choose"
            )
            warnings.warn(messages[-1], GeometryWarning, stacklevel=4)  # get_dvh's caller
        roi, end_caps = _thick_plane(roi, dose.grid.normal, slab_thickness_mm)
    elif interpolate:
        # shapely (8 ms to import) only when contours are interpolated
        from rtmask.dvh._interpolate import interpolate_roi  # noqa: PLC0415

        roi, end_caps = interpolate_roi(roi, dose.grid, interpolate, end_caps, on_gap)
    return roi, end_caps, messages


#: dicompyler-core's get_dvh keywords and rtmask's names for them.
_DICOMPYLER_KEYWORDS = {
    "limit": "limit_gy (Gy)",
    "thickness": "slab_thickness_mm",
    "interpolation_resolution": "resolution_mm",
    "interpolation_segments_between_planes": "interpolate (a number of planes)",
    "callback": "progress",
    "count_outside": "calculate_full_volume",
    "use_structure_extents": "(none: rtmask samples the ROI's extent only)",
    "memmap_rtdose": "(none: the dose is read into memory once)",
}


def _check_keywords(options: dict[str, Any]) -> None:
    """Refuse keywords compute_dvh does not take, naming get_dvh (and rtmask's word)."""
    # Those get_dvh sets itself from its own parameters are refused too (no clash).
    accepted = set(inspect.signature(compute_dvh).parameters) - {
        "roi",
        "dose",
        "count_outside",
        "prescription_gy",
    }
    for keyword in options:
        if keyword not in accepted:
            hint = _DICOMPYLER_KEYWORDS.get(keyword)
            raise TypeError(
                f"get_dvh() got an unexpected keyword argument {keyword!r}"
                + (f"; rtmask's is {hint}" if hint else "")
            )


def _check_options(
    slab_thickness_mm: float | None, limit_gy: float | None, interpolate: int | bool
) -> None:
    """Refuse a non-positive slab thickness or dose limit, or a negative interpolation."""
    checks = (("slab_thickness_mm", slab_thickness_mm, "mm"), ("limit_gy", limit_gy, "Gy"))
    for name, value, unit in checks:
        if value is not None and not (math.isfinite(value) and value > 0):
            raise InvalidInputError(f"{name} must be a positive number of {unit}, got {value}")
    if not isinstance(interpolate, (bool, int)) or interpolate < 0:
        raise InvalidInputError(
            f"interpolate must be True, False or a number of planes >= 0, got {interpolate!r}"
        )


def _thick_plane(roi: ROI, normal: FloatArray, thickness_mm: float) -> tuple[ROI, EndCaps]:
    """A single-plane ``roi`` as a slab ``thickness_mm`` thick centred on its plane.

    Its contours are copied half the thickness to either side, and the stack of three
    planes is then computed without end caps: exactly the slab, whatever the dose grid.
    """
    copies = [
        dataclasses.replace(c, points_mm=c.points_mm + shift * normal, number=None)
        for shift in (-thickness_mm / 2, thickness_mm / 2)
        for c in roi.contours
        if c.geometric_type.encloses_volume and c.n_points >= 3
    ]
    return dataclasses.replace(roi, contours=(*roi.contours, *copies)), EndCaps.NONE
