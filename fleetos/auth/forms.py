"""The forms that ask for links: sign in, start a company, invite a colleague."""

from __future__ import annotations

from wtforms import HiddenField, RadioField, StringField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import AnyOf, DataRequired, Length

from ..forms import EMAIL_MAX, EmailAddress, Form, PlainText, collapse_spaces, strip
from ..models import COMPANY_TYPES

NAME_MAX = 120
EMAIL_TOO_LONG = "An e-mail address has at most 254 characters."


def email_field(label: str) -> StringField:
    return StringField(
        label,
        filters=[strip],
        validators=[Length(max=EMAIL_MAX, message=EMAIL_TOO_LONG), EmailAddress()],
    )


class SignInForm(Form):
    email = email_field("Your work e-mail")
    next = HiddenField()


class SignUpForm(Form):
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
    email = email_field("Your work e-mail")
    display_name = StringField(
        "Your name (optional)",
        filters=[collapse_spaces],
        validators=[
            Length(max=NAME_MAX, message="Keep your name under 120 characters."),
            PlainText(),
        ],
    )


class InviteForm(Form):
    email = email_field("Their e-mail")
    display_name = StringField(
        "Their name (optional)",
        filters=[collapse_spaces],
        validators=[
            Length(max=NAME_MAX, message="Keep their name under 120 characters."),
            PlainText(),
        ],
    )
    back = HiddenField()
