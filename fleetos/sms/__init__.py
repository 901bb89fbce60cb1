"""The SMS channel: what FleetOS texts (one segment each), the gateways that carry it
(``backends``), and the replies it receives (``inbound``, ``views``).

An SMS is an outbox row like a mail (same table, same worker, same retries);
the recipient's contact type (a phone number, E.164) is what makes it one.
"""
