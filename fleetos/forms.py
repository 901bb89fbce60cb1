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
from typing import Any, ClassVar

from flask import current_app, g, request
from flask_wtf import FlaskForm
from flask_wtf.form import _Auto
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from werkzeug.datastructures import FileStorage, MultiDict
from wtforms import Field, HiddenField, MultipleFileField, TextAreaField
from wtforms.validators import Length, ValidationError

from . import lifecycle
from .actions.attachments import Attachable, HeldFile, IncomingFile, take_in
from .attachments.content import ACCEPT_ATTRIBUTE
from .contacts import ContactService, InvalidContact, ensure_mailable, ensure_reachable
from .domain_errors import Invalid
from .text import forbidden_character, forbidden_message, multi_line, one_line

# What a refused form shows again of a field with no length limit of its own:
# a form is never a way to make FleetOS echo a megabyte back.
ECHO_MAX = 1000
# RFC 5321's longest forward path, less its angle brackets.
EMAIL_MAX = 254


class Form(FlaskForm):
    class Meta:
        csrf = False  # CSRFProtect has checked it already (see above)

    # Fields renamed in public: {new name: old name}. A client that still posts
    # the old name (a bookmarklet, a script, a cached page) is understood.
    renamed: ClassVar[dict[str, str]] = {}

    def __init__(self, formdata: Any = _Auto, **kwargs: Any) -> None:
        if self.renamed and formdata is _Auto:
            formdata = self._wtforms_meta().wrap_formdata(self, formdata)  # the request's form
        if self.renamed and isinstance(formdata, MultiDict):
            formdata = _with_new_names(formdata, self.renamed)
        super().__init__(formdata=formdata, **kwargs)

    def refused(self, refusal: Invalid) -> None:
        """Show an action's refusal on the fields it names."""
        for name, message in refusal.errors.items():
            field = self._fields.get(name)
            if field is not None:
                field.errors = [*field.errors, message]


def _with_new_names(formdata: MultiDict[str, Any], renamed: dict[str, str]) -> MultiDict[str, Any]:
    """``formdata`` with each old name's values under its new name, where the new one is absent."""
    if not any(old in formdata and new not in formdata for new, old in renamed.items()):
        return formdata
    copy: MultiDict[str, Any] = MultiDict(formdata)
    for new, old in renamed.items():
        if old in copy and new not in copy:
            copy.setlist(new, copy.getlist(old))
    return copy


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
    """A one-line field's filter: line breaks and runs of spaces become one space."""
    return one_line(value) if isinstance(value, str) else value


def line_breaks(value: Any) -> Any:
    """A multi-line field's filter: line breaks as ``\\n``, no whitespace around the text."""
    return multi_line(value) if isinstance(value, str) else value


class PlainText:
    """No control characters (in a multi-line field, line breaks and tabs are fine)."""

    def __init__(self, *, multiline: bool = False) -> None:
        self.multiline = multiline

    def __call__(self, form: Form, field: Field) -> None:
        refused = forbidden_character(field.data or "", multiline=self.multiline)
        if refused is not None:
            raise ValidationError(forbidden_message(refused))


def typed_value(field: Field) -> str:
    """What ``field`` shows of what was typed: at most its maximum length."""
    limits = [v.max for v in field.validators if isinstance(v, Length) and v.max >= 0]
    value: str = field._value()
    return value[: max(limits, default=ECHO_MAX)]


def as_uuid(value: object) -> uuid.UUID | None:
    """A UUID from a form value, or None for anything that is not one."""
    try:
        return uuid.UUID(str(value).strip())
    except ValueError:
        return None


class EmailOrMobile:
    """An e-mail address FleetOS can write to, or a mobile number (canonical as contacts are)."""

    def __call__(self, form: Form, field: Field) -> None:
        try:
            ensure_reachable(ContactService.canonicalise(field.data or ""))
        except InvalidContact as exc:
            raise ValidationError(str(exc)) from None


class EmailAddress:
    """The address must be an e-mail address FleetOS can write to (the contacts' own rules)."""

    def __call__(self, form: Form, field: Field) -> None:
        try:
            address = ContactService.canonicalise(field.data or "")
            if address.contact_type != "email":
                raise ValidationError("Enter an e-mail address, like dana@acme-fleet.com.")
            ensure_mailable(address.value)
        except InvalidContact as exc:
            raise ValidationError(str(exc)) from None


# -- acting on a request: the same three forms from the request page and the dashboard row ----


class TransitionForm(Form):
    """One lifecycle step: ``from`` is the status the person saw, ``to`` the step."""

    # Posted as "from" (a Python keyword, so the attribute has another name).
    seen = HiddenField(name="from")
    to = HiddenField()
    reason = TextAreaField(
        filters=[line_breaks],
        validators=[
            PlainText(multiline=True),
            Length(max=lifecycle.REASON_MAX, message="Keep the reason under %(max)d characters."),
        ],
    )
    back = HiddenField()


class AssignForm(Form):
    contact_id = HiddenField()
    back = HiddenField()

    @property
    def assignee_id(self) -> uuid.UUID | None:
        return as_uuid(self.contact_id.data)


class NoteForm(FormWithFiles):
    body = TextAreaField(
        "Add a note (both companies see it)",
        filters=[line_breaks],
        validators=[
            PlainText(multiline=True),
            Length(max=lifecycle.NOTE_MAX, message="Keep a note under %(max)d characters."),
        ],
    )


class HeldReplyForm(Form):
    """The addressee's decision on a held reply: one of two buttons named ``decision``."""

    decision = HiddenField()

    @property
    def accepts(self) -> bool:
        return bool(self.decision.data == "accept")
