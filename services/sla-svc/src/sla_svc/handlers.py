"""Use cases of sla-svc: agreements, clocks driven by incident events, and durable timers."""

import logging
import uuid
from datetime import UTC, datetime, timedelta

from itsm_events import Envelope, UnitOfWork, schemas
from itsm_events.bus import is_transient
from itsm_runtime.scheduler import Scheduler

from .db import repository
from .domain.agreement import Agreement
from .domain.calendar import BUILT_IN, Calendar
from .domain.clock import Breached, Clock, Stage, Stopped, Warned, target_reached
from .reviews import BreachRef, record_breaches


log = logging.getLogger("sla_svc.timers")
RETRY_LOCKED = timedelta(milliseconds=200)
RETRY_FAILED = timedelta(seconds=1)


def calendar_of(clock_or_agreement) -> Calendar:
    return BUILT_IN[clock_or_agreement.calendar_id]


class ClockTimers:
    """Wakes each clock at its next warning or deadline; the due times themselves are in the database."""

    def __init__(self, uow_factory, *, concurrency: int = 8, batch_size: int = 500):
        self._uow_factory = uow_factory
        self.scheduler = Scheduler(self.fire, name="sla-clocks", concurrency=concurrency, batch_size=batch_size)

    async def start(self, conn) -> int:
        """Load every pending timer (those that fell due while we were down fire at once)."""
        due = await repository.due_clocks(conn)
        for clock_id, at in due:
            self.scheduler.schedule(clock_id, at)
        self.scheduler.start()
        return len(due)

    def track(self, clock: Clock) -> None:
        """Schedule (or drop) the clock's timer; call after the clock's state is committed."""
        due = clock.next_due(calendar_of(clock))
        if due is None:
            self.scheduler.cancel(clock.id)
        else:
            self.scheduler.schedule(clock.id, due)

    async def fire(self, clock_ids: list[str]) -> None:
        """Record the warnings and breaches now due on these clocks, in one transaction.

        Clocks an event handler holds locked are skipped and retried a moment later (so timers
        and handlers never deadlock); a batch that fails is retried clock by clock.
        """
        try:
            await self._fire_batch(clock_ids)
        except Exception as exc:
            if len(clock_ids) == 1 or is_transient(exc):
                raise  # the scheduler retries the whole batch a second later
            log.exception("a batch of %d clock timers failed; firing them one by one", len(clock_ids))
            for clock_id in clock_ids:
                try:
                    await self._fire_batch([clock_id])
                except Exception:
                    log.exception("clock timer %s failed; retrying in a second", clock_id)
                    self.scheduler.schedule(clock_id, datetime.now(UTC) + RETRY_FAILED)

    async def _fire_batch(self, clock_ids: list[str]) -> None:
        async with self._uow_factory() as uow:
            clocks = await repository.get_clocks(uow.conn, clock_ids, lock="skip_locked")
            now = datetime.now(UTC)
            breaches = []
            for clock in clocks:
                clock.fire(calendar_of(clock), now)
                breaches += publish(uow, clock)
            await record_breaches(uow, breaches)
            await repository.save_clocks(uow.conn, clocks)
            skipped = set(clock_ids) - {c.id for c in clocks}
            uow.after_commit(lambda: [self.track(c) for c in clocks])
            await uow.commit()
        for clock_id in skipped:  # locked by an event handler right now: look again shortly
            self.scheduler.schedule(clock_id, now + RETRY_LOCKED)


