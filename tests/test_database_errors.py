"""Which database errors count as the database being away (a 503, a paused worker, "run the
migration again once it is back") and which come back on every try, from real PostgreSQL."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from fleetos.database import is_unavailable
from fleetos.extensions import db
from tests.support.apps import database

TOO_BIG_FOR_AN_INDEX = """
CREATE TEMP TABLE notes (body text);
CREATE INDEX ON notes (body);
INSERT INTO notes SELECT string_agg(md5(g::text), '') FROM generate_series(1, 400) g;
"""
TIMED_OUT = "SET LOCAL statement_timeout = '10ms'; SELECT pg_sleep(2);"


@pytest.mark.parametrize(
    ("sql", "sqlstate", "away"),
    [
        (TOO_BIG_FOR_AN_INDEX, "54000", False),  # the same on every try: a 500, not a 503
        (TIMED_OUT, "57014", True),  # a database too slow right now: try again later
    ],
)
def test_only_errors_that_may_pass_count_as_the_database_being_away(app, sql, sqlstate, away):
    with database(app):
        with pytest.raises(DBAPIError) as caught:
            db.session.execute(text(sql))
        db.session.rollback()
    assert caught.value.orig.sqlstate == sqlstate
    assert is_unavailable(caught.value) is away
