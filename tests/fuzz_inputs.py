"""Seed inputs and mutations for the fuzz test (tests/fuzzing.py runs them).

A seed is a folder with ``ct/``, ``RS.dcm`` and, where the source has them, ``RD.dcm`` and
``RP.dcm``: a small synthetic case written here, or a real case copied from
``../shared/data``. A mutation damages one file of a copy of it in place, drawing every
choice from the generator it is given, and returns one line saying exactly what it did
(file, element path with sequence indices, new value), the reproduction recipe.
"""

from __future__ import annotations

import itertools
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from unittest import mock

import numpy as np

#: Real cases used when ``../shared/data`` is present: name -> files (relative to data root).
REAL_SOURCES: dict[str, dict[str, Any]] = {
    "dicomrttool": {
        "ct": [f"dicomrttool-anon/CT_{i}.dcm" for i in range(1, 5)],
        "rtstruct": "dicomrttool-anon/RS_Body_SpinalCord.dcm",
    },
    "rt-utils": {
        "ct": ["rt-utils-samples/mock_data/ct_1.dcm", "rt-utils-samples/mock_data/ct_2.dcm"],
        "rtstruct": "rt-utils-samples/mock_data/rt.dcm",
    },
    "breast": {
        "ct": ["dicompyler-breast/ct.0.dcm"],
        "rtstruct": "dicompyler-breast/rtss.dcm",
        "rtdose": "dicompyler-breast/rtdose.dcm",
        "rtplan": "dicompyler-breast/rtplan.dcm",
    },
}
DATA_ROOT = Path(__file__).resolve().parents[2] / "shared" / "data"

_KB = 1024


# --------------------------------------------------------------------------------------
# Seed inputs


@dataclass(frozen=True)
class Seed:
    """A seed input: a folder with ``ct/``, ``RS.dcm`` and optionally ``RD.dcm``, ``RP.dcm``."""

    name: str
    folder: Path

    @property
    def has_dose(self) -> bool:
        return (self.folder / "RD.dcm").exists()


def write_synthetic_seed(folder: Path) -> Seed:
    """A small awkward case: 6 slices of 20 x 24 anisotropic voxels, four ROIs and a dose.

    The files are the same byte for byte on every run (fixed UIDs and dates), so a case's
    byte offsets replay exactly.
    """
    counter = itertools.count(1)
    with (
        mock.patch(
            "rtmask.synthetic._writer.generate_uid",
            side_effect=lambda *args, **kwargs: (
                f"1.2.826.0.1.3680043.8.498.{10**19 + next(counter)}"
            ),
        ),
        mock.patch("rtmask.synthetic._writer._now", return_value=("20240102", "030405")),
    ):
        return _write_synthetic_seed(folder)


def _write_synthetic_seed(folder: Path) -> Seed:
    from rtmask import ImageGrid
    from rtmask.synthetic import (
        RoiSpec,
        circle_uv,
        sphere_contours,
        to_patient,
        write_ct_series,
        write_rtdose,
        write_rtstruct,
    )

    grid = ImageGrid.from_explicit(
        origin_mm=(-21.3, 7.9, -130.4), spacing_mm=(2.5, 1.8, 1.6), shape=(6, 20, 24)
    )
    ct = write_ct_series(folder / "ct", grid, file_names="shuffled")
    centre = grid.index_to_patient([[2.5, 9.5, 11.5]])[0]
    body = tuple(
        (to_patient(grid, k, circle_uv((19.0, 17.0), 15.0, n=32)), "CLOSED_PLANAR")
        for k in range(6)
    )
    ring = tuple(
        (to_patient(grid, k, circle_uv((19.0, 17.0), r, n=24)), "CLOSED_PLANAR")
        for k in (2, 3)
        for r in (10.0, 5.0)
    )
    rois = [
        RoiSpec(number=1, name="Body", contours=body, interpreted_type="EXTERNAL"),
        RoiSpec(
            number=2,
            name="Sphere",
            contours=tuple((c, "CLOSED_PLANAR") for c in sphere_contours(grid, centre, 5.0)),
            color=(0, 255, 0),
        ),
        RoiSpec(number=3, name="Ring", contours=ring, color=(0, 0, 255)),
        RoiSpec(
            number=7,
            name="Marker",
            contours=tuple(
                (c, "CLOSED_PLANAR") for c in sphere_contours(grid, centre + 3.0, 1.5, n=12)
            ),
            interpreted_type="MARKER",
        ),
    ]
    write_rtstruct(folder / "RS.dcm", rois, ct)
    dose_grid = ImageGrid.from_explicit(
        origin_mm=(-22.0, 6.0, -131.0),
        spacing_mm=(3.0, 3.0, 3.0),
        shape=(6, 14, 15),
        frame_of_reference_uid=ct.frame_of_reference_uid,
    )
    points = dose_grid.index_to_patient(np.argwhere(np.ones(dose_grid.shape, dtype=bool)))
    dose = 60.0 * np.exp(-((np.linalg.norm(points - centre, axis=1) / 15.0) ** 2))
    write_rtdose(folder / "RD.dcm", dose_grid, dose.reshape(dose_grid.shape), ct)
    return Seed("synthetic", folder)


