"""Text a platform sends that ends up where people read it (a device's NAME and NOTES).

A device name is whatever somebody typed into a platform's console. Characters that print as
nothing, move the line or reorder what follows (control characters, bidi overrides, zero-width
characters) would make Sensor Data show one name and hold another; lone surrogates cannot be
encoded at all. They are removed here, and what is left is bounded.
"""

from __future__ import annotations

import unicodedata

MAX_NAME_LENGTH = 128  # a name is a label in a list, not a document
MAX_TEXT_LENGTH = 256  # models, profile names, tag and attribute values

# Unicode general categories that never belong in a label: Cc control (C0, DEL, C1), Cf format
# (bidi embeddings, overrides and isolates, zero-width space/joiners, BOM, soft hyphen), Cs lone
# surrogates, Co private use, Cn unassigned (and noncharacters such as U+FFFF).
_INVISIBLE = frozenset({"Cc", "Cf", "Cs", "Co", "Cn"})
# Control characters that separate words become a space, as do all Z* (space, line, paragraph).
_SPACING_CONTROLS = frozenset("\t\n\v\f\r\x1c\x1d\x1e\x1f\x85")


def _kept(char: str) -> str:
    if char in _SPACING_CONTROLS:
        return " "
    category = unicodedata.category(char)
    if category.startswith("Z"):
        return " "
    return "" if category in _INVISIBLE else char


def clean_text(value: str | None, max_length: int = MAX_TEXT_LENGTH) -> str | None:
    """`value` without invisible or reordering characters, its whitespace collapsed to single
    spaces, NFC-normalised and cut to `max_length` characters; None when nothing is left."""
    if value is None:
        return None
    kept = "".join(_kept(c) for c in value)
    text = " ".join(unicodedata.normalize("NFC", kept).split())
    text = text[:max_length].rstrip()
    return text or None


def is_clean(value: str) -> bool:
    """Whether `value` is printable text as it stands: nothing clean_text would change."""
    return clean_text(value, max_length=len(value) or 1) == value
