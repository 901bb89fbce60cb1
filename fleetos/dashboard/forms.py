"""The company page's own forms: claiming a mail domain and checking the claim."""

from __future__ import annotations

from wtforms import HiddenField, StringField

from ..forms import Form, strip


class ClaimDomainForm(Form):
    domain = StringField("Your company's mail domain", filters=[strip])


class CheckDomainForm(Form):
    domain = HiddenField()
