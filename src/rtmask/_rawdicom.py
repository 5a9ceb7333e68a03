"""Reading the big RT objects (RTSTRUCT, RTDOSE) straight from their bytes.

pydicom builds a Python object for every element and sequence item: a 17 MB structure
set holds some 100 000 of them, and importing pydicom alone takes ~0.2 s. The structure
set and dose readers need a few dozen attributes, so this module walks the file itself:
each element is located (tag, VR, offset, length), values are decoded only when asked
for, and a defined-length sequence is parsed only when it is read.

Handled: files with or without preamble and file meta; implicit and explicit VR little
endian, deflated explicit VR, and the encapsulated (compressed) transfer syntaxes (whose
pixel data is left to pydicom); defined and undefined lengths; sequences inside VR UN.
A big-endian file (retired) and a dataset handed over as a pydicom object are transcoded
to explicit VR little endian by pydicom first (:func:`raw_from_dataset`). Text is decoded
with the file's SpecificCharacterSet; character sets with code extensions (ISO 2022
escapes) are decoded by pydicom.
"""

from __future__ import annotations

import os
import struct
import warnings
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import NDArray

from rtmask._errors import DicomReadError

if TYPE_CHECKING:
    from pydicom.dataset import Dataset

__all__ = ["RawDataset", "raw_from_dataset", "read_raw"]

