"""Migration 0006_reliable_delivery: existing mail keeps working, and a commit wakes the worker."""

from __future__ import annotations

import psycopg

from tests.faults.conftest import sql
from tests.migrations.conftest import migrate, migrate_down
from tests.support.database import libpq_url

INSERT = (
    "INSERT INTO outbox_messages (kind, recipient, subject, text_body, status)"
    " VALUES ('sign_in', %s, 'Hello', 'body', %s)"
)


def test_pending_mail_gets_a_message_id_and_expired_mail_survives_a_downgrade(make_database):
    url = make_database()
    migrate(url, "0005_dashboard")
    sql(url, INSERT, "pending@example.org", "pending")
    sql(url, INSERT, "sent@example.org", "sent")

    migrate(url, "0006_reliable_delivery")

    rows = dict(sql(url, "SELECT recipient, email_message_id FROM outbox_messages"))
    assert rows["pending@example.org"].endswith("@fleetos.example>")
    assert rows["sent@example.org"] is None  # history: it was sent without one
    sql(url, "UPDATE outbox_messages SET status = 'expired' WHERE status = 'pending'")

    migrate_down(url, "0005_dashboard")
    assert sql(url, "SELECT status FROM outbox_messages ORDER BY 1") == [("failed",), ("sent",)]


def test_queued_mail_notifies_the_worker_at_commit(head_database):
    with psycopg.connect(libpq_url(head_database), autocommit=True) as listener:
        listener.execute("LISTEN fleetos_outbox")
        with psycopg.connect(libpq_url(head_database)) as writer:
            writer.execute(INSERT, ("a@example.org", "pending"))
            assert list(listener.notifies(timeout=0.5)) == []  # nothing before the commit
            writer.commit()
        assert [n.channel for n in listener.notifies(timeout=5, stop_after=1)] == ["fleetos_outbox"]
        # Mail made due again by hand wakes it too; a retry scheduled later does not.
        sql(head_database, "UPDATE outbox_messages SET next_attempt_at = now() + interval '1h'")
        assert list(listener.notifies(timeout=0.5)) == []
        sql(head_database, "UPDATE outbox_messages SET next_attempt_at = now()")
        assert len(list(listener.notifies(timeout=5, stop_after=1))) == 1
