"""Reading DICOM files with pydicom, turning every failure into one clear DicomReadError.

pydicom is imported on first use: the readers of structure sets, doses and image headers
walk the bytes themselves (:mod:`rtmask._rawdicom`), and ``import pydicom`` alone costs
~0.2 s of every command.
"""

from __future__ import annotations

import os
import re
import struct
import warnings
import zlib
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rtmask._errors import DicomReadError, InvalidInputError

if TYPE_CHECKING:
    from pydicom.dataelem import DataElement
    from pydicom.dataset import Dataset

__all__ = [
    "RTDOSE_SOP_CLASS",
    "RTPLAN_SOP_CLASS",
    "RTSTRUCT_SOP_CLASS",
    "SEGMENTATION_SOP_CLASS",
    "check_values_to_write",
    "complete_deidentification",
    "copy_deidentification",
    "int_or_none",
    "read_dataset",
    "text_or_none",
]

RTSTRUCT_SOP_CLASS = "1.2.840.10008.5.1.4.1.1.481.3"
RTDOSE_SOP_CLASS = "1.2.840.10008.5.1.4.1.1.481.2"
RTPLAN_SOP_CLASS = "1.2.840.10008.5.1.4.1.1.481.5"
SEGMENTATION_SOP_CLASS = "1.2.840.10008.5.1.4.1.1.66.4"
DICOMDIR_SOP_CLASS = "1.2.840.10008.1.3.10"

_READ_FAILURES = (
    EOFError,
    OSError,
    ValueError,
    struct.error,
    TypeError,
    KeyError,
    AttributeError,
    IndexError,
    NotImplementedError,
    OverflowError,
    zlib.error,  # a deflated file cut short
)


def read_dataset(
    path: str | os.PathLike[str],
    *,
    headers_only: bool = False,
    specific_tags: Sequence[str] | None = None,
) -> Dataset:
    """Read one DICOM file, with or without preamble.

    Parameters
    ----------
    path
        The file.
    headers_only
        Stop before the pixel data (for discovery and geometry).
    specific_tags
        Read only these elements (keywords or tags); much faster for discovery.

    Raises
    ------
    DicomReadError
        With the file name and what to do, for a missing, unreadable, truncated or
        non-DICOM file.
    """
    import pydicom  # noqa: PLC0415 - lazy on purpose (see the module docstring)
    from pydicom.errors import InvalidDicomError  # noqa: PLC0415

    name = os.fspath(path)
    try:
        with warnings.catch_warnings():
            # pydicom warns about many harmless deviations; rtmask reports what matters.
            warnings.simplefilter("ignore")
            dataset = pydicom.dcmread(
                name,
                stop_before_pixels=headers_only,
                specific_tags=list(specific_tags) if specific_tags else None,
                force=True,
            )
            # force=True accepts anything; a real DICOM file has a SOP class or modality.
            if (
                "SOPClassUID" not in dataset
                and "Modality" not in dataset
                and "MediaStorageSOPClassUID" not in dataset.file_meta
            ):
                raise InvalidDicomError("no SOP Class UID or Modality")
        if not specific_tags:
            _check_complete(dataset, name)
    except FileNotFoundError as error:
        raise DicomReadError(f"{name}: file not found; check the path") from error
    except IsADirectoryError as error:
        raise DicomReadError(f"{name}: is a folder, expected a DICOM file") from error
    except DicomReadError:
        raise
    except (InvalidDicomError, *_READ_FAILURES) as error:
        detail = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise DicomReadError(
            f"{name}: not a readable DICOM file ({detail}); check that the file is complete "
            "and is DICOM, or remove it from the input"
        ) from error
    return dataset


_UNDEFINED_LENGTH = 0xFFFFFFFF
_DEFLATED = "1.2.840.10008.1.2.1.99"


def _check_complete(dataset: Dataset, name: str) -> None:
    """Raise DicomReadError when the last element runs past the end of the file.

    pydicom reads a defined-length sequence cut short by truncation without complaint,
    returning the items it could parse; a structure set would silently lose ROIs.
    """
    if not len(dataset):
        return
    meta = getattr(dataset, "file_meta", None)
    if meta is not None and meta.get("TransferSyntaxUID") == _DEFLATED:
        return  # positions are in the inflated stream; zlib itself finds a cut stream
    raw = dataset.get_item(max(dataset.keys()))
    value_tell = getattr(raw, "value_tell", None)
    length = getattr(raw, "length", None)
    if value_tell is None or length is None or length == _UNDEFINED_LENGTH:
        return
    size = Path(name).stat().st_size
    if value_tell + length > size:
        raise DicomReadError(
            f"{name}: truncated DICOM file ({size} bytes, but its last element ends at byte "
            f"{value_tell + length}); copy or export the file again"
        )


