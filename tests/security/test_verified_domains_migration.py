"""Migration 0007: v1 domains count as verified; domains sign-ups took become claims to prove."""

from __future__ import annotations

from tests.migrations.conftest import V1_TABLES, dump, execute, migrate, migrate_down, query, rows

BOBS = "33333333-3333-4333-8333-333333333333"
SIGNED_UP = "77777777-7777-4777-8777-777777777777"
SECOND_BOBS = "88888888-8888-4888-8888-888888888888"


def test_v1_domains_stay_verified_and_sign_up_domains_become_claims(v1_database):
    migrate(v1_database, "0006_reliable_delivery")
    execute(
        v1_database,
        f"""
        -- The attack: a sign-up took hotmail.fr (FleetOS before 0007 registered it).
        INSERT INTO companies (company_id, name, company_type, email_domain, created_at)
        VALUES ('{SIGNED_UP}', 'Mallory Motors', 'supplier', 'Hotmail.fr', '2026-11-30');
        INSERT INTO event_log (event_type, company_id, metadata)
        VALUES ('company.created', '{SIGNED_UP}', '{{"via": "sign-up"}}');
        -- A v1 administrator registered bobsrepair.com twice, for two companies.
        INSERT INTO companies (company_id, name, company_type, email_domain, created_at)
        VALUES ('{SECOND_BOBS}', 'Bobs Again', 'supplier', ' BobsRepair.com', '2025-06-01');
        """,
    )
    schema_before = dump(v1_database, "--schema-only")
    rows_before = rows(v1_database, *V1_TABLES, "event_log", "contacts")

    migrate(v1_database, "0007_verified_domains")

    domains = dict(query(v1_database, "SELECT name, email_domain FROM companies"))
    assert domains["Acme Fleet"] == "acme-fleet.com"  # v1: verified, as it was stored
    assert domains["Bob's Truck Repair"] == "bobsrepair.com"  # the oldest of the two keeps it
    assert domains["Bobs Again"] is None and domains["Mallory Motors"] is None
    claims = query(
        v1_database,
        "SELECT company_id::text, domain, verified_at, unverified_registration"
        " FROM domain_claims ORDER BY domain",
    )
    assert claims == [
        (SECOND_BOBS, "bobsrepair.com", None, " BobsRepair.com"),
        (SIGNED_UP, "hotmail.fr", None, "Hotmail.fr"),
    ]

    migrate_down(v1_database, "0006_reliable_delivery")
    assert dump(v1_database, "--schema-only") == schema_before
    assert rows(v1_database, *V1_TABLES, "event_log", "contacts") == rows_before


def test_a_v1_public_domain_is_kept_but_never_routes(app_context):
    from fleetos.companies import CompanyService
    from fleetos.extensions import db
    from fleetos.models import Company

    db.session.add(Company(name="Gmail Garage", company_type="supplier", email_domain="GMAIL.com"))
    db.session.flush()
    assert CompanyService.for_domain("someone@gmail.com") is None
    garage = db.session.query(Company).one()
    assert garage.verified_domain is None and garage.label == "Gmail Garage"
