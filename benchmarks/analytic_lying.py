"""Analytic DVHs of shapes lying in the image plane (issue 15, defect 6).

    python benchmarks/bench_dvh.py --lying      # or: python benchmarks/analytic_lying.py

A cylinder (radius 12 mm, length 24 mm) and a cone (base radius 12 mm, height 24 mm) with
their axis along x: the axial contours are rectangles and hyperbola-bounded sections (129
vertices on the hyperbola), on planes every 0.2, 1, 2 and 3 mm (symmetric about the axis,
none on the rim). A linear dose of 16 Gy + 1 Gy/mm along the axis (``u``), across it in
the image plane (``v``) or across it along the plane normal (``normal``), on dose grids of
1, 2 and 3 mm with the centre on a dose voxel centre or half a voxel off: 144 DVHs,
computed in process with ``rtmask.dvh.compute_dvh`` at its defaults (the engine behind
``rtmask dvh``). References: ``rtmask.synthetic.SectionStack``, the exact solid of each
contour stack with half-slice end caps (half-plane clipping of the polygons, no DVH
engine). Printed: the worst deviation per quantity (volume, mean, min, max, D99, D95,
D50, D5, D2, D1, D0.03cc, and V at a quarter and three quarters of the dose range),
overall and at 0.2 mm, and the worst per shape and gradient.
"""

from __future__ import annotations

import functools
import sys
import time
import warnings
from typing import Any

import numpy as np

from rtmask.dose import DoseGrid
from rtmask.dvh import DVH, compute_dvh
from rtmask.geometry import ImageGrid
from rtmask.rtstruct import ROI, Contour
from rtmask.synthetic import SectionStack

CENTRE = np.array([3.3, -7.1, 12.4])
RADIUS_MM, LENGTH_MM = 12.0, 24.0
GAPS_MM = (0.2, 1.0, 2.0, 3.0)
GRIDS_MM = (1.0, 2.0, 3.0)
SHIFTS = (0.0, 0.5)
SHAPES = ("cylinder", "cone")
AXES = {"u": 0, "v": 1, "normal": 2}
QUANTITIES = (
    "volume_cm3", "mean_gy", "min_gy", "max_gy", "D99", "D95", "D50", "D5", "D2", "D1",
    "D0.03cc", "V_low", "V_high",
)  # fmt: skip


@functools.cache
def section_stack(shape: str, gap_mm: float) -> SectionStack:
    """The contour stack of ``shape`` with planes ``gap_mm`` apart (the reference solid)."""
    planes = np.round(np.arange(-RADIUS_MM + gap_mm / 2, RADIUS_MM, gap_mm), 9)
    if shape == "cylinder":
        return SectionStack.lying_cylinder(RADIUS_MM, LENGTH_MM, planes)
    return SectionStack.lying_cone(RADIUS_MM, LENGTH_MM, planes)


def lying_roi(stack: SectionStack) -> ROI:
    """The stack's sections as axial contours about CENTRE (u = x, v = y)."""
    middles = (stack.lower_mm + stack.upper_mm) / 2
    contours = []
    for z, section in zip(middles, stack.sections, strict=True):
        points = np.column_stack(
            [CENTRE[0] + section[:, 0], CENTRE[1] + section[:, 1], np.full(len(section), 0.0)]
        )
        points[:, 2] = CENTRE[2] + z
        contours.append(Contour(points_mm=points))
    return ROI(number=1, name="lying", contours=tuple(contours))


@functools.cache
def linear_dose(spacing_mm: float, axis: int, shift: float) -> DoseGrid:
    """16 Gy + 1 Gy/mm along patient axis ``axis`` from CENTRE, on a 64 mm cube."""
    n = round(64 / spacing_mm) + 1
    origin = CENTRE - (n - 1) // 2 * spacing_mm + shift * spacing_mm
    grid = ImageGrid.from_explicit(
        origin_mm=origin.tolist(), spacing_mm=(spacing_mm,) * 3, shape=(n, n, n)
    )
    index = np.stack(np.meshgrid(*[np.arange(n)] * 3, indexing="ij"), -1)
    points = grid.index_to_patient(index.reshape(-1, 3))
    return DoseGrid(dose_gy=(16.0 + points[:, axis] - CENTRE[axis]).reshape(n, n, n), grid=grid)


def measured(dvh: DVH, reference: dict[str, float]) -> dict[str, float]:
    """The DVH's values of QUANTITIES (V at the reference's quarter points)."""
    found = {
        "volume_cm3": dvh.total_cm3,
        "mean_gy": dvh.mean_gy,
        "min_gy": dvh.min_gy,
        "max_gy": dvh.max_gy,
    }
    found.update({name: dvh.statistic(name) for name in QUANTITIES[4:11]})
    low, high = reference["min_gy"], reference["max_gy"]
    found["V_low"] = dvh.volume_at_dose(low + 0.25 * (high - low))
    found["V_high"] = dvh.volume_at_dose(low + 0.75 * (high - low))
    return found


def run_lying() -> dict[str, Any]:
    """Every case; the deviations (%) by case and quantity, and the time of the DVHs."""
    rows: list[dict[str, Any]] = []
    seconds = 0.0
    for shape in SHAPES:
        for gap in GAPS_MM:
            stack = section_stack(shape, gap)
            roi = lying_roi(stack)
            for direction, axis in AXES.items():
                reference = stack.reference_values(direction=direction)
                for grid in GRIDS_MM:
                    for shift in SHIFTS:
                        dose = linear_dose(grid, axis, shift)
                        start = time.perf_counter()
                        with warnings.catch_warnings():
                            warnings.simplefilter("ignore")
                            dvh = compute_dvh(roi, dose)
                        seconds += time.perf_counter() - start
                        found = measured(dvh, reference)
                        rows.append(
                            {
                                "shape": shape,
                                "gap_mm": gap,
                                "gradient": direction,
                                "grid_mm": grid,
                                "shift": shift,
                                "percent": {
                                    q: 100.0 * (found[q] / reference[q] - 1.0) for q in QUANTITIES
                                },
                            }
                        )
    return {"rows": rows, "dvh_seconds": seconds}


def _worst(rows: list[dict[str, Any]], quantity: str) -> float:
    values = [row["percent"][quantity] for row in rows]
    return max(values, key=abs) if values else float("nan")


def print_lying(result: dict[str, Any]) -> None:
    """Markdown tables of the worst deviations."""
    rows = result["rows"]
    fine = [row for row in rows if row["gap_mm"] < 0.5]
    print(
        f"\n### analytic, lying shapes: worst deviation per quantity (%), {len(rows)} DVHs "
        f"in {result['dvh_seconds']:.1f} s\n"
    )
    print("| contours | " + " | ".join(QUANTITIES) + " |")
    print("|---|" + "---:|" * len(QUANTITIES))
    for label, chosen in (("0.2 mm", fine), ("all", rows)):
        cells = " | ".join(f"{_worst(chosen, q):+.3f}" for q in QUANTITIES)
        print(f"| {label} | {cells} |")
    print("\n| shape | gradient | worst quantity | worst % |\n|---|---|---|---:|")
    for shape in SHAPES:
        for direction in AXES:
            chosen = [r for r in rows if r["shape"] == shape and r["gradient"] == direction]
            worst = {q: _worst(chosen, q) for q in QUANTITIES}
            name = max(worst, key=lambda q: abs(worst[q]))
            print(f"| {shape} | {direction} | {name} | {worst[name]:+.3f} |")


if __name__ == "__main__":
    print_lying(run_lying())
    sys.exit(0)
