"""change-svc tables (schema `change`)."""

import sqlalchemy as sa

from itsm_runtime.service import platform_tables

metadata = sa.MetaData()
platform = platform_tables(metadata)

change_number = sa.Sequence("change_number_seq", metadata=metadata)

changes = sa.Table(
    "changes", metadata,
    sa.Column("id", sa.Text, primary_key=True),
    sa.Column("number", sa.Text, nullable=False, unique=True),
    sa.Column("title", sa.Text, nullable=False),
    sa.Column("description", sa.Text),
    sa.Column("type", sa.Text, nullable=False, index=True),
    sa.Column("service_id", sa.Text, index=True),
    sa.Column("risk", sa.Text, nullable=False),
    sa.Column("status", sa.Text, nullable=False, index=True),
    sa.Column("planned_start", sa.DateTime(timezone=True)),
    sa.Column("planned_end", sa.DateTime(timezone=True)),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("created_seq", sa.BigInteger, sa.Identity(), nullable=False, unique=True),
)
