"""rtmask.names: name groups, TG-263 matching, ROI maps (patterns, conflicts, bad files)."""

from __future__ import annotations

import csv
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

import rtmask.names
from rtmask._safe_names import sanitize_name, unsafe_reason
from rtmask.errors import RoiMapError, RtmaskError
from rtmask.names import (
    NameCount,
    RoiMap,
    load_roi_map,
    normalise_name,
    suggest_map,
    tg263_match,
    tg263_names,
)

TG263_CSV = Path(rtmask.names.__file__).with_name("tg263.csv")


def _tg263_list() -> list[str]:
    """The names of the carried list, read here with the csv module (not through rtmask)."""
    lines = [
        line
        for line in TG263_CSV.read_text(encoding="utf-8").splitlines()
        if not line.startswith("#")
    ]
    return [row["name"] for row in csv.DictReader(lines)]


# ------------------------------------------------------------------ normalisation
def test_the_issue_spellings_of_the_left_lung_are_one_group() -> None:
    spellings = ["Lung_L", "L Lung", "LUNG LT", "lung left", "Lt_Lung_1", "Lung-L", "lung.l"]
    assert len({normalise_name(s) for s in spellings}) == 1
    assert {tg263_match(s) for s in spellings} == {"Lung_L"}


def test_both_sides_and_the_romance_words_are_told_apart() -> None:
    left = ["Parotid_L", "parotid G", "Parotid Sin", "Left Parotid", "PAROTID (1) L"]
    right = ["Parotid_R", "parotid D", "Parotid Dx", "RT PAROTID", "parotid right"]
    left_keys = {normalise_name(n) for n in left[:4]}
    right_keys = {normalise_name(n) for n in right}
    assert len(left_keys) == 1
    assert len(right_keys) == 1
    assert left_keys != right_keys
    assert normalise_name("Parotid") not in left_keys | right_keys  # no side is its own group


def test_copies_are_dropped_but_target_numbers_are_kept() -> None:
    assert normalise_name("Heart (2)") == normalise_name("Heart") == normalise_name("Heart_1")
    assert normalise_name("PTV_1") != normalise_name("PTV_2")
    assert normalise_name("CTV_70") != normalise_name("CTV")
    assert normalise_name("Spinal Cord") == normalise_name("SpinalCord") == "spinalcord"
    assert normalise_name("L") == "l"  # a lone laterality word is the name itself
    assert normalise_name("L R") != normalise_name("L")  # both sides: words, not a side
    assert normalise_name(" ") == ""
    assert tg263_match("???") is None


def test_tg263_list_is_the_carried_file_with_source_and_licence() -> None:
    header = TG263_CSV.read_text(encoding="utf-8").splitlines()[:6]
    assert any("tg263 0.2.0" in line and "MIT" in line for line in header)
    names = _tg263_list()
    assert list(tg263_names()) == names
    assert len(names) > 700
    assert len(set(names)) == len(names)
    assert all(name == name.strip() and name for name in names)


def test_every_tg263_name_with_its_own_group_matches_itself_and_its_spellings() -> None:
    names = _tg263_list()
    keys = Counter(normalise_name(name) for name in names)
    unique = [name for name in names if keys[normalise_name(name)] == 1]
    assert len(unique) > 690
    for name in unique:
        assert tg263_match(name) == name
        assert tg263_match(name.upper().replace("_", " ")) == name
        assert tg263_match(f" {name.lower()} ") == name
        if name.endswith("_L") and name.count("_") == 1:
            assert tg263_match(f"Left {name[:-2]}") == name
            assert tg263_match(f"{name[:-2]} LT (1)") == name
        if name.endswith("_R") and name.count("_") == 1:
            assert tg263_match(f"Rt_{name[:-2]}") == name


