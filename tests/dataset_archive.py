"""A small synthetic archive for the data set tests and benchmark (imported, not a test).

Each patient has a CT series with Lung_L, Lung_R and Heart (spheres), and a coarser PT
series of the same frame of reference; some patients are awkward on purpose: a hostile
PatientID, a second structure set of one patient, a missing Heart, overlapping ROIs, ROI
names that only a map turns into the labels, another orientation.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pydicom
from pydicom.uid import PositronEmissionTomographyImageStorage, generate_uid

from conftest import HFP, HFS, orthonormal
from rtmask import ImageGrid
from rtmask.synthetic import RoiSpec, sphere_contours, write_ct_series, write_rtstruct

LABELS = ("Lung_L", "Lung_R", "Heart")


@dataclass(frozen=True)
class Patient:
    folder: str
    patient_id: str
    names: tuple[str, ...] = ("Lung_L", "Lung_R", "Heart")
    overlap: bool = False  # Heart moved onto Lung_L
    orientation: tuple[float, ...] = HFS
    studies: int = 1


PATIENTS = (
    Patient("p1", "P1", studies=2),
    Patient("p2", "P2", names=("lung l", "LUNG_R", "heart")),  # matched case-insensitively
    Patient("p3", "../x y", orientation=HFP),
    Patient("p4", "P4", names=("Lung_L", "Lung_R")),  # no Heart
    Patient("p5", "P5", overlap=True),
    Patient("p6", "P6"),
    Patient("p7", "P7"),
)


def ct_grid(
    orientation: tuple[float, ...] = HFS, shape: tuple[int, int, int] = (8, 22, 26)
) -> ImageGrid:
    return ImageGrid.from_explicit(
        origin_mm=(-14.3, -9.9, -10.4),
        spacing_mm=(2.5, 1.1, 0.9),
        shape=shape,
        orientation=orthonormal(orientation),
    )


def pt_grid(ct: ImageGrid) -> ImageGrid:
    """A coarser grid of the same planes' orientation, shifted, covering most of the CT."""
    return ImageGrid.from_explicit(
        origin_mm=tuple(ct.origin_mm + np.array([1.3, -0.7, 2.1])),
        spacing_mm=(4.0, 2.3, 1.9),
        shape=(5, 11, 13),
        orientation=ct.orientation,
    )


def sphere_rois(
    grid: ImageGrid, names: tuple[str, ...] = LABELS, overlap: bool = False
) -> list[RoiSpec]:
    """Three spheres (Lung_L, Lung_R, Heart); ``overlap`` moves the third onto the first."""
    centres = {
        0: grid.index_to_patient([[3.5, 6, 7]])[0],
        1: grid.index_to_patient([[3.5, 15, 18]])[0],
        2: grid.index_to_patient([[4.0, 6, 17]])[0],
    }
    if overlap:
        centres[2] = centres[0] + np.array([2.0, 1.0, 0.0])
    rois = []
    for number, name in enumerate(names, start=1):
        contours = sphere_contours(grid, centres[number - 1], 4.5)
        rois.append(
            RoiSpec(
                number=number, name=name, contours=tuple((c, "CLOSED_PLANAR") for c in contours)
            )
        )
    return rois


def _write_pt(folder: Path, grid: ImageGrid, patient_id: str, study: str, frame: str) -> None:
    """A PT series: written as CT, then relabelled (modality and SOP class)."""
    k, j, i = np.meshgrid(*(np.arange(n) for n in grid.shape), indexing="ij")
    values = 100 + 40 * k + 7 * j - 3 * i + 25 * ((j + i) % 3)
    series = write_ct_series(
        folder,
        grid,
        hu=values,
        patient_id=patient_id,
        study_instance_uid=study,
        frame_of_reference_uid=frame,
    )
    for path in series.files:
        ds = pydicom.dcmread(path)
        ds.Modality = "PT"
        ds.SOPClassUID = PositronEmissionTomographyImageStorage
        ds.file_meta.MediaStorageSOPClassUID = PositronEmissionTomographyImageStorage
        ds.SeriesDescription = "synthetic PT"
        ds.save_as(path)


def make_dataset_archive(
    root: Path, patients: tuple[Patient, ...] = PATIENTS, *, pt: bool = True
) -> Path:
    """Write the archive under ``root``; returns it."""
    for patient in patients:
        for study in range(patient.studies):
            grid = ct_grid(patient.orientation)
            where = root / patient.folder / f"study{study}"
            study_uid, frame = generate_uid(), generate_uid()
            ct = write_ct_series(
                where / "ct",
                grid,
                patient_id=patient.patient_id,
                study_instance_uid=study_uid,
                frame_of_reference_uid=frame,
            )
            write_rtstruct(
                where / "RS.dcm", sphere_rois(ct.grid, patient.names, patient.overlap), ct
            )
            if pt:
                _write_pt(where / "pt", pt_grid(ct.grid), patient.patient_id, study_uid, frame)
    return root
