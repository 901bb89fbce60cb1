"""Reading a domain's TXT records with dnspython, from the resolver FleetOS is told to use.

``DNS_NAMESERVER`` (``host[:port]``) picks the resolver; unset, the system's
(``/etc/resolv.conf``). Tests point it at a real DNS server on loopback.
"""

from __future__ import annotations

import ipaddress
import socket

import dns.exception
import dns.name
import dns.resolver
from flask import current_app

from .config import ConfigError


class DnsUnavailable(Exception):
    """The resolver did not answer (timed out, refused, failed): nothing is known."""


def parse_nameserver(value: str) -> tuple[str, int]:
    """``host``, ``host:port``, ``[v6]`` or ``[v6]:port`` as (IP address, port), or ConfigError."""
    text = value.strip()
    port = 53
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        if rest:
            if not rest.startswith(":"):
                raise ConfigError(f"DNS_NAMESERVER must be host[:port], not {value!r}")
            port = _port(rest[1:], value)
    elif text.count(":") == 1:
        host, _, raw_port = text.partition(":")
        port = _port(raw_port, value)
    else:
        host = text  # a name, an IPv4 address, or a bare IPv6 address
    if not host:
        raise ConfigError(f"DNS_NAMESERVER must be host[:port], not {value!r}")
    try:
        return str(ipaddress.ip_address(host)), port
    except ValueError:
        pass
    try:
        return str(socket.getaddrinfo(host, port, proto=socket.IPPROTO_UDP)[0][4][0]), port
    except OSError:
        raise ConfigError(f"DNS_NAMESERVER {host!r} does not resolve to an address") from None


def _port(raw: str, value: str) -> int:
    if not raw.isascii() or not raw.isdigit() or not 0 < int(raw) < 65536:
        raise ConfigError(f"DNS_NAMESERVER must be host[:port], not {value!r}")
    return int(raw)


def resolver() -> dns.resolver.Resolver:
    configured = current_app.config.get("DNS_NAMESERVER")
    if not configured:
        return dns.resolver.Resolver()
    host, port = parse_nameserver(str(configured))
    chosen = dns.resolver.Resolver(configure=False)
    chosen.nameservers = [host]
    chosen.port = port
    return chosen


def txt_records(domain: str) -> list[str]:
    """The TXT records of ``domain`` (each one's strings joined), [] if it has none."""
    timeout = float(current_app.config.get("DNS_TIMEOUT") or 5)
    try:
        answer = resolver().resolve(
            dns.name.from_text(domain), "TXT", lifetime=timeout, search=False
        )
    except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
        return []
    except dns.exception.DNSException as exc:
        raise DnsUnavailable(f"{type(exc).__name__}: {exc}") from None
    return [
        b"".join(record.strings).decode("ascii", errors="replace")
        for record in answer
        if hasattr(record, "strings")
    ]
