"""Outage state of incident-svc: known services, policies, last observations and outages (SQLAlchemy Core)."""

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from itsm_runtime.pagination import keyset_page

from ..domain.outages import Availability, Outage, OutagePolicy, ServiceState
from .tables import known_services, outage_policies, outages, service_states


async def remember_service(conn: AsyncConnection, *, service_id: str, name: str, criticality: int | None,
                           at: datetime) -> None:
    values = dict(name=name, criticality=criticality, updated_at=at)
    await conn.execute(insert(known_services).values(service_id=service_id, **values)
                       .on_conflict_do_update(index_elements=[known_services.c.service_id], set_=values))


async def known_service(conn: AsyncConnection, service_id: str) -> tuple[str, int | None] | None:
    """(name, criticality) of a business service the CMDB announced, if any."""
    row = (await conn.execute(sa.select(known_services.c.name, known_services.c.criticality)
                              .where(known_services.c.service_id == service_id))).first()
    return (row.name, row.criticality) if row else None


async def get_policy(conn: AsyncConnection, service_id: str) -> OutagePolicy | None:
    found = await get_policy_as_set(conn, service_id)
    return found[0] if found else None


async def get_policy_as_set(conn: AsyncConnection, service_id: str) -> tuple[OutagePolicy, datetime] | None:
    """The service's own policy and when it was set; None while it has the default."""
    row = (await conn.execute(sa.select(outage_policies).where(outage_policies.c.service_id == service_id))).first()
    if row is None:
        return None
    return OutagePolicy(open_on=Availability(row.open_on), auto_resolve=row.auto_resolve), row.updated_at


async def put_policy(conn: AsyncConnection, *, service_id: str, policy: OutagePolicy, at: datetime) -> None:
    values = dict(open_on=str(policy.open_on), auto_resolve=policy.auto_resolve, updated_at=at)
    await conn.execute(insert(outage_policies).values(service_id=service_id, **values)
                       .on_conflict_do_update(index_elements=[outage_policies.c.service_id], set_=values))


async def lock_service_state(conn: AsyncConnection, service_id: str) -> ServiceState | None:
    """Serialise availability handling of one service until the transaction ends; its last applied state."""
    await conn.execute(sa.select(sa.func.pg_advisory_xact_lock(
        sa.func.hashtextextended(f"availability:{service_id}", 0))))
    row = (await conn.execute(sa.select(service_states).where(service_states.c.service_id == service_id))).first()
    if row is None:
        return None
    return ServiceState(service_id=row.service_id, status=Availability(row.status), observed_at=row.observed_at)


async def save_service_state(conn: AsyncConnection, state: ServiceState) -> None:
    values = dict(status=str(state.status), observed_at=state.observed_at)
    await conn.execute(insert(service_states).values(service_id=state.service_id, **values)
                       .on_conflict_do_update(index_elements=[service_states.c.service_id], set_=values))


def _outage(row) -> Outage:
    return Outage(id=row.id, service_id=row.service_id, incident_id=row.incident_id, status=Availability(row.status),
                  started_at=row.started_at, last_observed_at=row.last_observed_at, ended_at=row.ended_at,
                  cause_ci_ids=list(row.cause_ci_ids))


def _row(outage: Outage) -> dict:
    return dict(id=outage.id, service_id=outage.service_id, incident_id=outage.incident_id, status=str(outage.status),
                started_at=outage.started_at, last_observed_at=outage.last_observed_at, ended_at=outage.ended_at,
                cause_ci_ids=outage.cause_ci_ids)


async def latest_outage(conn: AsyncConnection, service_id: str) -> Outage | None:
    """The service's most recent outage, ongoing or not."""
    row = (await conn.execute(sa.select(outages).where(outages.c.service_id == service_id)
                              .order_by(outages.c.created_seq.desc()).limit(1))).first()
    return _outage(row) if row else None


async def add_outage(conn: AsyncConnection, outage: Outage) -> None:
    await conn.execute(outages.insert().values(**_row(outage)))


async def save_outage(conn: AsyncConnection, outage: Outage) -> None:
    await conn.execute(outages.update().where(outages.c.id == outage.id).values(**_row(outage)))


async def list_outages(conn: AsyncConnection, *, service_id: str, after_seq: int | None,
                       limit: int) -> tuple[list[Outage], int | None]:
    stmt = sa.select(outages).where(outages.c.service_id == service_id)
    rows, last = await keyset_page(conn, stmt, outages.c.created_seq, after=after_seq, limit=limit)
    return [_outage(r) for r in rows], last