#: keyword -> (tag, VR) of the attributes rtmask's raw readers use. Implicit VR files do
#: not say how a value is encoded; this table does.
TAGS: dict[str, tuple[int, str]] = {
    "MediaStorageSOPClassUID": (0x00020002, "UI"),
    "TransferSyntaxUID": (0x00020010, "UI"),
    "SpecificCharacterSet": (0x00080005, "CS"),
    "SOPClassUID": (0x00080016, "UI"),
    "SOPInstanceUID": (0x00080018, "UI"),
    "StudyDate": (0x00080020, "DA"),
    "StudyTime": (0x00080030, "TM"),
    "AccessionNumber": (0x00080050, "SH"),
    "Modality": (0x00080060, "CS"),
    "CodeValue": (0x00080100, "SH"),
    "CodingSchemeDesignator": (0x00080102, "SH"),
    "CodeMeaning": (0x00080104, "LO"),
    "ReferringPhysicianName": (0x00080090, "PN"),
    "StudyDescription": (0x00081030, "LO"),
    "SeriesDescription": (0x0008103E, "LO"),
    "ReferencedSeriesSequence": (0x00081115, "SQ"),
    "ReferencedImageSequence": (0x00081140, "SQ"),
    "ReferencedInstanceSequence": (0x0008114A, "SQ"),
    "ReferencedSOPClassUID": (0x00081150, "UI"),
    "ReferencedSOPInstanceUID": (0x00081155, "UI"),
    "PatientName": (0x00100010, "PN"),
    "PatientID": (0x00100020, "LO"),
    "PatientBirthDate": (0x00100030, "DA"),
    "PatientSex": (0x00100040, "CS"),
    "PatientIdentityRemoved": (0x00120062, "CS"),
    "DeidentificationMethod": (0x00120063, "LO"),
    "DeidentificationMethodCodeSequence": (0x00120064, "SQ"),
    "PatientPosition": (0x00185100, "CS"),
    "StudyInstanceUID": (0x0020000D, "UI"),
    "SeriesInstanceUID": (0x0020000E, "UI"),
    "StudyID": (0x00200010, "SH"),
    "SeriesNumber": (0x00200011, "IS"),
    "ImagePositionPatient": (0x00200032, "DS"),
    "ImageOrientationPatient": (0x00200037, "DS"),
    "FrameOfReferenceUID": (0x00200052, "UI"),
    "PositionReferenceIndicator": (0x00201040, "LO"),
    "SamplesPerPixel": (0x00280002, "US"),
    "NumberOfFrames": (0x00280008, "IS"),
    "Rows": (0x00280010, "US"),
    "Columns": (0x00280011, "US"),
    "PixelSpacing": (0x00280030, "DS"),
    "BitsAllocated": (0x00280100, "US"),
    "BitsStored": (0x00280101, "US"),
    "PixelRepresentation": (0x00280103, "US"),
    "RescaleIntercept": (0x00281052, "DS"),
    "RescaleSlope": (0x00281053, "DS"),
    "ModalityLUTSequence": (0x00283000, "SQ"),
    "LongitudinalTemporalInformationModified": (0x00280303, "CS"),
    "ContentLabel": (0x00700080, "CS"),
    "DoseUnits": (0x30040002, "CS"),
    "DoseType": (0x30040004, "CS"),
    "DoseSummationType": (0x3004000A, "CS"),
    "GridFrameOffsetVector": (0x3004000C, "DS"),
    "DoseGridScaling": (0x3004000E, "DS"),
    "StructureSetLabel": (0x30060002, "SH"),
    "ReferencedFrameOfReferenceSequence": (0x30060010, "SQ"),
    "RTReferencedStudySequence": (0x30060012, "SQ"),
    "RTReferencedSeriesSequence": (0x30060014, "SQ"),
    "ContourImageSequence": (0x30060016, "SQ"),
    "StructureSetROISequence": (0x30060020, "SQ"),
    "ROINumber": (0x30060022, "IS"),
    "ReferencedFrameOfReferenceUID": (0x30060024, "UI"),
    "ROIName": (0x30060026, "LO"),
    "ROIDisplayColor": (0x3006002A, "IS"),
    "ROIGenerationAlgorithm": (0x30060036, "CS"),
    "ROIContourSequence": (0x30060039, "SQ"),
    "ContourSequence": (0x30060040, "SQ"),
    "ContourGeometricType": (0x30060042, "CS"),
    "NumberOfContourPoints": (0x30060046, "IS"),
    "ContourNumber": (0x30060048, "IS"),
    "ContourData": (0x30060050, "DS"),
    "RTROIObservationsSequence": (0x30060080, "SQ"),
    "ReferencedROINumber": (0x30060084, "IS"),
    "RTROIInterpretedType": (0x300600A4, "CS"),
    "RTPlanLabel": (0x300A0002, "SH"),
    "ReferencedRTPlanSequence": (0x300C0002, "SQ"),
    "ReferencedStructureSetSequence": (0x300C0060, "SQ"),
    # RT Plan (read by rtmask.plan)
    "RTPlanName": (0x300A0003, "LO"),
    "RTPlanDescription": (0x300A0004, "ST"),
    "RTPlanDate": (0x300A0006, "DA"),
    "RTPlanTime": (0x300A0007, "TM"),
    "PlanIntent": (0x300A000A, "CS"),
    "RTPlanGeometry": (0x300A000C, "CS"),
    "DoseReferenceSequence": (0x300A0010, "SQ"),
    "DoseReferenceNumber": (0x300A0012, "IS"),
    "DoseReferenceStructureType": (0x300A0014, "CS"),
    "DoseReferenceDescription": (0x300A0016, "LO"),
    "DoseReferenceType": (0x300A0020, "CS"),
    "DeliveryMaximumDose": (0x300A0023, "DS"),
    "TargetMinimumDose": (0x300A0025, "DS"),
    "TargetPrescriptionDose": (0x300A0026, "DS"),
    "TargetMaximumDose": (0x300A0027, "DS"),
    "OrganAtRiskMaximumDose": (0x300A002C, "DS"),
    "FractionGroupSequence": (0x300A0070, "SQ"),
    "FractionGroupNumber": (0x300A0071, "IS"),
    "NumberOfFractionsPlanned": (0x300A0078, "IS"),
    "BeamDose": (0x300A0084, "DS"),
    "BeamMeterset": (0x300A0086, "DS"),
    "BrachyApplicationSetupDose": (0x300A00A4, "DS"),
    "BeamSequence": (0x300A00B0, "SQ"),
    "TreatmentMachineName": (0x300A00B2, "SH"),
    "PrimaryDosimeterUnit": (0x300A00B3, "CS"),
    "SourceAxisDistance": (0x300A00B4, "DS"),
    "BeamNumber": (0x300A00C0, "IS"),
    "BeamName": (0x300A00C2, "LO"),
    "BeamDescription": (0x300A00C3, "ST"),
    "BeamType": (0x300A00C4, "CS"),
    "RadiationType": (0x300A00C6, "CS"),
    "TreatmentDeliveryType": (0x300A00CE, "CS"),
    "NumberOfControlPoints": (0x300A0110, "IS"),
    "ControlPointSequence": (0x300A0111, "SQ"),
    "NominalBeamEnergy": (0x300A0114, "DS"),
    "GantryAngle": (0x300A011E, "DS"),
    "BeamLimitingDeviceAngle": (0x300A0120, "DS"),
    "PatientSupportAngle": (0x300A0122, "DS"),
    "IsocenterPosition": (0x300A012C, "DS"),
    "BrachyTreatmentType": (0x300A0202, "CS"),
    "SourceSequence": (0x300A0210, "SQ"),
    "SourceNumber": (0x300A0212, "IS"),
    "SourceType": (0x300A0214, "CS"),
    "SourceIsotopeName": (0x300A0226, "LO"),
    "SourceIsotopeHalfLife": (0x300A0228, "DS"),
    "ReferenceAirKermaRate": (0x300A022A, "DS"),
    "SourceStrengthReferenceDate": (0x300A022C, "DA"),
    "ApplicationSetupSequence": (0x300A0230, "SQ"),
    "ApplicationSetupType": (0x300A0232, "CS"),
    "ApplicationSetupNumber": (0x300A0234, "IS"),
    "ApplicationSetupName": (0x300A0236, "LO"),
    "ChannelSequence": (0x300A0280, "SQ"),
    "ChannelNumber": (0x300A0282, "IS"),
    "ChannelTotalTime": (0x300A0286, "DS"),
    "SourceApplicatorID": (0x300A0291, "SH"),
    "SourceApplicatorName": (0x300A0294, "LO"),
    "BrachyControlPointSequence": (0x300A02D0, "SQ"),
    "VirtualSourceAxisDistances": (0x300A030A, "FL"),
    "IonBeamSequence": (0x300A03A2, "SQ"),
    "IonControlPointSequence": (0x300A03A8, "SQ"),
    "ReferencedBeamSequence": (0x300C0004, "SQ"),
    "ReferencedBeamNumber": (0x300C0006, "IS"),
    "ReferencedBrachyApplicationSetupSequence": (0x300C000A, "SQ"),
    "ReferencedSourceNumber": (0x300C000E, "IS"),
    "ReferencedDoseSequence": (0x300C0080, "SQ"),
    "ApprovalStatus": (0x300E0002, "CS"),
    "PixelData": (0x7FE00010, "OW"),
}

