"""Image series from headers: one ImageHeader per file, grouped into ImageSeries with a grid.

A series is every single-frame image sharing a SeriesInstanceUID. When a series mixes
geometries (orientation, rows x columns or pixel spacing differ, e.g. a scout stored with
the axial slices), the largest group of images sharing one geometry is kept as the series
and the others are reported as skipped. Slices are ordered along the plane normal, never
by file name or InstanceNumber.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from rtmask._errors import GeometryError
from rtmask._limits import MAX_EXTENT_MM, coordinate_problem
from rtmask._rawdicom import RawDataset
from rtmask.geometry import ImageGrid, slice_order

__all__ = [
    "SKIP_KINDS",
    "ImageHeader",
    "ImageSeries",
    "SkippedFile",
    "assemble_series",
    "image_header",
]

#: Every value of :attr:`SkippedFile.kind`, with what it means.
SKIP_KINDS = {
    "not_dicom": "not a DICOM file",
    "unreadable": "DICOM file that cannot be read (damaged or truncated)",
    "truncated": "DICOM file shorter than its pixel data (truncated)",
    "dicomdir": "DICOMDIR index",
    "unsupported": "DICOM object rtmask does not use",
    "multiframe": "multi-frame image (not supported yet)",
    "no_geometry": "image without patient geometry",
    "duplicate": "duplicate of another file",
    "mixed_geometry": "image whose geometry differs from the rest of its series",
    "other_patient": "image of another patient whose UIDs or plane also disagree with its series",
    "bad_geometry": "image of a series whose slices do not form a volume",
    "symlink_loop": "symbolic link to a folder that holds it (a loop), not followed",
}

_GEOMETRY_KEYWORDS = (
    "ImagePositionPatient",
    "ImageOrientationPatient",
    "PixelSpacing",
    "Rows",
    "Columns",
)


@dataclass(frozen=True, slots=True, kw_only=True)
class SkippedFile:
    """A file the scan did not use, and why.

    Parameters
    ----------
    path
        The file.
    reason
        One line saying why (without the file name).
    kind
        Category of the reason, one of :data:`SKIP_KINDS` (for summaries).
    """

    path: Path
    reason: str
    kind: str = "unreadable"


def _missing(dataset: RawDataset, keyword: str) -> bool:
    """True when a numeric element is absent or empty (a value that is not a number is there)."""
    try:
        return dataset.numbers(keyword).size == 0
    except ValueError:
        return False


def _floats(dataset: RawDataset, keyword: str, count: int) -> tuple[float, ...] | None:
    """``count`` finite numbers, or None."""
    try:
        values = dataset.numbers(keyword)
    except ValueError:
        return None
    if values.size != count or not np.all(np.isfinite(values)):
        return None
    return tuple(float(v) for v in values)


@dataclass(frozen=True, slots=True, kw_only=True)
class ImageHeader:
    """What discovery needs from one single-frame image file (positions in LPS mm)."""

    path: Path
    sop_instance_uid: str
    series_instance_uid: str
    study_instance_uid: str | None
    patient_id: str | None
    patient_name: str | None
    modality: str
    description: str | None
    frame_of_reference_uid: str | None
    position_mm: tuple[float, ...]
    orientation: tuple[float, ...]
    pixel_spacing_mm: tuple[float, ...]
    rows: int
    columns: int
    patient_position: str | None
    series_number: int | None
    study_date: str | None
    study_description: str | None
    sop_class_uid: str | None = None

    @property
    def geometry_key(self) -> tuple[object, ...]:
        """Orientation (1e-4), rows, columns and pixel spacing (1e-4 mm): equal within a volume."""
        return (
            tuple(round(v, 4) + 0.0 for v in self.orientation),
            self.rows,
            self.columns,
            tuple(round(v, 4) for v in self.pixel_spacing_mm),
        )


def _absurd_geometry(
    position: tuple[float, ...], spacing: tuple[float, ...], rows: int, columns: int
) -> str | None:
    """Why finite geometry values cannot be an image of a patient, or None."""
    problem = coordinate_problem(position, "ImagePositionPatient")
    if problem is not None:
        return problem
    if min(spacing) <= 0:
        return f"PixelSpacing {list(spacing)} is not positive"
    extent = max(spacing[0] * (rows - 1), spacing[1] * (columns - 1))
    if extent > MAX_EXTENT_MM:
        return (
            f"PixelSpacing {list(spacing)} mm with {rows} Rows x {columns} Columns makes the "
            f"image {extent / 1000:.3g} m wide, beyond the {MAX_EXTENT_MM / 1000:g} m any "
            "image of a patient stays within"
        )
    return None


def image_header(dataset: RawDataset, path: Path) -> ImageHeader | SkippedFile:
    """Read an image's identity and geometry, or say why it cannot be part of a volume."""
    missing = [k for k in _GEOMETRY_KEYWORDS if _missing(dataset, k)]
    modality = dataset.text("Modality") or "OT"
    if missing:
        return SkippedFile(
            path=path,
            kind="no_geometry",
            reason=f"{modality} object without patient geometry (no {', '.join(missing)}); "
            "only images with position and orientation can form a volume",
        )
    position = _floats(dataset, "ImagePositionPatient", 3)
    orientation = _floats(dataset, "ImageOrientationPatient", 6)
    spacing = _floats(dataset, "PixelSpacing", 2)
    rows, columns = dataset.integer("Rows"), dataset.integer("Columns")
    if position is None or orientation is None or spacing is None or not rows or not columns:
        return SkippedFile(
            path=path,
            kind="no_geometry",
            reason="invalid ImagePositionPatient, ImageOrientationPatient, PixelSpacing, Rows "
            "or Columns (not the expected number of finite values)",
        )
    absurd = _absurd_geometry(position, spacing, rows, columns)
    if absurd is not None:
        return SkippedFile(path=path, kind="unreadable", reason=f"{absurd}; not used")
    sop_uid = dataset.text("SOPInstanceUID")
    series_uid = dataset.text("SeriesInstanceUID")
    if sop_uid is None or series_uid is None:
        return SkippedFile(
            path=path,
            kind="no_geometry",
            reason="image without SOPInstanceUID or SeriesInstanceUID; cannot be grouped",
        )
    return ImageHeader(
        path=path,
        sop_instance_uid=sop_uid,
        series_instance_uid=series_uid,
        study_instance_uid=dataset.text("StudyInstanceUID"),
        patient_id=dataset.text("PatientID"),
        patient_name=dataset.text("PatientName"),
        modality=modality,
        description=dataset.text("SeriesDescription"),
        frame_of_reference_uid=dataset.text("FrameOfReferenceUID"),
        position_mm=position,
        orientation=orientation,
        pixel_spacing_mm=spacing,
        rows=rows,
        columns=columns,
        patient_position=dataset.text("PatientPosition"),
        series_number=dataset.integer("SeriesNumber"),
        study_date=dataset.text("StudyDate"),
        study_description=dataset.text("StudyDescription"),
        sop_class_uid=dataset.text("SOPClassUID"),
    )


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class ImageSeries:
    """An image series found on disk: identity, files in slice order and its grid.

    Parameters
    ----------
    series_instance_uid, study_instance_uid
        Identity of the series and its study.
    patient_id, patient_name
        Patient identity as written in the first image.
    modality
        Modality of the images (``CT``, ``MR``, ``PT``, ...).
    description
        SeriesDescription.
    frame_of_reference_uid
        FrameOfReferenceUID of the images.
    files
        The image files, sorted along the plane normal (slice 0 first).
    sop_instance_uids
        SOPInstanceUID of each file, same order.
    grid
        The geometry of the stacked slices.
    warnings
        Irregularities, one sentence each (non-uniform spacing, missing slices, ...).
    patient_position
        PatientPosition (``HFS``, ``FFP``, ...), when given.
    series_number
        SeriesNumber, when given.
    study_date, study_description
        StudyDate (``YYYYMMDD``) and StudyDescription, when given.
    """

    series_instance_uid: str
    study_instance_uid: str | None
    patient_id: str | None
    patient_name: str | None
    modality: str
    description: str | None
    frame_of_reference_uid: str | None
    files: tuple[Path, ...]
    sop_instance_uids: tuple[str, ...]
    grid: ImageGrid
    warnings: tuple[str, ...] = ()
    patient_position: str | None = None
    series_number: int | None = None
    study_date: str | None = None
    study_description: str | None = None

    def __post_init__(self) -> None:
        for name in ("files", "sop_instance_uids", "warnings"):
            object.__setattr__(self, name, tuple(getattr(self, name)))
        if len(self.files) != len(self.sop_instance_uids) or len(self.files) != self.grid.shape[0]:
            raise GeometryError(
                f"series {self.series_instance_uid}: {len(self.files)} files, "
                f"{len(self.sop_instance_uids)} UIDs and {self.grid.shape[0]} slices differ"
            )

    @property
    def n_slices(self) -> int:
        """Number of slices (files)."""
        return len(self.files)

    @property
    def folder(self) -> Path:
        """The deepest folder holding every file of the series."""
        return Path(os.path.commonpath([str(path.parent) for path in self.files]))

    def __repr__(self) -> str:
        return (
            f"ImageSeries({self.modality}, {self.series_instance_uid}, slices={self.n_slices}, "
            f"grid={self.grid!r})"
        )


