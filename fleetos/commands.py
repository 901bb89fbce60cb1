"""`flask fleetos ...`: operator commands."""

from __future__ import annotations

import sys

import click
from flask.cli import AppGroup

fleetos_cli = AppGroup("fleetos", help="FleetOS operator commands.")

MARKS = {"ok": "  ok  ", "warn": " warn ", "FAIL": " FAIL ", "info": "      "}


@fleetos_cli.command("verify")
def verify_command() -> None:
    """Check that the emergent-contacts schema and data are in place (exit 1 if not)."""
    from .verify import FAIL, WARN, run_checks

    results = run_checks()
    for result in results:
        click.echo(f"[{MARKS[result.status]}] {result.message}")
    failed = sum(r.status == FAIL for r in results)
    warned = sum(r.status == WARN for r in results)
    passed = sum(r.status == "ok" for r in results)
    click.echo(f"{passed} passed, {failed} failed, {warned} warnings")
    if failed:
        sys.exit(1)


@fleetos_cli.command("seed-demo")
def seed_demo_command() -> None:
    """Load demo companies, contacts and requests (safe to run again)."""
    from .demo import seed_demo

    added = seed_demo()
    click.echo(
        f"Demo data: {added} rows added." if added else "Demo data already present; nothing added."
    )


@fleetos_cli.command("deliver")
@click.option("--loop", is_flag=True, help="Keep delivering until stopped (a worker process).")
@click.option(
    "--interval",
    default=5.0,
    show_default=True,
    help="With --loop: seconds between polls. Queued mail wakes the worker at once anyway.",
)
@click.option("--batch", default=100, show_default=True, help="Messages per pass at most.")
def deliver_command(loop: bool, interval: float, batch: int) -> None:
    """Send the outbox's pending mail (retries with backoff; safe to run several at once).

    With --loop, a worker that sends mail as soon as it is queued (LISTEN/NOTIFY)
    and rides through database outages; SIGTERM or SIGINT stop it after the
    message in hand.
    """
    import signal
    import threading

    from flask import current_app

    from .database import describe, is_unavailable
    from .outbox import deliver_due, run_worker

    if not loop:
        try:
            click.echo(str(deliver_due(limit=batch)))
        except Exception as exc:
            if not is_unavailable(exc):
                raise
            raise click.ClickException(f"database unavailable: {describe(exc)}") from None
        return

    stopping = threading.Event()

    def stop(signum: int, frame: object) -> None:  # finish the current message, then exit
        stopping.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    run_worker(
        current_app._get_current_object(),  # type: ignore[attr-defined]
        interval=interval,
        batch=batch,
        stopping=stopping,
        report=lambda report: click.echo(str(report)),
    )


@fleetos_cli.command("send-daily-links")
def send_daily_links_command() -> None:
    """Queue today's dashboard link for each recently active supplier contact (once a day)."""
    from .actions.digest import send_daily_links

    queued = send_daily_links()
    click.echo(f"queued {queued} daily links" if queued else "no daily links to queue today")


@fleetos_cli.command("forget-used-links")
def forget_used_links_command() -> None:
    """Delete the records of used sign-in links that have expired anyway (safe to run often)."""
    from .actions.housekeeping import forget_expired_links

    click.echo(f"forgot {forget_expired_links()} expired used links")


@fleetos_cli.command("verify-domain")
@click.argument("domain")
def verify_domain_command(domain: str) -> None:
    """Check DOMAIN's TXT records against every company's claim to it (exit 1 if none holds)."""
    from .actions.domains import check_all_claims
    from .domain_errors import Invalid

    try:
        results = check_all_claims(domain)
    except Invalid as exc:
        raise click.ClickException(exc.message) from None
    if not results:
        raise click.ClickException(f"no company has claimed {domain}")
    for result in results:
        outcome = result.refusal or (result.checked.message if result.checked else "")
        click.echo(f"{result.company.name}: {outcome}")
    if not any(result.checked and result.checked.verified for result in results):
        sys.exit(1)
