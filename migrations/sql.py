"""SQL fragments more than one revision writes, so that they agree.

What these return is part of every revision that uses them: a change here
changes what those revisions do on databases not yet upgraded, so it must
keep meaning the same thing.
"""

from __future__ import annotations


def canonical_email(expr: str) -> str:
    """SQL for the canonical form of an e-mail address: trimmed of spaces, tabs and line
    breaks, lower-case (as ``fleetos.contacts.canonical_email`` makes it).

    In the default collation whatever a DBA gave the v1 column: under a
    nondeterministic one (case-insensitive ICU, say) PostgreSQL refuses the
    substring searches that take an address's domain apart.
    """
    return f"lower(btrim({expr} COLLATE \"default\", E' \\t\\r\\n'))"
