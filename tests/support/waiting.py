"""Waiting in tests for what another process or thread does, with a deadline."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def eventually(check: Callable[[], T], timeout: float, message: str) -> T:
    """Poll ``check`` until it returns something truthy, and return that; fail with
    ``message`` if it has not within ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"{message} (within {timeout}s)")
        time.sleep(0.05)
