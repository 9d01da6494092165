"""Integrations and dedup-key state of the alert intake, with SQLAlchemy Core."""

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from .tables import alerts, integrations


@dataclass(frozen=True)
class Integration:
    id: str
    routing_key: str
    name: str
    service_id: str
    customer_id: str | None
    created_at: datetime


@dataclass(frozen=True)
class AlertState:
    """Where a dedup key points and the last alert applied through it."""

    integration_id: str
    dedup_key: str
    incident_id: str
    fingerprint: str
    first_received_at: datetime


def _integration(row) -> Integration:
    return Integration(id=row.id, routing_key=row.routing_key, name=row.name, service_id=row.service_id,
                       customer_id=row.customer_id, created_at=row.created_at)


async def add_integration(conn: AsyncConnection, integration: Integration) -> None:
    await conn.execute(integrations.insert().values(
        id=integration.id, routing_key=integration.routing_key, name=integration.name,
        service_id=integration.service_id, customer_id=integration.customer_id, created_at=integration.created_at))


async def get_integration(conn: AsyncConnection, integration_id: str) -> Integration | None:
    row = (await conn.execute(sa.select(integrations).where(integrations.c.id == integration_id))).first()
    return _integration(row) if row else None


async def integration_by_routing_key(conn: AsyncConnection, routing_key: str) -> Integration | None:
    row = (await conn.execute(sa.select(integrations).where(integrations.c.routing_key == routing_key))).first()
    return _integration(row) if row else None


async def lock_dedup_key(conn: AsyncConnection, *, integration_id: str, dedup_key: str) -> AlertState | None:
    """Serialise events of one dedup key until the transaction ends; return its state, if any.

    The transaction-scoped advisory lock also covers a key with no row yet, so two concurrent
    first triggers cannot both open an incident.
    """
    await conn.execute(sa.select(sa.func.pg_advisory_xact_lock(
        sa.func.hashtextextended(f"alert:{integration_id}:{dedup_key}", 0))))
    row = (await conn.execute(sa.select(alerts).where(alerts.c.integration_id == integration_id,
                                                      alerts.c.dedup_key == dedup_key))).first()
    if row is None:
        return None
    return AlertState(integration_id=row.integration_id, dedup_key=row.dedup_key, incident_id=row.incident_id,
                      fingerprint=row.fingerprint, first_received_at=row.first_received_at)


async def record_alert(conn: AsyncConnection, *, integration_id: str, dedup_key: str, incident_id: str,
                       fingerprint: str, summary: str, severity: str, source: str | None, event: dict,
                       received_at: datetime, new_incident: bool) -> None:
    """Point the dedup key at its incident and keep the alert just applied."""
    values = dict(incident_id=incident_id, fingerprint=fingerprint, summary=summary, severity=severity,
                  source=source, last_event=event, last_received_at=received_at)
    stmt = insert(alerts).values(integration_id=integration_id, dedup_key=dedup_key,
                                 first_received_at=received_at, **values)
    update = dict(values)
    if new_incident:
        update["first_received_at"] = received_at
    await conn.execute(stmt.on_conflict_do_update(index_elements=[alerts.c.integration_id, alerts.c.dedup_key],
                                                  set_=update))