_IMPLICIT_LITTLE = "1.2.840.10008.1.2"
_EXPLICIT_LITTLE = "1.2.840.10008.1.2.1"
DEFLATED = "1.2.840.10008.1.2.1.99"
_EXPLICIT_BIG = "1.2.840.10008.1.2.2"
_TRANSFER_SYNTAX_TAG = 0x00020010
_MEDIA_SOP_CLASS_TAG = 0x00020002
#: Transfer syntaxes whose pixel data is stored uncompressed, little endian.
NATIVE_SYNTAXES = frozenset({_IMPLICIT_LITTLE, _EXPLICIT_LITTLE, DEFLATED})
#: Groups a dataset without preamble and file meta can start with (its first element).
_FIRST_GROUPS = frozenset({0x0002, 0x0004, 0x0008, 0x0010, 0x0018, 0x0020, 0x0028})

_ITEM = 0xFFFEE000
_ITEM_END = 0xFFFEE00D
_SEQUENCE_END = 0xFFFEE0DD
_UNDEFINED = 0xFFFFFFFF
_PIXEL_DATA = 0x7FE00010
#: Explicit VRs with a 2-byte reserved field and a 4-byte length.
_LONG_VRS = frozenset(
    {b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"SV", b"UC", b"UN", b"UR", b"UT", b"UV"}
)
_VRS = _LONG_VRS | {
    b"AE", b"AS", b"AT", b"CS", b"DA", b"DS", b"DT", b"FL", b"FD", b"IS", b"LO", b"LT",
    b"PN", b"SH", b"SL", b"SS", b"ST", b"TM", b"UI", b"UL", b"US",
}  # fmt: skip
#: Text VRs decoded with SpecificCharacterSet; every other text VR is plain ASCII.
_CHARSET_VRS = frozenset({"SH", "LO", "ST", "LT", "UT", "PN", "UC"})
_BINARY_DTYPES = {
    "US": "<u2",
    "SS": "<i2",
    "UL": "<u4",
    "SL": "<i4",
    "FL": "<f4",
    "FD": "<f8",
}
#: SpecificCharacterSet values (without code extensions) and their Python codecs; no
#: value means the default repertoire, which pydicom also reads as Latin-1.
_CODECS = {
    "": "latin_1",
    "ISO_IR 6": "latin_1",
    "ISO 2022 IR 6": "latin_1",
    "ISO_IR 100": "latin_1",
    "ISO_IR 101": "iso8859_2",
    "ISO_IR 109": "iso8859_3",
    "ISO_IR 110": "iso8859_4",
    "ISO_IR 144": "iso8859_5",
    "ISO_IR 127": "iso8859_6",
    "ISO_IR 126": "iso8859_7",
    "ISO_IR 138": "iso8859_8",
    "ISO_IR 148": "iso8859_9",
    "ISO_IR 203": "iso8859_15",
    "ISO_IR 166": "iso8859_11",
    "ISO_IR 192": "utf_8",
    "GB18030": "gb18030",
    "GBK": "gbk",
}

