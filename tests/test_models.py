"""Models and migrations describe the same database."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from fleetos.extensions import db
from tests.conftest import app_for
from tests.migrations.conftest import migrate


def schema_differences(url: str) -> list:
    with app_for(url), db.engine.connect() as connection:
        context = MigrationContext.configure(
            connection, opts={"compare_type": True, "compare_server_default": True}
        )
        return compare_metadata(context, db.metadata)


def test_autogenerate_finds_nothing_on_a_new_database(head_database):
    assert schema_differences(head_database) == []


@pytest.mark.parametrize("by_hand", [False, True])
def test_autogenerate_finds_nothing_on_an_upgraded_v1_database(v1_database, by_hand):
    if by_hand:
        from tests.conftest import run_sql_files

        run_sql_files(v1_database, "seed_applied_by_hand.sql")
    migrate(v1_database)
    assert schema_differences(v1_database) == []


def test_migration_public_domains_match_the_app():
    import importlib.util

    from fleetos import MIGRATIONS_DIR
    from fleetos.domains import PUBLIC_MAIL_DOMAINS

    spec = importlib.util.spec_from_file_location(
        "m0002", MIGRATIONS_DIR / "versions" / "0002_emergent_contacts.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert set(module.PUBLIC_MAIL_DOMAINS) == PUBLIC_MAIL_DOMAINS
