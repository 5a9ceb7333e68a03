"""The safe-file-name rules shared by ``rtmask.export`` (file names) and ``rtmask.names``.

A name is free text (a ROI name, a canonical name of a ROI map) and may be hostile; the rules
of :func:`sanitize_name`:

1. NFC-normalise; keep letters, digits and combining marks of any script and ``- _ . + ( )``;
   every other character (separators, spaces, control and format characters, ``: * ? " < > |``)
   becomes ``_``; runs of ``_`` and of ``.`` collapse to one.
2. Strip leading ``.``, ``_``, ``-`` (no hidden files, no command-line options) and trailing
   ``.``, ``_`` (Windows drops trailing dots).
3. Cut to at most :data:`MAX_STEM_BYTES` bytes of UTF-8, never inside a character.
4. A Windows device name (``CON``, ``nul``, ``COM1`` ... also before a dot: ``con.txt``) gets a
   ``_`` appended to its first part.
"""

from __future__ import annotations

import re
import unicodedata

__all__ = ["MAX_STEM_BYTES", "sanitize_name", "unsafe_reason"]

#: Longest stem kept from a name, in UTF-8 bytes (a ``_<number>`` suffix may follow).
MAX_STEM_BYTES = 100

_KEPT_PUNCTUATION = frozenset("-_.+()")
_WINDOWS_RESERVED = frozenset(
    {"CON", "PRN", "AUX", "NUL", "CLOCK$", "CONIN$", "CONOUT$"}
    | {f"{port}{n}" for port in ("COM", "LPT") for n in (*"123456789", "¹", "²", "³")}
)
_UNDERSCORES = re.compile(r"_{2,}")
_DOTS = re.compile(r"\.{2,}")


def _truncate_utf8(text: str, max_bytes: int) -> str:
    """Cut ``text`` to at most ``max_bytes`` bytes of UTF-8 without splitting a character."""
    encoded = text.encode("utf-8")
    if len(encoded) <= max_bytes:
        return text
    return encoded[:max_bytes].decode("utf-8", errors="ignore")


def sanitize_name(text: str) -> str:
    """Turn free text into a safe file or folder name (may return ``""``); see module doc."""
    characters: list[str] = []
    for character in unicodedata.normalize("NFC", text):
        category = unicodedata.category(character)
        keep = (
            character in _KEPT_PUNCTUATION
            or category[0] in "LN"
            or (category[0] == "M" and bool(characters) and characters[-1] != "_")
        )
        characters.append(character if keep else "_")
    name = _DOTS.sub(".", _UNDERSCORES.sub("_", "".join(characters)))
    name = name.lstrip("._-").rstrip("._")
    name = _truncate_utf8(name, MAX_STEM_BYTES).rstrip("._")
    head, dot, tail = name.partition(".")
    if head.upper() in _WINDOWS_RESERVED:
        name = f"{head}_{dot}{tail}"
    return name


def unsafe_reason(name: str) -> str | None:
    """Why ``name`` cannot be a file stem as it stands (one phrase), None when it can."""
    if not name.strip():
        return "it is empty"
    if sanitize_name(name) == name:
        return None
    bad = sorted({c for c in name if c not in _KEPT_PUNCTUATION and not c.isalnum()})
    if bad:
        shown = ", ".join(repr(c) for c in bad[:5])
        return f"it holds {shown}; use letters, digits and - _ . + ( ) only (no path separator)"
    return (
        "no leading . _ or -, no trailing . or _, no runs of _ or ., at most "
        f"{MAX_STEM_BYTES} bytes, NFC form, not a Windows device name"
    )
