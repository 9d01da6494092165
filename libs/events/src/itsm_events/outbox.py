"""Transactional outbox and inbox tables, and the unit of work that fills the outbox.

A handler's domain writes and the outbox rows of the events it emits commit in one
transaction; the relay publishes them afterwards. The inbox records (consumer, event id)
in the same transaction as a consumer's effects, so a redelivered event is skipped.

A timer may write its events ahead of their instant (`EventRows(ahead_of=..., timer=...)`): the relay
publishes them when it comes, unless the timer withdraws them first (`withdraw`), so that what is due at an
instant costs no write at it.
"""

import asyncio
import contextlib
import json
from collections.abc import Callable
from datetime import datetime

import sqlalchemy as sa
from pydantic import BaseModel
from sqlalchemy.dialects.postgresql import JSONB, insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from .envelope import Envelope, new_event, to_kafka
from .sql import among, execute_columns, unnest
from .topics import topic_for_type
from .tracing import current_traceparent


def messaging_tables(metadata: sa.MetaData) -> tuple[sa.Table, sa.Table]:
    """The outbox and inbox tables, added to a service's own metadata."""
    outbox = sa.Table(
        "outbox", metadata,
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("event_id", sa.Text, nullable=False, unique=True),
        sa.Column("event_type", sa.Text, nullable=False),
        sa.Column("topic", sa.Text, nullable=False),
        sa.Column("key", sa.Text, nullable=True),
        sa.Column("headers", JSONB, nullable=False),
        sa.Column("payload", sa.LargeBinary, nullable=False),
        sa.Column("traceparent", sa.Text, nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=True),
        # written ahead by a timer: published at `due_at`, not before; until then `timer` may withdraw it.
        # `mark` is the timer's own name for the event, told back for those it can no longer withdraw.
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("timer", sa.Text, nullable=True),
        sa.Column("mark", sa.Text, nullable=True),
        sa.Index("ix_outbox_unpublished", "id", postgresql_where=sa.text("published_at IS NULL AND due_at IS NULL")),
        sa.Index("ix_outbox_due", "due_at", "id",
                 postgresql_where=sa.text("published_at IS NULL AND due_at IS NOT NULL")),
        sa.Index("ix_outbox_timer", "timer", postgresql_where=sa.text("timer IS NOT NULL")),
    )
    inbox = sa.Table(
        "inbox", metadata,
        sa.Column("consumer", sa.Text, primary_key=True),
        sa.Column("event_id", sa.Text, primary_key=True),
        sa.Column("event_type", sa.Text, nullable=False),
        sa.Column("processed_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    )
    return outbox, inbox


def dead_letter_table(metadata: sa.MetaData) -> sa.Table:
    """Records a consumer gave up on, kept in its own schema as well as on the dead-letter topic; and outbox rows
    the relay could not publish, their record too large for Kafka (partition -1, offset the outbox row's id)."""
    return sa.Table(
        "dead_letters", metadata,
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("consumer", sa.Text, nullable=False),
        sa.Column("topic", sa.Text, nullable=False),
        sa.Column("partition", sa.Integer, nullable=False),
        sa.Column("offset", sa.BigInteger, nullable=False),
        sa.Column("key", sa.LargeBinary, nullable=True),
        sa.Column("headers", JSONB, nullable=False),
        sa.Column("value", sa.LargeBinary, nullable=False),
        sa.Column("error", sa.Text, nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    )


# An outbox row as `outbox_row` builds it: its columns and their types, in order.
_ROW = {"event_id": "text", "event_type": "text", "topic": "text", "key": "text", "headers": "jsonb",
        "payload": "bytea", "traceparent": "text", "due_at": "timestamptz", "timer": "text", "mark": "text"}


def outbox_row(envelope: Envelope, key: str | None, *, due_at: datetime | None = None, timer: str | None = None,
               mark: str | None = None) -> tuple:
    """The outbox row of an event, encoded (the headers as JSON text), in the order of `_ROW`."""
    headers, value = to_kafka(envelope)
    return (envelope.id, envelope.type, topic_for_type(envelope.type), key,
            json.dumps({k: v.decode("utf-8") for k, v in headers.items()}), value, current_traceparent(),
            due_at, timer, mark)


class EventRows:
    """Outbox rows of events, built where they are emitted: in a unit of work, or ahead of the one that will
    write them (`UnitOfWork.add`), e.g. a timer's events prepared before its instant.

    With `ahead_of`, the rows are published at that instant, not before, and `timer` may withdraw them until
    then; each names itself to the timer by the `mark` it is emitted with."""

    def __init__(self, source: str, *, ahead_of: datetime | None = None, timer: str | None = None):
        if (ahead_of is None) != (timer is None):
            raise ValueError("events written ahead need both their instant and their timer")
        self._source = source
        self._due_at = ahead_of
        self._timer = timer
        self.rows: list[tuple] = []

    def emit(self, data: BaseModel, *, key: str, subject: str | None = None, time: datetime | None = None,
             mark: str | None = None) -> Envelope:
        envelope = new_event(data, source=self._source, subject=subject or key, time=time)
        ahead = {"due_at": self._due_at, "timer": self._timer, "mark": mark} if self._timer else {}
        self.rows.append(outbox_row(envelope, key, **ahead))
        return envelope


async def withdraw(conn: AsyncConnection, outbox: sa.Table, timers: list[str],
                   now: datetime) -> dict[str, dict[str, datetime]]:
    """Withdraw what these timers wrote ahead that is not due by `now`; timer -> {mark: instant} of what they
    wrote ahead that is sent: published, or due by `now` (it goes out whatever happens now). A row a relay is
    publishing is waited for (the relay locks it) and counts as sent."""
    if not timers:
        return {}
    o = outbox.c
    await conn.execute(outbox.delete().where(among(o.timer, timers), o.published_at.is_(None), o.due_at > now))
    sent: dict[str, dict[str, datetime]] = {}
    for timer, mark, due_at in await conn.execute(sa.select(o.timer, o.mark, o.due_at).where(among(o.timer, timers))):
        sent.setdefault(timer, {})[mark] = due_at
    return sent


class UnitOfWork:
    """One database transaction plus the events it emits (written to the outbox on commit)."""

    def __init__(self, engine: AsyncEngine, outbox: sa.Table, *, source: str,
                 on_commit: Callable[[], None] | None = None):
        self._engine = engine
        self.outbox = outbox
        self._insert = f"INSERT INTO {outbox.name} ({', '.join(_ROW)}) SELECT * FROM {unnest(_ROW.values())}"
        self.source = source
        self._on_commit = on_commit
        self._events = EventRows(source)
        self._after_commit: list[Callable[[], None]] = []
        # What handlers may share within this transaction, e.g. a lookup done once for a batch of events.
        self.memo: dict = {}
        self.conn: AsyncConnection

    async def __aenter__(self) -> "UnitOfWork":
        self.conn = await self._engine.connect()
        await self.conn.begin()
        return self

    async def __aexit__(self, *exc_info) -> None:
        try:
            if self.conn.in_transaction():
                await self.conn.rollback()
        finally:
            await self.conn.close()

    def emit(self, data: BaseModel, *, key: str, subject: str | None = None, time: datetime | None = None,
             mark: str | None = None) -> Envelope:
        """Record an event to publish if and only if this unit of work commits (`mark`: only for events
        written ahead, `EventRows`)."""
        return self._events.emit(data, key=key, subject=subject, time=time, mark=mark)

    def add(self, events: EventRows) -> None:
        """Publish events built ahead of this unit of work, if and only if it commits."""
        self._events.rows.extend(events.rows)

    async def withdraw(self, timers: list[str], now: datetime) -> dict[str, dict[str, datetime]]:
        """`withdraw` in this transaction."""
        return await withdraw(self.conn, self.outbox, timers, now)

    def forget_events(self) -> None:
        """Publish none of the events emitted so far (a rebuild computes again what was published already)."""
        self._events.rows.clear()

    def after_commit(self, callback: Callable[[], None]) -> None:
        """Run `callback` once this unit of work has committed (e.g. schedule a timer it persisted)."""
        self._after_commit.append(callback)

    async def commit(self) -> None:
        rows, self._events.rows = self._events.rows, []
        await execute_columns(self.conn, self._insert, rows)
        await self.conn.commit()
        if rows and self._on_commit is not None:
            self._on_commit()
        callbacks, self._after_commit = self._after_commit, []
        for callback in callbacks:
            callback()


async def claim_inbox(conn: AsyncConnection, inbox: sa.Table, *, consumer: str, envelope: Envelope) -> bool:
    """Record that `consumer` processes this event; False if it already did."""
    stmt = (
        insert(inbox)
        .values(consumer=consumer, event_id=envelope.id, event_type=envelope.type)
        .on_conflict_do_nothing()
        .returning(inbox.c.event_id)
    )
    return (await conn.execute(stmt)).first() is not None


async def claim_inbox_many(conn: AsyncConnection, inbox: sa.Table, *, consumer: str,
                           envelopes: list[Envelope]) -> set[str]:
    """Record that `consumer` processes these events in one statement; the ids it had not processed yet."""
    rows = list({e.id: {"consumer": consumer, "event_id": e.id, "event_type": e.type} for e in envelopes}.values())
    stmt = insert(inbox).values(rows).on_conflict_do_nothing().returning(inbox.c.event_id)
    return set((await conn.execute(stmt)).scalars())


def headers_from_row(row) -> dict[str, bytes]:
    headers = {k: v.encode("utf-8") for k, v in row.headers.items()}
    if row.traceparent:
        headers["traceparent"] = row.traceparent.encode("ascii")
    return headers


def dumps(value) -> str:
    return json.dumps(value, separators=(",", ":"), default=str)


class Wakeup:
    """A level-triggered signal: set by committers, awaited by a background worker."""

    def __init__(self) -> None:
        self._event = asyncio.Event()

    def set(self) -> None:
        self._event.set()

    async def wait(self, timeout: float) -> None:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):  # unlike wait_for, never swallows a cancellation of the waiter
                await self._event.wait()
        self._event.clear()