def copy_real_seed(name: str, folder: Path, data_root: Path = DATA_ROOT) -> Seed | None:
    """Copy one of :data:`REAL_SOURCES` into ``folder``; None when the data is absent."""
    spec = REAL_SOURCES[name]
    files = [*spec["ct"], spec["rtstruct"], spec.get("rtdose"), spec.get("rtplan")]
    if not all((data_root / f).is_file() for f in files if f):
        return None
    (folder / "ct").mkdir(parents=True)
    for f in spec["ct"]:
        shutil.copyfile(data_root / f, folder / "ct" / Path(f).name)
    for key, target in (("rtstruct", "RS.dcm"), ("rtdose", "RD.dcm"), ("rtplan", "RP.dcm")):
        if spec.get(key):
            shutil.copyfile(data_root / spec[key], folder / target)
    return Seed(name, folder)


def write_seeds(root: Path, *, real: bool, data_root: Path = DATA_ROOT) -> list[Seed]:
    """Write the synthetic seed (and copy the real ones when ``real`` and present)."""
    seeds = [write_synthetic_seed(root / "synthetic")]
    if real:
        for name in REAL_SOURCES:
            seed = copy_real_seed(name, root / name, data_root)
            if seed is not None:
                seeds.append(seed)
    return seeds


# --------------------------------------------------------------------------------------
# Mutations


#: Elements whose absence a reader must survive, by file kind; a dotted path goes into a
#: sequence item chosen at random.
REQUIRED = {
    "rtstruct": [
        "StructureSetROISequence.ROINumber",
        "StructureSetROISequence.ROIName",
        "StructureSetROISequence.ReferencedFrameOfReferenceUID",
        "ROIContourSequence.ReferencedROINumber",
        "ROIContourSequence.ContourSequence",
        "ROIContourSequence.ContourSequence.ContourData",
        "ROIContourSequence.ContourSequence.ContourGeometricType",
        "ROIContourSequence.ContourSequence.NumberOfContourPoints",
        "ROIContourSequence.ContourSequence.ContourImageSequence",
        "StructureSetROISequence",
        "ROIContourSequence",
        "ReferencedFrameOfReferenceSequence",
        "RTROIObservationsSequence",
        "SOPClassUID",
        "Modality",
        "FrameOfReferenceUID",
        "PatientID",
        "StudyInstanceUID",
    ],
    "ct": [
        "ImagePositionPatient",
        "ImageOrientationPatient",
        "PixelSpacing",
        "Rows",
        "Columns",
        "SliceThickness",
        "FrameOfReferenceUID",
        "SeriesInstanceUID",
        "SOPInstanceUID",
        "PixelData",
        "BitsAllocated",
        "RescaleSlope",
        "RescaleIntercept",
        "PixelRepresentation",
        "Modality",
    ],
    "rtdose": [
        "DoseGridScaling",
        "GridFrameOffsetVector",
        "ImagePositionPatient",
        "ImageOrientationPatient",
        "PixelSpacing",
        "Rows",
        "Columns",
        "NumberOfFrames",
        "DoseUnits",
        "FrameOfReferenceUID",
        "PixelData",
        "BitsAllocated",
        "DVHSequence",
    ],
    "rtplan": ["ReferencedStructureSetSequence", "SOPClassUID", "FractionGroupSequence"],
}

#: Absurd values, by the kind of element they go into.
ABSURD_NUMBERS = [
    *("nan", "inf", "-inf", "1e38", "-1e38", "1e308", "1e19", "1e20", "-9.9e15", "3e9"),
    *("0", "-1", "-0.0", "1e-300"),
]
ABSURD_TEXT = ["", "one", "1.5", "-", "1e999", " ", "0x10"]
ABSURD_INTEGERS = ["0", "-1", "65535", "2147483647", "-2147483648", "99999999", "1.5", "one", ""]

