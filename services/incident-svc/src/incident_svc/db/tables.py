"""incident-svc tables (schema `incident`)."""

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB

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
    sa.Column("alert_count", sa.Integer, nullable=False, server_default="0"),
    sa.Column("last_alert_at", sa.DateTime(timezone=True)),
    sa.Column("created_seq", sa.BigInteger, sa.Identity(), nullable=False, unique=True),
)

# Alert intake (PagerDuty Events API v2) ------------------------------------------------

integrations = sa.Table(
    "integrations", metadata,
    sa.Column("id", sa.Text, primary_key=True),
    sa.Column("routing_key", sa.Text, nullable=False, unique=True),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("service_id", sa.Text, nullable=False),
    sa.Column("customer_id", sa.Text),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
)

# One row per (integration, dedup key): the incident the key points at now and the last alert applied to it.
alerts = sa.Table(
    "alerts", metadata,
    sa.Column("integration_id", sa.Text, sa.ForeignKey("integrations.id"), primary_key=True),
    sa.Column("dedup_key", sa.Text, primary_key=True),
    sa.Column("incident_id", sa.Text, sa.ForeignKey("incidents.id"), nullable=False, index=True),
    sa.Column("fingerprint", sa.Text, nullable=False),
    sa.Column("summary", sa.Text, nullable=False),
    sa.Column("severity", sa.Text, nullable=False),
    sa.Column("source", sa.Text),
    sa.Column("last_event", JSONB, nullable=False),
    sa.Column("first_received_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("last_received_at", sa.DateTime(timezone=True), nullable=False),
)

# Outage incidents from CMDB availability -------------------------------------------------

# Read model of business services, fed by itsm.cmdb.ci_created (incident-svc never reads cmdb tables).
known_services = sa.Table(
    "known_services", metadata,
    sa.Column("service_id", sa.Text, primary_key=True),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("criticality", sa.SmallInteger),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
)

outage_policies = sa.Table(
    "outage_policies", metadata,
    sa.Column("service_id", sa.Text, primary_key=True),
    sa.Column("open_on", sa.Text, nullable=False),
    sa.Column("auto_resolve", sa.Boolean, nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
)

# The latest availability observation applied per service: what makes older ones stale.
service_states = sa.Table(
    "service_states", metadata,
    sa.Column("service_id", sa.Text, primary_key=True),
    sa.Column("status", sa.Text, nullable=False),
    sa.Column("observed_at", sa.DateTime(timezone=True), nullable=False),
)

outages = sa.Table(
    "outages", metadata,
    sa.Column("id", sa.Text, primary_key=True),
    sa.Column("service_id", sa.Text, nullable=False, index=True),
    sa.Column("incident_id", sa.Text, sa.ForeignKey("incidents.id"), nullable=False, index=True),
    sa.Column("status", sa.Text, nullable=False),
    sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("last_observed_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("ended_at", sa.DateTime(timezone=True)),
    sa.Column("cause_ci_ids", JSONB, nullable=False),
    sa.Column("created_seq", sa.BigInteger, sa.Identity(), nullable=False, unique=True),
    # at most one ongoing outage per service
    sa.Index("ux_outages_ongoing", "service_id", unique=True, postgresql_where=sa.text("ended_at IS NULL")),
)
