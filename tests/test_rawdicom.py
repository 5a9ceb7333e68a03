"""rtmask._rawdicom against pydicom: every encoding, charset and defect the readers meet.

pydicom is the independent truth here: files are written by pydicom in each transfer
syntax and length form, and every value the raw walker returns is compared with
pydicom's decoding of the same file.
"""

from __future__ import annotations

import struct
import warnings
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset
from pydicom.uid import (
    UID,
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    RLELossless,
)

from conftest import SHARED_DATA
from rtmask._errors import DicomReadError
from rtmask._rawdicom import TAGS, RawDataset, raw_from_dataset, read_raw
from rtmask.dose import read_dose
from rtmask.geometry import ImageGrid
from rtmask.rtstruct import StructureSet, read_rtstruct
from rtmask.synthetic import (
    CTSeries,
    RoiSpec,
    circle_uv,
    to_patient,
    write_ct_series,
    write_rtdose,
    write_rtstruct,
)

needs_data = pytest.mark.skipif(not SHARED_DATA.is_dir(), reason="../shared/data is absent")

SYNTAXES = {
    "implicit": ImplicitVRLittleEndian,
    "explicit": ExplicitVRLittleEndian,
    "deflated": DeflatedExplicitVRLittleEndian,
    "big-endian": ExplicitVRBigEndian,
}


@pytest.fixture(scope="module")
def ct(tmp_path_factory: pytest.TempPathFactory) -> CTSeries:
    grid = ImageGrid.from_explicit(
        origin_mm=(-40.5, 20.25, -7.0),
        spacing_mm=(2.0, 0.9, 1.1),
        shape=(4, 31, 27),
        orientation=(1.0, 0.0, 0.0, 0.0, 1.0, 0.0),
    )
    return write_ct_series(tmp_path_factory.mktemp("ct"), grid)


def _rois(ct: CTSeries) -> list[RoiSpec]:
    grid = ct.grid
    outer = to_patient(grid, 1, circle_uv((12.0, 13.0), 9.0, n=64))
    hole = to_patient(grid, 1, circle_uv((12.0, 13.0), 3.5, n=24))
    other = to_patient(grid, 2, circle_uv((10.0, 11.0), 5.0, n=32))
    return [
        RoiSpec(
            number=3,
            name="Ring",
            contours=((outer, "CLOSED_PLANAR"), (hole, "CLOSED_PLANAR")),
            color=(10, 200, 30),
        ),
        RoiSpec(number=7, name="Disc", contours=((other, "CLOSED_PLANAR"),)),
    ]


