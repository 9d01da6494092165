"""Subscriptions, deliveries and delivery attempts with SQLAlchemy Core."""

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from itsm_runtime.pagination import keyset_page

from ..domain.model import Channel, DeliveryStatus, Subscription
from .tables import deliveries, delivery_attempts, subscriptions

_SUBSCRIPTION_FIELDS = [c.name for c in subscriptions.columns if c.name not in ("created_seq", "deactivated_at")]
DELIVERY_FIELDS = [c for c in deliveries.columns if c.name not in ("body", "updated_at")]


def _to_subscription(row) -> Subscription:
    values = {name: getattr(row, name) for name in _SUBSCRIPTION_FIELDS}
    values["channel"] = Channel(values["channel"])
    values["event_types"] = list(values["event_types"])
    return Subscription(**values)


# Subscriptions --------------------------------------------------------------------------


async def add_subscription(conn: AsyncConnection, subscription: Subscription) -> None:
    """Insert a new subscription, secret included."""
    row = {name: getattr(subscription, name) for name in _SUBSCRIPTION_FIELDS}
    row["channel"] = str(subscription.channel)
    await conn.execute(subscriptions.insert().values(**row))


async def get_subscription(conn: AsyncConnection, subscription_id: str) -> Subscription | None:
    """An active subscription by id."""
    row = (await conn.execute(
        sa.select(subscriptions).where(subscriptions.c.id == subscription_id, subscriptions.c.active)
    )).first()
    return _to_subscription(row) if row else None


async def list_subscriptions(conn: AsyncConnection, *, after_seq: int | None,
                             limit: int) -> tuple[list[Subscription], int | None]:
    """A page of active subscriptions in creation order, and the cursor value of the next page."""
    stmt = sa.select(subscriptions).where(subscriptions.c.active)
    rows, last = await keyset_page(conn, stmt, subscriptions.c.created_seq, after=after_seq, limit=limit)
    return [_to_subscription(r) for r in rows], last


async def deactivate_subscription(conn: AsyncConnection, subscription_id: str, *, at: datetime) -> bool:
    """Deactivate a subscription and fail its pending deliveries; False if it was not active."""
    done = (await conn.execute(
        subscriptions.update().where(subscriptions.c.id == subscription_id, subscriptions.c.active)
        .values(active=False, deactivated_at=at).returning(subscriptions.c.id)
    )).first()
    if done is None:
        return False
    await conn.execute(
        deliveries.update()
        .where(deliveries.c.subscription_id == subscription_id, deliveries.c.status == DeliveryStatus.PENDING)
        .values(status=str(DeliveryStatus.FAILED), next_attempt_at=None, updated_at=at)
    )
    return True


async def active_subscriptions(conn: AsyncConnection) -> list[Subscription]:
    """Every active subscription (the caller applies the matching rule)."""
    rows = (await conn.execute(sa.select(subscriptions).where(subscriptions.c.active))).all()
    return [_to_subscription(r) for r in rows]


# Deliveries -----------------------------------------------------------------------------


async def add_deliveries(conn: AsyncConnection, rows: list[dict]) -> list[tuple[str, datetime]]:
    """Insert deliveries, skipping (event, subscription) pairs that exist; (id, due) of the new ones."""
    if not rows:
        return []
    result = await conn.execute(
        insert(deliveries).values(rows)
        .on_conflict_do_nothing(constraint="uq_deliveries_event_subscription")
        .returning(deliveries.c.id, deliveries.c.next_attempt_at)
    )
    return [(r.id, r.next_attempt_at) for r in result]


async def pending_deliveries(conn: AsyncConnection, *,
                             due_before: datetime | None = None) -> list[tuple[str, datetime]]:
    """(id, next attempt time) of pending deliveries, optionally only those due before a time."""
    stmt = sa.select(deliveries.c.id, deliveries.c.next_attempt_at).where(
        deliveries.c.status == DeliveryStatus.PENDING)
    if due_before is not None:
        stmt = stmt.where(deliveries.c.next_attempt_at <= due_before)
    return [(r.id, r.next_attempt_at) for r in (await conn.execute(stmt))]


@dataclass(frozen=True)
class Claim:
    """A delivery claimed for one attempt: what to send and where."""

    id: str
    subscription_id: str
    event_id: str
    event_type: str
    body: bytes
    attempt: int
    target: str
    secret: str


