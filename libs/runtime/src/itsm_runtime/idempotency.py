"""`Idempotency-Key` for creating POSTs: a retry gets the first result, stored in the same transaction."""

import hashlib
import json
from collections.abc import Awaitable, Callable
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB, insert
from sqlalchemy.ext.asyncio import AsyncConnection

from .errors import Problem


def idempotency_table(metadata: sa.MetaData) -> sa.Table:
    return sa.Table(
        "idempotency_keys", metadata,
        sa.Column("scope", sa.Text, primary_key=True),
        sa.Column("key", sa.Text, primary_key=True),
        sa.Column("request_hash", sa.Text, nullable=False),
        sa.Column("status_code", sa.Integer, nullable=True),
        sa.Column("response", JSONB, nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    )


def _hash(request: Any) -> str:
    return hashlib.sha256(json.dumps(request, sort_keys=True, default=str).encode()).hexdigest()


async def run_idempotent(conn: AsyncConnection, table: sa.Table, *, key: str | None, scope: str, request: Any,
                         action: Callable[[], Awaitable[tuple[int, Any]]]) -> tuple[int, Any]:
    """Run `action` once per (scope, key); later calls with the same key get its stored answer.

    A concurrent retry waits on the key's row lock until the first transaction ends.
    The same key with a different request body is a 422, as in the IETF draft.
    """
    if key is None:
        return await action()
    if len(key) > 255:
        raise Problem(400, "Idempotency-Key must be at most 255 characters")
    request_hash = _hash(request)
    claimed = (await conn.execute(
        insert(table).values(scope=scope, key=key, request_hash=request_hash)
        .on_conflict_do_nothing().returning(table.c.key)
    )).first()
    if claimed is None:
        row = (await conn.execute(
            sa.select(table.c.request_hash, table.c.status_code, table.c.response)
            .where(table.c.scope == scope, table.c.key == key)
        )).one()
        if row.request_hash != request_hash:
            raise Problem(422, "this Idempotency-Key was used with a different request body")
        return row.status_code, row.response
    status, body = await action()
    await conn.execute(
        table.update().where(table.c.scope == scope, table.c.key == key).values(status_code=status, response=body)
    )
    return status, body
