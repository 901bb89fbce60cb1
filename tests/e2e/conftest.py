"""Fixtures for end-to-end tests: FleetOS as production runs it, driven by Debian's Chromium.

Unlike tests/browser (the app in a thread of the test process), everything here runs
as an operator runs it: gunicorn with gunicorn.conf.py and several worker processes,
and the mail worker ``flask fleetos deliver --loop``, both configured by environment
variables only, on a fresh database migrated to head, mailing a real SMTP server
(aiosmtpd) that a test may stop and start again, counting rate limits in Redis.
Each process's output goes to test-artifacts/e2e/<test>-<process>.log.
"""

from __future__ import annotations

import os
import re
import secrets
import signal
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import psycopg
import pytest
from playwright.sync_api import Browser

from fleetos import REPO_ROOT
from tests.chromium import NewContext, context_factory
from tests.mailserver import MailServer, free_port
from tests.support.database import libpq_url

HERE = Path(__file__).resolve().parent
LOGS = REPO_ROOT / "test-artifacts" / "e2e"
VENV_BIN = REPO_ROOT / ".venv" / "bin"
REDIS_URL = "redis://127.0.0.1:6379/0"
WORKERS = 3
# The dashboard asks for changes every second (production: 10 s), so a status change
# shows up within a test's patience; DASHBOARD_POLL_SECONDS is a real setting.
POLL_SECONDS = 1
START_TIMEOUT = 30  # seconds for gunicorn to answer /readyz with 200
STOP_TIMEOUT = 15  # seconds after SIGTERM before SIGKILL
# Only these variables of the test's own environment reach the processes; FleetOS's
# and gunicorn's settings come from the test alone, whatever the developer's shell holds.
PASSED_THROUGH = ("HOME", "LANG", "LC_ALL", "LC_CTYPE", "TMPDIR", "TZ", "USER", "LOGNAME")


def pytest_configure(config: pytest.Config) -> None:
    # --strict-markers refuses unknown marks; pyproject's `markers` may not list it yet.
    config.addinivalue_line(
        "markers",
        "e2e: the whole app as production runs it (gunicorn, "
        "mail worker, SMTP, Redis) driven by a real Chromium",
    )


# -- FleetOS as production runs it -----------------------------------------------------------


@dataclass
class Production:
    """The running deployment: its URL, database, SMTP server, processes and their logs."""

    url: str
    database_url: str
    smtp: MailServer
    env: dict[str, str]
    logs: dict[str, Path] = field(default_factory=dict)
    processes: dict[str, subprocess.Popen] = field(default_factory=dict)

    def __call__(self, path: str = "/") -> str:
        return self.url + path

    def sql(self, query: str, *params: Any) -> list[tuple]:
        """Run one statement on the app's database (autocommit); return its rows, if any."""
        with psycopg.connect(libpq_url(self.database_url), autocommit=True) as conn:
            cursor = conn.execute(query, params)
            return cursor.fetchall() if cursor.description else []

    def outbox(self) -> list[dict[str, Any]]:
        """Every outbox row, oldest first."""
        columns = ("message_id", "recipient", "subject", "status", "attempts", "last_error")
        rows = self.sql(f"SELECT {', '.join(columns)} FROM outbox_messages ORDER BY message_id")
        return [dict(zip(columns, row, strict=True)) for row in rows]

    def log(self, name: str) -> str:
        return self.logs[name].read_text(errors="replace")

    def worker_pids(self) -> list[int]:
        """The gunicorn master's child processes (its workers)."""
        return children_of(self.processes["gunicorn"].pid)


def process_env(**settings: str) -> dict[str, str]:
    env = {name: os.environ[name] for name in PASSED_THROUGH if name in os.environ}
    env["PATH"] = f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '/usr/bin:/bin')}"
    env["PYTHONUNBUFFERED"] = "1"  # the worker's "sent N" lines reach its log at once
    env.update(settings)
    return env


