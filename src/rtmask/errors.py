"""Exceptions and warnings raised by rtmask: every class, in one public module.

``except rtmask.errors.RtmaskError`` catches every error rtmask raises on purpose;
``warnings.simplefilter("error", rtmask.errors.RtmaskWarning)`` turns every warning into one.

Every exception derives from :class:`RtmaskError` and from the built-in exception it
refines, so ``except ValueError`` keeps working for callers that do not know rtmask.
Every warning derives from :class:`RtmaskWarning`; a warning means the result differs
from what a naive reading of the file would give (a contour dropped, two contours
overlapping, slices resampled).
"""

from __future__ import annotations

from typing import Literal

__all__ = [
    "ContourWarning",
    "DicomReadError",
    "DoseWarning",
    "GeometryError",
    "GeometryWarning",
    "InvalidInputError",
    "MissingDependencyError",
    "MissingReferenceError",
    "OnInvalid",
    "OverlapWarning",
    "RoiMapError",
    "RtmaskError",
    "RtmaskWarning",
    "SeriesNotFoundError",
    "StructureSetWarning",
]

OnInvalid = Literal["raise", "warn", "ignore"]
"""Per-call tolerance for defects in the input: raise, warn and go on, or go on silently."""


class RtmaskError(Exception):
    """Base class of every error raised by rtmask."""


class DicomReadError(RtmaskError, OSError):
    """A file could not be read as DICOM (missing, truncated, not DICOM, wrong kind)."""


class InvalidInputError(RtmaskError, ValueError):
    """The input is DICOM but its content cannot be used (e.g. no usable contours)."""


class GeometryError(RtmaskError, ValueError):
    """Image geometry is inconsistent (e.g. slices not parallel, grids that do not match)."""


class MissingReferenceError(RtmaskError, LookupError):
    """A referenced object (image series, frame of reference) is not available."""


class SeriesNotFoundError(MissingReferenceError):
    """The image series a structure set was drawn on cannot be found."""


class RoiMapError(RtmaskError, ValueError):
    """A ROI map (``--roi-map``) is unusable, or maps a structure set's ROIs ambiguously."""


class MissingDependencyError(RtmaskError, ImportError):
    """An optional dependency is needed for this feature; the message names the extra."""


class RtmaskWarning(UserWarning):
    """Base class of every warning issued by rtmask."""


class StructureSetWarning(RtmaskWarning):
    """A defect in a structure set that rtmask worked around (named ROI and contour)."""


class ContourWarning(RtmaskWarning):
    """A contour was not used as written (off-plane, outside the grid, not parallel)."""


class OverlapWarning(RtmaskWarning):
    """Contours or ROIs overlap where the rules say they should not."""


class DoseWarning(RtmaskWarning):
    """An RT Dose defect that rtmask worked around (missing scaling or units)."""


class GeometryWarning(RtmaskWarning):
    """The image geometry is irregular (non-uniform spacing, missing slices, resampling)."""
