"""What fits one SMS segment: 160 characters of the GSM 03.38 alphabet (GSM-7).

A character outside GSM-7 (an emoji, a Polish "ł") would switch the whole
message to UCS-2, where a segment holds 70 characters; the extension
characters (``€ [ ] { } ~ ^ | \\``) take two septets each. The ``gsm0338``
codec does the counting: its encoding has one byte per septet.
"""

from __future__ import annotations

import unicodedata

import gsm0338  # noqa: F401  (registers the "gsm03.38" codec)

SEGMENT = 160
CODEC = "gsm03.38"


def septets(text: str) -> int | None:
    """How many GSM-7 septets ``text`` takes; None if it is not GSM-7 at all."""
    try:
        return len(text.encode(CODEC))
    except UnicodeEncodeError:
        return None


def fits_one_segment(text: str) -> bool:
    length = septets(text)
    return length is not None and length <= SEGMENT


def to_gsm(text: str) -> str:
    """``text`` in GSM-7: each other character as its unaccented letter (ł -> l, ő -> o)
    where it has one, else ``?``; typographic quotes and dashes as their plain forms."""
    out: list[str] = []
    for character in text:
        if septets(character) is not None:
            out.append(character)
            continue
        plain = PLAIN.get(character)
        if plain is None:
            decomposed = unicodedata.normalize("NFKD", character)
            plain = "".join(c for c in decomposed if not unicodedata.combining(c))
        out.append(plain if plain and septets(plain) is not None else "?")
    return "".join(out)


# Letters and marks NFKD does not take apart, as people would write them on a plain keyboard.
PLAIN = {
    "\u0142": "l",  # ł
    "\u0141": "L",  # Ł
    "\u0111": "d",  # đ
    "\u0110": "D",  # Đ
    "\u0153": "oe",  # œ
    "\u0152": "OE",  # Œ
    "\u2018": "'",  # left single quotation mark
    "\u2019": "'",  # right single quotation mark, the apostrophe phones type
    "\u201a": ",",
    "\u201c": '"',
    "\u201d": '"',
    "\u201e": '"',
    "\u2013": "-",  # en dash
    "\u2014": "-",  # em dash
    "\u2026": "...",  # ellipsis
    "\u00a0": " ",  # no-break space
    "\t": " ",
}
