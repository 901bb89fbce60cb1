"""ContactService and the SQL get_or_create_contact: one canonical form, race-safe."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable

import psycopg
import pytest
from sqlalchemy import text

from fleetos.contacts import ContactService, InvalidContact
from fleetos.events import EventLogService
from fleetos.extensions import db
from fleetos.models import Company, Contact, EventLog
from tests.support.apps import app_for
from tests.support.database import libpq_url

SAME_EVERYWHERE = [
    (" Dana.Dispatch@Acme-Fleet.com ", "dana.dispatch@acme-fleet.com"),
    ("BOB@BOBSREPAIR.COM", "bob@bobsrepair.com"),
    ("\tops@acme-fleet.com\n", "ops@acme-fleet.com"),
    ("+44 20 7946 0958", "+442079460958"),
    ("+1 (415) 555-2671", "+14155552671"),
    ("0044 20 7946 0958", "+442079460958"),
    ("+49 30 901820", "+4930901820"),
]


@pytest.mark.parametrize(("raw", "canonical"), SAME_EVERYWHERE)
def test_python_canonical_form(app_context, raw, canonical):
    assert ContactService.canonicalise(raw).value == canonical


def test_national_phone_numbers_use_the_default_region(app_context):
    assert ContactService.canonicalise("020 7946 0958").value == "+442079460958"
    assert (
        ContactService.canonicalise("(415) 555-2671", default_region="US").value == "+14155552671"
    )


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("", "Enter an e-mail address or phone number"),
        ("dana@", "not a valid e-mail address"),
        ("dana@@acme.com", "not a valid e-mail address"),
        ("12", "not a valid phone number"),
        ("call me maybe", "not a valid phone number"),
    ],
)
def test_bad_input_is_a_domain_error_not_a_database_error(app_context, raw, message):
    with pytest.raises(InvalidContact, match=message):
        ContactService.get_or_create(raw, company_id=uuid.uuid4())


@pytest.fixture
def company(app_context) -> Company:
    company = Company(name="Acme Fleet", company_type="fleet", email_domain="acme-fleet.com")
    db.session.add(company)
    db.session.commit()
    return company


def test_sql_function_canonicalises_like_python(app_context, company):
    for raw, canonical in SAME_EVERYWHERE:
        contact_type = "email" if "@" in raw else "phone"
        contact_id = db.session.scalar(
            text("SELECT get_or_create_contact(:v, :c, :t)"),
            {"v": raw, "c": company.company_id, "t": contact_type},
        )
        value = db.session.get(Contact, contact_id).contact_value
        assert value == canonical == ContactService.canonicalise(raw).value
    db.session.rollback()


def test_sql_function_refuses_what_python_refuses(app_context, company):
    for raw, contact_type in [("dana@", "email"), ("020 7946 0958", "phone"), ("x", "fax")]:
        with pytest.raises(Exception, match=r"not an e-mail address|international format|must be"):
            db.session.execute(
                text("SELECT get_or_create_contact(:v, :c, :t)"),
                {"v": raw, "c": company.company_id, "t": contact_type},
            )
        db.session.rollback()


def test_get_or_create_creates_then_finds(app_context, company):
    contact, created = ContactService.get_or_create(
        " Dana@Acme-Fleet.com", company_id=company.company_id, display_name="Dana"
    )
    db.session.commit()
    assert created and contact.contact_value == "dana@acme-fleet.com"
    first_seen = contact.last_seen_at

    other = Company(name="Elsewhere", company_type="fleet")
    db.session.add(other)
    db.session.flush()
    again, created = ContactService.get_or_create(
        "dana@acme-fleet.com", company_id=other.company_id
    )
    db.session.commit()
    assert not created
    assert again.contact_id == contact.contact_id
    assert again.company_id == company.company_id  # a contact keeps its company
    assert again.display_name == "Dana"
    assert again.last_seen_at >= first_seen
    assert ContactService.find("DANA@acme-fleet.com ").contact_id == contact.contact_id
    assert ContactService.find("not an address") is None


def test_last_active_is_the_most_recently_seen(app_context, company):
    for value, hour in [
        ("a@acme-fleet.com", 9),
        ("b@acme-fleet.com", 11),
        ("c@acme-fleet.com", 10),
    ]:
        db.session.add(
            Contact(
                company_id=company.company_id,
                contact_value=value,
                contact_type="email",
                last_seen_at=f"2025-06-01 {hour}:00",
            )
        )
    db.session.commit()
    assert ContactService.last_active(company.company_id).contact_value == "b@acme-fleet.com"
    assert ContactService.last_active(uuid.uuid4()) is None


def test_event_log_records_who_did_what(app_context, company):
    contact, _ = ContactService.get_or_create("dana@acme-fleet.com", company_id=company.company_id)
    EventLogService.record(
        "contact.signed_in",
        company_id=company.company_id,
        contact_id=contact.contact_id,
        via="test",
    )
    db.session.commit()
    event = db.session.scalar(db.select(EventLog))
    assert (event.event_type, event.contact_id, event.metadata_) == (
        "contact.signed_in",
        contact.contact_id,
        {"via": "test"},
    )
    assert event.created_at is not None


def run_concurrently(n: int, work: Callable[[], object]) -> list[object]:
    """Start ``n`` threads together (a barrier) and return what each returned."""
    barrier = threading.Barrier(n)
    results: list[object] = [None] * n
    errors: list[BaseException] = []

    def target(i: int) -> None:
        try:
            barrier.wait()
            results[i] = work()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=target, args=(i,)) for i in range(n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors, errors
    return results


def test_ten_threads_get_or_create_one_address_in_python(head_database):
    with app_for(head_database, SQLALCHEMY_ENGINE_OPTIONS={"pool_size": 12}) as app:
        company = Company(name="Acme Fleet", company_type="fleet")
        db.session.add(company)
        db.session.commit()
        company_id = company.company_id

        def work() -> tuple[uuid.UUID, bool]:
            with app.app_context():  # a session of its own per thread
                contact, created = ContactService.get_or_create(
                    "Race@Acme-Fleet.com", company_id=company_id
                )
                db.session.execute(text("SELECT pg_sleep(0.05)"))  # overlap the transactions
                db.session.commit()
                return contact.contact_id, created

        results = run_concurrently(10, work)
    assert len({contact_id for contact_id, _ in results}) == 1
    assert sum(created for _, created in results) == 1
    with psycopg.connect(libpq_url(head_database)) as conn:
        assert conn.execute("SELECT count(*) FROM contacts").fetchone() == (1,)


def test_ten_threads_call_the_sql_function_for_one_address(head_database):
    with psycopg.connect(libpq_url(head_database), autocommit=True) as conn:
        company_id = conn.execute(
            "INSERT INTO companies (name, company_type) VALUES ('Acme', 'fleet')"
            " RETURNING company_id"
        ).fetchone()[0]

    def work() -> uuid.UUID:
        with psycopg.connect(libpq_url(head_database)) as conn:
            # Hold the transaction open a moment so the calls truly overlap.
            contact_id = conn.execute(
                "SELECT get_or_create_contact(' Race@Acme-Fleet.com', %s, 'email')", (company_id,)
            ).fetchone()[0]
            conn.execute("SELECT pg_sleep(0.05)")
            conn.commit()
            return contact_id

    results = run_concurrently(10, work)
    assert len(set(results)) == 1
    with psycopg.connect(libpq_url(head_database)) as conn:
        assert conn.execute("SELECT contact_value FROM contacts").fetchall() == [
            ("race@acme-fleet.com",)
        ]
