"""Creating a request: the supplier resolves (or emerges), bad input keeps what was typed."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
from sqlalchemy import select

from fleetos.extensions import db
from fleetos.models import Company, Contact, ServiceRequest
from fleetos.outbox import deliver_due
from tests.mailserver import link_in
from tests.support.apps import database
from tests.support.web import Browser, load_request, outbox_to, request_events, row_counts

GOOD = {
    "vehicle": "Unit 7 / AB12 CDE",
    "title": "Annual inspection",
    "description": "Due Friday.",
    "priority": "high",
    "odometer": "182,400",
    "location": "Depot B",
}


def create(browser: Browser, **fields):
    return browser.post("/requests", {**GOOD, **fields}, page="/requests/new")


def new_request(app) -> ServiceRequest:
    with database(app):
        found = db.session.scalars(
            select(ServiceRequest).order_by(ServiceRequest.created_at.desc())
        ).first()
        db.session.expunge_all()
        return found


def test_request_to_a_new_address_lets_the_supplier_emerge(app, world, as_, smtp):
    dana = as_("dana")
    response = create(dana, supplier_email=" Mobile.Joe@Gmail.com ")
    assert response.status_code == 303
    created = new_request(app)
    assert response.headers["Location"] == f"/requests/{created.request_id}"
    assert (created.fleet_company_id, created.submitted_by_contact_id) == (
        world.companies["acme"],
        world.contacts["dana"],
    )
    assert (
        created.vehicle,
        created.odometer,
        created.priority,
        created.location,
        created.status,
    ) == ("Unit 7 / AB12 CDE", 182400, "high", "Depot B", "new")
    with database(app):
        supplier = db.session.get(Company, created.supplier_company_id)
        assert (supplier.name, supplier.company_type, supplier.email_domain) == (
            "mobile.joe@gmail.com",
            "supplier",
            None,
        )
    [event] = request_events(app, created.request_id)
    assert event.event_type == "request.created" and event.contact_id == world.contacts["dana"]
    assert event.metadata_["routed_to"] == "mobile.joe@gmail.com"
    assert event.metadata_["route_reason"] == "the address the fleet typed"

    # The supplier opens the mailed link: a contact emerges and lands on the request.
    with database(app):
        deliver_due()
    [mail] = smtp.to("mobile.joe@gmail.com")
    assert "Annual inspection" in mail["Subject"] and "Acme Fleet" in mail["Subject"]
    joe = Browser(app.test_client(), smtp)
    landed = joe.use_link(urlsplit(link_in(mail)).path)
    assert landed.headers["Location"] == f"/requests/{created.request_id}"
    page = joe.client.get(landed.headers["Location"])
    assert (
        page.status_code == 200 and "Annual inspection" in page.text and "Acknowledge" in page.text
    )
    with database(app):
        contact = db.session.scalar(
            select(Contact).where(Contact.contact_value == "mobile.joe@gmail.com")
        )
        assert contact.company_id == created.supplier_company_id
    assert [e.event_type for e in request_events(app, created.request_id)] == [
        "request.created",
        "request.viewed",
    ]


def test_request_to_a_supplier_from_the_list_goes_to_its_last_active_contact(app, world, as_):
    response = create(as_("dana"), supplier=str(world.companies["bobs"]))
    assert response.status_code == 303
    created = new_request(app)
    assert created.supplier_company_id == world.companies["bobs"]
    facts = request_events(app, created.request_id)[0].metadata_
    assert (facts["routed_to"], facts["route_reason"]) == (
        "bob@bobsrepair.com",
        "last active contact",
    )
    assert created.supplier_email == "bob@bobsrepair.com"
    assert outbox_to(app, "bob@bobsrepair.com")


def test_a_supplier_without_contacts_is_reached_where_it_was_first_reached(app, world, as_):
    create(as_("dana"), supplier_email="desk@garage-nine.example")
    first = new_request(app)
    create(as_("dana"), supplier=str(first.supplier_company_id), title="Second job")
    second = new_request(app)
    facts = request_events(app, second.request_id)[0].metadata_
    assert facts["routed_to"] == "desk@garage-nine.example"
    assert facts["route_reason"] == "the address the supplier was first reached at"
    assert len(outbox_to(app, "desk@garage-nine.example")) == 2


def test_an_address_on_a_registered_supplier_domain_goes_to_that_supplier(app, world, as_):
    create(as_("dana"), supplier_email="Parts@BobsRepair.com")
    assert new_request(app).supplier_company_id == world.companies["bobs"]


def test_a_public_domain_address_never_joins_a_company_by_domain(app, world, as_):
    create(as_("dana"), supplier_email="someone.else@gmail.com")
    created = new_request(app)
    assert created.supplier_company_id != world.companies["quick"]  # quicktyres@gmail.com's company


@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        ({"vehicle": "  "}, "vehicle", "Say which vehicle"),
        ({"title": ""}, "title", "Give the request a short title"),
        ({"title": "x" * 201}, "title", "under 200 characters"),
        ({"description": "y" * 5001}, "description", "under 5000 characters"),
        ({"supplier_address": "bob@"}, "supplier_address", "not a valid e-mail address"),
        ({"supplier_email": "bob@"}, "supplier_address", "not a valid e-mail address"),
        ({"supplier_address": "0770 09"}, "supplier_address", "not a valid phone number"),
        ({"supplier_email": ""}, "supplier", "Choose a supplier, or enter"),
        (
            {"supplier_email": "", "supplier": "northwind"},
            "supplier",
            "Choose a supplier from the list",
        ),
        (
            {"supplier_email": "", "supplier": "quick"},
            "supplier",
            "Choose a supplier from the list",
        ),
        (
            {"supplier_email": "", "supplier": "not-a-uuid"},
            "supplier",
            "Choose a supplier from the list",
        ),
        ({"odometer": "-5"}, "odometer", "whole number"),
        ({"odometer": "lots"}, "odometer", "whole number"),
        ({"priority": "asap"}, "priority", "Choose low, normal, high or urgent"),
    ],
)
def test_bad_input_keeps_what_was_typed_and_writes_nothing(app, world, as_, fields, field, message):
    fields = {"supplier_email": "new.garage@example.org", **fields}
    if fields.get("supplier") in world.companies:  # a company this fleet has never worked with
        fields["supplier"] = str(world.companies[fields["supplier"]])
    before = row_counts(app)
    response = create(as_("dana"), **fields)
    assert response.status_code == 422
    assert message in response.text
    assert f'id="{field}-error"' in response.text
    if field != "vehicle":
        assert 'value="Unit 7 / AB12 CDE"' in response.text
    # What was typed, up to the field's maximum length (5000): never more.
    typed_description = fields.get("description", "Due Friday.")[:5000]
    assert f">{typed_description}</textarea>" in response.text
    assert row_counts(app) == before


def test_fleet_company_and_submitter_come_from_the_session_not_the_form(app, world, as_):
    create(
        as_("dana"),
        supplier_email="x@garage.example",
        fleet_company_id=str(world.companies["northwind"]),
        submitted_by_contact_id=str(world.contacts["nora"]),
    )
    created = new_request(app)
    assert created.fleet_company_id == world.companies["acme"]
    assert created.submitted_by_contact_id == world.contacts["dana"]


def test_suppliers_do_not_send_requests(app, world, as_):
    bob = as_("bob")
    assert bob.client.get("/requests/new").status_code == 403
    before = row_counts(app)
    response = bob.post("/requests", {**GOOD, "supplier_email": "x@example.org"}, page="/dashboard")
    assert response.status_code == 403
    assert row_counts(app) == before


def test_signed_out_visitors_are_sent_to_sign_in(app, smtp):
    client = Browser(app.test_client(), smtp)
    response = client.client.get("/requests/new")
    assert response.status_code == 303 and response.headers["Location"].startswith("/auth/login")


def test_new_request_form_lists_only_suppliers_this_fleet_worked_with(app, world, as_):
    page = as_("dana").client.get("/requests/new").text
    assert "Bob&#39;s Truck Repair" in page or "Bob's Truck Repair" in page
    assert "Quick Tyres" not in page and "Northwind" not in page
    assert load_request(app, world.request_id).title == "Brakes squeal"
