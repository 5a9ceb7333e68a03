"""``rtmask to-seg``: masks on the image grid or on a grid of their own -> one DICOM SEG.

The predictions are written with nibabel (not rtmask). The SEG is decoded here with plain
pydicom (bits unpacked by hand, each frame placed on the CT slice whose position it
repeats), and the expected masks come from a nearest-centre resampling computed in this
file with numpy from the CT headers (read by pydicom) and the prediction's affine.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pydicom
import pytest

from conftest import HFS, OBLIQUE, small_grid
from rtmask import read_image_series
from rtmask.cli import main
from rtmask.export import write_nifti, write_seg
from rtmask.names import standard_colour
from rtmask.raster import Mask
from rtmask.rtstruct import ROI
from rtmask.synthetic import write_ct_series

hd = pytest.importorskip("highdicom")

LABELS = {"background": 0, "Liver": 1, "Spleen": 2, "Kidney_L": 3}
#: Sphere centres (mm from the image centre, patient LPS) and radii of labels 1, 2, 3.
SPHERES = (((-9.0, -4.0, -3.0), 8.0), ((8.0, 5.0, 2.0), 6.5), ((12.0, -8.0, 6.0), 4.0))
SHAPE = (16, 50, 56)  # CT slices, rows, columns: 2.5 x 0.9 x 1.1 mm voxels


def _run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    try:
        code = main(["to-seg", *args])
    except SystemExit as stop:  # argparse's usage errors
        code = int(str(stop.code))
    captured = capsys.readouterr()
    output = captured.out + captured.err
    assert "Traceback" not in output
    return code, output


def _errors(output: str) -> list[str]:
    return [line for line in output.splitlines() if line.startswith("error:")]


def _ct_headers(folder: Path) -> list[pydicom.Dataset]:
    """The CT headers, sorted along the plane normal (plain pydicom)."""
    headers = [pydicom.dcmread(p, stop_before_pixels=True) for p in folder.iterdir()]
    orientation = np.array(headers[0].ImageOrientationPatient, dtype=float)
    normal = np.cross(orientation[:3], orientation[3:])
    headers.sort(key=lambda h: float(np.dot(np.array(h.ImagePositionPatient, float), normal)))
    return headers


def _ct_centres(folder: Path) -> np.ndarray:
    """Patient (LPS, mm) centres of every CT voxel, ``(slices, rows, columns, 3)``."""
    headers = _ct_headers(folder)
    orientation = np.array(headers[0].ImageOrientationPatient, dtype=float)
    row_step, column_step = (float(v) for v in headers[0].PixelSpacing)
    rows, columns = int(headers[0].Rows), int(headers[0].Columns)
    r, c = np.meshgrid(np.arange(rows), np.arange(columns), indexing="ij")
    in_plane = (
        c[..., None] * column_step * orientation[:3] + r[..., None] * row_step * orientation[3:]
    )
    origins = np.array([h.ImagePositionPatient for h in headers], dtype=float)
    return origins[:, None, None, :] + in_plane[None]


def _nearest(data_ijk: np.ndarray, affine_ras: np.ndarray, centres: np.ndarray) -> np.ndarray:
    """Each centre takes the value of the file voxel holding it (0 outside the file)."""
    lps_to_ras = np.array([-1.0, -1.0, 1.0])
    points = centres.reshape(-1, 3) * lps_to_ras
    index = (np.linalg.inv(affine_ras) @ np.c_[points, np.ones(len(points))].T)[:3].T
    nearest = np.floor(index + 0.5).astype(int)
    inside = np.all((nearest >= 0) & (nearest < data_ijk.shape), axis=1)
    values = np.zeros(len(points), data_ijk.dtype)
    i, j, k = nearest[inside].T
    values[inside] = data_ijk[i, j, k]
    return values.reshape(centres.shape[:-1])


def _decode_seg(path: Path, ct_folder: Path) -> dict[str, np.ndarray]:
    """Segments by label, ``(slices, rows, columns)`` bool in the CT's slice order."""
    headers = _ct_headers(ct_folder)
    positions = np.array([h.ImagePositionPatient for h in headers], dtype=float)
    rows, columns = int(headers[0].Rows), int(headers[0].Columns)
    seg = pydicom.dcmread(path)
    assert seg.Modality == "SEG"
    assert seg.SegmentationType == "BINARY"
    assert seg.FrameOfReferenceUID == headers[0].FrameOfReferenceUID
    shared = seg.SharedFunctionalGroupsSequence[0]
    np.testing.assert_allclose(
        [float(v) for v in shared.PlaneOrientationSequence[0].ImageOrientationPatient],
        [float(v) for v in headers[0].ImageOrientationPatient],
        atol=1e-6,
    )
    labels = {int(s.SegmentNumber): str(s.SegmentLabel) for s in seg.SegmentSequence}
    n_frames = int(seg.NumberOfFrames)
    bits = np.unpackbits(np.frombuffer(seg.PixelData, dtype=np.uint8), bitorder="little")
    frames = bits[: n_frames * rows * columns].reshape(n_frames, rows, columns).astype(bool)
    result = {label: np.zeros((len(headers), rows, columns), bool) for label in labels.values()}
    for frame, item in zip(frames, seg.PerFrameFunctionalGroupsSequence, strict=True):
        position = np.array(item.PlanePositionSequence[0].ImagePositionPatient, dtype=float)
        slice_index = int(np.argmin(np.linalg.norm(positions - position, axis=1)))
        assert np.linalg.norm(positions[slice_index] - position) < 1e-3
        # One segment: highdicom states it once, in the shared functional groups.
        identification = item.get("SegmentIdentificationSequence") or (
            shared.SegmentIdentificationSequence
        )
        number = int(identification[0].ReferencedSegmentNumber)
        result[labels[number]][slice_index] |= frame
    return result


