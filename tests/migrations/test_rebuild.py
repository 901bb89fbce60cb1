"""The v1 upgrade rebuilds service_requests beside the v1 table: what it carries, what it refuses."""

from __future__ import annotations

import pytest
from flask_migrate import upgrade

from migrations import requests_rebuild
from tests.migrations.conftest import (
    app_for,
    database_name,
    dump,
    execute,
    flask_cli,
    migrate,
    migration_sql,
    query,
)
from tests.migrations.test_refusals import assert_refused


def test_v1_writers_are_locked_out_before_anything_is_read():
    """The upgrade's first statement stops v1 writers; only then does it read v1 data."""
    sql = migration_sql("0001_fleetos_v1:0002_emergent_contacts")
    lock = sql.index("LOCK TABLE companies, users, service_requests IN SHARE MODE;")
    first_read = min(
        sql.index(f"FROM {table}") for table in ("service_requests", "users", "companies")
    )
    assert lock < first_read


def test_an_index_a_dba_added_grants_and_comments_are_carried_over(v1_database):
    execute(
        v1_database,
        "CREATE INDEX service_requests_vehicle_lower ON service_requests (lower(vehicle))"
        "  WHERE status <> 'closed';"
        " GRANT SELECT, INSERT ON service_requests TO PUBLIC;"
        " COMMENT ON TABLE service_requests IS 'Work for suppliers';"
        " COMMENT ON COLUMN service_requests.vehicle IS 'Plate or unit number';",
    )
    migrate(v1_database)
    assert query(
        v1_database,
        "SELECT pg_get_indexdef('service_requests_vehicle_lower'::regclass),"
        " has_table_privilege('public', 'service_requests', 'INSERT'),"
        " obj_description('service_requests'::regclass, 'pg_class'),"
        " col_description('service_requests'::regclass, 5)",
    ) == [
        (
            "CREATE INDEX service_requests_vehicle_lower ON public.service_requests"
            " USING btree (lower(vehicle)) WHERE (status <> 'closed'::text)",
            True,
            "Work for suppliers",
            "Plate or unit number",
        )
    ]
    assert flask_cli(v1_database, "fleetos", "verify").returncode == 0


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ("ALTER TABLE service_requests ADD COLUMN mileage int", "column mileage"),
        (
            "ALTER TABLE service_requests ALTER COLUMN vehicle TYPE varchar(20)",
            "column vehicle of type character varying(20)",
        ),
        (
            "ALTER TABLE service_requests ALTER COLUMN supplier_email SET NOT NULL",
            "NOT NULL on column supplier_email",
        ),
        (
            "CREATE VIEW open_work AS SELECT * FROM service_requests WHERE status = 'open'",
            "view open_work",
        ),
        (
            "ALTER TABLE service_requests ADD CONSTRAINT title_not_blank CHECK (title <> '')",
            "constraint title_not_blank",
        ),
        (
            "CREATE FUNCTION touch() RETURNS trigger LANGUAGE plpgsql AS"
            " 'BEGIN NEW.updated_at = now(); RETURN NEW; END';"
            " CREATE TRIGGER touch BEFORE UPDATE ON service_requests"
            " FOR EACH ROW EXECUTE FUNCTION touch()",
            "trigger touch",
        ),
    ],
)
def test_what_the_rebuild_could_not_carry_is_refused_by_name(v1_database, change, named):
    execute(v1_database, change)
    stderr = assert_refused(
        v1_database,
        f"service_requests has {named}, which FleetOS does not know",
        "Drop or move them first",
        "Nothing was changed",
    )
    # A v1 column a DBA retyped is not to be dropped with its data, but typed back.
    back = "goes back to the type v1 gave it instead (ALTER TABLE service_requests ALTER COLUMN"
    assert (back in stderr) == (" of type " in named)


