"""DICOM outputs of de-identified or incomplete inputs: valid for dciodvfy, nothing dropped.

SEG, RT Structure Set and RT Dose written from images (or a dose) marked
PatientIdentityRemoved YES carry the Patient module's de-identification attributes
(PS3.3 C.7.1.1); a SEG from images without SliceThickness takes the slice spacing
(issue 12: section 2, and section 1 item 6). Synthetic inputs always, TCIA's
LUNG1-001 from ``../shared/data`` when present.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pydicom
import pytest
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence as DicomSequence

from rtmask._dicom import METHOD_NOT_STATED
from rtmask.cli import main
from rtmask.synthetic import write_demo_case

LUNG1 = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "lung1-001" / "LUNG1-001"
#: The Basic Application Confidentiality Profile (PS3.15 E.1), as TCIA's images cite it.
BASIC_PROFILE = ("113100", "DCM", "Basic Application Confidentiality Profile")

pytest.importorskip("highdicom")


def _dciodvfy_errors(path: Path) -> list[str]:
    tool = shutil.which("dciodvfy")
    if tool is None:
        pytest.skip("dciodvfy (dicom3tools) not installed")
    run = subprocess.run([tool, str(path)], capture_output=True, text=True, check=False)
    return [line for line in (run.stdout + run.stderr).splitlines() if line.startswith("Error")]


def _deidentify(folder: Path, *, with_method: bool) -> None:
    """Mark every DICOM file in ``folder`` PatientIdentityRemoved YES (and how, if asked)."""
    for path in folder.glob("*.dcm"):
        ds = pydicom.dcmread(path)
        ds.PatientIdentityRemoved = "YES"
        ds.LongitudinalTemporalInformationModified = "MODIFIED"
        if with_method:
            ds.DeidentificationMethod = "rtmask test profile"
            code = Dataset()
            code.CodeValue, code.CodingSchemeDesignator, code.CodeMeaning = BASIC_PROFILE
            ds.DeidentificationMethodCodeSequence = DicomSequence([code])
        ds.save_as(path)


def _outputs(case: Path, tmp_path: Path) -> dict[str, Path]:
    """SEG, RTSTRUCT and RT Dose written by the CLI from ``case``'s files."""
    rtstruct = str(case / "RS_demo.dcm")
    assert main(["convert", rtstruct, "-o", str(tmp_path / "seg"), "--format", "seg", "-q"]) == 0
    assert main(["convert", rtstruct, "-o", str(tmp_path / "masks"), "--roi", "GTV", "-q"]) == 0
    for summary in (tmp_path / "masks").glob("summary.*"):
        summary.unlink()
    rs = tmp_path / "rs.dcm"
    assert main(["to-rtstruct", str(tmp_path / "masks"), "--image", str(case), "-o", str(rs)]) == 0
    rd = tmp_path / "sum.dcm"
    assert main(["dose-sum", str(case / "RD_demo.dcm"), "-o", str(rd), "-q"]) == 0
    return {"SEG": tmp_path / "seg" / "segmentation.dcm", "RTSTRUCT": rs, "RTDOSE": rd}


@pytest.mark.parametrize("with_method", [False, True], ids=["flag-only", "with-method"])
def test_every_writer_carries_the_deidentification_over(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], with_method: bool
) -> None:
    case = tmp_path / "case"
    write_demo_case(case)
    _deidentify(case, with_method=with_method)
    source_errors = _dciodvfy_errors(case / "CT_0001.dcm")
    # The flag alone is what LUNG1-001 has: the source itself breaks the Type 1C rule.
    assert any("DeidentificationMethod" in e for e in source_errors) != with_method
    for kind, path in _outputs(case, tmp_path / "out").items():
        assert _dciodvfy_errors(path) == [], kind
        ds = pydicom.dcmread(path, stop_before_pixels=True)
        assert ds.PatientIdentityRemoved == "YES", kind
        assert ds.LongitudinalTemporalInformationModified == "MODIFIED", kind
        if with_method:
            assert ds.DeidentificationMethod == "rtmask test profile", kind
            (code,) = ds.DeidentificationMethodCodeSequence
            assert (code.CodeValue, code.CodingSchemeDesignator, code.CodeMeaning) == (
                BASIC_PROFILE
            ), kind
        else:
            assert ds.DeidentificationMethod == METHOD_NOT_STATED, kind
            assert "DeidentificationMethodCodeSequence" not in ds, kind
    capsys.readouterr()


def test_identified_inputs_gain_no_deidentification(tmp_path: Path) -> None:
    case = tmp_path / "case"
    write_demo_case(case)
    for kind, path in _outputs(case, tmp_path / "out").items():
        ds = pydicom.dcmread(path, stop_before_pixels=True)
        for keyword in ("PatientIdentityRemoved", "DeidentificationMethod"):
            assert keyword not in ds, (kind, keyword)


def test_lung1_seg_and_rtstruct_pass_dciodvfy(tmp_path: Path) -> None:
    if not LUNG1.is_dir():
        pytest.skip(f"LUNG1-001 not found at {LUNG1} (../shared/data)")
    image = LUNG1 / "image"
    (rtstruct,) = (LUNG1 / "mask_rtstruct").glob("*.dcm")
    seg, masks, rs = tmp_path / "seg", tmp_path / "masks", tmp_path / "rs.dcm"
    common = ["--image", str(image), "--roi", "GTV-1", "-q"]
    assert main(["convert", str(rtstruct), "-o", str(seg), "--format", "seg", *common]) == 0
    assert main(["convert", str(rtstruct), "-o", str(masks), *common]) == 0
    for summary in masks.glob("summary.*"):
        summary.unlink()
    assert main(["to-rtstruct", str(masks), "--image", str(image), "-o", str(rs), "-q"]) == 0
    inherited = set(_dciodvfy_errors(next(image.glob("*.dcm"))))
    assert any("DeidentificationMethod" in e for e in inherited)  # the reproduction
    for path in (seg / "segmentation.dcm", rs):
        errors = _dciodvfy_errors(path)
        assert not [e for e in errors if "eidentification" in e], (path, errors)
        ds = pydicom.dcmread(path, stop_before_pixels=True)
        assert ds.PatientIdentityRemoved == "YES"
        assert ds.DeidentificationMethod == METHOD_NOT_STATED


# ------------------------------------------------------- item 6: no SliceThickness


def test_seg_from_images_without_slice_thickness_states_the_slice_spacing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    case = tmp_path / "case"
    demo = write_demo_case(case)
    for path in demo.ct.files:
        ds = pydicom.dcmread(path)
        del ds.SliceThickness
        ds.save_as(path)
    out = tmp_path / "out"
    code = main(["convert", str(demo.rtstruct), "-o", str(out), "--format", "seg"])
    err = capsys.readouterr().err
    assert code == 0, err
    assert "Traceback" not in err
    (warning,) = [line for line in err.splitlines() if "SliceThickness" in line]
    assert warning.startswith(f"warning: {out / 'segmentation.dcm'}: ")
    assert f"{len(demo.ct.files)} of {len(demo.ct.files)} images" in warning
    assert str(demo.ct.files[0]) in warning
    spacing = demo.ct.grid.spacing_mm[0]
    assert f"slice spacing {spacing:g} mm" in warning
    seg = pydicom.dcmread(out / "segmentation.dcm", stop_before_pixels=True)
    (measures,) = seg.SharedFunctionalGroupsSequence[0].PixelMeasuresSequence
    assert float(measures.SliceThickness) == pytest.approx(spacing)
    assert _dciodvfy_errors(out / "segmentation.dcm") == []