def publish(uow: UnitOfWork, clock: Clock) -> list[BreachRef]:
    """Map what happened to the clock to public events, each stamped with its own instant; return its breaches."""
    breaches = []
    ref = {"clock_id": clock.id, "agreement_id": clock.agreement_id, "incident_id": clock.incident_id,
           "service_id": clock.service_id, "customer_id": clock.customer_id, "metric": clock.metric,
           "priority": clock.priority, "deadline": clock.deadline}
    for event in clock.events:
        match event:
            case Warned(threshold=threshold, at=at):
                data = schemas.SlaWarning(**ref, threshold=threshold, warned_at=at)
            case Breached(at=at):
                data = schemas.SlaBreached(**ref, breached_at=at)
                breaches.append(BreachRef(agreement_id=clock.agreement_id, service_id=clock.service_id, kind="clock",
                                          ref_id=clock.id, incident_id=clock.incident_id, breached_at=at))
            case Stopped(met=met, at=at, elapsed_seconds=elapsed):
                data = schemas.ClockStopped(**ref, met=met, stopped_at=at, elapsed_seconds=elapsed)
            case _:
                raise TypeError(f"no public event for {event!r}")
        uow.emit(data, key=clock.incident_id, subject=clock.id, time=event.at)
    clock.events.clear()
    return breaches


async def create_agreement(uow: UnitOfWork, agreement: Agreement) -> Agreement:
    created_at = datetime.now(UTC)
    await repository.add_agreement(uow.conn, agreement, created_at=created_at)
    uow.emit(schemas.AgreementCreated(agreement_id=agreement.id, name=agreement.name,
                                      service_id=agreement.service_id, customer_id=agreement.customer_id),
             key=agreement.id, time=created_at)
    return agreement


class IncidentEventHandlers:
    """How incident events move clocks; consumer.py maps event types to these methods."""

    def __init__(self, timers: ClockTimers):
        self.timers = timers

    async def on_incident_opened(self, envelope: Envelope, data: schemas.IncidentOpened, uow: UnitOfWork) -> None:
        started: list[Clock] = []
        for agreement in await repository.agreements_for_service(uow.conn, data.service_id):
            if not agreement.covers(service_id=data.service_id, customer_id=data.customer_id):
                continue
            for target in agreement.targets_for(data.priority):
                clock = Clock.start(
                    id=str(uuid.uuid4()), agreement_id=agreement.id, incident_id=data.incident_id,
                    service_id=data.service_id, customer_id=data.customer_id, metric=target.metric,
                    priority=data.priority, target_seconds=target.within.total_seconds(),
                    thresholds=agreement.warning_thresholds, calendar=calendar_of(agreement),
                    at=data.opened_at.astimezone(UTC),
                )
                if await repository.add_clock(uow.conn, clock):
                    uow.emit(schemas.ClockStarted(
                        clock_id=clock.id, agreement_id=clock.agreement_id, incident_id=clock.incident_id,
                        service_id=clock.service_id, customer_id=clock.customer_id, metric=clock.metric,
                        priority=clock.priority, deadline=clock.deadline, started_at=clock.started_at,
                    ), key=clock.incident_id, subject=clock.id, time=clock.started_at)
                    started.append(clock)
        uow.after_commit(lambda: [self.timers.track(c) for c in started])

    async def on_status_changed(self, envelope: Envelope, data: schemas.IncidentStatusChanged,
                                uow: UnitOfWork) -> None:
        at = data.changed_at.astimezone(UTC)
        changed: list[Clock] = []
        agreements: dict[str, Agreement | None] = {}
        for clock in await repository.clocks_of_incident(uow.conn, data.incident_id, for_update=True):
            if clock.stage in (Stage.COMPLETED, Stage.CANCELLED):
                continue
            if clock.agreement_id not in agreements:
                agreements[clock.agreement_id] = await repository.get_agreement(uow.conn, clock.agreement_id)
            pause_on = agreements[clock.agreement_id].pause_on
            calendar = calendar_of(clock)
            if target_reached(clock.metric, from_status=data.from_status, to_status=data.to_status):
                clock.stop(calendar, at)
            elif data.to_status in pause_on:
                clock.pause(calendar, at)
            elif data.from_status in pause_on:
                clock.resume(calendar, at)
            else:
                continue
            await repository.save_clock(uow.conn, clock)
            await record_breaches(uow, publish(uow, clock))
            changed.append(clock)
        uow.after_commit(lambda: [self.timers.track(c) for c in changed])

