"""Regression tests for failures the fuzz test (tests/test_fuzz.py) found, one per finding."""

from __future__ import annotations

from pathlib import Path

import pytest

from fuzz_inputs import Seed, write_synthetic_seed
from rtmask.cli import main


@pytest.fixture(scope="module")
def seed(tmp_path_factory: pytest.TempPathFactory) -> Seed:
    return write_synthetic_seed(tmp_path_factory.mktemp("seed") / "case")


@pytest.mark.parametrize("option", ["--csv", "--plot"])
@pytest.mark.parametrize("where", ["missing folder", "a folder"])
def test_dvh_output_file_that_cannot_be_written_is_refused_first(
    seed: Seed, tmp_path: Path, capsys: pytest.CaptureFixture[str], option: str, where: str
) -> None:
    # Fuzz finding: `dvh --csv OUT/dvh.csv` with no folder OUT let FileNotFoundError escape
    # from the atomic writer after every DVH had been computed.
    target = tmp_path / "missing" / "dvh.out" if where == "missing folder" else tmp_path
    before = sorted(tmp_path.rglob("*"))
    code = main(
        ["dvh", str(seed.folder / "RS.dcm"), str(seed.folder / "RD.dcm"), option, str(target)]
    )
    captured = capsys.readouterr()
    assert code == 1
    assert "Traceback" not in captured.err
    (line,) = [line for line in captured.err.splitlines() if line.startswith("error:")]
    expected = (
        "does not exist; create it first"
        if where == "missing folder"
        else "is a folder; give a file name"
    )
    assert line.startswith(f"error: {option} {target}: ")
    assert line.endswith(expected)
    assert sorted(tmp_path.rglob("*")) == before


@pytest.mark.parametrize("content", [b"", b"NRRD0004\n"])
def test_empty_nrrd_mask_is_an_unreadable_file(
    seed: Seed, tmp_path: Path, capsys: pytest.CaptureFixture[str], content: bytes
) -> None:
    # Fuzz finding: an empty .nrrd among the masks let pynrrd's StopIteration escape
    # `to-rtstruct` as "RuntimeError: generator raised StopIteration".
    from rtmask import InvalidInputError, read_image_series, read_masks

    masks = tmp_path / "masks"
    masks.mkdir()
    (masks / "Body.nrrd").write_bytes(content)
    series = read_image_series(seed.folder / "ct")
    with pytest.raises(InvalidInputError, match=r"Body\.nrrd: not a readable NRRD file"):
        read_masks(masks, series)
    output = tmp_path / "RS.dcm"
    code = main(["to-rtstruct", str(masks), "--image", str(seed.folder / "ct"), "-o", str(output)])
    captured = capsys.readouterr()
    assert code == 1
    assert "Traceback" not in captured.err
    assert "Body.nrrd: not a readable NRRD file" in captured.err
    assert not output.exists()


def _damage_text(path: Path, text: bytes, replacement: bytes) -> None:
    """Replace ``text`` by ``replacement`` (same length) in the bytes of ``path``."""
    data = path.read_bytes()
    assert len(text) == len(replacement)
    assert text in data
    path.write_bytes(data.replace(text, replacement))


def _error_lines(err: str) -> list[str]:
    assert "Traceback" not in err
    return [line for line in err.splitlines() if line.startswith("error:")]


