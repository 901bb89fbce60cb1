"""The new-request form: what the fleet typed, kept as typed when something is wrong."""

from __future__ import annotations

import uuid
from typing import Any, ClassVar

from wtforms import IntegerField, SelectField, StringField, TextAreaField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import AnyOf, DataRequired, Length, Optional

from ..actions.requests import NewRequest
from ..forms import (
    EMAIL_MAX,
    EmailOrMobile,
    FormWithFiles,
    PlainText,
    as_uuid,
    collapse_spaces,
    line_breaks,
    strip,
)
from ..lifecycle import DEFAULT_PRIORITY, PRIORITIES

ODOMETER_MAX = 10_000_000
TOO_LONG = "Keep this under %(max)d characters (it has %(length)d)."


class OdometerField(IntegerField):
    """A whole number, typed the way people do: "182,400" or "182 400"."""

    def process_formdata(self, valuelist: list[Any]) -> None:
        raw = str(valuelist[0]).replace(",", "").replace(" ", "") if valuelist else ""
        self.data = None
        if not raw:
            return
        # ASCII digits only: str.isdigit() also accepts "²³", which int() refuses.
        digits_ok = raw.isascii() and raw.isdigit() and len(raw) <= len(str(ODOMETER_MAX))
        if not digits_ok or int(raw) > ODOMETER_MAX:
            raise ValueError("Enter the odometer as a whole number, like 182400.")
        self.data = int(raw)

    def _value(self) -> str:
        # What was typed, as typed (up to what the field accepts), not the number it failed to be.
        if self.raw_data:
            return str(self.raw_data[0])[:20]
        return "" if self.data is None else str(self.data)


class NewRequestForm(FormWithFiles):
    renamed: ClassVar[dict[str, str]] = {"supplier_address": "supplier_email"}

    supplier = SelectField("A supplier you have worked with", validate_choice=False)
    supplier_address = StringField(
        "Supplier's e-mail or mobile number",
        filters=[strip],
        validators=[Optional(), Length(max=EMAIL_MAX, message=TOO_LONG), EmailOrMobile()],
    )
    vehicle = StringField(
        "Vehicle",
        filters=[collapse_spaces],
        validators=[
            DataRequired("Say which vehicle: unit number, plate or VIN."),
            Length(max=100, message=TOO_LONG),
            PlainText(),
        ],
    )
    odometer = OdometerField(
        "Odometer (optional)",
        validators=[Optional()],
    )
    title = StringField(
        "What needs doing",
        filters=[collapse_spaces],
        validators=[
            DataRequired("Give the request a short title."),
            Length(max=200, message=TOO_LONG),
            PlainText(),
        ],
    )
    description = TextAreaField(
        "Details (optional)",
        filters=[line_breaks],
        validators=[Length(max=5000, message=TOO_LONG), PlainText(multiline=True)],
    )
    priority = SelectField(
        "Priority",
        choices=[SelectChoice(p, p.capitalize()) for p in PRIORITIES],
        default=DEFAULT_PRIORITY,
        filters=[lambda value: value or DEFAULT_PRIORITY],
        validate_choice=False,
        validators=[AnyOf(PRIORITIES, "Choose low, normal, high or urgent.")],
    )
    location = StringField(
        "Where is the vehicle? (optional)",
        filters=[collapse_spaces],
        validators=[Length(max=200, message=TOO_LONG), PlainText()],
    )

    def new_request(self) -> NewRequest:
        """The request as the action core takes it."""
        supplier_id: uuid.UUID | None = None
        if (self.supplier.data or "").strip():
            # Anything that is not a UUID of a supplier this fleet knows is refused the same way.
            supplier_id = as_uuid(self.supplier.data) or uuid.UUID(int=0)
        return NewRequest(
            vehicle=self.vehicle.data or "",
            title=self.title.data or "",
            description=self.description.data or None,
            priority=self.priority.data or DEFAULT_PRIORITY,
            odometer=self.odometer.data,
            location=self.location.data or None,
            supplier_id=supplier_id,
            supplier_address=self.supplier_address.data or None,
        )