def test_a_v1_column_with_another_collation_gets_the_v2_default(v1_database):
    """The rebuilt table is the v2 model's, whatever collation a DBA gave a v1 column."""
    execute(v1_database, 'ALTER TABLE service_requests ALTER COLUMN vehicle TYPE text COLLATE "C"')
    migrate(v1_database)
    assert query(
        v1_database,
        "SELECT attname, attcollation = (SELECT oid FROM pg_collation WHERE collname = 'default')"
        "  FROM pg_attribute WHERE attrelid = 'service_requests'::regclass"
        "   AND atttypid = 'text'::regtype AND NOT attisdropped ORDER BY attnum",
    ) == [
        (column, True)
        for column in ("supplier_email", "vehicle", "title", "description", "priority", "status")
    ] + [("location", True)]


# Suppliers known only by an address: one with an accented capital, one whose
# user has a capital I, and Bob's domain in capitals.
SUPPLIERS_BY_ADDRESS = """
INSERT INTO companies (company_id, name, company_type, email_domain) VALUES
  ('55555555-5555-4555-8555-555555555555', 'Oficina Ltda', 'supplier', NULL),
  ('66666666-6666-4666-8666-666666666666', 'FixIt Mobile', 'supplier', NULL);
UPDATE companies SET email_domain = 'BOBSREPAIR.COM' WHERE email_domain = 'bobsrepair.com';
INSERT INTO users (company_id, email) VALUES
  ('55555555-5555-4555-8555-555555555555', 'josé@oficina.example'),
  ('66666666-6666-4666-8666-666666666666', 'MIKE@FIXIT.EXAMPLE');
INSERT INTO service_requests (created_by_user_id, supplier_email, vehicle, title) VALUES
  ('aaaaaaaa-0000-4000-8000-000000000003', 'JOSÉ@OFICINA.EXAMPLE', 'NW-11', 'Clutch'),
  ('aaaaaaaa-0000-4000-8000-000000000003', 'mike@fixit.example', 'NW-12', 'Battery'),
  ('aaaaaaaa-0000-4000-8000-000000000003', 'Workshop@BobsRepair.com', 'NW-13', 'Lights');
"""
# What the upgrade makes of v1's data, by value (companies it creates get new ids).
CARRIED = {
    "contacts": "SELECT co.name, c.contact_value, c.contact_type"
    " FROM contacts c JOIN companies co USING (company_id)",
    "service_requests": "SELECT r.title, f.name, s.name FROM service_requests r"
    " LEFT JOIN companies f ON f.company_id = r.fleet_company_id"
    " LEFT JOIN companies s ON s.company_id = r.supplier_company_id",
}


@pytest.mark.parametrize(
    ("column", "collation"),
    [
        ("service_requests.supplier_email", "C"),
        ("users.email", "C"),
        ("users.email", "tr-x-icu"),
        ("companies.email_domain", "tr-x-icu"),
    ],
)
def test_a_v1_column_with_another_deterministic_collation_is_carried_alike(
    v1_database, make_database, column, collation
):
    """lower() follows a column's collation: under "C" JOSÉ@ keeps its capital É, under
    Turkish the I of MIKE@ becomes a dotless i. The upgrade lower-cases addresses as the app does, whatever the
    column's collation, so each request keeps its supplier."""
    execute(v1_database, SUPPLIERS_BY_ADDRESS)
    reference = make_database(database_name(v1_database))  # the same data, as it came
    table, name = column.split(".")
    if not query(v1_database, "SELECT 1 FROM pg_collation WHERE collname = %s", (collation,)):
        pytest.skip(f"this PostgreSQL has no collation {collation} (built without ICU)")
    execute(v1_database, f'ALTER TABLE {table} ALTER COLUMN {name} TYPE text COLLATE "{collation}"')
    migrate(v1_database)
    migrate(reference)
    for what, sql in CARRIED.items():
        carried = query(v1_database, f"{sql} ORDER BY 1, 2, 3")
        assert carried == query(reference, f"{sql} ORDER BY 1, 2, 3"), what
    # carried: the requests, by title, with their fleet and supplier
    suppliers = {title: supplier for title, _, supplier in carried}
    assert suppliers["Clutch"] == "Oficina Ltda"
    assert suppliers["Battery"] == "FixIt Mobile"
    assert suppliers["Lights"] == "Bob's Truck Repair"
    assert flask_cli(v1_database, "fleetos", "verify").returncode == 0


