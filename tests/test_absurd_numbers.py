"""Numbers no patient can have (issue 12, items 1, 2, 5 and 8), from the fuzzer's reproductions.

Each damaged input is built here with pydicom from a synthetic case (always) and from the
real files in ``../shared/data`` (skipped when absent), and run through the command line
in-process: no traceback, the documented exit code, one clear error line naming the file
and the ROI or DICOM attribute (in the command line's own option names), and no file
written from a refused grid.
"""

from __future__ import annotations

import errno
import json
import math
import mmap
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
import pytest
from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset
from pydicom.tag import Tag

from rtmask import ImageGrid, read_rtstruct
from rtmask._errors import GeometryError, InvalidInputError, RtmaskError, StructureSetWarning
from rtmask._limits import MAX_COORDINATE_MM, MAX_GRID_VOXELS
from rtmask.cli import main
from rtmask.cli._output import json_text, located, reword
from rtmask.dose import read_dose
from rtmask.dvh import EndCaps, contour_volume
from rtmask.dvh._histogram import cumulative_curve
from rtmask.dvh._slabs import slab_faces
from rtmask.export import write_nifti
from rtmask.raster import rasterize
from rtmask.raster._memory import sparse_zeros
from rtmask.rtstruct import ROI, Contour, GeometricType
from rtmask.synthetic import (
    RoiSpec,
    circle_uv,
    to_patient,
    write_ct_series,
    write_rtdose,
    write_rtstruct,
)

_CONTOUR_DATA = Tag(0x3006, 0x0050)
DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"

_GRID = ImageGrid.from_explicit(
    origin_mm=(-40.3, -31.7, 12.5), spacing_mm=(2.5, 1.2, 1.0), shape=(6, 40, 48)
)
#: The discs: 24-gons of radius 10 mm on slices 1 to 4; ROI 2 holds a smaller one.
_N, _RADIUS, _SMALL = 24, 10.0, 6.0
_CENTRE_UV = (24.3, 23.9)


def _ngon_area(n: int, radius: float) -> float:
    """Area of a regular n-gon inscribed in a circle of ``radius`` (mm2)."""
    return n / 2 * radius**2 * math.sin(2 * math.pi / n)


@dataclass(frozen=True)
class _Case:
    folder: Path
    ct_files: tuple[Path, ...]
    rtstruct: Path
    rtdose: Path


def _case(tmp_path: Path) -> _Case:
    """A CT series, an RTSTRUCT (ROI 1 'Disc', ROI 2 'Small') and an RT Dose."""
    folder = tmp_path / "case"
    ct = write_ct_series(folder, _GRID)
    discs = tuple(
        (to_patient(_GRID, k, circle_uv(_CENTRE_UV, _RADIUS, n=_N)), "CLOSED_PLANAR")
        for k in (1, 2, 3, 4)
    )
    small = tuple(
        (to_patient(_GRID, k, circle_uv(_CENTRE_UV, _SMALL, n=_N)), "CLOSED_PLANAR") for k in (2, 3)
    )
    rois = [
        RoiSpec(number=1, name="Disc", contours=discs),
        RoiSpec(number=2, name="Small", contours=small),
    ]
    rtstruct = write_rtstruct(folder / "RS.dcm", rois, ct)
    dose_grid = ImageGrid.from_explicit(
        origin_mm=(-41.0, -32.0, 11.0),
        spacing_mm=(3.0, 3.0, 3.0),
        shape=(7, 18, 19),
        frame_of_reference_uid=ct.frame_of_reference_uid,
    )
    dose = 20.0 + np.arange(dose_grid.n_voxels, dtype=np.float64).reshape(dose_grid.shape) / 100
    rtdose = write_rtdose(tmp_path / "RD.dcm", dose_grid, dose, ct)
    return _Case(folder, tuple(ct.files), rtstruct, rtdose)


def _mutate(path: Path, change: Callable[[Dataset], None], target: Path | None = None) -> Path:
    """Apply ``change`` to the file with pydicom; write it to ``target`` (default: in place)."""
    dataset = pydicom.dcmread(path)
    change(dataset)
    target = target or path
    dataset.save_as(target)
    return target


