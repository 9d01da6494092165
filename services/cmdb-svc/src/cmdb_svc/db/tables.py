"""cmdb-svc tables (schema `cmdb`)."""

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY, JSONB

from itsm_runtime.service import platform_tables

metadata = sa.MetaData()
platform = platform_tables(metadata)

cis = sa.Table(
    "cis", metadata,
    sa.Column("id", sa.Text, primary_key=True),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("type", sa.Text, nullable=False, index=True),
    sa.Column("key", sa.Text, unique=True),
    sa.Column("criticality", sa.SmallInteger, index=True),
    sa.Column("owner", sa.Text),
    sa.Column("status", sa.Text, nullable=False, server_default="active", index=True),
    sa.Column("attributes", JSONB, nullable=False),
    sa.Column("redundancy", JSONB),
    sa.Column("version", sa.Integer, nullable=False, server_default="1"),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("created_seq", sa.BigInteger, sa.Identity(), nullable=False, unique=True),
)

# One row per version of a CI: who changed what, when, under which change reference.
ci_versions = sa.Table(
    "ci_versions", metadata,
    sa.Column("ci_id", sa.Text, sa.ForeignKey("cis.id"), primary_key=True),
    sa.Column("version", sa.Integer, primary_key=True),
    sa.Column("changed_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("changed_by", sa.Text),
    sa.Column("change_ref", sa.Text),
    sa.Column("changes", JSONB, nullable=False),
)

# Health of each CI that has been signalled or affected: its own report and its derived status.
ci_health = sa.Table(
    "ci_health", metadata,
    sa.Column("ci_id", sa.Text, sa.ForeignKey("cis.id"), primary_key=True),
    sa.Column("reported", sa.Text, nullable=False),
    sa.Column("reported_at", sa.DateTime(timezone=True)),
    sa.Column("status", sa.Text, nullable=False, index=True),
    sa.Column("since", sa.DateTime(timezone=True)),
    sa.Column("cause_ci_ids", ARRAY(sa.Text), nullable=False),
    # graph_state.health_version of the batch that wrote the row: other processes reload what is newer
    sa.Column("health_version", sa.BigInteger, nullable=False, index=True),
)

ci_status_changes = sa.Table(
    "ci_status_changes", metadata,
    sa.Column("seq", sa.BigInteger, sa.Identity(), primary_key=True),
    sa.Column("ci_id", sa.Text, sa.ForeignKey("cis.id"), nullable=False),
    sa.Column("previous_status", sa.Text, nullable=False),
    sa.Column("status", sa.Text, nullable=False),
    sa.Column("observed_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("cause_ci_ids", ARRAY(sa.Text), nullable=False),
    sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    sa.Index("ix_ci_status_changes_ci_id_seq", "ci_id", "seq"),
)

# Signals observed before the newest one already applied to their CI: kept, never applied.
late_signals = sa.Table(
    "late_signals", metadata,
    sa.Column("seq", sa.BigInteger, sa.Identity(), primary_key=True),
    sa.Column("ci_id", sa.Text, nullable=False, index=True),
    sa.Column("status", sa.Text, nullable=False),
    sa.Column("observed_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("source", sa.Text),
    sa.Column("received_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
)

# One row. Every write to the graph bumps topology_version and every signal batch health_version,
# under this row's lock: writers serialise on it, and each process reloads its in-memory graph
# when the versions it holds are behind.
graph_state = sa.Table(
    "graph_state", metadata,
    sa.Column("id", sa.SmallInteger, primary_key=True),
    sa.Column("topology_version", sa.BigInteger, nullable=False),
    sa.Column("health_version", sa.BigInteger, nullable=False),
    sa.CheckConstraint("id = 1", name="ck_graph_state_single_row"),
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
