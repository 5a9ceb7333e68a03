"""Write the large synthetic benchmark case: a 512 x 512 x 200 CT and a ~17 MB RTSTRUCT.

    python benchmarks/make_large_case.py [FOLDER]      (default /work/bench/large)

writes ``FOLDER/image/CT_0001.dcm ...`` (200 axial HFS slices, 512 x 512 pixels of
0.9765625 mm, 2 mm apart) and ``FOLDER/rtstruct/RS_large.dcm``: 60 ROIs of varied sizes,
positions and extents (body outline, spheres, rotated ellipsoids, tilted cylinders, lobed
organs, shells with a hole, keyhole rings, paired organs with two islands per plane, a hole
with an island inside), ~250 vertices per contour, numbers written with two decimals as
planning systems do. Contours lie exactly on the slice planes, and nested contours never
cross, so ``--rule auto`` and plastimatch's ``--xor-contours`` mean the same mask.

Deterministic: the geometry comes from a seeded generator (``--seed``); only the SOP
instance UIDs and dates change between runs.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from pydicom.uid import generate_uid

from rtmask.geometry import ImageGrid
from rtmask.synthetic import RoiSpec, to_patient, to_uv, write_ct_series, write_rtstruct

FloatArray = NDArray[np.float64]
#: A section maker: (slice index, signed distance of the plane from the shape centre in mm)
#: -> the polygons (u, v) mm of that plane, outer rings counter-clockwise, holes clockwise.
Section = Callable[[int, float], list[FloatArray]]

SHAPE = (200, 512, 512)
SPACING_MM = (2.0, 0.9765625, 0.9765625)
ORIGIN_MM = (-249.51171875, -262.01171875, -601.0)
N_ROIS = 60
VERTICES = 250
NUMBER_FORMAT = "%.2f"
RTSTRUCT_NAME = "RS_large.dcm"


def large_grid() -> ImageGrid:
    """The CT grid: ``(200, 512, 512)`` voxels of 2 x 0.977 x 0.977 mm, axial HFS."""
    return ImageGrid.from_explicit(origin_mm=ORIGIN_MM, spacing_mm=SPACING_MM, shape=SHAPE)


def _ring(
    n: int, a: float, b: float, *, rotation: float, phase: float, lobes: tuple[float, ...] = ()
) -> FloatArray:
    """Counter-clockwise ``(n, 2)`` polygon: an ellipse, optionally with lobes.

    ``lobes[m]`` is the relative amplitude of the ``(m + 2)``-fold lobe (radius modulated
    by ``1 + sum(lobes[m] cos((m + 2) t + phase))``).
    """
    t = phase + 2.0 * np.pi * np.arange(n) / n
    scale = np.ones(n)
    for m, amplitude in enumerate(lobes):
        scale += amplitude * np.cos((m + 2) * t + 1.7 * phase)
    local = np.column_stack([a * scale * np.cos(t), b * scale * np.sin(t)])
    cos_r, sin_r = np.cos(rotation), np.sin(rotation)
    return np.asarray(local @ np.array([[cos_r, sin_r], [-sin_r, cos_r]]))


@dataclass(frozen=True, slots=True)
class Solid:
    """One ROI as a stack of sections along the slice normal."""

    name: str
    center_mm: tuple[float, float, float]
    half_length_mm: float
    section: Callable[[float, float], list[FloatArray]]
    """``(distance from centre mm, drift scale) -> polygons centred on (0, 0)``."""
    drift_mm_per_mm: tuple[float, float] = (0.0, 0.0)
    interpreted_type: str = "ORGAN"


def _roi_contours(grid: ImageGrid, solid: Solid) -> tuple[tuple[FloatArray, str], ...]:
    contours: list[tuple[FloatArray, str]] = []
    centre = np.asarray(solid.center_mm)
    for k, z in enumerate(grid.slice_positions_mm):
        distance = float(z - centre[2])
        if abs(distance) > solid.half_length_mm:
            continue
        shifted = centre + np.array([*solid.drift_mm_per_mm, 0.0]) * distance
        center_uv = to_uv(grid, k, shifted)[0]
        for polygon in solid.section(distance, solid.half_length_mm):
            points = to_patient(grid, k, polygon + center_uv)
            contours.append((points, "CLOSED_PLANAR"))
    return tuple(contours)


def _profile(kind: str, distance: float, half: float) -> float:
    """Relative section size at ``distance`` from the centre (1 at the centre)."""
    if kind == "ellipsoid":
        return float(np.sqrt(max(0.0, 1.0 - (distance / half) ** 2)))
    if kind == "cylinder":
        return 1.0
    # "capsule": a cylinder with rounded ends over the outer fifth
    edge = 0.8 * half
    if abs(distance) <= edge:
        return 1.0
    return float(np.sqrt(max(0.0, 1.0 - ((abs(distance) - edge) / (half - edge)) ** 2)))


def _solids(rng: np.random.Generator, n_rois: int, vertices: int) -> list[Solid]:
    """The body outline plus ``n_rois - 1`` seeded shapes of every kind."""

    def n_vertices() -> int:
        return int(rng.integers(int(vertices * 0.8), int(vertices * 1.2) + 1))

    def body(distance: float, half: float) -> list[FloatArray]:
        s = 1.0 + 0.06 * np.cos(np.pi * distance / half)
        return [_ring(vertices, 215.0 * s, 150.0 * s, rotation=0.0, phase=0.1, lobes=(0.03,))]

    solids = [Solid("BODY", (0.0, -12.0, -402.0), 199.5, body, interpreted_type="EXTERNAL")]
    kinds = ("sphere", "ellipsoid", "cylinder", "lobed", "shell", "keyhole", "pair", "nest")
    for index in range(1, n_rois):
        kind = kinds[(index - 1) % len(kinds)]
        n = n_vertices()
        rotation = float(rng.uniform(0, np.pi))
        phase = float(rng.uniform(0, 2 * np.pi))
        profile = str(rng.choice(["ellipsoid", "cylinder", "capsule"]))
        a = float(rng.uniform(8.0, 55.0))
        b = a * float(rng.uniform(0.6, 1.4))
        half = float(rng.uniform(10.0, 56.0))
        drift = (0.0, 0.0)
        if kind == "sphere":
            b, half, profile = a, a, "ellipsoid"
        elif kind == "cylinder":
            profile = "cylinder"
            a = b = float(rng.uniform(5.0, 30.0))
            drift = (float(rng.uniform(-0.3, 0.3)), float(rng.uniform(-0.3, 0.3)))

        def section(
            distance: float,
            half_length: float,
            *,
            kind: str = kind,
            n: int = n,
            a: float = a,
            b: float = b,
            rotation: float = rotation,
            phase: float = phase,
            profile: str = profile,
        ) -> list[FloatArray]:
            s = _profile(profile, distance, half_length)
            if s * min(a, b) < 1.5:
                return []
            ring = _ring
            if kind in ("sphere", "ellipsoid", "cylinder"):
                return [ring(n, a * s, b * s, rotation=rotation, phase=phase)]
            if kind == "lobed":
                return [ring(n, a * s, b * s, rotation=rotation, phase=phase, lobes=(0.12, 0.06))]
            if kind == "shell":
                outer = ring(n, a * s, b * s, rotation=rotation, phase=phase)
                if s < 0.5:
                    return [outer]
                inner = ring(n, 0.55 * a * s, 0.55 * b * s, rotation=rotation, phase=-phase)
                return [outer, inner[::-1]]
            if kind == "keyhole":
                return [_keyhole(n // 2, a * s, 0.5 * a * s, phase)]
            if kind == "pair":
                gap = 1.25 * max(a, b)
                left = ring(n, 0.55 * a * s, 0.55 * b * s, rotation=rotation, phase=phase)
                right = ring(n, 0.55 * b * s, 0.55 * a * s, rotation=-rotation, phase=-phase)
                return [left + np.array([-gap, 0.0]), right + np.array([gap, 0.0])]
            # "nest": outer ring, a hole, and an island inside the hole near the centre
            polygons = [ring(n, a * s, b * s, rotation=rotation, phase=phase)]
            if s > 0.4:
                polygons.append(
                    ring(n, 0.6 * a * s, 0.6 * b * s, rotation=rotation, phase=1.0)[::-1]
                )
            if s > 0.7:
                polygons.append(ring(n, 0.25 * a * s, 0.25 * b * s, rotation=rotation, phase=2.0))
            return polygons

        extent = min(max(a, b) * (1.9 if kind == "pair" else 1.2), 130.0)
        x = float(rng.uniform(-200.0 + extent, 200.0 - extent))
        y = float(rng.uniform(-12.0 - 140.0 + extent, -12.0 + 140.0 - extent))
        z = float(rng.uniform(-590.0 + half, -214.0 - half))
        solids.append(Solid(f"{kind}_{index:02d}", (x, y, z), half, section, drift))
    return solids


def _keyhole(n: int, outer: float, inner: float, phase: float) -> FloatArray:
    """An annulus as one polygon with a zero-width cut, ``(2 n + 2, 2)`` mm."""
    t = phase + 2.0 * np.pi * np.arange(n + 1) / n
    ring = np.column_stack([np.cos(t), np.sin(t)])
    ring[-1] = ring[0]
    return np.concatenate([outer * ring, inner * ring[::-1]])


def write_large_case(
    folder: Path,
    *,
    seed: int = 20240611,
    n_rois: int = N_ROIS,
    vertices: int = VERTICES,
    number_format: str = NUMBER_FORMAT,
) -> tuple[Path, Path]:
    """Write the CT series and the RTSTRUCT; returns ``(image folder, rtstruct path)``."""
    rng = np.random.default_rng(seed)
    grid = large_grid()
    uid = f"rtmask-large-{seed}"
    ct = write_ct_series(
        folder / "image",
        grid,
        patient_id="RTMASK-LARGE",
        patient_name="Synthetic^Large",
        study_instance_uid=generate_uid(entropy_srcs=[uid, "study"]),
        series_instance_uid=generate_uid(entropy_srcs=[uid, "series"]),
        frame_of_reference_uid=generate_uid(entropy_srcs=[uid, "frame"]),
    )
    colors = rng.integers(40, 256, size=(n_rois, 3))
    rois = [
        RoiSpec(
            number=index + 1,
            name=solid.name,
            contours=_roi_contours(ct.grid, solid),
            color=(int(colors[index, 0]), int(colors[index, 1]), int(colors[index, 2])),
            interpreted_type=solid.interpreted_type,
        )
        for index, solid in enumerate(_solids(rng, n_rois, vertices))
    ]
    rtstruct = write_rtstruct(
        folder / "rtstruct" / RTSTRUCT_NAME, rois, ct, label="LARGE", raw_numbers=number_format
    )
    return ct.folder, rtstruct


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folder", nargs="?", type=Path, default=Path("/work/bench/large"))
    parser.add_argument("--seed", type=int, default=20240611)
    parser.add_argument("--rois", type=int, default=N_ROIS)
    parser.add_argument("--vertices", type=int, default=VERTICES)
    parser.add_argument("--number-format", default=NUMBER_FORMAT)
    args = parser.parse_args(argv)
    start = time.perf_counter()
    image, rtstruct = write_large_case(
        args.folder,
        seed=args.seed,
        n_rois=args.rois,
        vertices=args.vertices,
        number_format=args.number_format,
    )
    print(
        f"wrote {image} ({len(list(image.glob('*.dcm')))} slices) and {rtstruct} "
        f"({rtstruct.stat().st_size / 1e6:.1f} MB) in {time.perf_counter() - start:.1f} s"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
