"""rtmask.convert as a library: ROI selection, options, containers, messages, pickling."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import numpy as np
import pytest

from conftest import HFS
from rtmask import ImageGrid
from rtmask.convert import (
    ConversionOptions,
    ConversionReport,
    convert_masks,
    convert_structure_set,
    plan_rois,
)
from rtmask.errors import GeometryWarning, InvalidInputError, RtmaskError
from rtmask.raster import Mask
from rtmask.rtstruct import ROI, Contour, GeometricType, StructureSet

SPACING = (0.9, 1.1)  # between rows, between columns (mm)
ORIGIN = (-20.0, 7.0)  # x, y of voxel [., 0, 0] (mm)
POSITIONS = (-40.0, -37.5, -35.0, -32.5, -30.0)
#: The same slices with one missing: gaps of 2.5 mm and one of 5 mm.
UNEVEN = (-40.0, -37.5, -35.0, -30.0, -27.5)


def _grid(positions: tuple[float, ...] = POSITIONS) -> ImageGrid:
    return ImageGrid.from_slices(
        positions_mm=[(ORIGIN[0], ORIGIN[1], z) for z in positions],
        orientation=HFS,
        pixel_spacing_mm=SPACING,
        rows=10,
        columns=12,
    )


def _square(z: float, columns: tuple[float, float], rows: tuple[float, float]) -> Contour:
    """A square whose edges lie at the given (fractional) column and row indices."""
    (c0, c1), (r0, r1) = columns, rows
    xs = [ORIGIN[0] + c * SPACING[1] for c in (c0, c1, c1, c0)]
    ys = [ORIGIN[1] + r * SPACING[0] for r in (r0, r0, r1, r1)]
    return Contour(points_mm=np.array([(x, y, z) for x, y in zip(xs, ys, strict=True)]))


def _structure_set(positions: tuple[float, ...] = POSITIONS) -> StructureSet:
    # Voxel centres at whole indices: columns 2-5 and rows 3-5 lie inside (4 x 3 = 12).
    box = tuple(_square(z, (1.5, 5.5), (2.5, 5.5)) for z in positions[1:4])
    point = Contour(
        points_mm=np.array([[ORIGIN[0], ORIGIN[1], POSITIONS[0]]]),
        geometric_type=GeometricType.POINT,
    )
    return StructureSet(
        rois=(
            ROI(number=1, name="Box", contours=box, color=(255, 0, 0)),
            ROI(number=2, name="Marker", contours=(point,)),
            ROI(number=3, name="Lost", dropped_contours=(0, 1)),
            ROI(number=4, name="Other", contours=box),
        ),
        source="RS.dcm",
    )


def test_plan_rois_decides_before_any_work() -> None:
    structure_set = _structure_set()
    plans = plan_rois(structure_set, [r for r in structure_set.rois if r.number != 4])
    assert [(p.roi.number, p.status, p.rasterise) for p in plans] == [
        (1, None, True),
        (2, "no volume", False),
        (3, "empty", False),
        (4, "not selected", False),
    ]
    assert plans[1].notes == (
        "RS.dcm: ROI 2 'Marker' has only POINT contours, which enclose no volume; "
        "listed, not filled",
    )
    lost = plans[2].problems
    assert lost == (
        "RS.dcm: ROI 3 'Lost' is empty: all 2 of its contours have unusable coordinates "
        "(NaN, infinite, beyond 100 m, missing or not numbers) and were dropped; fix them in "
        "the planning system and export again",
    )
    assert plan_rois(structure_set)[3].rasterise  # default: every ROI


def test_uneven_slices_are_stated_without_naming_a_command_line_option(tmp_path: Path) -> None:
    with pytest.warns(GeometryWarning, match="slice spacing is not uniform"):
        report = convert_structure_set(_structure_set(UNEVEN), _grid(UNEVEN), tmp_path / "out")
    assert isinstance(report, ConversionReport)
    assert report.uneven_slices
    (note,) = [n for n in report.notes if "not evenly spaced" in n]
    assert "the mean spacing" in note
    assert all("--" not in message for message in (*report.notes, *report.problems))
    rows = {row.roi_number: row for row in report.rows}
    # 12 voxels on each of the 3 slices that hold the box.
    assert rows[1].voxel_count == 36
    assert rows[1].file == "Box.nii.gz"
    assert rows[4].status == "written"
    assert [rows[n].status for n in (2, 3)] == ["no volume", "empty"]
    summary = json.loads((tmp_path / "out" / "summary.json").read_text(encoding="utf-8"))
    assert [r["voxel_count"] for r in summary["rois"]] == [36, None, None, 36]
    assert summary["structure_set"]["grid_uniform"] is False
    resampled = convert_structure_set(
        _structure_set(UNEVEN),
        _grid(UNEVEN),
        tmp_path / "uniform",
        ConversionOptions(resample_mm=2.5),
    )
    assert not resampled.uneven_slices


@pytest.mark.parametrize(
    ("output_format", "file"), [("npz", "masks.npz#roi/Box"), ("labelmap", "labels.nii.gz#1")]
)
def test_containers_are_shared_by_both_entry_points(
    tmp_path: Path, output_format: str, file: str
) -> None:
    options = ConversionOptions(output_format=output_format)  # type: ignore[arg-type]
    structure_set = _structure_set()
    report = convert_structure_set(structure_set, _grid(), tmp_path / "rs", options)
    assert report.rows[0].file == file
    grid = _grid()
    array = np.zeros(grid.shape, dtype=bool)
    array[1:4, 3:6, 2:6] = True
    mask = Mask(array=array, grid=grid, roi=structure_set.rois[0])
    again = convert_masks(
        [mask],
        tmp_path / "seg",
        source="SEG.dcm",
        output_format=output_format,  # type: ignore[arg-type]
    )
    assert again.rows[0].file == file
    assert again.rows[0].voxel_count == report.rows[0].voxel_count == 36


def test_seg_needs_the_image_series_and_says_so_in_library_terms(tmp_path: Path) -> None:
    options = ConversionOptions(output_format="seg")
    with pytest.raises(RtmaskError, match=r"RS\.dcm: a DICOM SEG is made on the image series") as e:
        convert_structure_set(_structure_set(), _grid(), tmp_path / "a", options)
    assert "--" not in str(e.value)
    grid = _grid()
    mask = Mask(array=np.zeros(grid.shape, dtype=bool), grid=grid, roi=ROI(number=1, name="A"))
    with pytest.raises(RtmaskError, match=r"SEG\.dcm: a DICOM SEG needs the image series") as e:
        convert_masks([mask], tmp_path / "b", source="SEG.dcm", output_format="seg")
    assert "--" not in str(e.value)


def test_options_refuse_an_unknown_format_and_pickle_with_the_report(tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match="unknown output format 'png'"):
        ConversionOptions(output_format="png")  # type: ignore[arg-type]
    options = ConversionOptions(output_format="nrrd", fractional=3, rule="xor")
    assert pickle.loads(pickle.dumps(options)) == options
    report = convert_structure_set(_structure_set(), _grid(), tmp_path, options)
    assert report.rows[0].file == "Box.nrrd"
    copy = pickle.loads(pickle.dumps(report))
    assert copy.rows == report.rows
    assert copy.problems == report.problems
