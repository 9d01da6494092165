"""clocks: no index of their own on agreement_id, which uq_clock_per_target starts with

Revision ID: b7e2d4c1a9f3
Revises: a3c9e1f2b7d4
Create Date: 2026-11-25 00:05:00
"""
from alembic import op


revision = 'b7e2d4c1a9f3'
down_revision = 'a3c9e1f2b7d4'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_index('ix_clocks_agreement_id', table_name='clocks')


def downgrade() -> None:
    op.create_index('ix_clocks_agreement_id', 'clocks', ['agreement_id'], unique=False)
