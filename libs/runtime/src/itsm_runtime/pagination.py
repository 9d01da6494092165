"""Keyset pagination: `?limit=&cursor=` -> {"items": [...], "next_cursor": ...}."""

import base64
import json
from typing import Annotated, Any, Generic, TypeVar

import sqlalchemy as sa
from fastapi import Query
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncConnection

from .errors import Problem

T = TypeVar("T")


class Page(BaseModel, Generic[T]):
    items: list[T]
    next_cursor: str | None = None


def encode_cursor(values: list[Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(values, default=str).encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> list[Any] | None:
    if not cursor:
        return None
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        values = json.loads(base64.urlsafe_b64decode(padded.encode()))
    except ValueError:
        raise Problem(400, "cursor is not one this API returned") from None
    if not isinstance(values, list):
        raise Problem(400, "cursor is not one this API returned")
    return values


def seq_after(cursor: str | None) -> int | None:
    """The sequence number a keyset cursor points past; a cursor we did not issue is a 400."""
    values = decode_cursor(cursor)
    if not values:
        return None
    if len(values) != 1 or not isinstance(values[0], int) or isinstance(values[0], bool) \
            or not 0 <= values[0] < 2**63:
        raise Problem(400, "cursor is not one this API returned")
    return values[0]


def cursor_after(seq: int | None) -> str | None:
    """The cursor of the next page, or None on the last page."""
    return encode_cursor([seq]) if seq is not None else None


async def keyset_page(conn: AsyncConnection, stmt: sa.Select, seq: sa.Column, *, after: int | None,
                      limit: int) -> tuple[list, int | None]:
    """At most `limit` rows of `stmt` past `after` in `seq` order, and the `seq` to continue from."""
    if after is not None:
        stmt = stmt.where(seq > after)
    rows = (await conn.execute(stmt.order_by(seq).limit(limit + 1))).all()
    if len(rows) > limit:
        return rows[:limit], getattr(rows[limit - 1], seq.name)
    return rows, None


LimitParam = Annotated[int, Query(ge=1, le=500)]
CursorParam = Annotated[str | None, Query()]
