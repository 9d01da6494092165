"""Use cases of sla-svc: agreements, and clocks folded from incident events and moved on by durable timers.

Every incident event is stored as a fact, then the incident's clocks are folded again from all of
its facts (domain/fold.py), so late, repeated and out-of-order events give the same clocks. A timer
moves a clock's saved state on to now, which is the same as folding again (proved in test_fold.py).
"""

import dataclasses
import hashlib
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from itsm_events import Envelope, EventRows, UnitOfWork, schemas
from itsm_runtime.scheduler import Scheduler

from .calendars import CalendarStore
from .db import repository
from .domain.agreement import Agreement
from .domain.clock import Clock
from .domain.fold import ClockSpec, Entry, Fact, advance, ever_targeted, fold_sorted, from_opening, sort_facts
from .reviews import BreachRef, record_breaches

RETRY_LOCKED = timedelta(milliseconds=200)
PREPARE_AHEAD = timedelta(seconds=10)  # a clock's next warning or breach is computed this long before it
SAME_INSTANT = timedelta(milliseconds=1)  # a schedule (float seconds) naming a clock's next instant
PUBLISHED_FIRST = 1.0  # seconds a timer waits at most for the events written ahead to go out before recording
CLOCK_IDS = uuid.UUID("5b1a0c3e-7d4f-4c7e-9a59-2f0e6b1c8d21")  # namespace: a replay gives every clock its id
_CLOCK_IDS_HASHED = hashlib.sha1(CLOCK_IDS.bytes, usedforsecurity=False)


def clock_id(agreement_id: str, incident_id: str, spec: ClockSpec) -> str:
    """`str(uuid.uuid5(CLOCK_IDS, name))`, written from the SHA-1 digest: a third of the time uuid5 takes
    (3.4 µs), which a rebuild spends on every clock."""
    name = f"{agreement_id}/{incident_id}/{spec.metric}"
    digest = _CLOCK_IDS_HASHED.copy()
    digest.update((f"{name}/{spec.objective_id}" if spec.objective_id else name).encode())
    x = digest.hexdigest()  # version 5 in the 13th digit, the RFC 4122 variant in the top bits of the 17th
    return f"{x[:8]}-{x[8:12]}-5{x[13:16]}-{_VARIANT[int(x[16], 16) & 3]}{x[17:20]}-{x[20:32]}"


_VARIANT = "89ab"


def fact_of(event_id: str, data: schemas.EventData) -> tuple[str, Fact]:
    """(incident id, fact) for an incident event the clocks follow. (Facts made by position: a rebuild makes one
    per event, and keywords take 0.47 instead of 0.28 µs, measured.)"""
    match data:
        case schemas.IncidentStatusChanged():  # the most common first
            return data.incident_id, Fact(event_id, "status", data.changed_at.astimezone(UTC), None, data.to_status,
                                          data.from_status)
        case schemas.IncidentOpened():
            return data.incident_id, Fact(event_id, "opened", data.opened_at.astimezone(UTC), data.priority,
                                          data.status, None, data.service_id, data.customer_id)
        case schemas.IncidentPriorityChanged():
            return data.incident_id, Fact(event_id, "priority", data.changed_at.astimezone(UTC), data.to_priority)
    raise TypeError(f"clocks do not follow {type(data).__name__}")


def opening_of(facts: list[Fact]) -> Fact | None:
    """The incident's opening (the earliest, should it come twice under different ids)."""
    return min((f for f in facts if f.kind == "opened"), key=lambda f: f.order, default=None)


