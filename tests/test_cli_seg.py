"""DICOM SEG through the command line: ``convert --format seg``, SEG as convert input, SEG
to RTSTRUCT, and ``info``: the three representations convert into each other.

The SEG is decoded here with plain pydicom (frames placed by their plane positions, bits
unpacked by hand), independently of rtmask's reader, and compared with the NIfTI masks
``convert`` writes from the same structure set.
"""

from __future__ import annotations

import csv
import json
import shutil
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pydicom
import pytest

from conftest import HFS, orthonormal
from conftest import run_cli_output as _run
from rtmask import ImageGrid, read_image_series, read_rtstruct
from rtmask.raster import rasterize
from rtmask.synthetic import RoiSpec, circle_uv, to_patient, write_ct_series, write_rtstruct

pytest.importorskip("highdicom")

FEET_FIRST_OBLIQUE = (0.954, -0.208, 0.215, -0.279, -0.880, 0.384)


def _case(tmp_path: Path, orientation: tuple[float, ...]) -> tuple[Path, Path]:
    """CT (37 x 51 pixels: not a multiple of 8) and an RTSTRUCT with a ring and a disc."""
    grid = ImageGrid.from_explicit(
        origin_mm=(-41.3, 17.9, -130.4),
        spacing_mm=(2.0, 0.9, 1.1),
        shape=(8, 37, 51),
        orientation=orthonormal(orientation),
    )
    folder = tmp_path / "case"
    ct = write_ct_series(folder / "ct", grid, file_names="shuffled")
    centre = (51 * 1.1 / 2, 37 * 0.9 / 2)

    def disc(k: int, radius: float, shift: float = 0.0) -> np.ndarray:
        return to_patient(grid, k, circle_uv((centre[0] + shift, centre[1]), radius, n=48))

    rois = [
        RoiSpec(
            number=3,
            name="Ring",
            color=(0, 200, 40),
            interpreted_type="ORGAN",
            contours=tuple((disc(k, r), "CLOSED_PLANAR") for k in (2, 3, 4) for r in (14.0, 6.0)),
        ),
        RoiSpec(
            number=7,
            name="PTV 70/35",
            color=(255, 0, 0),
            interpreted_type="PTV",
            contours=tuple((disc(k, 5.0, 12.0), "CLOSED_PLANAR") for k in (1, 2, 3, 4, 5)),
        ),
    ]
    return folder, write_rtstruct(folder / "RS.dcm", rois, ct)


def _decode_seg(path: Path, ct_folder: Path) -> dict[str, np.ndarray]:
    """Segments by label, ``(slices, rows, columns)`` bool in the CT's own slice order.

    Independent of rtmask: the CT files are sorted by their position along the normal
    with plain pydicom, and each frame goes to the slice whose ImagePositionPatient it
    repeats.
    """
    headers = [pydicom.dcmread(p, stop_before_pixels=True) for p in ct_folder.iterdir()]
    orientation = np.array(headers[0].ImageOrientationPatient, dtype=float)
    normal = np.cross(orientation[:3], orientation[3:])
    headers.sort(key=lambda h: float(np.dot(np.array(h.ImagePositionPatient, float), normal)))
    positions = np.array([h.ImagePositionPatient for h in headers], dtype=float)
    rows, columns = int(headers[0].Rows), int(headers[0].Columns)
    seg = pydicom.dcmread(path)
    labels = {int(s.SegmentNumber): str(s.SegmentLabel) for s in seg.SegmentSequence}
    n_frames = int(seg.NumberOfFrames)
    bits = np.unpackbits(np.frombuffer(seg.PixelData, dtype=np.uint8), bitorder="little")
    frames = bits[: n_frames * rows * columns].reshape(n_frames, rows, columns).astype(bool)
    result = {label: np.zeros((len(headers), rows, columns), bool) for label in labels.values()}
    for frame, item in zip(frames, seg.PerFrameFunctionalGroupsSequence, strict=True):
        position = np.array(item.PlanePositionSequence[0].ImagePositionPatient, dtype=float)
        slice_index = int(np.argmin(np.linalg.norm(positions - position, axis=1)))
        assert np.linalg.norm(positions[slice_index] - position) < 1e-3
        number = int(item.SegmentIdentificationSequence[0].ReferencedSegmentNumber)
        result[labels[number]][slice_index] |= frame
    return result


def _nifti(path: Path) -> np.ndarray:
    """A convert NIfTI (i = column, j = row, k = slice) as ``(slice, row, column)`` bool."""
    return np.asarray(nib.load(path).dataobj).transpose(2, 1, 0).astype(bool)