def test_importing_names_loads_neither_numpy_nor_pydicom() -> None:
    code = (
        "import sys, rtmask.names as n; n.load_roi_map; n.tg263_match('Lung L'); "
        "print(sorted(m for m in ('numpy', 'pydicom') if m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"


# ------------------------------------------------------------------ patterns
def _map(**patterns: list[str]) -> RoiMap:
    return RoiMap.from_patterns(patterns, source="test-map")


def test_exact_names_ignore_case_and_surrounding_spaces_only() -> None:
    roi_map = _map(Heart=["Heart"])
    assert roi_map.canonical("HEART") == "Heart"
    assert roi_map.canonical(" heart ") == "Heart"
    assert roi_map.canonical("Heart2") is None
    assert roi_map.canonical("The Heart") is None
    assert roi_map.canonical("Hear") is None


def test_globs_match_the_whole_name_case_insensitively() -> None:
    roi_map = _map(Lung_L=["L*Lung*"], Cord=["cord?"], Eye=["eye_[lL]"])
    assert roi_map.canonical("l_lung") == "Lung_L"
    assert roi_map.canonical("LT LUNG 2") == "Lung_L"
    assert roi_map.canonical("Lung_L") is None  # must start with L and hold "lung" after
    assert roi_map.canonical("CORD1") == "Cord"
    assert roi_map.canonical("cord12") is None
    assert roi_map.canonical("EYE_L") == "Eye"


def test_regular_expressions_match_the_whole_name_case_insensitively() -> None:
    roi_map = _map(Lung_L=["re:^lung[ _-]?l(ef)?t$"], PTV=["re:ptv\\d+"])
    for name in ("lung lt", "LUNG_LEFT", "Lunglt", "lung-left"):
        assert roi_map.canonical(name) == "Lung_L"
    assert roi_map.canonical("lung left side") is None
    assert roi_map.canonical("PTV70") == "PTV"
    assert roi_map.canonical("xPTV70") is None  # fullmatch, not search
    assert roi_map.canonical("PTV70_eval") is None


def test_a_name_matching_two_canonical_names_is_an_error_never_a_pick() -> None:
    roi_map = _map(Lung_L=["*lung*"], Lungs=["lung*"])
    with pytest.raises(RoiMapError, match=r"'lungs'.*'Lung_L' and 'Lungs'"):
        roi_map.canonical("lungs")
    assert issubclass(RoiMapError, RtmaskError)
    assert issubclass(RoiMapError, ValueError)


def test_resolve_maps_a_structure_set_and_lists_every_conflict() -> None:
    roi_map = _map(Lung_L=["Lung_L", "L Lung"], Heart=["heart*"], Cord=["SpinalCord"])
    assert roi_map.resolve([(1, "L Lung"), (2, "Heart"), (7, "Body")], source="RS.dcm") == {
        1: "Lung_L",
        2: "Heart",
    }
    with pytest.raises(RoiMapError) as caught:
        roi_map.resolve([(1, "Lung_L"), (2, "L Lung"), (3, "heart"), (4, "HEART_1")], source="RS")
    message = str(caught.value)
    assert "\n" not in message
    assert "ROI 1 'Lung_L' and ROI 2 'L Lung' all map to 'Lung_L'" in message
    assert "ROI 3 'heart' and ROI 4 'HEART_1' all map to 'Heart'" in message
    assert message.startswith("RS: ")


# ------------------------------------------------------------------ map files
def test_yaml_and_csv_maps_give_the_same_map(tmp_path: Path) -> None:
    yaml_path = tmp_path / "map.yaml"
    yaml_path.write_text(
        'Lung_L: ["Lung_L", "L*Lung*", "re:^lung[ _-]?l(ef)?t$"]\nHeart: heart\n',
        encoding="utf-8",
    )
    csv_path = tmp_path / "map.csv"
    csv_path.write_text(
        "canonical,pattern\nLung_L,Lung_L\nLung_L,L*Lung*\n"
        "Lung_L,re:^lung[ _-]?l(ef)?t$\n\nHeart,heart\n",
        encoding="utf-8",
    )
    csv_path.write_bytes(b"\xef\xbb\xbf" + csv_path.read_bytes())  # as spreadsheets save
    from_yaml, from_csv = load_roi_map(yaml_path), load_roi_map(csv_path)
    assert from_yaml.canonical_names == from_csv.canonical_names == ("Lung_L", "Heart")
    for name, expected in [("lung left", "Lung_L"), ("L_Lung", "Lung_L"), ("HEART", "Heart")]:
        assert from_yaml.canonical(name) == from_csv.canonical(name) == expected
    assert from_yaml.source == str(yaml_path)


BAD_YAML_MAPS = [
    ('Lung_L: ["re:lung(left"]\n', r"map\.yaml:1: pattern 're:lung\(left'.*regular expression"),
    ('"../x": ["a"]\n', r"map\.yaml:1: canonical name '\.\./x': not a safe file name"),
    ('ok: [a]\n"a/b": ["b"]\n', r"map\.yaml:2: canonical name 'a/b': not a safe file name"),
    ('"": ["b"]\n', r"map\.yaml:1: canonical name '': not a safe file name: it is empty"),
    ("Heart: [\n", r"map\.yaml:2: not valid YAML"),
    ("- a\n- b\n", r"map\.yaml: a YAML ROI map is a mapping"),
    ("Heart:\n", r"map\.yaml:1: canonical name 'Heart' has no patterns"),
    ("Heart: [a]\nheart: [b]\n", r"map\.yaml:2: canonical names 'Heart' and 'heart'"),
    ("Heart: [{a: 1}]\n", r"map\.yaml:1: the patterns of 'Heart' must be text"),
    ("", r"map\.yaml: the ROI map is empty"),
]
BAD_CSV_MAPS = [
    ("canonical,pattern\nHeart,heart\nLung,re:[\n", r"map\.csv:3: pattern 're:\['"),
    ("canonical,pattern\n../x,heart\n", r"map\.csv:2: canonical name '\.\./x'"),
    ("name,pattern\nHeart,heart\n", r"map\.csv:1: .*columns 'canonical' and 'pattern'"),
    ("canonical,pattern\n", r"map\.csv: the ROI map has no rows"),
    ("canonical,pattern\nHeart,\n", r"map\.csv:2: canonical name 'Heart' has an empty"),
]


@pytest.mark.parametrize(
    ("file_name", "text", "expected"),
    [
        *(("map.yaml", *case) for case in BAD_YAML_MAPS),
        *(("map.csv", *case) for case in BAD_CSV_MAPS),
    ],
)
def test_a_bad_map_is_one_line_naming_the_file_and_line(
    tmp_path: Path, file_name: str, text: str, expected: str
) -> None:
    path = tmp_path / file_name
    path.write_text(text, encoding="utf-8")
    with pytest.raises(RoiMapError, match=expected) as caught:
        load_roi_map(path)
    assert "\n" not in str(caught.value)
    assert str(path) in str(caught.value)


def test_a_missing_or_unknown_map_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(RoiMapError, match=r"nothing\.yaml: cannot read the ROI map"):
        load_roi_map(tmp_path / "nothing.yaml")
    other = tmp_path / "map.txt"
    other.write_text("Heart: [heart]\n", encoding="utf-8")
    with pytest.raises(RoiMapError, match=r"map\.txt: a ROI map is a \.yaml, \.yml or \.csv"):
        load_roi_map(other)


@pytest.mark.parametrize(
    "name",
    [
        "Lung_L", "PTV_70", "a/b", "../x", ".hidden", "x.", "a__b", "a..b", "CON", "con.txt",
        "Parotide_gauche", "PTV 70", "A+B(1)", "-x", "é", "e\u0301", "\u0301x", "x" * 101,
        "ÿ" * 60, "COM1", "nul", "CON_", "COM1_.x", "x\u0301", "a b", "a\\b", "a:b", "_x", "x_",
    ],
)  # fmt: skip
def test_a_name_is_refused_exactly_when_the_rules_would_change_it(name: str) -> None:
    assert (unsafe_reason(name) is None) == (sanitize_name(name) == name)
    assert sanitize_name(sanitize_name(name)) == sanitize_name(name)


# ------------------------------------------------------------------ suggested map
def test_a_suggested_map_loads_back_and_maps_every_name_of_its_groups(tmp_path: Path) -> None:
    names = [
        "Lung_L", "L Lung", "LUNG LT", "lung left", "Lt_Lung_1", "lung_l", "Heart", "HEART (1)",
        "PTV*70", "re:odd", "GTV[1]", "My Organ", "my-organ", "CON", "  ", "../x",
    ]  # fmt: skip
    counts = [
        NameCount(
            name=name, structure_sets=1, patients=1, group=normalise_name(name),
            tg263=tg263_match(name),
        )
        for name in names
    ]  # fmt: skip
    path = tmp_path / "suggested.yaml"
    path.write_text(suggest_map(counts), encoding="utf-8")
    roi_map = load_roi_map(path)
    groups: dict[str, set[str]] = {}
    for name in names:
        if name.strip():
            groups.setdefault(normalise_name(name), set()).add(roi_map.canonical(name) or "")
    assert all(len(found) == 1 and "" not in found for found in groups.values())
    assert roi_map.canonical("Lt_Lung_1") == "Lung_L"
    assert roi_map.canonical("heart (1)") == "Heart"
    assert roi_map.canonical("PTV_70") is None  # "PTV*70" was written as an exact name
    assert roi_map.canonical("PTV*70") is not None
    assert roi_map.canonical("odd") is None
    assert len(set(roi_map.canonical_names)) == len(groups)
