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
from collections.abc import Sequence
from typing import Any

from flask import current_app, g, request
from flask_wtf import FlaskForm
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from werkzeug.datastructures import FileStorage
from wtforms import Field, HiddenField, MultipleFileField, TextAreaField
from wtforms.validators import ValidationError

from .actions.attachments import Attachable, HeldFile, IncomingFile, take_in
from .attachments.content import ACCEPT_ATTRIBUTE
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


class FormWithFiles(Form):
    """A form that carries photos and documents: ``files`` (several at once).

    When the form is refused, the files that were fine have already been taken
    in (checked and stored): they come back as ``held_files``, a signed list
    (this contact's, for ATTACHMENT_KEEP_SECONDS), shown as kept with a box to
    untick, so the person corrects what was wrong without choosing them again.
    """

    files = MultipleFileField("Photos and documents")
    held_files = HiddenField()

    accept = ACCEPT_ATTRIBUTE
    held: list[HeldFile]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.held = []
        self._held_expired = False
        if self.held_files.data:
            self.held = self._unsign(self.held_files.data)
            kept = set(request.form.getlist("keep"))
            self.held = [file for file in self.held if file.sha256 in kept]

    def validate_files(self, field: Field) -> None:
        if self._held_expired:
            raise ValidationError("The files kept from before have expired: attach them again.")

    def attachable(self) -> list[Attachable]:
        """What to attach: the files sent now, and those kept from before."""
        incoming: list[Attachable] = [
            IncomingFile(name=upload.filename or "", data=upload.read())
            for upload in self.files.data or []
            if isinstance(upload, FileStorage) and upload.filename  # an empty picker sends ""
        ]
        return [*self.held, *incoming]

    def take_in_files(self) -> None:
        """The form is refused for another reason: keep its files all the same."""
        taken = take_in(self.attachable())
        self.hold(taken.held)
        message = taken.refusal()
        if message:
            self.files.errors = [*list(self.files.errors), message]

    def refused(self, refusal: Invalid) -> None:
        super().refused(refusal)
        self.hold([file for file in refusal.held if isinstance(file, HeldFile)])

    def hold(self, held: Sequence[HeldFile]) -> None:
        self.held = list(held)
        self.held_files.data = self._sign(self.held) if self.held else ""

    def _serializer(self) -> URLSafeTimedSerializer:
        return URLSafeTimedSerializer(current_app.secret_key or "", salt="fleetos.held-files")

    def _sign(self, held: Sequence[HeldFile]) -> str:
        payload = {"contact": str(g.contact.contact_id), "files": [f.as_dict() for f in held]}
        return self._serializer().dumps(payload)

    def _unsign(self, token: str) -> list[HeldFile]:
        try:
            payload = self._serializer().loads(
                token, max_age=current_app.config["ATTACHMENT_KEEP_SECONDS"]
            )
        except SignatureExpired:
            self._held_expired = True
            return []
        except BadSignature:
            return []  # not ours: nothing was kept
        if payload.get("contact") != str(g.contact.contact_id):
            return []
        return [HeldFile.from_dict(raw) for raw in payload.get("files", [])]


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


class NoteForm(FormWithFiles):
    body = TextAreaField("Add a note (both companies see it)")
