"""A case's three thumbnails (axial, coronal, sagittal through the ROIs' centre).

Every NIfTI file is turned to the closest RAS+ axis order (nibabel's
``as_closest_canonical``) and each plane is shown as radiologists look at it: axial and
coronal with the patient's right on the picture's left, anterior up (axial) and superior
up (coronal, sagittal), sagittal with anterior on the left. An oblique grid is shown in
its own planes, named after the closest patient axes.

Masks are kept only as their bounding box (a few MB for a whole cohort's largest organs),
and the centre is the centre of mass of all ROI voxels together.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import nibabel as nib
import numpy as np
from numpy.typing import NDArray

from rtmask._errors import RtmaskError
from rtmask.masks._loaders import load_nifti
from rtmask.report._png import Plane, render_plane, window_for
from rtmask.report._read import ReportCase, RoiEntry

__all__ = ["CaseViews", "case_views"]

#: LPS (rtmask's patient coordinates) <-> RAS (NIfTI's): negate x and y.
_LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])
#: The planes, each as the RAS+ axis it is perpendicular to.
PLANES = (("axial", 2), ("coronal", 1), ("sagittal", 0))


@dataclass(frozen=True, slots=True, kw_only=True)
class CaseViews:
    """The pictures of one case and its ROI rows (data-set labels measured on the way).

    ``pictures`` holds ``(plane name, PNG bytes)`` pairs; ``notes`` says what could not be
    drawn and why.
    """

    pictures: tuple[tuple[str, bytes], ...]
    rois: tuple[RoiEntry, ...]
    notes: tuple[str, ...]


@dataclass(frozen=True, slots=True, eq=False)
class _Crop:
    """A mask as its bounding box: ``start`` (3 ints) and the boolean box."""

    start: tuple[int, int, int]
    box: NDArray[np.bool_]

    def plane(self, axis: int, index: int, shape: tuple[int, ...]) -> NDArray[np.bool_]:
        """The full-size ``(shape without axis)`` slice through ``index`` along ``axis``."""
        full = np.zeros(tuple(n for a, n in enumerate(shape) if a != axis), dtype=bool)
        local = index - self.start[axis]
        if not 0 <= local < self.box.shape[axis]:
            return full
        part = np.take(self.box, local, axis=axis)
        offsets = [s for a, s in enumerate(self.start) if a != axis]
        full[offsets[0] : offsets[0] + part.shape[0], offsets[1] : offsets[1] + part.shape[1]] = (
            part
        )
        return full


def _canonical(path: Path) -> tuple[NDArray[np.generic], NDArray[np.float64], tuple[float, ...]]:
    """The volume in RAS+ axis order (a view), its RAS affine and its voxel size in mm.

    Read with rtmask's own NIfTI loader (one zlib call; the zero runs of rtmask's masks
    skipped), then turned with nibabel's orientation helpers.
    """
    loaded = load_nifti(path)
    affine = _LPS_TO_RAS @ loaded.geometry.affine_lps
    orientation = nib.orientations.io_orientation(affine)  # type: ignore[no-untyped-call]
    data = nib.orientations.apply_orientation(  # type: ignore[no-untyped-call]
        loaded.layers[0], orientation
    )
    turn = nib.orientations.inv_ornt_aff(  # type: ignore[no-untyped-call]
        orientation, loaded.layers[0].shape
    )
    affine = affine @ turn
    zooms = tuple(float(z) for z in np.sqrt((affine[:3, :3] ** 2).sum(axis=0)))
    return data, affine, zooms


def _crop(mask: NDArray[np.bool_]) -> tuple[_Crop, NDArray[np.float64]] | None:
    """The bounding-box crop and the sums of voxel indices along each axis (None: empty).

    One pass over the whole volume (the slices that hold the mask), the rest on the crop.
    """
    planes = np.flatnonzero(mask.any(axis=(0, 1)))
    if planes.size == 0:
        return None
    part = mask[:, :, planes[0] : planes[-1] + 1]
    rows = np.flatnonzero(part.any(axis=(0, 2)))
    columns = np.flatnonzero(part.any(axis=(1, 2)))
    start = (int(columns[0]), int(rows[0]), int(planes[0]))
    box = part[columns[0] : columns[-1] + 1, rows[0] : rows[-1] + 1].copy()
    weights = np.array(
        [
            (
                (np.arange(box.shape[a]) + start[a])
                * box.sum(axis=tuple(b for b in range(3) if b != a))
            ).sum()
            for a in range(3)
        ],
        dtype=np.float64,
    )
    return _Crop(start, box), weights


@dataclass(slots=True)
class _Masks:
    """The crops read so far, on one reference grid."""

    shape: tuple[int, ...] | None = None
    affine: NDArray[np.float64] | None = None
    zooms: tuple[float, ...] = ()
    crops: list[tuple[_Crop, tuple[int, int, int]]] = dataclasses.field(default_factory=list)
    weights: NDArray[np.float64] = dataclasses.field(default_factory=lambda: np.zeros(3))
    count: float = 0.0

    def fits(self, data: NDArray[np.generic], affine: NDArray[np.float64]) -> bool:
        if self.shape is None or self.affine is None:
            return True
        return data.shape == self.shape and bool(np.allclose(affine, self.affine, atol=1e-3))

    def add(
        self,
        mask: NDArray[np.bool_],
        affine: NDArray[np.float64],
        zooms: tuple[float, ...],
        color: tuple[int, int, int],
    ) -> int:
        """Keep ``mask``'s crop; returns its voxel count."""
        self.shape, self.affine, self.zooms = mask.shape, affine, zooms
        found = _crop(mask)
        if found is None:
            return 0
        crop, weights = found
        voxels = int(crop.box.sum())
        self.crops.append((crop, color))
        self.weights += weights
        self.count += voxels
        return voxels


