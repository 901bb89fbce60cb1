"""Models and migrations describe the same database."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from fleetos.extensions import db
from tests.migrations.conftest import migrate
from tests.support.apps import app_for


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
        from tests.support.database import run_sql_files

        run_sql_files(v1_database, "seed_applied_by_hand.sql")
    migrate(v1_database)
    assert schema_differences(v1_database) == []


# What 0002_emergent_contacts.py classified as public mail domains when it ran on
# live databases. A migration that has run must not change meaning, so its copy
# stays frozen, whatever later becomes of fleetos.domains (a maintained list replaces it).
FROZEN_0002_PUBLIC_MAIL_DOMAINS = frozenset(
    {
        "gmail.com", "googlemail.com", "yahoo.com", "yahoo.co.uk", "ymail.com", "outlook.com",
        "hotmail.com", "hotmail.co.uk", "live.com", "live.co.uk", "msn.com", "icloud.com",
        "me.com", "mac.com", "aol.com", "proton.me", "protonmail.com", "pm.me", "gmx.com",
        "gmx.de", "gmx.net", "web.de", "mail.com", "yandex.com", "yandex.ru", "mail.ru",
        "zoho.com", "fastmail.com", "hey.com", "btinternet.com", "sky.com", "virginmedia.com",
        "talktalk.net", "comcast.net", "verizon.net", "att.net", "orange.fr", "free.fr",
        "laposte.net", "wanadoo.fr", "libero.it", "t-online.de", "bigpond.com", "shaw.ca",
        "rogers.com", "qq.com", "163.com", "126.com", "rediffmail.com",
    }
)  # fmt: skip


def test_migration_public_domains_stay_frozen():
    import importlib.util

    from fleetos import MIGRATIONS_DIR

    spec = importlib.util.spec_from_file_location(
        "m0002", MIGRATIONS_DIR / "versions" / "0002_emergent_contacts.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert len(module.PUBLIC_MAIL_DOMAINS) == len(FROZEN_0002_PUBLIC_MAIL_DOMAINS)
    assert set(module.PUBLIC_MAIL_DOMAINS) == FROZEN_0002_PUBLIC_MAIL_DOMAINS