def test_damaged_uid_in_the_images_is_never_written_into_an_rtstruct(
    seed: Seed, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Fuzz finding N1: an undecodable byte in the CT's FrameOfReferenceUID travelled into
    # the RTSTRUCT written by to-rtstruct, and pydicom's UnicodeEncodeError escaped.
    import shutil

    import pydicom

    case = tmp_path / "case"
    shutil.copytree(seed.folder, case)
    masks = tmp_path / "masks"
    assert main(["convert", str(case / "RS.dcm"), "-o", str(masks)]) == 0
    frame_uid = pydicom.dcmread(case / "RS.dcm").ReferencedFrameOfReferenceSequence[0]
    uid = frame_uid.FrameOfReferenceUID.encode()
    damaged = uid[:5] + b"\xac" + uid[6:]
    for path in (case / "ct").iterdir():
        _damage_text(path, uid, damaged)
    capsys.readouterr()
    output = tmp_path / "RS_new.dcm"
    code = main(["to-rtstruct", str(masks), "--image", str(case / "ct"), "-o", str(output)])
    (line,) = _error_lines(capsys.readouterr().err)
    assert code == 1
    assert f"{output}: not written: FrameOfReferenceUID" in line
    assert "is not a valid UID" in line
    assert not output.exists()
    assert not list(tmp_path.glob(".*tmp*"))


def test_damaged_interpreted_type_is_reported_and_ignored(seed: Seed, tmp_path: Path) -> None:
    # Fuzz finding N1: RTROIInterpretedType 'EXTE\ufffdNAL' went into summaries and back
    # into written RTSTRUCTs.
    from rtmask import read_rtstruct

    path = tmp_path / "RS.dcm"
    path.write_bytes((seed.folder / "RS.dcm").read_bytes())
    _damage_text(path, b"EXTERNAL", b"EXTE\xd2NAL")
    structure_set = read_rtstruct(path, on_invalid="ignore")
    body = structure_set.roi("Body")
    assert body.interpreted_type is None
    assert any("RTROIInterpretedType 'EXTE" in w and "ignored" in w for w in body.warnings)
    assert structure_set.roi("Marker").interpreted_type == "MARKER"


def test_damaged_plan_reference_is_never_written_into_a_dose_sum(
    seed: Seed, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Fuzz finding N1: a damaged UID of the RT Dose was copied into the summed dose.
    import pydicom

    dose = tmp_path / "RD.dcm"
    dose.write_bytes((seed.folder / "RD.dcm").read_bytes())
    uid = pydicom.dcmread(dose).StudyInstanceUID.encode()
    _damage_text(dose, uid, uid[:7] + b"\xd2" + uid[8:])
    output = tmp_path / "sum.dcm"
    code = main(["dose-sum", str(dose), str(seed.folder / "RD.dcm"), "-o", str(output)])
    (line,) = _error_lines(capsys.readouterr().err)
    assert code == 1
    assert f"{output}: not written: StudyInstanceUID" in line
    assert "is not a valid UID" in line
    assert not output.exists()


def test_seg_from_images_of_an_unknown_storage_class_is_one_error(
    seed: Seed, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Fuzz finding N4: highdicom's KeyError escaped write_seg for an image SOPClassUID it
    # has no entry for (one flipped byte: CT Image Storage ...1.1.2 -> ...1.1.23).
    pytest.importorskip("highdicom")
    import shutil

    import pydicom

    case = tmp_path / "case"
    shutil.copytree(seed.folder, case)
    for path in (case / "ct").iterdir():
        ds = pydicom.dcmread(path)
        ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.23"
        ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
        ds.save_as(path)
    out = tmp_path / "out"
    code = main(["convert", str(case), "-o", str(out), "--format", "seg"])
    err = capsys.readouterr().err
    lines = _error_lines(err)
    assert code == 1
    assert any("1.2.840.10008.5.1.4.1.1.23" in line and "SOPClassUID" in line for line in lines)
    assert not (out / "segmentation.dcm").exists()


def test_embedded_dvh_with_a_damaged_number_is_one_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Fuzz finding (long run, seed 8 case 1591): a flipped byte in the breast plan's
    # DVHData ('228.016863m56209') let float()'s ValueError escape `dvh --embedded`.
    from conftest import SHARED_DATA

    source = SHARED_DATA / "dicompyler-breast"
    if not (source / "rtdose.dcm").is_file():
        pytest.skip("../shared/data/dicompyler-breast is absent")
    data = bytearray((source / "rtdose.dcm").read_bytes())
    tag = b"\x04\x30\x58\x00"  # (3004,0058) DVHData, little endian
    start = data.index(tag) + 8  # explicit VR "DS" and a 2-byte length
    value = data[start : start + 200]
    comma = value.index(b"\\")  # the first number, then the second one's digits
    data[start + comma + 2] = ord("m")
    dose = tmp_path / "rtdose.dcm"
    dose.write_bytes(bytes(data))
    code = main(["dvh", str(source / "rtss.dcm"), str(dose), "--json", "--embedded"])
    (line,) = _error_lines(capsys.readouterr().err)
    assert code == 1
    assert "DVHData holds a value that is not a number" in line
    assert str(dose) in line