ABSURD_TARGETS = {
    "rtstruct": [
        ("ROIContourSequence.ContourSequence.ContourData", "DS", "point"),
        ("ROIContourSequence.ContourSequence.ContourData", "DS", "point"),
        ("ROIContourSequence.ContourSequence.ContourData", "DS", "all"),
        ("ROIContourSequence.ContourSequence.NumberOfContourPoints", "IS", "int"),
        ("StructureSetROISequence.ROINumber", "IS", "int"),
        ("ROIContourSequence.ReferencedROINumber", "IS", "int"),
        ("ROIContourSequence.ContourSequence.ContourGeometricType", "CS", "text"),
    ],
    "ct": [
        ("ImagePositionPatient", "DS", "point"),
        ("ImagePositionPatient", "DS", "all"),
        ("ImageOrientationPatient", "DS", "point"),
        ("PixelSpacing", "DS", "all"),
        ("PixelSpacing", "DS", "point"),
        ("SliceThickness", "DS", "all"),
        ("RescaleSlope", "DS", "all"),
        ("RescaleIntercept", "DS", "all"),
        ("Rows", "US", "int"),
        ("Columns", "US", "int"),
        ("BitsAllocated", "US", "int"),
    ],
    "rtdose": [
        ("DoseGridScaling", "DS", "all"),
        ("GridFrameOffsetVector", "DS", "point"),
        ("GridFrameOffsetVector", "DS", "all"),
        ("ImagePositionPatient", "DS", "point"),
        ("PixelSpacing", "DS", "all"),
        ("ImageOrientationPatient", "DS", "point"),
        ("Rows", "US", "int"),
        ("Columns", "US", "int"),
        ("NumberOfFrames", "IS", "int"),
        ("DoseUnits", "CS", "text"),
        ("BitsAllocated", "US", "int"),
    ],
}

HOSTILE_NAMES = [
    "../../x",
    "../../../x",
    "..",
    ".",
    "a/b",
    "a\\b",
    "a\x00b",
    "CON",
    "nul.txt",
    "x" * 300,
    "é" * 120,
    "  ",
    "",
    "*?<>|",
    "PTV 70/35 Gy",
    "Лёгкое 肺",
    ".hidden",
    "-o",
    "{ABS}/passwd",  # an absolute path inside the case folder (never outside it)
]


@dataclass
class Target:
    """The files of one case's input, by kind."""

    folder: Path

    @property
    def rtstruct(self) -> Path:
        return self.folder / "RS.dcm"

    @property
    def rtdose(self) -> Path:
        return self.folder / "RD.dcm"

    @property
    def rtplan(self) -> Path:
        return self.folder / "RP.dcm"

    @property
    def ct_files(self) -> list[Path]:
        return sorted((self.folder / "ct").iterdir())

    def files(self, kind: str) -> list[Path]:
        if kind == "ct":
            return self.ct_files
        path = {"rtstruct": self.rtstruct, "rtdose": self.rtdose, "rtplan": self.rtplan}[kind]
        return [path] if path.exists() else []


def _read(path: Path) -> Any:
    import pydicom

    return pydicom.dcmread(path, force=True)


def _save(ds: Any, path: Path) -> None:
    ds.save_as(path, enforce_file_format=False)


def _raw(tag: int, vr: str, text: str, implicit: bool) -> Any:
    """An element holding exactly ``text``, whatever its VR allows (bypasses validation)."""
    from pydicom.dataelem import RawDataElement
    from pydicom.tag import Tag

    value = text.encode("utf-8", "surrogateescape")
    if len(value) % 2:
        value += b" "
    return RawDataElement(Tag(tag), vr, len(value), value, 0, implicit, True)


def _items(ds: Any, path: str, rng: np.random.Generator) -> tuple[Any, str, str] | None:
    """Walk ``A.B.C`` into random items; return (dataset holding C, 'C', where-text)."""
    parts = path.split(".")
    where = []
    for part in parts[:-1]:
        sequence = ds.get(part)
        if not sequence:
            return None
        index = int(rng.integers(len(sequence)))
        ds = sequence[index]
        where.append(f"{part}[{index}]")
    return ds, parts[-1], ".".join([*where, parts[-1]])


def _pick(rng: np.random.Generator, values: Sequence[Any]) -> Any:
    return values[int(rng.integers(len(values)))]


