"""The coded concepts of DICOM SEG segments for RT ROI Interpreted Types.

Shared by the SEG writer (:mod:`rtmask.export`, which codes a ROI's type) and the SEG
reader (:mod:`rtmask.masks`, which maps codes back to a type), so that neither direction
depends on the other.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["DEFAULT_SEGMENT_CODES", "RT_SEGMENT_CODES", "CodedTerm"]


@dataclass(frozen=True, slots=True)
class CodedTerm:
    """A coded concept: code value, coding scheme designator and code meaning."""

    value: str
    scheme: str
    meaning: str

    @property
    def key(self) -> tuple[str, str]:
        """``(scheme, value)``: what identifies the concept (the meaning is only a label)."""
        return (self.scheme, self.value)


_ANATOMICAL_STRUCTURE = CodedTerm("91723000", "SCT", "Anatomical Structure")
_RT_TARGET = CodedTerm("130041", "DCM", "RT Target")
_RT_DOSE_CALCULATION = CodedTerm("130042", "DCM", "RT Dose Calculation Structure")
_BRACHY_DEVICE = CodedTerm("130045", "DCM", "Brachytherapy Device")
_TISSUE = CodedTerm("85756007", "SCT", "Tissue")

#: ``RTROIInterpretedType -> (SegmentedPropertyCategory, SegmentedPropertyType)``.
#:
#: Targets and dose-calculation roles follow PS3.3 Table C.8.8.8.3.1-2 (Therapeutic Role
#: Code Mapping): category CID 9503, types CID 9534 "Radiotherapy Target" and CID 9535
#: "Radiotherapy Dose Calculation Role". Geometric types follow PS3.3 Table C.8.8.8.3.1-1
#: (RT ROI Interpreted Type Code Mapping): categories CID 9580 "RT Segmentation Property
#: Category" with the context group each names (CID 9507, 9515, 9581, 9582). ORGAN is the
#: generic anatomical concept of CID 7150 / 7151. Types whose context group has no
#: generic member (MARKER, FIXATION, BRACHY_ACCESSORY, DOSE_MEASUREMENT, CONTROL) get
#: :data:`DEFAULT_SEGMENT_CODES`.
RT_SEGMENT_CODES: dict[str, tuple[CodedTerm, CodedTerm]] = {
    "EXTERNAL": (
        CodedTerm("130047", "DCM", "External Body Model"),
        CodedTerm("130067", "DCM", "Patient Anatomy Model"),
    ),
    "PTV": (_RT_TARGET, CodedTerm("228793007", "SCT", "PTV")),
    "CTV": (_RT_TARGET, CodedTerm("228792002", "SCT", "CTV")),
    "GTV": (_RT_TARGET, CodedTerm("228791009", "SCT", "GTV")),
    "TREATED_VOLUME": (_RT_TARGET, CodedTerm("130059", "DCM", "Treated Volume")),
    "IRRAD_VOLUME": (_RT_TARGET, CodedTerm("228790005", "SCT", "Irradiated Volume")),
    "ORGAN": (_ANATOMICAL_STRUCTURE, CodedTerm("91772007", "SCT", "Organ")),
    "OAR": (_RT_DOSE_CALCULATION, CodedTerm("130060", "DCM", "Organ At Risk")),
    "AVOIDANCE": (_RT_DOSE_CALCULATION, CodedTerm("130058", "DCM", "Avoidance Volume")),
    "BOLUS": (
        CodedTerm("130405", "DCM", "Patient-Attached Dose Control Object"),
        CodedTerm("228736002", "SCT", "Surface Bolus"),
    ),
    "ISOCENTER": (
        CodedTerm("130043", "DCM", "RT Geometric Information"),
        CodedTerm("130073", "DCM", "Isocentric Treatment Location Point"),
    ),
    "CONTRAST_AGENT": (
        CodedTerm("105590001", "SCT", "Substance"),
        CodedTerm("7140000", "SCT", "Contrast agent"),
    ),
    "CAVITY": (_ANATOMICAL_STRUCTURE, CodedTerm("91806002", "SCT", "Body Cavity")),
    "BRACHY_CHANNEL": (_BRACHY_DEVICE, CodedTerm("130080", "DCM", "Brachytherapy channel")),
    "BRACHY_SRC_APP": (
        _BRACHY_DEVICE,
        CodedTerm("130078", "DCM", "Brachytherapy source applicator"),
    ),
    "BRACHY_CHNL_SHLD": (
        _BRACHY_DEVICE,
        CodedTerm("130079", "DCM", "Brachytherapy channel shield"),
    ),
    "SUPPORT": (
        CodedTerm("130044", "DCM", "Fixation or Positioning Device"),
        CodedTerm("86407004", "SCT", "Table"),
    ),
    "REGISTRATION": (
        CodedTerm("130746", "DCM", "RT Registration Mark"),
        CodedTerm("112171", "DCM", "Fiducial mark"),
    ),
    "DOSE_REGION": (
        CodedTerm("130748", "DCM", "Radiotherapy Dose Region"),
        CodedTerm("130747", "DCM", "Isodose Volume"),
    ),
}

#: Category and type for ROIs without a mapped interpreted type (CID 7150 / 7151).
DEFAULT_SEGMENT_CODES = (_TISSUE, _TISSUE)
