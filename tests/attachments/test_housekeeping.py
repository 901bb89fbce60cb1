"""Issue 16: storage and metadata stay in step.

A file written to storage whose transaction then failed is removed by
`flask fleetos attachments gc` (here the failure is real: the database refuses
the attachment rows), while files in use, and files a refused form still keeps,
stay; a collector never deletes a file that a transaction in flight is attaching.
`flask fleetos verify` reports attachments whose file is missing.
"""

from __future__ import annotations

import threading
import time
import uuid
from datetime import timedelta
from pathlib import Path

import psycopg

from fleetos.actions import attachments as act_files
from fleetos.actions.attachments import IncomingFile, collect_garbage, take_in
from fleetos.attachments.storage import current_storage, key_for
from fleetos.extensions import db
from fleetos.models import ServiceRequest
from fleetos.unit_of_work import unit_of_work
from tests.attachments.test_uploads import KEEP, attachments, note, upload
from tests.support import files
from tests.support.apps import database, flask_cli
from tests.support.database import libpq_url

NOW = timedelta(0)


def stored_keys(app) -> set[str]:
    with app.app_context():
        return {stored.key for stored in current_storage().stored()}


def refuse_attachment_rows(database_url: str) -> None:
    """A real fault: from now on the database refuses every new attachment row."""
    with psycopg.connect(libpq_url(database_url), autocommit=True) as conn:
        conn.execute(
            "CREATE FUNCTION refuse() RETURNS trigger AS $$ BEGIN"
            " RAISE EXCEPTION 'disk quota exceeded (test)'; END $$ LANGUAGE plpgsql;"
            "CREATE TRIGGER refuse BEFORE INSERT ON attachments"
            " FOR EACH ROW EXECUTE FUNCTION refuse()"
        )


def test_a_failed_transaction_leaves_files_that_gc_removes(app, as_, world, head_database):
    bob = as_("bob")
    note(bob, world.request_id, files=upload((files.pdf(), "kept.pdf")))
    (kept,) = attachments(app)

    refuse_attachment_rows(head_database)
    response = note(
        bob, world.request_id, body="and a photo", files=upload((files.phone_jpeg(), "lost.jpg"))
    )
    assert response.status_code == 500 and "Traceback" not in response.text
    assert len(attachments(app)) == 1  # the note and its rows rolled back together...
    orphans = stored_keys(app) - {kept.sha256}
    assert len(orphans) == 2  # ... but the photo and its thumbnail were written first

    with database(app):
        collected = collect_garbage(NOW)
    assert set(collected.deleted) == orphans
    assert stored_keys(app) == {kept.sha256}
    assert (
        as_("dana")
        .client.get(f"/requests/{world.request_id}/attachments/{kept.attachment_id}")
        .data
        == files.pdf()
    )


def test_gc_leaves_what_a_refused_form_still_keeps(app, as_, world):
    response = note(
        as_("bob"), world.request_id, body="x" * 6000, files=upload((files.pdf(), "q.pdf"))
    )
    assert response.status_code == 422 and KEEP.findall(response.text)
    with database(app):
        collected = collect_garbage(timedelta(hours=24))
    assert collected.deleted == [] and collected.kept_young == 1
    assert len(stored_keys(app)) == 1


def test_gc_waits_for_a_transaction_that_attaches_the_same_bytes(app, world):
    """The file is old and unreferenced when the collector looks; meanwhile a transaction
    is taking in the same bytes. The collector waits for it, then sees them in use."""
    photo = files.pdf("same bytes")
    with database(app):
        key = current_storage().put(photo)  # left over by some earlier failed upload
    attaching, release = threading.Event(), threading.Event()
    problems: list[BaseException] = []

    def attach_in_a_slow_transaction() -> None:
        try:
            with app.app_context():
                from fleetos.models import Contact, EventLog

                with unit_of_work():
                    contact = db.session.get(Contact, world.contacts["bob"])
                    service_request = db.session.get(ServiceRequest, world.request_id)
                    taken = take_in([IncomingFile("same.pdf", photo)], service_request)
                    event = EventLog(event_type="request.note", target_request_id=world.request_id)
                    db.session.add(event)
                    act_files.attach(
                        taken.held,
                        service_request=service_request,
                        contact=contact,
                        event=event,
                        channel="web",
                    )
                    attaching.set()
                    release.wait(30)
                db.session.remove()
        except BaseException as exc:  # reported by the test below
            problems.append(exc)
            attaching.set()

    writer = threading.Thread(target=attach_in_a_slow_transaction)
    writer.start()
    assert attaching.wait(30) and not problems
    result: list[act_files.Collected] = []

    def collect() -> None:
        with app.app_context():
            result.append(collect_garbage(NOW))
            db.session.remove()

    collector = threading.Thread(target=collect)
    collector.start()
    collector.join(1.5)
    assert collector.is_alive()  # waiting on the key's lock, not deleting
    release.set()
    writer.join(30)
    collector.join(30)
    assert not problems and result
    assert key not in result[0].deleted
    assert key in stored_keys(app)
    assert [a.sha256 for a in attachments(app)] == [key]


def test_gc_from_the_command_line(app, as_, world, head_database):
    directory = app.config["ATTACHMENT_DIR"]
    with database(app):
        orphan = current_storage().put(b"%PDF-1.4 nobody's")
    env = {"ATTACHMENT_DIR": directory, "ATTACHMENT_KEEP_SECONDS": "1"}
    refused = flask_cli(
        head_database, "fleetos", "attachments", "gc", "--older-than", "0.0001", **env
    )
    assert refused.returncode == 1 and "less than ATTACHMENT_KEEP_SECONDS" in refused.stderr
    time.sleep(1.1)
    dry = flask_cli(
        head_database, "fleetos", "attachments", "gc", "--older-than", "0.0003", "--dry-run", **env
    )
    assert dry.returncode == 0 and f"would delete {orphan}" in dry.stdout
    assert orphan in stored_keys(app)
    done = flask_cli(head_database, "fleetos", "attachments", "gc", "--older-than", "0.0003", **env)
    assert done.returncode == 0, done.stderr
    assert f"deleted {orphan}" in done.stdout and "1 files deleted" in done.stdout
    assert orphan not in stored_keys(app)


def test_verify_reports_attachments_whose_file_is_missing(app, as_, world, head_database):
    note(
        as_("bob"),
        world.request_id,
        files=upload((files.pdf(), "quote.pdf"), (files.phone_jpeg(), "a.jpg")),
    )
    env = {"ATTACHMENT_DIR": app.config["ATTACHMENT_DIR"]}
    fine = flask_cli(head_database, "fleetos", "verify", **env)
    assert "every attachment's file is in storage (2 attachments)" in fine.stdout

    quote = next(a for a in attachments(app) if a.filename == "quote.pdf")
    key = quote.sha256
    Path(app.config["ATTACHMENT_DIR"], key[:2], key[2:4], key).unlink()
    broken = flask_cli(head_database, "fleetos", "verify", **env)
    assert broken.returncode == 1
    assert (
        "FAIL" in broken.stdout
        and "1 attachments whose file is missing from storage" in broken.stdout
    )
    assert f"{quote.attachment_id} ('quote.pdf' on request {world.request_id})" in broken.stdout


def test_the_same_bytes_twice_are_stored_once(app, as_, world):
    bob = as_("bob")
    for _ in range(2):
        note(bob, world.request_id, files=upload((files.pdf(), "quote.pdf")))
    assert len(attachments(app)) == 2
    assert stored_keys(app) == {key_for(files.pdf())}
    assert uuid.UUID(str(attachments(app)[0].attachment_id))
