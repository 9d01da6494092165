"""sla-svc tables (schema `sla`)."""

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB

from itsm_runtime.service import platform_tables

metadata = sa.MetaData()
platform = platform_tables(metadata)

agreements = sa.Table(
    "agreements", metadata,
    sa.Column("id", sa.Text, primary_key=True),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("service_id", sa.Text, nullable=False, index=True),
    sa.Column("customer_id", sa.Text),
    sa.Column("calendar_id", sa.Text, nullable=False),
    sa.Column("targets", JSONB, nullable=False),
    sa.Column("warning_thresholds", JSONB, nullable=False),
    sa.Column("pause_on", JSONB, nullable=False),
    sa.Column("objectives", JSONB, nullable=False, server_default=sa.text("'[]'::jsonb")),
    sa.Column("effective_from", sa.DateTime(timezone=True)),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("created_seq", sa.BigInteger, sa.Identity(), nullable=False, unique=True),
)

# a clock per (agreement, incident, metric): its fold state, plus the columns lists and timers query
clocks = sa.Table(
    "clocks", metadata,
    sa.Column("id", sa.Text, primary_key=True),
    # queried by agreement through uq_clock_per_target, which starts with it: no index of its own
    sa.Column("agreement_id", sa.Text, sa.ForeignKey("agreements.id"), nullable=False),
    sa.Column("incident_id", sa.Text, nullable=False, index=True),
    sa.Column("service_id", sa.Text, nullable=False),
    sa.Column("customer_id", sa.Text),
    sa.Column("metric", sa.Text, nullable=False),
    sa.Column("objective_id", sa.Text),  # a ratio objective's ticket clock; NULL for a target's clock
    sa.Column("priority", sa.SmallInteger, nullable=False),
    sa.Column("target_seconds", sa.Float),
    sa.Column("calendar_id", sa.Text, nullable=False),
    sa.Column("calendar_version", sa.Integer, nullable=False, server_default="1"),
    sa.Column("stage", sa.Text, nullable=False),
    sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("deadline", sa.DateTime(timezone=True)),
    sa.Column("warnings_fired", sa.SmallInteger, nullable=False),
    sa.Column("breached", sa.Boolean, nullable=False),
    sa.Column("breached_at", sa.DateTime(timezone=True)),
    sa.Column("completed_at", sa.DateTime(timezone=True)),
    sa.Column("next_due_at", sa.DateTime(timezone=True)),
    # JSON read and written whole, never queried: as text, which PostgreSQL neither parses (jsonb) nor checks (json),
    # without statistics (e8b3f0c6d1a4)
    sa.Column("state", sa.Text, nullable=False),  # fold.ClockState.to_json(), timeline included
    sa.Column("published", sa.Text, nullable=False, server_default=sa.text("'[]'")),  # timeline keys, a JSON list
    sa.Column("created_seq", sa.BigInteger, sa.Identity(), nullable=False, unique=True),
    sa.UniqueConstraint("agreement_id", "incident_id", "metric", "objective_id", name="uq_clock_per_target",
                        postgresql_nulls_not_distinct=True),
    # A timer rewrites a clock's state in place: no indexed column changes and pages keep room for the new
    # row version, so PostgreSQL updates it without touching any index (a HOT update). Hence no index on
    # next_due_at: the timers are loaded from a scan once at start-up.
    postgresql_with={"fillfactor": 70},
)

# what the clocks are folded from: every incident event consumed, by event id (a redelivery counts once)
incident_facts = sa.Table(
    "incident_facts", metadata,
    sa.Column("event_id", sa.Text, primary_key=True),
    sa.Column("incident_id", sa.Text, nullable=False, index=True),
    sa.Column("kind", sa.Text, nullable=False),  # opened | status | priority
    sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("priority", sa.SmallInteger),
    sa.Column("status", sa.Text),
    sa.Column("from_status", sa.Text),
    sa.Column("service_id", sa.Text, nullable=False),
    sa.Column("customer_id", sa.Text),
    sa.Index("ix_incident_facts_openings", "service_id", "at", postgresql_where=sa.text("kind = 'opened'")),
)

# the availability of every service an agreement names, as consumed from itsm.cmdb.service_availability_changed
service_status = sa.Table(
    "service_status", metadata,
    sa.Column("event_id", sa.Text, primary_key=True),
    sa.Column("service_id", sa.Text, nullable=False),
    sa.Column("status", sa.Text, nullable=False),
    sa.Column("observed_at", sa.DateTime(timezone=True), nullable=False),
    sa.Index("ix_service_status_service", "service_id", "observed_at"),
)