_implicit_header = struct.Struct("<HHI").unpack_from
_explicit_header = struct.Struct("<HH2sH").unpack_from
_long_length = struct.Struct("<I").unpack_from

# One element: VR (None in implicit VR), value offset, value length, and the items of an
# undefined-length sequence (parsed while walking, since only parsing finds its end).
_Element = tuple[bytes | None, int, int, "list[RawDataset] | None"]


class _File:
    """The bytes of one file and what every dataset in it shares."""

    __slots__ = ("data", "decode_text", "deflated", "meta", "name", "transfer_syntax")

    def __init__(self, data: bytes, name: str, transfer_syntax: str) -> None:
        self.data = data
        self.name = name
        self.transfer_syntax = transfer_syntax
        self.deflated = False
        self.meta: RawDataset | None = None
        self.decode_text: Callable[[bytes], str] = _decoder("")

    def truncated(self, end: int) -> DicomReadError:
        return DicomReadError(
            f"{self.name}: truncated DICOM file ({len(self.data)} bytes, but an element ends "
            f"at byte {end}); copy or export the file again"
        )

    def invalid(self, detail: str) -> DicomReadError:
        return DicomReadError(
            f"{self.name}: not a readable DICOM file ({detail}); check that the file is "
            "complete and is DICOM, or remove it from the input"
        )


def _decoder(specific_character_set: str) -> Callable[[bytes], str]:
    """A function decoding text of the charset-dependent VRs."""
    terms = [term.strip() for term in specific_character_set.split("\\")]
    codec = _CODECS.get(terms[0]) if len(terms) == 1 else None
    if codec is not None:
        chosen = codec
        return lambda raw: raw.decode(chosen, errors="replace")

    def with_pydicom(raw: bytes) -> str:
        from pydicom.charset import convert_encodings, decode_bytes  # noqa: PLC0415 - rare

        return decode_bytes(raw, convert_encodings(terms), {0x5C, 0x3D, 0x5E})

    return with_pydicom


