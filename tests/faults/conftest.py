"""Fixtures for fault tests: FleetOS's processes as production runs them, with faults between.

``start_web`` runs gunicorn and ``start_worker`` runs ``flask fleetos deliver --loop``,
each configured by environment variables only, with their output in
test-artifacts/faults/<test>-<name>.log. ``database_proxy`` puts a
:class:`~tests.faults.proxy.TcpProxy` between them and the test's database.
"""

from __future__ import annotations

import contextlib
import http.cookiejar
import os
import re
import secrets
import signal
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest
from flask import Flask
from psycopg.conninfo import conninfo_to_dict

from fleetos import REPO_ROOT
from fleetos.extensions import db
from fleetos.outbox import DeliveryReport, deliver_due
from tests.faults.proxy import TcpProxy
from tests.mailserver import free_port
from tests.support.database import libpq_url
from tests.support.waiting import eventually

LOGS = REPO_ROOT / "test-artifacts" / "faults"
VENV_BIN = REPO_ROOT / ".venv" / "bin"
PASSED_THROUGH = ("HOME", "LANG", "LC_ALL", "LC_CTYPE", "TMPDIR", "TZ", "USER", "LOGNAME")
START_TIMEOUT = 30
STOP_TIMEOUT = 15
CSRF_INPUT = re.compile(r'name="csrf_token" value="([^"]+)"')


def production_env(database_url: str, **settings: object) -> dict[str, str]:
    """The environment of a production process; ``settings`` add to or override it."""
    env = {name: os.environ[name] for name in PASSED_THROUGH if name in os.environ}
    env.update(
        PATH=f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '/usr/bin:/bin')}",
        PYTHONUNBUFFERED="1",
        FLEETOS_ENV="production",
        SECRET_KEY=secrets.token_urlsafe(32),
        DATABASE_URL=libpq_url(database_url),
        MAIL_USE_TLS="false",
        # One client sends many link requests in these tests; limits have tests of their own.
        LINK_REQUEST_LIMIT_PER_IP="10000 per minute",
        LINK_REQUEST_LIMIT_PER_ADDRESS="10000 per minute",
    )
    env.update({key: str(value) for key, value in settings.items()})
    return env


