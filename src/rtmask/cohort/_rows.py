"""Rows of the index tables from discovery's results, and the per-file header cache.

Pure Python (no DuckDB): each function turns discovery objects into ``dict`` rows keyed by
the column names of :mod:`rtmask.cohort._schema`. The cache stores each file's header
result as JSON (never pickle: an index file may come from elsewhere) so an unchanged file
is not read again.
"""

from __future__ import annotations

import datetime as dt
import json
import warnings
from collections.abc import Sequence
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np

from rtmask._errors import RtmaskError
from rtmask._rawdicom import read_raw
from rtmask.discovery import ImageHeader, ImageSeries, RTObject, SeriesLink, SkippedFile

__all__ = [
    "Row",
    "decode_result",
    "encode_result",
    "file_row",
    "orientation_label",
    "parse_date",
    "relative",
    "roi_rows",
    "rt_object_row",
    "segment_rows",
    "series_row",
    "volumes_by_number",
]

Row = dict[str, Any]
Result = ImageHeader | RTObject | SkippedFile

#: SkippedFile kinds that mean the file could not be read (the rest were read, not used).
UNREADABLE_KINDS = frozenset({"unreadable", "truncated"})


def relative(path: Path, root: Path) -> str:
    """``path`` relative to ``root`` with ``/`` separators (the index's path form)."""
    try:
        return PurePosixPath(*path.relative_to(root).parts).as_posix()
    except ValueError:
        return path.as_posix()


def scanned_relative(path: Path, root: Path) -> str:
    """``path`` under ``root`` as the scan reached it (through a folder link too), / separated.

    The path as found first, then both resolved (a link's target outside ``root``); the
    path itself when neither lies under ``root``.
    """
    for inner, outer in ((path, root), (path.resolve(), root.resolve())):
        try:
            return inner.relative_to(outer).as_posix()
        except ValueError:
            continue
    return path.as_posix()


# ------------------------------------------------------------------------ header cache
def _jsonable(value: object) -> object:
    if isinstance(value, Path):
        return value.as_posix()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, tuple):
        return [_jsonable(v) for v in value]
    return value


def encode_result(result: Result, root: Path) -> tuple[str, str]:
    """``(kind, payload)``: the result's type name and its fields as JSON (paths relative)."""
    fields = {name: getattr(result, name) for name in result.__dataclass_fields__}
    fields["path"] = relative(result.path, root)
    kind = type(result).__name__
    return kind, json.dumps({k: _jsonable(v) for k, v in fields.items()})


def decode_result(kind: str, payload: str, root: Path) -> Result:
    """The result :func:`encode_result` stored, with its path under ``root`` again."""
    fields = json.loads(payload)
    fields["path"] = root / fields["path"]
    if kind == "ImageHeader":
        for name in ("position_mm", "orientation", "pixel_spacing_mm"):
            fields[name] = tuple(fields[name])
        return ImageHeader(**fields)
    if kind == "RTObject":
        return RTObject(**fields)
    return SkippedFile(**fields)


# ------------------------------------------------------------------------------- rows
def parse_date(text: str | None) -> dt.date | None:
    """A DICOM DA value (``YYYYMMDD``) as a date, or None when absent or invalid."""
    if not text:
        return None
    try:
        return dt.datetime.strptime(text.strip()[:8], "%Y%m%d").date()
    except ValueError:
        return None


def file_row(rel_path: str, size: int | None, mtime_ns: int | None, result: Result | None) -> Row:
    """The ``files`` row of one file (``result`` None for a folder problem given later)."""
    mtime = (
        None
        if mtime_ns is None
        else dt.datetime.fromtimestamp(mtime_ns / 1e9, tz=dt.timezone.utc).replace(tzinfo=None)
    )
    row: Row = {
        "path": rel_path,
        "size": size,
        "mtime": mtime,
        "mtime_ns": mtime_ns,
        "SOPClassUID": None,
        "SOPInstanceUID": None,
        "SeriesInstanceUID": None,
        "Modality": None,
        "status": "ok",
        "reason": None,
        "skip_kind": None,
    }
    if isinstance(result, (ImageHeader, RTObject)):
        row.update(
            SOPClassUID=result.sop_class_uid,
            SOPInstanceUID=result.sop_instance_uid,
            SeriesInstanceUID=result.series_instance_uid,
            Modality=result.modality,
        )
    elif isinstance(result, SkippedFile):
        mark_skipped(row, result)
    return row