class RawDataset:
    """The elements of one dataset or sequence item, decoded on demand.

    Values are looked up by keyword (only those in :data:`TAGS`). Numbers come back as
    ``float64`` arrays whatever their encoding (DS/IS text or binary), text stripped of
    padding, sequences as lists of :class:`RawDataset`.
    """

    __slots__ = ("_elements", "_file", "_implicit", "_sequences")

    def __init__(self, file: _File, elements: dict[int, _Element], implicit: bool) -> None:
        self._file = file
        self._elements = elements
        self._implicit = implicit
        self._sequences: dict[int, list[RawDataset]] = {}

    @property
    def source(self) -> str:
        """The file name, for messages."""
        return self._file.name

    @property
    def transfer_syntax(self) -> str:
        """The transfer syntax UID of the file."""
        return self._file.transfer_syntax

    @property
    def file_meta(self) -> RawDataset | None:
        """The file meta information (group 0002), or None when the file has none."""
        return self._file.meta

    @property
    def pixels_compressed(self) -> bool:
        """True when the transfer syntax stores pixel data compressed (encapsulated)."""
        return self._file.transfer_syntax not in NATIVE_SYNTAXES

    def __contains__(self, keyword: str) -> bool:
        return TAGS[keyword][0] in self._elements

    def value_bytes(self, keyword: str) -> bytes | None:
        """The undecoded value of an element, or None when absent."""
        element = self._elements.get(TAGS[keyword][0])
        if element is None:
            return None
        _, start, length, _ = element
        return self._file.data[start : start + length]

    def text(self, keyword: str) -> str | None:
        """A text value (multiple values kept, backslash-separated), or None when empty.

        Stripped of white space and NUL padding.
        """
        raw = self.value_bytes(keyword)
        if raw is None:
            return None
        if TAGS[keyword][1] in _CHARSET_VRS:
            text = self._file.decode_text(raw)
        else:
            text = raw.decode("ascii", errors="replace")
        return text.strip().strip("\x00").strip() or None

    def numbers(self, keyword: str) -> NDArray[np.float64]:
        """``(N,)`` the values of a DS, IS or binary numeric element; empty when absent.

        Raises
        ------
        ValueError
            A text value that is not a number.
        """
        raw = self.value_bytes(keyword)
        if raw is None:
            return np.empty(0)
        vr = self._vr(keyword)
        if vr in _BINARY_DTYPES:
            usable = len(raw) - len(raw) % np.dtype(_BINARY_DTYPES[vr]).itemsize
            return np.frombuffer(raw[:usable], dtype=_BINARY_DTYPES[vr]).astype(np.float64)
        text = raw.decode("ascii", errors="replace").strip(" \x00")
        if not text:
            return np.empty(0)
        return np.array([float(value) for value in text.split("\\")], dtype=np.float64)

    def number(self, keyword: str) -> float | None:
        """The first value of a numeric element, or None when absent, empty or not a number."""
        try:
            values = self.numbers(keyword)
        except ValueError:
            return None
        return float(values[0]) if values.size else None

    def integer(self, keyword: str) -> int | None:
        """The first value of a numeric element as an int, or None (absent, not whole)."""
        value = self.number(keyword)
        if value is None or not np.isfinite(value) or value != round(value):
            return None
        return int(value)

    def sequence(self, keyword: str) -> list[RawDataset]:
        """The items of a sequence; empty when absent.

        Raises
        ------
        DicomReadError
            The value is not a well-formed sequence.
        """
        tag = TAGS[keyword][0]
        element = self._elements.get(tag)
        if element is None:
            return []
        vr, start, length, items = element
        if items is not None:
            return items
        if tag not in self._sequences:
            implicit = self._implicit or vr == b"UN"
            self._sequences[tag] = _sequence(self._file, start, start + length, implicit)[0]
        return self._sequences[tag]

    def pixel_data(self) -> memoryview | None:
        """The native (uncompressed) PixelData bytes, or None when absent or encapsulated.

        A read-only view of the file's bytes, not a copy.
        """
        element = self._elements.get(_PIXEL_DATA)
        if element is None or element[3] is not None or element[2] == _UNDEFINED:
            return None
        _, start, length, _ = element
        return memoryview(self._file.data)[start : start + length]

    def pixel_data_range(self) -> tuple[int, int] | None:
        """Byte offset in the file and length of the PixelData value, as its header says.

        The length is 0xFFFFFFFF for encapsulated data read with ``stop_before_pixels``.
        None when there is no PixelData element or the file is deflated.
        """
        element = self._elements.get(_PIXEL_DATA)
        if element is None or self._file.deflated:
            return None
        return element[1], element[2]

    def is_encapsulated(self) -> bool:
        """True when the pixel data is compressed (stored as fragments)."""
        element = self._elements.get(_PIXEL_DATA)
        return element is not None and element[3] is not None

    def vr(self, keyword: str) -> str:
        """The value representation of a present element (explicit, else the dictionary's)."""
        return self._vr(keyword)

    def _vr(self, keyword: str) -> str:
        tag, vr = TAGS[keyword]
        explicit = self._elements[tag][0]
        if explicit is not None and explicit != b"UN":
            return explicit.decode("ascii", errors="replace")
        return vr