class Clocks:
    """Folds an incident's clocks when its events arrive, and wakes each clock at its next warning or deadline."""

    def __init__(self, uow_factory, calendars: CalendarStore, *, concurrency: int = 8, batch_size: int = 500,
                 changed: Callable[[list[Clock]], None] | None = None,
                 published_through: Callable[[datetime, float], Awaitable[bool]] | None = None):
        self._uow_factory = uow_factory
        self.calendars = calendars
        # waits until the events written ahead for an instant are out (the outbox relay's): then firing records them
        self._published_through = published_through
        self._changed = changed or (lambda clocks: None)  # told of the clocks just committed
        self._prepared: dict[str, _Prepared] = {}  # clock id -> moved on to its next instant ahead of it
        self.scheduler = Scheduler(self.fire, name="sla-clocks", concurrency=concurrency, batch_size=batch_size,
                                   prepare=self.prepare, lead=PREPARE_AHEAD)

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
            self._prepared.pop(clock.id, None)
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
        now = max(now, datetime.now(UTC))  # the locks may have been waited for: what is due by now is sent
        sent = await uow.withdraw([c.id for c in known], now) if known else {}
        agreements = await repository.agreements_for_service(uow.conn, opened.service_id)
        clocks = await self.fold(uow.conn, incident_id, facts, agreements, known, now)
        breaches = [b for clock in clocks for b in publish(uow, clock, now, sent.get(clock.id, {}))]
        await repository.upsert_clocks(uow.conn, clocks)
        await repository.recheck_from(uow.conn, clocks)
        await record_breaches(uow, breaches)
        return clocks

    async def fold(self, conn, incident_id: str, facts: list[Fact], agreements: list[Agreement],
                   known: list[Clock], now: datetime) -> list[Clock]:
        """The incident's clocks under each agreement covering it, folded from its facts as of `now`."""
        facts = sort_facts(facts)
        folded = from_opening(facts)
        opened = folded[0]
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
                state = fold_sorted(spec, await self.calendars.get(conn, agreement.calendar_id, version),
                                    folded, now)
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

    async def prepare(self, due: list[tuple[str, datetime]]) -> None:
        """Move clocks on to their next instant ahead of it, and write the events due then ahead of it too: the
        relay publishes them at the instant, unless a change to the clock withdraws them first (`recompute`).

        Reading, folding and writing events cost far more than saving a clock; done ahead, the events of 10,000
        clocks due in the same second go out within it, and firing saves the states moved on here, if their rows
        are unchanged. Clocks an event handler holds locked are left to firing."""
        async with self._uow_factory() as uow:
            instants = dict(due)
            locked = await repository.lock_clocks(uow.conn, list(instants))
            sent = await uow.withdraw(list(locked), datetime.now(UTC))  # e.g. by a replica, or before a restart
            # a replica's schedule may be stale (another changed the clock): only the row's own next instant
            clocks = [c for c in await repository.get_clocks(uow.conn, list(locked))
                      if c.state.next_due is not None and abs(c.state.next_due - instants[c.id]) < SAME_INSTANT]
            specs = await self._specs(uow.conn, clocks)
            prepared = []
            for clock in clocks:
                at = clock.state.next_due
                events = EventRows(uow.source, ahead_of=at, timer=clock.id)
                breaches = await self._move_on(uow.conn, clock, specs, at, events, sent.get(clock.id, {}))
                uow.add(events)
                prepared.append(_Prepared(clock=clock, at=at, breaches=breaches,
                                          saved=repository.saved_columns(clock), wrote=bool(events.rows)))
            uow.after_commit(lambda: self._prepared.update((p.clock.id, p) for p in prepared))
            await uow.commit()

    async def fire(self, clock_ids: list[str]) -> None:
        """Record the warnings and breaches now due on these clocks, in one transaction.

        A clock prepared ahead, its row unchanged since, has its events out or going out at the instant: its
        state moved on then is saved (and moved on further if more fell due since). Any other clock has what was
        written ahead for it and not yet due withdrawn, and is moved on from its row.
        Recording waits for the relay to publish those events first (a second at most), so that at a busy
        instant the events go out before the database is busy recording them.
        Clocks an event handler holds locked are skipped and retried a moment later (so timers and
        handlers never deadlock); the scheduler fires the clocks of a failed batch one by one.
        """
        written_ahead = [p.at for clock_id in clock_ids if (p := self._prepared.get(clock_id)) and p.wrote]
        if written_ahead and self._published_through is not None:
            await self._published_through(max(written_ahead), PUBLISHED_FIRST)
        async with self._uow_factory() as uow:
            versions = await repository.lock_clocks(uow.conn, clock_ids)
            now = datetime.now(UTC)
            ready = [p for clock_id, version in versions.items()
                     if (p := self._prepared.pop(clock_id, None)) is not None and p.still(version, now)]
            unprepared = sorted(set(versions) - {p.clock.id for p in ready})
            stale = await repository.get_clocks(uow.conn, unprepared) if unprepared else []
            behind = [p.clock for p in ready if p.clock.state.next_due is not None and p.clock.state.next_due <= now]
            moving = stale + behind  # moved on to now here
            sent = await uow.withdraw([c.id for c in moving], now) if moving else {}
            specs = await self._specs(uow.conn, moving)
            breaches = [b for p in ready for b in p.breaches]
            for clock in moving:
                breaches += await self._move_on(uow.conn, clock, specs, now, uow, sent.get(clock.id, {}))
            moved = {c.id for c in moving}
            await repository.save_clocks(uow.conn, [repository.saved_columns(c) for c in moving]
                                         + [p.saved for p in ready if p.clock.id not in moved])
            clocks = stale + [p.clock for p in ready]
            await repository.recheck_from(uow.conn, clocks)
            # last: opening a review makes concurrent batches wait for this commit
            await record_breaches(uow, breaches)
            uow.after_commit(lambda: self.track(clocks))
            await uow.commit()
        for clock_id in set(clock_ids) - set(versions):  # locked by an event handler right now: look again shortly
            self.scheduler.schedule(clock_id, now + RETRY_LOCKED)

    async def as_of(self, conn, clocks: list[Clock], now: datetime) -> None:
        """Move clocks read for display on to `now`, in memory: what their timers record a moment later."""
        overdue = [c for c in clocks if c.state.next_due is not None and c.state.next_due <= now]
        specs = await self._specs(conn, overdue)
        for clock in overdue:
            if (clock.agreement_id, clock.metric, clock.objective_id) in specs:
                await self._advance(conn, clock, specs, now)

    async def _specs(self, conn, clocks: list[Clock]) -> dict[tuple, ClockSpec]:
        if not clocks:  # every clock of a batch prepared: no query
            return {}
        agreements = await repository.get_agreements(conn, {c.agreement_id for c in clocks})
        return {(a.id, s.metric, s.objective_id): s for a in agreements.values() for s in a.clock_specs}

    async def _move_on(self, conn, clock: Clock, specs: dict[tuple, ClockSpec], now: datetime,
                       outbox: UnitOfWork | EventRows, sent: Mapping[str, datetime]) -> list[BreachRef]:
        """Move a saved clock on to `now` and publish what fell due (but `sent`); return its new breaches."""
        await self._advance(conn, clock, specs, now)
        return publish(outbox, clock, now, sent)

    async def _advance(self, conn, clock: Clock, specs: dict[tuple, ClockSpec], now: datetime) -> None:
        calendar = await self.calendars.get(conn, clock.calendar_id, clock.calendar_version)
        advance(specs[clock.agreement_id, clock.metric, clock.objective_id], calendar, clock.state, now)


