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
    from .actions.housekeeping import forget_expired_credentials, forget_expired_links

    click.echo(f"forgot {forget_expired_links()} expired used links")
    click.echo(f"forgot {forget_expired_credentials()} expired codes and short links")


@fleetos_cli.command("forget-ended-sessions")
def forget_ended_sessions_command() -> None:
    """Delete sessions that were signed out or expired more than a day ago (safe to run often)."""
    from .actions.housekeeping import forget_ended_sessions

    click.echo(f"forgot {forget_ended_sessions()} ended sessions")


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


attachments_cli = AppGroup("attachments", help="Photos and documents: storage housekeeping.")
fleetos_cli.add_command(attachments_cli)


@attachments_cli.command("gc")
@click.option(
    "--older-than",
    default=24.0,
    show_default=True,
    help="Hours: only files written longer ago than this. It must exceed "
    "ATTACHMENT_KEEP_SECONDS, or files that a refused form still keeps would go.",
)
@click.option("--dry-run", is_flag=True, help="Only list what would be deleted.")
def attachments_gc_command(older_than: float, dry_run: bool) -> None:
    """Delete stored files that no attachment refers to (uploads whose transaction failed,
    or whose form was never sent again). Safe to run while FleetOS serves; schedule daily."""
    from datetime import timedelta

    from flask import current_app

    from .actions.attachments import collect_garbage
    from .attachments.storage import StorageUnavailable

    keep_seconds = current_app.config["ATTACHMENT_KEEP_SECONDS"]
    if older_than * 3600 < keep_seconds:
        raise click.ClickException(
            f"--older-than {older_than:g} hours is less than ATTACHMENT_KEEP_SECONDS "
            f"({keep_seconds} s): files kept for a refused form could be deleted"
        )
    try:
        collected = collect_garbage(timedelta(hours=older_than), dry_run=dry_run)
    except StorageUnavailable as exc:
        raise click.ClickException(f"attachment storage unavailable: {exc}") from None
    for key in collected.deleted:
        click.echo(f"{'would delete' if dry_run else 'deleted'} {key}")
    click.echo(
        f"{len(collected.deleted)} files {'to delete' if dry_run else 'deleted'}, "
        f"{collected.kept_referenced} in use, {collected.kept_young} too recent to tell"
    )


@fleetos_cli.command("receive-mail")
@click.option("--sender", default=None, help="The envelope sender (MAIL FROM; Postfix: ${sender}).")
@click.option(
    "--recipient",
    "recipients",
    multiple=True,
    help="The envelope recipient (Postfix: ${recipient}); without it, the headers say.",
)
def receive_mail_command(sender: str | None, recipients: tuple[str, ...]) -> None:
    """Read one reply (an RFC 5322 message) on standard input and act on its request.

    Exit status (sysexits): 0 accepted (also when recorded and ignored), 65 a
    message that cannot be read, 67 an unknown or invalid reply address, 75 the
    database cannot be reached (the MTA tries again later).
    """
    from flask import current_app

    from .inbound.receive import Status, receive_mail

    limit = int(current_app.config["INBOUND_MAIL_MAX_BYTES"])
    raw = sys.stdin.buffer.read(limit + 1)
    received = receive_mail(raw, envelope_sender=sender, envelope_recipients=recipients)
    if received.status is not Status.ACCEPTED:
        click.echo(f"fleetos receive-mail: {received.detail}", err=True)
    sys.exit(int(received.status))


@fleetos_cli.command("mail-gateway")
@click.option(
    "--bind",
    default="127.0.0.1:8025",
    show_default=True,
    help="HOST:PORT to listen on ([::1]:25 for IPv6).",
)
@click.option("--lmtp", is_flag=True, help="Speak LMTP (for an MTA's lmtp: transport) not SMTP.")
def mail_gateway_command(bind: str, lmtp: bool) -> None:
    """Receive replies over SMTP (or LMTP) until stopped (SIGTERM or SIGINT).

    Refuses unknown reply addresses at RCPT TO (550), messages over
    INBOUND_MAIL_MAX_BYTES (552), and answers 451 while the database is away.
    """
    import signal
    import threading

    from flask import current_app

    from .inbound.gateway import gateway

    host, _, port = bind.rpartition(":")
    if not host or not port.isdigit():
        raise click.BadParameter("give HOST:PORT, e.g. 127.0.0.1:8025", param_hint="--bind")
    server = gateway(current_app._get_current_object(), host.strip("[]"), int(port), lmtp=lmtp)  # type: ignore[attr-defined]
    stopping = threading.Event()

    def stop(signum: int, frame: object) -> None:
        stopping.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    server.start()
    click.echo(f"FleetOS mail gateway ({'LMTP' if lmtp else 'SMTP'}) on {bind}", err=True)
    try:
        stopping.wait()
    finally:
        server.stop()
