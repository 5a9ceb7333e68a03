"""Shared test helpers and options.

The patient orientations the geometry tests run through, and helpers for the tests of the
command line (:func:`run_cli`, :func:`run_cli_output`, :func:`changed_copy`): import them
with ``from conftest import ...`` (pytest puts this folder on ``sys.path``). The ``demo``
fixture: the synthetic demo case, written once. The fuzz test's budget options (see
tests/test_fuzz.py).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.dataset import Dataset

from rtmask.cli import main
from rtmask.geometry import ImageGrid
from rtmask.synthetic import write_demo_case

#: The real sample files (absent on most machines: tests that use them skip).
SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"

#: ImageOrientationPatient (row cosines, then column cosines) of the usual positions.
HFS = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0)  # head first supine (axial)
HFP = (-1.0, 0.0, 0.0, 0.0, -1.0, 0.0)  # head first prone
FFS = (-1.0, 0.0, 0.0, 0.0, 1.0, 0.0)  # feet first supine
FFP = (1.0, 0.0, 0.0, 0.0, -1.0, 0.0)  # feet first prone
SAGITTAL = (0.0, 1.0, 0.0, 0.0, 0.0, -1.0)
CORONAL = (1.0, 0.0, 0.0, 0.0, 0.0, -1.0)
#: An oblique orientation as a file may hold it: rounded, so not exactly orthonormal.
OBLIQUE_AS_WRITTEN = (0.954, -0.208, 0.215, 0.279, 0.880, -0.384)


def unit(vector: Sequence[float] | np.ndarray) -> np.ndarray:
    """``vector`` scaled to length 1."""
    array = np.asarray(vector, dtype=np.float64)
    return np.asarray(array / np.linalg.norm(array))


def orthonormal(orientation: Sequence[float]) -> tuple[float, ...]:
    """Row and column cosines made orthonormal (Gram-Schmidt, the row kept in direction)."""
    row = unit(orientation[:3])
    column = np.asarray(orientation[3:], dtype=np.float64)
    column = unit(column - (column @ row) * row)
    return (*row.tolist(), *column.tolist())


#: :data:`OBLIQUE_AS_WRITTEN` made orthonormal.
OBLIQUE = orthonormal(OBLIQUE_AS_WRITTEN)

#: Every orientation by name; a test takes the ones it needs.
ORIENTATIONS: dict[str, tuple[float, ...]] = {
    "HFS": HFS,
    "HFP": HFP,
    "FFS": FFS,
    "FFP": FFP,
    "sagittal": SAGITTAL,
    "coronal": CORONAL,
    "oblique": OBLIQUE,
}


def orientations(*names: str) -> dict[str, tuple[float, ...]]:
    """The named entries of :data:`ORIENTATIONS`, in the order given."""
    return {name: ORIENTATIONS[name] for name in names}


def rotated(about_x: float, about_y: float, about_z: float) -> tuple[float, ...]:
    """The orientation of the patient axes rotated about x, then y, then z (radians).

    The rotation is ``Rz @ Ry @ Rx``; its first two columns are the row and column cosines.
    """
    cx, sx, cy, sy, cz, sz = (
        f(angle) for angle in (about_x, about_y, about_z) for f in (np.cos, np.sin)
    )
    rx = np.array([[1, 0, 0], [0, cx, -sx], [0, sx, cx]])
    ry = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
    rz = np.array([[cz, -sz, 0], [sz, cz, 0], [0, 0, 1]])
    rotation = rz @ ry @ rx
    return (*rotation[:, 0].tolist(), *rotation[:, 1].tolist())


def small_grid(shape: tuple[int, int, int], orientation: Sequence[float] = HFS) -> ImageGrid:
    """A small CT grid off the origin, anisotropic voxels, ``orientation`` made orthonormal."""
    return ImageGrid.from_explicit(
        origin_mm=(-61.3, 17.9, -230.4),
        spacing_mm=(2.5, 0.9, 1.1),
        shape=shape,
        orientation=orthonormal(orientation),
    )


def slices_at(base: ImageGrid, positions_mm: np.ndarray) -> ImageGrid:
    """A grid like ``base`` (orientation, pixels, rows, columns), its slices at ``positions_mm``."""
    return ImageGrid.from_slices(
        positions_mm=positions_mm,
        orientation=base.orientation,
        pixel_spacing_mm=base.spacing_mm[1:],
        rows=base.shape[1],
        columns=base.shape[2],
    )


def run_cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """Run the command line with ``args``: exit code, stdout and stderr (never a traceback)."""
    code = main(list(args))
    captured = capsys.readouterr()
    assert "Traceback" not in captured.out + captured.err
    return code, captured.out, captured.err


def run_cli_output(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    """As :func:`run_cli`, with stdout and stderr as one text: exit code and output."""
    code, out, err = run_cli(capsys, *args)
    return code, out + err


def changed_copy(
    folder: Path, copy: Path, file_name: str, change: Callable[[Dataset], object]
) -> Path:
    """Copy ``folder`` to ``copy`` and ``change`` its DICOM file ``file_name``; returns it."""
    shutil.copytree(folder, copy)
    path = copy / file_name
    ds = pydicom.dcmread(path)
    change(ds)
    ds.save_as(path)
    return path


def copy_real(name: str, copy: Path, pattern: str = "*.dcm") -> Path:
    """Copy the files ``pattern`` of ``name`` in ../shared/data into the folder ``copy``.

    Returns the source folder; skips the test when it is absent.
    """
    source = SHARED_DATA / name
    if not source.is_dir():
        pytest.skip(f"real DICOM test data not found at {source} (../shared/data)")
    copy.mkdir(exist_ok=True)
    for path in source.glob(pattern):
        shutil.copy(path, copy / path.name)
    return source


@pytest.fixture(scope="session")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The synthetic demo case, written once; tests copy it before changing anything."""
    folder = tmp_path_factory.mktemp("demo")
    write_demo_case(folder)
    return folder


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("fuzz", "mutation fuzzing (tests/test_fuzz.py)")
    group.addoption(
        "--fuzz-cases",
        type=int,
        default=int(os.environ.get("RTMASK_FUZZ_CASES", "0")) or None,
        metavar="N",
        help="run N fuzz cases instead of the small default budget (env RTMASK_FUZZ_CASES); "
        "more than the default also uses the real files in ../shared/data when present",
    )
    group.addoption(
        "--fuzz-seed",
        type=int,
        default=int(os.environ.get("RTMASK_FUZZ_SEED", "0")),
        metavar="S",
        help="seed of the fuzz cases (env RTMASK_FUZZ_SEED, default 0)",
    )
    group.addoption(
        "--fuzz-jobs",
        type=int,
        default=int(os.environ.get("RTMASK_FUZZ_JOBS", "1")),
        metavar="J",
        help="fuzz cases run at once, each in its own process (env RTMASK_FUZZ_JOBS)",
    )
    group.addoption(
        "--fuzz-report",
        default=os.environ.get("RTMASK_FUZZ_REPORT"),
        metavar="FILE",
        help="write every fuzz case's result to FILE as JSON lines (env RTMASK_FUZZ_REPORT)",
    )
