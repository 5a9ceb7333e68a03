"""``rtmask to-rtstruct`` end to end: masks -> RTSTRUCT -> masks again, options and errors.

The masks written are the truth; the RTSTRUCT is read back with rtmask's reader and
rasteriser (voxel for voxel) and with plain pydicom (names, colours, references).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom
import pytest

from conftest import FFS, HFS, OBLIQUE, small_grid
from rtmask import ImageGrid, read_image_series, read_rtstruct
from rtmask._errors import GeometryWarning
from rtmask.cli import _main, _to_rtstruct
from rtmask.export import write_labelmap, write_nifti, write_npz
from rtmask.raster import Mask, rasterize
from rtmask.rtstruct import ROI
from rtmask.synthetic import RoiSpec, circle_uv, to_patient, write_ct_series, write_rtstruct


def _grid(orientation: tuple[float, ...] = HFS) -> ImageGrid:
    return small_grid((9, 30, 41), orientation)


def _arrays(shape: tuple[int, int, int]) -> dict[str, np.ndarray]:
    """Awkward masks: a shell with a hole, two islands, a noisy blob, a one-voxel ROI."""
    k, r, c = np.indices(shape)
    ellipsoid = ((k - 4) / 3.2) ** 2 + ((r - 14) / 9.0) ** 2 + ((c - 18) / 11.0) ** 2
    shell = (ellipsoid <= 1.0) & (ellipsoid > 0.35)
    islands = ((k >= 2) & (k <= 6)) & (
        ((r - 5) ** 2 + (c - 5) ** 2 <= 6) | ((r - 24) ** 2 + (c - 35) ** 2 <= 9)
    )
    noisy = np.random.default_rng(1).random(shape) < 0.5
    noisy[:, :, :28] = False
    noisy[:, 12:, :] = False
    # Off the image border: contours there run along the image's outer pixel edges, which
    # the rasteriser reports as "beyond the image" on oblique grids (rounding).
    noisy[:, :1, :] = False
    noisy[:, :, -1:] = False
    dot = np.zeros(shape, bool)
    dot[3, 20, 3] = True
    return {"PTV shell": shell, "Kidneys": islands, "noise 1": noisy, "dot": dot}


def _case(tmp_path: Path, orientation: tuple[float, ...] = HFS):
    grid = _grid(orientation)
    ct = write_ct_series(tmp_path / "ct", grid, file_names="shuffled")
    series = read_image_series(tmp_path / "ct")
    arrays = _arrays(series.grid.shape)
    folder = tmp_path / "masks"
    folder.mkdir()
    for name, array in arrays.items():
        write_nifti(array, series.grid, folder / f"{name}.nii.gz")
    return ct, series, arrays, folder


def _run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    code = _main.main(["to-rtstruct", *args])
    captured = capsys.readouterr()
    output = captured.out + captured.err
    assert "Traceback" not in output
    return code, output


def _errors(output: str) -> list[str]:
    return [line for line in output.splitlines() if line.startswith("error:")]


def _read_back(path: Path, grid: ImageGrid) -> dict[str, np.ndarray]:
    structure_set = read_rtstruct(path, on_invalid="raise")
    return {roi.name: rasterize(roi, grid).array for roi in structure_set.rois}


@pytest.mark.parametrize(
    "orientation",
    [HFS, FFS, OBLIQUE],
    ids=["head first", "feet first", "oblique"],
)
def test_mask_folder_round_trip(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], orientation: tuple[float, ...]
) -> None:
    ct, series, arrays, folder = _case(tmp_path, orientation)
    out = tmp_path / "out" / "RS.dcm"
    code, output = _run(capsys, str(folder), "--image", str(ct.folder), "-o", str(out))
    assert code == 0, output
    assert "PTV shell" in output
    assert "written" in output
    back = _read_back(out, series.grid)
    assert sorted(back) == sorted(arrays)
    for name, array in arrays.items():
        assert np.array_equal(back[name], array), name

    dataset = pydicom.dcmread(out)
    assert dataset.Modality == "RTSTRUCT"
    assert dataset.StructureSetLabel == "rtmask"
    assert dataset.PatientID == ct.patient_id
    assert dataset.StudyInstanceUID == ct.study_instance_uid
    frame = dataset.ReferencedFrameOfReferenceSequence[0]
    assert frame.FrameOfReferenceUID == ct.frame_of_reference_uid
    roi_numbers = [item.ROINumber for item in dataset.StructureSetROISequence]
    assert roi_numbers == [1, 2, 3, 4]  # natural name order of the files


def test_names_colours_label_and_simplify(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ct, series, arrays, folder = _case(tmp_path)
    out = tmp_path / "RS.dcm"
    names = ["A", "B", "C", "D"]
    colors = ["255,0,0", "0,255,0", "0,0,255", "1,2,3"]
    code, output = _run(
        capsys, str(folder), "--image", str(ct.folder), "-o", str(out),
        "--names", *names, "--colors", *colors, "--label", "Auto seg",
    )  # fmt: skip
    assert code == 0, output
    dataset = pydicom.dcmread(out)
    assert dataset.StructureSetLabel == "Auto seg"
    assert [item.ROIName for item in dataset.StructureSetROISequence] == names
    by_number = {item.ReferencedROINumber: item for item in dataset.ROIContourSequence}
    found = [
        tuple(int(v) for v in by_number[item.ROINumber].ROIDisplayColor)
        for item in dataset.StructureSetROISequence
    ]
    assert found == [(255, 0, 0), (0, 255, 0), (0, 0, 255), (1, 2, 3)]
    # file order: "dot", "Kidneys", "noise 1", "PTV shell"
    back = _read_back(out, series.grid)
    assert np.array_equal(back["A"], arrays["dot"])
    assert np.array_equal(back["D"], arrays["PTV shell"])

    simple = tmp_path / "simple.dcm"
    code, output = _run(
        capsys, str(folder), "--image", str(ct.folder), "-o", str(simple), "--simplify", "0.5"
    )
    assert code == 0, output
    exact = read_rtstruct(out)
    fewer = read_rtstruct(simple)
    assert sum(r.n_points for r in fewer.rois) < sum(r.n_points for r in exact.rois)


def test_keyholes_still_exact(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ct, series, arrays, folder = _case(tmp_path)
    out = tmp_path / "RS.dcm"
    code, output = _run(
        capsys, str(folder), "--image", str(ct.folder), "-o", str(out), "--keyholes"
    )
    assert code == 0, output
    back = _read_back(out, series.grid)
    for name, array in arrays.items():
        assert np.array_equal(back[name], array), name


def test_add_to_existing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ct, series, arrays, folder = _case(tmp_path)
    grid = series.grid
    disc = to_patient(grid, 4, circle_uv((20.0, 12.0), 6.0, n=32))
    existing = write_rtstruct(
        tmp_path / "RS_old.dcm",
        [RoiSpec(number=5, name="Old", contours=((disc, "CLOSED_PLANAR"),), color=(9, 9, 9))],
        ct,
    )
    out = tmp_path / "RS_new.dcm"
    code, output = _run(
        capsys, str(folder), "--image", str(ct.folder), "-o", str(out), "--add-to", str(existing)
    )
    assert code == 0, output
    old = read_rtstruct(existing).roi("Old")
    new = read_rtstruct(out)
    assert new.roi_names[0] == "Old"
    assert sorted(new.roi_names[1:]) == sorted(arrays)
    kept = new.roi("Old")
    assert kept.number == 5
    assert kept.color == (9, 9, 9)
    assert np.allclose(kept.all_points_mm(), old.all_points_mm(), atol=1e-4)
    assert len({roi.number for roi in new.rois}) == len(new.rois)
    for name, array in arrays.items():
        assert np.array_equal(rasterize(new.roi(name), grid).array, array), name


def test_labelmap_npz_and_seg_inputs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ct, series, arrays, _ = _case(tmp_path)
    grid = series.grid
    disjoint = {
        "PTV shell": arrays["PTV shell"],
        "Kidneys": arrays["Kidneys"] & ~arrays["PTV shell"],
    }
    masks = [
        Mask(array=array, grid=grid, roi=ROI(number=i, name=name, color=(10 * i, 50, 60)))
        for i, (name, array) in enumerate(disjoint.items(), start=1)
    ]
    write_labelmap(masks, tmp_path / "labels.nrrd")
    write_npz(disjoint, grid, tmp_path / "masks.npz")
    inputs = [tmp_path / "labels.nrrd", tmp_path / "masks.npz"]
    try:
        from rtmask.export._seg import write_seg
    except ImportError:  # pragma: no cover - the SEG writer is optional
        write_seg = None
    if write_seg is not None:
        write_seg(masks, series, tmp_path / "seg.dcm")
        inputs.append(tmp_path / "seg.dcm")
    for index, source in enumerate(inputs):
        out = tmp_path / f"RS_{index}.dcm"
        code, output = _run(capsys, str(source), "--image", str(ct.folder), "-o", str(out))
        assert code == 0, output
        back = _read_back(out, grid)
        assert sorted(back) == sorted(disjoint), source
        for name, array in disjoint.items():
            assert np.array_equal(back[name], array), (source, name)


def test_errors_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ct, series, arrays, folder = _case(tmp_path)
    out = tmp_path / "RS.dcm"

    code, output = _run(capsys, str(folder), "--image", str(tmp_path / "nowhere"), "-o", str(out))
    assert code == 1
    assert len(_errors(output)) == 1
    assert "nowhere" in output

    empty_dir = tmp_path / "empty"
    empty_dir.mkdir()
    code, output = _run(capsys, str(folder), "--image", str(empty_dir), "-o", str(out))
    assert code == 1
    assert len(_errors(output)) == 1

    code, output = _run(
        capsys, str(tmp_path / "missing"), "--image", str(ct.folder), "-o", str(out)
    )
    assert code == 1
    assert "no such file or folder" in output

    other = ImageGrid.from_explicit(
        origin_mm=(0, 0, 0), spacing_mm=(2.5, 0.9, 1.1), shape=(9, 30, 41)
    )
    wrong = tmp_path / "wrong"
    wrong.mkdir()
    write_nifti(arrays["Kidneys"], other, wrong / "Kidneys.nii.gz")
    code, output = _run(capsys, str(wrong), "--image", str(ct.folder), "-o", str(out))
    assert code == 1
    (line,) = _errors(output)
    assert "Kidneys.nii.gz" in line
    assert "--image" in line

    text = tmp_path / "notes.txt"
    text.write_text("not a mask")
    code, output = _run(capsys, str(text), "--image", str(ct.folder), "-o", str(out))
    assert code == 1
    (line,) = _errors(output)
    assert "notes.txt" in line
    assert "not a mask file" in line

    labels = tmp_path / "labels"
    labels.mkdir()
    write_nifti(arrays["Kidneys"].astype(np.uint8) * 3, series.grid, labels / "a.nii.gz")
    write_nifti(arrays["dot"], series.grid, labels / "b.nii.gz")
    code, output = _run(capsys, str(labels), "--image", str(ct.folder), "-o", str(out))
    assert code == 1
    assert "not only 0 and 1" in output

    code, output = _run(
        capsys, str(folder), "--image", str(ct.folder), "-o", str(out), "--names", "only one"
    )
    assert code == 1
    assert "1 names given for the 4 masks" in output
    assert not out.exists()  # nothing written on failure

    code, output = _run(capsys, str(folder), "--image", str(ct.folder), "-o", str(tmp_path))
    assert code == 1
    assert "is a folder" in output


def test_empty_mask_is_skipped_and_fails_the_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ct, series, arrays, folder = _case(tmp_path)
    write_nifti(np.zeros(series.grid.shape, bool), series.grid, folder / "nothing.nii.gz")
    out = tmp_path / "RS.dcm"
    code, output = _run(capsys, str(folder), "--image", str(ct.folder), "-o", str(out))
    assert code == 1
    assert any("nothing" in line for line in _errors(output))
    back = _read_back(out, series.grid)  # the others are written
    assert sorted(back) == sorted(arrays)


def test_usage_errors_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for argv in (
        ["to-rtstruct", str(tmp_path), "-o", str(tmp_path / "RS.dcm")],  # no --image
        ["to-rtstruct", str(tmp_path), "--image", str(tmp_path)],  # no -o
        ["to-rtstruct", str(tmp_path), "--image", str(tmp_path), "-o", "x.dcm", "--colors", "1,2"],
        [
            "to-rtstruct",
            str(tmp_path),
            "--image",
            str(tmp_path),
            "-o",
            "x.dcm",
            "--colors",
            "1,2,300",
        ],
        ["to-rtstruct", str(tmp_path), "--image", str(tmp_path), "-o", "x.dcm", "--simplify", "x"],
    ):
        with pytest.raises(SystemExit) as exit_info:
            _main.main(argv)
        assert exit_info.value.code == 2
    code, output = _run(
        capsys, str(tmp_path), "--image", str(tmp_path), "-o", "x.dcm", "--simplify", "-1"
    )
    assert code == 2
    assert "--simplify" in output


def test_parse_color() -> None:
    assert _to_rtstruct.parse_color("255, 0,10") == (255, 0, 10)
    for bad in ("1,2", "a,b,c", "1,2,3,4", "-1,0,0"):
        with pytest.raises(Exception, match="colour"):
            _to_rtstruct.parse_color(bad)


def test_labelmap_with_explicit_color_table(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ct, series, arrays, _ = _case(tmp_path)
    labels = np.zeros(series.grid.shape, np.uint8)
    labels[arrays["Kidneys"]] = 4
    labels[arrays["dot"]] = 9
    write_nifti(labels, series.grid, tmp_path / "seg.nii.gz")
    table = tmp_path / "names.ctbl"
    table.write_text("0 Background 0 0 0 0\n4 Kidney_pair 10 20 30 255\n9 Dot 1 2 3 255\n")
    out = tmp_path / "RS.dcm"
    code, output = _run(
        capsys, str(tmp_path / "seg.nii.gz"), "--image", str(ct.folder), "-o", str(out),
        "--color-table", str(table),
    )  # fmt: skip
    assert code == 0, output
    back = _read_back(out, series.grid)
    assert sorted(back) == ["Dot", "Kidney_pair"]
    assert np.array_equal(back["Kidney_pair"], arrays["Kidneys"])
    assert np.array_equal(back["Dot"], arrays["dot"])
    dataset = pydicom.dcmread(out)
    colors = {
        item.ReferencedROINumber: tuple(int(v) for v in item.ROIDisplayColor)
        for item in dataset.ROIContourSequence
    }
    numbers = {item.ROIName: item.ROINumber for item in dataset.StructureSetROISequence}
    assert colors[numbers["Kidney_pair"]] == (10, 20, 30)
    assert numbers == {"Kidney_pair": 4, "Dot": 9}  # label values as ROI numbers


def test_non_uniform_series_warns_and_stays_exact(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    positions = np.array([[-30.0, -20.0, z] for z in (0.0, 2.0, 5.0, 7.0, 12.0)])
    grid = ImageGrid.from_slices(
        positions_mm=positions,
        orientation=HFS,
        pixel_spacing_mm=(0.9, 1.1),
        rows=24,
        columns=30,
    )
    ct = write_ct_series(tmp_path / "ct", grid)
    series = read_image_series(tmp_path / "ct")
    array = np.zeros(series.grid.shape, bool)
    array[1:4, 5:15, 8:20] = True
    array[2, 8:11, 12:15] = False
    (tmp_path / "masks").mkdir()
    with pytest.warns(GeometryWarning):
        write_nifti(array, series.grid, tmp_path / "masks" / "Box.nii.gz")
    out = tmp_path / "RS.dcm"
    code, output = _run(capsys, str(tmp_path / "masks"), "--image", str(ct.folder), "-o", str(out))
    assert code == 0, output
    assert any(
        line.startswith("warning:") and "non-uniform slice spacing" in line
        for line in output.splitlines()
    ), output
    assert np.array_equal(_read_back(out, series.grid)["Box"], array)
