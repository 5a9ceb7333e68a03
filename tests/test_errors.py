"""The public error module, and Mask as a value object (rtmask's errors, read-only view)."""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pytest

import rtmask
import rtmask._errors
import rtmask.errors
from rtmask import ImageGrid
from rtmask.errors import GeometryError, InvalidInputError, RtmaskError, RtmaskWarning
from rtmask.raster import Mask
from rtmask.rtstruct import ROI

SRC = Path(__file__).resolve().parents[1] / "src" / "rtmask"


def _error_classes_defined_in_src() -> set[str]:
    """Public classes in src/rtmask whose name ends in Error or Warning, read with ast."""
    names = set()
    for path in SRC.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (
                isinstance(node, ast.ClassDef)
                and node.name.endswith(("Error", "Warning"))
                and not node.name.startswith("_")
            ):
                names.add(node.name)
    return names


def test_every_error_and_warning_class_is_public_in_rtmask_errors() -> None:
    defined = _error_classes_defined_in_src()
    assert len(defined) >= 13
    assert defined <= set(rtmask.errors.__all__)
    for name in defined:
        cls = getattr(rtmask.errors, name)
        assert issubclass(cls, (RtmaskError, RtmaskWarning)), name
    assert rtmask.errors.__all__ == sorted(rtmask.errors.__all__)


def test_private_module_re_exports_the_same_classes() -> None:
    for name in rtmask.errors.__all__:
        assert getattr(rtmask._errors, name) is getattr(rtmask.errors, name)
    assert rtmask.RtmaskError is rtmask.errors.RtmaskError


def _grid() -> ImageGrid:
    return ImageGrid.from_explicit(
        origin_mm=(-10.0, 5.0, 30.0), spacing_mm=(2.5, 0.8, 1.2), shape=(3, 4, 5)
    )


ROI_7 = ROI(number=7, name="PTV")


def test_mask_keeps_a_read_only_view_and_leaves_the_callers_array_writeable() -> None:
    array = np.zeros((3, 4, 5), dtype=bool)
    mask = Mask(array=array, grid=_grid(), roi=ROI_7)
    assert array.flags.writeable
    array[1, 2, 3] = True  # still the caller's to change ...
    assert not mask.array.flags.writeable
    with pytest.raises(ValueError, match="read-only"):
        mask.array[0, 0, 0] = True  # ... but not through the mask
    assert mask.array[1, 2, 3]  # a view, not a copy


@pytest.mark.parametrize("dtype", [np.uint8, np.int64, np.float64, np.float16])
def test_mask_refuses_arrays_other_than_bool_or_float32(dtype: type) -> None:
    with pytest.raises(InvalidInputError, match=r"ROI 7 'PTV'.*bool .* or float32"):
        Mask(array=np.zeros((3, 4, 5), dtype=dtype), grid=_grid(), roi=ROI_7)


def test_mask_raises_rtmask_errors_for_a_wrong_shape_or_slice_counts() -> None:
    with pytest.raises(GeometryError, match=r"ROI 7 'PTV'.*\(3, 4, 4\).*\(3, 4, 5\)"):
        Mask(array=np.zeros((3, 4, 4), dtype=bool), grid=_grid(), roi=ROI_7)
    with pytest.raises(InvalidInputError, match="2 slice counts for 3 slices"):
        Mask(
            array=np.zeros((3, 4, 5), dtype=np.float32),
            grid=_grid(),
            roi=ROI_7,
            slice_counts=np.zeros(2),
        )


def test_mask_equals_with_a_tolerance_for_fractions() -> None:
    rng = np.random.default_rng(3)
    values = rng.random((3, 4, 5), dtype=np.float32)
    a = Mask(array=values, grid=_grid(), roi=ROI_7)
    b = Mask(array=values + np.float32(1e-4), grid=_grid(), roi=ROI_7)
    assert a.equals(a)
    assert not a.equals(b)
    assert a.equals(b, atol=2e-4)
    assert not a.equals(b, atol=5e-5)
    binary = Mask(array=values > 0.5, grid=_grid(), roi=ROI_7)
    assert not a.equals(binary, atol=1.0)  # another kind of mask
    assert not binary.equals(Mask(array=values > 0.4, grid=_grid(), roi=ROI_7), atol=1.0)
    other_roi = Mask(array=values, grid=_grid(), roi=ROI(number=8, name="PTV"))
    assert not a.equals(other_roi)
    assert not a.equals(values)