def _raw_contour_data(
    dataset: Dataset, roi_index: int, contour_index: int, values: list[str]
) -> None:
    """Replace one ContourData by raw text values (NaN is no valid DS for pydicom)."""
    item = dataset.ROIContourSequence[roi_index].ContourSequence[contour_index]
    raw = "\\".join(values).encode()
    if len(raw) % 2:
        raw += b" "
    implicit, little_endian = dataset.original_encoding
    item[_CONTOUR_DATA] = RawDataElement(
        _CONTOUR_DATA, "DS", len(raw), raw, 0, bool(implicit), bool(little_endian)
    )


def _set_contour_value(
    roi_index: int, contour_index: int, position: int, value: str
) -> Callable[[Dataset], None]:
    def change(dataset: Dataset) -> None:
        item = dataset.ROIContourSequence[roi_index].ContourSequence[contour_index]
        values = [str(v) for v in item.ContourData]
        values[position] = value
        _raw_contour_data(dataset, roi_index, contour_index, values)

    return change


def _set_contour(roi_index: int, contour_index: int, value: str) -> Callable[[Dataset], None]:
    def change(dataset: Dataset) -> None:
        item = dataset.ROIContourSequence[roi_index].ContourSequence[contour_index]
        _raw_contour_data(dataset, roi_index, contour_index, [value] * len(item.ContourData))

    return change


def _delete_contour(roi_index: int, contour_index: int) -> Callable[[Dataset], None]:
    def change(dataset: Dataset) -> None:
        del dataset.ROIContourSequence[roi_index].ContourSequence[contour_index]

    return change


def _run(capsys: pytest.CaptureFixture[str], *argv: object) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main([str(a) for a in argv])  # an exception here fails the test: no traceback
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    return code, captured.out, captured.err


def _errors(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.startswith("error:")]


def _one_error(err: str, *needles: str) -> str:
    """The one error line naming every needle (a file, ROI or attribute)."""
    found = [line for line in _errors(err) if all(n in line for n in needles)]
    assert len(found) == 1, err
    return found[0]


def _strict_json(text: str) -> Any:
    def refuse(name: str) -> None:
        raise AssertionError(f"{name} in JSON output")

    return json.loads(text, parse_constant=refuse)


def _copy(source: Path, tmp_path: Path, name: str = "in") -> Path:
    if not source.exists():
        pytest.skip(f"real DICOM test data not found at {source} (../shared/data)")
    target = tmp_path / name
    shutil.copytree(source, target)
    return target


# ------------------------------------------------------------------ item 1: huge coordinates
def test_a_vertex_beyond_100_m_drops_its_contour_as_nan_does(tmp_path: Path) -> None:
    case = _case(tmp_path)
    far = _mutate(case.rtstruct, _set_contour_value(0, 0, 1, "1e38"), tmp_path / "far.dcm")
    nan = _mutate(case.rtstruct, _set_contour_value(0, 0, 1, "NaN"), tmp_path / "nan.dcm")
    with pytest.warns(
        StructureSetWarning,
        match=r"far\.dcm: ROI 1 'Disc', contour 1: .*1e\+38 mm, beyond the 100000 mm",
    ):
        read_far = read_rtstruct(far)
    read_nan = read_rtstruct(nan, on_invalid="ignore")
    for roi_far, roi_nan in zip(read_far.rois, read_nan.rois, strict=True):
        assert roi_far.dropped_contours == roi_nan.dropped_contours
        assert len(roi_far.contours) == len(roi_nan.contours)
    assert read_far.rois[0].dropped_contours == (1,)
    assert len(read_far.rois[0].contours) == 3
    # A vertex at the limit itself is a (strange) coordinate, kept.
    edge = _mutate(
        case.rtstruct, _set_contour_value(0, 0, 1, f"{MAX_COORDINATE_MM:g}"), tmp_path / "edge.dcm"
    )
    assert read_rtstruct(edge, on_invalid="ignore").rois[0].dropped_contours == ()


