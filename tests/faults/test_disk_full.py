"""The database's disk fills up: writes fail cleanly, reads go on, and it heals by itself.

A private PostgreSQL 15 keeps FleetOS's database in a tablespace on a small
tmpfs, which the test fills to the last byte (the shared server is never
touched). PostgreSQL then refuses to extend a table (SQLSTATE 53100, "No space
left on device"). An action that writes is a 503 "briefly unavailable" (nothing
half-saved, one log line), pages that only read go on working, the delivery
worker still sends what was queued before, and once space is freed everything
works again with no restart.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from tests.faults.conftest import Client, outbox, production_env, seed_contact, sql
from tests.faults.servers import PrivatePostgres
from tests.support.apps import app_for
from tests.support.waiting import eventually

pytestmark = pytest.mark.slow

DANA = "dana@acme-fleet.example"


def cannot_run_here() -> str | None:
    reason = PrivatePostgres.available()
    if reason:
        return reason
    if os.geteuid() != 0:
        return "mounting a small tmpfs to fill needs root"
    return None


@pytest.fixture
def small_disk():
    """A private PostgreSQL whose database ``fleetos`` lives on a 48 MB tmpfs of its own."""
    reason = cannot_run_here()
    if reason:
        pytest.skip(reason)
    # Not pytest's tmp_path: PostgreSQL's own user must be able to reach it.
    base = Path(tempfile.mkdtemp(prefix="fleetos-disk-full-"))
    base.chmod(0o755)
    server = PrivatePostgres(base / "pg").init()
    server.start()
    mount = base / "small-disk"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=48m", "tmpfs", str(mount)], check=True)
    try:
        space = mount / "tablespace"
        space.mkdir()
        server.own(space)
        sql(server.url(), f"CREATE TABLESPACE small LOCATION '{space}'")
        sql(server.url(), "CREATE DATABASE fleetos TABLESPACE small")
        yield server, mount
    finally:
        server.stop("immediate")
        subprocess.run(["umount", "-l", str(mount)], check=False)
        shutil.rmtree(base, ignore_errors=True)


def fill(mount: Path) -> Path:
    """Write a file until the disk is full; return it (delete it to free the space)."""
    filler = mount / "filler"
    with filler.open("wb") as out, contextlib.suppress(OSError):
        while True:
            out.write(b"\0" * 65536)
            out.flush()
    return filler


def test_a_full_disk_fails_writes_cleanly_and_heals(small_disk, smtp, start_web, start_worker):
    server, mount = small_disk
    url = server.url("fleetos")
    from flask_migrate import upgrade

    with app_for(url):
        upgrade()
    seed_contact(url, DANA)
    env = production_env(url, MAIL_SERVER="127.0.0.1", MAIL_PORT=smtp.port)
    web = start_web(env)
    worker = start_worker(env, interval=1)

    filler = fill(mount)
    # The first sign-in message needs a new page of outbox_messages: no space for it.
    answer = Client(web).post("/auth/login", {"email": DANA})

    assert answer.status == 503
    assert "FleetOS is briefly unavailable" in answer.text
    assert Client(web).get("/readyz").status == 200  # reading still works
    assert outbox(url) == []  # nothing half-saved
    log = web.process.log()
    assert log.count("database unavailable, answering 503") == 1, log
    assert "DiskFull" in log and "Traceback" not in log, log
    assert worker.alive()

    filler.unlink()
    assert Client(web).post("/auth/login", {"email": DANA}).status == 200
    eventually(lambda: smtp.to(DANA), 15, "no sign-in mail once space was free")
    assert worker.alive() and "Traceback" not in worker.log()
