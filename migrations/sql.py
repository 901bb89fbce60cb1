"""SQL fragments more than one revision writes, so that they agree.

What these return is part of every revision that uses them: a change here
changes what those revisions do on databases not yet upgraded, so it must
keep meaning the same thing.

Both lower-case in the default collation, whatever collation a DBA gave the
column: ``lower()`` follows the collation it is given, and under a Turkish
one the I of ``MIKE@`` becomes a dotless i, under "C" ``JOSÉ@`` keeps its
capital É; the address would then match no contact and no company. (0002
refuses nondeterministic collations before it reads anything: under those,
equality itself is not what it looks like.)
"""

from __future__ import annotations


def canonical_email(expr: str) -> str:
    """SQL for the canonical form of an e-mail address: trimmed of spaces, tabs and line
    breaks, lower-case (as ``fleetos.contacts.canonical_email`` makes it)."""
    return f"lower(btrim(({expr})::text COLLATE \"default\", E' \\t\\r\\n'))"


def canonical_domain(expr: str) -> str:
    """SQL for a company's mail domain as the app looks it up: trimmed of spaces,
    lower-case."""
    return f'lower(btrim(({expr})::text COLLATE "default"))'
