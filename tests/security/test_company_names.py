"""Issue 10, item 7 (company names): no look-alike of a company with a verified domain.

Reported: a new company took an existing company's exact name. A company with
a verified domain is shown with it everywhere, and its exact name is refused.
"""

from __future__ import annotations

from fleetos.outbox import deliver_due
from tests.mailserver import text_body
from tests.support.apps import database
from tests.support.web import Browser


def sign_up(browser: Browser, name: str, email: str):
    return browser.post(
        "/auth/signup",
        {"company_name": name, "company_type": "supplier", "email": email},
        page="/auth/signup",
    )


def test_the_exact_name_of_a_verified_company_is_refused(app, world, smtp):
    browser = Browser(app.test_client(), smtp)
    for name in ["Bob's Truck Repair", "  bob's  TRUCK repair "]:
        refused = sign_up(browser, name, "mallory@lookalike.example")
        assert refused.status_code == 422
        assert "Bob&#39;s Truck Repair (bobsrepair.com) is already on FleetOS" in refused.text
        assert "mallory@lookalike.example" in refused.text  # what was typed is kept
    # A company without a verified domain proves nothing by its name: it may be shared.
    assert sign_up(browser, "Quick Tyres", "other@quick.example").status_code == 200


def test_the_name_taken_after_the_link_was_asked_for_is_refused_when_it_is_used(app, smtp):
    from fleetos.extensions import db
    from fleetos.models import Company

    browser = Browser(app.test_client(), smtp)
    sign_up(browser, "Acme Fleet", "dana@acme-copy.example")
    path = browser.last_link_to("dana@acme-copy.example")
    with database(app):
        db.session.add(
            Company(name="Acme Fleet", company_type="fleet", email_domain="acme.example")
        )
        db.session.commit()
    refused = browser.use_link(path)
    assert (
        refused.status_code == 422
        and "Acme Fleet (acme.example) is already on FleetOS" in refused.text
    )


def test_a_verified_company_is_shown_with_its_domain(app, world, as_, smtp):
    dana = as_("dana")
    page = dana.client.get(f"/requests/{world.request_id}").text
    assert "Bob&#39;s Truck Repair (bobsrepair.com)" in page
    # The dashboard's rows name the other company the same way.
    dashboard = dana.client.get("/dashboard").text
    assert "Bob&#39;s Truck Repair (bobsrepair.com)" in dashboard
    dana.post(
        "/requests",
        {
            "vehicle": "Unit 7",
            "title": "Brake check",
            "priority": "normal",
            "supplier_email": "desk@new-garage.example",
        },
        page="/requests/new",
    )
    with database(app):
        deliver_due()
    [mail] = smtp.to("desk@new-garage.example")
    # In mail the domain reads as text, never as a link: any company can verify a domain,
    # so a name like "Bank (bank-verify.com)" must not become a link in a mail client.
    assert mail["Subject"] == "New service request from Acme Fleet (acme-fleet[.]com): Brake check"
    assert "(Acme Fleet (acme-fleet[.]com))" in text_body(mail)
