"""The index's tables: every column with its DuckDB type and one line saying what it holds.

Column names are DICOM keywords where the column is a DICOM attribute (as in Imaging Data
Commons' ``idc-index`` tables, so the two can be joined), snake_case otherwise. The
README's schema section is checked against this module by the tests.
"""

from __future__ import annotations

__all__ = ["CACHE_TABLE", "INFO_TABLE", "SCHEMA_VERSION", "TABLES", "create_statements"]

#: Bumped whenever a table or the cached header format changes: an index of another
#: version is rebuilt from the files, never read with the wrong layout.
SCHEMA_VERSION = "3"

#: Internal tables: the per-file header cache that makes re-indexing incremental, and
#: key/value facts about the index (schema version, root folder).
CACHE_TABLE = "rtmask_file_cache"
INFO_TABLE = "rtmask_index_info"


def _columns(table: str) -> list[tuple[str, str, str]]:
    """``[(column, DuckDB type, description)]`` from lines ``column type description``."""
    rows = [line.split(maxsplit=2) for line in table.strip().splitlines()]
    return [(name, kind, description) for name, kind, description in rows]


#: One line a column: name, DuckDB type, description.
_FILES = """
path              VARCHAR   file (or folder) path relative to the indexed root, / separated
size              BIGINT    size in bytes (NULL for a folder problem)
mtime             TIMESTAMP last modification time (UTC)
mtime_ns          BIGINT    last modification time, ns since the epoch (what re-indexing compares)
SOPClassUID       VARCHAR   SOP Class UID
SOPInstanceUID    VARCHAR   SOP Instance UID
SeriesInstanceUID VARCHAR   Series Instance UID
Modality          VARCHAR   Modality (RTSTRUCT, RTDOSE, RTPLAN and SEG from the SOP class)
status            VARCHAR   ok, skipped (read but not used) or unreadable
reason            VARCHAR   why a file is skipped or unreadable (NULL when ok)
skip_kind         VARCHAR   category of the reason (not_dicom, duplicate, truncated, ...)
"""
_SERIES = """
PatientID           VARCHAR   Patient ID
StudyInstanceUID    VARCHAR   Study Instance UID
StudyDate           DATE      Study Date (NULL when absent or not a date)
StudyDescription    VARCHAR   Study Description
SeriesInstanceUID   VARCHAR   Series Instance UID
SeriesNumber        INTEGER   Series Number
Modality            VARCHAR   Modality of the images (CT, MR, PT, ...)
SeriesDescription   VARCHAR   Series Description
FrameOfReferenceUID VARCHAR   Frame of Reference UID of the stacked images
PatientPosition     VARCHAR   Patient Position (HFS, FFP, ...)
instances           INTEGER   image files of the series found (copies and localizers included)
Rows                INTEGER   Rows of each image
Columns             INTEGER   Columns of each image
slices              INTEGER   images stacked into the volume
row_spacing_mm      DOUBLE    distance between rows (PixelSpacing[0]), mm
column_spacing_mm   DOUBLE    distance between columns (PixelSpacing[1]), mm
slice_spacing_mm    DOUBLE    distance between slices (the mean when uneven), mm
orientation         VARCHAR   axial, sagittal, coronal or oblique, with the patient position
uniform_spacing     BOOLEAN   true when the slices are evenly spaced
folder              VARCHAR   deepest folder holding the series, relative to the root
warnings            VARCHAR[] irregularities (uneven spacing, missing slices, ...)
"""
_RT_OBJECTS = """
path VARCHAR file path relative to the root
Modality VARCHAR RTSTRUCT, RTDOSE, RTPLAN or SEG
SOPClassUID VARCHAR SOP Class UID
SOPInstanceUID VARCHAR SOP Instance UID
SeriesInstanceUID VARCHAR Series Instance UID of the object itself
StudyInstanceUID VARCHAR Study Instance UID
PatientID VARCHAR Patient ID
FrameOfReferenceUID VARCHAR Frame of Reference UID
label VARCHAR StructureSetLabel, RTPlanLabel, or a dose's summation type, type and units
referenced_series VARCHAR[] image SeriesInstanceUIDs the object references
referenced_rt_objects VARCHAR[] SOPInstanceUIDs of RT objects it references
image_series VARCHAR SeriesInstanceUID of the linked image series (NULL when none)
link VARCHAR how: series_uid, instance_uids, frame_of_reference, geometry or none
link_message VARCHAR the link in words, with what does not fit or why none
duplicate_of VARCHAR path of the first file with the same SOPInstanceUID, if any
roi_map_conflict VARCHAR why --roi-map gave none of its ROIs a canonical name (NULL when none)
"""
_ROIS = """
path                          VARCHAR   structure set (or SEG) file, relative to the root
PatientID                     VARCHAR   Patient ID
StudyInstanceUID              VARCHAR   Study Instance UID
SeriesInstanceUID             VARCHAR   Series Instance UID of the structure set
SOPInstanceUID                VARCHAR   SOP Instance UID of the structure set (or SEG)
StructureSetLabel             VARCHAR   Structure Set Label (a SEG's Content Label)
ROINumber                     INTEGER   ROI Number (a SEG's Segment Number)
ROIName                       VARCHAR   ROI Name as written (a SEG's Segment Label)
canonical                     VARCHAR   --roi-map canonical name (NULL: no map, no match, conflict)
RTROIInterpretedType          VARCHAR   RT ROI Interpreted Type (PTV, ORGAN, ...; SEG: by its codes)
ROIDisplayColor               INTEGER[] ROI Display Color, [r, g, b]
contours                      INTEGER   number of contours (NULL for a SEG segment)
geometric_types               VARCHAR[] distinct ContourGeometricType values
ReferencedFrameOfReferenceUID VARCHAR   frame of reference of the ROI
volume_cm3                    DOUBLE    contour volume in cm3 (with --volumes; half end caps)
volume_error                  VARCHAR   why volume_cm3 is NULL after --volumes
Modality                      VARCHAR   RTSTRUCT (a structure set ROI) or SEG (a segment)
"""

#: table -> [(column, DuckDB type, description)], in column order.
TABLES: dict[str, list[tuple[str, str, str]]] = {
    "files": _columns(_FILES),
    "series": _columns(_SERIES),
    "rt_objects": _columns(_RT_OBJECTS),
    "rois": _columns(_ROIS),
}


def create_statements() -> list[str]:
    """``CREATE TABLE`` statements for the public and internal tables."""
    statements = [
        f"CREATE TABLE {table} (" + ", ".join(f'"{name}" {kind}' for name, kind, _ in columns) + ")"
        for table, columns in TABLES.items()
    ]
    statements.append(
        f"CREATE TABLE {CACHE_TABLE} (path VARCHAR, size BIGINT, mtime_ns BIGINT, "
        "kind VARCHAR, payload VARCHAR)"
    )
    statements.append(f"CREATE TABLE {INFO_TABLE} (key VARCHAR, value VARCHAR)")
    return statements
