"""DVH statistics by name, in either volume form, and values that carry their unit.

Names (case-insensitive): ``Dmin``, ``Dmax``, ``Dmean``, ``Dmedian``; ``D95`` or ``D95%``
(dose to 95 % of the volume), ``D2cc`` (dose to the hottest 2 cm3); ``V20Gy`` (volume
receiving >= 20 Gy); ``V95`` or ``V95%`` (volume receiving >= 95 % of the prescription).
A V-name may end with its volume unit: ``V20Gy%`` / ``V95%%`` in percent of the ROI's
volume, ``V20Gycc`` / ``V95%cc`` in cm3 (the default). D-values are in Gy, or in percent
of the prescription with ``dose_units="%"``.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from rtmask._errors import InvalidInputError

if TYPE_CHECKING:
    from rtmask.dvh._histogram import DVH

__all__ = ["ACCEPTED_FORMS", "StatisticValue", "evaluate_statistic", "statistic_unit"]

ACCEPTED_FORMS = (
    "accepted forms: Dmin, Dmax, Dmean, Dmedian, D<x> (dose to x % of the volume, Gy), "
    "D<x>cc (dose to x cm3, Gy), V<x>Gy (cm3 receiving >= x Gy), "
    "V<x> or V<x>% (cm3 receiving >= x % of the prescription); a V-name ending in "
    "% more (V20Gy%, V95%%) gives percent of the volume, one ending in cc (V20Gycc) cm3 "
    "(the default)"
)
_NUMBER = r"(\d+(?:\.\d*)?|\.\d+)"
_D_NAME = re.compile(rf"D{_NUMBER}(%|cc)?", re.IGNORECASE)
_V_NAME = re.compile(rf"V{_NUMBER}(Gy|%)?(%|cc)?", re.IGNORECASE)
_FIXED = {"dmin": "min_gy", "dmax": "max_gy", "dmean": "mean_gy"}

VolumeUnits = Literal["cm3", "%"]
DoseUnits = Literal["Gy", "%"]


class StatisticValue(float):
    """A DVH statistic with its unit: a float that also carries ``unit`` and ``name``.

    It compares and computes as its number does (``dvh.V20Gy > 0.5``, ``round(v, 2)``,
    ``np.isclose(v, 1.0)``; arithmetic gives plain floats), and ``str`` adds the unit.

    Parameters
    ----------
    value
        The number (NaN when undefined, e.g. a D-value for more volume than the ROI has).
    unit
        ``"Gy"``, ``"cm3"`` or ``"%"`` (percent of the prescription for a D-value, of the
        ROI's volume for a V-value).
    name
        The statistic's name as asked for (``"D2cc"``), if any.
    """

    __slots__ = ("name", "unit")
    unit: str
    name: str

    def __new__(cls, value: float, unit: str, name: str = "") -> StatisticValue:
        self = super().__new__(cls, value)
        self.unit = unit
        self.name = name
        return self

    @property
    def value(self) -> float:
        """The number, as a plain float."""
        return float(self)

    @property
    def units(self) -> str:
        """The unit (the name dicompyler-core's values use)."""
        return self.unit

    def __reduce__(self) -> tuple[type[StatisticValue], tuple[float, str, str]]:
        return (StatisticValue, (float(self), self.unit, self.name))

    def __format__(self, spec: str) -> str:
        return f"{float.__format__(self, spec or '.3f')} {self.unit}"

    def __str__(self) -> str:
        return format(self, "")

    def __repr__(self) -> str:
        return f"StatisticValue({float(self)!r}, {self.unit!r}, {self.name!r})"


@dataclass(frozen=True, slots=True)
class _Parsed:
    kind: Literal["fixed", "median", "d_percent", "d_cc", "v_gy", "v_prescription"]
    number: float
    volume_units: VolumeUnits | None  # a V-name's own unit suffix


def _parse(name: str) -> _Parsed:
    text = name.strip()
    key = text.lower()
    if key in _FIXED:
        return _Parsed("fixed", math.nan, None)
    if key == "dmedian":
        return _Parsed("median", 50.0, None)
    if match := _D_NAME.fullmatch(text):
        cc = (match.group(2) or "").lower() == "cc"
        return _Parsed("d_cc" if cc else "d_percent", float(match.group(1)), None)
    if match := _V_NAME.fullmatch(text):
        basis, suffix = (match.group(2) or "").lower(), (match.group(3) or "").lower()
        if basis != "gy" and suffix and not basis:  # "V95cc" would read like a D-name
            raise ValueError(f"unknown DVH statistic {name!r}; {ACCEPTED_FORMS}")
        units: VolumeUnits | None = {"%": "%", "cc": "cm3", "": None}[suffix]
        kind: Literal["v_gy", "v_prescription"] = "v_gy" if basis == "gy" else "v_prescription"
        return _Parsed(kind, float(match.group(1)), units)
    raise ValueError(f"unknown DVH statistic {name!r}; {ACCEPTED_FORMS}")


def _check_units(volume_units: str | None, dose_units: str | None) -> None:
    if volume_units not in (None, "cm3", "%"):
        raise ValueError(f"volume_units must be 'cm3' or '%', got {volume_units!r}")
    if dose_units not in (None, "Gy", "%"):
        raise ValueError(f"dose_units must be 'Gy' or '%', got {dose_units!r}")


def statistic_unit(
    name: str, *, volume_units: str | None = None, dose_units: str | None = None
) -> str:
    """Unit of a statistic by name: ``"Gy"`` or ``"%"`` for D-values, ``"cm3"`` or ``"%"`` for V."""
    _check_units(volume_units, dose_units)
    parsed = _parse(name)
    if parsed.kind in ("v_gy", "v_prescription"):
        return volume_units or parsed.volume_units or "cm3"
    return dose_units or "Gy"


def evaluate_statistic(
    dvh: DVH, name: str, *, volume_units: str | None = None, dose_units: str | None = None
) -> StatisticValue:
    """The statistic ``name`` of ``dvh`` with its unit (see the module docstring).

    ``volume_units`` (``"cm3"`` or ``"%"``) overrides a V-name's own unit; ``dose_units``
    (``"Gy"`` or ``"%"`` of the prescription) is the unit of D-values. Unknown names raise
    ValueError listing the accepted forms; percent of the prescription without one raises
    InvalidInputError.
    """
    parsed = _parse(name)
    unit = statistic_unit(name, volume_units=volume_units, dose_units=dose_units)
    text = name.strip()
    if parsed.kind in ("v_gy", "v_prescription"):
        dose_gy = parsed.number
        if parsed.kind == "v_prescription":
            dose_gy *= _prescription(dvh, f"statistic {text!r} (V<x>% statistics)") / 100.0
        value = dvh.percent_at_dose(dose_gy) if unit == "%" else dvh.volume_at_dose(dose_gy)
        return StatisticValue(value, unit, text)
    if parsed.kind == "fixed":
        value = float(getattr(dvh, _FIXED[text.lower()]))
    elif parsed.kind == "d_cc":
        value = dvh.dose_at_volume(parsed.number)
    else:
        value = dvh.dose_at_percent(parsed.number)
    if unit == "%":
        value *= 100.0 / _prescription(dvh, f"statistic {text!r} in % of the prescription")
    return StatisticValue(float(value), unit, text)


def _prescription(dvh: DVH, what: str) -> float:
    if dvh.prescription_gy is None:
        raise InvalidInputError(
            f"DVH of ROI {dvh.roi_number} {dvh.roi_name!r}: {what} need a prescription; "
            "give prescription_gy"
        )
    return float(dvh.prescription_gy)


def attribute_statistic(dvh: DVH, attribute: str) -> StatisticValue:
    """``dvh.D2cc``, ``dvh.V20Gy``, ``dvh.D0_03cc`` (``_`` between digits is the point)."""
    name = re.sub(r"(?<=\d)_(?=\d)", ".", attribute)
    try:
        _parse(name)
    except ValueError:
        raise AttributeError(f"'DVH' object has no attribute {attribute!r}") from None
    return evaluate_statistic(dvh, name)