def text_or_none(value: Any) -> str | None:
    r"""A DICOM value as stripped text, or None when absent or empty.

    A text value holding a backslash comes from pydicom split into several values (DICOM's
    value separator); they are joined back, so a name like ``PTV\boost`` stays as written.
    """
    if value is None:
        return None
    if isinstance(value, Sequence) and not isinstance(value, (str, bytes)):
        value = "\\".join(str(v) for v in value)
    text = str(value).strip()
    return text or None


def int_or_none(value: Any) -> int | None:
    """A DICOM value as an int, or None when absent or not a whole number."""
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


#: How the patient's identity was removed from the source images (PS3.3 C.7.1.1 Patient
#: Module; C.12.1 SOP Common for the last): an object made from de-identified images says so.
DEIDENTIFICATION_KEYWORDS = (
    "PatientIdentityRemoved",
    "DeidentificationMethod",
    "DeidentificationMethodCodeSequence",
    "LongitudinalTemporalInformationModified",
)
#: DeidentificationMethod (LO, at most 64 characters) when the source gives no method.
METHOD_NOT_STATED = "source says PatientIdentityRemoved YES, method not stated"


def copy_deidentification(target: Dataset, source: Dataset) -> None:
    """Carry ``source``'s de-identification attributes over to ``target``, then complete them.

    Copies every one of :data:`DEIDENTIFICATION_KEYWORDS` the source has with a value;
    see :func:`complete_deidentification` for the case the source leaves incomplete.
    """
    from copy import deepcopy  # noqa: PLC0415 - only the writers need it

    for keyword in DEIDENTIFICATION_KEYWORDS:
        value = source.get(keyword)
        if value is not None and (len(value) > 0 if hasattr(value, "__len__") else True):
            setattr(target, keyword, deepcopy(value))
    complete_deidentification(target)


def complete_deidentification(dataset: Dataset) -> None:
    """Add the Type 1C DeidentificationMethod where PatientIdentityRemoved is YES without one.

    PS3.3 C.7.1.1 requires DeidentificationMethod or DeidentificationMethodCodeSequence
    when PatientIdentityRemoved is YES. Source images without either (TCIA's LUNG1-001,
    for one) would make every derived object invalid; the method is then stated as not
    known rather than the de-identification flag dropped.
    """
    removed = text_or_none(dataset.get("PatientIdentityRemoved")) or ""
    if removed.upper() != "YES":
        return
    if text_or_none(dataset.get("DeidentificationMethod")) is None and not dataset.get(
        "DeidentificationMethodCodeSequence"
    ):
        dataset.DeidentificationMethod = METHOD_NOT_STATED


#: A UID as PS3.5 9.1 allows it: digits and dots, at most 64 characters.
_UID_PATTERN = re.compile(r"[0-9]+(\.[0-9]+)*")
#: What a text value holds where the input had bytes that could not be decoded.
_UNDECODABLE = "\ufffd"


#: VRs whose values are numbers or bytes: never a UID or decoded text, so not converted.
_NOT_TEXT_VRS = frozenset(
    "DS IS FL FD SL SS UL US SV UV OB OW OF OD OL OV UN AT".split()  # noqa: SIM905
)


def _text_elements(dataset: Dataset) -> Iterator[DataElement]:
    """Every element of ``dataset`` and its sequences, skipping number and byte values.

    Numbers are left unconverted (an RTSTRUCT's ContourData, held raw, would otherwise be
    parsed value by value).
    """
    for tag in list(dataset.keys()):
        if dataset.get_item(tag).VR in _NOT_TEXT_VRS:
            continue
        element = dataset[tag]
        yield element
        if element.VR == "SQ":
            for item in element.value:
                yield from _text_elements(item)


def check_values_to_write(dataset: Dataset, final: str | os.PathLike[str]) -> None:
    """Refuse to write values taken from a damaged input: malformed UIDs, undecodable text.

    Readers decode text with replacement characters, so a damaged byte in an input's UID or
    code string would otherwise travel into the file written (an invalid UID, or a value
    the character set cannot encode). Raises :class:`~rtmask.errors.InvalidInputError`
    naming the file to be written and the attribute.
    """
    for element in _text_elements(dataset):
        values = element.value if element.VM > 1 else [element.value]
        for value in values:
            if not isinstance(value, str) or not value:
                continue
            keyword = element.keyword or str(element.tag)
            if element.VR == "UI" and (len(value) > 64 or not _UID_PATTERN.fullmatch(value)):
                raise InvalidInputError(
                    f"{os.fspath(final)}: not written: {keyword} {value!r}, taken from the "
                    "input, is not a valid UID (the input file is damaged); repair or "
                    "re-export the input"
                )
            if _UNDECODABLE in value:
                raise InvalidInputError(
                    f"{os.fspath(final)}: not written: {keyword} {value!r}, taken from the "
                    "input, holds bytes that could not be decoded (the input file is "
                    "damaged); repair or re-export the input"
                )
