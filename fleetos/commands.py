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
