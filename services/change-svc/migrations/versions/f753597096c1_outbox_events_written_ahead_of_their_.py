"""outbox: events written ahead of their instant by a timer

Revision ID: f753597096c1
Revises: b6265f0a6dea
Create Date: 2026-11-25 04:08:46.966195
"""
from itsm_runtime.migration_steps import outbox_written_ahead_downgrade, outbox_written_ahead_upgrade


revision = 'f753597096c1'
down_revision = 'b6265f0a6dea'
branch_labels = None
depends_on = None


def upgrade() -> None:
    outbox_written_ahead_upgrade()


def downgrade() -> None:
    outbox_written_ahead_downgrade()
