"""FleetOS: fleets send service requests to the suppliers that service their vehicles."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from flask import Flask, abort, g, redirect, request, send_from_directory, url_for
from werkzeug.middleware.proxy_fix import ProxyFix
from werkzeug.wrappers import Response

from .config import ConfigError, development_secret_key, load_config
from .extensions import csrf, db, limiter, migrate

REPO_ROOT = Path(__file__).resolve().parent.parent
MIGRATIONS_DIR = REPO_ROOT / "migrations"

__all__ = ["ConfigError", "create_app"]


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    """Create and configure a FleetOS app; ``config`` overrides the environment."""
    app = Flask(
        __name__,
        instance_relative_config=False,
        instance_path=str(REPO_ROOT / "instance"),
        template_folder=str(REPO_ROOT / "templates"),
        static_folder=str(REPO_ROOT / "static"),
    )
    app.config.from_mapping(load_config())
    if config:
        app.config.from_mapping(config)
    finalise_config(app)
    register_proxy_fix(app)
    register_logging(app)
    register_request_limits(app)
    register_extensions(app)
    register_templating(app)
    register_security_headers(app)
    register_blueprints(app)
    register_health_checks(app)
    register_errorhandlers(app)
    register_commands(app)
    return app


def finalise_config(app: Flask) -> None:
    """Fill in what the environment left open: a dev secret key, the embedded database,
    and the database's timeouts."""
    from .database import engine_options as database_engine_options
    from .dns_check import parse_nameserver

    if app.config.get("DNS_NAMESERVER"):
        parse_nameserver(str(app.config["DNS_NAMESERVER"]))  # a typo fails at start, named
    instance = Path(app.instance_path)
    if not app.config.get("SECRET_KEY"):
        app.config["SECRET_KEY"] = development_secret_key(instance)
    if not app.config.get("SQLALCHEMY_DATABASE_URI"):
        from .embedded_db import embedded_database_url

        data_dir = Path(app.config.get("EMBEDDED_PGDATA") or instance / "pgdata")
        app.config["SQLALCHEMY_DATABASE_URI"] = embedded_database_url(data_dir)
    database_engine_options(app)


def register_proxy_fix(app: Flask) -> None:
    """Behind PROXY_FIX_HOPS proxies, see the client's address and scheme, not the proxy's."""
    hops = int(app.config.get("PROXY_FIX_HOPS") or 0)
    if hops > 0:
        app.wsgi_app = ProxyFix(  # type: ignore[method-assign]
            app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops, x_port=hops
        )


def register_request_limits(app: Flask) -> None:
    """Bodies over MAX_CONTENT_LENGTH are refused (413) unread; so are bodies of unknown size,
    and input holding a NUL character (400). Views that take files
    (``uploads.accepts_uploads``) have a larger limit of their own."""
    from .errors import UnreadableInput
    from .uploads import register_upload_limits

    register_upload_limits(app)

    @app.before_request
    def refuse_bodies_of_unknown_size() -> None:
        # A chunked body has no Content-Length to check against the limit, and
        # gunicorn does not mark the stream as terminated, so Werkzeug would
        # silently read it as empty. Browsers always send a length with a form.
        if (
            request.content_length is None
            and "chunked" in request.headers.get("Transfer-Encoding", "").lower()
        ):
            abort(411)

    @app.before_request
    def refuse_nul_characters() -> None:
        # No text FleetOS keeps can hold NUL (PostgreSQL refuses it), and nobody
        # types one: refuse it in the URL, the query or a form, whatever the field.
        values = [request.path, *request.args.keys(), *request.args.values()]
        values += [*request.form.keys(), *request.form.values()]
        if any("\x00" in value for value in values):
            raise UnreadableInput(
                "It contained a NUL character, which no text on FleetOS can hold. "
                "Go back, retype what you entered and send it again."
            )


def register_extensions(app: Flask) -> None:
    from . import models  # noqa: F401  (the tables must be known to the metadata)
    from .abuse import register_abuse_limits
    from .auth.session import register_session
    from .database import bound_answers
    from .messaging import decisions  # noqa: F401  (registers what the mail worker composes)
    from .messaging.unlinked import register_mail_templates
    from .outbox import register_mail
    from .sms.compose import register_sms_templates

    db.init_app(app)
    with app.app_context():
        bound_answers(db.engine, app)
    migrate.init_app(app, db, directory=str(MIGRATIONS_DIR))
    csrf.init_app(app)
    limiter.init_app(app)
    register_abuse_limits(app)
    register_session(app)
    register_mail(app)
    register_mail_templates(app)
    register_sms_templates(app)


def register_logging(app: Flask) -> None:
    from .config import PRODUCTION, per_process_limits
    from .logs import register_logging as redact_tokens_in_logs

    redact_tokens_in_logs(app)
    if app.config["FLEETOS_ENV"] == PRODUCTION and per_process_limits(
        app.config["RATELIMIT_STORAGE_URI"]
    ):
        # gunicorn.conf.py refuses several workers with this; another server may not know.
        logging.getLogger("fleetos").warning(
            "RATELIMIT_STORAGE_URI is memory://: rate limits are counted per process. "
            "With more than one process serving FleetOS, every limit is multiplied by their "
            "number; set RATELIMIT_STORAGE_URI=redis://host:6379/0."
        )


def register_security_headers(app: Flask) -> None:
    from .headers import register_security_headers as register

    register(app)


def register_errorhandlers(app: Flask) -> None:
    from .errors import register_errorhandlers as register

    register(app)


def register_templating(app: Flask) -> None:
    from .templating import register_templating as register

    register(app)


def register_blueprints(app: Flask) -> None:
    from .auth.views import bp as auth_bp
    from .dashboard.views import bp as dashboard_bp
    from .replies.views import bp as replies_bp
    from .requests.views import bp as requests_bp
    from .sms.views import bp as sms_bp

    app.register_blueprint(auth_bp)
    app.register_blueprint(dashboard_bp)
    app.register_blueprint(requests_bp)
    app.register_blueprint(replies_bp)
    app.register_blueprint(sms_bp)

    @app.get("/")
    def index() -> Response:
        """Send visitors where they belong: their dashboard, or sign-in."""
        target = "dashboard.index" if g.get("contact") else "auth.login"
        return redirect(url_for(target), code=303)

    @app.get("/favicon.ico")
    def favicon() -> Response:
        """The icon browsers ask for on their own, whatever the page links."""
        assert app.static_folder is not None
        return send_from_directory(app.static_folder, "favicon.ico", max_age=86400)


def register_health_checks(app: Flask) -> None:
    """/healthz and /readyz, answered in front of Flask (no session, no hooks)."""
    from .health import register_probes

    register_probes(app)


def register_commands(app: Flask) -> None:
    from .commands import fleetos_cli

    app.cli.add_command(fleetos_cli)
