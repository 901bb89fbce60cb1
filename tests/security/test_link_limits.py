"""Issue 10, item 7: rate limits that hold in production, per mailbox, on every way to a link.

As reported: with ``memory://`` each gunicorn worker counted on its own, so
limits multiplied by the number of workers; the per-address key was the
address as typed, so ``a+1@x``, ``a+2@x`` ... each had a fresh budget; and
``POST /auth/link/<token>/fresh`` obeyed no per-address limit at all.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from itsdangerous import TimestampSigner

from fleetos import REPO_ROOT
from fleetos.config import ConfigError, refuse_per_process_limits
from tests.auth.test_links import token_for
from tests.support.web import Browser, counts

LIMITS = {
    "RATELIMIT_ENABLED": True,
    "LINK_REQUEST_LIMIT_PER_IP": "100 per minute",
    "LINK_REQUEST_LIMIT_PER_ADDRESS": "3 per 10 minutes",
}


def test_plus_tags_share_one_mailboxs_budget(make_app, smtp, acme):
    app = make_app(**LIMITS)
    browser = Browser(app.test_client(), smtp)
    typed = ["dana+1@acme-fleet.com", "dana+2@acme-fleet.com", " DANA+x@Acme-Fleet.com "]
    assert [browser.ask_for_link(a).status_code for a in typed] == [200, 200, 200]
    assert browser.ask_for_link("dana+4@acme-fleet.com").status_code == 429
    assert browser.ask_for_link("dana@acme-fleet.com").status_code == 429
    assert browser.ask_for_link("olu+1@acme-fleet.com").status_code == 200  # another mailbox


def test_asking_for_a_fresh_link_obeys_the_per_address_limit(make_app, smtp, acme, monkeypatch):
    app = make_app(**LIMITS)
    with monkeypatch.context() as m:
        m.setattr(TimestampSigner, "get_timestamp", lambda self: int(time.time()) - 3600)
        token = token_for(app, company=acme.company_id)
    browser = Browser(app.test_client(), smtp)
    fresh = [
        browser.client.post(
            f"/auth/link/{token}/fresh", data={"csrf_token": browser.csrf()}
        ).status_code
        for _ in range(4)
    ]
    assert fresh == [200, 200, 200, 429]
    assert counts(app)["outbox_messages"] == 3
    # The typed form and the fresh-link button spend the same budget.
    assert browser.ask_for_link("dana@acme-fleet.com").status_code == 429


PRODUCTION = {"FLEETOS_ENV": "production", "SECRET_KEY": "x", "DATABASE_URL": "postgresql://x@h/d"}


@pytest.mark.parametrize(
    ("settings", "workers", "refused"),
    [
        ({}, 2, True),
        ({"RATELIMIT_STORAGE_URI": "memory://"}, 8, True),
        ({}, 1, False),
        ({"RATELIMIT_STORAGE_URI": "redis://127.0.0.1:6379/0"}, 8, False),
        ({"FLEETOS_ENV": "development"}, 8, False),
    ],
)
def test_per_process_limits_are_refused_with_several_production_workers(settings, workers, refused):
    environ = {**PRODUCTION, **settings}
    if refused:
        with pytest.raises(ConfigError, match="RATELIMIT_STORAGE_URI=redis://"):
            refuse_per_process_limits(environ, workers)
    else:
        refuse_per_process_limits(environ, workers)


@pytest.mark.parametrize(
    ("env", "args"),
    [({"WEB_CONCURRENCY": "2"}, []), ({"WEB_CONCURRENCY": "1"}, ["--workers", "3"])],
    ids=["WEB_CONCURRENCY", "--workers"],
)
def test_gunicorn_refuses_to_start_workers_that_count_alone(env, args):
    gunicorn = shutil.which("gunicorn", path=str(Path(sys.executable).parent))
    environ = {
        "PATH": os.environ["PATH"],
        "HOME": os.environ.get("HOME", "/tmp"),
        **PRODUCTION,
        "BIND": "127.0.0.1:0",
        **env,
    }
    started = subprocess.run(
        [gunicorn, "-c", "gunicorn.conf.py", *args, "wsgi:app"],
        cwd=REPO_ROOT,
        env=environ,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert started.returncode == 1
    assert "FleetOS refuses to start" in started.stderr
    assert "Traceback" not in started.stderr
