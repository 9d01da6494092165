"""clocks: state and published as json, not jsonb

The service reads and writes them whole and no query looks inside them: PostgreSQL only checks json text,
where it parses jsonb into its binary form on every write, which took as long as writing the rest of the
row (100,000 clocks: COPY 0.8 s as json, 1.6 s as jsonb, measured).

Revision ID: 9c41e7a2d5b8
Revises: 5793deb0d216
Create Date: 2026-11-25 07:30:00
"""
from alembic import op


revision = '9c41e7a2d5b8'
down_revision = '5793deb0d216'
branch_labels = None
depends_on = None


def _retype(kind: str) -> None:
    op.execute(f"ALTER TABLE clocks ALTER COLUMN published DROP DEFAULT, "
               f"ALTER COLUMN state TYPE {kind} USING state::{kind}, "
               f"ALTER COLUMN published TYPE {kind} USING published::{kind}, "
               f"ALTER COLUMN published SET DEFAULT '[]'::{kind}")


def upgrade() -> None:
    _retype("json")


def downgrade() -> None:
    _retype("jsonb")
