"""rtmask report: the QA page of a converted cohort or data set (content, pictures, errors)."""

from __future__ import annotations

import base64
import errno
import json
import os
import re
import zlib
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from scipy import stats

from cohort_archive import make_archive, read_rows
from conftest import run_cli_output
from report_pages import decode_png, parse_page, write_cases, write_nifti
from rtmask.cli import main
from rtmask.errors import InvalidInputError
from rtmask.report import MIN_CASES, Z_THRESHOLD, encode_png, read_source, robust_z, write_report
from rtmask.report._png import Plane, render_plane, window_for

ROI_MAP = """\
Lung_L: ["Lung_L", "L Lung", "lung left"]
PTV: ["PTV*"]
SpinalCord: ["Cord"]
Body: ["Body"]
GTV: ["GTV"]
"""


@pytest.fixture(scope="module")
def cohort(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The cohort tests' awkward archive, converted with a ROI map (two cases fail)."""
    base = tmp_path_factory.mktemp("report")
    archive = make_archive(base)
    (base / "map.yaml").write_text(ROI_MAP, encoding="utf-8")
    out = base / "out"
    roi_map = str(base / "map.yaml")
    code = main(["convert", str(archive.root), "-o", str(out), "--jobs", "1", "--roi-map", roi_map])
    assert code == 1  # the broken and the orphan structure sets
    return out


def test_every_case_is_one_row_with_its_patient_and_status(
    cohort: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, output = run_cli_output(capsys, "report", str(cohort), "-o", str(tmp_path / "r.html"))
    assert code == 0, output
    rows = read_rows(cohort)
    page = parse_page(tmp_path / "r.html")
    header, *body = page.tables["cases"]
    assert header[:2] == ["Patient ID", "Status"]
    assert len(body) == len(rows)
    expected = sorted((r["patient_id"], r["status"], r["structure_set"]) for r in rows.values())
    assert sorted((b[0], b[1], b[2]) for b in body) == expected
    failed = [r for r in rows.values() if r["status"] == "failed"]
    assert sorted(row[3] for row in page.tables["failed"][1:]) == sorted(r["error"] for r in failed)
    assert f"{len(rows)} case(s)" in output


def test_the_page_loads_nothing_from_anywhere(cohort: Path, tmp_path: Path) -> None:
    summary = write_report(cohort, tmp_path / "r.html")
    text = summary.path.read_text(encoding="utf-8")
    page = parse_page(summary.path)
    assert "default-src 'none'" in text
    pictures = [link for link in page.links if not link.startswith("#case-")]
    assert all(link.startswith("data:image/png;base64,") for link in pictures)
    # Each drawn case's output links to its section.
    anchors = [link for link in page.links if link.startswith("#case-")]
    assert anchors == [f"#case-{n}" for n in range(1, summary.detailed + 1)]
    for row in re.findall(r"<tr[^>]*>(.*?)</tr>", text.split('id="cases"')[1].split("</table>")[0]):
        linked = re.search(r'href="#(case-\d+)"', row)
        if linked:  # the section it links to is that case's (same patient ID and output)
            patient = re.search(r"<td>(.*?)</td>", row)
            section = text.split(f'id="{linked.group(1)}"><h3>')[1].split("</h3>")[0]
            assert patient is not None
            assert section.startswith(patient.group(1) + " &middot;")
    assert "http://" not in text
    assert "https://" not in text
    assert "<script src" not in text
    # Three pictures per converted case; each decodes (by Pillow) to an RGB picture.
    drawn = [r for r in read_rows(cohort).values() if r["status"] == "converted"]
    assert len(page.images) == 3 * len(drawn) == 3 * summary.detailed
    for _, src in page.images:
        assert decode_png(src).shape[2] == 3


def test_roi_tables_hold_canonical_and_original_names(cohort: Path, tmp_path: Path) -> None:
    summary = write_report(cohort, tmp_path / "r.html")
    page = parse_page(summary.path)
    roi_tables = [t for name, t in page.tables.items() if name.startswith("rois-")]
    got = sorted((row[1], row[2], row[4], row[5]) for t in roi_tables for row in t[1:])
    expected = []
    for document in (json.loads(p.read_text()) for p in sorted(cohort.rglob("summary.json"))):
        for roi in document["rois"]:
            volume = f"{roi['volume_cm3']:.3f}"
            expected.append((roi["canonical"], roi["name"], str(roi["voxel_count"]), volume))
    assert got == sorted(expected)
    # The three spellings of the left lung, and who misses which ROI.
    names = {row[1]: row[2] for row in page.tables["names"][1:]}
    assert names["Lung_L"] == "L Lung | lung left | Lung_L"
    missing = {row[0]: row[2] for row in page.tables["missing"][1:]}
    assert missing["P004"] == "Lung_L, PTV, SpinalCord"
    assert missing["CON"] == "Body, PTV"


def _cohort_of_volumes(out: Path, volumes: dict[str, list[float | None]]) -> None:
    """A cohort without pictures: ``volumes[patient] = [Heart, Lung]`` (None: absent)."""
    rows = []
    for patient, (heart, lung) in volumes.items():
        rois = [
            {
                "roi_number": number,
                "name": name,
                "canonical": canonical,
                "file": None,
                "color": [0, 200, 0],
                "voxel_count": None if volume is None else volume * 1000,
                "volume_cm3": volume,
                "status": "written" if volume else "empty",
                "warnings": ["a warning"] if patient == "P2" else [],
            }
            for number, (name, canonical, volume) in enumerate(
                [("heart", "Heart", heart), ("LUNG", "Lung", lung)], start=1
            )
            if volume is not None
        ]
        if patient == "P3":  # two ROIs named alike
            rois.append({**rois[0], "roi_number": 9, "name": "Heart ", "canonical": "Heart"})
        folder = out / patient
        folder.mkdir(parents=True)
        (folder / "summary.json").write_text(json.dumps({"rois": rois}), encoding="utf-8")
        rows.append({"patient_id": patient, "status": "converted", "output": patient})
    rows.append({"patient_id": "PX", "status": "failed", "error": "PX: broken file", "output": ""})
    write_cases(out, rows)


def test_outliers_by_robust_z_score(tmp_path: Path) -> None:
    hearts = [600.0, 640.0, 610.0, 590.0, 650.0, 3000.0, 620.0]
    volumes: dict[str, list[float | None]] = {
        f"P{i}": [h, 2000.0 + 10 * i] for i, h in enumerate(hearts)
    }
    volumes["P7"] = [None, 2050.0]  # no heart
    _cohort_of_volumes(tmp_path / "out", volumes)
    summary = write_report(tmp_path / "out", tmp_path / "r.html")
    page = parse_page(summary.path)
    # The robust z-score by hand, with scipy's MAD (not the code under test).
    values = np.array([*hearts, hearts[3]])  # P3 has a second Heart of the same volume
    mad = stats.median_abs_deviation(values)
    z = 0.6745 * (values - np.median(values)) / mad
    expected = {f"P{i}" for i in range(len(hearts)) if abs(z[i]) > Z_THRESHOLD}
    assert expected == {"P5"}
    rows = page.tables["outliers"][1:]
    assert {(r[0], r[1]) for r in rows} == {("Heart", "P5")}
    assert float(rows[0][7]) == pytest.approx(z[5], abs=0.01)
    assert {(r[0], r[2]) for r in page.tables["missing"][1:]} == {("P7", "Heart")}
    assert [(r[0], r[2], r[3]) for r in page.tables["names"][1:]] == [
        ("in one case", "heart | Heart", "P3"),
        ("spellings across cases", "heart | Heart", ""),
    ]
    assert [r[0] for r in page.tables["failed"][1:]] == ["PX"]
    assert summary.outliers == 1
    assert summary.failed == 1


def test_robust_z_matches_scipy_and_handles_a_zero_mad() -> None:
    values = [3.0, 1.0, 4.0, 1.0, 5.0, 9.0, 2.0, 6.0]
    z, median, mad = robust_z(values)
    assert mad == pytest.approx(stats.median_abs_deviation(values))
    assert median == np.median(values)
    assert z == pytest.approx(0.6745 * (np.array(values) - median) / mad)
    # MAD 0 (most volumes equal, up to rounding): the mean absolute deviation stands in.
    z, _, mad = robust_z([2.0, 2.0 + 1e-12, 2.0, 5.0])
    assert mad < 1e-9
    assert z[3] == pytest.approx(3.0 / (1.253314 * np.mean([0, 1e-12, 0, 3.0])))
    z, _, _ = robust_z([7.0, 7.0, 7.0])
    assert list(z) == [0.0, 0.0, 0.0]
    assert MIN_CASES == 3


def test_fewer_cases_than_the_minimum_make_no_outliers(tmp_path: Path) -> None:
    _cohort_of_volumes(tmp_path / "out", {"P1": [1.0, 1.0], "P2": [900.0, 1.0]})
    assert write_report(tmp_path / "out", tmp_path / "r.html").outliers == 0


# --- pictures: orientation, proportions, window -----------------------------------------

#: A volume of (i, j, k) = (40, 30, 20) voxels of 1 x 1.5 x 3 mm, in rtmask's LPS index
#: order (i towards the patient's left, j posterior, k superior).
SHAPE = (40, 30, 20)
LPS_AFFINE = np.array([[-1.0, 0, 0, 10.0], [0, -1.5, 0, 20.0], [0, 0, 3.0, -30.0], [0, 0, 0, 1]])
#: The ROI: left, anterior and superior.
CUBE = (slice(25, 35), slice(3, 11), slice(13, 19))


def _picture_case(out: Path, affine: np.ndarray, flip: tuple[int, ...] = ()) -> None:
    """One converted case: a 40 HU image and a cube ROI, stored with ``flip``-ed axes."""
    image = np.full(SHAPE, 40, dtype=np.int16)
    mask = np.zeros(SHAPE, dtype=np.uint8)
    mask[CUBE] = 1
    for axis in flip:  # the same patient space, the other voxel order along ``axis``
        image, mask = np.flip(image, axis), np.flip(mask, axis)
        step = np.eye(4)
        step[axis, axis], step[axis, 3] = -1, SHAPE[axis] - 1
        affine = affine @ step
    write_nifti(out / "c" / "image.nii.gz", image, affine)
    write_nifti(out / "c" / "Cube.nii.gz", mask, affine)
    roi = {"name": "Cube", "file": "Cube.nii.gz", "color": [0, 255, 0], "status": "written"}
    document = {"image": {"file": "image.nii.gz", "modality": "CT"}, "rois": [roi]}
    (out / "c" / "summary.json").write_text(json.dumps(document), encoding="utf-8")
    write_cases(out, [{"patient_id": "P", "status": "converted", "output": "c"}])


def _pictures(out: Path, tmp_path: Path) -> dict[str, np.ndarray]:
    page = parse_page(write_report(out, tmp_path / f"{out.name}.html").path)
    return {alt.split()[0]: decode_png(src) for alt, src in page.images}


def _green(picture: np.ndarray) -> tuple[int, int, int, int]:
    """Bounding box (row0, row1, column0, column1) of the green outline pixels."""
    rows, columns = np.nonzero(np.all(picture == (0, 255, 0), axis=2))
    return rows.min(), rows.max(), columns.min(), columns.max()


def test_pictures_are_oriented_and_proportioned_as_the_patient(tmp_path: Path) -> None:
    """Axial/coronal: patient's right on the left; anterior/superior up; sagittal:
    anterior on the left. 200 px along the longer side, square pixels."""
    _picture_case(tmp_path / "a", LPS_AFFINE)
    pictures = _pictures(tmp_path / "a", tmp_path)
    # Extents in mm: x 40, y 45, z 60: the longer side of each plane is 200 px.
    assert pictures["axial"].shape[:2] == (200, round(200 * 40 / 45))
    assert pictures["coronal"].shape[:2] == (200, round(200 * 40 / 60))
    assert pictures["sagittal"].shape[:2] == (200, 150)
    # Where the cube's outline must be, in pixels from the picture's top-left corner: the
    # patient's right edge is i = 0 (column 0), the anterior edge j = 0, the top k = 19.
    x_mm, y_mm, z_mm = (25.0, 35.0), (3 * 1.5, 11 * 1.5), ((20 - 19) * 3.0, (20 - 13) * 3.0)
    expected = {
        "axial": (y_mm, x_mm, 45 / 200),
        "coronal": (z_mm, x_mm, 60 / 200),
        "sagittal": (z_mm, y_mm, 60 / 200),
    }
    for name, (rows_mm, columns_mm, step) in expected.items():
        box = _green(pictures[name])
        want = (rows_mm[0] / step, rows_mm[1] / step, columns_mm[0] / step, columns_mm[1] / step)
        assert np.allclose(np.add(box, (0, 1, 0, 1)), want, atol=1.01), (name, box, want)
    # Outside the outline: 40 HU in the CT window (level 40, width 400) is mid grey.
    assert tuple(pictures["axial"][2, 2]) == pytest.approx((128, 128, 128), abs=1)


def test_pictures_do_not_depend_on_the_voxel_order(tmp_path: Path) -> None:
    _picture_case(tmp_path / "plain", LPS_AFFINE)
    _picture_case(tmp_path / "flipped", LPS_AFFINE, flip=(0, 2))
    plain, flipped = (
        _pictures(tmp_path / "plain", tmp_path),
        _pictures(tmp_path / "flipped", tmp_path),
    )
    for name in ("axial", "coronal", "sagittal"):
        assert np.array_equal(plain[name], flipped[name]), name


def test_png_writer_round_trips_through_pillow() -> None:
    indices = np.arange(35, dtype=np.uint8).reshape(5, 7) % 3
    palette = [(0, 0, 0), (255, 10, 20), (1, 2, 3)]
    png = encode_png(indices, palette)
    assert decode_png("data:image/png;base64," + base64.b64encode(png).decode())[
        4, 6
    ].tolist() == list(palette[indices[4, 6]])
    assert zlib.crc32(png[-8:-4]) is not None
    with pytest.raises(ValueError, match="palette"):
        encode_png(indices, palette[:2])
    with pytest.raises(ValueError, match="2-D"):
        encode_png(np.zeros((0, 3), dtype=np.uint8), palette)


# --- data sets (the layout of `rtmask dataset`, issue 14 section 1) ----------------------

LABELS = {"background": 0, "Heart": 1, "Lung_L": 2}


def _label_map(seed: int, shape: tuple[int, int, int] = (24, 20, 12)) -> np.ndarray:
    labels = np.zeros(shape, dtype=np.uint8)
    labels[4 + seed : 12 + seed, 5:15, 3:9] = 1
    if seed != 2:  # case 2 has no left lung
        labels[14:22, 2 + seed : 12, 2:10] = 2
    return labels


def _nnunet(out: Path, *, monai: bool = False) -> dict[str, np.ndarray]:
    """An nnU-Net v2 (or MONAI) data set of three included, one excluded, one test case."""
    root = out if monai else out / "Dataset501_Thorax"
    images, labels = ("images", "labels") if monai else ("imagesTr", "labelsTr")
    affine = np.diag([-0.8, -0.8, 2.5, 1.0])
    maps = {}
    rows = []
    for seed in range(3):
        case = f"Thorax_{seed:03d}"
        maps[case] = _label_map(seed)
        ct = np.where(maps[case] > 0, 40, -1000).astype(np.int16)
        write_nifti(root / images / f"{case}_0000.nii.gz", ct, affine)
        write_nifti(root / labels / f"{case}.nii.gz", maps[case], affine)
        rows.append({"patient_id": f"P{seed}", "status": "included", "output": case})
    write_nifti(root / "imagesTs" / "Thorax_009_0000.nii.gz", np.zeros((8, 8, 4)), affine)
    rows.append({"patient_id": "P9", "status": "included", "output": "Thorax_009"})
    rows.append(
        {"patient_id": "P5", "status": "excluded", "output": "Thorax_005", "error": "overlap"}
    )
    document: dict[str, object] = {"labels": LABELS, "numTraining": 3, "file_ending": ".nii.gz"}
    if monai:
        document = {"labels": {str(v): k for k, v in LABELS.items()}, "training": []}
    (root / ("datalist.json" if monai else "dataset.json")).write_text(json.dumps(document))
    write_cases(out, rows)
    return maps


@pytest.mark.parametrize("monai", [False, True])
def test_a_data_set_shows_each_label_measured(tmp_path: Path, monai: bool) -> None:
    maps = _nnunet(tmp_path / "out", monai=monai)
    summary = write_report(tmp_path / "out", tmp_path / "r.html")
    assert summary.kind == ("MONAI data set" if monai else "nnU-Net data set")
    page = parse_page(summary.path)
    statuses = sorted((r[0], r[1]) for r in page.tables["cases"][1:])
    assert statuses == [
        ("P0", "included"),
        ("P1", "included"),
        ("P2", "included"),
        ("P5", "excluded"),
        ("P9", "included"),
    ]
    voxel_cm3 = 0.8 * 0.8 * 2.5 / 1000
    for number, (case, labels) in enumerate(maps.items(), start=1):
        rows = {r[1]: r for r in page.tables[f"rois-{number}"][1:]}
        for name, value in LABELS.items():
            if value:
                count = int(np.sum(labels == value))
                assert rows[name][4] == str(count), (case, name)
                assert float(rows[name][5]) == pytest.approx(count * voxel_cm3, abs=5e-4)
    assert [(r[0], r[2]) for r in page.tables["missing"][1:]] == [("P2", "Lung_L")]
    assert [r[0] for r in page.tables["failed"][1:]] == ["P5"]
    # The one excluded case is counted as such, not as a failure.
    assert "Failed cases (0) and excluded cases (1)" in summary.path.read_text(encoding="utf-8")
    assert len(page.images) == 3 * 4  # the test case's image, without labels, too


def test_a_data_set_folder_given_directly(tmp_path: Path) -> None:
    _nnunet(tmp_path / "out")
    source = read_source(tmp_path / "out" / "Dataset501_Thorax")
    assert source.kind == "nnU-Net data set"
    assert len(source.cases) == 5


def test_two_data_sets_in_one_folder_are_refused(tmp_path: Path) -> None:
    _nnunet(tmp_path / "out")
    other = tmp_path / "out" / "Dataset502_Other"
    other.mkdir()
    (other / "dataset.json").write_text("{}")
    with pytest.raises(InvalidInputError, match="several data sets"):
        read_source(tmp_path / "out")


# --- what cannot be drawn, and bad input ----------------------------------------------


def test_unreadable_and_mismatched_files_become_notes(tmp_path: Path) -> None:
    _picture_case(tmp_path / "out", LPS_AFFINE)
    case = tmp_path / "out" / "c"
    write_nifti(case / "Other.nii.gz", np.ones((5, 5, 5), dtype=np.uint8), np.eye(4))
    document = json.loads((case / "summary.json").read_text())
    document["rois"].append({**document["rois"][0], "name": "Other", "file": "Other.nii.gz"})
    (case / "summary.json").write_text(json.dumps(document))
    text = write_report(tmp_path / "out", tmp_path / "r.html").path.read_text()
    assert "Other.nii.gz: on another grid than the first mask; not drawn" in text
    (case / "image.nii.gz").write_bytes(b"not a NIfTI file")
    summary = write_report(tmp_path / "out", tmp_path / "r.html")
    assert "not drawn:" in summary.path.read_text()
    assert summary.detailed == 1


@pytest.mark.parametrize(
    ("make", "output", "message"),
    [
        (lambda p: None, "r.html", "no such folder"),
        (lambda p: p.write_text("x"), "r.html", "is a file, not a folder"),
        (lambda p: p.mkdir(), "r.html", "no cases.csv, so not a converted cohort"),
        (lambda p: write_cases(p, []), "out", "is a folder; give the report's file name"),
        (lambda p: write_cases(p, []), "r.txt", "give a name ending .html"),
    ],
)
def test_bad_input_is_one_line_and_writes_nothing(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    make: object,
    output: str,
    message: str,
) -> None:
    out = tmp_path / "out"
    make(out)  # type: ignore[operator]
    before = sorted(tmp_path.rglob("*"))
    code, text = run_cli_output(capsys, "report", str(out), "-o", str(tmp_path / output))
    assert code == 1
    assert message in text
    assert len(text.strip().splitlines()) == 1
    assert sorted(tmp_path.rglob("*")) == before


def test_a_cases_csv_without_the_columns_is_refused(tmp_path: Path) -> None:
    (tmp_path / "cases.csv").write_text("a,b\n1,2\n")
    with pytest.raises(InvalidInputError, match="no column output, patient_id, status"):
        read_source(tmp_path)


def test_hostile_names_are_escaped(tmp_path: Path) -> None:
    rows = [{"patient_id": "<script>alert(1)</script>", "status": "failed", "error": "<b>x"}]
    write_cases(tmp_path / "out", rows)
    text = write_report(tmp_path / "out", tmp_path / "r.html").path.read_text()
    assert "<script>alert" not in text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text
    assert nib is not None


# --- less common inputs -----------------------------------------------------------------


def test_a_non_ct_image_is_windowed_by_its_percentiles(tmp_path: Path) -> None:
    _picture_case(tmp_path / "out", LPS_AFFINE)
    case = tmp_path / "out" / "c"
    ramp = np.broadcast_to(np.arange(SHAPE[0], dtype=np.float32)[:, None, None], SHAPE)
    write_nifti(case / "image.nii.gz", ramp[..., None] * 10.0, LPS_AFFINE)  # (x, y, z, 1)
    document = json.loads((case / "summary.json").read_text())
    document["image"]["modality"] = "MR"
    document["rois"][0]["color"] = "not a colour"  # a fixed palette colour instead
    (case / "summary.json").write_text(json.dumps(document))
    axial = _pictures(tmp_path / "out", tmp_path)["axial"]
    # Patient's right (i = 0, value 0) on the left: dark there, bright on the right.
    low, high = np.percentile(np.arange(SHAPE[0]) * 10.0, [1, 99])
    assert axial[100, 0, 0] == 0
    assert axial[100, -1, 0] == 255
    middle = axial[100, axial.shape[1] // 2, 0]
    expected = (19.5 * 10 - low) / (high - low) * 255  # the voxel at the picture's middle
    assert abs(int(middle) - expected) < 12
    assert not np.any(np.all(axial == (0, 255, 0), axis=2))  # not the summary's colour


def test_what_cannot_be_drawn_is_a_note(tmp_path: Path) -> None:
    _picture_case(tmp_path / "out", LPS_AFFINE)
    case = tmp_path / "out" / "c"
    write_nifti(case / "image.nii.gz", np.zeros((4, 4, 4), dtype=np.int16), LPS_AFFINE)
    text = write_report(tmp_path / "out", tmp_path / "r.html").path.read_text()
    assert "image.nii.gz: not on the masks&#x27; grid; masks drawn on black" in text
    write_nifti(case / "Cube.nii.gz", np.zeros((4, 4, 4, 2), dtype=np.uint8), np.eye(4))
    text = write_report(tmp_path / "out", tmp_path / "r.html").path.read_text()
    assert "not drawn: " in text
    assert "holds a 4D volume" in text
    (case / "image.nii.gz").unlink()
    (case / "Cube.nii.gz").unlink()
    document = json.loads((case / "summary.json").read_text())
    document["rois"][0]["file"] = "Cube.nrrd"
    (case / "summary.json").write_text(json.dumps(document))
    text = write_report(tmp_path / "out", tmp_path / "r.html").path.read_text()
    assert "no image or mask file to draw" in text
    assert "ROI files .nrrd are not drawn (only NIfTI masks are)" in text


def test_an_empty_label_map_lists_every_label_absent(tmp_path: Path) -> None:
    maps = _nnunet(tmp_path / "out")
    root = tmp_path / "out" / "Dataset501_Thorax"
    case = next(iter(maps))
    write_nifti(root / "labelsTr" / f"{case}.nii.gz", np.zeros((24, 20, 12), np.uint8), np.eye(4))
    page = parse_page(write_report(tmp_path / "out", tmp_path / "r.html").path)
    rows = page.tables["rois-1"][1:]
    assert [(r[1], r[3], r[4]) for r in rows] == [
        ("Heart", "absent", "0"),
        ("Lung_L", "absent", "0"),
    ]
    assert "no voxel of label 1" in rows[0][6]


def test_a_broken_dataset_json_is_one_clear_error(tmp_path: Path) -> None:
    _nnunet(tmp_path / "out")
    (tmp_path / "out" / "Dataset501_Thorax" / "dataset.json").write_text("[1, 2")
    with pytest.raises(InvalidInputError, match=r"dataset.json: not a JSON object"):
        read_source(tmp_path / "out")


def test_a_single_structure_set_converted_into_out(tmp_path: Path) -> None:
    _picture_case(tmp_path / "out", LPS_AFFINE)
    single = tmp_path / "out" / "c"
    document = json.loads((single / "summary.json").read_text())
    document["structure_set"] = {"patient_id": "PAT-1", "warnings": ["a plane is missing"]}
    (single / "summary.json").write_text(json.dumps(document))
    summary = write_report(single, tmp_path / "r.html")
    page = parse_page(summary.path)
    assert [r[:2] for r in page.tables["cases"][1:]] == [["PAT-1", "converted"]]
    assert len(page.images) == 3
    assert "a plane is missing" in summary.path.read_text()


def test_more_outline_colours_than_the_palette_holds() -> None:
    masks = []
    for i in range(80):
        mask = np.zeros((20, 80), dtype=bool)
        mask[5:15, i] = True
        masks.append(mask)
    colours = [(i, 255 - i, 7) for i in range(80)]
    plane = Plane(
        name="axial", shape=(20, 80), image=None, masks=masks, colors=colours, spacing_mm=(1, 1)
    )
    png = render_plane(plane, (0.0, 1.0), size_px=80)
    picture = decode_png("data:image/png;base64," + base64.b64encode(png).decode())
    assert picture.shape == (20, 80, 3)
    assert tuple(picture[10, 0]) == colours[0]
    assert tuple(picture[10, 63]) == colours[63]  # the palette's last free entry
    assert tuple(picture[10, 79]) == colours[63]  # later colours reuse it
    assert window_for(np.array([np.nan]), is_ct=False) == (0.0, 1.0)


def test_a_full_disk_is_one_line_and_leaves_no_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    _cohort_of_volumes(tmp_path / "out", {"P1": [1.0, 2.0]})

    def no_space(source: object, target: object, **kwargs: object) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "replace", no_space)
    page = tmp_path / "pages" / "r.html"
    code, text = run_cli_output(capsys, "report", str(tmp_path / "out"), "-o", str(page))
    assert code == 1
    assert text.startswith(f"error: {page}: no space left on device")
    assert list((tmp_path / "pages").iterdir()) == []


def test_an_output_path_blocked_by_a_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _cohort_of_volumes(tmp_path / "out", {"P1": [1.0, 2.0]})
    (tmp_path / "blocker").write_text("precious")
    page = tmp_path / "blocker" / "r.html"
    code, text = run_cli_output(capsys, "report", str(tmp_path / "out"), "-o", str(page))
    assert code == 1
    assert len(text.strip().splitlines()) == 1
    assert str(tmp_path / "blocker") in text
    assert "a file" in text
    assert (tmp_path / "blocker").read_text() == "precious"
