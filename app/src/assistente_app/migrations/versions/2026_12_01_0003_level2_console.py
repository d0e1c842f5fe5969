"""Level 2 console: the bot's summary, the wait clock, resolution codes.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

CLOSURES = "role = 'system' AND payload->>'type' = 'resolved'"


def upgrade() -> None:
    # What the bot knew when it handed over (last intent, case number, articles shown).
    op.add_column("conversations", sa.Column("summary", postgresql.JSONB(), nullable=True))
    # Since when the citizen waits without a person: maxWaitMinutes counts from here. Unlike
    # queued_at (the place in line, kept on transfer) it restarts when a clerk transfers.
    op.add_column(
        "conversations", sa.Column("wait_started_at", sa.DateTime(timezone=True), nullable=True)
    )
    op.add_column("conversations", sa.Column("resolution_code", sa.String(32), nullable=True))
    # The supervisor's "closed today": each closure is a system message with its team and code.
    op.create_index(
        "ix_messages_closures",
        "messages",
        ["created_at"],
        postgresql_where=sa.text(CLOSURES),
    )


def downgrade() -> None:
    op.drop_index("ix_messages_closures", table_name="messages")
    op.drop_column("conversations", "resolution_code")
    op.drop_column("conversations", "wait_started_at")
    op.drop_column("conversations", "summary")
