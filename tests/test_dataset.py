"""``rtmask dataset``: nnU-Net v2 and MONAI layouts, read back with nibabel and SimpleITK.

Every label voxel is checked against the masks ``rtmask convert`` writes for the same
structure set; dataset.json against the fields nnU-Net v2's documentation
(documentation/dataset_format.md, region_based_training.md) requires; the folds for
patient disjointness; the PT channel against SimpleITK's linear resampling of the DICOM
series it reads itself.
"""

from __future__ import annotations

import csv
import json
import re
import shutil
import warnings
from pathlib import Path

import nibabel as nib
import numpy as np
import pydicom
import pytest
import SimpleITK as sitk

from conftest import HFS, OBLIQUE, orthonormal, run_cli_output, slices_at
from dataset_archive import LABELS, PATIENTS, ct_grid, make_dataset_archive, sphere_rois
from rtmask.cli import main
from rtmask.cohort import (
    CASE_COLUMNS,
    DatasetOptions,
    SerialExecutor,
    build_dataset,
    case_identifiers,
    failed_dataset_result,
    patient_folds,
    plan_dataset,
    region_labels,
    resample_linear,
    run_dataset_case,
)
from rtmask.cohort._dataset_plan import DatasetPlan
from rtmask.convert import ConversionOptions, convert_structure_set
from rtmask.discovery import read_image_series
from rtmask.errors import GeometryWarning, InvalidInputError
from rtmask.geometry import ImageGrid
from rtmask.report._read import read_source
from rtmask.rtstruct import read_rtstruct
from rtmask.synthetic import RoiSpec, sphere_contours, write_ct_series, write_rtstruct

#: dataset.json keys nnU-Net v2 requires (documentation/dataset_format.md).
NNUNET_REQUIRED = {"channel_names", "labels", "numTraining", "file_ending"}
COMMON = ["--labels", ",".join(LABELS), "--id", "501", "--name", "Thorax"]


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_dataset_archive(tmp_path_factory.mktemp("dataset") / "archive")


def _build(
    capsys: pytest.CaptureFixture[str], archive: Path, out: Path, *extra: str
) -> tuple[int, str]:
    return run_cli_output(capsys, "dataset", str(archive), "-o", str(out), *COMMON, *extra)


def _rows(out: Path) -> list[dict[str, str]]:
    with (out / "cases.csv").open(newline="", encoding="utf-8") as stream:
        return list(csv.DictReader(stream))


def _by_source(out: Path) -> dict[str, dict[str, str]]:
    return {row["structure_set"]: row for row in _rows(out)}


def _load(path: Path) -> tuple[np.ndarray, np.ndarray, nib.Nifti1Image]:
    image = nib.load(path)
    return np.asarray(image.dataobj), image.affine, image


