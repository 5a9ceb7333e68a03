"""RT Plans: prescription, fractions, beams and brachytherapy channels as value objects.

:func:`read_plan` reads an RT Plan (or RT Ion Plan) file or pydicom Dataset into an
:class:`RTPlan`; its :attr:`RTPlan.prescription` is the prescription dose (Gy) that DVH
statistics such as ``V95%`` and relative doses are taken against, with where it was read.
"""

from rtmask.plan._model import (
    ApplicationSetup,
    Beam,
    BrachyChannel,
    BrachySource,
    DoseReference,
    FractionGroup,
    Prescription,
    RTPlan,
)
from rtmask.plan._reader import choose_prescription, is_rtplan, read_plan

__all__ = [
    "ApplicationSetup",
    "Beam",
    "BrachyChannel",
    "BrachySource",
    "DoseReference",
    "FractionGroup",
    "Prescription",
    "RTPlan",
    "choose_prescription",
    "is_rtplan",
    "read_plan",
]
