"""Mail domains that say nothing about which company an address belongs to."""

from __future__ import annotations

# Addresses at these domains are never grouped into one company by domain,
# and a public domain is never recorded as a company's email_domain: two
# unrelated workshops on gmail.com must not see each other's work.
PUBLIC_MAIL_DOMAINS: frozenset[str] = frozenset(
    {
        "gmail.com", "googlemail.com", "yahoo.com", "yahoo.co.uk", "ymail.com", "outlook.com",
        "hotmail.com", "hotmail.co.uk", "live.com", "live.co.uk", "msn.com", "icloud.com",
        "me.com", "mac.com", "aol.com", "proton.me", "protonmail.com", "pm.me", "gmx.com",
        "gmx.de", "gmx.net", "web.de", "mail.com", "yandex.com", "yandex.ru", "mail.ru",
        "zoho.com", "fastmail.com", "hey.com", "btinternet.com", "sky.com", "virginmedia.com",
        "talktalk.net", "comcast.net", "verizon.net", "att.net", "orange.fr", "free.fr",
        "laposte.net", "wanadoo.fr", "libero.it", "t-online.de", "bigpond.com", "shaw.ca",
        "rogers.com", "qq.com", "163.com", "126.com", "rediffmail.com",
    }
)  # fmt: skip


def domain_of(address: str) -> str:
    """Return the lower-case domain of a canonical e-mail address."""
    return address.rpartition("@")[2].lower()


def is_public_mail_domain(domain: str) -> bool:
    return domain.strip().lower() in PUBLIC_MAIL_DOMAINS
