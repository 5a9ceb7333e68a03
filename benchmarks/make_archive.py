"""Write a synthetic DICOM-RT archive for the cohort benchmark (and the real data, re-identified).

    python benchmarks/make_archive.py OUT [--patients 200] [--size small|realistic]
        [--slices N] [--real ../shared/data] [--real-copies 2] [--plain] [--jobs 2]

Every synthetic patient has a CT series in one of six orientations (axial HFS, FFS, HFP
(prone), sagittal, coronal, oblique), an RT Structure Set of 5-7 ROIs whose names are
written the ways clinics write them (``Lung_L``, ``L Lung``, ``LUNG LT``, ``lung left``,
``Lt_Lung_1`` ...), an RT Plan referring to the structure set and RT Doses referring to the
plan: one PLAN dose, or (every fifth patient) only two BEAM doses. ``--size realistic``
writes 512 x 512 CT slices (``--slices``, default 80) with noise inside the body, as a CT
has, so a case costs what a clinical case costs.

Unless ``--plain``, the archive also holds the broken files an archive holds: a truncated
structure set, two files that are not DICOM, a structure set whose images are not in the
archive and a second copy of a structure set (same SOPInstanceUID) in another folder; and
each DICOM file of the real data (``--real``, skipped when absent) ``--real-copies`` times,
every Study/Series/SOP Instance/Frame of Reference UID replaced consistently (references
included, so the links survive) and the PatientID made unique per copy.

``OUT/manifest.json`` says what was written (patients, orientations, ROI names, broken files,
real copies and their UIDs): the test of this script checks the archive against it.
Deterministic geometry (``--seed``); UIDs are new at every run.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
import warnings
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
from numpy.typing import NDArray
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.errors import InvalidDicomError
from pydicom.uid import UID, ExplicitVRLittleEndian, generate_uid

from rtmask.geometry import ImageGrid
from rtmask.synthetic import (
    RoiSpec,
    cylinder_contours,
    ellipsoid_contours,
    sphere_contours,
    write_ct_series,
    write_rtdose,
    write_rtstruct,
)

#: Where the real sample data is, seen from the repository (``../shared/data``).
REAL_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
MANIFEST = "manifest.json"

_S = 1 / np.sqrt(2.0)
#: name -> (ImageOrientationPatient, PatientPosition)
ORIENTATIONS: dict[str, tuple[tuple[float, ...], str]] = {
    "axial HFS": ((1.0, 0.0, 0.0, 0.0, 1.0, 0.0), "HFS"),
    "axial FFS": ((-1.0, 0.0, 0.0, 0.0, 1.0, 0.0), "FFS"),
    "axial HFP": ((-1.0, 0.0, 0.0, 0.0, -1.0, 0.0), "HFP"),
    "sagittal": ((0.0, 1.0, 0.0, 0.0, 0.0, -1.0), "HFS"),
    "coronal": ((1.0, 0.0, 0.0, 0.0, 0.0, -1.0), "HFS"),
    "oblique": ((_S, _S, 0.0, -0.5, 0.5, _S), "HFS"),
}
#: Each anatomical structure written the ways clinics write it.
MESSY_NAMES: dict[str, tuple[str, ...]] = {
    "Lung_L": ("Lung_L", "L Lung", "LUNG LT", "lung left", "Lt_Lung_1", "Lung Left", "LungL"),
    "Lung_R": ("Lung_R", "R Lung", "LUNG RT", "lung right", "Rt_Lung_1", "Lung Right", "LungR"),
    "SpinalCord": ("SpinalCord", "Spinal Cord", "CORD", "spinal_cord", "Cord_PRV0"),
    "PTV": ("PTV", "PTV_60", "PTV 60Gy", "ptv1", "PTV-1"),
    "GTV": ("GTV", "GTV-1", "gtv_primary", "GTVp"),
    "Body": ("BODY", "External", "Body", "SKIN", "Outer Contour"),
    "Heart": ("Heart", "HEART", "heart_1", "Cor"),
}
#: (rows, columns, pixel mm, slices, slice mm) of each size.
SIZES = {"small": (48, 56, 4.0, 12, 5.0), "realistic": (512, 512, 0.9765625, 80, 3.0)}
RTPLAN_CLASS = "1.2.840.10008.5.1.4.1.1.481.5"


@dataclass(frozen=True)
class Settings:
    """What every synthetic patient is written with."""

    size: str
    slices: int
    seed: int


def _grid(settings: Settings, orientation: tuple[float, ...]) -> ImageGrid:
    rows, columns, pixel, _, slice_mm = SIZES[settings.size]
    return ImageGrid.from_explicit(
        origin_mm=(-columns * pixel / 2, -rows * pixel / 2, -settings.slices * slice_mm / 2),
        spacing_mm=(slice_mm, pixel, pixel),
        shape=(settings.slices, rows, columns),
        orientation=orientation,
    )


def _hu(grid: ImageGrid, rng: np.random.Generator, noise: bool) -> NDArray[np.int16]:
    """Air with a water ellipse (80 % of the field), noise of 20 HU inside when ``noise``."""
    _, rows, columns = grid.shape
    r = (np.arange(rows) - (rows - 1) / 2) / (0.4 * rows)
    c = (np.arange(columns) - (columns - 1) / 2) / (0.4 * columns)
    inside = r[:, None] ** 2 + c[None, :] ** 2 <= 1.0
    plane = np.where(inside, 0, -1000).astype(np.int16)
    hu = np.broadcast_to(plane, grid.shape).copy()
    if noise:
        hu += (rng.normal(0.0, 20.0, grid.shape) * inside).astype(np.int16)
    return hu


def _rois(grid: ImageGrid, rng: np.random.Generator) -> list[RoiSpec]:
    """5-7 ROIs, names drawn from :data:`MESSY_NAMES`, shapes scaled to the field of view."""
    slices, rows, columns = grid.shape
    extent_u = columns * grid.spacing_mm[2]
    extent_v = rows * grid.spacing_mm[1]
    extent_n = slices * grid.spacing_mm[0]
    centre = grid.index_to_patient([[(slices - 1) / 2, (rows - 1) / 2, (columns - 1) / 2]])[0]
    u, v, n = grid.row_direction, grid.column_direction, grid.normal
    vertices = 128 if rows >= 256 else 48

    def at(du: float, dv: float, dn: float = 0.0) -> NDArray[np.float64]:
        return np.asarray(centre + du * extent_u * u + dv * extent_v * v + dn * extent_n * n)

    shapes = {
        "Body": cylinder_contours(
            grid, centre, 0.38 * min(extent_u, extent_v), 0.9 * extent_n, n=vertices
        ),
        "Lung_L": ellipsoid_contours(
            grid, at(0.15, -0.02), (0.1 * extent_u, 0.14 * extent_v, 0.35 * extent_n), n=vertices
        ),
        "Lung_R": ellipsoid_contours(
            grid, at(-0.15, -0.02), (0.1 * extent_u, 0.14 * extent_v, 0.35 * extent_n), n=vertices
        ),
        "SpinalCord": cylinder_contours(
            grid, at(0.0, 0.2), 0.015 * extent_u, 0.8 * extent_n, n=vertices
        ),
        "PTV": sphere_contours(grid, at(0.12, 0.0, 0.05), 0.2 * extent_n, n=vertices),
        "GTV": sphere_contours(grid, at(0.12, 0.0, 0.05), 0.12 * extent_n, n=vertices),
        "Heart": ellipsoid_contours(
            grid, at(-0.03, -0.1, -0.1), (0.07 * extent_u, 0.06 * extent_v, 0.15 * extent_n)
        ),
    }
    kinds = {"Body": "EXTERNAL", "PTV": "PTV", "GTV": "GTV"}
    chosen = [k for k in shapes if k in {"Body", "Lung_L", "Lung_R", "PTV"} or rng.random() < 0.6]
    return [
        RoiSpec(
            number=number,
            name=str(rng.choice(MESSY_NAMES[key])),
            contours=tuple((c, "CLOSED_PLANAR") for c in shapes[key]),
            color=(int(rng.integers(256)), int(rng.integers(256)), int(rng.integers(256))),
            interpreted_type=kinds.get(key, "ORGAN"),
        )
        for number, key in enumerate(chosen, start=1)
    ]


def _save(ds: Dataset, sop_class: str, path: Path) -> None:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = sop_class
    meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta = meta
    ds.SOPClassUID = sop_class
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)


def _write_plan(path: Path, patient: str, study_uid: str, structure_set_uid: str) -> str:
    """An RT Plan referring to the structure set (the dose -> plan -> structure set link)."""
    ds = Dataset()
    ds.SOPInstanceUID = generate_uid()
    ds.Modality = "RTPLAN"
    ds.PatientID, ds.PatientName = patient, f"Synthetic^{patient}"
    ds.StudyInstanceUID, ds.SeriesInstanceUID = study_uid, generate_uid()
    ds.RTPlanLabel = "PLAN"
    reference = Dataset()
    reference.ReferencedSOPClassUID = "1.2.840.10008.5.1.4.1.1.481.3"
    reference.ReferencedSOPInstanceUID = structure_set_uid
    ds.ReferencedStructureSetSequence = [reference]
    _save(ds, RTPLAN_CLASS, path)
    return str(ds.SOPInstanceUID)


def _dose(grid: ImageGrid, rois: list[RoiSpec]) -> tuple[ImageGrid, NDArray[np.float64]]:
    """A coarse dose grid (4x the pixel size, same planes) peaking at 60 Gy at the PTV."""
    slices, rows, columns = grid.shape
    dose_grid = ImageGrid.from_explicit(
        origin_mm=grid.index_to_patient([[0, 0, 0]])[0],
        spacing_mm=(grid.spacing_mm[0], 4 * grid.spacing_mm[1], 4 * grid.spacing_mm[2]),
        shape=(slices, max(2, rows // 4), max(2, columns // 4)),
        orientation=grid.orientation,
    )
    ptv = next(r for r in rois if r.interpreted_type == "PTV")
    target = np.mean(np.concatenate([c for c, _ in ptv.contours]), axis=0)
    k, j, i = np.meshgrid(*(np.arange(s) for s in dose_grid.shape), indexing="ij")
    points = dose_grid.index_to_patient(np.stack([k, j, i], axis=-1).reshape(-1, 3))
    distance = np.linalg.norm(points - target, axis=1).reshape(dose_grid.shape)
    return dose_grid, 60.0 * np.exp(-((distance / (0.3 * slices * grid.spacing_mm[0])) ** 2))


def write_patient(root: Path, index: int, settings: Settings) -> dict[str, Any]:
    """Write one synthetic patient; returns its manifest entry."""
    rng = np.random.default_rng([settings.seed, index])
    name = list(ORIENTATIONS)[index % len(ORIENTATIONS)]
    orientation, position = ORIENTATIONS[name]
    grid = _grid(settings, orientation)
    patient = f"SYN{index:04d}"
    folder = root / "synthetic" / patient
    ct = write_ct_series(
        folder / "CT",
        grid,
        hu=_hu(grid, rng, noise=settings.size == "realistic"),
        patient_id=patient,
        patient_position=position,
        file_names="shuffled" if index % 3 == 1 else "ordered",
        seed=index,
    )
    rois = _rois(ct.grid, rng)
    structure_set = write_rtstruct(folder / "RS.dcm", rois, ct, label=f"RS {patient}")
    structure_set_uid = str(pydicom.dcmread(structure_set, stop_before_pixels=True).SOPInstanceUID)
    plan = _write_plan(folder / "RP.dcm", patient, ct.study_instance_uid, structure_set_uid)
    dose_grid, dose = _dose(ct.grid, rois)
    beams = index % 5 == 4
    if beams:
        for beam in (1, 2):
            write_rtdose(
                folder / f"RD_beam{beam}.dcm",
                dose_grid,
                dose / 2,
                ct,
                summation_type="BEAM",
                referenced_plan_uid=plan,
            )
    else:
        write_rtdose(folder / "RD.dcm", dose_grid, dose, ct, referenced_plan_uid=plan)
    return {
        "patient_id": patient,
        "orientation": name,
        "structure_set": (folder / "RS.dcm").relative_to(root).as_posix(),
        "structure_set_uid": structure_set_uid,
        "rois": [roi.name for roi in rois],
        "doses": "2 beam doses" if beams else "plan dose",
        "shape": list(grid.shape),
    }


def write_broken(root: Path, patients: list[dict[str, Any]], settings: Settings) -> dict[str, Any]:
    """The broken files: truncated, not DICOM, without images, a duplicate SOPInstanceUID."""
    broken = root / "broken"
    broken.mkdir(parents=True, exist_ok=True)
    first = root / patients[0]["structure_set"]
    truncated = broken / "RS_truncated.dcm"
    truncated.write_bytes(first.read_bytes()[: max(400, first.stat().st_size // 3)])
    text = broken / "notes.dcm"
    text.write_text("not a DICOM file: a note someone left in the archive\n", encoding="utf-8")
    garbage = broken / "IM_garbage"
    garbage.write_bytes(np.random.default_rng(settings.seed).bytes(4096))
    duplicate = root / "zz_duplicates" / "RS_copy.dcm"
    duplicate.parent.mkdir(parents=True)
    original = root / patients[min(1, len(patients) - 1)]["structure_set"]
    shutil.copyfile(original, duplicate)
    with tempfile.TemporaryDirectory() as elsewhere:
        grid = _grid(Settings("small", 6, settings.seed), ORIENTATIONS["axial HFS"][0])
        ct = write_ct_series(Path(elsewhere) / "CT", grid, patient_id="ORPHAN")
        orphan = write_rtstruct(
            broken / "RS_without_images.dcm", _rois(ct.grid, np.random.default_rng(0)), ct
        )
    return {
        "truncated": truncated.relative_to(root).as_posix(),
        "not_dicom": [text.relative_to(root).as_posix(), garbage.relative_to(root).as_posix()],
        "without_images": orphan.relative_to(root).as_posix(),
        "duplicate": {
            "copy": duplicate.relative_to(root).as_posix(),
            "original": original.relative_to(root).as_posix(),
        },
    }


# ----------------------------------------------------------------------------- real data
def _uid_elements(dataset: Dataset) -> Iterator[Any]:
    """Every UI element of ``dataset`` and of its sequences, depth first."""
    for element in dataset:
        if element.VR == "SQ":
            for item in element.value:
                yield from _uid_elements(item)
        elif element.VR == "UI":
            yield element


def _is_registry_uid(value: str) -> bool:
    """A UID the DICOM standard defines (SOP class, transfer syntax ...): never replaced."""
    return UID(value).is_valid and UID(value).name != value


def replicate(source: Path, target: Path, copy: int, uid_map: dict[str, str]) -> dict[str, Any]:
    """Write every DICOM file under ``source`` to ``target`` with new UIDs and PatientIDs.

    ``uid_map`` (old -> new) is shared by the files of one copy, so a reference to a UID
    written in another file is replaced by the same new UID as that file's own.
    """
    files = 0
    patients: dict[str, str] = {}
    for path in sorted(p for p in source.rglob("*") if p.is_file()):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the real files' own invalid values
            files += _replicate_file(
                path, target / path.relative_to(source), copy, uid_map, patients
            )
    return {"files": files, "patient_ids": patients}


def _replicate_file(
    path: Path, out: Path, copy: int, uid_map: dict[str, str], patients: dict[str, str]
) -> int:
    """Write one file re-identified; 0 when it is not DICOM (READMEs, NIfTI masks), else 1."""
    try:
        dataset = pydicom.dcmread(path)
    except (InvalidDicomError, OSError, ValueError):
        return 0
    for element in [*_uid_elements(dataset), *_uid_elements(dataset.file_meta)]:
        values = element.value if element.VM > 1 else [element.value]
        new = [
            v if not v or _is_registry_uid(str(v)) else uid_map.setdefault(str(v), generate_uid())
            for v in values
        ]
        element.value = new if element.VM > 1 else new[0]
    old_id = str(dataset.get("PatientID", "") or "anonymous")
    dataset.PatientID = patients.setdefault(old_id, f"{old_id}-copy{copy}")
    out.parent.mkdir(parents=True, exist_ok=True)
    dataset.save_as(out)
    return 1


def write_real(root: Path, real: Path, copies: int) -> list[dict[str, Any]]:
    """``copies`` re-identified copies of every folder of the real data."""
    entries = []
    for folder in sorted(p for p in real.iterdir() if p.is_dir()):
        for copy in range(copies):
            uid_map: dict[str, str] = {}
            target = root / "real" / f"{folder.name}-copy{copy}"
            entry = replicate(folder, target, copy, uid_map)
            if entry["files"]:
                entries.append(
                    {
                        "source": folder.name,
                        "copy": copy,
                        "folder": target.relative_to(root).as_posix(),
                        "uids_replaced": len(uid_map),
                        **entry,
                    }
                )
    return entries


def write_archive(
    root: Path,
    patients: int,
    *,
    size: str = "small",
    slices: int | None = None,
    seed: int = 0,
    plain: bool = False,
    real: Path | None = REAL_DATA,
    real_copies: int = 2,
    jobs: int = 2,
) -> dict[str, Any]:
    """Write the archive under ``root`` and ``root/manifest.json``; returns the manifest."""
    settings = Settings(size, slices or SIZES[size][3], seed)
    root.mkdir(parents=True, exist_ok=True)
    with ProcessPoolExecutor(max(1, jobs)) as pool:
        entries = list(
            pool.map(write_patient, [root] * patients, range(patients), [settings] * patients)
        )
    manifest: dict[str, Any] = {
        "patients": patients,
        "size": size,
        "shape": [settings.slices, *SIZES[size][:2]],
        "orientations": {n: sum(e["orientation"] == n for e in entries) for n in ORIENTATIONS},
        "synthetic": entries,
        "broken": None if plain or not entries else write_broken(root, entries, settings),
        "real": []
        if plain or real is None or not real.is_dir()
        else write_real(root, real, real_copies),
    }
    (root / MANIFEST).write_text(json.dumps(manifest, indent=1), encoding="utf-8")
    return manifest


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--patients", type=int, default=200)
    parser.add_argument("--size", choices=sorted(SIZES), default="small")
    parser.add_argument(
        "--slices", type=int, help="slices per CT (default: 12 small, 80 realistic)"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--plain", action="store_true", help="no broken files, no real data")
    parser.add_argument("--real", type=Path, default=REAL_DATA, help="the real data to replicate")
    parser.add_argument("--real-copies", type=int, default=2)
    parser.add_argument("--jobs", type=int, default=2, help="processes writing patients")
    args = parser.parse_args(argv)
    if args.out.exists() and any(args.out.iterdir()):
        print(f"{args.out} is not empty: give a new folder", file=sys.stderr)
        return 2
    start = time.perf_counter()
    manifest = write_archive(
        args.out,
        args.patients,
        size=args.size,
        slices=args.slices,
        seed=args.seed,
        plain=args.plain,
        real=args.real,
        real_copies=args.real_copies,
        jobs=args.jobs,
    )
    files = sum(1 for p in args.out.rglob("*") if p.is_file())
    print(
        f"wrote {files} files ({manifest['patients']} synthetic patients, "
        f"{len(manifest['real'])} real-data copies) to {args.out} in "
        f"{time.perf_counter() - start:.1f} s"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
