"""Benchmark: how FleetOS's web tier behaves under faults, for before/after comparisons.

Runs a checkout of FleetOS (this one by default, or ``--checkout DIR``, e.g. an
older commit unpacked with ``git archive``) under gunicorn as production does,
on a scratch database of ``--server-url``, and measures:

1. **hung SMTP**: 2 workers x 4 threads mail an SMTP server that accepts and
   never answers; 20 people ask for a sign-in link at once; then the latency of
   ``/healthz`` and ``/auth/login`` (issue 11, item 2);
2. **frozen database**: the database behind a TCP proxy that stops forwarding
   (as PostgreSQL does when SIGSTOPped); the latency of ``/healthz``,
   ``/readyz`` and a sign-in POST (items 3 and 4); each request gives up after
   60 s on the client side;
3. **a 100 MB POST**: the status and the gunicorn worker's resident memory
   before and after (item 7).

Not part of the test suite: ``python bench/faults.py [--checkout DIR] [--label L]``.
Writes bench/out/faults-<label>.json and prints a table.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import psycopg  # noqa: E402

from tests.faults.conftest import Client, Web  # noqa: E402
from tests.faults.proxy import TcpProxy  # noqa: E402
from tests.faults.servers import HungSmtpServer  # noqa: E402
from tests.mailserver import free_port  # noqa: E402

VENV_BIN = ROOT / ".venv" / "bin"
CLIENT_TIMEOUT = 60


class Deployment:
    def __init__(self, checkout: Path, pythonpath: str, database_url: str, **settings: object):
        self.checkout = checkout
        self.port = free_port()
        self.env = {
            "PATH": f"{VENV_BIN}{os.pathsep}/usr/bin:/bin",
            "HOME": os.environ.get("HOME", "/tmp"),
            "PYTHONUNBUFFERED": "1",
            "FLEETOS_ENV": "production",
            "SECRET_KEY": secrets.token_urlsafe(32),
            "DATABASE_URL": database_url,
            "BASE_URL": f"http://127.0.0.1:{self.port}",
            "BIND": f"127.0.0.1:{self.port}",
            "MAIL_USE_TLS": "false",
            # Production refuses per-process limits with 2 workers: count in the local Redis.
            "RATELIMIT_STORAGE_URI": "redis://127.0.0.1:6379/0",
            "RATELIMIT_KEY_PREFIX": f"fleetos-bench-{secrets.token_hex(4)}",
            "LINK_REQUEST_LIMIT_PER_IP": "10000 per minute",
            "LINK_REQUEST_LIMIT_PER_ADDRESS": "10000 per minute",
            **{key: str(value) for key, value in settings.items()},
        }
        if pythonpath:
            self.env["PYTHONPATH"] = pythonpath
        self.log = open(ROOT / "bench" / "out" / f"faults-gunicorn-{self.port}.log", "wb")  # noqa: SIM115
        self.process = subprocess.Popen(
            [str(VENV_BIN / "gunicorn"), "-c", "gunicorn.conf.py", "wsgi:app"],
            cwd=checkout,
            env=self.env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.web = Web(url=f"http://127.0.0.1:{self.port}", process=None)  # type: ignore[arg-type]
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(self.web("/readyz"), timeout=2) as response:
                    if response.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.2)
        raise SystemExit(f"gunicorn did not get ready; see {self.log.name}")

    def worker_pids(self) -> list[int]:
        pids = []
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == self.process.pid:
                pids.append(int(stat.parent.name))
        return pids

    def stop(self) -> None:
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
        self.log.close()


def timed(call) -> tuple[int, float]:
    started = time.monotonic()
    try:
        status = call().status
    except OSError:  # the client gave up (CLIENT_TIMEOUT)
        status = 0
    return status, time.monotonic() - started


def summary(samples: list[tuple[int, float]]) -> dict[str, object]:
    seconds = [s for _, s in samples]
    return {
        "statuses": sorted({status for status, _ in samples}),
        "p50_ms": round(statistics.median(seconds) * 1000, 1),
        "max_ms": round(max(seconds) * 1000, 1),
        "n": len(samples),
    }


def hung_smtp(checkout: Path, pythonpath: str, database_url: str) -> dict[str, object]:
    smtp = HungSmtpServer().start()
    deployment = Deployment(
        checkout,
        pythonpath,
        database_url,
        WEB_CONCURRENCY=2,
        GUNICORN_THREADS=4,
        MAIL_SERVER="127.0.0.1",
        MAIL_PORT=smtp.port,
        MAIL_TIMEOUT=30,
    )
    client = Client(deployment.web)
    try:
        before = [timed(lambda: client.get("/healthz")) for _ in range(10)]

        def sign_in(n: int):
            person = Client(deployment.web)
            return timed(lambda: person.post("/auth/login", {"email": f"p{n}@example.org"}))

        with ThreadPoolExecutor(20) as pool:
            sign_ins = list(pool.map(sign_in, range(20)))
        time.sleep(0.5)
        health = [timed(lambda: client.get("/healthz", timeout=CLIENT_TIMEOUT)) for _ in range(5)]
        login = [timed(lambda: client.get("/auth/login", timeout=CLIENT_TIMEOUT)) for _ in range(5)]
    finally:
        deployment.stop()
        smtp.stop()
    return {
        "healthz before": summary(before),
        "20 sign-in POSTs": summary(sign_ins),
        "healthz after the sign-ins": summary(health),
        "GET /auth/login after the sign-ins": summary(login),
    }


def frozen_database(checkout: Path, pythonpath: str, database_url: str) -> dict[str, object]:
    params = psycopg.conninfo.conninfo_to_dict(database_url)
    proxy = TcpProxy(params.get("host", "127.0.0.1"), int(params.get("port", 5432))).start()
    deployment = Deployment(checkout, pythonpath, proxy.url_for(database_url))
    client = Client(deployment.web)
    try:
        page = client.get("/auth/login")
        token = page.text.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
        proxy.freeze()

        def sign_in():
            return client.request(
                "/auth/login",
                {"csrf_token": token, "email": "dana@example.org"},
                timeout=CLIENT_TIMEOUT,
            )

        results = {
            "healthz": summary([timed(lambda: client.get("/healthz", timeout=CLIENT_TIMEOUT))]),
            "readyz": summary([timed(lambda: client.get("/readyz", timeout=CLIENT_TIMEOUT))]),
            "sign-in POST (needs the database)": summary([timed(sign_in) for _ in range(3)]),
        }
        with ThreadPoolExecutor(8) as pool:
            burst = list(pool.map(lambda _: timed(sign_in), range(8)))
        results["8 sign-in POSTs at once"] = summary(burst)
        results["healthz after the burst"] = summary(
            [timed(lambda: client.get("/healthz", timeout=CLIENT_TIMEOUT))]
        )
    finally:
        proxy.thaw()
        deployment.stop()
        proxy.stop()
    return results


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS"):
            return round(int(line.split()[1]) / 1024, 1)
    return 0.0


def big_post(checkout: Path, pythonpath: str, database_url: str) -> dict[str, object]:
    deployment = Deployment(checkout, pythonpath, database_url, WEB_CONCURRENCY=1)
    try:
        [worker] = deployment.worker_pids()
        before = rss_mb(worker)
        size = 100 * 1024 * 1024
        sock = socket.create_connection(("127.0.0.1", deployment.port), timeout=120)
        sock.sendall(
            f"POST /auth/login HTTP/1.1\r\nHost: x\r\nContent-Length: {size}\r\n"
            "Content-Type: application/x-www-form-urlencoded\r\n\r\n".encode()
        )
        chunk = b"email=" + b"x" * (1024 * 1024 - 6)
        try:
            for _ in range(100):
                sock.sendall(chunk)
        except OSError:
            pass
        answer = b""
        try:
            while data := sock.recv(65536):
                answer += data
                if b"\r\n\r\n" in answer:
                    break
        except OSError:
            pass
        sock.close()
        time.sleep(1)
        after = rss_mb(worker)
    finally:
        deployment.stop()
    return {
        "status line": answer.split(b"\r\n", 1)[0].decode(errors="replace"),
        "worker RSS before (MB)": before,
        "worker RSS after (MB)": after,
    }


def scratch_database(server_url: str, checkout: Path, pythonpath: str) -> tuple[str, str]:
    name = f"fleetos_bench_faults_{secrets.token_hex(4)}"
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    params = psycopg.conninfo.conninfo_to_dict(server_url)
    user, host = params.get("user", "postgres"), params.get("host", "127.0.0.1")
    url = f"postgresql://{user}@{host}:{params.get('port', 5432)}/{name}"
    env = {
        "PATH": f"{VENV_BIN}{os.pathsep}/usr/bin:/bin",
        "HOME": os.environ.get("HOME", "/tmp"),
        "DATABASE_URL": url,
        "SECRET_KEY": "bench",
        **({"PYTHONPATH": pythonpath} if pythonpath else {}),
    }
    subprocess.run(
        [str(VENV_BIN / "flask"), "db", "upgrade"], cwd=checkout, env=env, check=True,
        capture_output=True,
    )  # fmt: skip
    return name, url


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkout", type=Path, default=ROOT)
    parser.add_argument("--pythonpath", default="", help="extra PYTHONPATH for an old checkout")
    parser.add_argument("--label", default="current")
    parser.add_argument(
        "--server-url",
        default=os.environ.get("TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test"),
    )
    args = parser.parse_args()
    (ROOT / "bench" / "out").mkdir(parents=True, exist_ok=True)
    checkout = args.checkout.resolve()
    pythonpath = os.pathsep.join(p for p in (args.pythonpath, str(checkout)) if p)
    name, url = scratch_database(args.server_url, checkout, pythonpath)
    try:
        report = {
            "checkout": str(checkout),
            "hung SMTP": hung_smtp(checkout, pythonpath, url),
            "frozen database": frozen_database(checkout, pythonpath, url),
            "100 MB POST": big_post(checkout, pythonpath, url),
        }
    finally:
        with psycopg.connect(args.server_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    out = ROOT / "bench" / "out" / f"faults-{args.label}.json"
    out.write_text(json.dumps(report, indent=2))
    print(json.dumps(report, indent=2))
    print(f"written to {out}")


if __name__ == "__main__":
    main()
