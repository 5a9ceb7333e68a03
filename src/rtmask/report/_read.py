"""Reading what the QA report shows: a converted cohort or a training data set.

Two layouts are understood:

cohort (``rtmask convert ROOT -o OUT``)
    ``OUT/cases.csv`` (one row per structure set: ``patient_id``, ``status``, ``error``,
    ``output`` ...) and per case ``OUT/<output>/summary.json`` with the ROI rows, beside
    ``image.nii.gz`` and one ``<name>.nii.gz`` mask per ROI.
data set (``rtmask dataset ROOT -o OUT``)
    ``OUT/cases.csv`` (``status`` ``included``, ``excluded`` or ``failed``; ``output`` the
    case identifier), a ``dataset.json`` whose ``labels`` name the label values
    (``{"background": 0, "Heart": 1, ...}``; a list of values for a region), and the images
    and label maps: nnU-Net v2's ``imagesTr/<case>_0000.nii.gz`` and
    ``labelsTr/<case>.nii.gz`` (also ``imagesTs``), in OUT or in its one
    ``Dataset<NNN>_<Name>`` folder, or MONAI's ``images/`` and ``labels/``.
"""

from __future__ import annotations

import csv
import dataclasses
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from rtmask.errors import InvalidInputError

__all__ = ["ReportCase", "ReportSource", "RoiEntry", "read_source"]

#: Colours of data-set labels (label 1 takes the first), as DICOM display colours.
LABEL_PALETTE = (
    (230, 25, 75),
    (60, 180, 75),
    (255, 225, 25),
    (0, 130, 200),
    (245, 130, 48),
    (145, 30, 180),
    (70, 240, 240),
    (240, 50, 230),
    (210, 245, 60),
    (250, 190, 190),
    (0, 128, 128),
    (170, 110, 40),
)
_NIFTI = (".nii.gz", ".nii")


@dataclass(frozen=True, slots=True, kw_only=True)
class RoiEntry:
    """One ROI (or data-set label) of one case.

    Parameters
    ----------
    name
        The ROI's name in its structure set (a data set's label name for data sets).
    canonical
        Its canonical name (``--roi-map``; the label name in a data set), or None.
    status
        The conversion's ROI status (``written``, ``empty`` ...; ``present``/``absent``
        for data-set labels).
    voxel_count, volume_cm3
        Voxels inside and volume in cm3, None when not computed.
    warnings
        One sentence per problem.
    color
        Outline colour ``(r, g, b)``.
    mask
        The mask file to draw (None when there is none).
    values
        The label values that make up the ROI in ``mask`` (a label map); empty for a
        binary mask.
    """

    name: str
    canonical: str | None
    status: str
    voxel_count: float | None
    volume_cm3: float | None
    warnings: tuple[str, ...] = ()
    color: tuple[int, int, int] = (255, 0, 0)
    mask: Path | None = None
    values: tuple[int, ...] = ()

    @property
    def key(self) -> str:
        """The name the cohort checks group by: the canonical name, else the name."""
        return self.canonical if self.canonical is not None else self.name


@dataclass(frozen=True, slots=True, kw_only=True)
class ReportCase:
    """One row of ``cases.csv`` and, when it has one, its converted output.

    ``detailed`` cases (those whose ROI table was read) take part in the cohort checks.
    """

    patient_id: str
    status: str
    error: str
    structure_set: str
    output: str
    rois: tuple[RoiEntry, ...] = ()
    image: Path | None = None
    is_ct: bool = False
    warnings: tuple[str, ...] = ()
    detailed: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class ReportSource:
    """What the report is about.

    ``kind`` is ``"cohort"``, ``"nnU-Net data set"`` or ``"MONAI data set"``; ``cases``
    are in ``cases.csv`` order.
    """

    kind: str
    folder: Path
    cases: tuple[ReportCase, ...]
    notes: tuple[str, ...] = ()


