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


def _allowed(character: str) -> bool:
    return character in _KEPT_PUNCTUATION or unicodedata.category(character)[0] in "LNM"


def unsafe_reason(name: str) -> str | None:
    """Why ``name`` cannot be a file stem as it stands (one phrase), None when it can."""
    if not name.strip():
        return "it is empty"
    bad = sorted({c for c in name if not _allowed(c)})
    if bad:
        shown = ", ".join(repr(c) for c in bad[:5])
        return f"it holds {shown}; use letters, digits and - _ . + ( ) only (no path separator)"
    if name != unicodedata.normalize("NFC", name):
        return "it is not in Unicode NFC form"
    if name[0] in "._-" or name[-1] in "._" or "__" in name or ".." in name:
        return "it starts with . _ or -, ends with . or _, or has a run of _ or ."
    if unicodedata.category(name[0])[0] == "M":
        return "it starts with a combining mark"
    if len(name.encode("utf-8")) > _MAX_BYTES:
        return f"it is longer than {_MAX_BYTES} bytes of UTF-8"
    if name.partition(".")[0].upper() in _WINDOWS_RESERVED:
        return "it is a Windows device name"
    return None


def safe_stem(text: str) -> str:
    """A safe stem made from free text (``"L Lung"`` -> ``"L_Lung"``); may return ``""``."""
    name = "".join(c if _allowed(c) else "_" for c in unicodedata.normalize("NFC", text))
    name = re.sub(r"\.{2,}", ".", re.sub(r"_{2,}", "_", name))
    name = name.lstrip("._-").rstrip("._")
    while name and unicodedata.category(name[0])[0] == "M":
        name = name[1:].lstrip("._-")
    name = name.encode("utf-8")[:_MAX_BYTES].decode("utf-8", errors="ignore").rstrip("._")
    if name.partition(".")[0].upper() in _WINDOWS_RESERVED:
        head, dot, tail = name.partition(".")
        name = f"{head}_{dot}{tail}"
    return name
