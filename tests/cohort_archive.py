"""A small, awkward synthetic archive for the cohort tests (imported by them, not a test)."""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path

import nibabel as nib
import numpy as np

from conftest import HFP, HFS, OBLIQUE, SAGITTAL, orthonormal
from rtmask import ImageGrid
from rtmask.synthetic import RoiSpec, sphere_contours, write_ct_series, write_rtstruct

#: (folder, PatientID, orientation, StructureSetLabel, ROI names)
PATIENTS = (
    ("P001", "P001", HFS, "Plan 1/a", ("PTV 70/35 Gy", "Lung_L")),
    ("dotdot", "../..", HFP, "CT", ("L Lung",)),
    ("con", "CON", OBLIQUE, "", ("lung left", "Cord")),
    ("sag", "P004", SAGITTAL, "SAG", ("Body",)),
)


@dataclass(frozen=True)
class Archive:
    root: Path
    converted: dict[str, tuple[str, ...]]  # structure set (relative) -> ROI names
    duplicate: str  # the copy with another file's SOPInstanceUID
    original: str  # the file it copies
    broken: str  # a truncated structure set
    orphan: str  # a structure set whose images are not in the archive


def _grid(orientation: tuple[float, ...]) -> ImageGrid:
    return ImageGrid.from_explicit(
        origin_mm=(-20.3, 7.9, -40.4),
        spacing_mm=(2.5, 1.1, 0.9),
        shape=(10, 30, 36),
        orientation=orthonormal(orientation),
    )


def _rois(grid: ImageGrid, names: tuple[str, ...]) -> list[RoiSpec]:
    rois = []
    for number, name in enumerate(names, start=1):
        centre = grid.index_to_patient([[4.5 + number * 0.5, 15, 18]])[0]
        contours = sphere_contours(grid, centre, 6.0 + 2.0 * number)
        rois.append(
            RoiSpec(
                number=number, name=name, contours=tuple((c, "CLOSED_PLANAR") for c in contours)
            )
        )
    return rois


def make_archive(base: Path) -> Archive:
    """Write the archive under ``base/archive`` (images of the orphan under ``base/elsewhere``)."""
    root = base / "archive"
    converted: dict[str, tuple[str, ...]] = {}
    first: Path | None = None
    for folder, patient_id, orientation, label, names in PATIENTS:
        grid = _grid(orientation)
        ct = write_ct_series(
            root / folder / "ct", grid, patient_id=patient_id, file_names="shuffled"
        )
        path = write_rtstruct(
            root / folder / f"RS_{folder}.dcm", _rois(grid, names), ct, label=label
        )
        converted[f"{folder}/RS_{folder}.dcm"] = names
        first = first or path
    assert first is not None
    duplicate = root / "zz_copies" / "RS_copy.dcm"
    duplicate.parent.mkdir(parents=True)
    duplicate.write_bytes(first.read_bytes())
    broken = root / "P001" / "RS_broken.dcm"
    broken.write_bytes(first.read_bytes()[:2000])
    grid = _grid(HFS)
    ct = write_ct_series(base / "elsewhere", grid, patient_id="P005")
    write_rtstruct(root / "orphan" / "RS_orphan.dcm", _rois(grid, ("GTV",)), ct)
    return Archive(
        root=root,
        converted=converted,
        duplicate="zz_copies/RS_copy.dcm",
        original="P001/RS_P001.dcm",
        broken="P001/RS_broken.dcm",
        orphan="orphan/RS_orphan.dcm",
    )


def add_partial(root: Path) -> str:
    """Add a structure set with a drawn GTV and an ROI without contours ('Areola').

    Converting it writes GTV and fails on 'Areola' (a ``failed`` case with a folder).
    Returns its path relative to ``root``.
    """
    grid = _grid(HFS)
    ct = write_ct_series(root / "partial" / "ct", grid, patient_id="P006")
    rois = [*_rois(grid, ("GTV",)), RoiSpec(number=2, name="Areola")]
    write_rtstruct(root / "partial" / "RS_partial.dcm", rois, ct, label="Breast")
    return "partial/RS_partial.dcm"


def read_rows(out: Path) -> dict[str, dict[str, str]]:
    """cases.csv as {structure_set: row}."""
    with (out / "cases.csv").open(newline="", encoding="utf-8") as stream:
        return {row["structure_set"]: row for row in csv.DictReader(stream)}


def tree(out: Path) -> dict[str, object]:
    """Every file under ``out`` but cases.*: masks as arrays, summaries as data."""
    files: dict[str, object] = {}
    for path in sorted(out.rglob("*")):
        name = path.relative_to(out).as_posix()
        if path.is_dir() or name.startswith("cases."):
            continue
        if path.name.endswith(".nii.gz"):
            image = nib.load(path)
            files[name] = (np.asarray(image.dataobj).tobytes(), image.affine.tobytes())
        elif path.name == "summary.json":
            files[name] = json.loads(path.read_text(encoding="utf-8"))
        else:
            files[name] = path.read_bytes()
    return files
