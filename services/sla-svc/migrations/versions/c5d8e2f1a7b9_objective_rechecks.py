"""objective rechecks: from when an agreement's next objective check looks back, kept with the ticket that changed

Revision ID: c5d8e2f1a7b9
Revises: b7e2d4c1a9f3
Create Date: 2026-11-25 01:10:00
"""
from alembic import op
import sqlalchemy as sa


revision = 'c5d8e2f1a7b9'
down_revision = 'b7e2d4c1a9f3'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('objective_rechecks',
    sa.Column('agreement_id', sa.Text(), nullable=False),
    sa.Column('since', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['agreement_id'], ['agreements.id'], )
    )
    op.create_index(op.f('ix_objective_rechecks_agreement_id'), 'objective_rechecks', ['agreement_id'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_objective_rechecks_agreement_id'), table_name='objective_rechecks')
    op.drop_table('objective_rechecks')