def _segment_items(path: Path) -> dict[str, pydicom.Dataset]:
    return {str(s.SegmentLabel): s for s in pydicom.dcmread(path).SegmentSequence}


def _rotation(degrees_z: float, degrees_x: float) -> np.ndarray:
    a, b = np.radians(degrees_z), np.radians(degrees_x)
    rz = np.array([[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1]])
    rx = np.array([[1, 0, 0], [0, np.cos(b), -np.sin(b)], [0, np.sin(b), np.cos(b)]])
    return np.asarray(rz @ rx)


def _prediction(centre_lps: np.ndarray, size: int = 36) -> tuple[np.ndarray, np.ndarray]:
    """A 1.5 mm label map of :data:`SPHERES` with its own axes: ``(i, j, k)`` data, RAS affine.

    Its axes are turned (7 degrees about z, 4 about x) and its first axis flipped against
    the patient's, and its centre is off the image centre by a fraction of a voxel.
    """
    axes = _rotation(7.0, 4.0) @ np.diag([-1.0, 1.0, 1.0]) * 1.5
    origin = centre_lps - axes @ np.full(3, (size - 1) / 2) + [0.37, -0.21, 0.13]
    index = np.indices((size,) * 3).reshape(3, -1)
    points = (axes @ index).T + origin
    labels = np.zeros(len(points), np.uint8)
    for value, (offset, radius) in enumerate(SPHERES, start=1):
        labels[np.linalg.norm(points - centre_lps - offset, axis=1) <= radius] = value
    affine_lps = np.eye(4)
    affine_lps[:3, :3], affine_lps[:3, 3] = axes, origin
    return labels.reshape((size,) * 3), np.diag([-1.0, -1.0, 1.0, 1.0]) @ affine_lps


