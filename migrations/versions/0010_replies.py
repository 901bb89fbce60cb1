"""Replies: a reply to a FleetOS message acts on its request (issue 15).

Reserved in the chain so that the revisions written beside it (0009_phone_contacts,
0011_attachments) have a fixed place; the reply work fills it in.

Revision ID: 0010_replies
Revises: 0009_phone_contacts
Create Date: 2026-12-03
"""

revision = "0010_replies"
down_revision = "0009_phone_contacts"
branch_labels = None
depends_on = None

# Does not touch service_requests, so it runs before 0002's swap (requests_rebuild.py).
REBUILD_AWARE = True


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
