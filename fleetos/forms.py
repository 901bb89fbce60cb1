"""Web input, one idiom: Flask-WTF forms, read by views, rendered by one field macro.

A form checks that what was typed is well-formed (present, short enough, a
number, one of the choices); an action decides what it means (who may, what
it refers to, whether the state allows it) and refuses with ``Invalid(field,
message)``, which :meth:`Form.refused` puts on the field at fault. A refused
form is shown again with what was typed (``templates/_form.html``).

CSRF is checked for every state change (forms and htmx alike) by CSRFProtect
before any view runs, so the forms do not check it a second time.
"""

from __future__ import annotations

import uuid
from typing import Any

from flask_wtf import FlaskForm
from wtforms import Field, HiddenField, TextAreaField
from wtforms.validators import ValidationError

from .contacts import ContactService, InvalidContact
from .domain_errors import Invalid


class Form(FlaskForm):
    class Meta:
        csrf = False  # CSRFProtect has checked it already (see above)

    def refused(self, refusal: Invalid) -> None:
        """Show an action's refusal on the fields it names."""
        for name, message in refusal.errors.items():
            field = self._fields.get(name)
            if field is not None:
                field.errors = [*field.errors, message]


def strip(value: Any) -> Any:
    return value.strip() if isinstance(value, str) else value


def collapse_spaces(value: Any) -> Any:
    return " ".join(value.split()) if isinstance(value, str) else value


def as_uuid(value: object) -> uuid.UUID | None:
    """A UUID from a form value, or None for anything that is not one."""
    try:
        return uuid.UUID(str(value).strip())
    except ValueError:
        return None


class EmailAddress:
    """The address must be an e-mail address FleetOS can use (the contacts' own rule)."""

    def __call__(self, form: Form, field: Field) -> None:
        try:
            address = ContactService.canonicalise(field.data or "")
        except InvalidContact as exc:
            raise ValidationError(str(exc)) from None
        if address.contact_type != "email":
            raise ValidationError("Enter an e-mail address, like dana@acme-fleet.com.")


# -- acting on a request: the same three forms from the request page and the dashboard row ----


class TransitionForm(Form):
    """One lifecycle step: ``from`` is the status the person saw, ``to`` the step."""

    # Posted as "from" (a Python keyword, so the attribute has another name).
    seen = HiddenField(name="from")
    to = HiddenField()
    reason = TextAreaField()
    back = HiddenField()


class AssignForm(Form):
    contact_id = HiddenField()
    back = HiddenField()

    @property
    def assignee_id(self) -> uuid.UUID | None:
        return as_uuid(self.contact_id.data)


class NoteForm(Form):
    body = TextAreaField("Add a note (both companies see it)")
