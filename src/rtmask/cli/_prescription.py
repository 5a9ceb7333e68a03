"""Where ``rtmask dvh`` takes its prescription dose from, and what it does with embedded DVHs.

The order: ``--prescription GY`` wins; else the plan given with ``--plan RP.dcm``; else the
RT Plan that DOSE references (ReferencedRTPlanSequence), looked for beside DOSE and
STRUCTURE_SET (the discovery link dose -> plan -> structure set). The source is stated
in the output. ``dose-view`` (beside DOSE and ``--structures``) and ``dose-sum`` (beside
a RELATIVE dose) follow the same order (:func:`prescription_from`).
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console

from rtmask._errors import RtmaskError
from rtmask.cli._output import print_warning
from rtmask.discovery import RTObject, read_header
from rtmask.dvh import EmbeddedDVH
from rtmask.plan import RTPlan, read_plan

__all__ = [
    "PrescriptionChoice",
    "add_plan_option",
    "choose_prescription",
    "embedded_stats_scale",
    "find_linked_plan",
    "prescription_from",
]

#: At most this many files beside DOSE and STRUCTURE_SET are looked at for the linked plan.
MAX_SIBLINGS = 5000


@dataclass(frozen=True, slots=True, kw_only=True)
class PrescriptionChoice:
    """The prescription dose ``dvh`` uses (Gy, or None) and where it comes from, in words."""

    dose_gy: float | None
    source: str | None
    plan: RTPlan | None = None
    #: A short form of ``source`` for a picture's title: ``"--plan rtplan.dcm"``.
    short_source: str | None = None

    def to_dict(self) -> dict[str, object]:
        """``{"dose_gy": ..., "source": ...}`` for the JSON output."""
        return {"dose_gy": self.dose_gy, "source": self.source}


def add_plan_option(parser: argparse.ArgumentParser, beside: str = "STRUCTURE_SET") -> None:
    """``--plan RP.dcm``; ``beside``: the other input a linked plan may lie beside."""
    parser.add_argument(
        "--plan",
        type=Path,
        metavar="RP.dcm",
        help=(
            "RT Plan to take the prescription dose from (default: the plan DOSE references, "
            f"when it lies beside DOSE or {beside}; --prescription wins over both)"
        ),
    )


def find_linked_plan(dose: Path, *beside: Path) -> Path | None:
    """The RT Plan file that ``dose`` references, beside it or beside the files ``beside``.

    Only the files directly in those folders are read (headers only); None when the
    dose references no plan or the plan is not there.
    """
    header = read_header(Path(dose))
    if not isinstance(header, RTObject) or not header.referenced_rt_uids:
        return None
    wanted = set(header.referenced_rt_uids)
    inputs = {Path(p).resolve() for p in (dose, *beside)}
    looked = 0
    folders = {Path(p).resolve().parent: Path(p).parent for p in (dose, *beside)}
    for folder in folders.values():  # as given, for the messages
        for path in sorted(folder.iterdir()):
            if path.resolve() in inputs or not path.is_file() or path.name.startswith("."):
                continue
            looked += 1
            if looked > MAX_SIBLINGS:
                return None
            found = read_header(path)
            if (
                isinstance(found, RTObject)
                and found.modality == "RTPLAN"
                and found.sop_instance_uid in wanted
            ):
                return path
    return None


def prescription_from(
    *,
    prescription: float | None,
    plan_path: Path | None,
    dose: Path,
    beside: tuple[Path, ...] = (),
    console: Console,
) -> PrescriptionChoice:
    """The prescription: ``--prescription``, else ``--plan``, else the plan DOSE references.

    The referenced plan is looked for beside ``dose`` and the files ``beside``; a plan that
    cannot be read is warned about and not used. See the module docstring.

    Raises
    ------
    RtmaskError
        ``--plan`` is not a readable RT Plan (one line naming the file).
    """
    if plan_path is not None:
        if not Path(plan_path).is_file():
            raise RtmaskError(f"--plan {plan_path}: no such file; give an RTPLAN file")
        plan: RTPlan | None = read_plan(plan_path)
        how, short = "--plan {path}", "--plan {name}"
    else:
        linked = find_linked_plan(dose, *beside)
        plan = None
        how, short = "the plan {path} that DOSE references", "{name} (DOSE's plan)"
        if linked is not None:
            try:
                plan = read_plan(linked)
            except RtmaskError as error:
                print_warning(console, f"{error} (the plan DOSE references; not used)")
    if prescription is not None:
        said = ""
        if plan is not None and plan.prescription_gy is not None:
            said = f" (the plan {plan.source} says {plan.prescription_gy:g} Gy)"
        return PrescriptionChoice(
            dose_gy=float(prescription),
            source=f"--prescription{said}",
            plan=plan,
            short_source="--prescription",
        )
    if plan is None:
        return PrescriptionChoice(dose_gy=None, source=None)
    if plan.prescription is None:
        print_warning(
            console,
            f"{plan.source}: the plan holds no prescription dose (no TargetPrescriptionDose "
            "in DoseReferenceSequence, no BeamDose in FractionGroupSequence); give "
            "--prescription GY",
        )
        return PrescriptionChoice(dose_gy=None, source=None, plan=plan)
    return PrescriptionChoice(
        dose_gy=plan.prescription.dose_gy,
        source=f"{how.format(path=plan.source)} ({plan.prescription.source})",
        plan=plan,
        short_source=short.format(name=Path(plan.source).name),
    )


def _choose(args: argparse.Namespace, console: Console) -> PrescriptionChoice:
    return prescription_from(
        prescription=args.prescription,
        plan_path=args.plan,
        dose=args.dose,
        beside=(args.structure_set,),
        console=console,
    )


def choose_prescription(args: argparse.Namespace, console: Console) -> PrescriptionChoice:
    """The prescription for ``dvh STRUCTURE_SET DOSE``, also set as ``args.prescription``.

    See the module docstring for the order.

    Raises
    ------
    RtmaskError
        ``--plan`` is not a readable RT Plan (one line naming the file).
    """
    choice = _choose(args, console)
    args.prescription = choice.dose_gy
    return choice


def embedded_stats_scale(
    args: argparse.Namespace,
    embedded: EmbeddedDVH,
    roi: str,
    curve_scale: float,
    stats_scale: float,
) -> tuple[float | None, list[str]]:
    """Gy per unit of an embedded DVH's min/mean/max, and warnings about them.

    Values that contradict the item's own curve (percent of the prescription labelled GY)
    are read as percent of the prescription when that makes them fit, as
    ``--embedded-stats-percent-of`` says when given; otherwise they are not shown as Gy:
    the scale returned is None, meaning min/mean/max are to be taken from the curve.
    """
    wrong = embedded.contradicting_stats(dose_scale=curve_scale, stats_dose_scale=stats_scale)
    if not wrong:
        return stats_scale, []
    problem = f"{roi}: embedded {embedded.describe_contradiction(wrong, curve_scale, stats_scale)}"
    if args.embedded_stats_percent_of is not None:
        return stats_scale, [f"{problem}; check --embedded-stats-percent-of"]
    prescription = args.prescription
    if prescription is not None and not embedded.contradicting_stats(
        dose_scale=curve_scale, stats_dose_scale=prescription / 100.0
    ):
        return prescription / 100.0, [
            f"{problem}; they are read as percent of the prescription, {prescription:g} Gy "
            "(--embedded-stats-percent-of GY reads them otherwise)"
        ]
    fits = embedded.stats_percent_of_gy(dose_scale=curve_scale)
    shown = "min/mean/max are shown from the curve"
    if prescription is not None:
        hint = (
            f"; nor do they fit as percent of the prescription, {prescription:g} Gy: {shown} "
            "(--embedded-stats-percent-of GY reads them as percent of GY)"
        )
    else:
        fit = "" if fits is None else f"; they fit it as percent of {fits:g} Gy"
        hint = (
            f"{fit}; {shown}; give --prescription GY or --plan RP.dcm to convert the stored "
            "values (or --embedded-stats-percent-of GY)"
        )
    return None, [problem + hint]
