"""Use cases of sla-svc: agreements, and clocks folded from incident events and moved on by durable timers.

Every incident event is stored as a fact, then the incident's clocks are folded again from all of
its facts (domain/fold.py), so late, repeated and out-of-order events give the same clocks. A timer
moves a clock's saved state on to now, which is the same as folding again (proved in test_fold.py).
"""

import dataclasses
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from itsm_events import Envelope, UnitOfWork, schemas
from itsm_runtime.scheduler import Scheduler

from .calendars import CalendarStore
from .db import repository
from .domain.agreement import Agreement
from .domain.clock import Clock
from .domain.fold import ClockSpec, Entry, Fact, advance, ever_targeted, fold, sort_facts
from .reviews import BreachRef, record_breaches

RETRY_LOCKED = timedelta(milliseconds=200)
CLOCK_IDS = uuid.UUID("5b1a0c3e-7d4f-4c7e-9a59-2f0e6b1c8d21")  # namespace: a replay gives every clock its id


def clock_id(agreement_id: str, incident_id: str, spec: ClockSpec) -> str:
    name = f"{agreement_id}/{incident_id}/{spec.metric}"
    return str(uuid.uuid5(CLOCK_IDS, f"{name}/{spec.objective_id}" if spec.objective_id else name))


def fact_of(event_id: str, data: schemas.EventData) -> tuple[str, Fact]:
    """(incident id, fact) for an incident event the clocks follow."""
    match data:
        case schemas.IncidentOpened():
            return data.incident_id, Fact(
                event_id=event_id, kind="opened", at=data.opened_at.astimezone(UTC), priority=data.priority,
                status=data.status, service_id=data.service_id, customer_id=data.customer_id)
        case schemas.IncidentStatusChanged():
            return data.incident_id, Fact(event_id=event_id, kind="status", at=data.changed_at.astimezone(UTC),
                                          status=data.to_status, from_status=data.from_status)
        case schemas.IncidentPriorityChanged():
            return data.incident_id, Fact(event_id=event_id, kind="priority",
                                          at=data.changed_at.astimezone(UTC), priority=data.to_priority)
    raise TypeError(f"clocks do not follow {type(data).__name__}")


def opening_of(facts: list[Fact]) -> Fact | None:
    """The incident's opening (the earliest, should it come twice under different ids)."""
    return min((f for f in facts if f.kind == "opened"), key=lambda f: f.order, default=None)


class Clocks:
    """Folds an incident's clocks when its events arrive, and wakes each clock at its next warning or deadline."""

    def __init__(self, uow_factory, calendars: CalendarStore, *, concurrency: int = 8, batch_size: int = 500,
                 changed: Callable[[list[Clock]], None] | None = None):
        self._uow_factory = uow_factory
        self.calendars = calendars
        self._changed = changed or (lambda clocks: None)  # told of the clocks just committed
        self.scheduler = Scheduler(self.fire, name="sla-clocks", concurrency=concurrency, batch_size=batch_size)

    async def start(self, conn) -> int:
        """Load every pending timer (those that fell due while we were down fire at once)."""
        due = await repository.due_clocks(conn)
        for id_, at in due:
            self.scheduler.schedule(id_, at)
        self.scheduler.start()
        return len(due)

    def track(self, clocks: list[Clock]) -> None:
        """Schedule (or drop) each clock's timer; call after its state is committed."""
        if clocks:
            self._changed(clocks)
        for clock in clocks:
            if clock.state.next_due is None:
                self.scheduler.cancel(clock.id)
            else:
                self.scheduler.schedule(clock.id, clock.state.next_due)

    # incident events ---------------------------------------------------------------------

    async def on_incident_event(self, envelope: Envelope, data: schemas.EventData, uow: UnitOfWork) -> None:
        incident_id, fact = fact_of(envelope.id, data)
        await repository.lock_incident(uow.conn, incident_id)
        if await repository.add_fact(uow.conn, incident_id, fact):
            changed = await self.recompute(uow, incident_id, datetime.now(UTC))
            uow.after_commit(lambda: self.track(changed))

    async def adopt(self, uow: UnitOfWork, agreement: Agreement) -> None:
        """Fold the clocks of the incidents opened on the agreement's service since its `effective_from`, when
        that is in the past: what a replay of the events gives."""
        now, changed = datetime.now(UTC), []
        for incident_id in await repository.incidents_opened(uow.conn, agreement.service_id,
                                                             since=agreement.effective_from):
            await repository.lock_incident(uow.conn, incident_id)
            changed += await self.recompute(uow, incident_id, now)
        uow.after_commit(lambda: self.track(changed))

    async def recompute(self, uow: UnitOfWork, incident_id: str, now: datetime) -> list[Clock]:
        """Fold every clock of the incident again from its facts; publish what is new; return the clocks."""
        facts = await repository.facts_of(uow.conn, incident_id)
        opened = opening_of(facts)
        if opened is None:  # its other events came first: the clocks start when the opening arrives
            return []
        known = await repository.clocks_of_incident(uow.conn, incident_id, for_update=True)
        agreements = await repository.agreements_for_service(uow.conn, opened.service_id)
        clocks = await self.fold(uow.conn, incident_id, facts, agreements, known, now)
        breaches = [b for clock in clocks for b in publish(uow, clock, now)]
        await repository.upsert_clocks(uow.conn, clocks)
        await record_breaches(uow, breaches)
        return clocks

    async def fold(self, conn, incident_id: str, facts: list[Fact], agreements: list[Agreement],
                   known: list[Clock], now: datetime) -> list[Clock]:
        """The incident's clocks under each agreement covering it, folded from its facts as of `now`."""
        facts = sort_facts(facts)
        opened = opening_of(facts)
        by_target = {(c.agreement_id, c.metric, c.objective_id): c for c in known}
        clocks = []
        for agreement in agreements:
            if not agreement.covers(service_id=opened.service_id, customer_id=opened.customer_id,
                                    opened_at=opened.at):
                continue
            for spec in agreement.clock_specs:
                clock = by_target.get((agreement.id, spec.metric, spec.objective_id))
                if clock is None and not ever_targeted(spec, facts):
                    continue
                version = clock.calendar_version if clock else await self.calendars.version_at(
                    conn, agreement.calendar_id, opened.at)
                state = fold(spec, await self.calendars.get(conn, agreement.calendar_id, version), facts, now)
                if clock is None:
                    clock = Clock(id=clock_id(agreement.id, incident_id, spec), agreement_id=agreement.id,
                                  incident_id=incident_id, service_id=opened.service_id,
                                  customer_id=opened.customer_id, metric=spec.metric,
                                  objective_id=spec.objective_id, calendar_id=agreement.calendar_id,
                                  calendar_version=version, state=state)
                clock.state = state
                clocks.append(clock)
        return clocks

    # timers ------------------------------------------------------------------------------

    async def fire(self, clock_ids: list[str]) -> None:
        """Record the warnings and breaches now due on these clocks, in one transaction.

        Clocks an event handler holds locked are skipped and retried a moment later (so timers and
        handlers never deadlock); the scheduler fires the clocks of a failed batch one by one.
        """
        async with self._uow_factory() as uow:
            clocks = await repository.get_clocks(uow.conn, clock_ids, lock="skip_locked")
            now = datetime.now(UTC)
            await self.advance(uow, clocks, now)
            skipped = set(clock_ids) - {c.id for c in clocks}
            uow.after_commit(lambda: self.track(clocks))
            await uow.commit()
        for id_ in skipped:  # locked by an event handler right now: look again shortly
            self.scheduler.schedule(id_, now + RETRY_LOCKED)

    async def advance(self, uow: UnitOfWork, clocks: list[Clock], now: datetime) -> None:
        """Move saved clocks on to `now`, publish what fell due, and save them."""
        agreements = await repository.get_agreements(uow.conn, {c.agreement_id for c in clocks})
        specs = {(a.id, s.metric, s.objective_id): s for a in agreements.values() for s in a.clock_specs}
        breaches = []
        for clock in clocks:
            calendar = await self.calendars.get(uow.conn, clock.calendar_id, clock.calendar_version)
            advance(specs[clock.agreement_id, clock.metric, clock.objective_id], calendar, clock.state, now)
            breaches += publish(uow, clock, now)
        await record_breaches(uow, breaches)
        await repository.save_clocks(uow.conn, clocks)


