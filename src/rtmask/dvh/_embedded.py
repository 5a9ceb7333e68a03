"""DVHs a planning system embedded in an RT Dose (DVHSequence), read as plain data.

The curves keep the file's units: DVHData doses times DVHDoseScaling in DoseUnits, volumes
in DVHVolumeUnits (CM3, PERCENT or PER_U). Some systems write values in percent of the
prescription while labelling them GY (the dicompyler-core breast example: its curves are in
Gy, but DVHMinimumDose, DVHMaximumDose and DVHMeanDose are percent of 14 Gy). rtmask never
converts them on a guess: :meth:`EmbeddedDVH.to_dvh` takes explicit scales (Gy per file dose
unit) for the curve and for those three values. It does check them against the item's own
curve (:meth:`EmbeddedDVH.contradicting_stats`) and warns when they cannot describe it,
naming the prescription of which they would be percent (:meth:`EmbeddedDVH.stats_percent_of_gy`).
"""

from __future__ import annotations

import logging
import os
import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from rtmask._dicom import RTDOSE_SOP_CLASS, read_dataset
from rtmask._errors import InvalidInputError
from rtmask.dvh._histogram import DVH
from rtmask.errors import DoseWarning

if TYPE_CHECKING:
    from pydicom.dataset import Dataset

__all__ = ["EmbeddedDVH", "read_embedded_dvhs"]

logger = logging.getLogger(__name__)

FloatArray = NDArray[np.float64]

