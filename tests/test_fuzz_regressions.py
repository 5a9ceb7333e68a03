"""Regression tests for failures the fuzz test (tests/test_fuzz.py) found, one per finding."""

from __future__ import annotations

from pathlib import Path

import pytest

from fuzz_inputs import Seed, write_synthetic_seed
from rtmask.cli import main


@pytest.fixture(scope="module")
def seed(tmp_path_factory: pytest.TempPathFactory) -> Seed:
    return write_synthetic_seed(tmp_path_factory.mktemp("seed") / "case")


@pytest.mark.parametrize("option", ["--csv", "--plot"])
@pytest.mark.parametrize("where", ["missing folder", "a folder"])
def test_dvh_output_file_that_cannot_be_written_is_refused_first(
    seed: Seed, tmp_path: Path, capsys: pytest.CaptureFixture[str], option: str, where: str
) -> None:
    # Fuzz finding: `dvh --csv OUT/dvh.csv` with no folder OUT let FileNotFoundError escape
    # from the atomic writer after every DVH had been computed.
    target = tmp_path / "missing" / "dvh.out" if where == "missing folder" else tmp_path
    before = sorted(tmp_path.rglob("*"))
    code = main(
        ["dvh", str(seed.folder / "RS.dcm"), str(seed.folder / "RD.dcm"), option, str(target)]
    )
    captured = capsys.readouterr()
    assert code == 1
    assert "Traceback" not in captured.err
    (line,) = [line for line in captured.err.splitlines() if line.startswith("error:")]
    expected = (
        "does not exist; create it first"
        if where == "missing folder"
        else "is a folder; give a file name"
    )
    assert line.startswith(f"error: {option} {target}: ")
    assert line.endswith(expected)
    assert sorted(tmp_path.rglob("*")) == before


@pytest.mark.parametrize("content", [b"", b"NRRD0004\n"])
def test_empty_nrrd_mask_is_an_unreadable_file(
    seed: Seed, tmp_path: Path, capsys: pytest.CaptureFixture[str], content: bytes
) -> None:
    # Fuzz finding: an empty .nrrd among the masks let pynrrd's StopIteration escape
    # `to-rtstruct` as "RuntimeError: generator raised StopIteration".
    from rtmask import InvalidInputError, read_image_series, read_masks

    masks = tmp_path / "masks"
    masks.mkdir()
    (masks / "Body.nrrd").write_bytes(content)
    series = read_image_series(seed.folder / "ct")
    with pytest.raises(InvalidInputError, match=r"Body\.nrrd: not a readable NRRD file"):
        read_masks(masks, series)
    output = tmp_path / "RS.dcm"
    code = main(["to-rtstruct", str(masks), "--image", str(seed.folder / "ct"), "-o", str(output)])
    captured = capsys.readouterr()
    assert code == 1
    assert "Traceback" not in captured.err
    assert "Body.nrrd: not a readable NRRD file" in captured.err
    assert not output.exists()