def _walk(
    file: _File,
    position: int,
    end: int,
    implicit: bool,
    *,
    in_item: bool,
    stop_tag: int = 0x100000000,
) -> tuple[dict[int, _Element], int]:
    """Elements from ``position`` to ``end`` (or to an item delimiter), and where they stop.

    At the first tag >= ``stop_tag`` the element's header is recorded (its value may lie
    beyond the bytes read) and the walk ends.
    """
    data = file.data
    size = len(data)
    elements: dict[int, _Element] = {}
    while position < end:
        if position + 8 > size:
            raise file.truncated(position + 8)
        if implicit:
            group, number, length = _implicit_header(data, position)
            vr = None
            start = position + 8
        else:
            group, number, vr, length = _explicit_header(data, position)
            start = position + 8
            if group == 0xFFFE:
                length = _long_length(data, position + 4)[0]
                vr = None
            elif vr in _LONG_VRS:
                if start + 4 > size:
                    raise file.truncated(start + 4)
                length = _long_length(data, start)[0]
                start += 4
        tag = group << 16 | number
        if tag >= stop_tag:
            elements[tag] = (vr, start, length, None)
            return elements, start
        if group == 0xFFFE:
            if tag == _ITEM_END and in_item:
                return elements, start
            raise file.invalid(f"unexpected item tag ({group:04X},{number:04X}) at byte {position}")
        if length == _UNDEFINED:
            if tag == _PIXEL_DATA:
                position = _skip_fragments(file, start)
                elements[tag] = (vr, start, position - start, [])
            else:
                items, position = _sequence(file, start, None, implicit or vr == b"UN")
                elements[tag] = (vr, start, position - start, items)
            continue
        position = start + length
        if position > size:
            raise file.truncated(position)
        elements[tag] = (vr, start, length, None)
    if in_item and end >= size:
        raise file.truncated(size + 8)
    return elements, position


def _sequence(
    file: _File, position: int, end: int | None, implicit: bool
) -> tuple[list[RawDataset], int]:
    """Items of a sequence starting at ``position``; ``end`` None for undefined length."""
    data = file.data
    size = len(data)
    limit = size if end is None else end
    items: list[RawDataset] = []
    while position < limit:
        if position + 8 > size:
            raise file.truncated(position + 8)
        group, number, length = _implicit_header(data, position)
        tag = group << 16 | number
        start = position + 8
        if tag == _SEQUENCE_END and end is None:
            return items, start
        if tag != _ITEM:
            raise file.invalid(f"sequence item expected at byte {position}")
        if length == _UNDEFINED:
            elements, position = _walk(file, start, size, implicit, in_item=True)
        else:
            position = start + length
            if position > size:
                raise file.truncated(position)
            elements, _ = _walk(file, start, position, implicit, in_item=False)
        items.append(RawDataset(file, elements, implicit))
    if end is None:
        raise file.truncated(size + 8)
    return items, position


