"""cmdb-svc tables (schema `cmdb`)."""

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB

from itsm_runtime.service import platform_tables

metadata = sa.MetaData()
platform = platform_tables(metadata)

cis = sa.Table(
    "cis", metadata,
    sa.Column("id", sa.Text, primary_key=True),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("type", sa.Text, nullable=False, index=True),
    sa.Column("key", sa.Text, unique=True),
    sa.Column("criticality", sa.SmallInteger),
    sa.Column("attributes", JSONB, nullable=False),
    sa.Column("redundancy", JSONB),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("created_seq", sa.BigInteger, sa.Identity(), nullable=False, unique=True),
)

relationships = sa.Table(
    "relationships", metadata,
    sa.Column("id", sa.Text, primary_key=True),
    sa.Column("source_id", sa.Text, sa.ForeignKey("cis.id"), nullable=False, index=True),
    sa.Column("target_id", sa.Text, sa.ForeignKey("cis.id"), nullable=False, index=True),
    sa.Column("type", sa.Text, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("created_seq", sa.BigInteger, sa.Identity(), nullable=False, unique=True),
    sa.UniqueConstraint("source_id", "target_id", "type", name="uq_relationships_source_target_type"),
)