maintenance_windows = sa.Table(
    "maintenance_windows", metadata,
    sa.Column("id", sa.Text, primary_key=True),
    sa.Column("service_id", sa.Text, nullable=False, index=True),
    sa.Column("start", sa.DateTime(timezone=True), nullable=False),
    sa.Column("end", sa.DateTime(timezone=True), nullable=False),
    sa.Column("reference", sa.Text),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("created_seq", sa.BigInteger, sa.Identity(), nullable=False, unique=True),
)

# one itsm.sla.objective_breached per objective and window
objective_breaches = sa.Table(
    "objective_breaches", metadata,
    sa.Column("agreement_id", sa.Text, sa.ForeignKey("agreements.id"), primary_key=True),
    sa.Column("objective_id", sa.Text, primary_key=True),
    sa.Column("window_start", sa.DateTime(timezone=True), primary_key=True),
    sa.Column("breached_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
)

# ratio tickets that changed since their agreement's objectives were last checked: how far back the next check looks
# (written in the ticket's transaction and taken in the check's, so that a crash in between loses nothing). Rows are
# only inserted and deleted, without a key: an insert never waits on anyone, and a check's delete sees only committed
# rows (a transaction still writing one asks for its own check once it commits), so it waits at most on another
# check of the same agreement.
objective_rechecks = sa.Table(
    "objective_rechecks", metadata,
    sa.Column("agreement_id", sa.Text, sa.ForeignKey("agreements.id"), nullable=False, index=True),
    sa.Column("since", sa.DateTime(timezone=True), nullable=False),
)

# service reviews: opened by a breach, one open review per agreement collects further breaches
reviews = sa.Table(
    "reviews", metadata,
    sa.Column("id", sa.Text, primary_key=True),
    sa.Column("agreement_id", sa.Text, sa.ForeignKey("agreements.id"), nullable=False, index=True),
    sa.Column("service_id", sa.Text, nullable=False),
    sa.Column("status", sa.Text, nullable=False),
    sa.Column("root_cause", sa.Text),
    sa.Column("actions", JSONB, nullable=False, server_default=sa.text("'[]'::jsonb")),
    sa.Column("opened_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("closed_at", sa.DateTime(timezone=True)),
    sa.Column("created_seq", sa.BigInteger, sa.Identity(), nullable=False, unique=True),
    sa.Index("uq_open_review_per_agreement", "agreement_id", unique=True,
             postgresql_where=sa.text("status <> 'closed'")),  # reviews.OPEN
)

review_breaches = sa.Table(
    "review_breaches", metadata,
    sa.Column("review_id", sa.Text, sa.ForeignKey("reviews.id"), primary_key=True),
    sa.Column("kind", sa.Text, primary_key=True),  # clock | objective
    sa.Column("ref_id", sa.Text, primary_key=True),  # the clock id, or objective id @ window start
    sa.Column("incident_id", sa.Text),
    sa.Column("breached_at", sa.DateTime(timezone=True), nullable=False),
    sa.Index("ix_review_breaches_ref", "ref_id"),
)

# which burn-rate alerts of an objective are firing, so itsm.sla.budget_burn is published on each change only
burn_alerts = sa.Table(
    "burn_alerts", metadata,
    sa.Column("agreement_id", sa.Text, sa.ForeignKey("agreements.id"), primary_key=True),
    sa.Column("objective_id", sa.Text, primary_key=True),
    sa.Column("rule", sa.Text, primary_key=True),  # severity:threshold, e.g. page:14.4
    sa.Column("firing", sa.Boolean, nullable=False),
    sa.Column("changed_at", sa.DateTime(timezone=True), nullable=False),
)

# one itsm.sla.report_ready per agreement and closed week or month
reports_published = sa.Table(
    "reports_published", metadata,
    sa.Column("agreement_id", sa.Text, sa.ForeignKey("agreements.id"), primary_key=True),
    sa.Column("period", sa.Text, primary_key=True),  # 2026-W47 or 2026-11
    sa.Column("published_at", sa.DateTime(timezone=True), nullable=False),
)

# each agreement's live compliance, as last computed (compliance.py); a new version whenever it changes
compliance = sa.Table(
    "compliance", metadata,
    sa.Column("agreement_id", sa.Text, sa.ForeignKey("agreements.id"), primary_key=True),
    sa.Column("version", sa.BigInteger, nullable=False),
    sa.Column("status", sa.Text, nullable=False),
    sa.Column("document", JSONB, nullable=False),  # the ComplianceRead of GET /v1/agreements/{id}/compliance
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
)

# business calendar versions, immutable: a change adds the next version, and a clock keeps the version it started with
calendars = sa.Table(
    "calendars", metadata,
    sa.Column("id", sa.Text, primary_key=True),
    sa.Column("version", sa.Integer, primary_key=True),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("definition", JSONB, nullable=False),  # BusinessCalendar.to_dict()
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("created_seq", sa.BigInteger, sa.Identity(), nullable=False, unique=True),
)
