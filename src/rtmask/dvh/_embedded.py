"""DVHs a planning system embedded in an RT Dose (DVHSequence), read as plain data.

The curves keep the file's units: DVHData doses times DVHDoseScaling in DoseUnits, volumes
in DVHVolumeUnits (CM3, PERCENT or PER_U). Some systems write values in percent of the
prescription while labelling them GY (the dicompyler-core breast example: its curves are in
Gy, but DVHMinimumDose, DVHMaximumDose and DVHMeanDose are percent of 14 Gy). rtmask never
guesses that: :meth:`EmbeddedDVH.to_dvh` takes explicit scales (Gy per file dose unit) for
the curve and for those three values.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from rtmask._dicom import RTDOSE_SOP_CLASS, read_dataset
from rtmask._errors import InvalidInputError
from rtmask.dvh._histogram import DVH

__all__ = ["EmbeddedDVH", "read_embedded_dvhs"]

logger = logging.getLogger(__name__)

FloatArray = NDArray[np.float64]


def _readonly(values: Any) -> FloatArray:
    array = np.array(values, dtype=np.float64).reshape(-1)
    array.flags.writeable = False
    return array


def _float_or_none(value: Any) -> float | None:
    if value is None or value == "":
        return None
    return float(value)


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class EmbeddedDVH:
    """One DVHSequence item as a cumulative curve in the file's units.

    Parameters
    ----------
    roi_number
        ReferencedROINumber of the ROI (None when the item names none).
    dvh_type
        DVHType as stored: ``"CUMULATIVE"``, ``"DIFFERENTIAL"`` or ``"NATURAL"``.
    dose_units, dose_type, volume_units
        DoseUnits (``"GY"`` or ``"RELATIVE"``), DoseType, DVHVolumeUnits (``"CM3"``,
        ``"PERCENT"`` or ``"PER_U"``) as stored.
    dose_scaling
        DVHDoseScaling (already applied to ``dose``).
    dose
        ``(B + 1,)`` bin edges from 0 in file dose units (bin widths x DVHDoseScaling).
    volume
        ``(B + 1,)`` cumulative volume receiving at least each edge in ``volume_units``
        (a differential item is accumulated; PER_U is multiplied by the bin width); the
        last edge gets 0.
    min_dose, max_dose, mean_dose
        DVHMinimumDose, DVHMaximumDose, DVHMeanDose in file dose units, when present.
    """

    roi_number: int | None
    dvh_type: str
    dose_units: str
    dose_type: str
    volume_units: str
    dose_scaling: float
    dose: FloatArray
    volume: FloatArray
    min_dose: float | None = None
    max_dose: float | None = None
    mean_dose: float | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "dose", _readonly(self.dose))
        object.__setattr__(self, "volume", _readonly(self.volume))

    @property
    def total_volume(self) -> float:
        """Volume of the curve at 0 dose, in ``volume_units``."""
        return float(self.volume[0])

    def to_dvh(
        self,
        *,
        dose_scale: float = 1.0,
        stats_dose_scale: float | None = None,
        total_cm3: float | None = None,
        roi_name: str = "",
        color: tuple[int, int, int] | None = None,
        prescription_gy: float | None = None,
    ) -> DVH:
        """Convert the curve to a :class:`DVH` in Gy and cm3.

        Parameters
        ----------
        dose_scale
            Gy per file dose unit of the curve (DVHData): 1 for a true GY axis,
            ``prescription / 100`` for a percent axis (DoseUnits RELATIVE).
        stats_dose_scale
            Gy per unit of DVHMinimumDose, DVHMaximumDose and DVHMeanDose (default:
            ``dose_scale``); e.g. ``0.14`` when they are percent of 14 Gy.
        total_cm3
            The ROI's volume, needed when the volume units are PERCENT.
        roi_name, color, prescription_gy
            Stored in the DVH.
        """
        summary_scale = dose_scale if stats_dose_scale is None else stats_dose_scale
        if not (dose_scale > 0 and summary_scale > 0):
            raise ValueError(f"dose scales must be positive, got {dose_scale}, {summary_scale}")
        volume = self.volume
        if self.volume_units == "PERCENT":
            if total_cm3 is None:
                raise InvalidInputError(
                    f"embedded DVH of ROI {self.roi_number}: volumes are in PERCENT; "
                    "give total_cm3 to convert them"
                )
            volume = volume * (total_cm3 / 100.0)
        dose = self.dose * dose_scale
        keep = np.concatenate([[True], np.diff(dose) > 0])  # drop zero-width bins
        dose, volume = dose[keep], np.maximum(np.minimum.accumulate(volume[keep]), 0.0)
        samples_min = 0.0 if self.min_dose is None else self.min_dose * summary_scale
        samples_max = float(dose[-1]) if self.max_dose is None else self.max_dose * summary_scale
        if self.mean_dose is not None:
            mean = self.mean_dose * summary_scale
        else:  # from the differential curve, bin centres
            drops = volume[:-1] - volume[1:]
            centres = (dose[1:] + dose[:-1]) / 2
            mean = float(np.sum(drops * centres) / max(float(volume[0]), 1e-300))
        return DVH(
            dose_gy=dose,
            volume_cm3=volume,
            min_gy=samples_min,
            max_gy=samples_max,
            mean_gy=mean,
            roi_number=-1 if self.roi_number is None else self.roi_number,
            roi_name=roi_name,
            color=color,
            prescription_gy=prescription_gy,
        )


def _item(item: Any, name: str, position: int) -> EmbeddedDVH:
    where = f"{name}: DVHSequence item {position + 1}"
    dvh_type = str(item.get("DVHType", "CUMULATIVE")).strip().upper()
    volume_units = str(item.get("DVHVolumeUnits", "CM3")).strip().upper()
    scaling = _float_or_none(item.get("DVHDoseScaling")) or 1.0
    try:
        data = np.asarray([float(v) for v in item.get("DVHData", [])], dtype=np.float64)
    except (TypeError, ValueError) as error:  # a damaged number such as '228.0168m3'
        raise InvalidInputError(f"{where}: DVHData holds a value that is not a number") from error
    if data.size < 2 or data.size % 2:
        raise InvalidInputError(f"{where}: DVHData must hold (width, volume) pairs")
    widths, values = data[0::2] * scaling, data[1::2]
    if np.any(widths < 0) or not np.all(np.isfinite(data)):
        raise InvalidInputError(f"{where}: DVHData holds negative or non-finite values")
    edges = np.concatenate([[0.0], np.cumsum(widths)])
    if dvh_type == "CUMULATIVE":
        volume = np.concatenate([values, [0.0]])
    elif dvh_type == "DIFFERENTIAL":
        per_bin = values * widths if volume_units == "PER_U" else values
        volume = np.concatenate([np.cumsum(per_bin[::-1])[::-1], [0.0]])
    else:
        raise InvalidInputError(f"{where}: DVHType {dvh_type!r} is not CUMULATIVE/DIFFERENTIAL")
    references = item.get("DVHReferencedROISequence") or []
    roi_number = (
        int(references[0].ReferencedROINumber)
        if references and "ReferencedROINumber" in references[0]
        else None
    )
    return EmbeddedDVH(
        roi_number=roi_number,
        dvh_type=dvh_type,
        dose_units=str(item.get("DoseUnits", "")).strip().upper(),
        dose_type=str(item.get("DoseType", "")).strip().upper(),
        volume_units="CM3" if volume_units == "PER_U" else volume_units,
        dose_scaling=scaling,
        dose=edges,
        volume=volume,
        min_dose=_float_or_none(item.get("DVHMinimumDose")),
        max_dose=_float_or_none(item.get("DVHMaximumDose")),
        mean_dose=_float_or_none(item.get("DVHMeanDose")),
    )


def read_embedded_dvhs(path: str | os.PathLike[str]) -> list[EmbeddedDVH]:
    """The DVHs embedded in an RT Dose file, in file order (empty when it has none).

    Raises
    ------
    DicomReadError
        The file cannot be read.
    InvalidInputError
        It is not an RT Dose, or a DVHSequence item is malformed.
    """
    name = os.fspath(path)
    dataset = read_dataset(path, headers_only=True)
    sop_class = str(dataset.get("SOPClassUID", ""))
    if sop_class != RTDOSE_SOP_CLASS and str(dataset.get("Modality", "")) != "RTDOSE":
        raise InvalidInputError(f"{name}: not an RT Dose; give an RTDOSE file")
    items = dataset.get("DVHSequence") or []
    result = [_item(item, name, k) for k, item in enumerate(items)]
    logger.debug("%s: %d embedded DVHs", name, len(result))
    return result
