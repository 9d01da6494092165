"""clock updates in place: no index on next_due_at, room on each page for HOT updates; incident openings by service

Revision ID: a3c9e1f2b7d4
Revises: d128c79a630b
Create Date: 2026-11-24 20:25:00
"""
from alembic import op
import sqlalchemy as sa


revision = 'a3c9e1f2b7d4'
down_revision = 'd128c79a630b'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_index('ix_clocks_due', table_name='clocks', postgresql_where=sa.text('next_due_at IS NOT NULL'))
    op.execute("ALTER TABLE clocks SET (fillfactor = 70)")
    op.create_index('ix_incident_facts_openings', 'incident_facts', ['service_id', 'at'], unique=False,
                    postgresql_where=sa.text("kind = 'opened'"))


def downgrade() -> None:
    op.drop_index('ix_incident_facts_openings', table_name='incident_facts',
                  postgresql_where=sa.text("kind = 'opened'"))
    op.execute("ALTER TABLE clocks RESET (fillfactor)")
    op.create_index('ix_clocks_due', 'clocks', ['next_due_at'], unique=False,
                    postgresql_where=sa.text('next_due_at IS NOT NULL'))
