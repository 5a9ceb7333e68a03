"""``rtmask names`` on a synthetic archive, and ``--roi-map`` in ``convert`` and ``dvh``."""

from __future__ import annotations

import csv
import json
import shutil
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest

from conftest import run_cli
from rtmask import ImageGrid
from rtmask.names import load_roi_map
from rtmask.synthetic import (
    RoiSpec,
    sphere_contours,
    write_ct_series,
    write_rtdose,
    write_rtstruct,
)

#: Patient -> structure sets -> ROI names, messy as archives are.
ARCHIVE = {
    "P1": [["Lung_L", "Heart", "PTV_1"], ["L Lung", "heart", "Body"]],
    "P2": [["LUNG LT", "Heart", "Spinal Cord"]],
    "P3": [["lung left", "Heart", "SpinalCord", "Heart"]],  # a name twice in one set
    "P4": [["Lt_Lung_1", "Parotid Dx", "PTV_1"]],
}
GRID = ImageGrid.from_explicit(
    origin_mm=(-20.0, -20.0, -10.0), spacing_mm=(2.0, 1.5, 1.5), shape=(8, 24, 24)
)


def _rois(names: list[str]) -> list[RoiSpec]:
    centre = GRID.index_to_patient([[3.5, 12.0, 12.0]])[0]
    contours = tuple((c, "CLOSED_PLANAR") for c in sphere_contours(GRID, centre, 5.0))
    return [RoiSpec(number=i + 1, name=n, contours=contours) for i, n in enumerate(names)]


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("archive")
    for patient, structure_sets in ARCHIVE.items():
        ct = write_ct_series(root / patient / "ct", GRID, patient_id=patient)
        for k, names in enumerate(structure_sets):
            write_rtstruct(root / patient / f"RS{k}.dcm", _rois(names), ct)
    return root


def _expected_counts() -> dict[str, tuple[int, int]]:
    """Name -> (structure sets, patients), counted here from ARCHIVE."""
    sets: defaultdict[str, set[tuple[str, int]]] = defaultdict(set)
    patients: defaultdict[str, set[str]] = defaultdict(set)
    for patient, structure_sets in ARCHIVE.items():
        for k, names in enumerate(structure_sets):
            for name in names:
                sets[name].add((patient, k))
                patients[name].add(patient)
    return {name: (len(sets[name]), len(patients[name])) for name in sets}


