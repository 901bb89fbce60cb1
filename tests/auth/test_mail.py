"""Mail that is never lost: outbox, retries, several workers, daily links."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

from sqlalchemy import select, update

from fleetos.actions.digest import send_daily_links
from fleetos.extensions import db
from fleetos.messaging.unlinked import OwnLink
from fleetos.models import Company, Contact, OutboxMessage, ServiceRequest
from fleetos.outbox import deliver_due, queue_mail
from tests.mailserver import link_in, text_body
from tests.support.apps import database, flask_cli
from tests.support.waiting import eventually
from tests.support.web import Browser


def outbox(app) -> list[OutboxMessage]:
    with database(app):
        messages = list(
            db.session.scalars(select(OutboxMessage).order_by(OutboxMessage.message_id))
        )
        db.session.expunge_all()
        return messages


def make_due_now(app) -> None:
    with database(app):
        db.session.execute(update(OutboxMessage).values(next_attempt_at=datetime(2000, 1, 1)))
        db.session.commit()


def test_smtp_down_then_up_delivers_exactly_once(app, browser, acme, smtp):
    smtp.stop()
    assert browser.ask_for_link("dana@acme-fleet.com").status_code == 200
    with database(app):
        report = deliver_due()
    assert (report.sent, report.retrying) == (0, 1)
    [message] = outbox(app)
    assert message.status == "pending" and message.attempts == 1
    assert message.next_attempt_at > datetime.now(UTC).replace(tzinfo=None)
    assert "Connection refused" in message.last_error or "Errno" in message.last_error

    smtp.start()
    with database(app):
        assert deliver_due().total == 0  # backing off: not due yet
    make_due_now(app)
    with database(app):
        assert deliver_due().sent == 1
        assert deliver_due().total == 0
    assert len(smtp.to("dana@acme-fleet.com")) == 1
    [message] = outbox(app)
    assert message.status == "sent" and message.sent_at is not None
    assert message.text_body is None and message.html_body is None  # the link is not kept
    assert browser.use_link(urlsplit(link_in(smtp.messages[0])).path).status_code == 303


def test_mail_after_the_response_goes_on_a_background_thread(make_app, acme, smtp):
    """MAIL_DELIVER_AFTER_RESPONSE: a process without a worker still sends, off the request."""
    app = make_app(MAIL_DELIVER_AFTER_RESPONSE=True)
    browser = Browser(app.test_client(), smtp)
    smtp.stop()  # a dead SMTP server cannot make the page fail or wait
    response = browser.ask_for_link("dana@acme-fleet.com")
    assert response.status_code == 200
    assert outbox(app)[0].attempts == 0  # the response did not wait for a try
    response.close()  # the server closes the response once it is sent
    [message] = eventually(
        lambda: [m for m in outbox(app) if m.attempts == 1], 10, "no message tried once"
    )
    assert message.status == "pending"  # tried, refused, will be retried

    smtp.start()
    response = browser.ask_for_link("olu@acme-fleet.com")
    assert outbox(app)[-1].status == "pending"  # not sent while the response is open
    response.close()
    assert smtp.wait_for(1) and smtp.to("olu@acme-fleet.com")
    eventually(lambda: outbox(app)[-1].status == "sent", 10, "the message was never sent")


def test_several_workers_send_each_message_once(app, smtp):
    with app.test_request_context():
        for i in range(30):
            queue_mail("unknown_address", f"person{i}@example.org", f"Message {i}", signup_url="x")
        db.session.commit()
    barrier = threading.Barrier(3)

    def worker() -> None:
        with app.app_context():
            barrier.wait()
            deliver_due(limit=100)
            db.session.remove()

    threads = [threading.Thread(target=worker) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    subjects = sorted(m["Subject"] for m in smtp.wait_for(30))
    assert subjects == sorted(f"Message {i}" for i in range(30))
    assert {m.status for m in outbox(app)} == {"sent"}


def test_a_message_that_never_goes_through_is_given_up_after_max_attempts(make_app, smtp):
    app = make_app(MAIL_MAX_ATTEMPTS=2)
    smtp.stop()
    with app.test_request_context():
        queue_mail("unknown_address", "x@example.org", "Hello", signup_url="x")
        db.session.commit()
    with database(app):
        assert deliver_due().retrying == 1
    make_due_now(app)
    with database(app):
        assert deliver_due().failed == 1
    assert outbox(app)[0].status == "failed"


def test_deliver_command_sends_pending_mail(app, head_database, smtp):
    with app.test_request_context():
        queue_mail("unknown_address", "cli@example.org", "From the worker", signup_url="x")
        db.session.commit()
    result = flask_cli(
        head_database,
        "fleetos",
        "deliver",
        MAIL_SERVER="127.0.0.1",
        MAIL_PORT=str(smtp.port),
        MAIL_USE_TLS="false",
    )
    assert result.returncode == 0, result.stderr
    assert "sent 1, retrying later 0, failed 0" in result.stdout
    assert [m["To"] for m in smtp.messages] == ["cli@example.org"]


def test_production_never_prints_mail_to_the_console(make_app, capsys):
    app = make_app(MAIL_SERVER=None, FLEETOS_ENV="production")
    with app.test_request_context():
        queue_mail("unknown_address", "x@example.org", "Hello", signup_url="secret-ish")
        db.session.commit()
    with database(app):
        assert deliver_due().retrying == 1
    assert "secret-ish" not in capsys.readouterr().err


def test_development_prints_mail_when_no_smtp_server_is_set(make_app, capsys):
    app = make_app(MAIL_SERVER=None)
    with app.test_request_context():
        queue_mail(
            "unknown_address",
            "x@example.org",
            "Hello",
            signup_url=OwnLink("http://here/auth/signup"),  # FleetOS's own links stay links
        )
        db.session.commit()
    with database(app):
        assert deliver_due().sent == 1
    printed = capsys.readouterr().err
    assert "To: x@example.org" in printed and "http://here/auth/signup" in printed


def seed_suppliers(app) -> dict[str, Contact]:
    now = datetime.now(UTC).replace(tzinfo=None)
    with database(app):
        fleet = Company(name="Acme Fleet", company_type="fleet")
        bobs = Company(name="Bob's Truck Repair", company_type="supplier")
        db.session.add_all([fleet, bobs])
        db.session.flush()
        people = {
            "bob": Contact(
                company_id=bobs.company_id,
                contact_value="bob@bobsrepair.com",
                contact_type="email",
                display_name="Bob",
                last_seen_at=now - timedelta(days=2),
            ),
            "old": Contact(
                company_id=bobs.company_id,
                contact_value="old@bobsrepair.com",
                contact_type="email",
                last_seen_at=now - timedelta(days=45),
            ),
            "dana": Contact(
                company_id=fleet.company_id,
                contact_value="dana@acme-fleet.com",
                contact_type="email",
                last_seen_at=now,
            ),
        }
        db.session.add_all(people.values())
        for status in ["new", "new", "acknowledged", "in_progress", "completed"]:
            db.session.add(
                ServiceRequest(
                    vehicle="Unit 1",
                    title=status,
                    status=status,
                    fleet_company_id=fleet.company_id,
                    supplier_company_id=bobs.company_id,
                )
            )
        db.session.commit()
        for person in people.values():
            db.session.refresh(person)
        db.session.expunge_all()
        return people


def test_daily_links_go_to_active_supplier_contacts_once_a_day(app, browser, smtp):
    seed_suppliers(app)
    with app.test_request_context():
        assert send_daily_links() == 1
        assert send_daily_links() == 0  # a second run the same day sends nothing
        deliver_due()
    [message] = smtp.messages
    assert message["To"] == "bob@bobsrepair.com"
    assert message["Subject"] == "FleetOS today: 4 open requests for Bob's Truck Repair"
    body = text_body(message)
    assert "new:          2" in body and "in progress:  1" in body
    response = browser.use_link(urlsplit(link_in(message)).path)
    assert response.status_code == 303 and response.headers["Location"] == "/dashboard"

    with app.test_request_context():  # tomorrow is another day
        assert send_daily_links(now=datetime.now(UTC).replace(tzinfo=None) + timedelta(days=1)) == 1


def test_send_daily_links_command_twice(app, head_database):
    seed_suppliers(app)
    first = flask_cli(head_database, "fleetos", "send-daily-links")
    second = flask_cli(head_database, "fleetos", "send-daily-links")
    assert first.stdout.strip() == "queued 1 daily links"
    assert second.stdout.strip() == "no daily links to queue today"
