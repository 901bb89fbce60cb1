"""A real HTTP server on loopback that takes SMS the way gateways do.

It answers the webhook backend's signed JSON (``POST /webhook``) and Twilio's
Messages API (``POST /2010-04-01/Accounts/<sid>/Messages.json``, form-encoded,
HTTP basic auth), keeps what it accepted, and can be told to fail (``failing =
503``) or be stopped and started again on the same port. It also serves files
(``GET /media/<name>``), as a provider serves the media of an MMS.

A phone network cannot run here: this is the only stand-in, the edge of FleetOS.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs

from tests.mailserver import free_port

WEBHOOK_SECRET = "test-webhook-secret"
TWILIO_SID = "AC0123456789abcdef0123456789abcdef"
TWILIO_TOKEN = "test-twilio-auth-token"
TWILIO_FROM = "+15005550006"


@dataclass(frozen=True)
class Received:
    to: str
    body: str
    shape: str  # "webhook" or "twilio"
    idempotency_key: str | None


class SmsGateway:
    """Start, stop and read the gateway; ``stop()`` then ``start()`` keeps the port."""

    def __init__(self) -> None:
        self.port = free_port()
        self.received: list[Received] = []
        self.refused: list[str] = []  # why calls were refused (bad signature, bad auth)
        self.failing: int | None = None  # answer every call with this status
        self.media: dict[str, tuple[str, bytes]] = {}
        self.lock = threading.Lock()
        self.server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), _handler(self))
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None

    def to(self, number: str) -> list[Received]:
        with self.lock:
            return [message for message in self.received if message.to == number]

    def wait_for(self, count: int, timeout: float = 10) -> list[Received]:
        deadline = time.monotonic() + timeout
        while len(self.received) < count and time.monotonic() < deadline:
            time.sleep(0.05)
        return list(self.received)


def _handler(gateway: SmsGateway) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format, *args):  # quiet
            pass

        def _answer(self, status: int, body: bytes = b"{}", content_type="application/json"):
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self):
            name = self.path.removeprefix("/media/")
            if self.path.startswith("/media/") and name in gateway.media:
                content_type, data = gateway.media[name]
                return self._answer(200, data, content_type)
            return self._answer(404)

        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            if gateway.failing:
                return self._answer(gateway.failing, b'{"error": "down for maintenance"}')
            if self.path == "/webhook":
                expected = (
                    "sha256=" + hmac.new(WEBHOOK_SECRET.encode(), body, hashlib.sha256).hexdigest()
                )
                if not hmac.compare_digest(self.headers.get("X-FleetOS-Signature", ""), expected):
                    gateway.refused.append("bad signature")
                    return self._answer(401)
                payload = json.loads(body)
                if payload["to"] == "+15005550001":
                    return self._answer(400, b'{"error": "invalid number"}')
                received = Received(
                    payload["to"], payload["body"], "webhook", self.headers.get("Idempotency-Key")
                )
            elif self.path == f"/2010-04-01/Accounts/{TWILIO_SID}/Messages.json":
                credentials = base64.b64encode(f"{TWILIO_SID}:{TWILIO_TOKEN}".encode()).decode()
                if self.headers.get("Authorization") != f"Basic {credentials}":
                    gateway.refused.append("bad credentials")
                    return self._answer(401)
                form = {k: v[0] for k, v in parse_qs(body.decode()).items()}
                if form.get("From") != TWILIO_FROM:
                    return self._answer(400, b'{"code": 21212, "message": "Invalid From"}')
                if form["To"] == "+15005550001":  # Twilio's magic "invalid number"
                    return self._answer(400, b'{"code": 21211, "message": "Invalid To"}')
                received = Received(
                    form["To"],
                    form["Body"],
                    "twilio",
                    self.headers.get("I-Twilio-Idempotency-Token"),
                )
            else:
                return self._answer(404)
            with gateway.lock:
                gateway.received.append(received)
            return self._answer(201, b'{"sid": "SM0123", "status": "queued"}')

    return Handler


def webhook_config(gateway: SmsGateway) -> dict[str, object]:
    return {
        "SMS_BACKEND": "webhook",
        "SMS_WEBHOOK_URL": f"{gateway.url}/webhook",
        "SMS_WEBHOOK_SECRET": WEBHOOK_SECRET,
        "SMS_TIMEOUT": 5,
    }


def twilio_config(gateway: SmsGateway) -> dict[str, object]:
    return {
        "SMS_BACKEND": "twilio",
        "TWILIO_ACCOUNT_SID": TWILIO_SID,
        "TWILIO_AUTH_TOKEN": TWILIO_TOKEN,
        "TWILIO_FROM": TWILIO_FROM,
        "TWILIO_API_BASE": gateway.url,
        "SMS_TIMEOUT": 5,
    }
