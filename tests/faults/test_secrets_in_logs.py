"""Issue 10, item 7 (logs): a failing insert of an outbox row logs no part of the message.

As reported, a database error logged the outbox row's parameters: recipient,
subject, body, and about 150 characters of a sign-in token. Here the insert of a
sign-in message fails on purpose, under gunicorn with production logging, and
the log must hold none of it: not the address, not the body, not a fragment of
the token (an itsdangerous token's payload starts ``eyJ``, base64 for ``{"``).
Two ways to fail: an error raised by the database (SQLAlchemy would quote the
parameters), and a check violation (PostgreSQL's DETAIL quotes the whole row).
"""

from __future__ import annotations

import pytest

from fleetos.extensions import db
from fleetos.outbox import queue_mail
from tests.faults.conftest import Client, production_env, seed_contact, sql
from tests.support.apps import app_for

DANA = "dana@acme-fleet.example"
SECRETS = (DANA, "eyJ", "The link works once", "/auth/link/")

FAILURES = {
    "raised": """
        CREATE FUNCTION refuse_mail() RETURNS trigger AS $$
        BEGIN RAISE EXCEPTION 'outbox is closed'; END; $$ LANGUAGE plpgsql;
        CREATE TRIGGER refuse_mail BEFORE INSERT ON outbox_messages
            FOR EACH ROW EXECUTE FUNCTION refuse_mail()
    """,
    "check-violation": """
        ALTER TABLE outbox_messages ADD CONSTRAINT refuse_mail CHECK (kind = 'none') NOT VALID
    """,
}


@pytest.mark.slow
@pytest.mark.parametrize("failure", FAILURES)
def test_a_failing_outbox_insert_logs_nothing_of_the_message(
    head_database, smtp, start_web, failure
):
    seed_contact(head_database, DANA)
    sql(head_database, FAILURES[failure])
    web = start_web(production_env(head_database, MAIL_SERVER="127.0.0.1", MAIL_PORT=smtp.port))

    answer = Client(web).post("/auth/login", {"email": DANA})

    assert answer.status == 500
    log = web.process.log()
    assert "unhandled error, request id" in log  # the failure is logged, with its traceback
    assert "Traceback" in log and "INSERT INTO outbox_messages" in log
    for secret in SECRETS:
        assert secret not in log, (secret, log)


def test_database_errors_carry_no_parameters(head_database):
    """``hide_parameters``: the exception itself quotes no value, whoever logs it."""
    sql(head_database, FAILURES["raised"])
    with app_for(head_database) as app, app.test_request_context():
        with pytest.raises(Exception) as caught:
            queue_mail(
                "sign_in",
                DANA,
                "Your FleetOS sign-in link",
                link="http://fleetos.test/auth/link/eyJzZWNyZXQiOiJ0b2tlbiJ9.abc.def",
                company={"name": "Acme Fleet"},
                minutes=15,
            )
        db.session.rollback()
    message = str(caught.value)
    assert "SQL parameters hidden" in message
    for secret in SECRETS:
        assert secret not in message