def _read_rows(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as stream:
        reader = csv.DictReader(stream)
        missing = {"patient_id", "status", "output"} - set(reader.fieldnames or ())
        if missing:
            raise InvalidInputError(
                f"{path}: no column {', '.join(sorted(missing))}; give the folder that "
                "'rtmask convert' or 'rtmask dataset' wrote"
            )
        return list(reader)


def _row_case(row: dict[str, str]) -> ReportCase:
    """A case as its ``cases.csv`` row tells it (no details)."""
    return ReportCase(
        patient_id=row.get("patient_id", "") or "",
        status=row.get("status", "") or "",
        error=row.get("error", "") or "",
        structure_set=row.get("structure_set", "") or "",
        output=row.get("output", "") or "",
    )


def _color(value: object, fallback: tuple[int, int, int]) -> tuple[int, int, int]:
    if isinstance(value, list) and len(value) == 3 and all(isinstance(c, int) for c in value):
        r, g, b = (min(max(int(c), 0), 255) for c in value)
        return r, g, b
    return fallback


def _number(value: object) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _cohort_case(row: dict[str, str], folder: Path) -> ReportCase:
    """A cohort row with its ``summary.json`` read (when ``folder`` has one)."""
    base = _row_case(row)
    summary_path = folder / "summary.json"
    try:
        document = json.loads(summary_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return base
    rois = []
    for number, item in enumerate(document.get("rois") or []):
        file = item.get("file")
        mask = folder / file if isinstance(file, str) and file.endswith(_NIFTI) else None
        rois.append(
            RoiEntry(
                name=str(item.get("name", "")),
                canonical=item.get("canonical") if isinstance(item.get("canonical"), str) else None,
                status=str(item.get("status", "")),
                voxel_count=_number(item.get("voxel_count")),
                volume_cm3=_number(item.get("volume_cm3")),
                warnings=tuple(str(w) for w in item.get("warnings") or ()),
                color=_color(item.get("color"), LABEL_PALETTE[number % len(LABEL_PALETTE)]),
                mask=mask if mask is not None and mask.is_file() else None,
            )
        )
    image_facts = document.get("image") if isinstance(document.get("image"), dict) else {}
    image_file = image_facts.get("file")
    image = folder / image_file if isinstance(image_file, str) else None
    structure_set = document.get("structure_set") or {}
    files = [item.get("file") for item in document.get("rois") or []]
    others = sorted(
        {Path(f).suffix for f in files if isinstance(f, str) and not f.endswith(_NIFTI)}
    )
    notes = (
        [f"ROI files {', '.join(others)} are not drawn (only NIfTI masks are)"] if others else []
    )
    return dataclasses.replace(
        base,
        rois=tuple(rois),
        image=image
        if image is not None and image.name.endswith(_NIFTI) and image.is_file()
        else None,
        is_ct=image_facts.get("modality") == "CT" or image_facts.get("units") == "HU",
        warnings=(*(str(w) for w in structure_set.get("warnings") or ()), *notes),
        detailed=True,
    )


def _read_cohort(folder: Path, rows: Sequence[dict[str, str]]) -> ReportSource:
    cases, shown = [], set()
    for row in rows:
        output = row.get("output", "") or ""
        case_folder = (folder / output).resolve()
        inside = case_folder == folder.resolve() or folder.resolve() in case_folder.parents
        if not output or not inside or case_folder in shown:
            # A duplicate's row points at its original's folder: its details appear once.
            cases.append(_cohort_case(row, folder / "\0missing"))
            continue
        shown.add(case_folder)
        cases.append(_cohort_case(row, case_folder))
    return ReportSource(kind="cohort", folder=folder, cases=tuple(cases))


def _dataset_root(folder: Path) -> Path | None:
    """The folder holding ``dataset.json`` (OUT itself or its one ``Dataset*`` folder)."""
    if (folder / "dataset.json").is_file() or (folder / "datalist.json").is_file():
        return folder
    found = sorted(p.parent for p in folder.glob("Dataset*/dataset.json"))
    if len(found) > 1:
        listed = ", ".join(p.name for p in found)
        raise InvalidInputError(
            f"{folder}: holds several data sets ({listed}); give one of their folders"
        )
    return found[0] if found else None


def _labels(root: Path) -> dict[str, tuple[int, ...]]:
    """Label name -> its label values (background left out).

    From ``dataset.json`` (nnU-Net v2: ``{"background": 0, "Heart": 1}``, a list of values
    for a region) or else ``datalist.json``; the Medical Segmentation Decathlon's reversed
    form ``{"0": "background", "1": "Heart"}`` is understood too.
    """
    labels: object = {}
    for name in ("dataset.json", "datalist.json"):
        path = root / name
        if path.is_file():
            try:
                labels = json.loads(path.read_text(encoding="utf-8")).get("labels") or {}
            except (ValueError, AttributeError) as error:
                raise InvalidInputError(
                    f"{path}: not a JSON object ({error}); write it again"
                ) from error
            break
    result: dict[str, tuple[int, ...]] = {}
    for key, value in labels.items() if isinstance(labels, dict) else ():
        name, raw = (
            (value, int(key)) if str(key).isdigit() and isinstance(value, str) else (key, value)
        )
        values = tuple(raw) if isinstance(raw, list) else (raw,)
        if all(isinstance(v, int) and not isinstance(v, bool) for v in values) and 0 not in values:
            result[str(name)] = tuple(int(v) for v in values)
    return result


def _find(root: Path, folders: Sequence[str], names: Sequence[str]) -> Path | None:
    for sub in folders:
        for name in names:
            if (root / sub / name).is_file():
                return root / sub / name
    return None


def _dataset_case(
    row: dict[str, str], root: Path, labels: dict[str, tuple[int, ...]]
) -> ReportCase:
    case = row.get("output", "") or ""
    base = _row_case(row)
    if row.get("status") != "included" or not case or "/" in case or "\\" in case:
        return base
    endings = [f"{case}{e}" for e in (*(f"_0000{e}" for e in _NIFTI), *_NIFTI)]
    image = _find(root, ("imagesTr", "imagesTs", "images"), endings)
    label_map = _find(root, ("labelsTr", "labelsTs", "labels"), [f"{case}{e}" for e in _NIFTI])
    rois = tuple(
        RoiEntry(
            name=name,
            canonical=name,
            status="present",
            voxel_count=None,
            volume_cm3=None,
            color=LABEL_PALETTE[number % len(LABEL_PALETTE)],
            mask=label_map,
            values=values,
        )
        for number, (name, values) in enumerate(labels.items())
    )
    return dataclasses.replace(
        base, rois=rois if label_map is not None else (), image=image, detailed=True
    )


def read_source(folder: Path) -> ReportSource:
    """Read a converted cohort or a data set (see the module notes).

    Raises
    ------
    InvalidInputError
        ``folder`` is missing, a file, or holds no ``cases.csv``.
    """
    folder = Path(folder)
    if not folder.exists():
        raise InvalidInputError(
            f"{folder}: no such folder; give the output folder of 'rtmask convert' or "
            "'rtmask dataset'"
        )
    if not folder.is_dir():
        raise InvalidInputError(
            f"{folder}: is a file, not a folder; give the output folder of 'rtmask convert' "
            "or 'rtmask dataset'"
        )
    root = _dataset_root(folder)
    cases_csv = folder / "cases.csv"
    if not cases_csv.is_file() and root is not None and (root.parent / "cases.csv").is_file():
        cases_csv = root.parent / "cases.csv"
    if not cases_csv.is_file() and root is None and (folder / "summary.json").is_file():
        # One structure set converted into OUT itself: a cohort of one, without cases.csv.
        single = {"patient_id": "", "status": "converted", "output": "."}
        case = _cohort_case(single, folder)
        facts = json.loads((folder / "summary.json").read_text(encoding="utf-8"))
        patient = str((facts.get("structure_set") or {}).get("patient_id", ""))
        case = dataclasses.replace(case, patient_id=patient)
        return ReportSource(kind="cohort", folder=folder, cases=(case,))
    if not cases_csv.is_file():
        raise InvalidInputError(
            f"{folder}: no cases.csv, so not a converted cohort or data set; give the output "
            "folder of 'rtmask convert ROOT -o OUT' or 'rtmask dataset'"
        )
    rows = _read_rows(cases_csv)
    if root is None:
        return _read_cohort(folder, rows)
    labels = _labels(root)
    monai = (root / "datalist.json").is_file() or not (root / "imagesTr").is_dir()
    kind = "MONAI data set" if monai else "nnU-Net data set"
    notes = () if labels else (f"{root}: no label names in dataset.json; labels not drawn",)
    cases = tuple(_dataset_case(row, root, labels) for row in rows)
    return ReportSource(kind=kind, folder=folder, cases=cases, notes=notes)
