"""The webhook delivery worker: signed POSTs, retries with backoff, a durable due time per delivery.

Due times live in the deliveries table; the in-memory scheduler only fires them. On start it
loads every pending delivery, and a periodic sweep picks up any a crashed replica left behind.
"""

import asyncio
import logging
import time
from collections.abc import Hashable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import httpx
from standardwebhooks import Webhook

from itsm_events import UnitOfWork, schemas
from itsm_events.envelope import STRUCTURED_CONTENT_TYPE
from itsm_runtime.scheduler import Scheduler
from itsm_runtime.service import ServiceRuntime

from .db import repository
from .domain.model import DeliveryStatus, RetryPolicy, parse_retry_after
from .settings import Settings

log = logging.getLogger("notify.delivery")
USER_AGENT = "itsm-notify-svc/0.1"


@dataclass(frozen=True)
class Response:
    """What one attempt got back: a status code, or an error when there was no response."""

    status_code: int | None
    retry_after: str | None = None
    error: str | None = None


class DeliveryWorker:
    """Sends pending deliveries when due; started and stopped by the service runtime's hooks."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self.policy = RetryPolicy(base_seconds=settings.retry_base_seconds, max_seconds=settings.retry_max_seconds,
                                  max_attempts=settings.max_attempts,
                                  retry_after_max_seconds=settings.retry_after_max_seconds)
        # Created up front so that deliveries handed over before start() are kept, not lost.
        self.scheduler = Scheduler(self._attempt_each, name="notify-deliveries",
                                   concurrency=settings.delivery_concurrency)
        self._runtime: ServiceRuntime | None = None
        self._client: httpx.AsyncClient | None = None
        self._sweeper: asyncio.Task | None = None

    def enqueue(self, due: list[tuple[str, datetime]]) -> None:
        """Schedule deliveries at their due times (called after the commit that created them)."""
        for delivery_id, when in due:
            self.scheduler.schedule(delivery_id, when)

    async def start(self, runtime: ServiceRuntime) -> None:
        self._runtime = runtime
        self._client = httpx.AsyncClient(timeout=self.settings.delivery_timeout_seconds, follow_redirects=False,
                                         headers={"user-agent": USER_AGENT})
        async with runtime.engine.connect() as conn:
            self.enqueue(await repository.pending_deliveries(conn))
        self.scheduler.start()
        self._sweeper = asyncio.create_task(self._sweep(), name="notify-delivery-sweep")

    async def stop(self, runtime: ServiceRuntime) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
            await asyncio.gather(self._sweeper, return_exceptions=True)
        await self.scheduler.stop()
        if self._client is not None:
            await self._client.aclose()

    async def _sweep(self) -> None:
        interval = self.settings.sweep_seconds
        while True:
            await asyncio.sleep(interval)
            try:
                due_before = datetime.now(UTC) + timedelta(seconds=interval)
                async with self._runtime.engine.connect() as conn:
                    self.enqueue(await repository.pending_deliveries(conn, due_before=due_before))
            except Exception:
                log.exception("delivery sweep failed; trying again in %ss", interval)

    def _uow(self) -> UnitOfWork:
        return self._runtime.uow()

    @property
    def _lease(self) -> timedelta:
        return timedelta(seconds=2 * self.settings.delivery_timeout_seconds + 10)

    async def _attempt_each(self, delivery_ids: list[Hashable]) -> None:
        for delivery_id in delivery_ids:
            await self.attempt(delivery_id)

    async def attempt(self, delivery_id: Hashable) -> None:
        """One attempt: claim the delivery, POST it, store the outcome and schedule the next try."""
        now = datetime.now(UTC)
        async with self._uow() as uow:
            claim = await repository.claim_delivery(uow.conn, str(delivery_id), now=now,
                                                    lease_until=now + self._lease)
            await uow.commit()
        if claim is None:
            return
        if isinstance(claim, repository.NotDue):
            self.scheduler.schedule(delivery_id, claim.next_attempt_at)
            return
        started = time.perf_counter()
        attempted_at = datetime.now(UTC)
        response = await self.post(claim)
        duration_ms = round((time.perf_counter() - started) * 1000)
        now = datetime.now(UTC)
        decision = self.policy.decide(status_code=response.status_code, attempts=claim.attempt, now=now,
                                      retry_after=parse_retry_after(response.retry_after, now=now))
        async with self._uow() as uow:
            await repository.record_attempt(uow.conn, delivery_id=claim.id, number=claim.attempt,
                                            attempted_at=attempted_at, status_code=response.status_code,
                                            error=response.error, duration_ms=duration_ms)
            settled = await repository.settle_delivery(
                uow.conn, delivery_id=claim.id, attempt=claim.attempt, status=decision.status,
                status_code=response.status_code, next_attempt_at=decision.next_attempt_at,
                delivered_at=decision.delivered_at, now=now)
            if settled and decision.status is DeliveryStatus.DEAD:
                uow.emit(schemas.DeliveryDead(delivery_id=claim.id, subscription_id=claim.subscription_id,
                                              event_id=claim.event_id, event_type=claim.event_type,
                                              attempts=claim.attempt, last_status_code=response.status_code),
                         key=claim.id, time=now)
            await uow.commit()
        log.info("delivery %s attempt %d to %s: %s -> %s", claim.id, claim.attempt, claim.target,
                 response.status_code or response.error, decision.status)
        if settled and decision.next_attempt_at is not None:
            self.scheduler.schedule(claim.id, decision.next_attempt_at)

    async def post(self, claim: repository.Claim) -> Response:
        """POST the structured CloudEvent with Standard Webhooks headers; never raises for network trouble."""
        assert self._client is not None, "delivery worker not started"
        timestamp = datetime.now(UTC).replace(microsecond=0)
        headers = {
            "content-type": STRUCTURED_CONTENT_TYPE,
            "webhook-id": claim.id,
            "webhook-timestamp": str(int(timestamp.timestamp())),
            "webhook-signature": Webhook(claim.secret).sign(claim.id, timestamp, claim.body.decode("utf-8")),
        }
        request = self._client.build_request("POST", claim.target, content=claim.body, headers=headers)
        try:
            # httpx's timeout bounds each phase; this bounds the whole exchange.
            async with asyncio.timeout(self.settings.delivery_timeout_seconds):
                response = await self._client.send(request, stream=True)
                await response.aclose()  # only the status matters; never read a receiver's body
        except (httpx.HTTPError, OSError, TimeoutError) as exc:
            timed_out = isinstance(exc, (TimeoutError, httpx.TimeoutException))
            return Response(status_code=None, error="timeout" if timed_out else f"{type(exc).__name__}: {exc}"[:1000])
        return Response(status_code=response.status_code, retry_after=response.headers.get("retry-after"))
