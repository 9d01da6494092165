"""outbox: events written ahead of their instant by a timer

Revision ID: 8ae1910de79d
Revises: 63dbc1385cab
Create Date: 2026-11-25 04:08:43.878204
"""
from itsm_runtime.migration_steps import outbox_written_ahead_downgrade, outbox_written_ahead_upgrade


revision = '8ae1910de79d'
down_revision = '63dbc1385cab'
branch_labels = None
depends_on = None


def upgrade() -> None:
    outbox_written_ahead_upgrade()


def downgrade() -> None:
    outbox_written_ahead_downgrade()
