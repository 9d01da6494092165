"""HTTP routes of notify-svc: parse, call one handler, shape the response."""


from fastapi import APIRouter, Response

from itsm_runtime.errors import NotFound, Problem
from itsm_runtime.pagination import CursorParam, LimitParam, cursor_after, seq_after
from itsm_runtime.service import IdempotencyKey, RuntimeDep

from .. import handlers
from ..db import repository
from ..domain.model import Subscription, UnsupportedChannel
from .schemas import (
    DeliveryAttemptRead, DeliveryDetailRead, DeliveryPage, DeliveryRead, DeliveryStatusName, SubscriptionCreate,
    SubscriptionPage, SubscriptionRead, SubscriptionSecretRead,
)

subscriptions = APIRouter(prefix="/v1/subscriptions", tags=["subscriptions"])
deliveries = APIRouter(prefix="/v1/deliveries", tags=["deliveries"])
routers = [subscriptions, deliveries]


def _read(subscription: Subscription) -> SubscriptionRead:
    return SubscriptionRead(id=subscription.id, channel=subscription.channel, target=subscription.target,
                            event_types=subscription.event_types, filter=subscription.filter,
                            created_at=subscription.created_at)


@subscriptions.post("", status_code=201, response_model=SubscriptionSecretRead)
async def create_subscription(subscription_in: SubscriptionCreate, runtime: RuntimeDep,
                              idempotency_key: IdempotencyKey = None):
    """Subscribe a webhook to event types; the response carries its signing secret, shown only this once."""

    async def create(uow):
        try:
            subscription = await handlers.create_subscription(uow, **subscription_in.model_dump())
        except UnsupportedChannel as exc:
            raise Problem(422, str(exc), channel=exc.channel) from exc
        return SubscriptionSecretRead(**_read(subscription).model_dump(), secret=subscription.secret)

    return await runtime.create_once(key=idempotency_key, scope="POST /v1/subscriptions", request=subscription_in,
                                     create=create)


@subscriptions.get("/{subscription_id}", response_model=SubscriptionRead)
async def get_subscription(subscription_id: str, runtime: RuntimeDep):
    """An active subscription; its secret is never shown again."""
    async with runtime.engine.connect() as conn:
        subscription = await repository.get_subscription(conn, subscription_id)
    if subscription is None:
        raise NotFound("subscription", subscription_id)
    return _read(subscription)


@subscriptions.get("", response_model=SubscriptionPage)
async def list_subscriptions(runtime: RuntimeDep, limit: LimitParam = 50, cursor: CursorParam = None):
    """Active subscriptions, oldest first."""
    async with runtime.engine.connect() as conn:
        items, last = await repository.list_subscriptions(conn, after_seq=seq_after(cursor), limit=limit)
    return SubscriptionPage(items=[_read(s) for s in items], next_cursor=cursor_after(last))


@subscriptions.delete("/{subscription_id}", status_code=204)
async def delete_subscription(subscription_id: str, runtime: RuntimeDep):
    """Deactivate a subscription: nothing more is sent to it and its pending deliveries fail."""
    async with runtime.uow() as uow:
        if not await handlers.deactivate_subscription(uow, subscription_id=subscription_id):
            raise NotFound("subscription", subscription_id)
        await uow.commit()
    return Response(status_code=204)


@deliveries.get("", response_model=DeliveryPage)
async def list_deliveries(runtime: RuntimeDep, subscription_id: str | None = None, event_id: str | None = None,
                          status: DeliveryStatusName | None = None, limit: LimitParam = 50,
                          cursor: CursorParam = None):
    """The delivery log, oldest first, filtered by subscription, event or status."""
    async with runtime.engine.connect() as conn:
        rows, last = await repository.list_deliveries(conn, subscription_id=subscription_id, event_id=event_id,
                                                      status=status, after_seq=seq_after(cursor), limit=limit)
    return DeliveryPage(items=[DeliveryRead.model_validate(r, from_attributes=True) for r in rows],
                        next_cursor=cursor_after(last))


@deliveries.get("/{delivery_id}", response_model=DeliveryDetailRead)
async def get_delivery(delivery_id: str, runtime: RuntimeDep):
    """One delivery with the log of its attempts."""
    async with runtime.engine.connect() as conn:
        row = await repository.get_delivery(conn, delivery_id)
        if row is None:
            raise NotFound("delivery", delivery_id)
        attempts = await repository.attempts_of(conn, delivery_id)
    return DeliveryDetailRead(
        **DeliveryRead.model_validate(row, from_attributes=True).model_dump(),
        attempt_log=[DeliveryAttemptRead.model_validate(a, from_attributes=True) for a in attempts])