def _skip_fragments(file: _File, position: int) -> int:
    """End of encapsulated pixel data (after its sequence delimiter)."""
    data = file.data
    while True:
        if position + 8 > len(data):
            raise file.truncated(position + 8)
        group, number, length = _implicit_header(data, position)
        position += 8
        if (group << 16 | number) == _SEQUENCE_END:
            return position
        if length == _UNDEFINED:
            raise file.invalid("pixel data fragment of undefined length")
        position += length


def _file_meta(file: _File, position: int) -> tuple[dict[int, _Element], int]:
    """The group 0002 elements (always explicit VR little endian) at ``position``."""
    data = file.data
    meta: dict[int, _Element] = {}
    while position + 8 <= len(data) and data[position : position + 2] == b"\x02\x00":
        next_group = _walk(file, position, position + 1, implicit=False, in_item=False)
        element_tag, element = next(iter(next_group[0].items()))
        meta[element_tag] = element
        position = next_group[1]
    return meta, position


def _looks_explicit(data: bytes, position: int) -> bool:
    """Whether the element at ``position`` carries a VR (a known two-letter code)."""
    return data[position + 4 : position + 6] in _VRS


def _parse(data: bytes, name: str, stop_before_pixels: bool = False) -> RawDataset:
    """A RawDataset from a file's bytes (all of them, or a head when stopping early)."""
    file = _File(data, name, _EXPLICIT_LITTLE)
    position = 132 if data[128:132] == b"DICM" else 0
    meta, position = _file_meta(file, position)
    if not meta and position == 0:
        if data[:2] == b"\x00\x08" and _looks_explicit(data, 0):
            raise _BigEndianError  # a bare big-endian dataset: pydicom reads those
        group = int.from_bytes(data[:2], "little") if len(data) >= 2 else 0xFFFF
        if len(data) < 8 or group not in _FIRST_GROUPS:
            raise file.invalid("no DICM marker and no DICOM element at the start")
    syntax_element = meta.get(_TRANSFER_SYNTAX_TAG)
    if syntax_element is not None:
        _, start, length, _ = syntax_element
        syntax = data[start : start + length].decode("ascii", "replace").strip(" \x00")
    else:
        syntax = _EXPLICIT_LITTLE if _looks_explicit(data, position) else _IMPLICIT_LITTLE
    file.transfer_syntax = syntax
    if syntax == _EXPLICIT_BIG:
        raise _BigEndianError
    if syntax == DEFLATED:
        inflater = zlib.decompressobj(-zlib.MAX_WBITS)
        try:
            body = inflater.decompress(data[position:])
        except zlib.error as error:
            raise file.invalid(f"deflated data cannot be inflated: {error}") from error
        if not (stop_before_pixels or inflater.eof):  # the whole file, yet the stream ends early
            raise DicomReadError(
                f"{name}: truncated DICOM file (its deflated data ends early, "
                f"{len(data)} bytes); copy or export the file again"
            )
        file.data = data = body
        file.deflated = True
        position = 0
    implicit = syntax == _IMPLICIT_LITTLE
    if position + 6 <= len(data) and implicit == _looks_explicit(data, position):
        # Some writers declare one VR encoding and use the other; trust the bytes.
        implicit = not implicit
    stop_tag = _PIXEL_DATA if stop_before_pixels else 0x100000000
    elements, _ = _walk(file, position, len(data), implicit, in_item=False, stop_tag=stop_tag)
    dataset = RawDataset(file, elements, implicit)
    file.meta = RawDataset(file, meta, implicit=False)
    charset = dataset.text("SpecificCharacterSet")
    file.decode_text = _decoder(charset or "")
    if (
        "SOPClassUID" not in dataset
        and "Modality" not in dataset
        and _MEDIA_SOP_CLASS_TAG not in meta
    ):
        raise file.invalid("no SOP Class UID or Modality")
    return dataset


class _BigEndianError(Exception):
    """The file uses the retired big-endian transfer syntax: read it through pydicom."""


