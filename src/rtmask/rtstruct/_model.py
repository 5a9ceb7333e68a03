"""The structure set model: StructureSet, ROI and Contour. No pydicom here.

A :class:`StructureSet` is what an RTSTRUCT file says, in plain Python and numpy, with
the defects found while reading it listed in ``warnings``. Coordinates are LPS
millimetres, points ``(N, 3)`` with coordinates last.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import Enum

import numpy as np
from numpy.typing import NDArray

__all__ = ["ROI", "Contour", "GeometricType", "StructureSet"]

#: Why a contour is unusable, as the problems state it (see rtmask._limits for 100 m).
_UNUSABLE = "NaN, infinite, beyond 100 m, missing or not numbers"


class GeometricType(str, Enum):
    """DICOM ContourGeometricType (PS3.3 C.8.8.6.1, CP-2037 for CLOSEDPLANAR_XOR)."""

    POINT = "POINT"
    OPEN_PLANAR = "OPEN_PLANAR"
    OPEN_NONPLANAR = "OPEN_NONPLANAR"
    CLOSED_PLANAR = "CLOSED_PLANAR"
    CLOSEDPLANAR_XOR = "CLOSEDPLANAR_XOR"

    @property
    def encloses_volume(self) -> bool:
        """True for the closed types, whose polygons are filled."""
        return self in (GeometricType.CLOSED_PLANAR, GeometricType.CLOSEDPLANAR_XOR)


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class Contour:
    """One polygon (or point set) of an ROI.

    Parameters
    ----------
    points_mm
        ``(N, 3)`` vertices in LPS mm, in file order (closing edge implied). Stored as
        a read-only float64 array: one already so is kept, anything else is copied.
    geometric_type
        How the points are to be read.
    number
        ContourNumber, when the file gives one.
    referenced_sop_instance_uid
        The image the contour was drawn on (ContourImageSequence), when given.
    """

    points_mm: NDArray[np.float64]
    geometric_type: GeometricType = GeometricType.CLOSED_PLANAR
    number: int | None = None
    referenced_sop_instance_uid: str | None = None

    def __post_init__(self) -> None:
        points = self.points_mm
        if not (  # a read-only (N, 3) float64 array is kept; anything else copied
            isinstance(points, np.ndarray)
            and points.dtype == np.float64
            and points.ndim == 2
            and points.shape[1] == 3
            and not points.flags.writeable
        ):
            points = np.array(points, dtype=np.float64, copy=True).reshape(-1, 3)
            points.flags.writeable = False
            object.__setattr__(self, "points_mm", points)
        if type(self.geometric_type) is not GeometricType:
            object.__setattr__(self, "geometric_type", GeometricType(self.geometric_type))

    @property
    def n_points(self) -> int:
        """Number of vertices."""
        return int(self.points_mm.shape[0])

    def equals(self, other: object, *, atol: float = 1e-6) -> bool:
        """True when ``other`` has the same type, points (within ``atol`` mm) and reference."""
        return (
            isinstance(other, Contour)
            and self.geometric_type == other.geometric_type
            and self.referenced_sop_instance_uid == other.referenced_sop_instance_uid
            and self.points_mm.shape == other.points_mm.shape
            and bool(np.allclose(self.points_mm, other.points_mm, atol=atol))
        )


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class ROI:
    """A region of interest: identity, display and its contours.

    Parameters
    ----------
    number
        ROINumber, unique within the structure set.
    name
        ROIName as written (may be empty, duplicated or hostile: see ``rtmask.export``).
    color
        ROIDisplayColor ``(r, g, b)`` 0-255, or None.
    interpreted_type
        RTROIInterpretedType (``EXTERNAL``, ``PTV``, ``ORGAN``, ...), or None.
    generation_algorithm
        ROIGenerationAlgorithm (``AUTOMATIC``, ``SEMIAUTOMATIC``, ``MANUAL``), or None.
    frame_of_reference_uid
        ReferencedFrameOfReferenceUID of the ROI, or None.
    contours
        The ROI's usable contours, in file order.
    dropped_contours
        1-based positions (in the file's ContourSequence) of contours that could not be
        used (NaN or infinite coordinates, no numbers); empty when all were read.
    warnings
        Defects found while reading this ROI, one sentence each.
    """

    number: int
    name: str
    color: tuple[int, int, int] | None = None
    interpreted_type: str | None = None
    generation_algorithm: str | None = None
    frame_of_reference_uid: str | None = None
    contours: tuple[Contour, ...] = ()
    dropped_contours: tuple[int, ...] = ()
    warnings: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "contours", tuple(self.contours))
        object.__setattr__(self, "dropped_contours", tuple(self.dropped_contours))
        object.__setattr__(self, "warnings", tuple(self.warnings))
        if self.color is not None:
            object.__setattr__(self, "color", tuple(int(c) for c in self.color))

    @property
    def n_contours(self) -> int:
        """Number of contours of every type."""
        return len(self.contours)

    @property
    def geometric_types(self) -> tuple[GeometricType, ...]:
        """The distinct contour geometric types, in a fixed order."""
        present = {contour.geometric_type for contour in self.contours}
        return tuple(t for t in GeometricType if t in present)

    @property
    def encloses_volume(self) -> bool:
        """True when at least one contour is closed (so the ROI has a mask)."""
        return any(contour.geometric_type.encloses_volume for contour in self.contours)

    @property
    def n_points(self) -> int:
        """Total number of vertices."""
        return sum(contour.n_points for contour in self.contours)

    def all_points_mm(self) -> NDArray[np.float64]:
        """Every vertex of every contour, ``(N, 3)`` LPS mm."""
        if not self.contours:
            return np.empty((0, 3))
        return np.concatenate([contour.points_mm for contour in self.contours])

    def __repr__(self) -> str:
        return f"ROI(number={self.number}, name={self.name!r}, contours={self.n_contours})"


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class StructureSet:
    """An RT Structure Set: identity, references and ROIs.

    Parameters
    ----------
    rois
        The ROIs, in StructureSetROISequence order.
    sop_instance_uid, series_instance_uid, study_instance_uid
        Identity of the structure set object.
    patient_id, patient_name
        Patient identity (strings as written).
    label
        StructureSetLabel.
    frame_of_reference_uid
        The first ReferencedFrameOfReferenceUID, or None.
    referenced_series_uids
        SeriesInstanceUIDs of the image series listed in
        ReferencedFrameOfReferenceSequence.
    referenced_sop_instance_uids
        Every image SOPInstanceUID referenced (frame of reference module and contours).
    source
        Path of the file read, when read from a file.
    warnings
        Defects of the structure set as a whole (e.g. duplicate ROI names).
    skipped_rois
        ROIs the file defines but that could not be read, one sentence each naming the
        ROI (a missing, unreadable or shared ROINumber: which contours are theirs cannot
        be told). They are not in ``rois``; a command that skips one has failed.
    """

    rois: tuple[ROI, ...]
    sop_instance_uid: str | None = None
    series_instance_uid: str | None = None
    study_instance_uid: str | None = None
    patient_id: str | None = None
    patient_name: str | None = None
    label: str | None = None
    frame_of_reference_uid: str | None = None
    referenced_series_uids: tuple[str, ...] = ()
    referenced_sop_instance_uids: tuple[str, ...] = ()
    source: str | None = None
    warnings: tuple[str, ...] = field(default=())
    skipped_rois: tuple[str, ...] = field(default=())

    def __post_init__(self) -> None:
        for name in (
            "rois",
            "referenced_series_uids",
            "referenced_sop_instance_uids",
            "warnings",
            "skipped_rois",
        ):
            object.__setattr__(self, name, tuple(getattr(self, name)))

    @property
    def roi_names(self) -> tuple[str, ...]:
        """ROI names in file order."""
        return tuple(roi.name for roi in self.rois)

    def roi(self, key: int | str) -> ROI:
        """Return the ROI with this number (int) or name (str, exact first, then case-free).

        Raises
        ------
        KeyError
            When no ROI matches.
        """
        if isinstance(key, int):
            for roi in self.rois:
                if roi.number == key:
                    return roi
        else:
            for roi in self.rois:
                if roi.name == key:
                    return roi
            for roi in self.rois:
                if roi.name.casefold() == key.casefold():
                    return roi
        raise KeyError(f"no ROI {key!r} in structure set; ROIs are {list(self.roi_names)}")

    def select(self, patterns: Iterable[str]) -> tuple[ROI, ...]:
        """ROIs whose name matches any pattern: exact (case-insensitive) or glob (``PTV*``).

        A pattern of digits also selects the ROI with that number. Returns the matching
        ROIs in file order; an empty pattern list selects all ROIs.
        """
        folded = [pattern.casefold() for pattern in patterns]
        if not folded:
            return self.rois
        return tuple(
            roi
            for roi in self.rois
            if any(
                roi.name.casefold() == p
                or fnmatch.fnmatchcase(roi.name.casefold(), p)
                or (p.isascii() and p.isdigit() and roi.number == int(p))
                for p in folded
            )
        )

    def read_problems(
        self, rois: Iterable[ROI] | None = None, *, skipped: bool = True
    ) -> tuple[str, ...]:
        """What the reader could not use, one line each naming the file and ROI.

        Every skipped ROI (unless ``skipped`` is False), then for each of ``rois``
        (default: all) the contours dropped for unusable coordinates, or that it has no
        contour at all. Every command that reads the structure set reports these and
        fails (exit code 1) when there is one.
        """
        source = f"{self.source}: " if self.source else ""
        problems = [f"{source}{message}" for message in self.skipped_rois if skipped]
        for roi in self.rois if rois is None else rois:
            label = f"ROI {roi.number} {roi.name!r}"
            dropped = roi.dropped_contours
            positions = ", ".join(str(i) for i in dropped[:10]) + (
                " ..." if len(dropped) > 10 else ""
            )
            if dropped and not roi.contours:
                problems.append(
                    f"{source}{label} is empty: all {len(dropped)} of its contours have "
                    f"unusable coordinates ({_UNUSABLE}) and were dropped; fix them in the "
                    "planning system and export again"
                )
            elif dropped:
                problems.append(
                    f"{source}{label}: contour(s) {positions} have unusable coordinates "
                    f"({_UNUSABLE}) and were dropped, so the ROI's shape is incomplete (a "
                    "dropped hole is filled, a dropped island missing); fix them in the planning "
                    "system and export again"
                )
            elif not roi.contours:
                problems.append(f"{source}{label} has no contours")
        return tuple(problems)

    def all_points_mm(self) -> NDArray[np.float64]:
        """Every vertex of every ROI, ``(N, 3)`` LPS mm."""
        arrays = [roi.all_points_mm() for roi in self.rois if roi.contours]
        return np.concatenate(arrays) if arrays else np.empty((0, 3))

    def __repr__(self) -> str:
        return f"StructureSet(label={self.label!r}, rois={len(self.rois)}, source={self.source!r})"