def test_a_revision_that_changes_the_v1_table_during_the_rebuild_is_refused(
    v1_database, monkeypatch, capfd
):
    """A later revision that ALTERs service_requests by name would lose its change at the swap."""
    swap = requests_rebuild.swap_sql
    monkeypatch.setattr(
        requests_rebuild,
        "swap_sql",
        lambda: "ALTER TABLE service_requests ADD COLUMN rogue int;\n" + swap(),
    )
    before = dump(v1_database)
    with app_for(v1_database), pytest.raises(SystemExit):
        upgrade()
    error = capfd.readouterr().err
    assert "FleetOS refused the upgrade: a revision changed the v1 service_requests" in error
    assert "the rebuilt table lacks column rogue" in error
    assert dump(v1_database) == before


def test_a_revision_not_written_for_the_rebuild_runs_after_the_swap(
    v1_database, make_database, monkeypatch
):
    """A revision without REBUILD_AWARE finds the new service_requests under its own name."""
    reference = make_database(database_name(v1_database))  # the same v1 database, upgraded
    migrate(reference)  # as it is
    aware = requests_rebuild.runs_while_rebuilding
    monkeypatch.setattr(
        requests_rebuild,
        "runs_while_rebuilding",
        lambda module: aware(module) and module.revision != "0005_dashboard",
    )
    tables = []
    table = requests_rebuild.table
    monkeypatch.setattr(requests_rebuild, "table", lambda: tables.append(table()) or tables[-1])
    migrate(v1_database)
    # 0004 built on the new table before the swap; 0005 and every revision after it
    # came after the swap, the ordinary way.
    assert len(tables) > 2
    assert tables == [requests_rebuild.NEW_TABLE] + ["service_requests"] * (len(tables) - 1)
    assert dump(v1_database, "--schema-only") == dump(reference, "--schema-only")
    assert flask_cli(v1_database, "fleetos", "verify").returncode == 0


def test_every_revision_of_a_v1_upgrade_runs_before_the_swap():
    """Readers wait only for the swap: no revision of the chain runs after it (REBUILD_AWARE).

    Nor does any take ACCESS EXCLUSIVE on companies before it: 0007's ALTERs
    of companies are handed to the swap, which locks companies with
    service_requests.
    """
    sql = migration_sql("0001_fleetos_v1:head")
    swap_lock = "LOCK TABLE service_requests, companies IN ACCESS EXCLUSIVE MODE"
    swap = sql.index(swap_lock)
    last_revision = sql.rindex("-- Running upgrade")
    last_statement = sql.rindex("UPDATE alembic_version")
    assert last_revision < last_statement < swap
    assert sql.count("IN ACCESS EXCLUSIVE MODE") == 1
    altered = [at for at in range(len(sql)) if sql.startswith("ALTER TABLE companies", at)]
    assert altered  # 0007's column and unique constraint
    assert min(altered) > swap
    assert min(altered) < sql.index("DROP TABLE service_requests")


def test_new_tables_reference_the_rebuilt_table_and_keep_their_keys(v1_database):
    """attachments' foreign key, made against the table being built, follows it through the swap."""
    migrate(v1_database)
    children = {
        child
        for (child,) in query(
            v1_database,
            "SELECT conrelid::regclass::text FROM pg_constraint"
            " WHERE contype = 'f' AND confrelid = 'service_requests'::regclass",
        )
    }
    assert {"attachments", "event_log"} <= children
    (request_id, company_id) = query(
        v1_database, "SELECT request_id, fleet_company_id FROM service_requests LIMIT 1"
    )[0]
    execute(
        v1_database,
        "INSERT INTO attachments (request_id, company_id, filename, content_type, size_bytes,"
        f" sha256) VALUES ('{request_id}', '{company_id}', 'a.pdf', 'application/pdf', 10,"
        f" '{'ab' * 32}');"
        f" DELETE FROM service_requests WHERE request_id = '{request_id}'",
    )
    assert query(v1_database, "SELECT count(*) FROM attachments") == [(0,)]  # cascaded
    assert flask_cli(v1_database, "fleetos", "verify").returncode == 0
