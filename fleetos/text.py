"""Text people type: one rule for one-line fields and one for multi-line fields.

One-line fields (a request's title, vehicle and location, names, addresses)
end up in mail subjects and headers, so they hold one line: a line break or a
tab folds to a single space, as a browser does when a line break is pasted
into a one-line box. Multi-line fields (a description, a note) keep their
line breaks and tabs. Any other control character is refused, in either kind
of field, with a message that names it: none can be typed on a keyboard, NUL
cannot even be stored in PostgreSQL, and the bidirectional overrides reorder
what a reader sees (``gpj.exe`` shown as ``exe.jpg``).

Forms use these as filters and validators (a field error, everything typed
kept); the action core applies them again, so every channel obeys them.
"""

from __future__ import annotations

import unicodedata

from .domain_errors import Invalid

# Embeddings, overrides and isolates (not the marks LRM and RLM, which
# right-to-left text legitimately uses).
BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
MULTI_LINE_KEEPS = frozenset("\n\t")


def one_line(value: str) -> str:
    """``value`` on one line: every run of whitespace (line breaks too) is one space."""
    return " ".join(value.split())


def multi_line(value: str) -> str:
    """``value`` with its line breaks as ``\\n`` and no whitespace around it."""
    return value.replace("\r\n", "\n").replace("\r", "\n").strip()


def forbidden_character(value: str, *, multiline: bool = False) -> str | None:
    """The first character ``value`` may not hold, or None."""
    for character in value:
        if multiline and character in MULTI_LINE_KEEPS:
            continue
        if unicodedata.category(character) == "Cc" or character in BIDI_CONTROLS:
            return character
    return None


def describe_character(character: str) -> str:
    name = unicodedata.name(character, "")
    code = f"U+{ord(character):04X}"
    return f"{code} {name}" if name else code


def forbidden_message(character: str) -> str:
    return (
        f"This has an invisible control character ({describe_character(character)}) "
        "that FleetOS does not accept: remove it (retyping the text does) and send again."
    )


def clean_line(value: str | None, field: str) -> str:
    """One line of text for ``field``; Invalid names the control character it may not hold."""
    line = one_line(value or "")
    refused = forbidden_character(line)
    if refused is not None:
        raise Invalid(field, forbidden_message(refused))
    return line


def clean_text(value: str | None, field: str) -> str:
    """Multi-line text for ``field``; Invalid names the control character it may not hold."""
    text = multi_line(value or "")
    refused = forbidden_character(text, multiline=True)
    if refused is not None:
        raise Invalid(field, forbidden_message(refused))
    return text


def shorten(value: str, limit: int = 60) -> str:
    """``value`` as a message may quote it: at most ``limit`` characters."""
    return value if len(value) <= limit else value[: limit - 1] + "…"
