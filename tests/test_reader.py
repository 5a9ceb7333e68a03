"""read_rtstruct: every field, the raw ContourData parser, defects and unreadable input.

Files are written to ``tmp_path`` with :mod:`rtmask.synthetic` and, for defects, edited
with plain pydicom. Expected values come from what the test wrote or from pydicom's own
decoding of the file (``[float(v) for v in item.ContourData]``), never from the reader.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file
from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset
from pydicom.tag import Tag

from rtmask._errors import DicomReadError, InvalidInputError, StructureSetWarning
from rtmask.geometry import ImageGrid
from rtmask.raster import rasterize
from rtmask.rtstruct import GeometricType, StructureSet, read_rtstruct
from rtmask.synthetic import (
    CTSeries,
    RoiSpec,
    circle_uv,
    to_patient,
    write_ct_series,
    write_rtstruct,
)

CONTOUR_DATA = Tag(0x30060050)
#: Writing a number in at most 16 characters loses at most this much (mm) for |x| < 1000.
DS_ATOL_MM = 1e-9


# ---------------------------------------------------------------------------- fixtures
def _grid() -> ImageGrid:
    """Awkward: head-first prone, off-origin, anisotropic, non-square."""
    return ImageGrid.from_explicit(
        origin_mm=(123.456789, 56.7, -300.2),
        spacing_mm=(2.5, 0.7, 1.3),
        shape=(5, 23, 29),
        orientation=(-1.0, 0.0, 0.0, 0.0, -1.0, 0.0),
    )


@pytest.fixture
def ct(tmp_path: Path) -> CTSeries:
    return write_ct_series(tmp_path / "ct", _grid())


def _disc(grid: ImageGrid, k: int, radius: float = 6.0, n: int = 40) -> np.ndarray:
    return to_patient(grid, k, circle_uv((17.3, 8.1), radius, n=n))


def _pydicom_contours(path: Path) -> dict[int, list[list[float]]]:
    """ContourData of every contour as pydicom decodes it, by ReferencedROINumber."""
    dataset = pydicom.dcmread(path, force=True)
    return {
        int(item.ReferencedROINumber): [
            [float(v) for v in contour.ContourData] for contour in item.get("ContourSequence", [])
        ]
        for item in dataset.ROIContourSequence
    }


def _edit(path: Path, change: Callable[[Dataset], None]) -> None:
    """Apply ``change`` to the data set read with plain pydicom and write it back."""
    dataset = pydicom.dcmread(path, force=True)
    change(dataset)
    dataset.save_as(path)


def _raw_contour_data(dataset: Dataset, roi_index: int, contour_index: int, raw: bytes) -> None:
    """Replace one ContourData value by raw bytes (padded to even length with a space)."""
    item = dataset.ROIContourSequence[roi_index].ContourSequence[contour_index]
    if len(raw) % 2:
        raw += b" "
    implicit, little_endian = dataset.original_encoding
    item[CONTOUR_DATA] = RawDataElement(
        CONTOUR_DATA, "DS", len(raw), raw, 0, bool(implicit), bool(little_endian)
    )


def _warnings_of(record: pytest.WarningsRecorder) -> list[str]:
    return [str(w.message) for w in record if issubclass(w.category, StructureSetWarning)]


# ---------------------------------------------------------------------------- fields
def test_every_roi_and_contour_field_is_read(tmp_path: Path, ct: CTSeries) -> None:
    grid = ct.grid
    discs = [_disc(grid, k, radius=3.0 + k) for k in range(1, 4)]
    point = to_patient(grid, 2, [[11.1, 9.9]])
    line = to_patient(grid, 0, [[3.0, 2.0], [9.5, 4.25], [15.0, 11.0]])
    xor_pair = [to_patient(grid, 4, circle_uv((12.0 + dx, 8.0), 5.0)) for dx in (0.0, 4.0)]
    specs = [
        RoiSpec(
            number=3,
            name="GTV 1",
            contours=tuple((d, "CLOSED_PLANAR") for d in discs),
            color=(255, 0, 0),
            interpreted_type="GTV",
            generation_algorithm="MANUAL",
        ),
        RoiSpec(
            number=17,
            name="Iso",
            contours=((point, "POINT"),),
            color=(0, 128, 255),
            interpreted_type="ISOCENTER",
            generation_algorithm="AUTOMATIC",
        ),
        RoiSpec(
            number=5,
            name="Wire",
            contours=((line, "OPEN_PLANAR"),),
            color=(1, 2, 3),
            interpreted_type="MARKER",
            generation_algorithm="SEMIAUTOMATIC",
        ),
        RoiSpec(
            number=9,
            name="Ring",
            contours=tuple((p, "CLOSEDPLANAR_XOR") for p in xor_pair),
            color=(10, 200, 30),
            interpreted_type="ORGAN",
        ),
    ]
    path = write_rtstruct(tmp_path / "rs.dcm", specs, ct, label="FIELDS")
    written_slices = {3: [1, 2, 3], 17: [2], 5: [0], 9: [4, 4]}
    decoded = _pydicom_contours(path)
    plain = pydicom.dcmread(path)

    structure_set = read_rtstruct(path)

    assert isinstance(structure_set, StructureSet)
    assert [r.number for r in structure_set.rois] == [3, 17, 5, 9]
    for spec, roi in zip(specs, structure_set.rois, strict=True):
        assert roi.name == spec.name
        assert roi.color == spec.color
        assert roi.interpreted_type == spec.interpreted_type
        assert roi.generation_algorithm == spec.generation_algorithm
        assert roi.frame_of_reference_uid == ct.frame_of_reference_uid
        assert roi.warnings == ()
        assert roi.dropped_contours == ()
        assert roi.n_contours == len(spec.contours)
        for index, (contour, (points, kind)) in enumerate(
            zip(roi.contours, spec.contours, strict=True)
        ):
            assert contour.geometric_type is GeometricType(kind)
            assert contour.number == index + 1
            assert contour.points_mm.shape == points.shape
            np.testing.assert_allclose(contour.points_mm, points, rtol=0, atol=DS_ATOL_MM)
            assert np.array_equal(contour.points_mm.ravel(), decoded[spec.number][index])
            slice_index = written_slices[spec.number][index]
            assert contour.referenced_sop_instance_uid == ct.sop_instance_uids[slice_index]
    assert structure_set.roi(3).encloses_volume
    assert not structure_set.roi(17).encloses_volume
    assert not structure_set.roi(5).encloses_volume
    assert structure_set.roi(9).encloses_volume
    # Structure set identity and references.
    assert structure_set.sop_instance_uid == plain.SOPInstanceUID
    assert structure_set.series_instance_uid == plain.SeriesInstanceUID
    assert structure_set.study_instance_uid == ct.study_instance_uid
    assert structure_set.patient_id == ct.patient_id
    assert structure_set.patient_name == ct.patient_name
    assert structure_set.label == "FIELDS"
    assert structure_set.frame_of_reference_uid == ct.frame_of_reference_uid
    assert structure_set.referenced_series_uids == (ct.series_instance_uid,)
    assert set(structure_set.referenced_sop_instance_uids) == set(ct.sop_instance_uids)
    assert len(structure_set.referenced_sop_instance_uids) == len(ct.sop_instance_uids)
    assert structure_set.source == str(path)
    assert structure_set.warnings == ()


def test_references_come_from_contours_when_the_series_is_not_listed(
    tmp_path: Path, ct: CTSeries
) -> None:
    specs = [RoiSpec(number=1, name="A", contours=((_disc(ct.grid, 3), "CLOSED_PLANAR"),))]
    path = write_rtstruct(tmp_path / "rs.dcm", specs, ct, reference_series=False)
    structure_set = read_rtstruct(path)
    assert structure_set.referenced_series_uids == ()
    assert structure_set.referenced_sop_instance_uids == (ct.sop_instance_uids[3],)
    assert structure_set.frame_of_reference_uid == ct.frame_of_reference_uid


# ---------------------------------------------------------------------------- raw parsing
def _awkward_text(value: float, style: int) -> str:
    """One valid DS text (<= 16 characters) for ``value`` in one of several spellings."""
    texts = [
        f"{value:.6E}",  # 1.234568E+02
        f"{value:.3e}",  # -3.250e-01
        f" {value:.4f}",  # leading space
        f"{value:.5g} ",  # trailing space
        f"{value:+.2f}",  # explicit sign
        f"{round(value):d}",  # integer
        f"{value:.1f}".replace("0.", ".", 1) if abs(value) < 1 else f"{value:.1f}",
        f"{round(value):d}.",  # trailing dot
        f"{value:.7g}",
        f"{value * 1e-3:.4e}",
    ]
    return texts[style % len(texts)]


@pytest.mark.parametrize("preamble", [True, False], ids=["part10", "no_preamble"])
def test_raw_contour_data_parse_equals_pydicom(
    tmp_path: Path, ct: CTSeries, preamble: bool
) -> None:
    grid = ct.grid
    rng = np.random.default_rng(7)
    contours = tuple(
        (_disc(grid, k % grid.shape[0], radius=2.0 + k % 5, n=5 + k), "CLOSED_PLANAR")
        for k in range(60)
    )
    path = write_rtstruct(
        tmp_path / "rs.dcm",
        [RoiSpec(number=1, name="many", contours=contours)],
        ct,
        preamble=preamble,
    )
    texts_by_contour: list[list[str]] = []
    for index, (points, _) in enumerate(contours):
        values = points.ravel() + rng.uniform(-0.5, 0.5, points.size)
        texts = [
            _awkward_text(v, int(s))
            for v, s in zip(values, rng.integers(0, 10, values.size), strict=True)
        ]
        if index % 7 == 0:
            texts[0] = "  " + texts[0].strip()  # several leading spaces
            texts[-1] = texts[-1].strip() + "  "  # several trailing spaces
        assert all(len(t) <= 16 for t in texts)
        texts_by_contour.append(texts)

    def rewrite(dataset: Dataset) -> None:
        for index, texts in enumerate(texts_by_contour):
            raw = "\\".join(texts).encode("ascii")
            _raw_contour_data(dataset, 0, index, raw)

    _edit(path, rewrite)
    decoded = _pydicom_contours(path)[1]
    assert any(len("\\".join(t)) % 2 for t in texts_by_contour)  # some needed padding

    roi = read_rtstruct(path).rois[0]

    assert roi.n_contours == len(contours)
    for contour, expected, texts in zip(roi.contours, decoded, texts_by_contour, strict=True):
        assert np.array_equal(contour.points_mm.ravel(), expected)
        assert np.array_equal(contour.points_mm.ravel(), [float(t) for t in texts])


def test_large_structure_set_parses_like_pydicom(tmp_path: Path, ct: CTSeries) -> None:
    # 300 contours x 500 points: a correctness check on a big file, no timing.
    angles = np.linspace(0.0, 2 * np.pi, 500, endpoint=False)
    contours = tuple(
        (
            np.column_stack(
                [
                    120 + (80 + k / 7) * np.cos(angles),
                    -90.5 + 60.123456789 * np.sin(angles + k),
                    np.full(500, -400.0 + 2.5 * k),
                ]
            ),
            "CLOSED_PLANAR",
        )
        for k in range(300)
    )
    path = write_rtstruct(
        tmp_path / "big.dcm", [RoiSpec(number=1, name="big", contours=contours)], ct
    )
    decoded = _pydicom_contours(path)[1]
    roi = read_rtstruct(path).rois[0]
    assert roi.n_contours == 300
    assert roi.n_points == 300 * 500
    for contour, expected, (points, _) in zip(roi.contours, decoded, contours, strict=True):
        assert np.array_equal(contour.points_mm.ravel(), expected)
        np.testing.assert_allclose(contour.points_mm, points, rtol=0, atol=DS_ATOL_MM)


# ---------------------------------------------------------------------------- defects
def _two_discs(ct: CTSeries, number: int = 4, name: str = "Cord") -> RoiSpec:
    return RoiSpec(
        number=number,
        name=name,
        contours=((_disc(ct.grid, 1), "CLOSED_PLANAR"), (_disc(ct.grid, 2), "CLOSED_PLANAR")),
    )


def _write_wrong_point_count(path: Path, ct: CTSeries) -> None:
    write_rtstruct(path, [_two_discs(ct)], ct, number_of_points_override={(4, 1): 99})


def _write_non_finite(path: Path, ct: CTSeries, value: float) -> None:
    bad = _disc(ct.grid, 2)
    bad[5, 0] = value
    bad[9, 2] = value
    write_rtstruct(
        path,
        [
            RoiSpec(
                number=4,
                name="Cord",
                contours=(
                    (_disc(ct.grid, 1), "CLOSED_PLANAR"),
                    (bad, "CLOSED_PLANAR"),
                    (_disc(ct.grid, 3), "CLOSED_PLANAR"),
                ),
            )
        ],
        ct,
    )


def _write_nan(path: Path, ct: CTSeries) -> None:
    _write_non_finite(path, ct, np.nan)


def _write_inf(path: Path, ct: CTSeries) -> None:
    _write_non_finite(path, ct, -np.inf)


def _write_not_multiple_of_3(path: Path, ct: CTSeries) -> None:
    write_rtstruct(path, [_two_discs(ct)], ct)
    points = _disc(ct.grid, 2).ravel()[:-1]  # one number short
    raw = "\\".join(repr(float(v)) for v in points).encode("ascii")

    def change(dataset: Dataset) -> None:
        _raw_contour_data(dataset, 0, 1, raw)
        # 39 whole points: NumberOfContourPoints agrees, the one defect is the extra numbers.
        dataset.ROIContourSequence[0].ContourSequence[1].NumberOfContourPoints = 39

    _edit(path, change)


def _write_text(path: Path, ct: CTSeries) -> None:
    write_rtstruct(path, [_two_discs(ct)], ct)
    _edit(path, lambda ds: _raw_contour_data(ds, 0, 1, b"1.0\\abc\\-3.5"))


def _write_blank_value(path: Path, ct: CTSeries) -> None:
    # numpy's text parser reads a blank value between two backslashes as -1.
    write_rtstruct(path, [_two_discs(ct)], ct)
    _edit(path, lambda ds: _raw_contour_data(ds, 0, 1, b"1.0\\ \\-3.5"))


def _write_trailing_backslash(path: Path, ct: CTSeries) -> None:
    # ... and skips an empty last value.
    write_rtstruct(path, [_two_discs(ct)], ct)
    _edit(path, lambda ds: _raw_contour_data(ds, 0, 1, b"1.0\\2.0\\-3.5\\"))


#: Defect writer, the contour it names, words of its message, the contours dropped.
ContourDefect = tuple[Callable[[Path, CTSeries], None], int, tuple[str, ...], tuple[int, ...]]
CONTOUR_DEFECTS: dict[str, ContourDefect] = {
    "point_count": (_write_wrong_point_count, 2, ("NumberOfContourPoints", "99", "40"), ()),
    "nan": (_write_nan, 2, ("NaN",), (2,)),
    "inf": (_write_inf, 2, ("infinite",), (2,)),
    "not_multiple_of_3": (_write_not_multiple_of_3, 2, ("multiple of 3",), ()),
    "text": (_write_text, 2, ("not a number",), (2,)),
    "blank_value": (_write_blank_value, 2, ("not a number",), (2,)),
    "trailing_backslash": (_write_trailing_backslash, 2, ("not a number",), (2,)),
}


@pytest.mark.parametrize("defect", sorted(CONTOUR_DEFECTS))
def test_contour_defects_warn_and_are_listed(tmp_path: Path, ct: CTSeries, defect: str) -> None:
    writer, contour, words, dropped = CONTOUR_DEFECTS[defect]
    path = tmp_path / "rs.dcm"
    writer(path, ct)
    with pytest.warns(StructureSetWarning) as record:
        structure_set = read_rtstruct(path)
    (message,) = _warnings_of(record)
    assert message.startswith(f"{path}: ")
    assert "ROI 4 'Cord'" in message
    assert f"contour {contour}" in message
    for word in words:
        assert word in message
    roi = structure_set.roi(4)
    assert roi.dropped_contours == dropped
    assert len(roi.warnings) == 1
    assert roi.warnings[0] in message
    assert f"contour {contour}" in roi.warnings[0]
    assert structure_set.warnings == ()


def test_wrong_point_count_uses_the_data(tmp_path: Path, ct: CTSeries) -> None:
    path = tmp_path / "rs.dcm"
    _write_wrong_point_count(path, ct)
    assert (
        pydicom.dcmread(path).ROIContourSequence[0].ContourSequence[1].NumberOfContourPoints == 99
    )
    with pytest.warns(StructureSetWarning, match="NumberOfContourPoints"):
        roi = read_rtstruct(path).roi(4)
    np.testing.assert_allclose(roi.contours[1].points_mm, _disc(ct.grid, 2), atol=DS_ATOL_MM)


def test_nan_contour_is_dropped_and_the_others_kept(tmp_path: Path, ct: CTSeries) -> None:
    path = tmp_path / "rs.dcm"
    _write_nan(path, ct)
    with pytest.warns(StructureSetWarning, match="contour 2"):
        roi = read_rtstruct(path).roi(4)
    assert roi.n_contours == 2
    assert roi.dropped_contours == (2,)
    np.testing.assert_allclose(roi.contours[0].points_mm, _disc(ct.grid, 1), atol=DS_ATOL_MM)
    np.testing.assert_allclose(roi.contours[1].points_mm, _disc(ct.grid, 3), atol=DS_ATOL_MM)
    assert [c.number for c in roi.contours] == [1, 3]


def test_numbers_beyond_a_multiple_of_3_are_ignored(tmp_path: Path, ct: CTSeries) -> None:
    path = tmp_path / "rs.dcm"
    _write_not_multiple_of_3(path, ct)
    with pytest.warns(StructureSetWarning, match="multiple of 3"):
        roi = read_rtstruct(path).roi(4)
    expected = _disc(ct.grid, 2)[:-1]  # the last point lost a number: 39 whole points
    assert roi.contours[1].points_mm.shape == (39, 3)
    np.testing.assert_allclose(roi.contours[1].points_mm, expected, atol=DS_ATOL_MM)


def test_roi_without_contour_sequence(tmp_path: Path, ct: CTSeries) -> None:
    path = write_rtstruct(
        tmp_path / "rs.dcm",
        [_two_discs(ct, number=1, name="Body"), RoiSpec(number=2, name="Areola", contours=())],
        ct,
    )
    item = pydicom.dcmread(path).ROIContourSequence[1]
    assert int(item.ReferencedROINumber) == 2
    assert "ContourSequence" not in item
    with pytest.warns(StructureSetWarning) as record:
        structure_set = read_rtstruct(path)
    (message,) = _warnings_of(record)
    assert message.startswith(f"{path}: ")
    assert "ROI 2 'Areola'" in message
    assert "ContourSequence" in message
    roi = structure_set.roi(2)
    assert roi.contours == ()
    assert not roi.encloses_volume
    assert len(roi.warnings) == 1
    assert structure_set.roi(1).warnings == ()


def test_roi_without_roi_contour_item(tmp_path: Path, ct: CTSeries) -> None:
    path = write_rtstruct(
        tmp_path / "rs.dcm",
        [_two_discs(ct, number=1, name="Body"), _two_discs(ct, number=2, name="Lost")],
        ct,
    )

    def remove(dataset: Dataset) -> None:
        del dataset.ROIContourSequence[1]

    _edit(path, remove)
    assert [int(i.ReferencedROINumber) for i in pydicom.dcmread(path).ROIContourSequence] == [1]
    with pytest.warns(StructureSetWarning) as record:
        structure_set = read_rtstruct(path)
    (message,) = _warnings_of(record)
    assert message.startswith(f"{path}: ")
    assert "ROI 2 'Lost'" in message
    assert "ROIContourSequence" in message
    roi = structure_set.roi(2)
    assert roi.contours == ()
    assert roi.color is None
    assert len(roi.warnings) == 1
    assert structure_set.roi(1).n_contours == 2


def test_contours_of_an_undefined_roi_are_reported(tmp_path: Path, ct: CTSeries) -> None:
    path = write_rtstruct(
        tmp_path / "rs.dcm",
        [_two_discs(ct, number=1, name="Body"), _two_discs(ct, number=2, name="Ghost")],
        ct,
    )

    def remove(dataset: Dataset) -> None:
        del dataset.StructureSetROISequence[1]

    _edit(path, remove)
    with pytest.warns(StructureSetWarning) as record:
        structure_set = read_rtstruct(path)
    (message,) = _warnings_of(record)
    assert message.startswith(f"{path}: ")
    assert "ROI 2" in message
    assert [r.number for r in structure_set.rois] == [1]
    assert len(structure_set.warnings) == 1


def test_duplicate_roi_names_case_insensitive(tmp_path: Path, ct: CTSeries) -> None:
    path = write_rtstruct(
        tmp_path / "rs.dcm",
        [
            _two_discs(ct, number=1, name="GTV"),
            _two_discs(ct, number=2, name="Lung"),
            _two_discs(ct, number=3, name="gtv"),
            _two_discs(ct, number=4, name="Gtv"),
        ],
        ct,
    )
    with pytest.warns(StructureSetWarning) as record:
        structure_set = read_rtstruct(path)
    (message,) = _warnings_of(record)
    assert message.startswith(f"{path}: ")
    assert "duplicate ROI name" in message
    assert "GTV" in message
    assert "[1, 3, 4]" in message
    (listed,) = structure_set.warnings
    assert listed in message
    assert [r.name for r in structure_set.rois] == ["GTV", "Lung", "gtv", "Gtv"]
    assert all(r.warnings == () for r in structure_set.rois)


def test_structure_set_without_roi_sequences_warns(tmp_path: Path, ct: CTSeries) -> None:
    # E.g. a file cut exactly at an element boundary: it must not pass as a valid empty set.
    path = write_rtstruct(tmp_path / "rs.dcm", [_two_discs(ct)], ct)

    def strip(dataset: Dataset) -> None:
        for keyword in (
            "StructureSetROISequence",
            "ROIContourSequence",
            "RTROIObservationsSequence",
        ):
            delattr(dataset, keyword)

    _edit(path, strip)
    with pytest.warns(StructureSetWarning, match="StructureSetROISequence") as record:
        structure_set = read_rtstruct(path)
    assert all(str(path) in m for m in _warnings_of(record))
    assert structure_set.rois == ()
    assert structure_set.warnings


# ---------------------------------------------------------------------------- on_invalid
@pytest.mark.parametrize("defect", sorted(CONTOUR_DEFECTS))
def test_on_invalid_raise(tmp_path: Path, ct: CTSeries, defect: str) -> None:
    writer = CONTOUR_DEFECTS[defect][0]
    path = tmp_path / "rs.dcm"
    writer(path, ct)
    with pytest.raises(InvalidInputError) as caught:
        read_rtstruct(path, on_invalid="raise")
    message = str(caught.value)
    assert str(path) in message
    assert "ROI 4 'Cord'" in message
    assert f"contour {CONTOUR_DEFECTS[defect][1]}" in message
    assert "\n" not in message


def test_on_invalid_raise_for_structure_set_defects(tmp_path: Path, ct: CTSeries) -> None:
    path = write_rtstruct(
        tmp_path / "rs.dcm",
        [_two_discs(ct, number=1, name="GTV"), _two_discs(ct, number=2, name="gtv")],
        ct,
    )
    with pytest.raises(InvalidInputError, match="duplicate ROI name") as caught:
        read_rtstruct(path, on_invalid="raise")
    assert str(path) in str(caught.value)
    empty = write_rtstruct(tmp_path / "empty.dcm", [RoiSpec(number=8, name="Areola")], ct)
    with pytest.raises(InvalidInputError, match="ROI 8 'Areola'") as caught:
        read_rtstruct(empty, on_invalid="raise")
    assert str(empty) in str(caught.value)


@pytest.mark.parametrize("defect", sorted(CONTOUR_DEFECTS))
def test_on_invalid_ignore_is_silent_but_lists(tmp_path: Path, ct: CTSeries, defect: str) -> None:
    writer = CONTOUR_DEFECTS[defect][0]
    path = tmp_path / "rs.dcm"
    writer(path, ct)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ignored = read_rtstruct(path, on_invalid="ignore")
    with pytest.warns(StructureSetWarning):
        warned = read_rtstruct(path)
    assert ignored.roi(4).warnings == warned.roi(4).warnings
    assert len(ignored.roi(4).warnings) == 1
    assert ignored.roi(4).dropped_contours == warned.roi(4).dropped_contours


def test_on_invalid_ignore_lists_structure_set_defects(tmp_path: Path, ct: CTSeries) -> None:
    path = write_rtstruct(
        tmp_path / "rs.dcm",
        [
            _two_discs(ct, number=1, name="GTV"),
            _two_discs(ct, number=2, name="gtv"),
            RoiSpec(number=3, name="Areola"),
        ],
        ct,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        structure_set = read_rtstruct(path, on_invalid="ignore")
    assert len(structure_set.warnings) == 1
    assert "duplicate ROI name" in structure_set.warnings[0]
    assert len(structure_set.roi(3).warnings) == 1


# ---------------------------------------------------------------------------- file forms
def test_file_without_preamble_reads_like_part10(tmp_path: Path, ct: CTSeries) -> None:
    specs = [
        _two_discs(ct, number=1, name="Body"),
        RoiSpec(number=2, name="Iso", contours=((_disc(ct.grid, 2)[:1], "POINT"),)),
    ]
    bare = write_rtstruct(tmp_path / "bare.dcm", specs, ct, preamble=False)
    part10 = write_rtstruct(tmp_path / "part10.dcm", specs, ct, preamble=True)
    head = bare.read_bytes()[:132]
    assert head[128:132] != b"DICM"
    assert part10.read_bytes()[128:132] == b"DICM"
    a, b = read_rtstruct(bare), read_rtstruct(part10)
    assert [r.name for r in a.rois] == [r.name for r in b.rois] == ["Body", "Iso"]
    for roi_a, roi_b in zip(a.rois, b.rois, strict=True):
        assert roi_a.color == roi_b.color
        assert all(
            ca.equals(cb, atol=0.0) for ca, cb in zip(roi_a.contours, roi_b.contours, strict=True)
        )
    assert a.referenced_series_uids == b.referenced_series_uids


def test_pydicom_rtstruct_without_preamble_with_point_rois() -> None:
    path = Path(get_testdata_file("rtstruct.dcm"))
    with path.open("rb") as stream:
        head = stream.read(132)
    assert head[128:132] != b"DICM"
    plain = pydicom.dcmread(path, force=True)
    structure_set = read_rtstruct(path)
    assert structure_set.warnings == ()
    assert [r.number for r in structure_set.rois] == [
        int(i.ROINumber) for i in plain.StructureSetROISequence
    ]
    assert len(structure_set.rois) == 3
    for roi, item, roi_contour, observation in zip(
        structure_set.rois,
        plain.StructureSetROISequence,
        plain.ROIContourSequence,
        plain.RTROIObservationsSequence,
        strict=True,
    ):
        assert roi.name == item.ROIName
        assert roi.color == tuple(int(v) for v in roi_contour.ROIDisplayColor)
        assert roi.interpreted_type == observation.RTROIInterpretedType
        assert roi.generation_algorithm == item.ROIGenerationAlgorithm
        assert [c.geometric_type.value for c in roi.contours] == [
            c.ContourGeometricType for c in roi_contour.ContourSequence
        ]
        for contour, expected in zip(roi.contours, roi_contour.ContourSequence, strict=True):
            assert np.array_equal(
                contour.points_mm.ravel(), [float(v) for v in expected.ContourData]
            )
    isocentres = [r for r in structure_set.rois if r.interpreted_type == "ISOCENTER"]
    assert len(isocentres) == 2
    grid = ImageGrid.covering(
        structure_set.all_points_mm(), spacing_mm=(10.0, 10.0, 10.0), margin_mm=20.0
    )
    for roi in isocentres:
        assert roi.geometric_types == (GeometricType.POINT,)
        assert not roi.encloses_volume
        mask = rasterize(roi, grid)
        assert mask.array.shape == grid.shape
        assert not mask.array.any()
        assert mask.warnings == ()
    external = structure_set.rois[0]
    assert external.encloses_volume
    assert rasterize(external, grid).array.any()


def test_dataset_is_accepted(tmp_path: Path, ct: CTSeries) -> None:
    path = write_rtstruct(tmp_path / "rs.dcm", [_two_discs(ct)], ct)
    from_path = read_rtstruct(path)
    fresh = pydicom.dcmread(path)
    decoded = pydicom.dcmread(path)
    for item in decoded.ROIContourSequence[0].ContourSequence:
        _ = item.ContourData  # decoded to DS values before the reader sees it
    for dataset in (fresh, decoded):
        structure_set = read_rtstruct(dataset)
        assert structure_set.sop_instance_uid == from_path.sop_instance_uid
        for a, b in zip(structure_set.rois[0].contours, from_path.rois[0].contours, strict=True):
            assert a.equals(b, atol=0.0)


# ---------------------------------------------------------------------------- bad input
def test_ct_slice_is_not_a_structure_set(ct: CTSeries) -> None:
    with pytest.raises(InvalidInputError, match="not an RT Structure Set") as caught:
        read_rtstruct(ct.files[0])
    assert str(ct.files[0]) in str(caught.value)
    with pytest.raises(InvalidInputError):
        read_rtstruct(pydicom.dcmread(ct.files[0]))


def _text_file(tmp_path: Path, ct: CTSeries) -> Path:
    path = tmp_path / "notes.dcm"
    path.write_text("patient notes, not DICOM\n" * 20)
    return path


def _truncated(tmp_path: Path, ct: CTSeries, fraction: float = 0.6) -> Path:
    full = write_rtstruct(
        tmp_path / "full.dcm", [_two_discs(ct, number=n, name=f"R{n}") for n in range(1, 6)], ct
    )
    data = full.read_bytes()
    path = tmp_path / "cut.dcm"
    path.write_bytes(data[: int(len(data) * fraction)])
    return path


def _missing(tmp_path: Path, ct: CTSeries) -> Path:
    return tmp_path / "nowhere" / "rs.dcm"


@pytest.mark.parametrize(
    "make", [_text_file, _truncated, _missing], ids=["text", "truncated", "missing"]
)
def test_unreadable_files_raise_dicom_read_error(
    tmp_path: Path, ct: CTSeries, make: Callable[[Path, CTSeries], Path]
) -> None:
    path = make(tmp_path, ct)
    with pytest.raises(DicomReadError) as caught:
        read_rtstruct(path)
    assert str(path) in str(caught.value)
    assert "\n" not in str(caught.value)
    assert isinstance(caught.value, OSError)


@pytest.mark.parametrize("fraction", [0.1, 0.35, 0.6, 0.8, 0.97])
def test_truncated_structure_set_never_reads_as_complete(
    tmp_path: Path, ct: CTSeries, fraction: float
) -> None:
    path = _truncated(tmp_path, ct, fraction)
    with pytest.raises(DicomReadError, match=r"truncated|not a readable"):
        read_rtstruct(path)


def test_names_with_a_backslash_keep_it(tmp_path: Path, ct: CTSeries) -> None:
    # DICOM splits text values at backslashes; the name must come back as written.
    path = write_rtstruct(tmp_path / "rs.dcm", [_two_discs(ct, name="PTV\\boost 2")], ct)
    assert read_rtstruct(path).rois[0].name == "PTV\\boost 2"
