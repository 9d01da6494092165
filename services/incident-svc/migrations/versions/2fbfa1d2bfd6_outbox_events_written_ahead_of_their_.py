"""outbox: events written ahead of their instant by a timer

Revision ID: 2fbfa1d2bfd6
Revises: 23d1e26b3230
Create Date: 2026-11-25 04:08:36.516444
"""
from itsm_runtime.migration_steps import outbox_written_ahead_downgrade, outbox_written_ahead_upgrade


revision = '2fbfa1d2bfd6'
down_revision = '23d1e26b3230'
branch_labels = None
depends_on = None


def upgrade() -> None:
    outbox_written_ahead_upgrade()


def downgrade() -> None:
    outbox_written_ahead_downgrade()