#: The summary values of a DVHSequence item, by keyword, and their EmbeddedDVH fields.
SUMMARY_VALUES = (
    ("DVHMinimumDose", "min_dose"),
    ("DVHMeanDose", "mean_dose"),
    ("DVHMaximumDose", "max_dose"),
)
#: Slack when checking a summary value against the curve: this share of the curve's
#: highest dose, plus one bin width (planning systems compute them on finer samples).
STATS_RELATIVE_SLACK = 0.02


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

    def _ranges(self, dose_scale: float) -> dict[str, tuple[float, float]] | None:
        """Gy intervals the curve allows for its minimum, mean and maximum (None: empty)."""
        dose = self.dose * dose_scale
        volume = np.maximum(np.minimum.accumulate(self.volume), 0.0)
        total = float(volume[0]) if volume.size else 0.0
        if dose.size < 2 or not total > 0:
            return None
        j = int(np.flatnonzero(volume[:-1] > total * 1e-9)[-1])  # last bin with volume
        i = int(np.flatnonzero(volume[:-1] >= total * (1 - 1e-6))[-1])  # last bin with all
        drops = np.maximum(volume[:-1] - volume[1:], 0.0)
        return {
            "DVHMinimumDose": (float(dose[i]), float(dose[i + 1])),
            "DVHMeanDose": (
                float(np.sum(drops * dose[:-1]) / total),
                float(np.sum(drops * dose[1:]) / total),
            ),
            "DVHMaximumDose": (float(dose[j]), float(dose[j + 1])),
        }

    def contradicting_stats(
        self, *, dose_scale: float = 1.0, stats_dose_scale: float | None = None
    ) -> tuple[str, ...]:
        """The summary values (DVHMinimumDose, ...) that cannot describe the item's curve.

        A value contradicts the curve when, scaled to Gy, it lies outside the dose range
        the curve allows for it (the bin where the full volume ends for the minimum, the
        last bin with volume for the maximum, the bins' bounds for the mean), by more than
        2 % of the curve's highest dose plus one bin width.

        Parameters
        ----------
        dose_scale, stats_dose_scale
            Gy per file dose unit of the curve and of the summary values, as in
            :meth:`to_dvh` (``stats_dose_scale`` defaults to ``dose_scale``).

        Returns
        -------
        tuple of str
            DICOM keywords, in the order minimum, mean, maximum; empty when every value
            present fits (or the curve holds no volume).
        """
        ranges = self._ranges(dose_scale)
        if ranges is None:
            return ()
        scale = dose_scale if stats_dose_scale is None else stats_dose_scale
        top = ranges["DVHMaximumDose"][1]
        width = float(np.max(np.diff(self.dose * dose_scale)))
        slack = STATS_RELATIVE_SLACK * top + width
        wrong = []
        for keyword, field in SUMMARY_VALUES:
            value = getattr(self, field)
            low, high = ranges[keyword]
            if value is not None and not (low - slack <= value * scale <= high + slack):
                wrong.append(keyword)
        return tuple(wrong)

    def stats_percent_of_gy(self, *, dose_scale: float = 1.0) -> float | None:
        """The dose (Gy) of which the summary values, read as percent, fit the curve.

        Estimated from DVHMaximumDose and the top of the curve's last bin with volume
        (else from DVHMeanDose and the curve's mean), rounded to 3 significant digits.
        None when there is no such value or when, read so, the values still contradict
        the curve.
        """
        ranges = self._ranges(dose_scale)
        if ranges is None:
            return None
        for keyword, field in reversed(SUMMARY_VALUES[1:]):
            value = getattr(self, field)
            if value is not None and value > 0:
                low, high = ranges[keyword]  # the maximum: the top of the last bin
                gy = 100.0 * (high if field == "max_dose" else (low + high) / 2) / value
                estimate = float(f"{gy:.3g}")
                if not self.contradicting_stats(
                    dose_scale=dose_scale, stats_dose_scale=estimate / 100.0
                ):
                    return estimate
                return None
        return None

    def curve_stats(self, *, dose_scale: float = 1.0) -> tuple[float, float, float] | None:
        """Minimum, mean and maximum dose (Gy) of the curve itself, as its D-values read them.

        The minimum is the last edge the whole volume receives, the maximum the top of the
        last bin with volume, the mean the volume-weighted bin centres (the integral of the
        linearly interpolated curve over the total). None when the curve holds no volume.
        """
        ranges = self._ranges(dose_scale)
        if ranges is None:
            return None
        low, high = ranges["DVHMeanDose"]
        return ranges["DVHMinimumDose"][0], (low + high) / 2, ranges["DVHMaximumDose"][1]

    def describe_contradiction(
        self, wrong: tuple[str, ...], dose_scale: float = 1.0, stats_dose_scale: float = 1.0
    ) -> str:
        """``DVHMaximumDose 104.9 GY (104.9 Gy) contradicts the DVH's own curve (...)``."""
        ranges = self._ranges(dose_scale) or {"DVHMaximumDose": (0.0, 0.0)}
        values = ", ".join(
            f"{keyword} {getattr(self, field):.4g} {self.dose_units or 'unitless'}"
            + (
                ""
                if stats_dose_scale == 1
                else f" ({getattr(self, field) * stats_dose_scale:.4g} Gy)"
            )
            for keyword, field in SUMMARY_VALUES
            if keyword in wrong
        )
        verb = "contradicts" if len(wrong) == 1 else "contradict"
        low, high = ranges["DVHMaximumDose"]
        return f"{values} {verb} the DVH's own curve, which ends at {low:.4g}-{high:.4g} Gy"

    def _warn_if_contradicted(self, roi_name: str, dose_scale: float, stats_scale: float) -> None:
        wrong = self.contradicting_stats(dose_scale=dose_scale, stats_dose_scale=stats_scale)
        if not wrong:
            return
        percent_of = self.stats_percent_of_gy(dose_scale=dose_scale)
        hint = (
            ""
            if percent_of is None
            else f"; they fit it as percent of {percent_of:g} Gy "
            f"(stats_dose_scale={percent_of / 100:g})"
        )
        name = f" {roi_name!r}" if roi_name else ""
        problem = self.describe_contradiction(wrong, dose_scale, stats_scale)
        warnings.warn(
            f"embedded DVH of ROI {self.roi_number}{name}: {problem}{hint}",
            DoseWarning,
            stacklevel=3,
        )

    def _stored_stats(
        self, dose: FloatArray, volume: FloatArray, scale: float
    ) -> tuple[float, float, float]:
        """Minimum, mean, maximum (Gy) as stored times ``scale``; the curve's where absent."""
        samples_min = 0.0 if self.min_dose is None else self.min_dose * scale
        samples_max = float(dose[-1]) if self.max_dose is None else self.max_dose * scale
        if self.mean_dose is not None:
            mean = self.mean_dose * scale
        else:  # from the differential curve, bin centres
            drops = volume[:-1] - volume[1:]
            centres = (dose[1:] + dose[:-1]) / 2
            mean = float(np.sum(drops * centres) / max(float(volume[0]), 1e-300))
        return samples_min, mean, samples_max

    def to_dvh(
        self,
        *,
        dose_scale: float = 1.0,
        stats_dose_scale: float | None = None,
        total_cm3: float | None = None,
        roi_name: str = "",
        color: tuple[int, int, int] | None = None,
        prescription_gy: float | None = None,
        stats_from_curve: bool = False,
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
        stats_from_curve
            Take the minimum, mean and maximum from the curve (:meth:`curve_stats`) instead
            of DVHMinimumDose, DVHMeanDose and DVHMaximumDose, unchecked: for values that
            contradict the curve while their scale is unknown.
        """
        summary_scale = dose_scale if stats_dose_scale is None else stats_dose_scale
        if not (dose_scale > 0 and summary_scale > 0):
            raise ValueError(f"dose scales must be positive, got {dose_scale}, {summary_scale}")
        if not stats_from_curve:
            self._warn_if_contradicted(roi_name, dose_scale, summary_scale)
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
        own = self.curve_stats(dose_scale=dose_scale) if stats_from_curve else None
        if own is not None:
            samples_min, mean, samples_max = own
        else:
            samples_min, mean, samples_max = self._stored_stats(dose, volume, summary_scale)
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


def read_embedded_dvhs(source: str | os.PathLike[str] | Dataset) -> list[EmbeddedDVH]:
    """The DVHs embedded in an RT Dose, in file order (empty when it has none).

    Parameters
    ----------
    source
        Path of an RTDOSE file or a pydicom Dataset (as :func:`rtmask.read_rtstruct`).

    Raises
    ------
    DicomReadError
        The file cannot be read.
    InvalidInputError
        It is not an RT Dose, or a DVHSequence item is malformed.
    """
    if isinstance(source, (str, os.PathLike)):
        name = os.fspath(source)
        dataset = read_dataset(source, headers_only=True)
    else:
        name = str(getattr(source, "filename", None) or "<dataset>")
        dataset = source
    sop_class = str(dataset.get("SOPClassUID", ""))
    if sop_class != RTDOSE_SOP_CLASS and str(dataset.get("Modality", "")) != "RTDOSE":
        raise InvalidInputError(f"{name}: not an RT Dose; give an RTDOSE file")
    items = dataset.get("DVHSequence") or []
    result = [_item(item, name, k) for k, item in enumerate(items)]
    logger.debug("%s: %d embedded DVHs", name, len(result))
    return result