def _pick_file(rng: np.random.Generator, target: Target, kinds: Sequence[str]) -> tuple[str, Path]:
    available = [(k, f) for k in kinds for f in target.files(k)[:1]]
    kind, first = _pick(rng, available)
    if kind == "ct":
        return kind, _pick(rng, target.ct_files)
    return kind, first


def mutate_truncate(rng: np.random.Generator, target: Target) -> str:
    """Cut a file at a random offset (biased towards the header)."""
    _, path = _pick_file(rng, target, ["rtstruct", "rtdose", "ct", "rtplan"])
    size = path.stat().st_size
    cut = int(rng.integers(0, 4 * _KB)) if rng.random() < 0.4 else int(rng.integers(0, size))
    cut = min(cut, size - 1)
    with path.open("r+b") as handle:
        handle.truncate(cut)
    return f"{_rel(path, target)}: truncated to {cut} of {size} bytes"


def mutate_flip_bytes(rng: np.random.Generator, target: Target) -> str:
    """Flip 1-30 random bytes after the preamble."""
    _, path = _pick_file(rng, target, ["rtstruct", "rtdose", "ct", "rtplan"])
    data = bytearray(path.read_bytes())
    start = 132 if len(data) > 200 else 0
    limit = len(data) if rng.random() < 0.5 else min(len(data), start + 2 * _KB)
    offsets = sorted(int(o) for o in rng.integers(start, limit, size=int(rng.integers(1, 31))))
    for offset in offsets:
        data[offset] ^= int(rng.integers(1, 256))
    path.write_bytes(bytes(data))
    return f"{_rel(path, target)}: bytes flipped at offsets {offsets}"


def mutate_delete_element(rng: np.random.Generator, target: Target) -> str:
    """Delete a required element (in a random sequence item where it is nested)."""
    kinds = [k for k in REQUIRED if target.files(k)]
    kind, path = _pick_file(rng, target, kinds)
    ds = _read(path)
    for _ in range(10):
        found = _items(ds, _pick(rng, REQUIRED[kind]), rng)
        if found is not None and found[1] in found[0]:
            holder, keyword, where = found
            del holder[keyword]
            _save(ds, path)
            if kind == "ct" and rng.random() < 0.4:  # a series-wide defect
                for other in target.ct_files:
                    ds = _read(other)
                    if keyword in ds:
                        del ds[keyword]
                        _save(ds, other)
                return f"ct/*: deleted {where} from every slice"
            return f"{_rel(path, target)}: deleted {where}"
    return f"{_rel(path, target)}: nothing to delete"


def mutate_absurd_value(rng: np.random.Generator, target: Target) -> str:
    """Put NaN, infinity, 1e308, 0, a negative, huge or unreadable value into an element."""
    from pydicom.datadict import tag_for_keyword

    kinds = [k for k in ABSURD_TARGETS if target.files(k)]
    kind, path = _pick_file(rng, target, kinds)
    ds = _read(path)
    implicit = getattr(ds, "is_implicit_VR", None) or (
        ds.file_meta.get("TransferSyntaxUID") == "1.2.840.10008.1.2"
    )
    for _ in range(10):
        name, vr, how = _pick(rng, ABSURD_TARGETS[kind])
        found = _items(ds, name, rng)
        if found is None:
            continue
        holder, keyword, where = found
        tag = tag_for_keyword(keyword)
        values, index = [], 0
        if how == "int":
            text = _pick(rng, ABSURD_INTEGERS)
            if vr == "US":  # binary: a huge or zero value, never text
                from pydicom.dataelem import DataElement

                value = _pick(rng, [0, 1, 65535, 32768])
                holder[tag] = DataElement(tag, "US", value)
                _save(ds, path)
                return f"{_rel(path, target)}: {where} = {value}"
        elif how == "text":
            text = _pick(rng, [*ABSURD_TEXT, "RELATIVE", "CGY", "POINT", "OPEN_PLANAR"])
        elif how == "all" or keyword not in holder:
            text = _pick(rng, ABSURD_NUMBERS + ABSURD_TEXT[:3])
            count = (
                len(holder[keyword].value) if keyword in holder and holder[keyword].VM > 1 else 1
            )
            text = "\\".join([text] * count)
        else:
            values = [str(v) for v in holder[keyword].value] if holder[keyword].VM > 1 else []
            if not values:
                values = [str(holder[keyword].value)]
            index = int(rng.integers(len(values)))
            values[index] = _pick(rng, ABSURD_NUMBERS + ABSURD_TEXT[:3])
            where = f"{where}[{index}]"
            text = "\\".join(values)
        holder[tag] = _raw(tag, vr, text, bool(implicit))
        _save(ds, path)
        shown = values[index] if values else text
        shown = shown if len(shown) < 80 else shown[:60] + "..."
        if kind == "ct" and how == "all" and rng.random() < 0.4:  # a series-wide defect
            for other in target.ct_files:
                ds = _read(other)
                ds[tag] = _raw(tag, vr, text, bool(implicit))
                _save(ds, other)
            return f"ct/*: {where} = {shown!r} in every slice"
        return f"{_rel(path, target)}: {where} = {shown!r}"
    return f"{_rel(path, target)}: nothing to change"