@pytest.fixture(scope="module")
def rtstruct(ct: CTSeries, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_rtstruct(tmp_path_factory.mktemp("rs") / "rs.dcm", _rois(ct), ct)


def _same_structure_sets(a: StructureSet, b: StructureSet) -> None:
    assert [(r.number, r.name, r.color, r.interpreted_type) for r in a.rois] == [
        (r.number, r.name, r.color, r.interpreted_type) for r in b.rois
    ]
    for x, y in zip(a.rois, b.rois, strict=True):
        assert len(x.contours) == len(y.contours)
        for c, d in zip(x.contours, y.contours, strict=True):
            assert c.equals(d, atol=0.0)
            assert c.referenced_sop_instance_uid == d.referenced_sop_instance_uid
    assert a.referenced_sop_instance_uids == b.referenced_sop_instance_uids
    assert a.frame_of_reference_uid == b.frame_of_reference_uid
    assert (a.patient_name, a.patient_id, a.label) == (b.patient_name, b.patient_id, b.label)


def _rewrite(source: Path, target: Path, syntax: UID, *, undefined: bool = False) -> Path:
    dataset = pydicom.dcmread(source)
    if undefined:
        _undefined_lengths(dataset)
    little = syntax != ExplicitVRBigEndian
    if not little and "PixelData" in dataset:
        # pydicom writes pixel bytes as they are: swap them for a true big-endian file.
        dataset.PixelData = dataset.pixel_array.byteswap().tobytes()
    dataset.file_meta.TransferSyntaxUID = syntax
    implicit = syntax == ImplicitVRLittleEndian
    pydicom.dcmwrite(
        target, dataset, implicit_vr=implicit, little_endian=little, enforce_file_format=True
    )
    return target


def _undefined_lengths(dataset: Dataset) -> None:
    """Mark every sequence and item of ``dataset`` for undefined-length encoding."""
    for element in dataset:
        if element.VR == "SQ":
            element.is_undefined_length = True
            for item in element.value:
                item.is_undefined_length_sequence_item = True
                _undefined_lengths(item)


# ------------------------------------------------------------------- transfer syntaxes
@pytest.mark.parametrize("syntax", list(SYNTAXES), ids=list(SYNTAXES))
@pytest.mark.parametrize("undefined", [False, True], ids=["defined", "undefined"])
def test_every_encoding_reads_the_same_structure_set(
    rtstruct: Path, tmp_path: Path, syntax: str, undefined: bool
) -> None:
    path = _rewrite(rtstruct, tmp_path / "rs.dcm", SYNTAXES[syntax], undefined=undefined)
    assert pydicom.dcmread(path).file_meta.TransferSyntaxUID == SYNTAXES[syntax]
    if undefined and syntax in ("implicit", "explicit"):
        assert b"\xfe\xff\xdd\xe0" in path.read_bytes()  # sequence delimiters
    _same_structure_sets(read_rtstruct(path), read_rtstruct(rtstruct))


def test_no_preamble_and_no_file_meta(rtstruct: Path, tmp_path: Path) -> None:
    for implicit in (True, False):
        dataset = pydicom.dcmread(rtstruct)
        del dataset.file_meta
        dataset.preamble = None
        path = tmp_path / f"bare-{implicit}.dcm"
        pydicom.dcmwrite(path, dataset, implicit_vr=implicit, little_endian=True)
        assert path.read_bytes()[128:132] != b"DICM"
        _same_structure_sets(read_rtstruct(path), read_rtstruct(rtstruct))


def test_a_pydicom_dataset_is_read_like_its_file(rtstruct: Path) -> None:
    _same_structure_sets(read_rtstruct(pydicom.dcmread(rtstruct)), read_rtstruct(rtstruct))


def _element(tag: int, vr: bytes, value: bytes) -> bytes:
    group, number = tag >> 16, tag & 0xFFFF
    if vr in (b"SQ", b"UN", b"OB"):
        return struct.pack("<HH2sHI", group, number, vr, 0, len(value)) + value
    return struct.pack("<HH2sH", group, number, vr, len(value)) + value


def _implicit(tag: int, value: bytes) -> bytes:
    return struct.pack("<HHI", tag >> 16, tag & 0xFFFF, len(value)) + value


@pytest.mark.parametrize("undefined", [False, True], ids=["defined", "undefined"])
def test_sequences_inside_vr_un_are_read_as_implicit_vr(tmp_path: Path, undefined: bool) -> None:
    # A sequence an archive did not know, re-encoded as UN: its content is implicit VR.
    name_tag, number_tag = TAGS["ROIName"][0], TAGS["ROINumber"][0]
    items = b""
    for number, name in ((1, b"PTV "), (12, b"Lung")):
        body = _implicit(number_tag, str(number).encode().ljust(2)) + _implicit(name_tag, name)
        items += struct.pack("<HHI", 0xFFFE, 0xE000, len(body)) + body
    tag = TAGS["StructureSetROISequence"][0]
    if undefined:
        value = items + struct.pack("<HHI", 0xFFFE, 0xE0DD, 0)
        sequence = struct.pack("<HH2sHI", tag >> 16, tag & 0xFFFF, b"UN", 0, 0xFFFFFFFF) + value
    else:
        sequence = _element(tag, b"UN", items)
    data = (
        _element(TAGS["Modality"][0], b"CS", b"RTSTRUCT")
        + _element(TAGS["PatientName"][0], b"PN", b"Doe^J ")
        + sequence
    )
    path = tmp_path / "un.dcm"
    path.write_bytes(data)
    raw = read_raw(path)
    assert [
        (i.integer("ROINumber"), i.text("ROIName")) for i in raw.sequence("StructureSetROISequence")
    ] == [(1, "PTV"), (12, "Lung")]
    assert raw.text("PatientName") == "Doe^J"


# ----------------------------------------------------------------------- text encoding
@pytest.mark.parametrize(
    ("charset", "name"),
    [
        ("ISO_IR 100", "Lunge rechts ä"),
        ("ISO_IR 192", "肺 右 Поднижнечелюстная"),
        ("ISO_IR 144", "Подчелюстная"),
        ("\\ISO 2022 IR 87", "Yamada^Taro=山田^太郎"),
    ],
    ids=["latin-1", "utf-8", "cyrillic", "iso-2022-japanese"],
)
def test_names_decode_as_pydicom_decodes_them(
    rtstruct: Path, tmp_path: Path, charset: str, name: str
) -> None:
    dataset = pydicom.dcmread(rtstruct)
    dataset.SpecificCharacterSet = charset.split("\\") if "\\" in charset else charset
    dataset.StructureSetROISequence[0].ROIName = name
    dataset.PatientName = name
    path = tmp_path / "charset.dcm"
    dataset.save_as(path)
    expected = pydicom.dcmread(path)
    raw = read_raw(path)
    assert raw.text("PatientName") == str(expected.PatientName)
    assert read_rtstruct(path).rois[0].name == str(expected.StructureSetROISequence[0].ROIName)


# ----------------------------------------------------------------- values vs pydicom
def _compare(raw: RawDataset, dataset: Dataset, depth: int = 0) -> int:
    """Compare every TAGS keyword present; returns how many values were compared."""
    compared = 0
    for keyword, (tag, vr) in TAGS.items():
        if tag >> 16 == 0x0002 or tag not in dataset:
            continue
        element = dataset[tag]
        assert keyword in raw, keyword
        if vr == "SQ":
            items = raw.sequence(keyword)
            assert len(items) == len(element.value), keyword
            if depth < 3:
                for mine, theirs in zip(items, element.value, strict=True):
                    compared += _compare(mine, theirs, depth + 1)
        elif keyword == "PixelData":
            continue
        elif vr in ("DS", "IS", "US", "UL", "SS", "SL", "FL", "FD"):
            value = element.value
            values = [] if value is None else list(value) if element.VM > 1 else [value]
            np.testing.assert_array_equal(raw.numbers(keyword), np.array(values, dtype=float))
        else:
            value = element.value
            text = "\\".join(map(str, value)) if element.VM > 1 else str(value or "")
            assert (raw.text(keyword) or "") == text.strip(), keyword
        compared += 1
    return compared


@needs_data
def test_every_shared_file_reads_as_pydicom_reads_it() -> None:
    paths = [p for p in SHARED_DATA.rglob("*") if p.is_file() and p.suffix in (".dcm", "")]
    compared = 0
    for path in paths:
        try:
            dataset = pydicom.dcmread(path)
        except pydicom.errors.InvalidDicomError:
            continue
        raw = read_raw(path)
        compared += _compare(raw, dataset)
        head = read_raw(path, stop_before_pixels=True)
        if "PixelData" in dataset:
            element = dataset["PixelData"]
            _, length = head.pixel_data_range() or (0, 0)
            assert length == len(element.value) or element.is_undefined_length
            assert raw.pixel_data() in (None, element.value)
    assert compared > 1000


def test_headers_longer_than_the_first_read(ct: CTSeries, tmp_path: Path) -> None:
    dataset = pydicom.dcmread(ct.files[0])
    dataset.add_new(0x00291010, "OB", bytes(200_000))  # a large private element
    path = tmp_path / "big-header.dcm"
    dataset.save_as(path)
    head = read_raw(path, stop_before_pixels=True)
    assert head.integer("Rows") == dataset.Rows
    offset, length = head.pixel_data_range() or (0, 0)
    stored = pydicom.dcmread(path)["PixelData"]
    assert length == len(stored.value)
    assert path.read_bytes()[offset : offset + length] == stored.value


# ------------------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    "content",
    [b"", b"patient notes, not DICOM\n" * 20, bytes(range(256)) * 3, b"\x00" * 100],
    ids=["empty", "text", "binary", "zeros"],
)
def test_non_dicom_files_raise_one_line(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "file.dcm"
    path.write_bytes(content)
    with pytest.raises(DicomReadError) as caught:
        read_raw(path)
    assert str(path) in str(caught.value)
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize("undefined", [False, True], ids=["defined", "undefined"])
def test_a_cut_anywhere_is_never_read_as_complete(
    rtstruct: Path, tmp_path: Path, undefined: bool
) -> None:
    source = _rewrite(rtstruct, tmp_path / "full.dcm", ExplicitVRLittleEndian, undefined=undefined)
    data = source.read_bytes()
    complete = read_rtstruct(source)
    cut = tmp_path / "cut.dcm"
    for end in np.linspace(140, len(data) - 1, 97).astype(int):
        cut.write_bytes(data[:end])
        try:
            partial = read_rtstruct(cut, on_invalid="ignore")
        except DicomReadError as error:
            message = str(error)
            assert str(cut) in message
            continue
        # Only a cut between two top-level elements can go unnoticed; then no ROI data
        # may be lost silently: what is read must be the complete ROIs, or (a cut before
        # the ROI sequences) no ROI at all with the reason recorded.
        if not partial.rois:
            assert any("may be truncated" in w for w in partial.warnings), partial.warnings
            continue
        _same_structure_sets(partial, complete)


def test_missing_file_and_folder(tmp_path: Path) -> None:
    with pytest.raises(DicomReadError, match="file not found"):
        read_raw(tmp_path / "nowhere.dcm")
    with pytest.raises(DicomReadError, match="is a folder"):
        read_raw(tmp_path)


# ------------------------------------------------------------------------------ dose
@pytest.fixture(scope="module")
def dose_file(ct: CTSeries, tmp_path_factory: pytest.TempPathFactory) -> Path:
    grid = ImageGrid.from_explicit(
        origin_mm=(-38.0, 22.0, -7.0), spacing_mm=(2.0, 2.5, 3.0), shape=(4, 9, 7)
    )
    k, i, j = np.meshgrid(*(np.arange(n) for n in grid.shape), indexing="ij")
    values = 0.5 + 0.37 * k + 0.11 * i + 0.05 * j
    return write_rtdose(tmp_path_factory.mktemp("rd") / "rd.dcm", grid, values, ct, bits=16)


@pytest.mark.parametrize("syntax", ["implicit", "deflated", "big-endian", "rle"])
def test_dose_in_every_encoding_reads_the_same(
    dose_file: Path, tmp_path: Path, syntax: str
) -> None:
    path = tmp_path / "rd.dcm"
    if syntax == "rle":
        dataset = pydicom.dcmread(dose_file)
        dataset.compress(RLELossless)
        dataset.save_as(path)
    else:
        _rewrite(dose_file, path, SYNTAXES[syntax])
    reference, other = read_dose(dose_file), read_dose(path)
    np.testing.assert_array_equal(other.dose_gy, reference.dose_gy)
    np.testing.assert_array_equal(other.grid.affine, reference.grid.affine)
    assert other.grid.shape == reference.grid.shape
    expected = pydicom.dcmread(path)
    np.testing.assert_array_equal(
        other.dose_gy.ravel(),
        (expected.pixel_array.astype(float) * float(expected.DoseGridScaling)).ravel(),
    )


def test_raw_from_dataset_keeps_the_original_transfer_syntax(dose_file: Path) -> None:
    dataset = pydicom.dcmread(dose_file)
    raw = raw_from_dataset(dataset)
    assert raw.transfer_syntax == dataset.file_meta.TransferSyntaxUID
    assert raw.integer("Rows") == dataset.Rows


@pytest.mark.parametrize(
    "name",
    [
        "ExplVR_BigEndNoMeta.dcm",  # big endian, no file meta
        "DICOMDIR-bigEnd",  # big endian with file meta (a DICOMDIR)
        "SC_rgb_jpeg.dcm",  # says explicit VR in its meta, is implicit VR inside
        "rtdose_expb.dcm",  # big-endian RT Dose
        "rtplan.dcm",
    ],
)
def test_pydicom_test_files_read_as_pydicom_reads_them(name: str) -> None:
    path = get_testdata_file(name)
    assert path is not None
    raw = read_raw(path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pydicom notes the defects it tolerates
        dataset = pydicom.dcmread(path, force=True)
        _compare(raw, dataset)
    meta = getattr(dataset, "file_meta", None)
    if meta is not None and "MediaStorageSOPClassUID" in meta:
        assert raw.file_meta is not None
        assert raw.file_meta.text("MediaStorageSOPClassUID") == meta.MediaStorageSOPClassUID


def test_every_known_tag_matches_the_dicom_dictionary() -> None:
    """TAGS is rtmask's own table: each keyword's tag and VR as pydicom's dictionary has them."""
    from pydicom.datadict import dictionary_VR, tag_for_keyword

    for keyword, (tag, vr) in TAGS.items():
        assert tag_for_keyword(keyword) == tag, keyword
        assert vr in dictionary_VR(tag).split(" or "), keyword