@dataclass
class Process:
    name: str
    popen: subprocess.Popen
    log_path: Path

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> bool:
        """SIGTERM, then SIGKILL after STOP_TIMEOUT; whether it stopped by itself."""
        if self.popen.poll() is not None:
            return True
        self.popen.send_signal(signal.SIGTERM)
        try:
            self.popen.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            os.killpg(self.popen.pid, signal.SIGKILL)
            self.popen.wait(5)
            return False
        return True

    def kill(self) -> None:
        """SIGKILL, as the OOM killer or a power cut would."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.popen.pid, signal.SIGKILL)
        self.popen.wait(5)


@pytest.fixture
def processes(request: pytest.FixtureRequest) -> Iterator[Callable[..., Process]]:
    """Start processes (``start(name, *command, env=...)``); all are stopped after the test."""
    started: list[Process] = []
    LOGS.mkdir(parents=True, exist_ok=True)
    test = re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.name).strip("_")

    def start(name: str, *command: str, env: dict[str, str]) -> Process:
        path = LOGS / f"{test}-{name}.log"
        with path.open("wb") as log:
            popen = subprocess.Popen(
                command,
                cwd=REPO_ROOT,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        started.append(Process(name, popen, path))
        return started[-1]

    yield start
    stubborn = [process.name for process in reversed(started) if not process.stop()]
    if stubborn:
        pytest.fail(f"{', '.join(stubborn)} did not stop within {STOP_TIMEOUT}s of SIGTERM")


@dataclass
class Web:
    """gunicorn serving FleetOS."""

    url: str
    process: Process

    def __call__(self, path: str = "/") -> str:
        return self.url + path


@pytest.fixture
def start_web(processes: Callable[..., Process]) -> Callable[..., Web]:
    """Start gunicorn (one worker, four threads unless told) with ``env``; wait for /readyz."""

    def start(env: dict[str, str], *, ready: bool = True) -> Web:
        port = free_port()
        env = {
            "WEB_CONCURRENCY": "1",
            "GUNICORN_THREADS": "4",
            **env,
            "BIND": f"127.0.0.1:{port}",
            "BASE_URL": env.get("BASE_URL", f"http://127.0.0.1:{port}"),
        }
        process = processes(
            "gunicorn", str(VENV_BIN / "gunicorn"), "-c", "gunicorn.conf.py", "wsgi:app", env=env
        )
        web = Web(url=f"http://127.0.0.1:{port}", process=process)
        wait_until_up(web, "/readyz" if ready else "/healthz")
        return web

    return start


def wait_until_up(web: Web, probe: str) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    last = "no answer"
    while time.monotonic() < deadline:
        if not web.process.alive():
            pytest.fail(f"gunicorn exited:\n{web.process.log()}")
        try:
            with urllib.request.urlopen(web(probe), timeout=2) as response:
                if response.status == 200:
                    return
        except urllib.error.HTTPError as exc:
            last = f"{exc.code}"
            exc.close()
        except OSError as exc:
            last = repr(exc)
        time.sleep(0.1)
    pytest.fail(f"gunicorn not up within {START_TIMEOUT}s ({probe}: {last}):\n{web.process.log()}")


@pytest.fixture
def start_worker(processes: Callable[..., Process]) -> Callable[..., Process]:
    """Start ``flask fleetos deliver --loop`` with ``env``."""

    def start(env: dict[str, str], *, interval: float = 5.0) -> Process:
        return processes(
            "deliver",
            str(VENV_BIN / "flask"),
            "fleetos",
            "deliver",
            "--loop",
            "--interval",
            str(interval),
            env=env,
        )

    return start


@pytest.fixture
def database_proxy(server_url: str) -> Iterator[TcpProxy]:
    """A proxy in front of the test server (the shared PostgreSQL is never frozen or stopped)."""
    params = conninfo_to_dict(server_url)
    host = params.get("host", "127.0.0.1")
    port = int(params.get("port") or 5432)
    if host.startswith("/"):
        pytest.skip("the test server listens on a Unix socket only; set TEST_DATABASE_URL")
    proxy = TcpProxy(host, port).start()
    yield proxy
    proxy.stop()


def sql(database_url: str, query: str, *params: Any) -> list[tuple]:
    """Run one statement on the database directly (autocommit); return its rows, if any."""
    with psycopg.connect(libpq_url(database_url), autocommit=True) as conn:
        cursor = conn.execute(query, params)
        return cursor.fetchall() if cursor.description else []


def outbox(database_url: str) -> list[dict[str, Any]]:
    columns = (
        "message_id",
        "recipient",
        "subject",
        "status",
        "attempts",
        "last_error",
        "email_message_id",
    )
    rows = sql(database_url, f"SELECT {', '.join(columns)} FROM outbox_messages ORDER BY 1")
    return [dict(zip(columns, row, strict=True)) for row in rows]


def deliver(app: Flask) -> DeliveryReport:
    """One pass of the delivery worker, in-process."""
    with app.app_context():
        try:
            return deliver_due()
        finally:
            db.session.remove()


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    text: str
    seconds: float


class Client:
    """A browser-like HTTP client: keeps cookies, fills in the CSRF token, times each answer."""

    def __init__(self, web: Web) -> None:
        self.web = web
        self.cookies = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(self.cookies), NoRedirects()
        )

    def request(
        self, path: str, data: dict[str, str] | None = None, *, timeout: float = 60
    ) -> Answer:
        body = urllib.parse.urlencode(data).encode() if data is not None else None
        started = time.monotonic()
        try:
            with self.opener.open(self.web(path), data=body, timeout=timeout) as response:
                status, headers, text = response.status, dict(response.headers), response.read()
        except urllib.error.HTTPError as exc:
            status, headers, text = exc.code, dict(exc.headers), exc.read()
            exc.close()
        return Answer(status, headers, text.decode(errors="replace"), time.monotonic() - started)

    def get(self, path: str, **kwargs: Any) -> Answer:
        return self.request(path, **kwargs)

    def post(self, path: str, data: dict[str, str], *, form: str | None = None) -> Answer:
        """POST ``data`` with the CSRF token of the page at ``form`` (default: ``path``)."""
        page = self.get(form or path)
        match = CSRF_INPUT.search(page.text)
        assert match, f"no csrf_token on {form or path}: {page.status} {page.text[:300]}"
        return self.request(path, {"csrf_token": match.group(1), **data})


class NoRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def seed_contact(database_url: str, address: str, company: str = "Acme Fleet") -> None:
    """A fleet company with one contact, written straight to the database."""
    [(company_id,)] = sql(
        database_url,
        "INSERT INTO companies (name, company_type) VALUES (%s, 'fleet') RETURNING company_id",
        company,
    )
    sql(
        database_url,
        "INSERT INTO contacts (company_id, contact_value, contact_type) VALUES (%s, %s, 'email')",
        company_id,
        address,
    )


def sign_in(client: Client, smtp: Any, address: str) -> None:
    """Sign in as a person does: ask for the link, open it from the mail, press Continue."""
    from tests.mailserver import link_in

    already = len(smtp.to(address))
    assert client.post("/auth/login", {"email": address}).status == 200
    messages = eventually(lambda: smtp.to(address)[already:], 15, f"no sign-in mail to {address}")
    path = urllib.parse.urlsplit(link_in(messages[-1])).path
    assert client.post(path, {}).status == 303