def mutate_hostile_name(rng: np.random.Generator, target: Target) -> str:
    """Give an ROI (or the patient, label or series) a name that must not become a path."""
    name = _pick(rng, HOSTILE_NAMES).replace("{ABS}", str(target.folder.parent / "abs"))
    keyword = _pick(rng, ["ROIName", "ROIName", "ROIName", "PatientID", "StructureSetLabel"])
    ds = _read(target.rtstruct)
    if keyword == "ROIName":
        found = _items(ds, "StructureSetROISequence.ROIName", rng)
        if found is None:
            return "RS.dcm: no ROI to rename"
        holder, _, where = found
    else:
        holder, where = ds, keyword
    from pydicom.datadict import tag_for_keyword

    tag = tag_for_keyword(keyword)
    vr = {"ROIName": "LO", "PatientID": "LO", "StructureSetLabel": "SH"}[keyword]
    holder[tag] = _raw(tag, vr, name, False)
    if "SpecificCharacterSet" not in ds:
        ds.SpecificCharacterSet = "ISO_IR 192"
    _save(ds, target.rtstruct)
    return f"RS.dcm: {where} = {name!r}"


def mutate_duplicate_roi_number(rng: np.random.Generator, target: Target) -> str:
    """Give one ROI another ROI's number (in one or both sequences)."""
    ds = _read(target.rtstruct)
    rois = ds.get("StructureSetROISequence") or []
    if len(rois) < 2:
        return "RS.dcm: fewer than two ROIs"
    a, b = (int(i) for i in rng.choice(len(rois), size=2, replace=False))
    old, new = rois[a].get("ROINumber"), rois[b].get("ROINumber")
    where = _pick(rng, ["both", "StructureSetROISequence", "ROIContourSequence"])
    if where != "ROIContourSequence":
        rois[a].ROINumber = new
    if where != "StructureSetROISequence":
        for item in ds.get("ROIContourSequence") or []:
            if item.get("ReferencedROINumber") == old:
                item.ReferencedROINumber = new
        for item in ds.get("RTROIObservationsSequence") or []:
            if item.get("ReferencedROINumber") == old:
                item.ReferencedROINumber = new
    _save(ds, target.rtstruct)
    return f"RS.dcm: ROI {old} renumbered to {new} in {where}"


def mutate_scale_contour(rng: np.random.Generator, target: Target) -> str:
    """Scale one contour (or all of one ROI) by 1e6, or move it to 1e308 / -9.9e15."""
    ds = _read(target.rtstruct)
    found = _items(ds, "ROIContourSequence.ContourSequence", rng)
    if found is None:
        return "RS.dcm: no contours"
    holder, _, where = found
    items = holder.get("ContourSequence") or []
    if not items:
        return "RS.dcm: no contours"
    index = int(rng.integers(len(items)))
    chosen = items if rng.random() < 0.3 else [items[index]]
    how = _pick(rng, ["scale 1e6", "scale 1e6", "shift -9.9e15", "set 1e308", "scale 1e-9"])
    for item in chosen:
        if "ContourData" not in item:
            continue
        points = np.array([float(v) for v in item.ContourData])
        if how == "scale 1e6":
            points = points * 1e6
        elif how == "scale 1e-9":
            points = points * 1e-9
        elif how == "shift -9.9e15":
            points = points - 9.9e15
        else:
            points = np.full_like(points, 1e308)
        item.ContourData = [f"{v:.10g}"[:16] for v in points]
    _save(ds, target.rtstruct)
    what = "every contour" if len(chosen) > 1 else f"contour {index}"
    return f"RS.dcm: {where}, {what}: {how}"