def _geometry_label(header: ImageHeader) -> str:
    spacing = " x ".join(f"{v:.4g}" for v in header.pixel_spacing_mm)
    orientation = ", ".join(f"{v:.3g}" for v in header.orientation)
    return f"{header.rows}x{header.columns}, {spacing} mm, orientation [{orientation}]"


def _build(headers: Sequence[ImageHeader]) -> ImageSeries:
    """Stack the images of one geometry group; raises GeometryError if they do not stack."""
    first = headers[0]
    positions = np.array([h.position_mm for h in headers], dtype=np.float64)
    order = slice_order(positions, first.orientation)
    ordered = [headers[int(i)] for i in order]
    frames = [h.frame_of_reference_uid for h in ordered if h.frame_of_reference_uid]
    frame_uid = max(set(frames), key=frames.count) if frames else None
    grid = ImageGrid.from_slices(
        positions_mm=positions,
        orientation=first.orientation,
        pixel_spacing_mm=first.pixel_spacing_mm,
        rows=first.rows,
        columns=first.columns,
        frame_of_reference_uid=frame_uid,
    )
    warnings = list(grid.irregularities())
    if len(set(frames)) > 1:
        warnings.append(
            f"images name {len(set(frames))} different frames of reference; using {frame_uid}"
        )
    if len(frames) < len(ordered):
        warnings.append(f"{len(ordered) - len(frames)} image(s) have no FrameOfReferenceUID")
    return ImageSeries(
        series_instance_uid=first.series_instance_uid,
        study_instance_uid=first.study_instance_uid,
        patient_id=first.patient_id,
        patient_name=first.patient_name,
        modality=first.modality,
        description=first.description,
        frame_of_reference_uid=frame_uid,
        files=tuple(h.path for h in ordered),
        sop_instance_uids=tuple(h.sop_instance_uid for h in ordered),
        grid=grid,
        warnings=tuple(warnings),
        patient_position=first.patient_position,
        series_number=first.series_number,
        study_date=first.study_date,
        study_description=first.study_description,
    )


