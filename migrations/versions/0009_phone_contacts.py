"""Phone contacts: sign-in codes, short links and SMS (issue 14).

Reserved in the chain so that the revisions written beside it (0010_replies,
0011_attachments) have a fixed place; the SMS work fills it in.

Revision ID: 0009_phone_contacts
Revises: 0008_sessions
Create Date: 2026-12-03
"""

revision = "0009_phone_contacts"
down_revision = "0008_sessions"
branch_labels = None
depends_on = None

# Does not touch service_requests, so it runs before 0002's swap (requests_rebuild.py).
REBUILD_AWARE = True


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