def _label_rois(case: ReportCase, masks: _Masks, notes: list[str]) -> tuple[RoiEntry, ...]:
    """Data-set labels: read the label map once, measure and keep every label."""
    path = case.rois[0].mask
    assert path is not None
    data, affine, zooms = _canonical(path)
    voxel_cm3 = abs(float(np.linalg.det(affine[:3, :3]))) / 1000.0  # oblique grids too
    rois = []
    for roi in case.rois:
        voxels = masks.add(np.isin(data, roi.values), affine, zooms, roi.color)
        warnings = () if voxels else (f"no voxel of label {'/'.join(map(str, roi.values))}",)
        rois.append(
            dataclasses.replace(
                roi,
                status="present" if voxels else "absent",
                voxel_count=float(voxels),
                volume_cm3=voxels * voxel_cm3,
                warnings=warnings,
            )
        )
    if not masks.crops:
        notes.append(f"{path.name}: no labelled voxel")
    return tuple(rois)


def _mask_rois(case: ReportCase, masks: _Masks, notes: list[str]) -> None:
    """Cohort ROIs: read each binary mask file and keep its crop."""
    for roi in case.rois:
        if roi.mask is None:
            continue
        data, affine, zooms = _canonical(roi.mask)
        if not masks.fits(data, affine):
            notes.append(f"{roi.mask.name}: on another grid than the first mask; not drawn")
            continue
        masks.add(data != 0, affine, zooms, roi.color)


def _planes(case: ReportCase, masks: _Masks, notes: list[str]) -> list[tuple[str, Plane]]:
    image: NDArray[np.generic] | None = None
    if case.image is not None:
        data, affine, zooms = _canonical(case.image)
        if masks.shape is None:
            masks.shape, masks.affine, masks.zooms = data.shape, affine, zooms
        if masks.fits(data, affine):
            image = data
        else:
            notes.append(f"{case.image.name}: not on the masks' grid; masks drawn on black")
    if masks.shape is None:
        return []
    shape = masks.shape
    if masks.count:
        centre = [round(w / masks.count) for w in masks.weights]
    else:
        centre = [n // 2 for n in shape]
    planes = []
    for name, axis in PLANES:
        other = [a for a in range(3) if a != axis]
        cut = [slice(None)] * 3
        cut[axis] = slice(centre[axis], centre[axis] + 1)
        # (first other axis, second other axis) -> rows top-down, columns as shown.
        picture = None if image is None else np.asarray(image[tuple(cut)], dtype=np.float64)
        if picture is not None:
            picture = np.squeeze(picture, axis=axis).T[::-1, ::-1]
        rois = [c.plane(axis, centre[axis], shape).T[::-1, ::-1] for c, _ in masks.crops]
        planes.append(
            (
                f"{name} {centre[axis] + 1}/{shape[axis]}",
                Plane(
                    name=name,
                    shape=(shape[other[1]], shape[other[0]]),
                    image=picture,
                    masks=rois,
                    colors=[color for _, color in masks.crops],
                    spacing_mm=(masks.zooms[other[1]], masks.zooms[other[0]]),
                ),
            )
        )
    return planes


def case_views(case: ReportCase) -> CaseViews:
    """Draw one case: three thumbnails through the centre of its ROIs.

    A file that cannot be read becomes a note, never an exception: the report shows
    every case it can.
    """
    notes: list[str] = []
    masks = _Masks()
    rois: Sequence[RoiEntry] = case.rois
    try:
        if case.rois and case.rois[0].values:
            rois = _label_rois(case, masks, notes)
        else:
            _mask_rois(case, masks, notes)
        planes = _planes(case, masks, notes)
    except (RtmaskError, OSError, ValueError) as error:
        notes.append(f"not drawn: {error}")
        return CaseViews(pictures=(), rois=tuple(rois), notes=tuple(notes))
    if not planes:
        notes.append("no image or mask file to draw")
    is_ct = case.is_ct or any(p.image is not None and p.image.min() < -500 for _, p in planes)
    shown = [p.image for _, p in planes if p.image is not None]
    values = np.concatenate([s.ravel() for s in shown]) if shown else np.zeros(1)
    window = window_for(values, is_ct=is_ct)
    pictures = tuple((label, render_plane(plane, window)) for label, plane in planes)
    return CaseViews(pictures=pictures, rois=tuple(rois), notes=tuple(notes))