@dataclass(frozen=True)
class _Prepared:
    """A clock moved on to `at` ahead of time, its events written ahead for `at`, and what firing it saves."""

    clock: Clock
    at: datetime
    breaches: list[BreachRef]
    saved: tuple  # repository.saved_columns
    wrote: bool  # events were written ahead

    def still(self, row_version: str, now: datetime) -> bool:
        """Whether firing now goes on from it: its row is unchanged (so its events were not withdrawn), and its
        instant has come."""
        return row_version == self.clock.row_version and self.at <= now


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


def publish(outbox: UnitOfWork | EventRows, clock: Clock, now: datetime,
            sent: Mapping[str, datetime]) -> list[BreachRef]:
    """Publish each timeline entry due by `now` once, stamped with its own instant; return the new breaches.

    `sent`: key -> instant of the entries whose events were written ahead and can no longer be withdrawn
    (`withdraw`): they are recorded as published, not published again; also when the timeline no longer has
    them (a late event stopped the clock before its deadline, after the breach went out: as when a breach was
    recorded before such an event, the review keeps it). A ratio objective's ticket clock publishes nothing:
    its objective is breached or not as a whole."""
    breaches = []
    for entry in clock.state.timeline:
        if entry.key in clock.published or entry.at > now:
            continue
        clock.published.add(entry.key)
        if clock.objective_id is not None:
            continue
        if entry.kind == "breached":
            breaches.append(_breach_ref(clock, entry.at))
        data = _event_of(clock, entry) if entry.key not in sent else None
        if data is not None:
            outbox.emit(data, key=clock.incident_id, subject=clock.id, time=entry.at, mark=entry.key)
    for key, at in sent.items():  # out at their instant, whatever the timeline says now
        if key not in clock.published:
            clock.published.add(key)
            if key == "breached" and clock.objective_id is None:
                breaches.append(_breach_ref(clock, at))
    return breaches


def _breach_ref(clock: Clock, at: datetime) -> BreachRef:
    return BreachRef(agreement_id=clock.agreement_id, service_id=clock.service_id, kind="clock", ref_id=clock.id,
                     incident_id=clock.incident_id, breached_at=at)


async def create_agreement(uow: UnitOfWork, agreement: Agreement) -> Agreement:
    created_at = datetime.now(UTC)
    agreement = dataclasses.replace(agreement, effective_from=agreement.effective_from or created_at,
                                    extra={**agreement.extra, "created_at": created_at})
    await repository.add_agreement(uow.conn, agreement, created_at=created_at)
    uow.emit(schemas.AgreementCreated(agreement_id=agreement.id, name=agreement.name,
                                      service_id=agreement.service_id, customer_id=agreement.customer_id),
             key=agreement.id, time=created_at)
    return agreement
