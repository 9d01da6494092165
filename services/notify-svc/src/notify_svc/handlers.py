"""Use cases of notify-svc: manage subscriptions, and turn consumed events into pending deliveries."""

import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime

from pydantic import BaseModel

from itsm_events import Envelope, UnitOfWork, to_structured

from .db import repository
from .domain.model import DeliveryStatus, Subscription

Enqueue = Callable[[list[tuple[str, datetime]]], None]


async def create_subscription(uow: UnitOfWork, *, channel: str, target: str, event_types: list[str],
                              filter: Mapping[str, str | None] | None = None) -> Subscription:
    """Store a new subscription with a fresh signing secret."""
    subscription = Subscription.create(id=str(uuid.uuid4()), channel=channel, target=target,
                                       event_types=event_types, filter=filter, created_at=datetime.now(UTC))
    await repository.add_subscription(uow.conn, subscription)
    return subscription


async def deactivate_subscription(uow: UnitOfWork, *, subscription_id: str) -> bool:
    """Stop a subscription; its pending deliveries fail. False if no such active subscription."""
    return await repository.deactivate_subscription(uow.conn, subscription_id, at=datetime.now(UTC))


class EventFanOut:
    """Turns every consumed event into one pending delivery per subscription that wants it."""

    def __init__(self, enqueue: Enqueue):
        self._enqueue = enqueue

    async def on_any_event(self, envelope: Envelope, data: BaseModel | None, uow: UnitOfWork) -> None:
        """Insert the deliveries (at most one per event and subscription); hand them to the worker after commit."""
        # Loaded once per transaction: a consumer handles a whole partition batch in one.
        if "active_subscriptions" not in uow.memo:
            uow.memo["active_subscriptions"] = await repository.active_subscriptions(uow.conn)
        wanted = [s for s in uow.memo["active_subscriptions"] if s.wants(envelope.type, envelope.data)]
        if not wanted:
            return
        now = datetime.now(UTC)
        body = to_structured(envelope)
        rows = [{"id": str(uuid.uuid4()), "subscription_id": s.id, "event_id": envelope.id,
                 "event_type": envelope.type, "body": body, "status": str(DeliveryStatus.PENDING), "attempts": 0,
                 "next_attempt_at": now, "created_at": now, "updated_at": now}
                for s in wanted]
        created = await repository.add_deliveries(uow.conn, rows)
        if created:
            uow.after_commit(lambda: self._enqueue(created))
