"""A real DNS server on loopback (dnslib), answering TXT queries from a dict the test fills.

FleetOS resolves with dnspython through ``DNS_NAMESERVER``; nothing of the lookup
is mocked: queries travel as UDP packets to this server, as they would to a
domain's real name servers.
"""

from __future__ import annotations

import threading

from dnslib import QTYPE, RCODE, RR, TXT, DNSRecord
from dnslib.server import BaseResolver, DNSHandler, DNSLogger, DNSServer


class TxtZone(BaseResolver):
    """TXT records by domain; every other question is answered NXDOMAIN."""

    def __init__(self) -> None:
        self.records: dict[str, list[str]] = {}
        self.failing = False  # answer SERVFAIL, as a broken name server does
        self.questions: list[str] = []
        self.lock = threading.Lock()

    def resolve(self, request: DNSRecord, handler: DNSHandler) -> DNSRecord:
        reply = request.reply()
        name = str(request.q.qname).rstrip(".").lower()
        with self.lock:
            self.questions.append(name)
            failing = self.failing
            texts = list(self.records.get(name, []))
        if failing:
            reply.header.rcode = RCODE.SERVFAIL
        elif request.q.qtype == QTYPE.TXT and texts:
            for text in texts:
                reply.add_answer(RR(request.q.qname, QTYPE.TXT, rdata=TXT(text), ttl=60))
        elif name not in self.records:
            reply.header.rcode = RCODE.NXDOMAIN
        return reply


class DnsServer:
    def __init__(self) -> None:
        self.zone = TxtZone()
        quiet = DNSLogger(logf=lambda line: None)
        self.server = DNSServer(self.zone, address="127.0.0.1", port=0, logger=quiet)

    @property
    def port(self) -> int:
        return int(self.server.server.server_address[1])

    @property
    def nameserver(self) -> str:
        return f"127.0.0.1:{self.port}"

    def publish(self, domain: str, text: str) -> None:
        with self.zone.lock:
            self.zone.records.setdefault(domain, []).append(text)

    def start(self) -> None:
        self.server.start_thread()

    def stop(self) -> None:
        self.server.stop()
        self.server.server.server_close()
