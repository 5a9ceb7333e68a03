"""DoseGrid: an RT Dose in Gy on the ImageGrid that places it in patient space."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from rtmask._errors import InvalidInputError
from rtmask.geometry import ImageGrid

if TYPE_CHECKING:
    from rtmask.dose._planes import DosePlane, PlaneAxis

__all__ = ["DoseGrid", "DoseReference"]


def _frozen_float64(array: Any) -> bool:
    """True for a read-only float64 array that owns its memory: nobody else can change it."""
    return (
        isinstance(array, np.ndarray)
        and array.dtype == np.float64
        and array.base is None
        and not array.flags.writeable
    )


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class DoseGrid:
    """A 3D dose distribution in Gy with its grid.

    Parameters
    ----------
    dose_gy
        ``(slices, rows, columns)`` dose in Gy, float64, finite; stored as a read-only
        copy (a read-only float64 array that owns its memory is kept as it is). Slices
        increase along the grid's plane normal, whatever the file's frame order was.
    grid
        The ImageGrid placing ``dose_gy`` in patient space (LPS mm); its
        ``frame_of_reference_uid`` is the dose's frame of reference.
    dose_type
        DICOM DoseType (``PHYSICAL``, ``EFFECTIVE``, ``ERROR``), if known.
    summation_type
        DICOM DoseSummationType (``PLAN``, ``FRACTION``, ``BEAM``, ...), if known.
    units
        Units of ``dose_gy``: always ``"GY"`` (a RELATIVE dose is converted on reading).
    source
        The file the dose was read (or derived) from, for messages.
    warnings
        What changed the values compared with a plain reading, one sentence each.
    """

    dose_gy: NDArray[np.float64]
    grid: ImageGrid
    dose_type: str | None = None
    summation_type: str | None = None
    units: str = "GY"
    source: str | None = None
    warnings: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        where = f"{self.source}: " if self.source else ""
        dose = self.dose_gy
        if not _frozen_float64(dose):
            dose = np.array(dose, dtype=np.float64, copy=True)
        if dose.shape != self.grid.shape:
            raise InvalidInputError(
                f"{where}dose array has shape {dose.shape} but its grid {self.grid.shape}; "
                "give a (slices, rows, columns) array on the grid"
            )
        if dose.size and not (math.isfinite(dose.min()) and math.isfinite(dose.max())):
            raise InvalidInputError(f"{where}dose contains NaN or infinite values")
        if self.units != "GY":
            raise InvalidInputError(
                f"{where}DoseGrid holds dose in Gy (units 'GY'), got units {self.units!r}"
            )
        dose.flags.writeable = False
        object.__setattr__(self, "dose_gy", dose)
        object.__setattr__(self, "warnings", tuple(self.warnings))

    @property
    def max_gy(self) -> float:
        """Largest dose value in Gy."""
        return float(self.dose_gy.max())

    @property
    def shape(self) -> tuple[int, int, int]:
        """``(slices, rows, columns)``."""
        return self.grid.shape

    @property
    def max_boundary_dose_gy(self) -> float:
        """Largest dose (Gy) on the grid's six faces: high when the grid cuts the dose off."""
        from rtmask.dose._planes import max_boundary_dose_gy  # noqa: PLC0415

        return max_boundary_dose_gy(self)

    def plane(
        self,
        position_mm: float,
        axis: PlaneAxis = "axial",
        *,
        snap_mm: float = 0.0,
        interpolate: bool = True,
    ) -> DosePlane:
        """The 2D dose on the ``axis`` plane at ``position_mm`` (z, y or x in LPS mm).

        Interpolated linearly between frames, or the nearest frame when it lies within
        ``snap_mm``; see :func:`rtmask.dose.dose_plane`.
        """
        from rtmask.dose._planes import dose_plane  # noqa: PLC0415

        return dose_plane(self, position_mm, axis, snap_mm=snap_mm, interpolate=interpolate)

    def isodose_lines(
        self, level_gy: float, plane: DosePlane | float, axis: PlaneAxis = "axial"
    ) -> list[NDArray[np.float64]]:
        """Closed isodose rings of ``level_gy``, each ``(N, 3)`` LPS points (mm).

        ``plane`` is a :class:`~rtmask.dose.DosePlane` or the position (mm) of the
        ``axis`` plane to cut; see :func:`rtmask.dose.isodose_lines`.
        """
        from rtmask.dose._planes import isodose_lines  # noqa: PLC0415

        if isinstance(plane, int | float):
            plane = self.plane(float(plane), axis)
        return isodose_lines(level_gy, plane)

    def equals(self, other: object, *, atol: float = 1e-6) -> bool:
        """True when ``other`` has the same grid, dose (within ``atol`` Gy) and dose type.

        ``source`` and ``warnings`` are not compared.
        """
        if not isinstance(other, DoseGrid) or not self.grid.equals(other.grid):
            return False
        return bool(
            self.dose_type == other.dose_type
            and self.summation_type == other.summation_type
            and np.allclose(self.dose_gy, other.dose_gy, rtol=0.0, atol=atol)
        )

    def with_dose(self, dose_gy: ArrayLike, *, warnings: tuple[str, ...] = ()) -> DoseGrid:
        """A copy on the same grid holding ``dose_gy`` (Gy), ``warnings`` appended."""
        return DoseGrid(
            dose_gy=np.asarray(dose_gy, dtype=np.float64),
            grid=self.grid,
            dose_type=self.dose_type,
            summation_type=self.summation_type,
            source=self.source,
            warnings=self.warnings + tuple(warnings),
        )

    def __add__(self, other: DoseGrid) -> DoseGrid:
        """``self + other`` on this grid: :func:`rtmask.dose.add_doses` without ``force``.

        Doses of different DoseType are refused (use ``add_doses(a, b, force=True)``);
        ``other`` is resampled onto this grid when the grids differ (a GeometryWarning).
        """
        if not isinstance(other, DoseGrid):
            return NotImplemented
        from rtmask.dose._arithmetic import add_doses  # noqa: PLC0415  (it imports this module)

        return add_doses(self, other)

    def __radd__(self, other: object) -> DoseGrid:
        """``0 + self`` is ``self``, so that ``sum(doses)`` works."""
        if isinstance(other, int | float) and other == 0:
            return self
        return NotImplemented

    def __mul__(self, factor: float) -> DoseGrid:
        """The dose scaled by ``factor`` (a finite number >= 0), e.g. a number of fractions."""
        if not isinstance(factor, int | float | np.floating | np.integer) or isinstance(
            factor, bool
        ):
            return NotImplemented
        from rtmask.dose._arithmetic import scale_dose  # noqa: PLC0415  (it imports this module)

        return scale_dose(self, float(factor))

    __rmul__ = __mul__

    def __repr__(self) -> str:
        source = f", source={self.source!r}" if self.source else ""
        return (
            f"DoseGrid(shape={self.grid.shape}, max_gy={self.max_gy:.4g}, "
            f"dose_type={self.dose_type!r}{source})"
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class DoseReference:
    """Who and where an RT Dose belongs to: what a dose derived from it must carry over.

    Read from an RT Dose's header with :func:`rtmask.dose.read_dose_reference`, or built by
    hand. Text values are as read (empty string when absent); UIDs are dotted strings.

    Parameters
    ----------
    patient_name, patient_id, patient_birth_date, patient_sex
        Patient module values.
    study_instance_uid
        StudyInstanceUID of the study the new dose belongs to.
    study_date, study_time, study_id, accession_number, referring_physician_name
        General Study module values.
    study_description
        StudyDescription, if any.
    frame_of_reference_uid
        FrameOfReferenceUID of the dose grid.
    position_reference_indicator
        PositionReferenceIndicator of the frame of reference.
    referenced_plans
        ``(sop_class_uid, sop_instance_uid)`` of each RT (Ion) Plan the dose was computed
        for, in file order.
    sop_instance_uid
        SOPInstanceUID of the RT Dose read, if any.
    source
        The file read, for messages.
    patient_identity_removed, deidentification_method
        PatientIdentityRemoved and DeidentificationMethod (empty when absent).
    deidentification_method_codes
        DeidentificationMethodCodeSequence as ``(CodeValue, CodingSchemeDesignator,
        CodeMeaning)`` items.
    longitudinal_temporal_information_modified
        LongitudinalTemporalInformationModified (empty when absent).
    """

    patient_name: str = ""
    patient_id: str = ""
    patient_birth_date: str = ""
    patient_sex: str = ""
    study_instance_uid: str
    study_date: str = ""
    study_time: str = ""
    study_id: str = ""
    accession_number: str = ""
    referring_physician_name: str = ""
    study_description: str | None = None
    frame_of_reference_uid: str
    position_reference_indicator: str = ""
    referenced_plans: tuple[tuple[str, str], ...] = ()
    sop_instance_uid: str | None = None
    source: str | None = None
    patient_identity_removed: str = ""
    deidentification_method: str = ""
    deidentification_method_codes: tuple[tuple[str, str, str], ...] = ()
    longitudinal_temporal_information_modified: str = ""

    def __post_init__(self) -> None:
        where = f"{self.source}: " if self.source else ""
        if not self.study_instance_uid or not self.frame_of_reference_uid:
            raise InvalidInputError(
                f"{where}a dose reference needs a StudyInstanceUID and a FrameOfReferenceUID; "
                "give an RT Dose that has both"
            )
        object.__setattr__(
            self, "referenced_plans", tuple((str(c), str(i)) for c, i in self.referenced_plans)
        )
