"""The layout of rtmask's ``.npz`` mask files: the keys the writer and the reader share.

A file holds ``roi/<name>`` arrays ``(slice, row, column)``, the ``(4, 4)`` affine and the
slice positions; written by :func:`rtmask.export.write_npz`, read by
:func:`rtmask.masks.read_masks`.
"""

from __future__ import annotations

__all__ = ["NPZ_AFFINE_KEY", "NPZ_ROI_PREFIX", "NPZ_SLICE_POSITIONS_KEY"]

#: Key of the ``(4, 4)`` affine in ``.npz`` files: ``(slice, row, column, 1)`` -> LPS mm.
NPZ_AFFINE_KEY = "affine"
#: Key of the ``(slices,)`` slice plane positions along the normal (mm) in ``.npz`` files.
NPZ_SLICE_POSITIONS_KEY = "slice_positions_mm"
#: Prefix of every mask array in ``.npz`` files, so no ROI name can clash with the keys above.
NPZ_ROI_PREFIX = "roi/"