def _majority_patient(headers: Sequence[ImageHeader]) -> str | None:
    """The PatientID most images of a series name (None when none names one)."""
    counts = Counter(h.patient_id for h in headers if h.patient_id)
    return counts.most_common(1)[0][0] if counts else None


def _other_patient_note(header: ImageHeader, patient: str | None) -> str:
    """`` It is also of another patient ...`` when ``header`` names another PatientID."""
    if patient is None or not header.patient_id or header.patient_id == patient:
        return ""
    return f"; it is also of another patient (PatientID {header.patient_id!r}, not {patient!r})"


def _other_patients(
    main: list[ImageHeader], patient: str | None, uid: str
) -> tuple[list[ImageHeader], list[SkippedFile], list[str]]:
    """Split out images of a patient other than the series' own.

    An image naming another PatientID is left out of the volume when its study or frame
    of reference also differs from the series' (or it lies on the plane of one of the
    series' own images): it was most likely filed in the wrong series. Otherwise it is
    kept, with a warning naming the file, since nothing but the ID says it does not
    belong. Returns the images kept, those left out and the warnings.
    """
    if patient is None:
        return main, [], []
    own = [h for h in main if not h.patient_id or h.patient_id == patient]
    others = [h for h in main if h.patient_id and h.patient_id != patient]
    if not others:
        return main, [], []
    studies = Counter(h.study_instance_uid for h in own)
    frames = Counter(h.frame_of_reference_uid for h in own)
    study = studies.most_common(1)[0][0] if studies else None
    frame = frames.most_common(1)[0][0] if frames else None
    normal = np.cross(main[0].orientation[:3], main[0].orientation[3:])
    planes = np.array([np.dot(h.position_mm, normal) for h in own])
    kept, left_out, notes = list(own), [], []
    for header in others:
        differs = [
            name
            for name, theirs, ours in (
                ("StudyInstanceUID", header.study_instance_uid, study),
                ("FrameOfReferenceUID", header.frame_of_reference_uid, frame),
            )
            if theirs != ours
        ]
        if planes.size and np.abs(planes - np.dot(header.position_mm, normal)).min() < 1e-3:
            differs.append("slice plane (another image lies on it)")
        what = (
            f"{header.modality} image of another patient (PatientID {header.patient_id!r}) "
            f"in series {uid}, whose other {len(own)} image(s) are of {patient!r}"
        )
        if differs:
            verb = "disagrees" if len(differs) == 1 else "disagree"
            reason = f"{what}; its {' and '.join(differs)} {verb} too; left out of the volume"
            left_out.append(SkippedFile(path=header.path, kind="other_patient", reason=reason))
            notes.append(f"{header.path}: {reason}")
        else:
            kept.append(header)
            notes.append(
                f"{header.path}: {what}; kept, as its geometry and UIDs match the series: "
                "check that it belongs to this patient"
            )
    return kept, left_out, notes


