"""What an action refuses, and why: domain errors, with no HTTP in them.

Actions raise these; each channel maps them to its own answer once (the web in
``errors.py``: 404, 403, 409, 422; a mail or SMS reply, later, in a reply).
The message is for the person who acted.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any


class DomainError(Exception):
    """A refusal the person who acted can read."""

    default_message = "That cannot be done."

    def __init__(self, message: str | None = None) -> None:
        self.message = message or self.default_message
        super().__init__(self.message)


class NotFound(DomainError):
    """Nothing there for this contact: it does not exist, or it is another company's.

    The two are never told apart, so an outsider learns nothing.
    """

    default_message = "There is no such request."


class Forbidden(DomainError):
    """The contact sees it, but may not do this to it."""

    default_message = "You cannot do that here."


class Conflict(DomainError):
    """The state moved on (someone acted first, or it is closed): nothing was changed."""


class Invalid(DomainError):
    """Input the person can correct; ``field`` names the input at fault.

    ``errors`` holds a message per field when several are wrong at once.
    ``held`` is what the action had already taken in before it refused (files
    checked and stored), for the channel to offer back, so nothing is sent twice.
    """

    def __init__(
        self,
        field: str | None,
        message: str,
        *,
        errors: Mapping[str, str] | None = None,
        held: Sequence[Any] = (),
    ) -> None:
        super().__init__(message)
        self.field = field
        self.errors: dict[str, str] = dict(errors or ({field: message} if field else {}))
        self.held: tuple[Any, ...] = tuple(held)


class TooMany(DomainError):
    """Too much in too short a time (a rate limit): nothing was done.

    ``retry_after`` is how many seconds until trying again may work.
    """

    def __init__(self, message: str, *, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after