@pytest.mark.parametrize("orientation", [HFS, FEET_FIRST_OBLIQUE], ids=["HFS", "oblique-FF"])
def test_seg_equals_nifti_and_comes_back_as_nifti_and_rtstruct(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], orientation: tuple[float, ...]
) -> None:
    folder, rtstruct = _case(tmp_path, orientation)
    code, output = _run(capsys, "convert", str(rtstruct), "-o", str(tmp_path / "nii"))
    assert code == 0, output
    code, output = _run(
        capsys, "convert", str(rtstruct), "-o", str(tmp_path / "seg"), "--format", "seg"
    )
    assert code == 0, output
    seg_path = tmp_path / "seg" / "segmentation.dcm"
    summary = json.loads((tmp_path / "seg" / "summary.json").read_text(encoding="utf-8"))
    assert [r["file"] for r in summary["rois"]] == [
        "segmentation.dcm#1",
        "segmentation.dcm#2",
    ]

    decoded = _decode_seg(seg_path, folder / "ct")
    expected = {"Ring": _nifti(tmp_path / "nii" / "Ring.nii.gz")}
    stem = next(p for p in (tmp_path / "nii").glob("PTV*.nii.gz"))
    expected["PTV 70/35"] = _nifti(stem)
    assert set(decoded) == set(expected)
    for label, mask in expected.items():
        assert mask.any()
        np.testing.assert_array_equal(decoded[label], mask, err_msg=label)

    # SEG -> NIfTI: the same files as from the structure set.
    code, output = _run(
        capsys,
        "convert",
        str(seg_path),
        "--image",
        str(folder / "ct"),
        "-o",
        str(tmp_path / "back"),
    )
    assert code == 0, output
    np.testing.assert_array_equal(_nifti(tmp_path / "back" / "Ring.nii.gz"), expected["Ring"])
    np.testing.assert_array_equal(_nifti(tmp_path / "back" / stem.name), expected["PTV 70/35"])
    # The image series goes with the masks every way: NIfTI beside the SEG too.
    assert summary["image"]["file"] == "image.nii.gz"
    image = np.asarray(nib.load(tmp_path / "nii" / "image.nii.gz").dataobj)
    for other in ("seg", "back"):
        written = nib.load(tmp_path / other / "image.nii.gz")
        np.testing.assert_array_equal(np.asarray(written.dataobj), image, err_msg=other)

    # SEG -> RTSTRUCT -> masks by the pixel-centre rule: the same voxels again.
    out = tmp_path / "from_seg.dcm"
    code, output = _run(
        capsys, "to-rtstruct", str(seg_path), "--image", str(folder / "ct"), "-o", str(out)
    )
    assert code == 0, output
    series = read_image_series(folder / "ct")
    for roi in read_rtstruct(out).rois:
        mask = rasterize(roi, series.grid).array
        np.testing.assert_array_equal(mask, expected[roi.name], err_msg=roi.name)


def test_folder_with_rtstruct_and_seg_converts_both_and_info_lists_the_seg(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder, rtstruct = _case(tmp_path, HFS)
    code, output = _run(
        capsys, "convert", str(rtstruct), "-o", str(tmp_path / "seg"), "--format", "seg"
    )
    assert code == 0, output
    shutil.copy(tmp_path / "seg" / "segmentation.dcm", folder / "SEG.dcm")

    code, output = _run(capsys, "info", str(folder), "--json")
    assert code == 0, output
    report = json.loads(output)
    assert report["n_segmentations"] == 1
    study = report["patients"][0]["studies"][0]
    assert len(study["segmentations"]) == 1

    code, output = _run(capsys, "convert", str(folder), "-o", str(tmp_path / "all"))
    assert code == 0, output
    # Two cases (the archive layout): cases.csv names each one's folder.
    with (tmp_path / "all" / "cases.csv").open(newline="") as stream:
        outputs = {row["structure_set"]: row["output"] for row in csv.DictReader(stream)}
    assert set(outputs) == {"RS.dcm", "SEG.dcm"}
    assert outputs["RS.dcm"] != outputs["SEG.dcm"]
    for name in ("Ring.nii.gz",):
        np.testing.assert_array_equal(
            _nifti(tmp_path / "all" / outputs["SEG.dcm"] / name),
            _nifti(tmp_path / "all" / outputs["RS.dcm"] / name),
        )


def test_seg_format_needs_the_image_grid(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, rtstruct = _case(tmp_path, HFS)
    code, output = _run(
        capsys,
        "convert",
        str(rtstruct),
        "-o",
        str(tmp_path / "out"),
        "--format",
        "seg",
        "--grid-spacing",
        "2",
    )
    assert code == 2
    assert "--format seg" in output
    assert not (tmp_path / "out").exists()


def test_seg_without_its_images_is_one_error_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, rtstruct = _case(tmp_path, HFS)
    code, output = _run(
        capsys, "convert", str(rtstruct), "-o", str(tmp_path / "seg"), "--format", "seg"
    )
    assert code == 0, output
    alone = tmp_path / "alone"
    alone.mkdir()
    shutil.copy(tmp_path / "seg" / "segmentation.dcm", alone / "SEG.dcm")
    code, output = _run(capsys, "convert", str(alone / "SEG.dcm"), "-o", str(tmp_path / "x"))
    assert code == 1
    errors = [line for line in output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1
    assert "SEG.dcm" in errors[0]


def test_seg_format_without_highdicom_says_which_extra_before_any_work(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    _, rtstruct = _case(tmp_path, HFS)
    monkeypatch.setitem(sys.modules, "highdicom", None)  # import highdicom now fails
    code, output = _run(
        capsys, "convert", str(rtstruct), "-o", str(tmp_path / "out"), "--format", "seg"
    )
    assert code == 1
    errors = [line for line in output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1
    assert "rtmask[seg]" in errors[0]
    assert not (tmp_path / "out").exists()
