"""The plans of ``rtmask info``: prescription, fractions, beams or brachytherapy channels, links.

A plan's entry links it both ways: to the structure set it references and to the doses
that reference it (found among the scanned files, else named by UID).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from rtmask._errors import RtmaskError
from rtmask.discovery import Inventory, RTObject
from rtmask.plan import read_plan

__all__ = ["plan_details", "print_plan"]

Report = dict[str, Any]


def plan_details(
    rt_object: RTObject, inventory: Inventory, relative: Callable[[Path], str]
) -> Report:
    """``{"plan": read_plan(...).to_dict() or None, "error", "structure_set", "doses"}``."""
    try:
        plan = read_plan(rt_object.path)
    except RtmaskError as error:
        return {"plan": None, "error": str(error), "structure_set": None, "doses": []}
    structure_set = None
    if plan.referenced_structure_set_uid is not None:
        match = next(
            (
                s
                for s in inventory.structure_sets
                if s.sop_instance_uid == plan.referenced_structure_set_uid
            ),
            None,
        )
        structure_set = {
            "sop_instance_uid": plan.referenced_structure_set_uid,
            "file": None if match is None else relative(match.path),
        }
    doses = [
        {"sop_instance_uid": d.sop_instance_uid, "file": relative(d.path)}
        for d in inventory.doses
        if rt_object.sop_instance_uid is not None
        and rt_object.sop_instance_uid in d.referenced_rt_uids
    ]
    known = {d["sop_instance_uid"] for d in doses}
    doses += [
        {"sop_instance_uid": uid, "file": None}
        for uid in plan.referenced_dose_uids
        if uid not in known
    ]
    return {"plan": plan.to_dict(), "error": None, "structure_set": structure_set, "doses": doses}


def _number(value: float | None, digits: int = 4) -> str:
    return "-" if value is None else f"{value:.{digits}g}"


def _angle(value: float | None) -> str:
    return "-" if value is None else f"{value + 0.0:.1f}"  # + 0.0: no "-0.0"


def _summary(entry: Report) -> str:
    plan = entry["plan"]
    parts = [f"plan {plan['label'] or '(no label)'}"]
    if plan["name"]:
        parts[0] += f" {plan['name']!r}"
    if plan["date"]:
        parts.append(f"dated {plan['date']}")
    prescription = plan["prescription"]
    if prescription is None:
        parts.append("no prescription dose")
    else:
        parts.append(f"prescription {prescription['dose_gy']:g} Gy ({prescription['source']})")
    if plan["n_fractions"] is not None:
        per = plan["dose_per_fraction_gy"]
        parts.append(
            f"{plan['n_fractions']} fraction(s)" + ("" if per is None else f" x {per:.4g} Gy")
        )
    link = entry["structure_set"]
    if link is not None:
        parts.append(f"structure set {link['file'] or link['sop_instance_uid'] + ' (not found)'}")
    if entry["doses"]:
        names = [d["file"] or f"{d['sop_instance_uid']} (not found)" for d in entry["doses"]]
        parts.append(f"dose(s) {', '.join(names)}")
    return "; ".join(parts)


def _beam_table(title: str, beams: list[Report]) -> Table:
    table = Table(title=title, title_justify="left")
    for name in (
        "#",
        "name",
        "type",
        "radiation",
        "meterset",
        "Gy/fx",
        "gantry",
        "coll.",
        "couch",
        "isocentre mm",
        "CPs",
    ):
        table.add_column(name, overflow="fold")
    for beam in beams:
        iso = beam["isocenter_mm"]
        table.add_row(
            str(beam["number"]),
            beam["name"] or "",
            beam["beam_type"] or "",
            beam["radiation_type"] or "",
            f"{_number(beam['meterset'], 5)} {beam['meterset_unit'] or ''}".strip(),
            _number(beam["dose_per_fraction_gy"]),
            _angle(beam["gantry_angle_deg"]),
            _angle(beam["collimator_angle_deg"]),
            _angle(beam["couch_angle_deg"]),
            "-" if iso is None else ", ".join(f"{v:.1f}" for v in iso),
            str(beam["n_control_points"]),
        )
    return table


def _brachy_table(title: str, plan: Report) -> Table:
    table = Table(title=title, title_justify="left")
    for name in ("setup", "channel", "applicator", "source", "time s", "CPs"):
        table.add_column(name, overflow="fold")
    sources = {s["number"]: s for s in plan["brachy_sources"]}
    for setup in plan["application_setups"]:
        for channel in setup["channels"]:
            source = sources.get(channel["source_number"])
            table.add_row(
                f"{setup['number']} {setup['name'] or ''}".strip(),
                str(channel["number"]),
                channel["applicator"] or "",
                "-" if source is None else f"{source['number']} {source['isotope_name'] or ''}",
                _number(channel["total_time_s"]),
                str(channel["n_control_points"]),
            )
    return table


def print_plan(entry: Report, out: Console) -> None:
    """The plan's summary line and its beams (or brachytherapy channels)."""
    if entry["error"]:
        out.print(f"[red]error:[/red] {escape(entry['error'])}", soft_wrap=True)
        return
    out.print(f"  {entry['file']}: {_summary(entry)}", soft_wrap=True, markup=False)
    plan = entry["plan"]
    if plan["beams"]:
        out.print(_beam_table(f"{entry['file']}: {len(plan['beams'])} beam(s)", plan["beams"]))
    if plan["application_setups"]:
        kind = plan["brachy_treatment_type"] or "brachytherapy"
        out.print(_brachy_table(f"{entry['file']}: {kind} channels", plan))
    elif plan["brachy_sources"]:
        for source in plan["brachy_sources"]:
            out.print(f"  source {source['number']}: {source['isotope_name'] or '?'}")
