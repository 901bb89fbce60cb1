"""One unit of work: everything an action writes commits together, or nothing does.

Actions are wrapped in :func:`atomic` (Zulip's ``transaction.atomic`` in
FleetOS's terms): the change, its event and the mail it queues are one
transaction. An action called from inside another joins the outer unit of
work; only the outermost commits. Nothing else in FleetOS commits or rolls
back on its own account (the outbox worker and the error pages aside).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import ParamSpec, TypeVar

from .extensions import db

P = ParamSpec("P")
R = TypeVar("R")

_DEPTH = "fleetos.unit_of_work.depth"


@contextmanager
def unit_of_work() -> Iterator[None]:
    """Commit when the block finishes, roll back when it raises (and re-raise)."""
    info = db.session.info
    depth = info.get(_DEPTH, 0)
    info[_DEPTH] = depth + 1
    try:
        yield
    except BaseException:
        if depth == 0:
            db.session.rollback()
        raise
    else:
        if depth == 0:
            db.session.commit()
    finally:
        info[_DEPTH] = depth


def atomic(action: Callable[P, R]) -> Callable[P, R]:
    """Run ``action`` as one unit of work."""

    @functools.wraps(action)
    def wrapped(*args: P.args, **kwargs: P.kwargs) -> R:
        with unit_of_work():
            return action(*args, **kwargs)

    return wrapped
