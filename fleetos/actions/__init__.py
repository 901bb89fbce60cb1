"""The action core: every way of acting on FleetOS (a web page, an htmx row, a command; an
SMS or a mail reply later) calls one function per action.

- ``requests``: create, acknowledge, start, complete, decline, assign, note, view
- ``access``: asking for links, using them once, contacts emerging, signing out
- ``digest``: the daily dashboard links
- ``housekeeping``: forgetting used-link ids that guard nothing any more

Each action checks permission, writes, records its event (with its
``channel``), routes its notification, commits as one unit of work, and
returns what happened or raises a domain error (``fleetos.domain_errors``).
"""