def _summary_voxels(folder: Path) -> dict[str, float]:
    summary = json.loads((folder / "summary.json").read_text())
    return {row["name"]: row["voxel_count"] for row in summary["rois"]}


def test_convert_and_volumes_drop_a_far_contour(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    case = _case(tmp_path)
    expected_rs = _mutate(case.rtstruct, _delete_contour(0, 0), tmp_path / "expected.dcm")
    code, _, _ = _run(
        capsys, "convert", expected_rs, "--image", case.folder, "-o", tmp_path / "expected"
    )
    assert code == 0
    _mutate(case.rtstruct, _set_contour_value(0, 0, 1, "1e38"))
    code, _, err = _run(capsys, "convert", case.rtstruct, "-o", tmp_path / "out")
    assert code == 1
    _one_error(err, str(case.rtstruct), "ROI 1 'Disc'", "contour(s) 1", "beyond 100 m")
    assert _summary_voxels(tmp_path / "out") == _summary_voxels(tmp_path / "expected")
    code, out, _ = _run(capsys, "volumes", "--json", case.rtstruct)
    assert code in (0, 1)  # a dropped contour may fail the run (item 4)
    disc = _strict_json(out)["rois"][0]
    # Three 24-gons 2.5 mm apart, half-slice end caps.
    assert disc["contour_half_cm3"] == pytest.approx(3 * 2.5 * _ngon_area(_N, _RADIUS) / 1000)


@pytest.mark.parametrize("value", ["1e38", "-9.9e15", "1e308"])
def test_volumes_with_a_contour_far_away(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], value: str
) -> None:
    case = _case(tmp_path)
    _mutate(case.rtstruct, _set_contour(0, 1, value))  # the whole second contour
    code, out, err = _run(capsys, "volumes", "--json", case.rtstruct)
    assert code in (0, 1), err  # a dropped contour may fail the run (item 4)
    disc = _strict_json(out)["rois"][0]
    # Planes 1, 3 and 4 remain: slabs 2.5 (1: half gap to 3 is 2.5, cap 2.5) ...
    lower, upper = slab_faces(np.array([1.0, 3.0, 4.0]) * 2.5, EndCaps.HALF, 0.0)
    assert disc["contour_half_cm3"] == pytest.approx(
        (upper - lower).sum() * _ngon_area(_N, _RADIUS) / 1000
    )
    code, out, err = _run(capsys, "dvh", "--json", case.rtstruct, case.rtdose)
    assert code in (0, 1), err  # a dropped contour may fail the run (item 4)
    assert [roi["name"] for roi in _strict_json(out)["rois"]] == ["Disc", "Small"]


@pytest.mark.parametrize(
    ("folder", "rtstruct"),
    [("dicomrttool-anon", "RS_Body_SpinalCord.dcm"), ("rt-utils-samples/mock_data", "rt.dcm")],
)
def test_real_files_with_a_coordinate_of_1e38(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], folder: str, rtstruct: str
) -> None:
    copy = _copy(DATA / folder, tmp_path)
    original = read_rtstruct(copy / rtstruct, on_invalid="ignore").rois[0]
    path = _mutate(copy / rtstruct, _set_contour_value(0, 0, 1, "1e38"))
    code, _, err = _run(capsys, "convert", path, "-o", tmp_path / "out")
    assert code == 1
    _one_error(err, str(path), f"ROI {original.number} {original.name!r}", "contour(s) 1")
    code, out, err = _run(capsys, "volumes", "--json", path)
    assert code in (0, 1), err  # a dropped contour may fail the run (item 4)
    _strict_json(out)


def test_a_far_vertex_in_the_model_does_not_overflow_the_rasteriser() -> None:
    """A vertex at 1e38 mm (API input, not checked by a reader) rasterises like one at 1e7."""
    grid = ImageGrid.from_explicit(origin_mm=(0, 0, 0), spacing_mm=(1, 1, 1), shape=(1, 30, 30))
    base = np.array([[5.3, 5.2, 0.0], [20.1, 6.7, 0.0], [0.0, 14.45, 0.0], [9.6, 24.3, 0.0]])

    def mask_with_vertex_at(x: float) -> np.ndarray:
        points = base.copy()
        points[2, 0] = x
        contour = Contour(points_mm=points, geometric_type=GeometricType.CLOSED_PLANAR)
        roi = ROI(number=1, name="far", contours=(contour,))
        return rasterize(roi, grid, on_invalid="ignore").array

    reference = mask_with_vertex_at(1e7)
    assert reference.sum() > 100  # the edges to the far vertex cross the whole plane
    for x in (1e12, 1e38, -1e38):
        expected = reference if x > 0 else mask_with_vertex_at(-1e7)
        assert np.array_equal(mask_with_vertex_at(x), expected)


