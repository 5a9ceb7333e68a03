"""ROI name groups (one key for ``Lung_L``, ``L Lung``, ``LUNG LT``) and TG-263 matching.

:func:`normalise_name` turns a ROI name into the key of its group:

1. NFKC-normalise, strip surrounding whitespace, drop a trailing copy marker ``(n)``
   (``Lung (1)``) and a trailing ``_n`` (``Lt_Lung_1``, the copies planning systems make);
   ``_n`` is kept on target names (``PTV``, ``CTV``, ``GTV``, ``ITV``, ``IGTV``, ``PRV``
   first), where a number is a dose level or a target, not a copy.
2. Case-fold and split into words at whitespace, ``_``, ``-`` and ``.``.
3. Laterality words anywhere in the name become one suffix: ``L``, ``Lt``, ``Left``, ``G``
   (gauche), ``Sin`` (sinister) give ``_l``; ``R``, ``Rt``, ``Right``, ``D`` (droit),
   ``Dx`` (dexter) give ``_r``. A name with words of both sides keeps them as words.
4. The other words are joined without separator (``Spinal Cord`` and ``SpinalCord`` are one
   group), then the laterality suffix: ``lung_l``.

:func:`tg263_match` gives the TG-263 standard name of the same group, from the list carried
in ``tg263.csv`` (see its header for the source and licence).
"""

from __future__ import annotations

import csv
import functools
import re
import unicodedata
from importlib import resources

__all__ = ["normalise_name", "tg263_match", "tg263_names"]

_LEFT = frozenset({"l", "lt", "left", "g", "sin"})
_RIGHT = frozenset({"r", "rt", "right", "d", "dx"})
_TARGET_PREFIXES = ("ptv", "ctv", "gtv", "itv", "igtv", "prv")
_COPY_PARENTHESES = re.compile(r"\s*\(\d+\)$")
_COPY_UNDERSCORE = re.compile(r"(?<=[^\W\d_])_\d+$")  # "_1" after a letter
_WORD_SEPARATORS = re.compile(r"[\s_.\-]+")


def normalise_name(name: str) -> str:
    """Return the group key of a ROI name (see the module documentation for the rules).

    Parameters
    ----------
    name
        A ROI name as written.

    Returns
    -------
    str
        The key, e.g. ``"lung_l"`` for ``Lung_L``, ``L Lung``, ``LUNG LT``, ``lung left``
        and ``Lt_Lung_1``; ``""`` for a name without letters or digits.

    Examples
    --------
    >>> normalise_name("Lt_Lung_1")
    'lung_l'
    >>> normalise_name("Spinal Cord")
    'spinalcord'
    """
    text = unicodedata.normalize("NFKC", name).strip()
    text = _COPY_PARENTHESES.sub("", text)
    if not text.casefold().startswith(_TARGET_PREFIXES):
        text = _COPY_UNDERSCORE.sub("", text)
    words = [word for word in _WORD_SEPARATORS.split(text.casefold()) if word]
    left = [word for word in words if word in _LEFT]
    right = [word for word in words if word in _RIGHT]
    side = ""
    if left and not right and len(left) < len(words):
        side, words = "_l", [word for word in words if word not in _LEFT]
    elif right and not left and len(right) < len(words):
        side, words = "_r", [word for word in words if word not in _RIGHT]
    return "".join(words) + side


@functools.cache
def tg263_names() -> tuple[str, ...]:
    """The TG-263 standard names carried with rtmask (``tg263.csv``), in the list's order."""
    text = resources.files("rtmask.names").joinpath("tg263.csv").read_text(encoding="utf-8")
    lines = [line for line in text.splitlines() if line and not line.startswith("#")]
    return tuple(row["name"] for row in csv.DictReader(lines))


@functools.cache
def _tg263_groups() -> dict[str, str]:
    """Group key -> TG-263 name; the first name of the list wins a shared key."""
    groups: dict[str, str] = {}
    for name in tg263_names():
        groups.setdefault(normalise_name(name), name)
    return groups


def tg263_match(name: str) -> str | None:
    """Return the TG-263 standard name in the group of ``name``, or None.

    Parameters
    ----------
    name
        A ROI name as written (``"LUNG LT"``).

    Returns
    -------
    str or None
        The TG-263 name whose :func:`normalise_name` equals that of ``name``
        (``"Lung_L"``), None when no standard name has that form.
    """
    key = normalise_name(name)
    return _tg263_groups().get(key) if key else None
