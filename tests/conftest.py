"""The whole suite's fixtures come from plugin modules, on a real PostgreSQL, never a stand-in.

- tests/support/database.py: the server, scratch databases (dropped when their test ends),
  ``head_database``, ``v1_database``, ``make_database``, ``head_template``
- tests/support/apps.py: ``app`` (the one app fixture), ``app_context``, ``make_app``, ``smtp``
- tests/support/web.py: ``browser``, ``acme``, ``world``, ``as_`` and helpers to look around
- tests/support/dns.py: ``dns_server`` (a real DNS server on loopback), ``sql_statements``
- tests/chromium.py: Debian's Chromium for tests/browser and tests/e2e, launched once
"""

pytest_plugins = [
    "tests.support.database",
    "tests.support.apps",
    "tests.support.web",
    "tests.support.dns",
    "tests.chromium",
]
