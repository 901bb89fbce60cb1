"""Issue 10, item 7: invitations are listed with "revoke", and revoking means it.

As reported: invitations lived only in their links, so a company could neither
see nor withdraw them, and ``/auth/link/<token>/fresh`` re-issued an invitation
forever, even after its inviter had left the company. Now each invitation is
stored, listed on the company page with "Revoke", and its link (or a fresh one)
works only while it is not revoked and its inviter is still a contact there.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from sqlalchemy import update

from fleetos.extensions import db
from fleetos.models import Contact
from fleetos.outbox import deliver_due
from tests.mailserver import link_in
from tests.support.apps import database
from tests.support.web import CSRF_INPUT, Browser, contact, counts, events

INVITEE = "wes@acme-fleet.com"


def invite(dana: Browser, address: str = INVITEE) -> str:
    """Dana invites ``address`` from the company page; returns the mailed link's path."""
    response = dana.post(
        "/auth/invite", {"email": address, "back": "/dashboard/company"}, page="/dashboard/company"
    )
    assert response.status_code == 303, response.text
    with database(dana.app):
        deliver_due()
    return urlsplit(link_in(dana.smtp.to(address)[-1])).path


def revoke_button(page: str) -> str:
    match = re.search(r'action="(/auth/invitations/[0-9a-f-]{36}/revoke)"', page)
    assert match, "no Revoke button"
    return match.group(1)


def test_invitations_are_listed_and_a_revoked_one_lets_nobody_in(app, as_, smtp):
    dana = as_("dana")
    path = invite(dana)
    company_page = dana.client.get("/dashboard/company").text
    assert INVITEE in company_page[company_page.index('id="invitations"') :]

    revoked = dana.post(revoke_button(company_page), page="/dashboard/company")
    assert revoked.status_code == 303
    assert (
        "invitation to wes@acme-fleet.com is withdrawn"
        in dana.client.get("/dashboard/company").text
    )
    assert 'action="/auth/invitations/' not in dana.client.get("/dashboard/company").text
    [event] = events(app, "invitation.revoked")
    assert event.metadata_["invitee"] == INVITEE

    before = counts(app)
    wes = Browser(app.test_client(), smtp)
    page = wes.client.get(path)
    assert page.status_code == 410 and "This invitation was withdrawn" in page.text
    used = wes.client.post(path, data={"csrf_token": wes.csrf()})
    assert used.status_code == 410
    fresh = wes.client.post(f"{path}/fresh", data={"csrf_token": wes.csrf()})
    assert fresh.status_code == 410
    assert counts(app) == before  # no contact, no used link, no mail
    assert contact(app, INVITEE) is None


def test_only_the_company_that_sent_it_may_revoke_it(app, as_, smtp):
    page = (dana := as_("dana")).client.get("/dashboard/company").text
    invite(dana)
    button = revoke_button(dana.client.get("/dashboard/company").text)
    assert page  # the company page
    stranger = as_("bob")
    assert stranger.post(button, page="/dashboard").status_code == 404
    assert not events(app, "invitation.revoked")


def test_a_used_invitation_leaves_the_list(app, as_, smtp):
    dana = as_("dana")
    path = invite(dana)
    wes = Browser(app.test_client(), smtp)
    assert wes.use_link(path).status_code == 303
    assert contact(app, INVITEE).company_id == contact(app, "dana@acme-fleet.com").company_id
    assert 'action="/auth/invitations/' not in dana.client.get("/dashboard/company").text


def expired_invitation(dana: Browser, monkeypatch) -> str:
    """An invitation whose link has expired (invitation links live no time at all)."""
    path = invite(dana)
    monkeypatch.setitem(dana.app.config, "INVITE_LINK_MAX_AGE", -1)
    return path


def test_a_fresh_invitation_while_the_inviter_is_still_there(app, as_, smtp, monkeypatch):
    path = expired_invitation(as_("dana"), monkeypatch)
    wes = Browser(app.test_client(), smtp)
    assert wes.client.get(path).status_code == 410  # expired
    assert wes.client.post(f"{path}/fresh", data={"csrf_token": wes.csrf()}).status_code == 200
    monkeypatch.setitem(app.config, "INVITE_LINK_MAX_AGE", 7 * 86400)  # links live again
    fresh = wes.last_link_to(INVITEE)
    assert fresh != path and wes.use_link(fresh).status_code == 303


def test_no_fresh_invitation_once_the_inviter_has_left(app, world, as_, smtp, monkeypatch):
    path = expired_invitation(as_("dana"), monkeypatch)
    with database(app):  # Dana moves to another company
        db.session.execute(
            update(Contact)
            .where(Contact.contact_id == world.contacts["dana"])
            .values(company_id=world.companies["northwind"])
        )
        db.session.commit()
    wes = Browser(app.test_client(), smtp)
    sent = len(smtp.messages)
    fresh = wes.client.post(f"{path}/fresh", data={"csrf_token": wes.csrf()})
    assert fresh.status_code == 410 and "This invitation was withdrawn" in fresh.text
    with database(app):
        deliver_due()
    assert len(smtp.messages) == sent


def test_no_fresh_invitation_once_revoked(app, as_, smtp, monkeypatch):
    dana = as_("dana")
    path = expired_invitation(dana, monkeypatch)
    dana.post(revoke_button(dana.client.get("/dashboard/company").text), page="/dashboard")
    wes = Browser(app.test_client(), smtp)
    page = wes.client.get(path)
    assert CSRF_INPUT.search(page.text)  # the page still has a form (its own CSRF)
    fresh = wes.client.post(f"{path}/fresh", data={"csrf_token": wes.csrf()})
    assert fresh.status_code == 410
