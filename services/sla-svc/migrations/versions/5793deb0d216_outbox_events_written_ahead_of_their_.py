"""outbox: events written ahead of their instant by a timer

Revision ID: 5793deb0d216
Revises: c5d8e2f1a7b9
Create Date: 2026-11-25 04:08:40.118884
"""
from itsm_runtime.migration_steps import outbox_written_ahead_downgrade, outbox_written_ahead_upgrade


revision = '5793deb0d216'
down_revision = 'c5d8e2f1a7b9'
branch_labels = None
depends_on = None


def upgrade() -> None:
    outbox_written_ahead_upgrade()


def downgrade() -> None:
    outbox_written_ahead_downgrade()
