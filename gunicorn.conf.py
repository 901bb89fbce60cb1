"""Gunicorn settings for FleetOS: ``gunicorn -c gunicorn.conf.py wsgi:app``.

Every setting can be tuned from the environment (see docs/deployment.md);
the defaults suit one machine behind a reverse proxy on the same host.
"""

from __future__ import annotations

import os
import sys


def _bind() -> str:
    # BIND wins (a full address, or unix:/path); PORT is what PaaS hosts hand out.
    if os.environ.get("BIND"):
        return os.environ["BIND"]
    return f"0.0.0.0:{os.environ.get('PORT', '8000')}"


def _workers() -> int:
    # The usual 2 x cores + 1, capped: each worker is a full copy of the app
    # with its own database pool, and 8 workers x 4 threads already serve 32
    # requests at once; beyond that, add machines rather than processes.
    if os.environ.get("WEB_CONCURRENCY"):
        return int(os.environ["WEB_CONCURRENCY"])
    return min(2 * (os.cpu_count() or 1) + 1, 8)


bind = _bind()
workers = _workers()

# Threads per worker: requests mostly wait on PostgreSQL (never on SMTP: the
# deliver worker sends mail), so a few threads per process serve more requests
# for little memory.
worker_class = "gthread"
threads = int(os.environ.get("GUNICORN_THREADS", "4"))

# With gthread this is a heartbeat, not a per-request limit: a worker whose
# main loop goes silent for 30 s is hung, so it is killed and replaced.
timeout = 30
# On restart or deploy, give in-flight requests as long as a request may take anyway.
graceful_timeout = 30
# Seconds to hold an idle keep-alive connection: a little longer than a
# browser's next request after a page, short enough to free the thread.
keepalive = 5

# Limits on what gunicorn itself reads before FleetOS sees a request (its
# defaults, made explicit): a request line of at most 4094 bytes, at most 100
# header fields of at most 8190 bytes each; beyond them, gunicorn refuses the
# request (414, 431 or 400).
# Bodies are limited by FleetOS (MAX_CONTENT_LENGTH, 413; the forms that take
# files, that plus ATTACHMENT_MAX_UPLOAD_BYTES), which refuses one that is too
# large before reading it; gunicorn has no body limit of its own.
limit_request_line = 4094
limit_request_fields = 100
limit_request_field_size = 8190

# Only the proxy at these addresses may tell gunicorn the scheme (https) in
# X-Forwarded-Proto. The client's address is FleetOS's job: PROXY_FIX_HOPS.
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")

# No access log: FleetOS writes one JSON line per request itself (logger
# fleetos.request), with the link tokens redacted and the request id.
accesslog = None
# Errors and FleetOS's own logs go to stderr, for systemd or the container runtime.
errorlog = "-"
loglevel = "info"

# Each worker imports the app itself: no database connection or Redis client
# is shared across fork(), and a HUP reloads the code.
preload_app = False


def on_starting(server: object) -> None:
    """Refuse to start several workers that would each count rate limits on their own."""
    from fleetos.config import ConfigError, refuse_per_process_limits

    try:
        refuse_per_process_limits(os.environ, server.cfg.workers)  # type: ignore[attr-defined]
    except ConfigError as exc:
        # gunicorn reports an exception here as a crash; say it plainly and stop.
        print(f"FleetOS refuses to start: {exc}", file=sys.stderr, flush=True)
        sys.exit(1)


# gunicornc's control socket is not used, and at its default path
# ($HOME/.gunicorn/gunicorn.ctl) a second gunicorn of the same user takes it over.
control_socket_disable = True
