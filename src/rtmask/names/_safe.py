"""Whether a canonical name can be a file stem as it stands, and a safe name for a group.

The rules are those of ``rtmask.export``'s file names (which this layer may not import):
letters, digits and combining marks of any script and ``- _ . + ( )``; no leading ``.``,
``_`` or ``-``, no trailing ``.`` or ``_``, no runs of ``_`` or ``.``, NFC form, at most 100
bytes of UTF-8, not a Windows device name. A test checks that both agree.
"""

from __future__ import annotations

import re
import unicodedata

__all__ = ["safe_stem", "unsafe_reason"]

_KEPT_PUNCTUATION = frozenset("-_.+()")
_MAX_BYTES = 100
_WINDOWS_RESERVED = frozenset(
    {"CON", "PRN", "AUX", "NUL", "CLOCK$", "CONIN$", "CONOUT$"}
    | {f"{port}{n}" for port in ("COM", "LPT") for n in (*"123456789", "¹", "²", "³")}
)


def safe_stem(text: str) -> str:
    """A safe stem made from free text (``"L Lung"`` -> ``"L_Lung"``); may return ``""``."""
    characters: list[str] = []
    for character in unicodedata.normalize("NFC", text):
        category = unicodedata.category(character)
        keep = (
            character in _KEPT_PUNCTUATION
            or category[0] in "LN"
            or (category[0] == "M" and bool(characters) and characters[-1] != "_")
        )
        characters.append(character if keep else "_")
    name = re.sub(r"\.{2,}", ".", re.sub(r"_{2,}", "_", "".join(characters)))
    name = name.lstrip("._-").rstrip("._")
    name = name.encode("utf-8")[:_MAX_BYTES].decode("utf-8", errors="ignore").rstrip("._")
    head, dot, tail = name.partition(".")
    if head.upper() in _WINDOWS_RESERVED:
        name = f"{head}_{dot}{tail}"
    return name


def unsafe_reason(name: str) -> str | None:
    """Why ``name`` cannot be a file stem as it stands (one phrase), None when it can."""
    if not name.strip():
        return "it is empty"
    safe = safe_stem(name)
    if safe == name:
        return None
    bad = sorted({c for c in name if c not in _KEPT_PUNCTUATION and not c.isalnum()})
    if bad:
        shown = ", ".join(repr(c) for c in bad[:5])
        return f"it holds {shown}; use letters, digits and - _ . + ( ) only (no path separator)"
    return (
        "no leading . _ or -, no trailing . or _, no runs of _ or ., at most "
        f"{_MAX_BYTES} bytes, NFC form, not a Windows device name"
    )
