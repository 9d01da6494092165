"""outbox: events written ahead of their instant by a timer

Revision ID: d320e8f0e39a
Revises: cad6cd372ab3
Create Date: 2026-11-25 04:08:50.019311
"""
from itsm_runtime.migration_steps import outbox_written_ahead_downgrade, outbox_written_ahead_upgrade


revision = 'd320e8f0e39a'
down_revision = 'cad6cd372ab3'
branch_labels = None
depends_on = None


def upgrade() -> None:
    outbox_written_ahead_upgrade()


def downgrade() -> None:
    outbox_written_ahead_downgrade()
