"""Real servers that misbehave on purpose: an SMTP server that hangs, one that answers late,
one with or without SMTPUTF8, and a private PostgreSQL a test may stop, kill or fill up."""

from __future__ import annotations

import asyncio
import contextlib
import email
import email.policy
import os
import shutil
import socket
import subprocess
import threading
import time
from dataclasses import dataclass
from email.message import Message
from pathlib import Path

from aiosmtpd.controller import Controller

from tests.mailserver import MailServer, free_port

# -- SMTP ---------------------------------------------------------------------------------------


class HungSmtpServer:
    """Accepts every connection and never says a word, not even the 220 greeting."""

    def __init__(self) -> None:
        self.port = free_port()
        self.connections: list[socket.socket] = []
        self._listener: socket.socket | None = None

    def start(self) -> HungSmtpServer:
        self._listener = socket.create_server(("127.0.0.1", self.port), backlog=128)
        threading.Thread(target=self._accept, name="hung-smtp", daemon=True).start()
        return self

    def _accept(self) -> None:
        while self._listener is not None:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            self.connections.append(client)  # held open, never answered

    def stop(self) -> None:
        listener, self._listener = self._listener, None
        for sock in [listener, *self.connections]:
            if sock is not None:
                # shutdown() first: close() alone neither wakes a thread blocked in
                # accept() nor stops the kernel from accepting into the backlog.
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                with contextlib.suppress(OSError):
                    sock.close()


@dataclass
class Envelope:
    mail_from: str
    rcpt_tos: list[str]
    smtputf8: bool
    message: Message


class _Recorder:
    """Keeps each message with its envelope; may answer the DATA late."""

    def __init__(self, reply_delay: float) -> None:
        self.reply_delay = reply_delay
        self.envelopes: list[Envelope] = []
        self.lock = threading.Lock()

    @property
    def messages(self) -> list[Message]:
        return [envelope.message for envelope in self.envelopes]

    async def handle_DATA(self, server, session, envelope):
        with self.lock:
            self.envelopes.append(
                Envelope(
                    mail_from=envelope.mail_from,
                    rcpt_tos=list(envelope.rcpt_tos),
                    smtputf8=envelope.smtp_utf8,
                    message=email.message_from_bytes(envelope.content, policy=email.policy.default),
                )
            )
        # The message is taken; the client only learns it after the delay.
        await asyncio.sleep(self.reply_delay)
        return "250 OK"


class SmtpServer(MailServer):
    """``tests.mailserver.MailServer`` that may offer SMTPUTF8, answer DATA late, keep envelopes."""

    def __init__(self, *, smtputf8: bool = False, reply_delay: float = 0.0) -> None:
        super().__init__()
        self.smtputf8 = smtputf8
        self.collector = _Recorder(reply_delay)  # type: ignore[assignment]

    def start(self) -> None:
        self.controller = Controller(
            self.collector,
            hostname="127.0.0.1",
            port=self.port,
            enable_SMTPUTF8=self.smtputf8,
        )
        self.controller.start()

    @property
    def envelopes(self) -> list[Envelope]:
        with self.collector.lock:
            return list(self.collector.envelopes)


# -- PostgreSQL ---------------------------------------------------------------------------------

PG_BIN = Path("/usr/lib/postgresql/15/bin")


class PrivatePostgres:
    """A PostgreSQL 15 server of the test's own: initdb, start, stop, kill -9, on a free port.

    PostgreSQL refuses to run as root; as root, it runs as the ``postgres`` user.
    """

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.data = directory / "data"
        self.port = free_port()
        self.log = directory / "postgres.log"
        self._as_root = os.geteuid() == 0

    @staticmethod
    def available() -> str | None:
        """Why it cannot run here, or None."""
        if not (PG_BIN / "initdb").exists():
            return f"no PostgreSQL 15 server binaries in {PG_BIN}"
        if os.geteuid() == 0 and shutil.which("runuser") is None:
            return "running as root without runuser"
        return None

    def _run(self, *command: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        if self._as_root:
            command = ("runuser", "-u", "postgres", "--", *command)
        return subprocess.run(command, check=check, capture_output=True, text=True, timeout=120)

    def own(self, path: Path) -> None:
        if self._as_root:
            shutil.chown(path, "postgres", "postgres")

    def init(self) -> PrivatePostgres:
        self.directory.mkdir(parents=True, exist_ok=True)
        self.own(self.directory)
        self._run(
            str(PG_BIN / "initdb"), "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E",
            "UTF8", "--no-sync",
        )  # fmt: skip
        return self

    def start(self) -> None:
        options = f"-p {self.port} -k {self.directory} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._run(
            str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-l", str(self.log), "-o", options,
            "-w", "start",
        )  # fmt: skip

    def stop(self, mode: str = "fast") -> None:
        self._run(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop",
                  check=False)  # fmt: skip

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def wait_until_accepting(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            ready = self._run(
                str(PG_BIN / "pg_isready"), "-h", "127.0.0.1", "-p", str(self.port), check=False
            )
            if ready.returncode == 0:
                return
            time.sleep(0.1)
        raise AssertionError(f"private PostgreSQL not accepting:\n{self.log.read_text()}")
