"""Reading a reply never fails in a way an MTA cannot act on: whatever bytes arrive,
``read_mail`` returns a reply or says the message is unreadable (exit 65), nothing else.
Property-based (hypothesis): arbitrary bytes, and real messages with arbitrary parts."""

from __future__ import annotations

from email.message import EmailMessage

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fleetos.inbound.mail import MailReply, Unreadable, read_mail

FUZZ = settings(
    max_examples=200,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def read_or_refuse(raw: bytes) -> MailReply | None:
    try:
        return read_mail(raw)
    except Unreadable:
        return None


@FUZZ
@given(raw=st.binary(max_size=2000))
def test_any_bytes_are_read_or_refused(app_context, raw):
    read_or_refuse(raw)


header_text = st.text(
    alphabet=st.characters(whitelist_categories=("L", "N", "P", "S", "Zs")), max_size=80
)


@FUZZ
@given(
    subject=header_text,
    body=st.text(max_size=500),
    charset=st.sampled_from(["utf-8", "latin-1", "x-unknown", "utf-16", "koi8-r"]),
    extra=st.lists(st.tuples(header_text, st.binary(max_size=200)), max_size=3),
    auth=header_text,
)
def test_any_message_is_read_or_refused(app_context, subject, body, charset, extra, auth):
    message = EmailMessage()
    message["From"] = "bob@bobsrepair.com"
    message["To"] = "reply+" + "a" * 32 + "@replies.fleetos.test"
    message["Subject"] = subject
    message["Authentication-Results"] = auth
    message.set_content(body)
    for name, data in extra:
        message.add_attachment(data, maintype="application", subtype="octet-stream", filename=name)
    # A charset the body may not be in, or one nobody knows.
    raw = bytes(message).replace(b'charset="utf-8"', f'charset="{charset}"'.encode())
    read = read_or_refuse(raw)
    if read is not None:
        assert read.sender == "bob@bobsrepair.com"