@pytest.fixture
def production(
    head_database: str, smtp: MailServer, request: pytest.FixtureRequest
) -> Iterator[Production]:
    """gunicorn (3 workers) and the mail worker on a fresh database at head; stopped after."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    prefix = f"fleetos-e2e-{secrets.token_hex(4)}"
    env = process_env(
        FLEETOS_ENV="production",
        SECRET_KEY=secrets.token_urlsafe(32),
        DATABASE_URL=head_database,
        BASE_URL=url,
        BIND=f"127.0.0.1:{port}",
        WEB_CONCURRENCY=str(WORKERS),
        MAIL_SERVER="127.0.0.1",
        MAIL_PORT=str(smtp.port),
        MAIL_USE_TLS="false",
        MAIL_TIMEOUT="5",
        MAIL_DELIVER_AFTER_RESPONSE="true",
        RATELIMIT_STORAGE_URI=REDIS_URL,
        RATELIMIT_KEY_PREFIX=prefix,  # this test's counters in the shared Redis
        DASHBOARD_POLL_SECONDS=str(POLL_SECONDS),
    )
    deployment = Production(url=url, database_url=head_database, smtp=smtp, env=env)
    LOGS.mkdir(parents=True, exist_ok=True)
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.name).strip("_")
    files: list[IO[bytes]] = []

    def start(label: str, *command: str) -> None:
        path = LOGS / f"{name}-{label}.log"
        log = path.open("wb")
        files.append(log)
        deployment.logs[label] = path
        deployment.processes[label] = subprocess.Popen(
            command,
            cwd=REPO_ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    try:
        # The web processes: the production command.
        start("gunicorn", str(VENV_BIN / "gunicorn"), "-c", "gunicorn.conf.py", "wsgi:app")
        # The mail worker: `flask` finds wsgi.py in the repository root, as in production.
        start("deliver", str(VENV_BIN / "flask"), "fleetos", "deliver", "--loop", "--interval", "1")
        wait_until_ready(deployment)
        yield deployment
    finally:
        stubborn = [
            label for label, process in reversed(deployment.processes.items()) if not stop(process)
        ]
        for log in files:
            log.close()
        forget_rate_limits(prefix)
    if stubborn:
        pytest.fail(f"{', '.join(stubborn)} did not stop within {STOP_TIMEOUT}s of SIGTERM")


def wait_until_ready(deployment: Production) -> None:
    """Wait for /readyz to answer 200 and for every gunicorn worker to be up."""
    deadline = time.monotonic() + START_TIMEOUT
    last = "no answer"
    while time.monotonic() < deadline:
        for label, process in deployment.processes.items():
            if process.poll() is not None:
                pytest.fail(f"{label} exited with {process.returncode}:\n{deployment.log(label)}")
        try:
            with urllib.request.urlopen(deployment("/readyz"), timeout=2) as response:
                ready = response.status == 200
        except urllib.error.HTTPError as exc:
            last = f"{exc.code} {exc.read().decode(errors='replace')}"
            exc.close()
            ready = False
        except OSError as exc:
            last = repr(exc)
            ready = False
        if ready and len(deployment.worker_pids()) == WORKERS:
            return
        time.sleep(0.2)
    pytest.fail(
        f"not ready within {START_TIMEOUT}s (last /readyz: {last}):\n{deployment.log('gunicorn')}"
    )


def stop(process: subprocess.Popen) -> bool:
    """SIGTERM (both processes stop gracefully on it); SIGKILL if that takes too long.

    Returns whether it stopped by itself.
    """
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)  # its own session: the workers go too
            process.wait(5)
            return False
    return True


def children_of(pid: int) -> list[int]:
    children = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue  # gone meanwhile
        if int(fields[1]) == pid:  # fields: state, ppid, ...
            children.append(int(stat.parent.name))
    return children


def rate_limit_keys(prefix: str) -> list[str]:
    import redis

    with redis.Redis.from_url(REDIS_URL) as client:
        return [key.decode() for key in client.scan_iter(match=f"*{prefix}*")]


def forget_rate_limits(prefix: str) -> None:
    """Delete this test's counters (and only this test's) from the shared Redis."""
    import redis

    with redis.Redis.from_url(REDIS_URL) as client:
        keys = list(client.scan_iter(match=f"*{prefix}*"))
        if keys:
            client.delete(*keys)


# -- Chromium (tests/chromium.py launches it; tests/browser shares it) -----------------------


@pytest.fixture
def new_context(
    chromium: Browser, production: Production, request: pytest.FixtureRequest
) -> Iterator[NewContext]:
    """Make a browser context (one person) with ``base_url`` the gunicorn server.

    All are closed after the test (before the server stops), with screenshots of
    their pages if the test failed.
    """
    yield from context_factory(chromium, production.url, request)