def _rtmask_masks(source: Path, folder: Path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """``rtmask convert``'s masks of a structure set (nibabel arrays), and its image."""
    structure_set = read_rtstruct(source)
    series = read_image_series(source.parent / "ct")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", GeometryWarning)  # uneven slices: said by both
        convert_structure_set(
            structure_set, series.grid, folder, ConversionOptions(), series=series
        )
    summary = json.loads((folder / "summary.json").read_text(encoding="utf-8"))
    masks = {}
    for row in summary["rois"]:
        data, affine, _ = _load(folder / row["file"])
        masks[row["name"].casefold()] = (data.astype(bool), affine)
    data, affine, _ = _load(folder / "image.nii.gz")
    masks["image"] = (data, affine)
    return masks


def check_like_nnunet(folder: Path) -> dict[str, object]:
    """The rules of nnU-Net v2's documentation/dataset_format.md, checked on a data set.

    dataset.json has the required keys; labels map names to consecutive integers from
    background 0 (a region may list several); numTraining counts labelsTr; every case has
    one ``_XXXX`` image per channel, and every image and label of a case share one geometry;
    a label map holds only declared values.
    """
    document = json.loads((folder / "dataset.json").read_text(encoding="utf-8"))
    assert set(document) >= NNUNET_REQUIRED
    labels = document["labels"]
    assert labels["background"] == 0
    values = {
        v for value in labels.values() for v in (value if isinstance(value, list) else [value])
    }
    assert values == set(range(max(values) + 1))
    if any(isinstance(value, list) for value in labels.values()):
        assert len(document["regions_class_order"]) == len(labels) - 1
    ending = document["file_ending"]
    cases = sorted(p.name.removesuffix(ending) for p in (folder / "labelsTr").iterdir())
    assert document["numTraining"] == len(cases)
    channels = sorted(document["channel_names"], key=int)
    assert channels == [str(i) for i in range(len(channels))]
    images = sorted(p.name for p in (folder / "imagesTr").iterdir())
    assert images == sorted(f"{c}_{int(k):04d}{ending}" for c in cases for k in channels)
    for case in cases:
        label = nib.load(folder / "labelsTr" / f"{case}{ending}")
        assert set(np.unique(np.asarray(label.dataobj))) <= values
        for k in channels:
            image = nib.load(folder / "imagesTr" / f"{case}_{int(k):04d}{ending}")
            assert image.shape == label.shape
            np.testing.assert_array_equal(image.affine, label.affine)
    return document


@pytest.fixture(scope="module")
def nnunet(archive: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """The default nnU-Net data set of the archive (P7 the test patient)."""
    out = tmp_path_factory.mktemp("nnunet") / "out"
    code = main(["dataset", str(archive), "-o", str(out), *COMMON, "--test", "P7", "-q"])
    assert code == 0
    return out, ""


def test_nnunet_layout_statuses_and_names(nnunet: tuple[Path, str]) -> None:
    out, _ = nnunet
    rows = _by_source(out)
    assert list(_rows(out)[0]) == list(CASE_COLUMNS)
    status = {source.split("/")[0]: row["status"] for source, row in rows.items()}
    assert status == {
        "p1": "included",
        "p2": "excluded",  # 'lung l' is not Lung_L without a map
        "p3": "included",
        "p4": "excluded",
        "p5": "excluded",
        "p6": "included",
        "p7": "included",
    }
    assert "Lung_L" in rows["p2/study0/RS.dcm"]["error"]
    assert "Heart" in rows["p4/study0/RS.dcm"]["error"]
    assert "'Lung_L' and 'Heart' share" in rows["p5/study0/RS.dcm"]["error"]
    hostile = rows["p3/study0/RS.dcm"]["output"]
    assert hostile.startswith("x_y_")
    assert set(hostile) <= set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-")
    folder = out / "Dataset501_Thorax"
    train = sorted(p.name for p in (folder / "labelsTr").iterdir())
    included = sorted(
        f"{r['output']}.nii.gz"
        for r in rows.values()
        if r["status"] == "included" and r["patient_id"] != "P7"
    )
    assert train == included
    assert len(train) == 4
    test_case = next(r["output"] for r in rows.values() if r["patient_id"] == "P7")
    assert [p.name for p in (folder / "imagesTs").iterdir()] == [f"{test_case}_0000.nii.gz"]
    assert sorted(p.name for p in (folder / "imagesTr").iterdir()) == [
        name.replace(".nii.gz", "_0000.nii.gz") for name in train
    ]
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no staging left


def test_dataset_json_has_nnunet_v2_fields(nnunet: tuple[Path, str]) -> None:
    out, _ = nnunet
    document = check_like_nnunet(out / "Dataset501_Thorax")
    assert document["channel_names"] == {"0": "CT"}
    assert document["labels"] == {"background": 0, "Lung_L": 1, "Lung_R": 2, "Heart": 3}
    assert list(document["labels"]) == ["background", *LABELS]  # label order kept
    assert document["numTraining"] == len(list((out / "Dataset501_Thorax" / "labelsTr").iterdir()))
    assert document["file_ending"] == ".nii.gz"
    assert "regions_class_order" not in document


def test_every_label_voxel_is_rtmasks_mask(
    nnunet: tuple[Path, str], archive: Path, tmp_path: Path
) -> None:
    out, _ = nnunet
    folder = out / "Dataset501_Thorax"
    for source, row in _by_source(out).items():
        if row["status"] != "included":
            continue
        case = row["output"]
        test = row["patient_id"] == "P7"
        label_path = folder / ("labelsTs" if test else "labelsTr") / f"{case}.nii.gz"
        labels, affine, image = _load(label_path)
        assert image.get_data_dtype() == np.uint8
        masks = _rtmask_masks(archive / source, tmp_path / case)
        pixels, image_affine, _ = _load(
            folder / ("imagesTs" if test else "imagesTr") / f"{case}_0000.nii.gz"
        )
        np.testing.assert_array_equal(affine, image_affine)
        np.testing.assert_array_equal(affine, masks["image"][1])
        np.testing.assert_array_equal(pixels, masks["image"][0])
        assert labels.shape == pixels.shape
        for value, name in enumerate(LABELS, start=1):
            mask, mask_affine = masks[name.casefold()]
            np.testing.assert_array_equal(mask_affine, affine)
            assert mask.any()
            np.testing.assert_array_equal(labels == value, mask)
        assert set(np.unique(labels)) <= {0, 1, 2, 3}


def test_splits_are_patient_disjoint(nnunet: tuple[Path, str]) -> None:
    out, _ = nnunet
    folder = out / "Dataset501_Thorax"
    splits = json.loads((folder / "splits_final.json").read_text())
    patient_of = {r["output"]: r["patient_id"] for r in _rows(out)}
    training = {p.name.removesuffix(".nii.gz") for p in (folder / "labelsTr").iterdir()}
    # 4 training cases of 3 patients (P1 twice): 3 folds, each patient in one
    assert len(splits) == 3
    validation = [set(s["val"]) for s in splits]
    assert set().union(*validation) == training
    assert sum(len(v) for v in validation) == len(training)
    for split in splits:
        assert set(split["train"]) | set(split["val"]) == training
        assert not {patient_of[c] for c in split["train"]} & {patient_of[c] for c in split["val"]}
    assert any(len(v) == 2 for v in validation)  # P1's two cases together


def test_priority_overlap_keeps_the_earlier_label(
    archive: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    code, output = _build(capsys, archive, out, "--overlap", "priority")
    assert code == 0, output
    row = _by_source(out)["p5/study0/RS.dcm"]
    assert row["status"] == "included"
    masks = _rtmask_masks(archive / "p5/study0/RS.dcm", tmp_path / "p5")
    lung, heart = masks["lung_l"][0], masks["heart"][0]
    shared = int(np.count_nonzero(lung & heart))
    assert shared > 0
    assert f"{shared} voxels of 'Heart' kept by the earlier label(s) 'Lung_L'" in output
    labels, _, _ = _load(out / "Dataset501_Thorax" / "labelsTr" / f"{row['output']}.nii.gz")
    np.testing.assert_array_equal(labels == 1, lung)
    np.testing.assert_array_equal(labels == 3, heart & ~lung)
    case = json.loads((out / "Dataset501_Thorax" / "cases" / f"{row['output']}.json").read_text())
    assert case["voxels"]["Heart"] == int(heart.sum())
    assert any(str(shared) in note for note in case["notes"])


def test_regions_one_value_per_combination(
    archive: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    code, output = _build(capsys, archive, out, "--overlap", "regions")
    assert code == 0, output
    folder = out / "Dataset501_Thorax"
    document = check_like_nnunet(folder)
    assert document["labels"] == {"background": 0, "Lung_L": [1, 4], "Lung_R": [2], "Heart": [3, 4]}
    assert document["regions_class_order"] == [1, 2, 3]  # one per region, label order
    row = _by_source(out)["p5/study0/RS.dcm"]
    labels, _, _ = _load(folder / "labelsTr" / f"{row['output']}.nii.gz")
    assert labels.dtype == np.uint8
    masks = _rtmask_masks(archive / "p5/study0/RS.dcm", tmp_path / "p5")
    for name, values in document["labels"].items():
        if name != "background":
            np.testing.assert_array_equal(np.isin(labels, values), masks[name.casefold()][0])
    assert not (folder / ".regions").exists()


def test_missing_empty_lists_the_absent_labels(
    archive: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    code, output = _build(capsys, archive, out, "--missing", "empty")
    assert code == 0, output
    rows = _by_source(out)
    row = rows["p4/study0/RS.dcm"]
    assert row["status"] == "included"
    assert row["rois_written"] == "2"
    case = json.loads((out / "Dataset501_Thorax" / "cases" / f"{row['output']}.json").read_text())
    assert case["annotated"] == ["Lung_L", "Lung_R"]
    assert case["absent"] == ["Heart"]
    labels, _, _ = _load(out / "Dataset501_Thorax" / "labelsTr" / f"{row['output']}.nii.gz")
    assert set(np.unique(labels)) == {0, 1, 2}


def test_missing_error_writes_nothing(
    archive: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    code, output = _build(capsys, archive, out, "--missing", "error")
    assert code != 0
    assert "--missing error" in output
    assert "p4/study0/RS.dcm lacks Heart" in output
    assert not out.exists()


def test_roi_map_brings_in_other_names(
    archive: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    roi_map = tmp_path / "map.yaml"
    roi_map.write_text("Lung_L: ['lung l', 'Lung_L']\nLung_R: [lung_r]\nHeart: [heart]\n")
    out = tmp_path / "out"
    code, output = _build(capsys, archive, out, "--roi-map", str(roi_map))
    assert code == 0, output
    row = _by_source(out)["p2/study0/RS.dcm"]
    assert row["status"] == "included"
    labels, _, _ = _load(out / "Dataset501_Thorax" / "labelsTr" / f"{row['output']}.nii.gz")
    masks = _rtmask_masks(archive / "p2/study0/RS.dcm", tmp_path / "p2")
    np.testing.assert_array_equal(labels == 1, masks["lung l"][0])


def test_monai_datalist(archive: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # MONAI needs no nnU-Net id or name: images/, labels/ and datalist.json go directly in OUT.
    out = tmp_path / "out"
    code, output = run_cli_output(
        capsys,
        "dataset",
        str(archive),
        "-o",
        str(out),
        "--labels",
        ",".join(LABELS),
        "--format",
        "monai",
        "--test",
        "P7,P99",
        "--seed",
        "3",
    )
    assert code == 0, output
    assert "test patient(s) not in the archive: P99" in output
    assert sorted(p.name for p in out.iterdir()) == [
        "cases",
        "cases.csv",
        "cases.parquet",
        "datalist.json",
        "images",
        "labels",
    ]
    folder = out
    datalist = json.loads((folder / "datalist.json").read_text())
    assert "name" not in datalist
    patient_of = {r["output"]: r["patient_id"] for r in _rows(out)}
    entries = datalist["training"]
    assert len(entries) == 4
    assert {e["fold"] for e in entries} == {0, 1, 2}
    folds: dict[int, set[str]] = {}
    for entry in entries:
        assert set(entry) == {"image", "label", "fold"}
        assert (folder / entry["image"]).is_file()
        assert (folder / entry["label"]).is_file()
        case = Path(entry["label"]).name.removesuffix(".nii.gz")
        folds.setdefault(entry["fold"], set()).add(patient_of[case])
    assert sum(len(p) for p in folds.values()) == len(set().union(*folds.values()))
    assert [Path(e["image"]).parent.name for e in datalist["testing"]] == ["images"]
    assert datalist["labels"] == {"0": "background", "1": "Lung_L", "2": "Lung_R", "3": "Heart"}
    # The label maps are rtmask's own masks, label i = the i-th of --labels.
    row = _by_source(out)["p1/study0/RS.dcm"]
    labels, affine, _ = _load(out / "labels" / f"{row['output']}.nii.gz")
    masks = _rtmask_masks(archive / "p1/study0/RS.dcm", tmp_path / "p1")
    np.testing.assert_allclose(affine, masks["image"][1], atol=1e-4)
    for value, name in enumerate(LABELS, start=1):
        np.testing.assert_array_equal(labels == value, masks[name.casefold()][0])
    # rtmask report reads OUT as the MONAI data set it is.
    assert read_source(out).kind == "MONAI data set"


def test_monai_in_out_replaced_only_with_force(
    archive: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "datalist.json").write_text("{}")
    (out / "notes.txt").write_text("mine")
    monai = ["--labels", ",".join(LABELS), "--format", "monai", "--name", "Thorax", "--id", "5"]
    code, output = run_cli_output(capsys, "dataset", str(archive), "-o", str(out), *monai)
    assert code == 1
    (line,) = [text for text in output.splitlines() if text.startswith("error")]
    assert "already holds datalist.json" in line
    assert "--force" in line
    assert "force=True" not in line
    assert sorted(p.name for p in out.iterdir()) == ["datalist.json", "notes.txt"]
    code, output = run_cli_output(
        capsys, "dataset", str(archive), "-o", str(out), *monai, "--force"
    )
    assert code == 0, output
    assert "--id 5: nnU-Net's data set id, not used by --format monai" in " ".join(output.split())
    datalist = json.loads((out / "datalist.json").read_text())
    assert datalist["name"] == "Thorax"
    included = sorted(r["output"] for r in _rows(out) if r["status"] == "included")
    assert sorted(Path(e["label"]).name[:-7] for e in datalist["training"]) == included
    assert sorted(p.name[:-7] for p in (out / "labels").iterdir()) == included
    assert (out / "notes.txt").read_text() == "mine"
    assert not [p.name for p in out.iterdir() if p.name.startswith(".")]  # no staging, no trash
    # Again: every entry (folders and datalist.json) replaced, none left behind.
    code, output = run_cli_output(
        capsys, "dataset", str(archive), "-o", str(out), *monai, "--force"
    )
    assert code == 0, output
    assert json.loads((out / "datalist.json").read_text()) == datalist
    assert not [p.name for p in out.iterdir() if p.name.startswith(".")]


@pytest.mark.parametrize(
    ("given", "missing"),
    [
        ([], "--id NNN and --name NAME"),
        (["--id", "7"], "--name NAME"),
        (["--name", "X"], "--id NNN"),
    ],
)
def test_nnunet_needs_id_and_name(
    archive: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    given: list[str],
    missing: str,
) -> None:
    out = tmp_path / "out"
    code, output = run_cli_output(
        capsys, "dataset", str(archive), "-o", str(out), "--labels", ",".join(LABELS), *given
    )
    assert code == 2
    (line,) = [text for text in output.splitlines() if text.startswith("error")]
    assert f"--format nnunet needs {missing} " in line
    assert "Traceback" not in output
    assert not out.exists()
    with pytest.raises(InvalidInputError, match="an nnU-Net data set needs both"):
        DatasetOptions(labels=LABELS, name="X")


def _sitk_series(folder: Path) -> sitk.Image:
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(reader.GetGDCMSeriesFileNames(str(folder)))
    return reader.Execute()


def test_pt_channel_is_simpleitks_linear_resampling(
    archive: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    code, output = _build(capsys, archive, out, "--channel", "CT", "--channel", "PT")
    assert code == 0, output
    folder = out / "Dataset501_Thorax"
    document = check_like_nnunet(folder)
    assert document["channel_names"] == {"0": "CT", "1": "PT"}
    assert "linear" in document["channel_resampling"]["1"]
    for source, row in _by_source(out).items():
        if row["status"] != "included":
            continue
        case = row["output"]
        ct = sitk.ReadImage(str(folder / "imagesTr" / f"{case}_0000.nii.gz"))
        pt = _sitk_series((archive / source).parent / "pt")
        low = float(sitk.GetArrayViewFromImage(pt).min())
        expected = sitk.GetArrayFromImage(
            sitk.Resample(pt, ct, sitk.Transform(), sitk.sitkLinear, low, sitk.sitkFloat32)
        )
        mine = sitk.GetArrayFromImage(
            sitk.ReadImage(str(folder / "imagesTr" / f"{case}_0001.nii.gz"))
        )
        ours, _, _ = _load(folder / "imagesTr" / f"{case}_0001.nii.gz")
        assert ours.shape == nib.load(folder / "imagesTr" / f"{case}_0000.nii.gz").shape
        np.testing.assert_allclose(mine, expected, atol=1e-2)
        assert (expected > low).mean() > 0.3  # the PT covers much of the CT


@pytest.mark.parametrize(
    ("extra", "words"),
    [
        (["--labels", "Lung_L,Spleen"], ["--labels", "'Spleen'", "Lung_L"]),
        (["--name", "a/b"], ["--name", "'a/b'"]),
        (["--labels", "Lung_L,lung_l"], ["--labels", "unique"]),
        (["--jobs", "0"], ["--jobs 0"]),
    ],
)
def test_bad_options_say_so_and_write_nothing(
    archive: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    extra: list[str],
    words: list[str],
) -> None:
    out = tmp_path / "out"
    code, output = _build(capsys, archive, out, *extra)
    assert code != 0
    line = [text for text in output.splitlines() if text.startswith("error")]
    assert len(line) == 1, output
    for word in words:
        assert word in line[0]
    assert not out.exists() or not any(out.iterdir())


def test_dataset_id_used_needs_force(
    archive: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    (out / "Dataset501_Other").mkdir(parents=True)
    (out / "Dataset501_Other" / "keep.txt").write_text("old")
    code, output = _build(capsys, archive, out)
    assert code != 0
    assert "Dataset501_Other" in output
    assert "--force" in output
    assert "--id" in output
    assert "force=True" not in output
    assert sorted(p.name for p in out.iterdir()) == ["Dataset501_Other"]
    code, output = _build(capsys, archive, out, "--force")
    assert code == 0, output
    assert sorted(p.name for p in out.iterdir()) == [
        "Dataset501_Thorax",
        "cases.csv",
        "cases.parquet",
    ]


def test_output_folder_that_is_a_file(
    archive: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    out.write_text("not a folder")
    for extra in ([], ["--format", "monai"]):
        code, output = _build(capsys, archive, out, *extra)
        assert code != 0
        assert "the output folder is a file" in output
        assert out.read_text() == "not a folder"
    out = tmp_path / "out2"
    (out / "Dataset501_Thorax").parent.mkdir()
    (out / "Dataset501_Thorax").write_text("x")
    code, output = _build(capsys, archive, out)
    assert code != 0
    assert "a file is in the way" in output


def test_two_jobs_give_the_same_data_set(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    archive = make_dataset_archive(tmp_path / "archive", PATIENTS[5:], pt=False)
    trees = []
    for jobs in ("1", "2"):
        out = tmp_path / f"out{jobs}"
        code, output = _build(capsys, archive, out, "--jobs", jobs)
        assert code == 0, output
        folder = out / "Dataset501_Thorax"
        trees.append(
            {
                p.relative_to(folder).as_posix(): p.read_bytes()
                if p.suffix == ".json" and p.parent == folder
                else np.asarray(nib.load(p).dataobj).tobytes()
                for p in folder.rglob("*.nii.gz")
            }
        )
    assert trees[0] == trees[1]
    assert len(trees[0]) == 4


def test_case_identifiers_are_safe_and_unique() -> None:
    ids = case_identifiers(
        [
            ("../..", "1.2.3"),
            ("CON", "1.2.4"),
            ("a/b", "1.2.5"),
            ("", ""),
            ("P 1", "9.9"),
            ("P_1", "9.9"),
        ]
    )
    assert len({i.casefold() for i in ids}) == len(ids)
    for identifier in ids:
        assert identifier
        assert all(c.isalnum() or c in "_-" for c in identifier)
    assert ids[1] == "CON_124"
    assert ids[4] != ids[5]


def test_patient_folds_never_split_a_patient() -> None:
    cases = [(f"c{i}", f"p{i % 7}") for i in range(30)]
    folds, notes = patient_folds(cases, 5, seed=1)
    assert len(folds) == 5
    assert notes == []
    patient = dict(cases)
    for train, val in folds:
        assert not {patient[c] for c in train} & {patient[c] for c in val}
    assert sorted(c for _, val in folds for c in val) == sorted(c for c, _ in cases)
    assert patient_folds(cases, 5, seed=2) != folds  # the seed matters
    assert patient_folds([("a", "p")], 5, seed=0)[0] == []


def test_region_labels_keep_single_labels_first() -> None:
    assert region_labels(3, [0b101, 0b011, 0b001, 0b111]) == {1: 1, 2: 2, 4: 3, 3: 4, 5: 5, 7: 6}


def test_the_library_refuses_a_used_id(archive: Path, tmp_path: Path) -> None:
    options = DatasetOptions(labels=LABELS, dataset_id=7, name="X")
    report = build_dataset(
        archive, tmp_path / "out", options, SerialExecutor(function=run_dataset_case)
    )
    assert report.folder is not None
    assert (report.folder / "splits_final.json").is_file()
    with pytest.raises(InvalidInputError, match="already used"):
        build_dataset(archive, tmp_path / "out", options, SerialExecutor(function=run_dataset_case))


@pytest.fixture(scope="module")
def awkward(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Structure sets that fail or are left out at each step, beside two good ones."""
    base = tmp_path_factory.mktemp("awkward")
    root = make_dataset_archive(base / "archive", (PATIENTS[5], PATIENTS[6]), pt=False)
    grid = ct_grid()
    sphere = tuple(
        (c, "CLOSED_PLANAR")
        for c in sphere_contours(grid, grid.index_to_patient([[3.5, 10, 12]])[0], 4.0)
    )
    far = tuple(
        (c + np.array([0.0, 0.0, 0.6]), "CLOSED_PLANAR")
        for c in sphere_contours(grid, grid.index_to_patient([[3.5, 10, 12]])[0], 0.2)
    )
    cases = {
        "empty_heart": [("Lung_L", sphere), ("Lung_R", sphere[:2]), ("Heart", ())],
        "tiny_heart": [("Lung_L", sphere), ("Lung_R", sphere[:2]), ("Heart", far)],
        "two_hearts": [("Lung_L", sphere), ("Heart", sphere), ("heart", sphere)],
    }
    for folder, rois in cases.items():
        ct = write_ct_series(root / folder / "ct", grid, patient_id=folder)
        specs = [
            RoiSpec(number=n, name=name, contours=contours)
            for n, (name, contours) in enumerate(rois, start=1)
        ]
        write_rtstruct(root / folder / "RS.dcm", specs, ct)
    ct = write_ct_series(base / "elsewhere", grid, patient_id="orphan")
    orphan = [RoiSpec(number=n, name=name, contours=sphere) for n, name in enumerate(LABELS, 1)]
    write_rtstruct(root / "orphan" / "RS.dcm", orphan, ct)
    good = root / "p6" / "study0" / "RS.dcm"
    (root / "broken.dcm").write_bytes(good.read_bytes()[:1500])
    return root


def test_awkward_cases_are_listed_with_their_reason(
    awkward: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    out.mkdir()
    stale = out / ".Dataset501_Thorax.building-0badf00d"
    stale.mkdir()  # a killed run's staging folder
    code, output = _build(capsys, awkward, out)
    assert code == 1  # failed cases
    rows = _by_source(out)
    assert rows["p6/study0/RS.dcm"]["status"] == "included"
    assert rows["p7/study0/RS.dcm"]["status"] == "included"
    assert rows["empty_heart/RS.dcm"]["status"] == "excluded"
    assert "Heart" in rows["empty_heart/RS.dcm"]["error"]
    assert rows["tiny_heart/RS.dcm"]["status"] == "excluded"
    assert "holds no voxel centre" in rows["tiny_heart/RS.dcm"]["error"]
    assert rows["two_hearts/RS.dcm"]["status"] == "failed"
    assert "would both be label 'Heart'" in rows["two_hearts/RS.dcm"]["error"]
    assert rows["orphan/RS.dcm"]["status"] == "failed"
    assert rows["broken.dcm"]["status"] == "failed"
    # output: the case identifier of the included cases' files, empty for the others
    for source, row in rows.items():
        if source in ("p6/study0/RS.dcm", "p7/study0/RS.dcm"):
            assert (out / "Dataset501_Thorax" / "labelsTr" / f"{row['output']}.nii.gz").is_file()
        else:
            assert row["output"] == "", row
    assert not stale.exists()
    assert "Traceback" not in output


@pytest.mark.parametrize("dataset_format", ["nnunet", "monai"])
def test_a_copy_of_a_structure_set_is_an_excluded_row(
    dataset_format: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    archive = make_dataset_archive(tmp_path / "archive", (PATIENTS[5], PATIENTS[6]), pt=False)
    original = archive / "p6" / "study0" / "RS.dcm"
    (archive / "zz_copies").mkdir()
    shutil.copyfile(original, archive / "zz_copies" / "RS_copy.dcm")
    shutil.copyfile(original, archive / "a_copy.dcm")  # first in path order
    uid = pydicom.dcmread(original, stop_before_pixels=True).SOPInstanceUID
    out = tmp_path / "out"
    code, output = _build(capsys, archive, out, "--format", dataset_format)
    assert code == 0, output
    sources = [row["structure_set"] for row in _rows(out)]
    put = ["a_copy.dcm", "p6/study0/RS.dcm", "p7/study0/RS.dcm", "zz_copies/RS_copy.dcm"]
    assert sorted(sources) == put  # every structure set file once
    rows = _by_source(out)
    assert [rows[s]["status"] for s in put] == ["included", "excluded", "included", "excluded"]
    for copy in ("p6/study0/RS.dcm", "zz_copies/RS_copy.dcm"):
        expected = f"duplicate of a_copy.dcm (same SOPInstanceUID {uid})"
        assert rows[copy]["error"].startswith(expected)
        assert rows[copy]["structure_set_uid"] == uid
        assert rows[copy]["output"] == ""
    assert "p6/study0/RS.dcm left out: duplicate of a_copy.dcm" in " ".join(output.split())
    folder = out / "Dataset501_Thorax" if dataset_format == "nnunet" else out / "images"
    images = sorted(p.name for p in folder.rglob("*_0000.nii.gz"))
    assert images == sorted(f"{rows[s]['output']}_0000.nii.gz" for s in put[::2])


def test_a_case_that_fails_part_way_leaves_no_file(tmp_path: Path) -> None:
    archive = make_dataset_archive(tmp_path / "archive", (PATIENTS[5], PATIENTS[6]))

    def break_pt(plan: DatasetPlan) -> None:  # P6's PT series, once its CT is planned
        (task,) = [t for t in plan.tasks if t.patient_id == "P6"]
        pt_file = task.channels[0].files[0]
        pt_file.write_bytes(pt_file.read_bytes()[:1000])

    options = DatasetOptions(labels=LABELS, dataset_id=5, name="Part", channels=("CT", "PT"))
    report = build_dataset(
        archive,
        tmp_path / "out",
        options,
        SerialExecutor(function=run_dataset_case),
        planned=break_pt,
    )
    rows = {r.patient_id: r for r in report.rows}
    assert rows["P6"].status == "failed"
    assert rows["P6"].output == ""
    assert rows["P7"].status == "included"
    assert report.folder is not None
    written = sorted(p.name for p in report.folder.rglob("*") if p.is_file())
    case = rows["P7"].output
    assert written == sorted(
        [f"{case}_0000.nii.gz", f"{case}_0001.nii.gz", f"{case}.nii.gz", f"{case}.json",
         "dataset.json"]
    )  # fmt: skip


def test_a_structure_set_gone_before_its_turn_fails_alone(awkward: Path, tmp_path: Path) -> None:
    copy = tmp_path / "archive"
    shutil.copytree(awkward / "p6", copy / "p6")
    shutil.copytree(awkward / "p7", copy / "p7")

    def remove_one(plan: DatasetPlan) -> None:
        plan.tasks[0].source.unlink()

    options = DatasetOptions(labels=LABELS, dataset_id=3, name="Gone")
    report = build_dataset(
        copy,
        tmp_path / "out",
        options,
        SerialExecutor(function=run_dataset_case),
        planned=remove_one,
    )
    statuses = sorted(r.status for r in report.rows)
    assert statuses == ["failed", "included"]
    assert report.folder is not None
    assert report.notes == ("1 training patient(s): no cross-validation splits written",)
    assert not (report.folder / "splits_final.json").exists()


@pytest.mark.parametrize(
    ("channels", "reason"),
    [
        (["--channel", "MR"], "its image series is CT, not the first channel MR"),
        (["--channel", "CT", "--channel", "PT"], "no PT series in the frame of reference"),
    ],
)
def test_channels_not_found_leave_cases_out(
    awkward: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    channels: list[str],
    reason: str,
) -> None:
    out = tmp_path / "out"
    code, output = _build(capsys, awkward, out, *channels)
    assert code == 1
    assert "no case was included" in output
    assert reason in _by_source(out)["p6/study0/RS.dcm"]["error"]
    assert sorted(p.name for p in out.iterdir()) == ["cases.csv", "cases.parquet"]


@pytest.mark.parametrize(
    ("changes", "words"),
    [
        ({"labels": ()}, "at least one label"),
        ({"labels": tuple(f"L{i}" for i in range(256))}, "at most 255"),
        ({"labels": ("background",)}, "'background'"),
        ({"dataset_id": 1000}, "3-digit"),
        ({"name": ""}, "letters, digits"),
        ({"dataset_format": "nnunet1"}, "format="),
        ({"overlap": "union"}, "overlap="),
        ({"missing": "ignore"}, "missing="),
        ({"channels": ()}, "channel"),
        ({"folds": 1}, "at least 2"),
    ],
)
def test_options_are_checked(changes: dict[str, object], words: str) -> None:
    settings: dict[str, object] = {"labels": LABELS, "dataset_id": 1, "name": "A", **changes}
    with pytest.raises(InvalidInputError, match=re.escape(words)):
        DatasetOptions(**settings)  # type: ignore[arg-type]


def test_no_structure_set_and_no_root(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "empty").mkdir()
    code, output = _build(capsys, tmp_path / "empty", tmp_path / "out")
    assert code == 1
    assert "no RT Structure Set found" in output
    code, output = _build(capsys, tmp_path / "nowhere", tmp_path / "out")
    assert code == 2
    assert "check ROOT" in output
    roi_map = tmp_path / "map.yaml"
    roi_map.write_text("[not, a, map]\n")
    code, output = _build(capsys, tmp_path / "empty", tmp_path / "out", "--roi-map", str(roi_map))
    assert code == 2
    assert "--roi-map" in output
    archive = make_dataset_archive(tmp_path / "archive", PATIENTS[5:6], pt=False)
    with pytest.raises(SystemExit) as caught:  # a usage error, before anything is written
        _build(capsys, archive, tmp_path / "out", "--scheduler", "local:x")
    assert caught.value.code == 2
    assert "local:N" in capsys.readouterr().err


def test_a_dead_worker_is_a_failed_case(awkward: Path, tmp_path: Path) -> None:
    options = DatasetOptions(labels=LABELS, dataset_id=4, name="Dead")
    plan = plan_dataset(awkward, tmp_path / "staging", options)
    result = failed_dataset_result(plan.tasks[0], "worker died")
    assert result.row.status == "failed"
    assert result.row.error == "worker died"
    assert result.row.output == ""  # nothing of it is in the data set


def test_uneven_slices_are_a_note(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    base = ct_grid()
    steps = np.array([0, 2.5, 5, 7.5, 12.5, 15, 17.5, 20])
    grid = slices_at(base, base.origin_mm + np.outer(steps, base.normal))
    archive = make_dataset_archive(tmp_path / "archive", PATIENTS[6:], pt=False)
    ct = write_ct_series(tmp_path / "archive" / "uneven" / "ct", grid, patient_id="U")
    write_rtstruct(tmp_path / "archive" / "uneven" / "RS.dcm", sphere_rois(ct.grid), ct)
    out = tmp_path / "out"
    code, output = _build(capsys, archive, out, "--overlap", "regions")
    assert code == 0, output
    assert "unevenly spaced" in output
    row = _by_source(out)["uneven/RS.dcm"]
    labels, _, _ = _load(out / "Dataset501_Thorax" / "labelsTr" / f"{row['output']}.nii.gz")
    masks = _rtmask_masks(archive / "uneven" / "RS.dcm", tmp_path / "u")
    for value, name in enumerate(LABELS, start=1):
        np.testing.assert_array_equal(labels == value, masks[name.casefold()][0])


@pytest.mark.parametrize("uneven", [False, True])
def test_linear_resampling_reproduces_a_linear_field(uneven: bool) -> None:
    """Trilinear interpolation is exact for a field linear in patient space (any grids)."""
    source = ct_grid(OBLIQUE, shape=(9, 14, 16))
    if uneven:
        steps = np.array([0, 2.5, 5, 9, 11.5, 14, 19, 21.5, 24])
        source = slices_at(source, source.origin_mm + np.outer(steps, source.normal))
    target = ImageGrid.from_explicit(
        origin_mm=tuple(source.index_to_patient([[0.7, 1.2, 0.9]])[0]),
        spacing_mm=(1.7, 0.8, 0.7),
        shape=(10, 15, 17),
        orientation=orthonormal(HFS),
    )

    def field(points: np.ndarray) -> np.ndarray:
        return points @ np.array([0.5, -1.25, 2.0]) + 30.0

    k, j, i = np.meshgrid(*(np.arange(n) for n in source.shape), indexing="ij")
    source_points = source.index_to_patient(np.column_stack([k.ravel(), j.ravel(), i.ravel()]))
    values = field(source_points).reshape(source.shape)
    result = resample_linear(values, source, target, fill=-999.0)
    k, j, i = np.meshgrid(*(np.arange(n) for n in target.shape), indexing="ij")
    points = target.index_to_patient(np.column_stack([k.ravel(), j.ravel(), i.ravel()]))
    at = source.patient_to_index(points)
    inner = np.all((at >= 0) & (at <= np.array(source.shape) - 1), axis=1)
    outer = np.any((at < -0.5 - 1e-3) | (at > np.array(source.shape) - 0.5 + 1e-3), axis=1)
    assert inner.sum() > 100
    assert outer.sum() > 100
    np.testing.assert_allclose(result.ravel()[inner], field(points[inner]), atol=1e-3)
    assert np.all(result.ravel()[outer] == -999.0)


def test_a_local_dask_cluster_builds_the_same_data_set(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    archive = make_dataset_archive(tmp_path / "archive", PATIENTS[5:], pt=False)
    arrays = []
    for extra in ([], ["--scheduler", "local:1"]):
        out = tmp_path / f"out{len(extra)}"
        code, output = _build(capsys, archive, out, *extra)
        assert code == 0, output
        labels = sorted((out / "Dataset501_Thorax" / "labelsTr").iterdir())
        arrays.append([np.asarray(nib.load(p).dataobj).tobytes() for p in labels])
        assert [r["status"] for r in _rows(out)] == ["included", "included"]
    assert arrays[0] == arrays[1]


def test_jobs_and_scheduler_exclude_each_other(
    archive: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    command = ["dataset", str(archive), "-o", str(out), *COMMON]
    with pytest.raises(SystemExit) as exited:
        main([*command, "--jobs", "2", "--scheduler", "local:2"])
    assert exited.value.code == 2
    assert "not allowed with argument" in capsys.readouterr().err
    assert not out.exists()
