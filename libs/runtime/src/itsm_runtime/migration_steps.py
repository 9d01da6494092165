"""Migration steps shared by every service's schema (the platform tables each has): called from the services'
Alembic revisions, so one change to the platform tables is one step, not five copies. A step, once released,
is never edited: a later change is a new step."""

import sqlalchemy as sa
from alembic import op


def outbox_written_ahead_upgrade() -> None:
    """The outbox takes events written ahead of their instant (`due_at`), by a timer that may withdraw them."""
    op.add_column("outbox", sa.Column("due_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("outbox", sa.Column("timer", sa.Text(), nullable=True))
    op.add_column("outbox", sa.Column("mark", sa.Text(), nullable=True))
    op.create_index("ix_outbox_due", "outbox", ["due_at", "id"], unique=False,
                    postgresql_where=sa.text("published_at IS NULL AND due_at IS NOT NULL"))
    op.create_index("ix_outbox_timer", "outbox", ["timer"], unique=False, postgresql_where=sa.text("timer IS NOT NULL"))
    # rows written ahead are read by their instant, through ix_outbox_due, not with the rows to publish now
    op.drop_index("ix_outbox_unpublished", table_name="outbox")
    op.create_index("ix_outbox_unpublished", "outbox", ["id"], unique=False,
                    postgresql_where=sa.text("published_at IS NULL AND due_at IS NULL"))


def outbox_written_ahead_downgrade() -> None:
    op.drop_index("ix_outbox_unpublished", table_name="outbox")
    op.create_index("ix_outbox_unpublished", "outbox", ["id"], unique=False,
                    postgresql_where=sa.text("published_at IS NULL"))
    op.drop_index("ix_outbox_timer", table_name="outbox")
    op.drop_index("ix_outbox_due", table_name="outbox")
    op.drop_column("outbox", "mark")
    op.drop_column("outbox", "timer")
    op.drop_column("outbox", "due_at")
