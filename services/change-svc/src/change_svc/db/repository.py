"""Loading and saving change requests with SQLAlchemy Core."""

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from itsm_runtime.pagination import keyset_page

from ..domain.model import Change, ChangeType, Risk, Status
from .tables import change_number, changes

_FIELDS = [c.name for c in changes.columns if c.name != "created_seq"]


def _to_domain(row) -> Change:
    values = {name: getattr(row, name) for name in _FIELDS}
    values["type"] = ChangeType(values["type"])
    values["risk"] = Risk(values["risk"])
    values["status"] = Status(values["status"])
    return Change(**values)


def _to_row(change: Change) -> dict:
    row = {name: getattr(change, name) for name in _FIELDS}
    for name in ("type", "risk", "status"):
        row[name] = str(row[name])
    return row


async def next_number(conn: AsyncConnection) -> str:
    value = (await conn.execute(sa.select(change_number.next_value()))).scalar_one()
    return f"CHG{value:07d}"


async def get(conn: AsyncConnection, change_id: str) -> Change | None:
    row = (await conn.execute(sa.select(changes).where(changes.c.id == change_id))).first()
    return _to_domain(row) if row else None


async def add(conn: AsyncConnection, change: Change) -> None:
    await conn.execute(changes.insert().values(**_to_row(change)))


async def list_page(conn: AsyncConnection, *, status: str | None, type: str | None, service_id: str | None,
                    after_seq: int | None, limit: int) -> tuple[list[Change], int | None]:
    stmt = sa.select(changes)
    if status:
        stmt = stmt.where(changes.c.status == status)
    if type:
        stmt = stmt.where(changes.c.type == type)
    if service_id:
        stmt = stmt.where(changes.c.service_id == service_id)
    rows, last = await keyset_page(conn, stmt, changes.c.created_seq, after=after_seq, limit=limit)
    return [_to_domain(r) for r in rows], last