def test_every_array_is_sized_before_it_is_allocated(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(GeometryError, match=r"1 x 1048576 x 1048576 array of bool .* exceeds"):
        sparse_zeros((1, 2**20, 2**20), np.bool_)

    def no_memory(*args: object, **kwargs: object) -> None:
        raise OSError(errno.ENOMEM, "Cannot allocate memory")

    monkeypatch.setattr(mmap, "mmap", no_memory)
    with pytest.raises(GeometryError, match=r"not enough memory for a 64 x 512 x 512 array"):
        sparse_zeros((64, 512, 512), np.float32)
    with pytest.raises(GeometryError, match="exceeds the limit"):
        ImageGrid.from_explicit(origin_mm=(0, 0, 0), spacing_mm=(1, 1, 1), shape=(2048, 1024, 1025))
    with pytest.raises(GeometryError, match=r"reach .* mm from the origin"):
        ImageGrid.from_explicit(origin_mm=(0, 0, 0), spacing_mm=(1, 1e300, 1), shape=(1, 4, 4))
    with pytest.raises(GeometryError, match=r"spacing_mm"):
        ImageGrid.covering([[0, 0, 0], [9e4, 9e4, 9e4]], spacing_mm=(0.1, 0.1, 0.1))
    with pytest.raises(GeometryError, match=r"slices .* give a larger slice spacing"):
        _GRID.with_uniform_slices(1e-12)
    with pytest.raises(InvalidInputError, match=r"need .* bins, more than the limit"):
        cumulative_curve([1e12], [1.0])
    assert MAX_GRID_VOXELS == 2**31


def test_dvh_lattice_of_a_far_contour_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    case = _case(tmp_path)
    _mutate(case.rtstruct, _set_contour_value(0, 0, 0, "-9.9e4"))  # within 100 m, very far
    code, out, err = _run(capsys, "dvh", case.rtstruct, case.rtdose, "--json")
    assert code == 0, err  # the automatic spacing follows the structure's size
    assert len(_strict_json(out)["rois"]) == 2
    code, out, err = _run(
        capsys, "dvh", case.rtstruct, case.rtdose, "--json", "--resolution", "0.05"
    )
    assert code == 1
    line = _one_error(
        err, str(case.rtstruct), "ROI 1 'Disc'", "calculation grid", "--resolution MM"
    )
    assert "resolution_mm" not in line
    assert [roi["name"] for roi in _strict_json(out)["rois"]] == ["Small"]  # the rest done
    code, _, err = _run(
        capsys, "dvh", case.rtstruct, case.rtdose, "--roi", "Small", "--resolution", "0.0005"
    )
    assert code == 1
    _one_error(err, str(case.rtstruct), "ROI 2 'Small'", "coarser --resolution MM")


def test_dvh_of_contour_planes_far_apart_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    case = _case(tmp_path)

    def move_last_plane(dataset: Dataset) -> None:
        values = [float(v) for v in dataset.ROIContourSequence[0].ContourSequence[3].ContourData]
        values[2::3] = [z + 9e4 for z in values[2::3]]  # 90 m above the others
        _raw_contour_data(dataset, 0, 3, [f"{v:.8g}" for v in values])

    _mutate(case.rtstruct, move_last_plane)
    code, out, err = _run(
        capsys, "dvh", case.rtstruct, case.rtdose, "--json", "--resolution", "0.2"
    )
    assert code == 1
    _one_error(err, str(case.rtstruct), "ROI 1 'Disc'", "dose samples", "contour planes")
    assert [roi["name"] for roi in _strict_json(out)["rois"]] == ["Small"]


# ------------------------------------------------------------------ item 2: planes collapse
def test_volumes_when_the_largest_contour_is_not_planar(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    case = _case(tmp_path)
    z = float(
        pydicom.dcmread(case.rtstruct).ROIContourSequence[0].ContourSequence[0].ContourData[2]
    )
    _mutate(case.rtstruct, _set_contour_value(0, 0, 2, f"{z - 60:g}"))  # one vertex off
    code, out, err = _run(capsys, "volumes", "--json", case.rtstruct)
    assert code == 0, err
    disc = _strict_json(out)["rois"][0]
    assert disc["contour_half_cm3"] == pytest.approx(3 * 2.5 * _ngon_area(_N, _RADIUS) / 1000)
    assert any("contour 1 spans 60.00 mm along the normal" in w for w in disc["warnings"])


def test_volume_when_every_contour_is_left_out() -> None:
    tilted = np.array([[0, 0, 0], [10, 0, 0], [10, 10, 5], [0, 10, 9]], dtype=float)
    bent = np.array([[0, 0, 20], [10, 0, 20], [10, 10, 29], [0, 10, 24]], dtype=float)
    roi = ROI(
        number=3,
        name="Bent",
        contours=tuple(
            Contour(points_mm=p, geometric_type=GeometricType.CLOSED_PLANAR) for p in (tilted, bent)
        ),
    )
    volume = contour_volume(roi, single_plane_thickness_mm=2.0)
    assert volume.volume_cm3 == 0.0
    assert volume.n_planes == 0
    assert volume.warnings[-1] == "ROI 3 'Bent': every closed contour was left out; volume 0"
    lower, upper = slab_faces(np.empty(0), EndCaps.HALF, 2.0)
    assert lower.size == upper.size == 0


def _shoelace(points: np.ndarray) -> float:
    x, y = points[:, 0], points[:, 1]
    return float(abs(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))) / 2)