def mutate_other_patient(rng: np.random.Generator, target: Target) -> str:
    """Give one CT slice another PatientID (sometimes another series or geometry too)."""
    path = _pick(rng, target.ct_files)
    ds = _read(path)
    ds.PatientID = "SOMEONE-ELSE"
    extra = _pick(rng, ["", "", "series", "position", "frame"])
    if extra == "series":
        ds.SeriesInstanceUID = "1.2.3.4.5.6.7.8.9"
    elif extra == "position":
        position = [float(v) for v in ds.ImagePositionPatient]
        ds.ImagePositionPatient = [f"{v + 0.7:.4f}" for v in position]
    elif extra == "frame":
        ds.FrameOfReferenceUID = "1.2.3.4.5.6.7.8.10"
    _save(ds, path)
    return f"{_rel(path, target)}: PatientID = 'SOMEONE-ELSE'{' + ' + extra if extra else ''}"


def mutate_slices(rng: np.random.Generator, target: Target) -> str:
    """Remove a CT slice, duplicate one, or add a non-DICOM or empty file to the series."""
    files = target.ct_files
    how = _pick(rng, ["remove", "duplicate", "junk", "empty"])
    path = _pick(rng, files)
    if how == "remove" and len(files) > 1:
        path.unlink()
    elif how == "duplicate":
        shutil.copyfile(path, path.with_name("copy_" + path.name))
    elif how == "junk":
        path.with_name("notes.dcm").write_bytes(b"not DICOM at all\n" * 10)
    else:
        path.with_name("empty.dcm").write_bytes(b"")
    return f"ct: {how} {path.name}"


def mutate_roi_reference(rng: np.random.Generator, target: Target) -> str:
    """Point an ROIContour at ROI 9999, or drop every contour of one ROI."""
    ds = _read(target.rtstruct)
    found = _items(ds, "ROIContourSequence.ReferencedROINumber", rng)
    if found is None:
        return "RS.dcm: no ROIContourSequence"
    holder, _, where = found
    if rng.random() < 0.5:
        holder.ReferencedROINumber = 9999
        what = "9999"
    else:
        holder.ContourSequence = []
        what = "empty ContourSequence"
    _save(ds, target.rtstruct)
    return f"RS.dcm: {where} -> {what}"


def damage_masks(rng: np.random.Generator, folder: Path) -> str:
    """Damage a folder of masks written by ``rtmask convert`` (for ``to-rtstruct``)."""
    files = sorted(p for p in folder.rglob("*") if p.is_file())
    if not files:
        return "no mask files"
    path = _pick(rng, files)
    data = path.read_bytes()
    how = _pick(rng, ["truncate", "flip", "delete", "junk", "empty"])
    if how == "truncate" and data:
        cut = int(rng.integers(0, len(data)))
        path.write_bytes(data[:cut])
        how = f"truncated to {cut} of {len(data)} bytes"
    elif how == "flip" and data:
        changed = bytearray(data)
        offsets = sorted(int(o) for o in rng.integers(0, len(data), size=int(rng.integers(1, 9))))
        for offset in offsets:
            changed[offset] ^= int(rng.integers(1, 256))
        path.write_bytes(bytes(changed))
        how = f"bytes flipped at {offsets}"
    elif how == "delete":
        path.unlink()
        how = "deleted"
    else:
        path.write_bytes(b"" if how == "empty" else b"junk\n" * 7)
    return f"{path.relative_to(folder)}: {how}"


MUTATIONS: dict[str, Callable[[np.random.Generator, Target], str]] = {
    "truncate": mutate_truncate,
    "flip_bytes": mutate_flip_bytes,
    "delete_element": mutate_delete_element,
    "absurd_value": mutate_absurd_value,
    "hostile_name": mutate_hostile_name,
    "duplicate_roi_number": mutate_duplicate_roi_number,
    "scale_contour": mutate_scale_contour,
    "other_patient": mutate_other_patient,
    "slices": mutate_slices,
    "roi_reference": mutate_roi_reference,
}
#: How often each mutation is drawn (the structured ones find more than random bytes).
WEIGHTS = {
    "truncate": 1.0,
    "flip_bytes": 1.0,
    "delete_element": 2.0,
    "absurd_value": 3.0,
    "hostile_name": 1.0,
    "duplicate_roi_number": 1.0,
    "scale_contour": 1.5,
    "other_patient": 0.7,
    "slices": 0.7,
    "roi_reference": 0.7,
}


def _rel(path: Path, target: Target) -> str:
    return str(path.relative_to(target.folder))