def assemble_series(
    headers: Sequence[ImageHeader],
) -> tuple[list[ImageSeries], list[SkippedFile]]:
    """Group image headers into series (one per SeriesInstanceUID).

    Files repeating a SOPInstanceUID are skipped as duplicates but one (the one in the
    folder holding most images of its series). In a series that mixes geometries, the
    largest geometry group is the series and the other images are skipped. A series whose
    slices do not stack (two images on one plane, gantry tilt with uneven spacing) is
    skipped as a whole, with the :class:`GeometryError` message as reason.

    Returns
    -------
    tuple
        The series (ordered by patient, study, series number and UID) and the skipped files.
    """
    skipped: list[SkippedFile] = []
    # Of several files with one SOPInstanceUID keep the one in the folder holding most
    # images of its series (then the first path), so a copy elsewhere does not split it.
    folder_counts = Counter((h.series_instance_uid, h.path.parent) for h in headers)
    copies: dict[str, list[ImageHeader]] = {}
    for header in sorted(headers, key=lambda h: h.path):
        copies.setdefault(header.sop_instance_uid, []).append(header)
    by_series: dict[str, list[ImageHeader]] = {}
    for uid, same in copies.items():
        kept = max(same, key=lambda h: folder_counts[h.series_instance_uid, h.path.parent])
        by_series.setdefault(kept.series_instance_uid, []).append(kept)
        skipped.extend(
            SkippedFile(
                path=header.path,
                kind="duplicate",
                reason=f"duplicate of {kept.path} (same SOPInstanceUID {uid})",
            )
            for header in same
            if header is not kept
        )

    series: list[ImageSeries] = []
    for uid, members in by_series.items():
        patient = _majority_patient(members)
        groups: dict[tuple[object, ...], list[ImageHeader]] = {}
        for header in members:
            groups.setdefault(header.geometry_key, []).append(header)
        ranked = sorted(groups.values(), key=len, reverse=True)
        main = ranked[0]
        for other in ranked[1:]:
            skipped.extend(
                SkippedFile(
                    path=header.path,
                    kind="mixed_geometry",
                    reason=f"{header.modality} image of series {uid} with a different geometry "
                    f"({_geometry_label(header)}) than its other {len(main)} image(s) "
                    f"({_geometry_label(main[0])}), e.g. a localizer; not part of the volume"
                    + _other_patient_note(header, patient),
                )
                for header in other
            )
        main, foreign, notes = _other_patients(main, patient, uid)
        skipped.extend(foreign)
        try:
            built = _build(main)
            series.append(replace(built, warnings=(*notes, *built.warnings)))
        except GeometryError as error:
            skipped.extend(
                SkippedFile(
                    path=header.path,
                    kind="bad_geometry",
                    reason=f"series {uid} ({len(main)} images) cannot be stacked into a "
                    f"volume: {error}",
                )
                for header in main
            )
    series.sort(
        key=lambda s: (
            s.patient_id or "",
            s.study_instance_uid or "",
            s.series_number or 0,
            s.series_instance_uid,
        )
    )
    return series, skipped
