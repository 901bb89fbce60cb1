"""The forms that ask for links: sign in, start a company, invite a colleague."""

from __future__ import annotations

from typing import ClassVar

from wtforms import HiddenField, RadioField, StringField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import AnyOf, DataRequired, Length

from ..forms import EMAIL_MAX, EmailOrMobile, Form, PlainText, collapse_spaces, strip
from ..models import COMPANY_TYPES

NAME_MAX = 120
ADDRESS_TOO_LONG = "An e-mail address has at most 254 characters."
ADDRESS_LABEL = "E-mail or mobile number"


def address_field(label: str = ADDRESS_LABEL) -> StringField:
    """Where an address is typed: an e-mail address or a mobile number (posted as
    ``address``; forms that renamed it still take ``email``)."""
    return StringField(
        label,
        filters=[strip],
        validators=[Length(max=EMAIL_MAX, message=ADDRESS_TOO_LONG), EmailOrMobile()],
    )


class SignInForm(Form):
    renamed: ClassVar[dict[str, str]] = {"address": "email"}

    address = address_field()
    next = HiddenField()


class CodeForm(Form):
    """The code a sign-in, sign-up or invitation message carried, typed on any device."""

    address = address_field()
    code = StringField(
        "Code from the message",
        filters=[strip],
        validators=[Length(max=20, message="The code has 6 digits.")],
    )


class SignUpForm(Form):
    renamed: ClassVar[dict[str, str]] = {"address": "email"}

    company_name = StringField(
        "Company name",
        filters=[collapse_spaces],
        validators=[
            DataRequired("Enter your company's name."),
            Length(max=NAME_MAX, message="Keep the company name under 120 characters."),
            PlainText(),
        ],
    )
    company_type = RadioField(
        "Your company",
        choices=[
            SelectChoice("fleet", "runs a fleet of vehicles"),
            SelectChoice("supplier", "services vehicles (repairs, tyres, mobile mechanics)"),
        ],
        validate_choice=False,
        validators=[
            AnyOf(COMPANY_TYPES, "Choose whether your company runs a fleet or services one.")
        ],
    )
    address = address_field()
    display_name = StringField(
        "Your name (optional)",
        filters=[collapse_spaces],
        validators=[
            Length(max=NAME_MAX, message="Keep your name under 120 characters."),
            PlainText(),
        ],
    )


class InviteForm(Form):
    renamed: ClassVar[dict[str, str]] = {"address": "email"}

    address = address_field("Their e-mail or mobile number")
    display_name = StringField(
        "Their name (optional)",
        filters=[collapse_spaces],
        validators=[
            Length(max=NAME_MAX, message="Keep their name under 120 characters."),
            PlainText(),
        ],
    )
    back = HiddenField()