@pytest.mark.parametrize(("position", "value"), [(2, "0"), (2, "1e38"), (1, "1e38")])
def test_rt_utils_sample_with_a_collapsed_plane(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], position: int, value: str
) -> None:
    copy = _copy(DATA / "rt-utils-samples" / "mock_data", tmp_path)
    hole = np.array(
        pydicom.dcmread(copy / "rt.dcm").ROIContourSequence[0].ContourSequence[1].ContourData,
        dtype=float,
    )
    path = _mutate(copy / "rt.dcm", _set_contour_value(0, 0, position, value))
    code, out, err = _run(capsys, "volumes", "--json", path)
    assert code in (0, 1), err  # a dropped contour may fail the run (item 4)
    roi = _strict_json(out)["rois"][0]
    # Only the inner 8-point contour is left, on one plane: its area x the 5 mm slices.
    assert roi["contour_half_cm3"] == pytest.approx(_shoelace(hole.reshape(-1, 3)) * 5.0 / 1000)


# ------------------------------------------------------------------ item 5: absurd geometry
def test_rows_that_the_pixel_data_cannot_fill(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    case = _case(tmp_path)
    for path in case.ct_files:
        _mutate(path, lambda d: setattr(d, "Rows", 65535))
    code, _, err = _run(capsys, "convert", case.rtstruct, "-o", tmp_path / "out")
    assert code == 1
    for path in case.ct_files:
        _one_error(err, str(path), "Rows 65535", "PixelData")
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").rglob("*.nii.gz"))
    code, out, _ = _run(capsys, "info", "--json", case.folder)
    assert code == 0
    assert _strict_json(out)["n_image_series"] == 0


def test_rows_on_the_real_breast_slice(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    copy = _copy(DATA / "dicompyler-breast", tmp_path)
    _mutate(copy / "ct.0.dcm", lambda d: setattr(d, "Rows", 65535))
    code, _, err = _run(capsys, "convert", copy / "rtss.dcm", "-o", tmp_path / "out")
    assert code == 1
    _one_error(err, str(copy / "ct.0.dcm"), "Rows 65535")
    assert not any((tmp_path / "out").rglob("*.nii.gz")) if (tmp_path / "out").exists() else True


def test_a_slice_at_1e308_with_resampling(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    case = _case(tmp_path)
    bad = case.ct_files[5]  # a slice without contours: the rest still converts
    _mutate(bad, lambda d: setattr(d, "ImagePositionPatient", [-1e308, 0, 1e308]))
    code, _, err = _run(
        capsys, "convert", case.rtstruct, "-o", tmp_path / "out", "--resample", "2.5"
    )
    assert code == 1
    _one_error(err, str(bad), "ImagePositionPatient")
    assert len(_errors(err)) == 1
    assert _summary_voxels(tmp_path / "out")["Disc"] > 0


def test_a_slice_90_m_away_with_resampling(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Within the coordinate limit, but resampling it gives more slices than NIfTI holds."""
    case = _case(tmp_path)

    def far(dataset: Dataset) -> None:
        x, y, z = (float(v) for v in dataset.ImagePositionPatient)
        dataset.ImagePositionPatient = [x, y, z + 9e4]

    _mutate(case.ct_files[5], far)
    code, _, err = _run(
        capsys, "convert", case.rtstruct, "-o", tmp_path / "out", "--resample", "2.5"
    )
    assert code == 1
    line = _one_error(err, str(case.rtstruct), "NIfTI-1 holds at most 32767", "--format nrrd")
    assert len(_errors(err)) == 1, line
    assert not (tmp_path / "out").exists()
    code, _, err = _run(
        capsys, "convert", case.rtstruct, "-o", tmp_path / "npz", "--resample", "10",
        "--format", "npz", "--roi", "Disc",
    )  # fmt: skip
    assert code == 0, err
    with np.load(tmp_path / "npz" / "masks.npz") as archive:
        disc = archive["roi/Disc"]
    assert disc.shape == (9002, 40, 48)  # floor((9e4 + 12.5) / 10) + 1 slices
    assert disc.sum() == _summary_voxels(tmp_path / "npz")["Disc"] > 0  # slice 1 (22.5 mm)


def test_out_of_memory_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import rtmask.cli._info as info

    def exhausted(*args: object, **kwargs: object) -> None:
        raise MemoryError

    monkeypatch.setattr(info, "scan", exhausted)
    code, _, err = _run(capsys, "info", tmp_path)
    assert code == 1
    _one_error(err, f"rtmask info {tmp_path}: out of memory")


def test_a_real_slice_at_1e308_with_resampling(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    copy = _copy(DATA / "rt-utils-samples" / "mock_data", tmp_path)
    _mutate(copy / "ct_1.dcm", lambda d: setattr(d, "ImagePositionPatient", [-1e308, 0, 1e308]))
    code, _, err = _run(
        capsys, "convert", copy / "rt.dcm", "-o", tmp_path / "out", "--resample", "2.5"
    )
    assert code == 1
    _one_error(err, str(copy / "ct_1.dcm"), "ImagePositionPatient")


@pytest.mark.parametrize("source", ["synthetic", "dicomrttool-anon"])
def test_pixel_spacing_of_1e308(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], source: str
) -> None:
    if source == "synthetic":
        case = _case(tmp_path)
        folder, files, rtstruct = case.folder, case.ct_files, case.rtstruct
    else:
        folder = _copy(DATA / source, tmp_path)
        files, rtstruct = tuple(sorted(folder.glob("CT_*.dcm"))), folder / "RS_Body_SpinalCord.dcm"
    for path in files:
        _mutate(path, lambda d: setattr(d, "PixelSpacing", [1e308, 1e308]))
    code, _, err = _run(capsys, "convert", rtstruct, "-o", tmp_path / "out")
    assert code == 1
    for path in files:
        _one_error(err, str(path), "PixelSpacing")
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())
    for argv in (("info", "--json", folder), ("volumes", "--json", rtstruct)):
        code, out, err = _run(capsys, *argv)
        assert code == 0, err
        _strict_json(out)


def test_json_never_holds_nan_or_infinity() -> None:
    document = {
        "a": math.nan,
        "b": [math.inf, 1.5, (-math.inf, "x")],
        "c": {"d": np.float64("nan")},
    }
    assert (
        json_text(document, indent=None)
        == '{"a": null, "b": [null, 1.5, [null, "x"]], "c": {"d": null}}'
    )


def test_nifti_refuses_what_its_header_cannot_hold(tmp_path: Path) -> None:
    grid = ImageGrid.from_explicit(origin_mm=(0, 0, 0), spacing_mm=(1, 1, 1), shape=(1, 40000, 1))
    with pytest.raises(GeometryError, match=r"wide\.nii\.gz: NIfTI-1 holds at most 32767"):
        write_nifti(np.zeros(grid.shape, dtype=bool), grid, tmp_path / "wide.nii.gz")
    far = ImageGrid.from_explicit(
        origin_mm=(0, 0, 0), spacing_mm=(1, 1, 1e39 / 1e35), shape=(1, 2, 2)
    )
    assert np.isfinite(far.nifti_affine()).all()
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("source", ["synthetic", "dicompyler-breast"])
def test_dose_without_dose_grid_scaling(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], source: str
) -> None:
    if source == "synthetic":
        case = _case(tmp_path)
        rtstruct, rtdose = case.rtstruct, case.rtdose
    else:
        copy = _copy(DATA / source, tmp_path)
        rtstruct, rtdose = copy / "rtss.dcm", copy / "rtdose.dcm"

    def remove(dataset: Dataset) -> None:
        del dataset.DoseGridScaling

    _mutate(rtdose, remove)
    code, _, err = _run(capsys, "dvh", rtstruct, rtdose)
    assert code == 1
    _one_error(err, str(rtdose), "DoseGridScaling is missing")
    assert len(_errors(err)) == 1
    code, _, err = _run(capsys, "dose-sum", rtdose, "-o", tmp_path / "sum.dcm")
    assert code == 1
    _one_error(err, str(rtdose), "DoseGridScaling")
    assert not (tmp_path / "sum.dcm").exists()


@pytest.mark.parametrize(
    ("keyword", "value", "needle"),
    [
        ("DoseGridScaling", "1e30", "DoseGridScaling 1e+30 makes the largest dose"),
        ("PixelSpacing", [1e308, 1e308], "PixelSpacing"),
        ("ImagePositionPatient", [0, 1e20, 0], "ImagePositionPatient holds 1e+20 mm"),
        (
            "GridFrameOffsetVector",
            [0, 3, 6, 9, 12, 15, 1e300],
            "GridFrameOffsetVector spans 1e+300 mm",
        ),
        ("Rows", 65535, "65535 Rows"),
        ("Rows", 20000, "RT Dose pixel data holds"),
    ],
)
def test_absurd_dose_geometry_or_scaling(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], keyword: str, value: object, needle: str
) -> None:
    case = _case(tmp_path)
    _mutate(case.rtdose, lambda d: setattr(d, keyword, value))
    with pytest.raises(RtmaskError, match=r"RD\.dcm: "):
        read_dose(case.rtdose)
    code, out, err = _run(capsys, "dvh", case.rtstruct, case.rtdose)
    assert code == 1
    _one_error(err, str(case.rtdose), needle)
    assert len(_errors(err)) == 1
    assert out == ""
    code, _, err = _run(capsys, "dose-sum", case.rtdose, "-o", tmp_path / "sum.dcm")
    assert code == 1
    _one_error(err, str(case.rtdose), needle)
    assert not (tmp_path / "sum.dcm").exists()


def test_dose_sum_refuses_an_absurd_sum(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    case = _case(tmp_path)
    for factor in ("1e6", "1e307", "nan", "-1"):
        code, _, err = _run(
            capsys, "dose-sum", case.rtdose, "-o", tmp_path / "sum.dcm", "--scale", factor
        )
        assert code == 1
        _one_error(err, str(case.rtdose), "--scale")
        assert not (tmp_path / "sum.dcm").exists()


# ------------------------------------------------------------------ item 8: messages
def test_relative_dose_messages_name_the_options(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    case = _case(tmp_path)
    _mutate(case.rtdose, lambda d: setattr(d, "DoseUnits", "RELATIVE"))
    code, _, err = _run(capsys, "dvh", case.rtstruct, case.rtdose)
    assert code == 1
    line = _one_error(err, str(case.rtdose), "RELATIVE", "(--prescription GY)")
    assert "prescription_gy" not in line
    code, _, err = _run(capsys, "dose-sum", case.rtdose, "-o", tmp_path / "sum.dcm")
    assert code == 1
    assert "prescription_gy" not in _one_error(
        err, str(case.rtdose), "RELATIVE", "--prescription GY"
    )
    code, out, err = _run(
        capsys, "dvh", case.rtstruct, case.rtdose, "--prescription", "50", "--json"
    )
    assert code == 0, err
    assert len(_strict_json(out)["rois"]) == 2


def test_negative_sum_message_names_no_keyword(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    case = _case(tmp_path)

    def error_dose(dataset: Dataset) -> None:  # the largest stored values become negative
        dataset.PixelRepresentation = 1  # still DoseType PHYSICAL: dose-sum adds it

    error = _mutate(case.rtdose, error_dose, tmp_path / "RD_error.dcm")
    assert read_dose(error).dose_gy.min() < 0
    code, _, err = _run(
        capsys, "dose-sum", error, case.rtdose, "--scale", "1", "0", "-o", tmp_path / "sum.dcm"
    )
    assert code == 1
    line = _one_error(err, str(tmp_path / "sum.dcm"), "negative values", "DoseType ERROR")
    assert "dose_type" not in line
    assert not (tmp_path / "sum.dcm").exists()


def test_roi_outside_the_dose_grid_names_both_files(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    case = _case(tmp_path)
    _mutate(case.rtdose, lambda d: setattr(d, "ImagePositionPatient", [959.0, -32.0, 11.0]))
    code, _, err = _run(capsys, "dvh", case.rtstruct, case.rtdose, "--roi", "Small")
    assert code == 1
    line = _one_error(err, str(case.rtstruct), "ROI 2 'Small'", f"dose grid of {case.rtdose}")
    assert "count_outside" not in line
    assert "=" not in line


def test_volumes_of_a_single_plane_roi_without_images(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    case = _case(tmp_path)
    lone = tmp_path / "lone"
    lone.mkdir()
    path = _mutate(case.rtstruct, _delete_contour(1, 1), lone / "RS.dcm")
    code, out, err = _run(capsys, "volumes", "--json", path)
    assert code == 0, err
    small = _strict_json(out)["rois"][1]
    assert small["contour_half_cm3"] is None
    assert any(
        "--image DIR" in w and "single_plane_thickness_mm" not in w for w in small["warnings"]
    )


def test_reword_and_located() -> None:
    wording = {"(x_mm=...)": "(--x MM)", "x_mm": "--x"}
    assert reword("give (x_mm=...) or a larger x_mm", wording) == "give (--x MM) or a larger --x"
    assert located("ROI 1 'A': bad", Path("/d/RS.dcm")) == "/d/RS.dcm: ROI 1 'A': bad"
    assert located("/d/RS.dcm: bad", "/d/RS.dcm") == "/d/RS.dcm: bad"


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("--resample", "nan"),
        ("--grid-spacing", "inf"),
        ("--resolution", "inf"),
        ("--simplify", "nan"),
    ],
)
def test_non_finite_option_values(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], option: str, value: str
) -> None:
    case = _case(tmp_path)
    argv: tuple[object, ...] = {
        "--resample": ("convert", case.rtstruct, "-o", tmp_path / "out"),
        "--grid-spacing": ("convert", case.rtstruct, "-o", tmp_path / "out"),
        "--resolution": ("dvh", case.rtstruct, case.rtdose),
        "--simplify": ("to-rtstruct", tmp_path, "--image", case.folder, "-o", tmp_path / "RS.dcm"),
    }[option]
    code, _, err = _run(capsys, *argv, option, value)
    assert code in (1, 2)
    _one_error(err, option)
    assert not (tmp_path / "out").exists()
    assert not (tmp_path / "RS.dcm").exists()