@dataclass(frozen=True)
class NotDue:
    next_attempt_at: datetime


async def claim_delivery(conn: AsyncConnection, delivery_id: str, *, now: datetime,
                         lease_until: datetime) -> Claim | NotDue | None:
    """Claim a due pending delivery for one attempt, or say when it is due; None if it is not ours to send.

    The row is locked with SKIP LOCKED (a concurrent claimer skips it) and its due time is moved
    to the end of a lease, so no other worker claims it while this attempt is in flight; if this
    worker dies, the delivery is retried when the lease runs out.
    """
    d, s = deliveries, subscriptions
    row = (await conn.execute(
        sa.select(d.c.id, d.c.subscription_id, d.c.event_id, d.c.event_type, d.c.body, d.c.attempts,
                  d.c.status, d.c.next_attempt_at, s.c.target, s.c.secret, s.c.active)
        .join(s, s.c.id == d.c.subscription_id)
        .where(d.c.id == delivery_id, d.c.status == DeliveryStatus.PENDING)
        .with_for_update(of=d, skip_locked=True)
    )).first()
    if row is None:
        return None
    if not row.active:
        await conn.execute(d.update().where(d.c.id == delivery_id)
                           .values(status=str(DeliveryStatus.FAILED), next_attempt_at=None, updated_at=now))
        return None
    if row.next_attempt_at > now:
        return NotDue(row.next_attempt_at)
    attempt = row.attempts + 1
    await conn.execute(d.update().where(d.c.id == delivery_id)
                       .values(attempts=attempt, next_attempt_at=lease_until, updated_at=now))
    return Claim(id=row.id, subscription_id=row.subscription_id, event_id=row.event_id, event_type=row.event_type,
                 body=row.body, attempt=attempt, target=row.target, secret=row.secret)


async def record_attempt(conn: AsyncConnection, *, delivery_id: str, number: int, attempted_at: datetime,
                         status_code: int | None, error: str | None, duration_ms: int) -> None:
    """Append one attempt to the delivery log."""
    await conn.execute(delivery_attempts.insert().values(
        delivery_id=delivery_id, number=number, attempted_at=attempted_at, status_code=status_code, error=error,
        duration_ms=duration_ms))


async def settle_delivery(conn: AsyncConnection, *, delivery_id: str, attempt: int, status: DeliveryStatus,
                          status_code: int | None, next_attempt_at: datetime | None,
                          delivered_at: datetime | None, now: datetime) -> bool:
    """Store an attempt's outcome if the claim still holds (the delivery is pending at that attempt)."""
    done = (await conn.execute(
        deliveries.update()
        .where(deliveries.c.id == delivery_id, deliveries.c.status == DeliveryStatus.PENDING,
               deliveries.c.attempts == attempt)
        .values(status=str(status), last_status_code=status_code, next_attempt_at=next_attempt_at,
                delivered_at=delivered_at, updated_at=now)
        .returning(deliveries.c.id)
    )).first()
    return done is not None


async def get_delivery(conn: AsyncConnection, delivery_id: str):
    """A delivery row without its body, or None."""
    return (await conn.execute(sa.select(*DELIVERY_FIELDS).where(deliveries.c.id == delivery_id))).first()


async def attempts_of(conn: AsyncConnection, delivery_id: str) -> list:
    """The delivery's attempts, first to last."""
    a = delivery_attempts
    return (await conn.execute(
        sa.select(a.c.number, a.c.attempted_at, a.c.status_code, a.c.error, a.c.duration_ms)
        .where(a.c.delivery_id == delivery_id).order_by(a.c.number)
    )).all()


async def list_deliveries(conn: AsyncConnection, *, subscription_id: str | None, event_id: str | None,
                          status: str | None, after_seq: int | None, limit: int) -> tuple[list, int | None]:
    """A page of deliveries in creation order, and the cursor value of the next page."""
    stmt = sa.select(*DELIVERY_FIELDS)
    if subscription_id:
        stmt = stmt.where(deliveries.c.subscription_id == subscription_id)
    if event_id:
        stmt = stmt.where(deliveries.c.event_id == event_id)
    if status:
        stmt = stmt.where(deliveries.c.status == status)
    return await keyset_page(conn, stmt, deliveries.c.created_seq, after=after_seq, limit=limit)
