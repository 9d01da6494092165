"""incident-svc tables (schema `incident`)."""

import sqlalchemy as sa

from itsm_runtime.service import platform_tables

metadata = sa.MetaData()
platform = platform_tables(metadata)

incident_number = sa.Sequence("incident_number_seq", metadata=metadata)

incidents = sa.Table(
    "incidents", metadata,
    sa.Column("id", sa.Text, primary_key=True),
    sa.Column("number", sa.Text, nullable=False, unique=True),
    sa.Column("title", sa.Text, nullable=False),
    sa.Column("description", sa.Text),
    sa.Column("service_id", sa.Text, nullable=False, index=True),
    sa.Column("customer_id", sa.Text),
    sa.Column("impact", sa.SmallInteger, nullable=False),
    sa.Column("urgency", sa.SmallInteger, nullable=False),
    sa.Column("priority", sa.SmallInteger, nullable=False),
    sa.Column("status", sa.Text, nullable=False, index=True),
    sa.Column("assignee", sa.Text),
    sa.Column("hold_reason", sa.Text),
    sa.Column("resolution_notes", sa.Text),
    sa.Column("opened_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("resolved_at", sa.DateTime(timezone=True)),
    sa.Column("closed_at", sa.DateTime(timezone=True)),
    sa.Column("created_seq", sa.BigInteger, sa.Identity(), nullable=False, unique=True),
)
