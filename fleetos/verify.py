"""`flask fleetos verify`: the plan's verification queries as a checklist.

Each check is a small function returning :class:`Check` results, so the
command prints one line per fact and exits 1 if any check failed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from alembic.script import ScriptDirectory
from flask import current_app
from sqlalchemy import select, text
from sqlalchemy.orm import InstrumentedAttribute

from .extensions import db
from .lifecycle import STATUSES
from .models import ServiceRequest

OK, WARN, FAIL, INFO = "ok", "warn", "FAIL", "info"

TABLES = ("companies", "users", "contacts", "service_requests", "event_log")
REQUEST_COLUMNS = (
    "fleet_company_id",
    "supplier_company_id",
    "submitted_by_contact_id",
    "assigned_to_contact_id",
)
INDEXES = (
    "service_requests_pkey",
    "idx_service_requests_created_by",
    "idx_contacts_company",
    "idx_contacts_value",
    "idx_contacts_last_seen",
    "idx_service_requests_fleet_company",
    "idx_service_requests_supplier_company",
    "idx_service_requests_submitted_by",
    "idx_service_requests_assigned_to",
    "idx_event_log_company",
    "idx_event_log_contact",
    "idx_event_log_created",
    "idx_event_log_type",
    # Later revisions' (the v1 upgrade rebuilds service_requests with all of them).
    "idx_event_log_request",
    "idx_service_requests_supplier_address",
    "idx_service_requests_supplier_status_created",
    "idx_service_requests_fleet_status_created",
)
FUNCTIONS = {
    "get_or_create_contact": "p_contact_value text, p_company_id uuid, p_contact_type text, "
    "p_display_name text DEFAULT NULL::text",
    "get_last_active_contact": "p_company_id uuid",
}
FOREIGN_KEYS = tuple(f"service_requests_{column}_fkey" for column in REQUEST_COLUMNS)
# Once upgraded, a v1 app still running must fail to write, not write rows in
# the v1 shape (migration 0002_emergent_contacts).
V1_WRITE_GUARDS = ("users", "service_requests")


@dataclass(frozen=True)
class Check:
    status: str
    message: str


def _either(good: bool, passed: str, failed: str) -> Check:
    return Check(OK, passed) if good else Check(FAIL, failed)


def _scalar(sql: str, **params: object) -> object:
    return db.session.execute(text(sql), params).scalar()


def check_migration_head() -> Iterator[Check]:
    script = ScriptDirectory.from_config(current_app.extensions["migrate"].migrate.get_config())
    heads = set(script.get_heads())
    if _scalar("SELECT to_regclass('alembic_version')") is None:
        yield Check(FAIL, "the database has never been upgraded: run `flask db upgrade`")
        return
    current = {
        row[0] for row in db.session.execute(text("SELECT version_num FROM alembic_version"))
    }
    if current == heads:
        yield Check(OK, f"database at migration head ({', '.join(sorted(heads))})")
    else:
        yield Check(
            FAIL,
            f"database at {', '.join(sorted(current)) or 'no revision'}, head is "
            f"{', '.join(sorted(heads))}: run `flask db upgrade`",
        )


def check_tables_and_columns() -> Iterator[Check]:
    for table in TABLES:
        present = _scalar("SELECT to_regclass(:t) IS NOT NULL", t=table)
        yield Check(OK if present else FAIL, f"table {table}")
    for column in REQUEST_COLUMNS:
        present = _scalar(
            "SELECT 1 FROM information_schema.columns WHERE table_schema = current_schema()"
            " AND table_name = 'service_requests' AND column_name = :c",
            c=column,
        )
        yield Check(OK if present else FAIL, f"column service_requests.{column}")


def check_indexes() -> Iterator[Check]:
    for name in INDEXES:
        valid = _scalar(
            "SELECT i.indisvalid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid"
            " WHERE c.relname = :n AND c.relnamespace = current_schema()::regnamespace",
            n=name,
        )
        if valid is None:
            yield Check(FAIL, f"index {name} is missing")
        else:
            yield Check(OK if valid else FAIL, f"index {name}" + ("" if valid else " is INVALID"))


def check_constraints() -> Iterator[Check]:
    row = db.session.execute(
        text(
            "SELECT convalidated, pg_get_constraintdef(oid) FROM pg_constraint"
            " WHERE conname = 'valid_status' AND conrelid = 'service_requests'::regclass"
        )
    ).first()
    if row is None:
        yield Check(FAIL, "constraint valid_status is missing")
    else:
        validated, definition = row
        complete = all(f"'{status}'" in definition for status in STATUSES)
        v1_left = "'pending'" in definition
        good = validated and complete and not v1_left
        yield Check(
            OK if good else FAIL,
            "constraint valid_status validated "
            "(new, acknowledged, in_progress, completed, declined)"
            if good
            else f"constraint valid_status is not the v2 one, or not validated: {definition}",
        )
    for name in FOREIGN_KEYS:
        validated = _scalar("SELECT convalidated FROM pg_constraint WHERE conname = :n", n=name)
        state = "missing" if validated is None else ("validated" if validated else "NOT validated")
        yield Check(OK if validated else FAIL, f"foreign key {name} {state}")


def check_functions() -> Iterator[Check]:
    for name, arguments in FUNCTIONS.items():
        row = db.session.execute(
            text(
                "SELECT l.lanname, pg_get_function_arguments(p.oid), obj_description(p.oid)"
                " FROM pg_proc p JOIN pg_language l ON l.oid = p.prolang WHERE p.proname = :n"
            ),
            {"n": name},
        ).first()
        if row is None:
            yield Check(FAIL, f"function {name}() is missing")
        elif row[0] != "plpgsql" or row[1] != arguments or not row[2]:
            yield Check(FAIL, f"function {name}({row[1]}) in {row[0]} is not the expected one")
        else:
            yield Check(OK, f"function {name}({arguments})")


def check_v1_write_guards() -> Iterator[Check]:
    for table in V1_WRITE_GUARDS:
        present = _scalar(
            "SELECT 1 FROM pg_trigger WHERE tgname = 'refuse_v1_writes'"
            " AND tgrelid = to_regclass(:t) AND tgenabled <> 'D'",
            t=table,
        )
        yield _either(
            bool(present),
            f"v1-shaped writes to {table} are refused (trigger refuse_v1_writes)",
            f"trigger refuse_v1_writes on {table} is missing or disabled: a v1 app still "
            "running could write rows no company owns",
        )


def check_request_counts() -> Iterator[Check]:
    if _scalar("SELECT to_regclass('request_status_counts')") is None:
        return
    wrong = _scalar(
        """
        WITH actual AS (
            SELECT fleet_company_id AS company_id, 'fleet' AS side, status, count(*) AS n
              FROM service_requests WHERE fleet_company_id IS NOT NULL
             GROUP BY fleet_company_id, status
            UNION ALL
            SELECT supplier_company_id, 'supplier', status, count(*)
              FROM service_requests WHERE supplier_company_id IS NOT NULL
             GROUP BY supplier_company_id, status),
        kept AS (SELECT company_id, side, status, n FROM request_status_counts WHERE n <> 0)
        SELECT count(*) FROM ((TABLE actual EXCEPT TABLE kept)
                              UNION ALL (TABLE kept EXCEPT TABLE actual)) differing
        """
    )
    yield _either(
        wrong == 0,
        "request_status_counts agrees with service_requests",
        f"request_status_counts disagrees with service_requests on {wrong} counts "
        "(the dashboards' tab counts are wrong)",
    )


def check_migrated_data() -> Iterator[Check]:
    if _scalar("SELECT to_regclass('contacts')") is None:
        return
    v1_statuses = _scalar(
        "SELECT count(*) FROM service_requests WHERE NOT (status = ANY(:statuses))",
        statuses=list(STATUSES),
    )
    yield Check(
        OK if v1_statuses == 0 else FAIL,
        f"{v1_statuses} service requests with a status outside the v2 lifecycle",
    )
    users_without_contact = _scalar(
        "SELECT count(*) FROM users u WHERE NOT EXISTS (SELECT 1 FROM contacts c"
        # As 0002 made them: trimmed, lower-cased in the default collation.
        " WHERE c.contact_value = lower(btrim(u.email::text COLLATE \"default\", E' \\t\\r\\n')))"
    )
    yield Check(
        OK if users_without_contact == 0 else FAIL,
        f"{users_without_contact} v1 users without a contact",
    )
    yield from _requests_missing(
        ServiceRequest.fleet_company_id, "fleet company", "their v1 creator is gone"
    )
    yield from _requests_missing(
        ServiceRequest.supplier_company_id, "supplier company", "no supplier address"
    )


def _requests_missing(column: InstrumentedAttribute[Any], what: str, why: str) -> Iterator[Check]:
    ids = [
        str(request_id)
        for request_id in db.session.scalars(
            select(ServiceRequest.request_id)
            .where(column.is_(None))
            .order_by(ServiceRequest.created_at, ServiceRequest.request_id)
        )
    ]
    if not ids:
        yield Check(OK, f"every service request has a {what}")
    else:
        shown = ", ".join(ids[:5]) + (f" and {len(ids) - 5} more" if len(ids) > 5 else "")
        yield Check(WARN, f"{len(ids)} service requests without a {what} ({why}): {shown}")


def check_counts() -> Iterator[Check]:
    if _scalar("SELECT to_regclass('contacts')") is None:
        return
    counts = db.session.execute(
        text(
            "SELECT (SELECT count(*) FROM companies), (SELECT count(*) FROM contacts),"
            " (SELECT count(*) FROM users), (SELECT count(*) FROM service_requests),"
            " (SELECT count(*) FROM event_log WHERE event_type = 'company.created'"
            "   AND metadata ->> 'source' = '0002_emergent_contacts')"
        )
    ).one()
    companies, contacts, users, requests, created = counts
    yield Check(
        INFO,
        f"{companies} companies ({created} created by the upgrade), {contacts} contacts "
        f"(from {users} v1 users), {requests} service requests",
    )
    by_status = db.session.execute(
        text("SELECT status, count(*) FROM service_requests GROUP BY status ORDER BY status")
    ).all()
    if by_status:
        yield Check(INFO, "requests by status: " + ", ".join(f"{s} {n}" for s, n in by_status))


def check_attachment_files() -> Iterator[Check]:
    from .actions.attachments import missing_files
    from .attachments.storage import StorageUnavailable

    if _scalar("SELECT to_regclass('attachments')") is None:
        return
    try:
        total, missing = missing_files()
    except StorageUnavailable as exc:
        yield Check(FAIL, f"attachment storage cannot be read: {exc}")
        return
    if not missing:
        yield Check(OK, f"every attachment's file is in storage ({total} attachments)")
        return
    shown = "; ".join(
        f"{m.attachment_id} ({m.filename!r} on request {m.request_id})" for m in missing[:5]
    ) + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
    yield Check(FAIL, f"{len(missing)} attachments whose file is missing from storage: {shown}")


CHECKS: tuple[Callable[[], Iterator[Check]], ...] = (
    check_migration_head,
    check_tables_and_columns,
    check_indexes,
    check_constraints,
    check_functions,
    check_v1_write_guards,
    check_request_counts,
    check_migrated_data,
    check_counts,
    check_attachment_files,
)


def run_checks() -> list[Check]:
    results: list[Check] = []
    for check in CHECKS:
        results.extend(check())
        if check is check_tables_and_columns and any(r.status == FAIL for r in results):
            results.append(Check(FAIL, "schema incomplete: later checks skipped"))
            break
    db.session.rollback()  # read-only: leave no transaction open
    return results
