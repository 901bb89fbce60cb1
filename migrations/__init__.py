"""FleetOS's Alembic environment; a package so revisions share ``requests_rebuild``."""
