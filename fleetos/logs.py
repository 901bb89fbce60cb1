"""Logging that never shows a link's token."""

from __future__ import annotations

import logging
import re

from flask import Flask

TOKEN_IN_PATH = re.compile(r"(/auth/link/)[^/\s?\"']+")
REDACTED = r"\1[redacted]"


def redact(text: str) -> str:
    return TOKEN_IN_PATH.sub(REDACTED, text)


class RedactTokens(logging.Filter):
    """Replace link tokens in a record's message and arguments (access logs include paths)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = redact(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(redact(a) if isinstance(a, str) else a for a in record.args)
        elif isinstance(record.args, dict):
            record.args = {k: redact(v) if isinstance(v, str) else v for k, v in record.args.items()}
        return True


LOGGERS_WITH_PATHS = ("werkzeug", "gunicorn.access", "gunicorn.error", "fleetos")


def register_logging(app: Flask) -> None:
    token_filter = RedactTokens()
    for name in (*LOGGERS_WITH_PATHS, app.logger.name):
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactTokens) for f in logger.filters):
            logger.addFilter(token_filter)