#: Bytes read first when only the headers are wanted; more when they run longer. An image
#: header is 1-3 kB (16 kB holds most vendors' private blocks too): reading 64 kB of a
#: 512 x 512 slice cost a sixth of an archive scan's time.
HEAD_BYTES = 16384


def read_raw(path: str | os.PathLike[str], *, stop_before_pixels: bool = False) -> RawDataset:
    """Read a DICOM file into a :class:`RawDataset`.

    Parameters
    ----------
    path
        The file.
    stop_before_pixels
        Read the headers only: the walk ends at PixelData, whose element header (offset
        and length, :meth:`RawDataset.pixel_data_range`) is kept. Only the first
        HEAD_BYTES are read unless the headers run longer.

    Raises
    ------
    DicomReadError
        With the file name and what to do, for a missing, unreadable, truncated or
        non-DICOM file.
    """
    name = os.fspath(path)
    try:
        with Path(name).open("rb") as stream:
            data = stream.read(HEAD_BYTES if stop_before_pixels else -1)
            complete = not stop_before_pixels or len(data) < HEAD_BYTES
            try:
                return _parse(data, name, stop_before_pixels)
            except DicomReadError:
                if complete:
                    raise
            # The headers run past the first bytes read: read the rest and walk again.
            data += stream.read()
        return _parse(data, name, stop_before_pixels)
    except FileNotFoundError as error:
        raise DicomReadError(f"{name}: file not found; check the path") from error
    except IsADirectoryError as error:
        raise DicomReadError(f"{name}: is a folder, expected a DICOM file") from error
    except OSError as error:
        if isinstance(error, DicomReadError):
            raise
        raise DicomReadError(f"{name}: cannot be read ({error.strerror}); check it") from error
    except _BigEndianError:
        from rtmask._dicom import read_dataset  # noqa: PLC0415 - imports pydicom

        dataset = read_dataset(name, headers_only=stop_before_pixels)
        return raw_from_dataset(dataset, name=name)


def _encoded(dataset: Dataset, label: str) -> bytes:
    """``dataset`` (or file meta) encoded as explicit VR little endian, without preamble."""
    from pydicom.filebase import DicomBytesIO  # noqa: PLC0415 - pydicom only when needed
    from pydicom.filewriter import write_dataset  # noqa: PLC0415

    buffer = DicomBytesIO()
    buffer.is_little_endian = True
    buffer.is_implicit_VR = False
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # pydicom's notes on values it re-encodes
            write_dataset(buffer, dataset)
    except (ValueError, TypeError, AttributeError, KeyError, OverflowError) as error:
        raise DicomReadError(
            f"{label}: the dataset cannot be encoded as DICOM ({error}); check its values"
        ) from error
    return bytes(buffer.getvalue())


def raw_from_dataset(dataset: Dataset, *, name: str | None = None) -> RawDataset:
    """A pydicom Dataset as a :class:`RawDataset`, through explicit VR little endian bytes.

    Pixel data keeps its original byte order: :attr:`RawDataset.transfer_syntax` stays
    the dataset's own, so a reader can tell native little-endian pixels from others.
    """
    label = name or str(getattr(dataset, "filename", None) or "<dataset>")
    meta = getattr(dataset, "file_meta", None)
    original = str(getattr(meta, "TransferSyntaxUID", "") or _EXPLICIT_LITTLE)
    file = _File(_encoded(dataset, label), label, original)
    elements, _ = _walk(file, 0, len(file.data), implicit=False, in_item=False)
    raw = RawDataset(file, elements, implicit=False)
    if meta is not None and len(meta):
        meta_file = _File(_encoded(meta, label), label, _EXPLICIT_LITTLE)
        meta_elements, _ = _walk(meta_file, 0, len(meta_file.data), implicit=False, in_item=False)
        file.meta = RawDataset(meta_file, meta_elements, implicit=False)
    file.decode_text = _decoder(raw.text("SpecificCharacterSet") or "")
    return raw
