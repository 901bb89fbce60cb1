"""Configuration comes from the environment, and production refuses to guess."""

from __future__ import annotations

import pytest

from fleetos.config import ConfigError, load_config, normalise_database_url
from tests.support.apps import flask_cli


@pytest.mark.parametrize(
    "url",
    ["postgresql://u@db/fleetos", "postgresql+psycopg://u@db/fleetos", "postgres://u@db/fleetos"],
)
def test_database_url_forms_are_accepted(url):
    assert normalise_database_url(url) == "postgresql+psycopg://u@db/fleetos"


def test_sqlite_is_refused_with_a_message():
    with pytest.raises(ConfigError, match="must be a PostgreSQL URL"):
        normalise_database_url("sqlite:///fleetos.db")


@pytest.mark.parametrize(
    ("env", "missing"),
    [
        ({}, "SECRET_KEY and DATABASE_URL"),
        ({"SECRET_KEY": "k"}, "DATABASE_URL"),
        ({"DATABASE_URL": "postgresql://db/x"}, "SECRET_KEY"),
    ],
)
def test_production_names_what_is_missing(env, missing):
    with pytest.raises(ConfigError, match=f"without {missing}$"):
        load_config({"FLEETOS_ENV": "production", **env})


def test_production_start_is_one_line_not_a_traceback(head_database):
    result = flask_cli(head_database, "routes", FLEETOS_ENV="production", SECRET_KEY="")
    assert result.returncode == 1
    assert (
        result.stderr.strip()
        == "fleetos: FLEETOS_ENV=production refuses to start without SECRET_KEY"
    )


def test_environment_is_read(head_database):
    config = load_config(
        {
            "DATABASE_URL": "postgresql://u@db/x",
            "SECRET_KEY": "s",
            "BASE_URL": "https://fleetos.example/",
            "SECRET_KEY_FALLBACKS": "old2, old1",
        }
    )
    assert config["BASE_URL"] == "https://fleetos.example"
    assert config["SECRET_KEY_FALLBACKS"] == ["old2", "old1"]
    assert config["SQLALCHEMY_DATABASE_URI"] == "postgresql+psycopg://u@db/x"


def test_factory_registers_the_blueprints(app):
    assert {"auth", "dashboard", "requests"} <= set(app.blueprints)


def test_the_favicon_browsers_ask_for_is_served(app):
    with app.test_client().get("/favicon.ico") as response:
        assert response.status_code == 200
        assert response.data[:4] == b"\x00\x00\x01\x00"  # an ICO file
    assert 'rel="icon" href="/favicon.ico"' in app.test_client().get("/auth/login").text


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"ATTACHMENT_STORAGE": "ftp"}, "ATTACHMENT_STORAGE must be file or s3, not 'ftp'"),
        ({"ATTACHMENT_STORAGE": "s3"}, "ATTACHMENT_STORAGE=s3 needs S3_BUCKET"),
        ({"ATTACHMENT_MAX_BYTES": "15MB"}, "ATTACHMENT_MAX_BYTES must be a whole number"),
    ],
)
def test_attachment_settings_are_checked_at_start(env, message):
    with pytest.raises(ConfigError, match=message):
        load_config(env)


def test_attachment_settings_default_to_files_on_this_machine():
    config = load_config({})
    assert config["ATTACHMENT_STORAGE"] == "file" and config["ATTACHMENT_DIR"] is None
    assert config["ATTACHMENT_MAX_BYTES"] == 15_000_000
    s3 = load_config({"ATTACHMENT_STORAGE": "S3", "S3_BUCKET": "fleetos"})
    assert s3["ATTACHMENT_STORAGE"] == "s3" and s3["S3_BUCKET"] == "fleetos"
