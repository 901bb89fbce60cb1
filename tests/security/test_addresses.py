"""Issue 10, item 1 (input side): an address goes out correctly or is refused at the form.

As reported: ``josé@nowhere.example`` or ``dana@…`` with a Cyrillic U+0430 for its a, typed at
``/auth/login`` were queued, and the mail worker died on them; the same path
exists for sign-up, invitations and a request's supplier address. Decided:

* a local part (before the @) mixing alphabets, like that dana, is refused
  on every form, always: it is the look-alike of another mailbox;
* a non-ASCII local part (``josé``) is refused with a clear message, unless the
  operator says the relay takes SMTPUTF8 (``MAIL_SMTPUTF8=true``): then it is
  accepted and goes out with SMTPUTF8;
* an internationalised domain (``bücher.example``) is fine: it goes out in its
  ASCII form; a domain label that mixes alphabets is refused like a local part.

Every form that takes an address is tried with each kind.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from flask import Flask

from fleetos.extensions import db
from fleetos.outbox import deliver_due
from tests.faults.servers import SmtpServer
from tests.support.apps import build_app, database, mail_config
from tests.support.web import Browser, World, counts, make_world, signed_in

JOSE = "josé@nowhere.example"
LOOKALIKE = "d\u0430na@nowhere.example"  # "dana" with a Cyrillic a (U+0430)
LOOKALIKE_DOMAIN = "dana@\u0430cme-fleet.example"  # acme-fleet with a Cyrillic a
IDN = "dana@bücher.example"

SMTPUTF8_REFUSAL = "cannot send mail to an address with accents"
LOOKALIKE_REFUSAL = "This address mixes alphabets"


@pytest.fixture
def utf8_smtp() -> Iterator[SmtpServer]:
    server = SmtpServer(smtputf8=True)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def app_with(head_database, utf8_smtp) -> Iterator[Callable[..., Flask]]:
    apps: list[Flask] = []

    def make(**overrides: object) -> Flask:
        apps.append(build_app(head_database, **{**mail_config(utf8_smtp), **overrides}))
        return apps[-1]

    yield make
    for app in apps:
        with app.app_context():
            db.engine.dispose()


def each_form(app: Flask, smtp, world: World) -> dict[str, Callable[[str], object]]:
    """Every form that takes an address: the address typed in, the response back."""
    visitor = Browser(app.test_client(), smtp)
    dana = signed_in(app, smtp, world.contacts["dana"])
    return {
        "sign-in": lambda address: visitor.post("/auth/login", {"address": address}),
        "sign-up": lambda address: visitor.post(
            "/auth/signup",
            {"company_name": "New Garage", "company_type": "supplier", "address": address},
            page="/auth/signup",
        ),
        "invite": lambda address: dana.post(
            "/auth/invite", {"address": address}, page="/auth/invite"
        ),
        "request": lambda address: dana.post(
            "/requests",
            {"supplier_address": address, "vehicle": "Unit 7", "title": "Brakes"},
            page="/requests/new",
        ),
    }


FORMS = ["sign-in", "sign-up", "invite", "request"]
FIELD = {
    "sign-in": "address",
    "sign-up": "address",
    "invite": "address",
    "request": "supplier_address",
}


@pytest.fixture
def world_on(app_with):
    """The four-company world, on an app built with the test's settings."""

    def make(**overrides: object) -> tuple[Flask, World]:
        app = app_with(**overrides)
        return app, make_world(app)

    return make


@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize("smtputf8", [False, True], ids=["relay-ascii", "relay-smtputf8"])
@pytest.mark.parametrize("address", [LOOKALIKE, LOOKALIKE_DOMAIN], ids=["local", "domain"])
def test_a_lookalike_address_is_refused_on_every_form(world_on, utf8_smtp, form, smtputf8, address):
    app, world = world_on(MAIL_SMTPUTF8=smtputf8)
    before = counts(app)
    response = each_form(app, utf8_smtp, world)[form](address)
    assert response.status_code == 422
    assert LOOKALIKE_REFUSAL in response.text
    assert "“\u0430” (Cyrillic)" in response.text  # names the odd letter
    assert f'id="{FIELD[form]}-error"' in response.text
    assert f'value="{address}"' in response.text  # what was typed is kept
    assert counts(app) == before


@pytest.mark.parametrize("form", FORMS)
def test_a_non_ascii_local_part_is_refused_unless_the_relay_takes_smtputf8(
    world_on, utf8_smtp, form
):
    app, world = world_on(MAIL_SMTPUTF8=False)
    before = counts(app)
    response = each_form(app, utf8_smtp, world)[form](JOSE)
    assert response.status_code == 422
    assert SMTPUTF8_REFUSAL in response.text
    assert f'id="{FIELD[form]}-error"' in response.text
    assert f'value="{JOSE}"' in response.text
    assert counts(app) == before


@pytest.mark.parametrize("form", FORMS)
def test_a_non_ascii_local_part_goes_out_with_smtputf8_when_the_relay_takes_it(
    world_on, utf8_smtp, form
):
    app, world = world_on(MAIL_SMTPUTF8=True)
    response = each_form(app, utf8_smtp, world)[form](JOSE)
    assert response.status_code in (200, 303), response.text
    with database(app):
        report = deliver_due()
    assert (report.sent, report.failed) == (1, 0)
    [envelope] = utf8_smtp.envelopes
    assert envelope.rcpt_tos == [JOSE] and envelope.smtputf8


@pytest.mark.parametrize("form", FORMS)
def test_an_internationalised_domain_goes_out_in_ascii(world_on, utf8_smtp, form):
    app, world = world_on(MAIL_SMTPUTF8=False)
    response = each_form(app, utf8_smtp, world)[form](IDN)
    assert response.status_code in (200, 303), response.text
    with database(app):
        report = deliver_due()
    assert (report.sent, report.failed) == (1, 0)
    [envelope] = utf8_smtp.envelopes
    assert envelope.rcpt_tos == ["dana@xn--bcher-kva.example"] and not envelope.smtputf8


@pytest.mark.parametrize(
    "address", ["yamada@例え.jp", "山田@例え.jp", "ドメイン名例@example.jp", "müller@straße.de"]
)
def test_scripts_that_belong_together_are_not_lookalikes(app_context, address):
    from fleetos.contacts import ensure_mailable

    app_context.config["MAIL_SMTPUTF8"] = True
    ensure_mailable(address)  # no InvalidContact
