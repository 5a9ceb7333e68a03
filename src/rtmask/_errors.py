"""The former home of rtmask's exceptions and warnings: see :mod:`rtmask.errors`.

Kept so that ``from rtmask._errors import ...`` goes on working; new code imports from
:mod:`rtmask.errors`.
"""

from rtmask.errors import (
    ContourWarning,
    DicomReadError,
    DoseWarning,
    GeometryError,
    GeometryWarning,
    InvalidInputError,
    MissingDependencyError,
    MissingReferenceError,
    OnInvalid,
    OverlapWarning,
    RtmaskError,
    RtmaskWarning,
    SeriesNotFoundError,
    StructureSetWarning,
)

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
    "RtmaskError",
    "RtmaskWarning",
    "SeriesNotFoundError",
    "StructureSetWarning",
]
