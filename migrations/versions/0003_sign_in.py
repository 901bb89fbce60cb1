"""Sign-in: the mail outbox and the record of used links.

``outbox_messages`` holds every message FleetOS sends, written in the same
transaction as the change that causes it; ``used_link_tokens`` makes each
magic link single-use (its id is inserted once, atomically). Both are new
tables, so this revision takes no lock on existing ones.

Revision ID: 0003_sign_in
Revises: 0002_emergent_contacts
Create Date: 2026-11-23
"""

import sqlalchemy as sa
from alembic import op

revision = "0003_sign_in"
down_revision = "0002_emergent_contacts"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "outbox_messages",
        sa.Column("message_id", sa.BigInteger(), sa.Identity(always=True), nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("recipient", sa.Text(), nullable=False),
        sa.Column("subject", sa.Text(), nullable=False),
        sa.Column("text_body", sa.Text(), nullable=True),
        sa.Column("html_body", sa.Text(), nullable=True),
        sa.Column("dedupe_key", sa.Text(), nullable=True),
        sa.Column("status", sa.Text(), server_default="pending", nullable=False),
        sa.Column("attempts", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column(
            "next_attempt_at", sa.DateTime(), server_default=sa.text("now()"), nullable=False
        ),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(), server_default=sa.text("now()"), nullable=False),
        sa.Column("sent_at", sa.DateTime(), nullable=True),
        sa.CheckConstraint(
            "status IN ('pending', 'sent', 'failed')", name=op.f("outbox_messages_status_check")
        ),
        sa.PrimaryKeyConstraint("message_id", name=op.f("outbox_messages_pkey")),
        sa.UniqueConstraint("dedupe_key", name=op.f("outbox_messages_dedupe_key_key")),
    )
    op.create_index(
        "idx_outbox_messages_due",
        "outbox_messages",
        ["next_attempt_at"],
        postgresql_where=sa.text("status = 'pending'"),
    )
    op.create_table(
        "used_link_tokens",
        sa.Column("jti", sa.Text(), nullable=False),
        sa.Column("purpose", sa.Text(), nullable=False),
        sa.Column("contact_value", sa.Text(), nullable=False),
        sa.Column("used_at", sa.DateTime(), server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("jti", name=op.f("used_link_tokens_pkey")),
    )


def downgrade():
    op.drop_table("used_link_tokens")
    op.drop_index("idx_outbox_messages_due", table_name="outbox_messages")
    op.drop_table("outbox_messages")