def _event_of(clock: Clock, entry: Entry) -> schemas.EventData | None:
    """The public event for a timeline entry; pauses and resumptions are on the timeline only."""
    ref = {"clock_id": clock.id, "agreement_id": clock.agreement_id, "incident_id": clock.incident_id,
           "service_id": clock.service_id, "customer_id": clock.customer_id, "metric": clock.metric,
           "priority": entry.details.get("priority", clock.priority),
           "deadline": clock.deadline or clock.started_at}
    details = entry.details
    match entry.kind:
        case "started":
            return schemas.ClockStarted(**ref, started_at=entry.at)
        case "warning":
            return schemas.SlaWarning(**ref, threshold=details["threshold"], warned_at=entry.at)
        case "breached":
            return schemas.SlaBreached(**ref, breached_at=entry.at)
        case "stopped":
            return schemas.ClockStopped(**ref, met=details["met"], stopped_at=entry.at,
                                        elapsed_seconds=details["elapsed_seconds"])
        case "retargeted" if details["target_seconds"] is not None:
            return schemas.ClockRetargeted(**{**ref, "priority": details["to_priority"]},
                                           from_priority=details["from_priority"],
                                           target_seconds=details["target_seconds"], retargeted_at=entry.at)
    return None


def publish(uow: UnitOfWork, clock: Clock, now: datetime) -> list[BreachRef]:
    """Publish each timeline entry due by `now` once, stamped with its own instant; return the new breaches.

    A ratio objective's ticket clock publishes nothing: its objective is breached or not as a whole."""
    breaches = []
    for entry in clock.state.timeline:
        if entry.key in clock.published or entry.at > now:
            continue
        clock.published.add(entry.key)
        if clock.objective_id is not None:
            continue
        if entry.kind == "breached":
            breaches.append(BreachRef(agreement_id=clock.agreement_id, service_id=clock.service_id, kind="clock",
                                      ref_id=clock.id, incident_id=clock.incident_id, breached_at=entry.at))
        data = _event_of(clock, entry)
        if data is not None:
            uow.emit(data, key=clock.incident_id, subject=clock.id, time=entry.at)
    return breaches


async def create_agreement(uow: UnitOfWork, agreement: Agreement) -> Agreement:
    created_at = datetime.now(UTC)
    agreement = dataclasses.replace(agreement, effective_from=agreement.effective_from or created_at,
                                    extra={**agreement.extra, "created_at": created_at})
    await repository.add_agreement(uow.conn, agreement, created_at=created_at)
    uow.emit(schemas.AgreementCreated(agreement_id=agreement.id, name=agreement.name,
                                      service_id=agreement.service_id, customer_id=agreement.customer_id),
             key=agreement.id, time=created_at)
    return agreement
