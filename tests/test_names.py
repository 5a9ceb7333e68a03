"""Safe file names from hostile ROI names, and the output-folder guard."""

from __future__ import annotations

import os
import unicodedata
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rtmask.export import ensure_inside, safe_file_stems, safe_folder_name
from rtmask.rtstruct import ROI

WINDOWS_RESERVED = {
    "CON",
    "PRN",
    "AUX",
    "NUL",
    *(f"COM{n}" for n in range(1, 10)),
    *(f"LPT{n}" for n in range(1, 10)),
}


def _stems(*names: str) -> dict[int, str]:
    return safe_file_stems([ROI(number=n + 1, name=name) for n, name in enumerate(names)])


def _assert_safe(stem: str) -> None:
    assert stem
    assert "/" not in stem
    assert "\\" not in stem
    assert ".." not in stem
    assert not stem.startswith((".", "-"))
    assert not stem.endswith((".", " "))
    assert stem.split(".", maxsplit=1)[0].upper() not in WINDOWS_RESERVED
    assert not any(unicodedata.category(c)[0] in "CZ" for c in stem)  # control, format, space
    assert unicodedata.normalize("NFC", stem) == stem
    assert len(stem.encode("utf-8")) <= 112


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("PTV 70/35 Gy", "PTV_70_35_Gy"),
        ("../../x", "x"),
        ("/etc/passwd", "etc_passwd"),
        ("..\\..\\windows\\system32", "windows_system32"),
        ("CON", "CON_"),
        ("nul.txt", "nul_.txt"),
        ("com1", "com1_"),
        ("", "ROI_1"),
        ("  ", "ROI_1"),
        ("...", "ROI_1"),
        (".hidden", "hidden"),
        ("-rf", "rf"),
        ("Lung\x00Left\r\n", "Lung_Left"),
        ("tail dots...", "tail_dots"),
        ("Cœur gauche", "Cœur_gauche"),
        ("e\u0301paule", "épaule"),  # NFC: e + combining acute -> é
        ("脊髓", "脊髓"),
        ("a\u202eexe.txt", "a_exe.txt"),  # right-to-left override
        ("GTV:1*?<>|", "GTV_1"),
        ("PTV+5mm (eval)", "PTV+5mm_(eval)"),
    ],
)
def test_named_hostile_cases(name: str, expected: str) -> None:
    stem = _stems(name)[1]
    assert stem == expected
    _assert_safe(stem)


def test_long_names_are_cut_without_splitting_characters() -> None:
    stem = _stems("é" * 300)[1]
    assert stem == "é" * 50  # 2 bytes each, 100 bytes
    stem = _stems("a" + "中" * 100)[1]  # 1 + 3 * 33 = 100 bytes
    assert stem == "a" + "中" * 33
    _assert_safe(stem)


def test_duplicates_get_the_roi_number_on_every_member() -> None:
    rois = [
        ROI(number=3, name="PTV"),
        ROI(number=8, name="ptv"),
        ROI(number=5, name="P T V"),
        ROI(number=9, name="PTV/"),
        ROI(number=11, name="Lung"),
        ROI(number=12, name=""),
        ROI(number=13, name="ROI_12"),
    ]
    assert safe_file_stems(rois) == {
        3: "PTV_3",
        8: "ptv_8",
        5: "P_T_V",
        9: "PTV_9",
        11: "Lung",
        12: "ROI_12_12",
        13: "ROI_12_13",
    }


def test_suffixed_names_never_collide_with_real_ones() -> None:
    rois = [ROI(number=1, name="A"), ROI(number=2, name="a"), ROI(number=3, name="A_1")]
    stems = safe_file_stems(rois)
    assert len({s.casefold() for s in stems.values()}) == 3
    assert stems[3] == "A_1"


def test_duplicate_roi_numbers_are_refused() -> None:
    with pytest.raises(ValueError, match="number"):
        safe_file_stems([ROI(number=1, name="a"), ROI(number=1, name="b")])


def test_folder_names() -> None:
    assert safe_folder_name("RS: Plan/1", "rs") == "RS_Plan_1"
    assert safe_folder_name("..", "1.2.840.1") == "1.2.840.1"
    assert safe_folder_name("", "..") == "structure_set"
    assert safe_folder_name("aux", "x") == "aux_"


hostile_text = st.lists(
    st.one_of(
        st.sampled_from(
            [
                "/",
                "\\",
                "..",
                ".",
                "\0",
                " ",
                "CON",
                "nul",
                "-",
                "\u202e",
                "é",
                "e\u0301",
                "Ǆ",
                "ß",
                "SS",
            ]
        ),
        st.characters(),
    ),
    max_size=40,
).map("".join)


@settings(max_examples=300, deadline=None)
@given(names=st.lists(hostile_text, min_size=1, max_size=12))
def test_stems_are_safe_unique_and_stay_inside(
    tmp_path_factory: pytest.TempPathFactory, names: list[str]
) -> None:
    rois = [ROI(number=n * 7 + 1, name=name) for n, name in enumerate(names)]
    stems = safe_file_stems(rois)
    assert list(stems) == [roi.number for roi in rois]
    assert len({stem.casefold() for stem in stems.values()}) == len(rois)
    out = tmp_path_factory.getbasetemp() / "out"
    for stem in stems.values():
        _assert_safe(stem)
        target = ensure_inside(out, out / (stem + ".nii.gz"))
        assert target.parent == out.resolve()
    for name in names:
        folder = safe_folder_name(name, "fallback")
        _assert_safe(folder)


def test_ensure_inside_refuses_escapes(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    assert ensure_inside(out, out / "a.nii.gz") == (out / "a.nii.gz").resolve()
    for bad in (out / ".." / "a.nii.gz", Path("/etc/passwd"), out, out / "." / ".."):
        with pytest.raises(ValueError, match="outside the output folder"):
            ensure_inside(out, bad)
    if hasattr(os, "symlink"):
        (out / "link").symlink_to(tmp_path)
        with pytest.raises(ValueError, match="outside"):
            ensure_inside(out, out / "link" / "a.nii.gz")
