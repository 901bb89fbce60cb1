"""Issue 10, item 2: a shared mail domain cannot be claimed; a company proves its domain by DNS.

DNS is real: dnspython asks a dnslib server on loopback (``dns_server``), which
answers with the TXT records a test publishes. Nothing of the lookup is mocked.
"""

from __future__ import annotations

import re
import threading

import pytest
from sqlalchemy import select

from fleetos.extensions import db
from fleetos.models import Company, Contact, DomainClaim
from fleetos.outbox import deliver_due
from tests.mailserver import text_body
from tests.support.apps import database, flask_cli
from tests.support.web import Browser, contact, signed_in

GOOD_REQUEST = {"vehicle": "Unit 7", "title": "Brake check", "priority": "normal"}
RECORD = re.compile(r"fleetos-verification=[0-9a-f]{32}")


def sign_up(browser: Browser, email: str, name: str, kind: str = "supplier") -> None:
    browser.post(
        "/auth/signup",
        {"company_name": name, "company_type": kind, "email": email},
        page="/auth/signup",
    )
    browser.use_link(browser.last_link_to(email))


def company_of(app, address: str) -> Company:
    with database(app):
        found = db.session.get(Company, contact(app, address).company_id)
        db.session.expunge_all()
        return found


def add_fleet(app, smtp, name: str = "Northwind Haulage", address: str = "nora@northwind.example"):
    with database(app):
        fleet = Company(name=name, company_type="fleet")
        db.session.add(fleet)
        db.session.flush()
        nora = Contact(company_id=fleet.company_id, contact_value=address, contact_type="email")
        db.session.add(nora)
        db.session.commit()
        return signed_in(app, smtp, nora.contact_id)


def mail_to(app, smtp, address: str) -> str:
    with database(app):
        deliver_due()
    messages = smtp.to(address)
    assert messages, f"no mail to {address}"
    return text_body(messages[-1])


def test_the_hotmail_fr_attack_claims_nothing(dns_app, smtp):
    """The attack as reported: the first sign-up at hotmail.fr took the domain."""
    app = dns_app
    mallory = Browser(app.test_client(), smtp)
    sign_up(mallory, "mallory@hotmail.fr", "Mallory Motors")
    assert company_of(app, "mallory@hotmail.fr").email_domain is None

    # A fleet sends work to someone else at hotmail.fr: not to Mallory's company.
    fleet = add_fleet(app, smtp)
    fleet.post(
        "/requests",
        {**GOOD_REQUEST, "supplier_email": "victim@hotmail.fr"},
        page="/requests/new",
    )
    with database(app):
        supplier = db.session.scalar(
            select(Company).where(Company.emerged_from_address == "victim@hotmail.fr")
        )
        assert supplier is not None and supplier.name == "victim@hotmail.fr"
    assert "Brake check" not in mallory.client.get("/dashboard").text

    # Someone else at hotmail.fr asks to sign in: told how to start, not offered Mallory's.
    Browser(app.test_client(), smtp).ask_for_link("someone@hotmail.fr")
    body = mail_to(app, smtp, "someone@hotmail.fr")
    assert "/auth/link/" not in body and "Mallory" not in body

    # Nor can Mallory claim it on the company page.
    refused = mallory.post(
        "/dashboard/company/domain", {"domain": "hotmail.fr"}, page="/dashboard/company"
    )
    assert refused.status_code == 422
    assert "hotmail.fr is a public mail domain" in refused.text
    assert 'value="hotmail.fr"' in refused.text
    with database(app):
        assert db.session.scalars(select(DomainClaim)).all() == []


@pytest.mark.parametrize(
    "domain", ["hotmail.fr", "yahoo.fr", "outlook.de", "gmx.at", "gmail.com", "mailinator.com"]
)
def test_public_and_free_mail_domains_cannot_be_claimed(app, browser, smtp, domain):
    sign_up(browser, "owner@garage-one.example", "Garage One")
    refused = browser.post(
        "/dashboard/company/domain", {"domain": domain}, page="/dashboard/company"
    )
    assert refused.status_code == 422 and f"{domain} is a public mail domain" in refused.text


def test_a_domain_missing_from_the_lists_is_still_not_claimed_without_its_dns(dns_app, smtp):
    """tutanota.com is in neither list: a mailbox there still cannot publish its TXT record."""
    app = dns_app
    mallory = Browser(app.test_client(), smtp)
    sign_up(mallory, "mallory@tutanota.com", "Mallory Motors")
    claimed = mallory.post(
        "/dashboard/company/domain", {"domain": "tutanota.com"}, page="/dashboard/company"
    )
    assert claimed.status_code == 303
    checked = mallory.post(
        "/dashboard/company/domain/check", {"domain": "tutanota.com"}, page="/dashboard/company"
    )
    page = mallory.client.get(checked.headers["Location"]).text
    assert "No TXT record fleetos-verification=" in page
    assert company_of(app, "mallory@tutanota.com").email_domain is None


def test_four_concurrent_sign_ups_at_one_new_domain_claim_nothing(app, smtp):
    """Reported: four concurrent sign-ups left four companies with one email_domain."""
    people = [f"{name}@new-company.example" for name in ("ann", "ben", "cat", "dev")]
    links = {}
    for address in people:
        browser = Browser(app.test_client(), smtp)
        browser.post(
            "/auth/signup",
            {"company_name": f"Co {address}", "company_type": "supplier", "email": address},
            page="/auth/signup",
        )
        links[address] = (browser, browser.last_link_to(address))
    barrier = threading.Barrier(len(people))

    def use(browser: Browser, path: str) -> None:
        page = browser.client.get(path)
        token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
        barrier.wait()
        assert browser.client.post(path, data={"csrf_token": token}).status_code == 303

    threads = [threading.Thread(target=use, args=pair) for pair in links.values()]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    with database(app):
        companies = db.session.scalars(select(Company)).all()
        assert len(companies) == 4
        assert [c.email_domain for c in companies] == [None] * 4
    # A fifth person there belongs to none of them.
    Browser(app.test_client(), smtp).ask_for_link("eve@new-company.example")
    assert "/auth/link/" not in mail_to(app, smtp, "eve@new-company.example")


