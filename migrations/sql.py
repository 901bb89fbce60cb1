"""SQL fragments more than one revision writes, so that they agree.

What these return is part of every revision that uses them: a change here
changes what those revisions do on databases not yet upgraded, so it must
keep meaning the same thing.
"""

from __future__ import annotations


def canonical_email(expr: str) -> str:
    """SQL for the canonical form of an e-mail address: trimmed of spaces, tabs and line
    breaks, lower-case (as ``fleetos.contacts.canonical_email`` makes it)."""
    return f"lower(btrim({expr}, E' \\t\\r\\n'))"
