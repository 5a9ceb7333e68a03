"""Writing RT Dose files, and ``rtmask dose-sum``, checked against analytic linear doses.

Expected values come from the analytic field and from plain pydicom (stored value x
DoseGridScaling), never from the writer; the only error allowed is one scaling step.
dciodvfy (dicom3tools) and plastimatch check the files too when installed.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pydicom
import pytest
import SimpleITK as sitk
from numpy.typing import NDArray

from conftest import HFP, HFS
from rtmask import GeometryError, ImageGrid, InvalidInputError
from rtmask._errors import DoseWarning
from rtmask.cli import main
from rtmask.dose import DoseGrid, DoseReference, read_dose, read_dose_reference
from rtmask.export import write_rtdose
from rtmask.synthetic import CTSeries, write_ct_series
from rtmask.synthetic import write_rtdose as write_synthetic_dose

FloatArray = NDArray[np.float64]

GRADIENT_GY_PER_MM = np.array([0.3, -0.4, 0.5])
CENTRE_MM = np.array([-11.0, -6.25, -11.0])
AXIAL = HFS
OBLIQUE = (0.8, 0.6, 0.0, 0.0, 0.0, -1.0)
FRAME_UID = "1.2.826.0.1.3680043.8.498.1"
PLAN_UID = "1.2.826.0.1.3680043.8.498.2"
RT_PLAN_STORAGE = "1.2.840.10008.5.1.4.1.1.481.5"
RT_DOSE_STORAGE = "1.2.840.10008.5.1.4.1.1.481.2"


def _linear(points_mm: FloatArray) -> FloatArray:
    """The analytic dose in Gy (positive over every grid used here) at ``(N, 3)`` points."""
    return np.asarray(60.0 + (points_mm - CENTRE_MM) @ GRADIENT_GY_PER_MM)


def _centres(grid: ImageGrid) -> FloatArray:
    """LPS voxel centres ``(slices, rows, columns, 3)``: plane k at its true normal distance."""
    k, r, c = np.meshgrid(*(np.arange(n) for n in grid.shape), indexing="ij")
    shift = grid.slice_positions_mm[k] - grid.slice_positions_mm[0]
    return np.asarray(
        grid.affine[:3, 3]
        + shift[..., None] * grid.normal
        + r[..., None] * grid.affine[:3, 1]
        + c[..., None] * grid.affine[:3, 2]
    )


def _dose_on(grid: ImageGrid) -> DoseGrid:
    return DoseGrid(
        dose_gy=_linear(_centres(grid).reshape(-1, 3)).reshape(grid.shape),
        grid=grid,
        dose_type="PHYSICAL",
        summation_type="PLAN",
    )


def _reference(**changes: object) -> DoseReference:
    values: dict[str, object] = {
        "patient_name": "Doe^Jane",
        "patient_id": "P-1",
        "study_instance_uid": "1.2.826.0.1.3680043.8.498.3",
        "study_date": "20240102",
        "frame_of_reference_uid": FRAME_UID,
        "referenced_plans": ((RT_PLAN_STORAGE, PLAN_UID),),
    }
    values.update(changes)
    return DoseReference(**values)  # type: ignore[arg-type]


def _grids() -> dict[str, ImageGrid]:
    axial = ImageGrid.from_explicit(
        origin_mm=(-40.0, -30.0, -20.0),
        spacing_mm=(3.0, 2.5, 2.0),
        shape=(7, 20, 30),
        orientation=AXIAL,
        frame_of_reference_uid=FRAME_UID,
    )
    oblique = ImageGrid.from_explicit(
        origin_mm=(-40.0, -30.0, -20.0),
        spacing_mm=(3.0, 2.5, 2.0),
        shape=(7, 20, 30),
        orientation=OBLIQUE,
        frame_of_reference_uid=FRAME_UID,
    )
    normal = np.cross(OBLIQUE[:3], OBLIQUE[3:])
    distances = np.array([0.0, 2.0, 4.0, 7.0, 12.0, 13.5])
    non_uniform = ImageGrid.from_slices(
        positions_mm=np.array([5.0, -3.0, 1.0]) + np.outer(distances[::-1], normal),
        orientation=OBLIQUE,
        pixel_spacing_mm=(2.5, 2.0),
        rows=12,
        columns=16,
        frame_of_reference_uid=FRAME_UID,
    )
    return {"axial": axial, "oblique": oblique, "non_uniform": non_uniform}


def _step(dose: DoseGrid, bits: int) -> float:
    return dose.max_gy / (2**bits - 1)


@pytest.mark.parametrize("name", ["axial", "oblique", "non_uniform"])
@pytest.mark.parametrize("bits", [16, 32])
def test_round_trip_within_one_scaling_step(tmp_path: Path, name: str, bits: int) -> None:
    grid = _grids()[name]
    dose = _dose_on(grid)
    path = write_rtdose(dose, tmp_path / "dose.dcm", reference=_reference(), bits=bits)  # type: ignore[arg-type]
    back = read_dose(path)
    assert back.grid.equals(grid, atol=1e-4)
    assert np.abs(back.dose_gy - dose.dose_gy).max() <= _step(dose, bits)
    assert back.dose_type == "PHYSICAL"
    assert back.summation_type == "PLAN"


def test_plain_pydicom_reads_attributes_and_scaled_pixels(tmp_path: Path) -> None:
    grid = _grids()["non_uniform"]
    dose = _dose_on(grid)
    path = write_rtdose(dose, tmp_path / "dose.dcm", reference=_reference(), bits=32)
    ds = pydicom.dcmread(path)
    assert ds.preamble is not None
    assert ds.file_meta.TransferSyntaxUID == pydicom.uid.ExplicitVRLittleEndian
    assert ds.file_meta.MediaStorageSOPInstanceUID == ds.SOPInstanceUID
    assert ds.SOPClassUID == RT_DOSE_STORAGE
    assert ds.Modality == "RTDOSE"
    assert (ds.PatientName, ds.PatientID, ds.StudyDate) == ("Doe^Jane", "P-1", "20240102")
    assert ds.StudyInstanceUID == "1.2.826.0.1.3680043.8.498.3"
    assert ds.FrameOfReferenceUID == FRAME_UID
    assert ds.DoseUnits == "GY"
    assert (ds.DoseType, ds.DoseSummationType) == ("PHYSICAL", "PLAN")
    assert ds.ReferencedRTPlanSequence[0].ReferencedSOPInstanceUID == PLAN_UID
    assert ds.ReferencedRTPlanSequence[0].ReferencedSOPClassUID == RT_PLAN_STORAGE
    assert ds.FrameIncrementPointer == 0x3004000C
    assert int(ds.NumberOfFrames) == grid.shape[0]
    for keyword in (
        "PatientBirthDate",
        "PatientSex",
        "StudyTime",
        "ReferringPhysicianName",
        "StudyID",
        "AccessionNumber",
        "SeriesNumber",
        "OperatorsName",
        "PositionReferenceIndicator",
        "Manufacturer",
        "InstanceNumber",
        "SliceThickness",
    ):
        assert keyword in ds, keyword
    assert (ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation) == (32, 32, 31, 0)
    # Relative offsets along the normal, first 0, frames in grid order (non-uniform gaps).
    assert np.allclose(
        [float(v) for v in ds.GridFrameOffsetVector], [0.0, 2.0, 4.0, 7.0, 12.0, 13.5], atol=1e-6
    )
    assert np.allclose([float(v) for v in ds.ImagePositionPatient], [5.0, -3.0, 1.0], atol=1e-6)
    assert np.allclose([float(v) for v in ds.ImageOrientationPatient], OBLIQUE, atol=1e-9)
    assert np.allclose([float(v) for v in ds.PixelSpacing], [2.5, 2.0])
    pixels = ds.pixel_array.astype(np.float64)
    assert int(ds.pixel_array.max()) == 2**32 - 1  # the maximum dose uses the full range
    scaling = float(ds.DoseGridScaling)
    assert np.abs(pixels * scaling - dose.dose_gy).max() <= scaling


def test_16_bit_uses_the_16_bit_range(tmp_path: Path) -> None:
    dose = _dose_on(_grids()["axial"])
    ds = pydicom.dcmread(write_rtdose(dose, tmp_path / "d.dcm", reference=_reference(), bits=16))
    assert (ds.BitsAllocated, ds.BitsStored, ds.HighBit) == (16, 16, 15)
    assert ds.pixel_array.dtype == np.uint16
    assert int(ds.pixel_array.max()) == 2**16 - 1
    scaling = float(ds.DoseGridScaling)
    assert scaling == pytest.approx(dose.max_gy / (2**16 - 1), rel=1e-9)
    assert np.abs(ds.pixel_array * scaling - dose.dose_gy).max() <= scaling


def _ct(tmp_path: Path, name: str = "ct") -> CTSeries:
    grid = ImageGrid.from_explicit(
        origin_mm=(-40.0, -30.0, -20.0), spacing_mm=(3.0, 2.5, 2.0), shape=(7, 20, 30)
    )
    return write_ct_series(tmp_path / name, grid, patient_id="P-7", patient_name="Roe^Rick")


def _synthetic_dose(
    path: Path, ct: CTSeries, grid: ImageGrid, plan: str, *, bits: int = 32
) -> Path:
    values = _linear(_centres(grid).reshape(-1, 3)).reshape(grid.shape)
    return write_synthetic_dose(
        path,
        grid,
        values,
        ct,
        referenced_plan_uid=plan,
        bits=bits,  # type: ignore[arg-type]
    )


def test_reference_file_gives_patient_study_frame_and_plans_with_new_uids(tmp_path: Path) -> None:
    ct = _ct(tmp_path)
    source = _synthetic_dose(tmp_path / "plan.dcm", ct, ct.grid, PLAN_UID)
    reference = read_dose_reference(source)
    assert reference.referenced_plans == ((RT_PLAN_STORAGE, PLAN_UID),)
    dose = read_dose(source)
    written = write_rtdose(dose, tmp_path / "copy.dcm", reference=source)
    new, old = pydicom.dcmread(written), pydicom.dcmread(source)
    assert new.SOPInstanceUID != old.SOPInstanceUID
    assert new.SeriesInstanceUID != old.SeriesInstanceUID
    for keyword in ("PatientID", "PatientName", "StudyInstanceUID", "FrameOfReferenceUID"):
        assert new.get(keyword) == old.get(keyword), keyword
    assert [item.ReferencedSOPInstanceUID for item in new.ReferencedRTPlanSequence] == [PLAN_UID]
    assert read_dose(written).equals(dose, atol=_step(dose, 32))


def test_plans_of_several_references_make_a_multi_plan_dose(tmp_path: Path) -> None:
    ct = _ct(tmp_path)
    first = _synthetic_dose(tmp_path / "a.dcm", ct, ct.grid, PLAN_UID)
    second = _synthetic_dose(tmp_path / "b.dcm", ct, ct.grid, PLAN_UID + ".9")
    path = write_rtdose(read_dose(first), tmp_path / "s.dcm", reference=[first, second])
    ds = pydicom.dcmread(path)
    assert ds.DoseSummationType == "MULTI_PLAN"
    assert len(ds.ReferencedRTPlanSequence) == 2
    with pytest.raises(InvalidInputError, match="MULTI_PLAN"):
        write_rtdose(
            read_dose(first), tmp_path / "p.dcm", reference=[first, second], summation_type="PLAN"
        )


def test_no_reference_warns_that_no_plan_is_known(tmp_path: Path) -> None:
    dose = _dose_on(_grids()["axial"])
    with pytest.warns(DoseWarning, match="no RT Plan"):
        path = write_rtdose(dose, tmp_path / "d.dcm")
    ds = pydicom.dcmread(path)
    assert ds.FrameOfReferenceUID == FRAME_UID
    assert "ReferencedRTPlanSequence" not in ds
    assert read_dose(path).equals(dose, atol=_step(dose, 32))


def test_invalid_doses_and_references_are_refused(tmp_path: Path) -> None:
    grid = _grids()["axial"]
    dose = _dose_on(grid)
    negative = dose.with_dose(dose.dose_gy - 100.0)
    with pytest.raises(InvalidInputError, match="ERROR"):
        write_rtdose(negative, tmp_path / "n.dcm", reference=_reference())
    with pytest.raises(GeometryError, match="frames of reference"):
        write_rtdose(dose, tmp_path / "f.dcm", reference=_reference(frame_of_reference_uid="1.2"))
    with pytest.raises(InvalidInputError, match="bits"):
        write_rtdose(dose, tmp_path / "b.dcm", reference=_reference(), bits=8)  # type: ignore[arg-type]
    assert not list(tmp_path.iterdir())  # nothing written, no temporary left


def test_error_dose_is_stored_signed(tmp_path: Path) -> None:
    dose = _dose_on(_grids()["axial"])
    difference = dose.with_dose(dose.dose_gy - 70.0)
    path = write_rtdose(difference, tmp_path / "e.dcm", reference=_reference(), dose_type="ERROR")
    ds = pydicom.dcmread(path)
    assert (ds.PixelRepresentation, ds.DoseType) == (1, "ERROR")
    step = float(np.abs(difference.dose_gy).max()) / (2**31 - 1)
    assert np.abs(ds.pixel_array * float(ds.DoseGridScaling) - difference.dose_gy).max() <= step


# ----------------------------------------------------------------------------- CLI
def test_cli_sums_scaled_doses_on_the_same_grid(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ct = _ct(tmp_path)
    a = _synthetic_dose(tmp_path / "a.dcm", ct, ct.grid, PLAN_UID)
    b = _synthetic_dose(tmp_path / "b.dcm", ct, ct.grid, PLAN_UID + ".9", bits=16)
    out = tmp_path / "sum.dcm"
    code = main(["dose-sum", str(a), str(b), "-o", str(out), "--scale", "2", "0.5"])
    err = capsys.readouterr().err
    assert code == 0
    assert "max" in err
    assert "warning" not in err
    expected = 2.5 * _linear(_centres(ct.grid).reshape(-1, 3)).reshape(ct.grid.shape)
    ds = pydicom.dcmread(out)
    total = ds.pixel_array * float(ds.DoseGridScaling)
    # a is within half a 32-bit step, b within half a 16-bit step (x 0.5), plus one step.
    tolerance = 0.5 * expected.max() / (2**16 - 1) + float(ds.DoseGridScaling) + 1e-6
    assert np.abs(total - expected).max() <= tolerance
    assert ds.PatientID == "P-7"
    assert ds.FrameOfReferenceUID == ct.frame_of_reference_uid
    assert ds.DoseSummationType == "MULTI_PLAN"


def test_cli_resamples_a_shifted_grid_with_a_warning(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ct = _ct(tmp_path)
    # Larger than the CT grid, shifted by fractions of a voxel: covers it completely.
    shifted = ImageGrid.from_explicit(
        origin_mm=(-41.3, -31.1, -23.7),
        spacing_mm=(2.0, 2.0, 2.5),
        shape=(12, 28, 34),
        frame_of_reference_uid=ct.frame_of_reference_uid,
    )
    a = _synthetic_dose(tmp_path / "a.dcm", ct, ct.grid, PLAN_UID)
    b = _synthetic_dose(tmp_path / "b.dcm", ct, shifted, PLAN_UID)
    out = tmp_path / "sum.dcm"
    assert main(["dose-sum", str(a), str(b), "-o", str(out), "--scale", "1", "3"]) == 0
    err = capsys.readouterr().err
    assert "warning:" in err
    assert "resampled" in err
    summed = read_dose(out)
    assert summed.grid.equals(ct.grid, atol=1e-4)
    expected = 4.0 * _linear(_centres(ct.grid).reshape(-1, 3)).reshape(ct.grid.shape)
    # Trilinear interpolation reproduces a linear field; only stored-value rounding is left.
    assert np.abs(summed.dose_gy - expected).max() <= 1e-6
    assert pydicom.dcmread(out).DoseSummationType == "PLAN"


def test_cli_errors_are_one_line_with_exit_codes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ct = _ct(tmp_path)
    a = _synthetic_dose(tmp_path / "a.dcm", ct, ct.grid, PLAN_UID)
    other = _ct(tmp_path, "other")  # a second frame of reference
    foreign = _synthetic_dose(tmp_path / "f.dcm", other, other.grid, PLAN_UID)
    out = tmp_path / "sum.dcm"
    cases = [
        ([str(a), str(tmp_path / "missing.dcm")], [], 1, "not found"),
        ([str(a), str(ct.files[0])], [], 1, "not an RT Dose"),
        ([str(a), str(foreign)], [], 1, "frames of reference differ"),
        ([str(a), str(a)], ["--scale", "2"], 2, "--scale has 1 factor"),
    ]
    for inputs, extra, expected_code, message in cases:
        assert main(["dose-sum", *inputs, "-o", str(out), *extra]) == expected_code
        err = capsys.readouterr().err
        assert message in err
        assert "Traceback" not in err
        assert len([line for line in err.splitlines() if line.startswith("error:")]) == 1
    assert not out.exists()


# ---------------------------------------------------------------- other DICOM readers
#: dicom3tools' dciodvfy aborts on any 32-bit OW pixel data (the planning system's own
#: 32-bit dose in ../shared/data/dicompyler-breast too).
_DCIODVFY_32_BIT_ABORT = "bitsallocated <= bytesinword*8u"


@pytest.mark.parametrize("name", ["axial", "oblique", "non_uniform"])
@pytest.mark.parametrize("bits", [16, 32])
def test_dciodvfy_finds_no_errors(tmp_path: Path, name: str, bits: int) -> None:
    validator = shutil.which("dciodvfy")
    if validator is None:
        pytest.skip("dciodvfy (dicom3tools) not installed")
    path = tmp_path / "rd.dcm"
    write_rtdose(_dose_on(_grids()[name]), path, reference=_reference(), bits=bits)
    result = subprocess.run([validator, str(path)], capture_output=True, text=True, check=False)
    output = result.stdout + result.stderr
    if bits == 32 and _DCIODVFY_32_BIT_ABORT in output:
        pytest.skip("this dciodvfy cannot parse 32-bit pixel data")
    assert result.returncode == 0, output
    assert "RTDose" in output
    errors = [line for line in output.splitlines() if line.startswith("Error")]
    assert errors == [], output


#: Head first supine, and the same patient prone (rows and columns reversed).
_PLASTIMATCH_ORIENTATIONS = {"HFS": HFS, "HFP": HFP}


@pytest.mark.parametrize("orientation", sorted(_PLASTIMATCH_ORIENTATIONS))
@pytest.mark.parametrize("bits", [16, 32])
def test_plastimatch_reads_the_analytic_dose(tmp_path: Path, orientation: str, bits: int) -> None:
    # plastimatch 1.9.4 reads only evenly spaced dose frames, and writes the transposed
    # direction matrix of an oblique grid: axial grids only.
    exe = shutil.which("plastimatch")
    if exe is None:
        pytest.skip("plastimatch not installed")
    grid = ImageGrid.from_explicit(
        origin_mm=(-40.0, -30.0, -20.0),
        spacing_mm=(3.0, 2.5, 2.0),
        shape=(7, 20, 30),
        orientation=_PLASTIMATCH_ORIENTATIONS[orientation],
        frame_of_reference_uid=FRAME_UID,
    )
    dose = _dose_on(grid)
    path = tmp_path / "rd.dcm"
    write_rtdose(dose, path, reference=_reference(), bits=bits)
    out = tmp_path / "dose.nrrd"
    result = subprocess.run(
        [exe, "convert", "--input", str(path), "--output-dose-img", str(out)],
        capture_output=True,
        text=True,
        errors="replace",
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert out.exists(), result.stdout + result.stderr
    image = sitk.ReadImage(str(out))
    values = sitk.GetArrayFromImage(image).astype(np.float64)  # (k, j, i)
    i, j, k = np.meshgrid(*(np.arange(n) for n in values.shape[::-1]), indexing="ij")
    index = np.stack([i, j, k], axis=-1).reshape(-1, 3).astype(np.float64)
    direction = np.array(image.GetDirection()).reshape(3, 3)
    centres = np.array(image.GetOrigin()) + (index * image.GetSpacing()) @ direction.T
    found = values.transpose(2, 1, 0).reshape(-1)  # in (i, j, k) order, as ``index``
    assert found.size == dose.dose_gy.size
    # One scaling step, plus plastimatch's float32 output.
    tolerance = _step(dose, bits) + 1e-6 * dose.max_gy
    np.testing.assert_allclose(found, _linear(centres), rtol=0, atol=tolerance)