def test_names_counts_groups_and_tg263_names(
    archive: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run_cli(capsys, "names", str(archive), "--json")
    assert code == 0
    rows = json.loads(out)["names"]
    assert set(rows[0]) == {"name", "structure_sets", "patients", "group", "tg263", "canonical"}
    expected = _expected_counts()
    assert {r["name"]: (r["structure_sets"], r["patients"]) for r in rows} == expected
    counts = [r["structure_sets"] for r in rows]
    assert counts == sorted(counts, reverse=True)
    assert rows[0]["name"] == "Heart"  # 3 structure sets: the most used name
    by_name = {r["name"]: r for r in rows}
    lungs = ["Lung_L", "L Lung", "LUNG LT", "lung left", "Lt_Lung_1"]
    assert {by_name[n]["group"] for n in lungs} == {"lung_l"}
    assert {by_name[n]["tg263"] for n in lungs} == {"Lung_L"}
    assert by_name["Spinal Cord"]["tg263"] == by_name["SpinalCord"]["tg263"] == "SpinalCord"
    assert by_name["Parotid Dx"]["tg263"] == "Parotid_R"
    assert by_name["PTV_1"]["tg263"] is None
    assert all(r["canonical"] is None for r in rows)


def test_names_table_and_csv(
    archive: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "names.csv"
    code, out, _ = run_cli(capsys, "names", str(archive), "--csv", str(target))
    assert code == 0
    assert "Lt_Lung_1" in out
    assert "5 structure set(s)" in out
    with target.open(encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == ["name", "structure_sets", "patients", "group", "tg263", "canonical"]
    assert {r["name"]: (int(r["structure_sets"]), int(r["patients"])) for r in rows} == (
        _expected_counts()
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["names.csv"]


def test_names_with_a_map_gives_canonical_names_and_the_unmapped_ones(
    archive: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    roi_map = tmp_path / "map.yaml"
    roi_map.write_text(
        'Lung_L: ["Lung_L", "L*Lung*", "re:^lung[ _-]?l(ef)?t$"]\nCord: ["spinal*"]\n',
        encoding="utf-8",
    )
    code, out, _ = run_cli(capsys, "names", str(archive), "--json", "--roi-map", str(roi_map))
    assert code == 0
    canonical = {r["name"]: r["canonical"] for r in json.loads(out)["names"]}
    assert canonical["L Lung"] == canonical["Lung_L"] == canonical["LUNG LT"] == "Lung_L"
    assert canonical["lung left"] == canonical["Lt_Lung_1"] == "Lung_L"
    assert canonical["Spinal Cord"] == canonical["SpinalCord"] == "Cord"
    assert canonical["heart"] is None
    code, out, _ = run_cli(
        capsys, "names", str(archive), "--json", "--roi-map", str(roi_map), "--unmapped"
    )
    assert code == 0
    unmapped = {r["name"] for r in json.loads(out)["names"]}
    assert unmapped == {"PTV_1", "Body", "Heart", "heart", "Parotid Dx"}


def test_names_lists_structure_sets_the_map_makes_ambiguous(
    archive: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    roi_map = tmp_path / "map.csv"
    roi_map.write_text("canonical,pattern\nCord,spinal*\n", encoding="utf-8")
    code, _, err = run_cli(capsys, "names", str(archive), "--roi-map", str(roi_map))
    assert code == 0  # Spinal Cord and SpinalCord never meet in one structure set
    roi_map.write_text("canonical,pattern\nHeart,heart\n", encoding="utf-8")
    code, _, err = run_cli(capsys, "names", str(archive), "--roi-map", str(roi_map))
    assert code == 1
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1  # P3's structure set: two ROIs named Heart
    assert "RS0.dcm" in errors[0]
    assert "all map to 'Heart'" in errors[0]


def test_names_counts_a_copy_of_a_structure_set_once(
    archive: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = tmp_path / "archive"
    shutil.copytree(archive, root)
    (root / "elsewhere").mkdir()
    shutil.copy(root / "P1" / "RS0.dcm", root / "elsewhere" / "RS0_copy.dcm")  # same UID
    code, out, _ = run_cli(capsys, "names", str(root), "--json")
    assert code == 0
    rows = json.loads(out)["names"]
    assert {r["name"]: (r["structure_sets"], r["patients"]) for r in rows} == _expected_counts()
    code, out, _ = run_cli(capsys, "names", str(root))
    assert "5 structure set(s)" in out  # ARCHIVE's five, the copy not a sixth


def test_names_with_an_ambiguous_map_lists_the_conflicts_and_prints_every_row(
    archive: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    roi_map = tmp_path / "map.yaml"
    roi_map.write_text(
        'Heart: ["heart*"]\nCardiac: ["re:.*heart.*"]\nLung_L: ["L*Lung*"]\n', encoding="utf-8"
    )
    code, out, err = run_cli(capsys, "names", str(archive), "--json", "--roi-map", str(roi_map))
    assert code == 1
    rows = {r["name"]: r for r in json.loads(out)["names"]}
    assert {n: (r["structure_sets"], r["patients"]) for n, r in rows.items()} == (
        _expected_counts()
    )
    assert rows["Heart"]["canonical"] is None  # matches Heart and Cardiac: no silent pick
    assert rows["heart"]["canonical"] is None
    assert rows["L Lung"]["canonical"] == "Lung_L"
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    with_heart = {
        f"{patient}/RS{k}.dcm"
        for patient, structure_sets in ARCHIVE.items()
        for k, names in enumerate(structure_sets)
        if {"Heart", "heart"} & set(names)
    }
    assert len(errors) == len(with_heart) == 4  # one line per structure set
    for line in errors:
        assert "'Heart' and 'Cardiac'" in line
        assert any(source in line for source in with_heart)
    code, out, _ = run_cli(
        capsys, "names", str(archive), "--json", "--roi-map", str(roi_map), "--unmapped"
    )
    unmapped = {r["name"] for r in json.loads(out)["names"]}
    assert unmapped == {
        "Lung_L",
        "LUNG LT",
        "lung left",
        "PTV_1",
        "Body",
        "Spinal Cord",
        "SpinalCord",
        "Parotid Dx",
    }


def test_suggest_map_round_trip(
    archive: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    suggested = tmp_path / "suggested.yaml"
    code, out, _ = run_cli(capsys, "names", str(archive), "--suggest-map", str(suggested), "--json")
    assert code == 0
    rows = json.loads(out)["names"]
    roi_map = load_roi_map(suggested)
    for row in rows:
        assert roi_map.canonical(row["name"]) is not None, row
    groups: defaultdict[str, set[str | None]] = defaultdict(set)
    for row in rows:
        groups[row["group"]].add(roi_map.canonical(row["name"]))
    assert all(len(found) == 1 for found in groups.values())
    assert roi_map.canonical("Lt_Lung_1") == "Lung_L"
    # P3 holds two ROIs named Heart: the entry is flagged for the person editing the map.
    lines = suggested.read_text(encoding="utf-8").splitlines()
    flagged = [lines[i + 1] for i, line in enumerate(lines) if line.startswith("# CHECK")]
    assert [line.split(":")[0] for line in flagged] == ["Heart"]
    assert "# CHECK: 1 structure set(s)" in "\n".join(lines)
    code, out, _ = run_cli(
        capsys, "names", str(archive), "--json", "--roi-map", str(suggested), "--unmapped"
    )
    assert json.loads(out)["names"] == []


@pytest.mark.parametrize(
    ("command", "text"),
    [
        ("names", 'Lung_L: ["re:(unclosed"]\n'),
        ("names", '"../x": [heart]\n'),
        ("convert", '"a/b": [heart]\n'),
        ("dvh", 'Heart: ["re:[z-a]"]\n'),
    ],
)
def test_a_bad_map_is_one_line_and_exit_code_2(
    archive: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], command: str, text: str
) -> None:
    roi_map = tmp_path / "bad.yaml"
    roi_map.write_text(text, encoding="utf-8")
    rtstruct = archive / "P1" / "RS0.dcm"
    args = {
        "names": ["names", str(archive)],
        "convert": ["convert", str(rtstruct), "-o", str(tmp_path / "out")],
        "dvh": ["dvh", str(rtstruct), str(rtstruct)],
    }[command]
    code, _, err = run_cli(capsys, *args, "--roi-map", str(roi_map))
    assert code == 2
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1
    assert str(roi_map) in errors[0]
    assert f"{roi_map}:1:" in errors[0]
    assert not (tmp_path / "out").exists()


def test_unmapped_needs_a_map(archive: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_cli(capsys, "names", str(archive), "--unmapped")
    assert code == 2
    assert "--roi-map" in err


# ------------------------------------------------------------------ convert and dvh
def test_convert_with_a_map_names_files_by_canonical_name(
    archive: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    roi_map = tmp_path / "map.yaml"
    roi_map.write_text('Lung_L: ["L*Lung*", "Lung_L"]\nHeart: [heart]\n', encoding="utf-8")
    out = tmp_path / "out"
    code, _, _ = run_cli(
        capsys, "convert", str(archive / "P1" / "RS1.dcm"), "-o", str(out), "--roi-map",
        str(roi_map),
    )  # fmt: skip
    assert code == 0
    assert sorted(p.name for p in out.glob("*.nii.gz")) == [
        "Heart.nii.gz",
        "Lung_L.nii.gz",
        "image.nii.gz",  # the image series, beside the masks
    ]
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    rows = {r["name"]: r for r in summary["rois"]}
    assert rows["L Lung"]["canonical"] == "Lung_L"
    assert rows["L Lung"]["file"] == "Lung_L.nii.gz"
    assert rows["heart"]["canonical"] == "Heart"
    assert rows["Body"]["canonical"] is None
    assert rows["Body"]["status"] == "not selected"  # the map alone selects the mapped ROIs
    assert rows["L Lung"]["voxel_count"] > 0
    with (out / "summary.csv").open(encoding="utf-8", newline="") as f:
        table = list(csv.DictReader(f))
    assert list(table[0])[:4] == ["roi_number", "name", "canonical", "file"]
    assert {r["name"]: r["canonical"] for r in table} == {
        "L Lung": "Lung_L",
        "heart": "Heart",
        "Body": "",
    }
    # --roi adds ROIs the map leaves out; they keep their own file names.
    out2 = tmp_path / "out2"
    code, _, _ = run_cli(
        capsys, "convert", str(archive / "P1" / "RS1.dcm"), "-o", str(out2), "--roi-map",
        str(roi_map), "--roi", "body",
    )  # fmt: skip
    assert code == 0
    assert sorted(p.name for p in out2.glob("*.nii.gz")) == [
        "Body.nii.gz",
        "Heart.nii.gz",
        "Lung_L.nii.gz",
        "image.nii.gz",
    ]


def test_convert_without_a_map_writes_no_canonical_column(
    archive: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    code, _, _ = run_cli(capsys, "convert", str(archive / "P1" / "RS1.dcm"), "-o", str(out))
    assert code == 0
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    assert all("canonical" not in row for row in summary["rois"])
    assert "canonical" not in (out / "summary.csv").read_text(encoding="utf-8")


def test_convert_lists_a_structure_set_whose_rois_conflict_and_converts_the_rest(
    archive: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    roi_map = tmp_path / "map.yaml"
    roi_map.write_text("Heart: [heart]\nCord: ['re:spinal ?cord']\n", encoding="utf-8")
    code, _, err = run_cli(
        capsys, "convert", str(archive / "P3" / "RS0.dcm"), "-o", str(tmp_path / "o3"),
        "--roi-map", str(roi_map),
    )  # fmt: skip
    assert code == 1
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1
    assert "ROI 2 'Heart' and ROI 4 'Heart' all map to 'Heart'" in errors[0]
    assert not (tmp_path / "o3").exists()  # never a silent pick, nothing half done
    # A folder of two structure sets: the good one is converted, the bad one listed.
    both = tmp_path / "both"
    both.mkdir()
    (both / "P3.dcm").write_bytes((archive / "P3" / "RS0.dcm").read_bytes())
    (both / "P2.dcm").write_bytes((archive / "P2" / "RS0.dcm").read_bytes())
    code, _, err = run_cli(
        capsys, "convert", str(both), "-o", str(tmp_path / "o4"), "--roi-map", str(roi_map),
        "--grid-spacing", "2",
    )  # fmt: skip
    assert code == 1
    # an archive: one case folder each, listed in cases.csv (on the --grid-spacing grid too)
    with (tmp_path / "o4" / "cases.csv").open(encoding="utf-8", newline="") as stream:
        cases = {row["structure_set"]: row for row in csv.DictReader(stream)}
    assert cases["P2.dcm"]["status"] == "converted"
    assert cases["P3.dcm"]["status"] == "failed"
    assert "all map to 'Heart'" in cases["P3.dcm"]["error"]
    assert sorted(
        p.name for p in (tmp_path / "o4" / cases["P2.dcm"]["output"]).glob("*.nii.gz")
    ) == [
        "Cord.nii.gz",
        "Heart.nii.gz",
    ]
    assert cases["P3.dcm"]["output"] == ""  # nothing written for it


def test_dvh_with_a_map_carries_the_canonical_name(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ct = write_ct_series(tmp_path / "ct", GRID)
    rtstruct = write_rtstruct(tmp_path / "RS.dcm", _rois(["L Lung", "heart", "Body"]), ct)
    dose = write_rtdose(tmp_path / "RD.dcm", GRID, np.full(GRID.shape, 2.0), ct)
    roi_map = tmp_path / "map.csv"
    roi_map.write_text("canonical,pattern\nLung_L,L*Lung*\nHeart,heart\n", encoding="utf-8")
    code, out, _ = run_cli(
        capsys, "dvh", str(rtstruct), str(dose), "--roi-map", str(roi_map), "--json",
        "--stats", "D50",
    )  # fmt: skip
    assert code == 0
    entries = json.loads(out)["rois"]
    assert [(e["name"], e["canonical"]) for e in entries] == [
        ("L Lung", "Lung_L"),
        ("heart", "Heart"),
    ]
    assert list(entries[0])[:3] == ["number", "name", "canonical"]
    assert entries[0]["stats"]["D50"] == pytest.approx(2.0)
    target = tmp_path / "dvh.csv"
    code, _, _ = run_cli(
        capsys, "dvh", str(rtstruct), str(dose), "--roi-map", str(roi_map), "--csv",
        str(target), "--roi", "Body", "--stats", "D50",
    )  # fmt: skip
    assert code == 0
    with target.open(encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0])[:3] == ["number", "name", "canonical"]
    assert [(r["name"], r["canonical"]) for r in rows] == [
        ("L Lung", "Lung_L"),
        ("heart", "Heart"),
        ("Body", ""),
    ]


def test_convert_a_seg_with_a_map(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("highdicom")
    ct = write_ct_series(tmp_path / "case" / "ct", GRID)
    rtstruct = write_rtstruct(tmp_path / "case" / "RS.dcm", _rois(["L Lung", "Body"]), ct)
    code, _, _ = run_cli(
        capsys, "convert", str(rtstruct), "-o", str(tmp_path / "seg"), "--format", "seg"
    )
    assert code == 0
    roi_map = tmp_path / "map.yaml"
    roi_map.write_text("Lung_L: ['L*Lung*']\n", encoding="utf-8")
    out = tmp_path / "back"
    code, _, _ = run_cli(
        capsys, "convert", str(tmp_path / "seg" / "segmentation.dcm"), "--image",
        str(tmp_path / "case" / "ct"), "-o", str(out), "--roi-map", str(roi_map),
    )  # fmt: skip
    assert code == 0
    assert sorted(p.name for p in out.glob("*.nii.gz")) == ["Lung_L.nii.gz", "image.nii.gz"]
    rows = json.loads((out / "summary.json").read_text(encoding="utf-8"))["rois"]
    assert [(r["name"], r["canonical"]) for r in rows] == [("L Lung", "Lung_L")]


def test_names_lists_an_unreadable_structure_set_and_counts_the_rest(
    archive: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import shutil

    root = tmp_path / "archive"
    shutil.copytree(archive, root)
    broken = root / "P4" / "RS_broken.dcm"
    broken.write_bytes((archive / "P1" / "RS0.dcm").read_bytes()[:900])
    code, out, err = run_cli(capsys, "names", str(root), "--json")
    assert code == 1
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1
    assert str(broken) in errors[0]
    rows = json.loads(out)["names"]
    assert {r["name"]: (r["structure_sets"], r["patients"]) for r in rows} == _expected_counts()
    code, _, err = run_cli(capsys, "names", str(root / "P1" / "RS0.dcm"))
    assert code == 1
    assert "not a folder" in err


def test_convert_structure_set_with_a_map_in_python(tmp_path: Path) -> None:
    from rtmask.convert import convert_structure_set
    from rtmask.errors import RoiMapError
    from rtmask.names import RoiMap
    from rtmask.rtstruct import read_rtstruct

    ct = write_ct_series(tmp_path / "ct", GRID)
    rtstruct = write_rtstruct(tmp_path / "RS.dcm", _rois(["L Lung", "Lung_L_2", "Body"]), ct)
    structure_set = read_rtstruct(rtstruct)
    good = RoiMap.from_patterns({"Lung_L": ["L Lung"], "Outline": ["body"]})
    report = convert_structure_set(structure_set, GRID, tmp_path / "out", roi_map=good)
    assert [(r.name, r.canonical, r.status, r.file) for r in report.rows] == [
        ("L Lung", "Lung_L", "written", "Lung_L.nii.gz"),
        ("Lung_L_2", None, "not selected", None),
        ("Body", "Outline", "written", "Outline.nii.gz"),
    ]
    # An unmapped ROI whose own file name is a canonical name gets its number appended.
    clash = RoiMap.from_patterns({"Body": ["L Lung"]})
    report = convert_structure_set(
        structure_set, GRID, tmp_path / "clash", roi_map=clash, rois=structure_set.rois
    )
    assert [r.file for r in report.rows] == ["Body.nii.gz", "Lung_L_2.nii.gz", "Body_3.nii.gz"]
    bad = RoiMap.from_patterns({"Lung_L": ["L*Lung*", "lung_l*"]})
    with pytest.raises(RoiMapError, match=r"ROI 1 'L Lung' and ROI 2 'Lung_L_2' all map"):
        convert_structure_set(structure_set, GRID, tmp_path / "bad", roi_map=bad)
    assert not (tmp_path / "bad").exists()