def mark_skipped(row: Row, skipped: SkippedFile) -> None:
    """Set a ``files`` row's status, reason and kind from a :class:`SkippedFile`."""
    row["status"] = "unreadable" if skipped.kind in UNREADABLE_KINDS else "skipped"
    row["reason"] = skipped.reason
    row["skip_kind"] = skipped.kind


def orientation_label(series: ImageSeries) -> str:
    """``axial``, ``sagittal``, ``coronal`` or ``oblique``, then the patient position."""
    normal = np.abs(series.grid.normal)
    axis = int(np.argmax(normal))
    plane = ("sagittal", "coronal", "axial")[axis] if normal[axis] >= 0.99 else "oblique"
    return f"{plane} {series.patient_position}" if series.patient_position else plane


def series_row(series: ImageSeries, instances: int, root: Path) -> Row:
    """The ``series`` row of one stacked image series."""
    grid = series.grid
    slice_spacing, row_spacing, column_spacing = (float(v) for v in grid.spacing_mm)
    return {
        "PatientID": series.patient_id,
        "StudyInstanceUID": series.study_instance_uid,
        "StudyDate": parse_date(series.study_date),
        "StudyDescription": series.study_description,
        "SeriesInstanceUID": series.series_instance_uid,
        "SeriesNumber": series.series_number,
        "Modality": series.modality,
        "SeriesDescription": series.description,
        "FrameOfReferenceUID": series.frame_of_reference_uid,
        "PatientPosition": series.patient_position,
        "instances": instances,
        "Rows": grid.shape[1],
        "Columns": grid.shape[2],
        "slices": grid.shape[0],
        "row_spacing_mm": row_spacing,
        "column_spacing_mm": column_spacing,
        "slice_spacing_mm": slice_spacing,
        "orientation": orientation_label(series),
        "uniform_spacing": bool(grid.is_uniform),
        "folder": relative(series.folder, root),
        "warnings": list(series.warnings),
    }


def rt_object_row(
    rt_object: RTObject, link: SeriesLink, duplicate_of: str | None, root: Path
) -> Row:
    """The ``rt_objects`` row of one RTSTRUCT, RTDOSE, RTPLAN or SEG."""
    return {
        "path": relative(rt_object.path, root),
        "Modality": rt_object.modality,
        "SOPClassUID": rt_object.sop_class_uid,
        "SOPInstanceUID": rt_object.sop_instance_uid,
        "SeriesInstanceUID": rt_object.series_instance_uid,
        "StudyInstanceUID": rt_object.study_instance_uid,
        "PatientID": rt_object.patient_id,
        "FrameOfReferenceUID": rt_object.frame_of_reference_uid,
        "label": rt_object.label,
        "referenced_series": list(rt_object.referenced_series_uids),
        "referenced_rt_objects": list(rt_object.referenced_rt_uids),
        "image_series": link.series.series_instance_uid if link.series is not None else None,
        "link": link.method,
        "link_message": link.message,
        "duplicate_of": duplicate_of,
        "roi_map_conflict": None,
    }


def roi_rows(rt_object: RTObject, root: Path) -> list[Row]:
    """One ``rois`` row per ROI of a structure set, from its headers (no contour decoding).

    Raises
    ------
    DicomReadError
        The file cannot be read again (changed or damaged since it was classified).
    """
    dataset = read_raw(rt_object.path, stop_before_pixels=True)
    observations = {
        item.integer("ReferencedROINumber"): item.text("RTROIInterpretedType")
        for item in dataset.sequence("RTROIObservationsSequence")
    }
    contours: dict[int | None, tuple[list[int] | None, int, list[str]]] = {}
    for item in dataset.sequence("ROIContourSequence"):
        try:
            values = item.numbers("ROIDisplayColor")
        except ValueError:
            values = np.empty(0)
        sequence = item.sequence("ContourSequence")
        types = sorted({t for c in sequence if (t := c.text("ContourGeometricType"))})
        rgb = [int(v) for v in values] if values.size == 3 else None
        contours[item.integer("ReferencedROINumber")] = (rgb, len(sequence), types)
    rows = []
    for item in dataset.sequence("StructureSetROISequence"):
        number = item.integer("ROINumber")
        rgb, n_contours, types = contours.get(number, (None, 0, []))
        rows.append(
            {
                "path": relative(rt_object.path, root),
                "PatientID": rt_object.patient_id,
                "StudyInstanceUID": rt_object.study_instance_uid,
                "SeriesInstanceUID": rt_object.series_instance_uid,
                "SOPInstanceUID": rt_object.sop_instance_uid,
                "StructureSetLabel": rt_object.label,
                "ROINumber": number,
                "ROIName": item.text("ROIName"),
                "canonical": None,
                "RTROIInterpretedType": observations.get(number),
                "ROIDisplayColor": rgb,
                "contours": n_contours,
                "geometric_types": types,
                "ReferencedFrameOfReferenceUID": item.text("ReferencedFrameOfReferenceUID"),
                "volume_cm3": None,
                "volume_error": None,
                "Modality": "RTSTRUCT",
            }
        )
    return rows


