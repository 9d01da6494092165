"""notify-svc tables (schema `notify`)."""

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY, JSONB

from itsm_runtime.service import platform_tables

metadata = sa.MetaData()
platform = platform_tables(metadata)

subscriptions = sa.Table(
    "subscriptions", metadata,
    sa.Column("id", sa.Text, primary_key=True),
    sa.Column("channel", sa.Text, nullable=False),
    sa.Column("target", sa.Text, nullable=False),
    sa.Column("event_types", ARRAY(sa.Text), nullable=False),
    sa.Column("filter", JSONB),
    sa.Column("secret", sa.Text, nullable=False),
    sa.Column("active", sa.Boolean, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("deactivated_at", sa.DateTime(timezone=True)),
    sa.Column("created_seq", sa.BigInteger, sa.Identity(), nullable=False, unique=True),
    sa.Index("ix_subscriptions_event_types", "event_types", postgresql_using="gin",
             postgresql_where=sa.text("active")),
)

# One row per (event, subscription): the unique constraint is what makes a redelivered
# event, a replay or a second consumer replica unable to notify anyone twice.
deliveries = sa.Table(
    "deliveries", metadata,
    sa.Column("id", sa.Text, primary_key=True),
    sa.Column("subscription_id", sa.Text, sa.ForeignKey("subscriptions.id"), nullable=False),
    sa.Column("event_id", sa.Text, nullable=False),
    sa.Column("event_type", sa.Text, nullable=False),
    sa.Column("body", sa.LargeBinary, nullable=False),
    sa.Column("status", sa.Text, nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("last_status_code", sa.Integer),
    sa.Column("next_attempt_at", sa.DateTime(timezone=True)),
    sa.Column("delivered_at", sa.DateTime(timezone=True)),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("created_seq", sa.BigInteger, sa.Identity(), nullable=False, unique=True),
    sa.UniqueConstraint("event_id", "subscription_id", name="uq_deliveries_event_subscription"),
    sa.Index("ix_deliveries_subscription", "subscription_id", "created_seq"),
    sa.Index("ix_deliveries_pending", "next_attempt_at", postgresql_where=sa.text("status = 'pending'")),
)

delivery_attempts = sa.Table(
    "delivery_attempts", metadata,
    sa.Column("delivery_id", sa.Text, sa.ForeignKey("deliveries.id"), primary_key=True),
    sa.Column("number", sa.Integer, primary_key=True),
    sa.Column("attempted_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("status_code", sa.Integer),
    sa.Column("error", sa.Text),
    sa.Column("duration_ms", sa.Integer, nullable=False),
)
