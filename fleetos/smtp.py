"""Flask-Mail with a connection timeout.

Flask-Mail opens ``smtplib.SMTP`` without a timeout, so a server that
accepts the connection and then hangs would hold a delivery worker (and the
outbox row it locked) forever.
"""

from __future__ import annotations

import smtplib

from flask import current_app
from flask_mail import Connection, Mail

SMTP_TIMEOUT_SECONDS = 30


class TimeoutConnection(Connection):
    def configure_host(self) -> smtplib.SMTP:
        smtp_class = smtplib.SMTP_SSL if self.mail.use_ssl else smtplib.SMTP
        timeout = current_app.config.get("MAIL_TIMEOUT", SMTP_TIMEOUT_SECONDS)
        host = smtp_class(self.mail.server, self.mail.port, timeout=timeout)
        if self.mail.use_tls:
            host.starttls()
        if self.mail.username and self.mail.password:
            host.login(self.mail.username, self.mail.password)
        return host


class TimeoutMail(Mail):
    def connect(self) -> Connection:
        return TimeoutConnection(current_app.extensions["mail"])