#: ``rois.volume_error`` of a SEG segment after ``--volumes``: the index reads headers only.
SEG_VOLUME_ERROR = "SEG segment: its volume needs the pixel data, which the index does not read"


def segment_rows(rt_object: RTObject, root: Path, volumes: bool = False) -> list[Row]:
    """One ``rois`` row per segment of a SEG, from its headers (the pixel data is not read).

    ``ROINumber`` is the SegmentNumber, ``ROIName`` the SegmentLabel, ``RTROIInterpretedType``
    the type its category and property type codes stand for (NULL when none), ``contours``
    NULL, ``Modality`` ``SEG``. With ``volumes``, ``volume_error`` says why there is none.

    Raises
    ------
    DicomReadError
        The file cannot be read again (changed or damaged since it was classified).
    InvalidInputError
        The file is not a SEG, or describes no segment.
    """
    from rtmask.masks import read_seg_info  # noqa: PLC0415 - pydicom headers, only for SEGs

    info = read_seg_info(rt_object.path)
    return [
        {
            "path": relative(rt_object.path, root),
            "PatientID": rt_object.patient_id,
            "StudyInstanceUID": rt_object.study_instance_uid,
            "SeriesInstanceUID": rt_object.series_instance_uid,
            "SOPInstanceUID": rt_object.sop_instance_uid,
            "StructureSetLabel": rt_object.label,
            "ROINumber": segment.number,
            "ROIName": segment.label,
            "canonical": None,
            "RTROIInterpretedType": segment.interpreted_type,
            "ROIDisplayColor": list(segment.color) if segment.color is not None else None,
            "contours": None,
            "geometric_types": [],
            "ReferencedFrameOfReferenceUID": info.frame_of_reference_uid,
            "volume_cm3": None,
            "volume_error": SEG_VOLUME_ERROR if volumes else None,
            "Modality": "SEG",
        }
        for segment in info.segments
    ]


def volumes_by_number(path: Path) -> tuple[dict[int, tuple[float | None, str | None]], str | None]:
    """Contour volume (cm3) or the reason there is none, per ROI number of a structure set.

    Returns the per-ROI results and, when the file cannot be read at all, that reason.
    Never raises for a bad file or ROI: the index records what failed.
    """
    # The reader and the volume engine are imported only when --volumes asks for them.
    from rtmask.dvh import contour_volume  # noqa: PLC0415
    from rtmask.rtstruct import read_rtstruct  # noqa: PLC0415

    results: dict[int, tuple[float | None, str | None]] = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the defects are stated per ROI below
        try:
            structure_set = read_rtstruct(path, on_invalid="ignore")
        except (RtmaskError, OSError, ValueError) as error:
            return results, f"structure set cannot be read: {error}"
        for roi in structure_set.rois:
            if not roi.contours:
                results[roi.number] = (None, "no contours")
                continue
            try:
                volume = contour_volume(roi)
            except (RtmaskError, ValueError) as error:
                results[roi.number] = (None, str(error))
            else:
                results[roi.number] = (float(volume.volume_cm3), None)
    return results, None


def duplicates(rt_objects: Sequence[RTObject], root: Path) -> dict[int, str]:
    """``id(object) -> path`` of the first file (in path order) sharing its SOPInstanceUID."""
    first: dict[str, RTObject] = {}
    found: dict[int, str] = {}
    for rt_object in sorted(rt_objects, key=lambda o: o.path):
        uid = rt_object.sop_instance_uid
        if uid is None:
            continue
        if uid in first:
            found[id(rt_object)] = relative(first[uid].path, root)
        else:
            first[uid] = rt_object
    return found