def test_a_company_proves_its_domain_with_a_txt_record(dns_app, smtp, dns_server):
    app = dns_app
    owner = Browser(app.test_client(), smtp)
    sign_up(owner, "owner@bobsrepair.example", "Bob's Truck Repair")
    page = owner.client.get("/dashboard/company").text
    assert "Claim your domain" in page and 'value="bobsrepair.example"' in page

    claimed = owner.post(
        "/dashboard/company/domain", {"domain": " BobsRepair.example "}, page="/dashboard/company"
    )
    assert claimed.status_code == 303
    page = owner.client.get("/dashboard/company").text
    record = RECORD.search(page).group(0)

    # Checked before it is published: nothing changes.
    owner.post(
        "/dashboard/company/domain/check", {"domain": "bobsrepair.example"}, page="/dashboard"
    )
    assert company_of(app, "owner@bobsrepair.example").email_domain is None
    assert "No TXT record" in owner.client.get("/dashboard/company").text

    dns_server.publish("bobsrepair.example", "v=spf1 -all")
    dns_server.publish("bobsrepair.example", record)
    owner.post(
        "/dashboard/company/domain/check", {"domain": "bobsrepair.example"}, page="/dashboard"
    )
    assert company_of(app, "owner@bobsrepair.example").email_domain == "bobsrepair.example"
    page = owner.client.get("/dashboard/company").text
    assert "is verified for Bob" in page and "bobsrepair.example" in dns_server.zone.questions

    # Now the domain routes: new addresses there reach Bob's, and people there sign in to it.
    fleet = add_fleet(app, smtp)
    fleet.post(
        "/requests",
        {**GOOD_REQUEST, "supplier_email": "desk@bobsrepair.example"},
        page="/dashboard",
    )
    assert "Brake check" in owner.client.get("/dashboard").text
    Browser(app.test_client(), smtp).ask_for_link("wes@bobsrepair.example")
    body = mail_to(app, smtp, "wes@bobsrepair.example")
    assert "/auth/link/" in body and "Bob's Truck Repair (bobsrepair.example)" in body


def test_two_companies_racing_for_one_domain_end_with_one_owner(dns_app, smtp, dns_server):
    app = dns_app
    owners = []
    for n in (1, 2):
        browser = Browser(app.test_client(), smtp)
        sign_up(browser, f"boss@site{n}.example", f"Rival {n}")
        browser.post(
            "/dashboard/company/domain", {"domain": "contested.example"}, page="/dashboard"
        )
        owners.append(browser)
    with database(app):
        for claim in db.session.scalars(select(DomainClaim)):
            dns_server.publish("contested.example", claim.record)
    barrier = threading.Barrier(2)
    answers: list[str] = []

    def check(browser: Browser) -> None:
        csrf = browser.csrf("/dashboard/company")
        barrier.wait()
        browser.client.post(
            "/dashboard/company/domain/check",
            data={"csrf_token": csrf, "domain": "contested.example"},
        )
        answers.append(browser.client.get("/dashboard/company").text)

    threads = [threading.Thread(target=check, args=(b,)) for b in owners]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    with database(app):
        holders = db.session.scalars(
            select(Company.name).where(Company.email_domain == "contested.example")
        ).all()
    assert len(holders) == 1
    assert sum("is verified for another company" in page for page in answers) == 1


def test_dns_that_does_not_answer_changes_nothing_and_says_so(dns_app, smtp, dns_server):
    app = dns_app
    owner = Browser(app.test_client(), smtp)
    sign_up(owner, "owner@quiet.example", "Quiet Garage")
    owner.post("/dashboard/company/domain", {"domain": "quiet.example"}, page="/dashboard")
    dns_server.zone.failing = True
    checked = owner.post(
        "/dashboard/company/domain/check", {"domain": "quiet.example"}, page="/dashboard"
    )
    assert checked.status_code == 303
    assert "could not get an answer from DNS" in owner.client.get("/dashboard/company").text
    assert company_of(app, "owner@quiet.example").email_domain is None


def test_verify_domain_command(dns_app, smtp, dns_server, head_database):
    app = dns_app
    owner = Browser(app.test_client(), smtp)
    sign_up(owner, "owner@cli-garage.example", "CLI Garage")
    owner.post("/dashboard/company/domain", {"domain": "cli-garage.example"}, page="/dashboard")
    env = {"DNS_NAMESERVER": dns_server.nameserver, "DNS_TIMEOUT": "2"}

    missing = flask_cli(head_database, "fleetos", "verify-domain", "cli-garage.example", **env)
    assert missing.returncode == 1 and "No TXT record" in missing.stdout

    with database(app):
        claim = db.session.scalar(select(DomainClaim))
        dns_server.publish("cli-garage.example", claim.record)
    found = flask_cli(head_database, "fleetos", "verify-domain", "CLI-Garage.example", **env)
    assert found.returncode == 0, found.stderr
    assert "CLI Garage: cli-garage.example is verified" in found.stdout
    assert company_of(app, "owner@cli-garage.example").email_domain == "cli-garage.example"

    public = flask_cli(head_database, "fleetos", "verify-domain", "gmail.com", **env)
    assert public.returncode == 1 and "public mail domain" in public.stderr