def _ct(tmp_path: Path, orientation: tuple[float, ...] = HFS) -> tuple[Path, np.ndarray]:
    """The CT folder and the patient position of its centre."""
    ct = write_ct_series(tmp_path / "ct", small_grid(SHAPE, orientation), file_names="shuffled")
    centres = _ct_centres(ct.folder)
    return ct.folder, centres[SHAPE[0] // 2, SHAPE[1] // 2, SHAPE[2] // 2]


def _write_prediction(folder: Path, data: np.ndarray, affine_ras: np.ndarray) -> Path:
    folder.mkdir(exist_ok=True)
    path = folder / "case_0001.nii.gz"
    nib.save(nib.Nifti1Image(data, affine_ras), path)
    (folder / "dataset.json").write_text(json.dumps({"labels": LABELS}))
    return path


@pytest.mark.parametrize("orientation", [HFS, OBLIQUE], ids=["HFS", "oblique"])
@pytest.mark.parametrize("cropped", [False, True], ids=["whole", "cropped"])
def test_prediction_on_its_own_grid(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    orientation: tuple[float, ...],
    cropped: bool,
) -> None:
    ct, centre = _ct(tmp_path, orientation)
    data, affine = _prediction(centre)
    if cropped:  # the labelled bounding box and one voxel more: origin moved, axes kept
        nonzero = np.argwhere(data)
        start, stop = nonzero.min(axis=0) - 1, nonzero.max(axis=0) + 2
        data = data[tuple(slice(a, b) for a, b in zip(start, stop, strict=True))]
        affine = affine @ np.r_[np.c_[np.eye(3), start], [[0, 0, 0, 1]]]
    source = _write_prediction(tmp_path / "pred", np.ascontiguousarray(data), affine)
    out = tmp_path / "out" / "SEG.dcm"
    code, output = _run(capsys, str(source), "--image", str(ct), "-o", str(out))
    assert code == 0, output
    text = " ".join(output.split())
    assert "case_0001.nii.gz: resampled onto the image grid by nearest neighbour" in text
    assert "source grid" in text
    assert "largest displacement" in text
    assert "voxels changed" in text
    assert "3 segment(s), BINARY" in text
    expected = _nearest(data, affine, _ct_centres(ct))
    decoded = _decode_seg(out, ct)
    assert list(decoded) == ["Liver", "Spleen", "Kidney_L"]
    for value, name in enumerate(decoded, start=1):
        assert (expected == value).sum() > 100
        np.testing.assert_array_equal(decoded[name], expected == value, err_msg=name)
    assert sorted(p.name for p in out.parent.iterdir()) == ["SEG.dcm"]


def test_image_grid_crop_is_a_pure_copy(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ct, centre = _ct(tmp_path)
    centres = _ct_centres(ct)
    labels = np.zeros(SHAPE, np.uint8)
    labels[np.linalg.norm(centres - centre, axis=-1) <= 9.0] = 1
    labels[np.linalg.norm(centres - centre - [12.0, 8.0, 0.0], axis=-1) <= 5.0] = 2
    box = (slice(3, 13), slice(10, 44), slice(8, 50))
    # The box of the CT grid as a NIfTI (i = column, j = row, k = slice), from the headers.
    headers = _ct_headers(ct)
    step = np.array(headers[1].ImagePositionPatient, float) - np.array(
        headers[0].ImagePositionPatient, float
    )
    orientation = np.array(headers[0].ImageOrientationPatient, float)
    row_step, column_step = (float(v) for v in headers[0].PixelSpacing)
    affine_lps = np.eye(4)
    affine_lps[:3, :3] = np.column_stack(
        [orientation[:3] * column_step, orientation[3:] * row_step, step]
    )
    affine_lps[:3, 3] = centres[box[0].start, box[1].start, box[2].start]
    crop = np.ascontiguousarray(labels[box].transpose(2, 1, 0))
    source = _write_prediction(tmp_path / "pred", crop, np.diag([-1.0, -1.0, 1, 1]) @ affine_lps)
    out = tmp_path / "SEG.dcm"
    code, output = _run(capsys, str(source), "--image", str(ct), "-o", str(out))
    assert code == 0, output
    text = " ".join(output.split())
    assert "copied (its voxel centres are image voxel centres" in text
    assert "largest displacement 0 mm" in text
    assert ": 0 voxels changed" in text
    decoded = _decode_seg(out, ct)
    assert list(decoded) == ["Liver", "Spleen"]
    np.testing.assert_array_equal(decoded["Liver"], labels == 1)
    np.testing.assert_array_equal(decoded["Spleen"], labels == 2)


def test_masks_on_the_image_grid_round_trip_exactly(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ct, centre = _ct(tmp_path, OBLIQUE)
    centres = _ct_centres(ct)
    k, r, c = np.indices(SHAPE)
    arrays = {
        "Heart": np.linalg.norm(centres - centre, axis=-1) <= 11.0,
        "noise": (np.random.default_rng(3).random(SHAPE) < 0.4) & (c > 30),
        "dot": (k == 2) & (r == 7) & (c == 3),
    }
    arrays["Heart"] &= ~arrays["noise"]
    folder = tmp_path / "masks"
    folder.mkdir()
    for name, array in arrays.items():
        write_nifti(array, small_grid(SHAPE, OBLIQUE), folder / f"{name}.nii.gz")
    out = tmp_path / "SEG.dcm"
    code, output = _run(capsys, str(folder), "--image", str(ct), "-o", str(out), "-v")
    assert code == 0, output
    assert "resampled" not in output
    decoded = _decode_seg(out, ct)
    assert sorted(decoded) == sorted(arrays)
    for name, array in arrays.items():
        np.testing.assert_array_equal(decoded[name], array, err_msg=name)

    # --names, --colors and --label: the segments' labels, colours, the series description.
    renamed = tmp_path / "renamed.dcm"
    code, output = _run(
        capsys, str(folder), "--image", str(ct), "-o", str(renamed),
        "--names", "A", "B", "C", "--colors", "255,0,0", "0,255,0", "0,0,255",
        "--label", "AI contours",
    )  # fmt: skip
    assert code == 0, output
    items = _segment_items(renamed)
    assert list(items) == ["A", "B", "C"]
    for item, rgb in zip(items.values(), [(255, 0, 0), (0, 255, 0), (0, 0, 255)], strict=True):
        lab = hd.color.CIELabColor.from_rgb(*rgb).value
        assert tuple(int(v) for v in item.RecommendedDisplayCIELabValue) == lab
    seg = pydicom.dcmread(renamed)
    assert seg.SeriesDescription == "AI contours"
    assert seg.ContentLabel == "AI CONTOURS"  # a Code String: capitals and spaces
    np.testing.assert_array_equal(_decode_seg(renamed, ct)["A"], arrays["dot"])  # name order


def test_labels_pick_and_colours_match_to_rtstruct(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ct, centre = _ct(tmp_path)
    data, affine = _prediction(centre)
    source = _write_prediction(tmp_path / "pred", data, affine)
    out = tmp_path / "SEG.dcm"
    args = (str(source), "--image", str(ct), "--labels", "spleen, Liver")
    code, output = _run(capsys, *args, "-o", str(out))
    assert code == 0, output
    expected = _nearest(data, affine, _ct_centres(ct))
    decoded = _decode_seg(out, ct)
    assert list(decoded) == ["Spleen", "Liver"]
    np.testing.assert_array_equal(decoded["Spleen"], expected == 2)
    np.testing.assert_array_equal(decoded["Liver"], expected == 1)
    # Colours: Liver has its standard one, Spleen the palette's first, as in an RTSTRUCT.
    code, output = main(["to-rtstruct", *args, "-o", str(tmp_path / "RS.dcm")]), ""
    assert code == 0
    rs = pydicom.dcmread(tmp_path / "RS.dcm")
    names = {item.ROINumber: item.ROIName for item in rs.StructureSetROISequence}
    rs_colours = {
        names[item.ReferencedROINumber]: tuple(int(v) for v in item.ROIDisplayColor)
        for item in rs.ROIContourSequence
    }
    liver = standard_colour("Liver")
    assert liver is not None
    assert rs_colours["Liver"] == liver
    assert standard_colour("Spleen") is None
    for name, item in _segment_items(out).items():
        lab = hd.color.CIELabColor.from_rgb(*rs_colours[name]).value
        assert tuple(int(v) for v in item.RecommendedDisplayCIELabValue) == lab, name


def test_empty_masks_are_left_out_and_fail_the_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ct, _ = _ct(tmp_path)
    grid = small_grid(SHAPE)
    folder = tmp_path / "masks"
    folder.mkdir()
    box = np.zeros(SHAPE, bool)
    box[4:9, 10:20, 20:30] = True
    write_nifti(box, grid, folder / "Box.nii.gz")
    write_nifti(np.zeros(SHAPE, bool), grid, folder / "Nothing.nii.gz")
    out = tmp_path / "SEG.dcm"
    code, output = _run(capsys, str(folder), "--image", str(ct), "-o", str(out))
    assert code == 1
    (error,) = _errors(output)
    assert "'Nothing' not written: empty mask" in error
    assert "warning:" not in output  # its warning would only repeat the error
    np.testing.assert_array_equal(_decode_seg(out, ct)["Box"], box)
    # Only empty masks: nothing to write.
    (folder / "Box.nii.gz").unlink()
    out.unlink()
    code, output = _run(capsys, str(folder), "--image", str(ct), "-o", str(out))
    assert code == 1
    (error,) = _errors(output)
    assert "every mask is empty" in error
    assert not out.exists()


def _refusals(tmp_path: Path, ct: Path, centre: np.ndarray) -> dict[tuple[str, ...], str]:
    """Bad inputs (argument lists before ``-o``) and a text of the one error line each."""
    data, affine = _prediction(centre)
    case = _write_prediction(tmp_path / "pred", data, affine)
    far = tmp_path / "far" / "far.nii.gz"
    _write_prediction(
        far.parent, data, affine @ np.r_[np.c_[np.eye(3), [0, 0, 200]], [[0] * 3 + [1]]]
    )
    (far.parent / "case_0001.nii.gz").rename(far)
    poking = tmp_path / "poking" / "case_0001.nii.gz"
    shifted = affine.copy()
    shifted[2, 3] += 14.0  # the spheres reach about 5 mm beyond the last slice
    _write_prediction(poking.parent, data, shifted)
    nan = tmp_path / "nan" / "case_0001.nii.gz"
    broken = affine.copy()
    broken[0, 3] = np.nan
    _write_prediction(nan.parent, data, broken)
    short = tmp_path / "short" / "case_0001.nii.gz"
    _write_prediction(short.parent, data, affine)
    (short.parent / "dataset.json").write_text(json.dumps({"labels": {"background": 0, "L": 1}}))
    image = ("--image", str(ct))
    return {
        (str(case), *image, "--labels", "Heart"): "no ROI named 'Heart'",
        (str(short), *image): "label(s) 2, 3 are not in",
        (str(far), *image): "far.nii.gz: the labelled voxels lie entirely outside the image",
        (str(poking), *image): "beyond the image (tolerance 1 mm)",
        (str(nan), *image): "voxel-to-patient matrix holds NaN",
        (
            str(case),
            *image,
            "--resample-rule",
            "exact",
        ): "use --resample-rule nearest (or majority, for binary masks",
        (str(case), "--image", str(tmp_path / "nowhere")): "nowhere: no such folder",
        (str(tmp_path / "none.nii.gz"), *image): "none.nii.gz: no such file or folder",
    }


def test_bad_input_is_one_line_and_writes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ct, centre = _ct(tmp_path)
    out = tmp_path / "out" / "SEG.dcm"
    for args, text in _refusals(tmp_path, ct, centre).items():
        code, output = _run(capsys, *args, "-o", str(out))
        assert code == 1, (args, output)
        (error,) = _errors(output)
        assert text in " ".join(output.split()), (args, output)
        assert not out.exists()
        assert not out.parent.exists() or not any(out.parent.iterdir())
    # A wider --tolerance takes the prediction that pokes out.
    poking = tmp_path / "poking" / "case_0001.nii.gz"
    code, output = _run(capsys, str(poking), "--image", str(ct), "-o", str(out), "--tolerance", "8")
    assert code == 0, output
    # The output is a folder.
    code, output = _run(capsys, str(poking), "--image", str(ct), "-o", str(tmp_path))
    assert code == 1
    (error,) = _errors(output)
    assert "is a folder" in error
    # Usage errors: exit code 2, the option named.
    for extra in (("--tolerance", "-1"), ("--labels", ","), ("--resample-rule", "linear")):
        code, output = _run(capsys, str(poking), "--image", str(ct), "-o", "x.dcm", *extra)
        assert code == 2
        assert extra[0] in output
    code, output = _run(capsys, str(poking), "-o", "x.dcm")
    assert code == 2
    assert "--image" in output


def test_a_seg_of_another_frame_of_reference_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ct, centre = _ct(tmp_path)
    data, affine = _prediction(centre)
    source = _write_prediction(tmp_path / "pred", data, affine)
    first = tmp_path / "first.dcm"
    code, output = _run(capsys, str(source), "--image", str(ct), "-o", str(first))
    assert code == 0, output
    # The SEG as input: on its own series a pure copy ...
    again = tmp_path / "again.dcm"
    code, output = _run(capsys, str(first), "--image", str(ct), "-o", str(again))
    assert code == 0, output
    first_masks, again_masks = _decode_seg(first, ct), _decode_seg(again, ct)
    for name, mask in first_masks.items():
        np.testing.assert_array_equal(again_masks[name], mask, err_msg=name)
    # ... on the same geometry in another frame of reference: refused.
    other = write_ct_series(tmp_path / "other", small_grid(SHAPE)).folder
    out = tmp_path / "other.dcm"
    code, output = _run(capsys, str(first), "--image", str(other), "-o", str(out))
    assert code == 1
    (error,) = _errors(output)
    assert "first.dcm" in error
    assert "FrameOfReferenceUID" in error or "frame of reference" in error
    assert not out.exists()


def test_without_highdicom_one_line_names_the_extra(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    ct, centre = _ct(tmp_path)
    source = _write_prediction(tmp_path / "pred", *_prediction(centre))
    monkeypatch.setitem(sys.modules, "highdicom", None)  # import highdicom now fails
    out = tmp_path / "out" / "SEG.dcm"
    code, output = _run(capsys, str(source), "--image", str(ct), "-o", str(out))
    assert code == 1
    (error,) = _errors(output)
    assert "pip install 'rtmask[seg]'" in error
    assert not out.parent.exists()


def test_a_fractional_seg_stays_fractional(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ct, centre = _ct(tmp_path)
    centres = _ct_centres(ct)
    # Fractions falling off linearly over 4 mm outside a 6 mm sphere; 255 steps stored.
    fraction = np.clip((10.0 - np.linalg.norm(centres - centre, axis=-1)) / 4.0, 0.0, 1.0)
    steps = np.round(fraction * 255).astype(np.uint8)
    series = read_image_series(ct)
    mask = Mask(
        array=(steps / 255).astype(np.float32),
        grid=series.grid,
        roi=ROI(number=4, name="Bladder"),
    )
    write_seg([mask], series, tmp_path / "fractional.dcm")
    out = tmp_path / "SEG.dcm"
    code, output = _run(
        capsys, str(tmp_path / "fractional.dcm"), "--image", str(ct), "-o", str(out)
    )
    assert code == 0, output
    assert "1 segment(s), FRACTIONAL" in " ".join(output.split())
    seg = pydicom.dcmread(out)
    assert seg.SegmentationType == "FRACTIONAL"
    assert int(seg.MaximumFractionalValue) == 255
    headers = _ct_headers(ct)
    positions = np.array([h.ImagePositionPatient for h in headers], dtype=float)
    frames = np.frombuffer(seg.PixelData, np.uint8)[: int(seg.NumberOfFrames) * SHAPE[1] * SHAPE[2]]
    decoded = np.zeros(SHAPE, np.uint8)
    for frame, item in zip(
        frames.reshape(-1, SHAPE[1], SHAPE[2]), seg.PerFrameFunctionalGroupsSequence, strict=True
    ):
        position = np.array(item.PlanePositionSequence[0].ImagePositionPatient, dtype=float)
        decoded[int(np.argmin(np.linalg.norm(positions - position, axis=1)))] = frame
    assert (steps > 0).sum() > 100
    np.testing.assert_array_equal(decoded, steps)
