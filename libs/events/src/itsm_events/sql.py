"""SQL for many rows at once: one statement and one parameter per column, whatever the number of rows."""

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncConnection


def unnest(types, *, first: int = 1) -> str:
    """`unnest($1::t1[], $2::t2[], ...)`: the rows `execute_columns` passes, one array per column (from parameter
    `first` on, when parameters before them say something else)."""
    return "unnest(" + ", ".join(f"${n}::{kind}[]" for n, kind in enumerate(types, first)) + ")"


async def driver(conn: AsyncConnection):
    """The asyncpg connection under `conn`, within its transaction: SQLAlchemy sends BEGIN with its own first
    statement only, and a statement sent to the driver before it would run, and commit, on its own."""
    raw = (await conn.get_raw_connection()).driver_connection
    if conn.in_transaction() and not raw.is_in_transaction():
        await conn.execute(sa.text("SELECT 1"))
    return raw


async def execute_columns(conn: AsyncConnection, sql: str, rows: list[tuple]) -> None:
    """Run `sql` once for many rows, given column by column as arrays (read with `unnest`): one statement
    to plan and send, whatever the number of rows. The connection's search_path names the schema."""
    if rows:
        await (await driver(conn)).execute(sql, *(list(column) for column in zip(*rows, strict=True)))


def among(column: sa.Column, values) -> sa.ColumnElement[bool]:
    """`column = ANY(:values)`: one array parameter however many values (an IN list binds, and SQLAlchemy
    renders, one parameter per value)."""
    return column == sa.any_(sa.bindparam(None, list(values), type_=ARRAY(column.type)))
