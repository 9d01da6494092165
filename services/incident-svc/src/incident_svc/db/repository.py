"""Loading and saving incidents with SQLAlchemy Core."""

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from itsm_runtime.pagination import keyset_page

from ..domain.model import Incident, Status
from .tables import incident_number, incidents

_FIELDS = [c.name for c in incidents.columns if c.name != "created_seq"]


def _to_domain(row) -> Incident:
    values = {name: getattr(row, name) for name in _FIELDS}
    values["status"] = Status(values["status"])
    return Incident(**values)


def _to_row(incident: Incident) -> dict:
    row = {name: getattr(incident, name) for name in _FIELDS}
    row["status"] = str(incident.status)
    return row


async def next_number(conn: AsyncConnection) -> str:
    value = (await conn.execute(sa.select(incident_number.next_value()))).scalar_one()
    return f"INC{value:07d}"


async def get(conn: AsyncConnection, incident_id: str, *, for_update: bool = False) -> Incident | None:
    stmt = sa.select(incidents).where(incidents.c.id == incident_id)
    if for_update:
        stmt = stmt.with_for_update()
    row = (await conn.execute(stmt)).first()
    return _to_domain(row) if row else None


async def add(conn: AsyncConnection, incident: Incident) -> None:
    await conn.execute(incidents.insert().values(**_to_row(incident)))


async def save(conn: AsyncConnection, incident: Incident) -> None:
    await conn.execute(incidents.update().where(incidents.c.id == incident.id).values(**_to_row(incident)))


async def list_page(conn: AsyncConnection, *, status: str | None, service_id: str | None, priority: int | None,
                    after_seq: int | None, limit: int) -> tuple[list[Incident], int | None]:
    stmt = sa.select(incidents)
    if status:
        stmt = stmt.where(incidents.c.status == status)
    if service_id:
        stmt = stmt.where(incidents.c.service_id == service_id)
    if priority:
        stmt = stmt.where(incidents.c.priority == priority)
    rows, last = await keyset_page(conn, stmt, incidents.c.created_seq, after=after_seq, limit=limit)
    return [_to_domain(r) for r in rows], last
