"""Live compliance: each agreement's state of every target and objective, kept in the `compliance` table.

It is refreshed when something under it changes (its clocks, its objectives' checks, a new
agreement), a moment later so that a burst of changes costs one refresh, and at the next instant
an objective can change on its own (a budget running out, a window ending); while a service is
down or degraded, every 30 seconds so that its uptime and budget stay current. A request reads
the stored state, and a stream (Server-Sent Events) sends each new version of it.

Each version is numbered: the stream polls the number every few seconds too, so a client
connected to one replica sees refreshes made by another.
"""

import asyncio
import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB, insert

from itsm_events import UnitOfWork
from itsm_runtime.scheduler import Scheduler

from . import objectives
from .api.schemas import BurnAlertRead, ComplianceRead, ObjectiveCompliance, TargetCompliance
from .calendars import CalendarStore
from .db import repository
from .db.tables import compliance
from .domain.agreement import Agreement, Objective
from .domain.objectives import AvailabilityResult, parse_window, window_at
from .domain.ratio import RatioResult

log = logging.getLogger("sla_svc.compliance")
SETTLE = timedelta(seconds=1)
WHILE_DOWN = timedelta(seconds=30)
WHILE_UP = timedelta(seconds=60)  # uptime and budget move with time even without an event
POLL_SECONDS = 3.0


def _worst(statuses) -> str:
    statuses = set(statuses)
    return "breached" if "breached" in statuses else ("at_risk" if "at_risk" in statuses else "ok")


def objective_compliance(objective: Objective, result: AvailabilityResult | RatioResult) -> ObjectiveCompliance:
    common = {"id": objective.id, "kind": objective.kind, "target": objective.target, "status": result.status,
              "window_start": result.window_start, "window_end": result.window_end,
              "actual_percent": result.actual_percent, "breached_at": result.breached_at}
    if isinstance(result, RatioResult):
        return ObjectiveCompliance(**common, tickets=result.tickets, met=result.met, missed=result.missed,
                                   open=result.open, best_percent=result.best_percent)
    return ObjectiveCompliance(
        **common, downtime_seconds=result.downtime_seconds, degraded_seconds=result.degraded_seconds,
        allowed_downtime_seconds=result.allowed_downtime_seconds,
        remaining_budget_seconds=result.remaining_budget_seconds,
        budget_remaining_percent=result.budget_remaining_percent,
        burn_alerts=[BurnAlertRead(severity=a.severity, threshold=a.threshold, long_window=a.long_window,
                                   short_window=a.short_window, long_rate=a.long_rate, short_rate=a.short_rate,
                                   firing=a.firing) for a in result.burn_alerts])


async def compute(conn, calendars: CalendarStore, agreement: Agreement,
                  now: datetime) -> tuple[ComplianceRead, datetime | None]:
    """The agreement's compliance as of `now`, and when it must be computed again without any event.

    Targets count the clocks started in the current calendar month (in the agreement's timezone), and
    every clock still open."""
    calendar = await calendars.current(conn, agreement.calendar_id, now)
    month = window_at(parse_window("calendar_month"), calendar.timezone, now)
    counts = {(r.metric, r.priority): r for r in await repository.compliance_counts(conn, agreement.id, *month)}
    targets = []
    for target in agreement.targets:
        row = counts.get((target.metric, target.priority))
        met, breached, running, warned = (row.met, row.breached, row.open, row.warned) if row else (0, 0, 0, 0)
        done = met + breached
        targets.append(TargetCompliance(
            metric=target.metric, priority=target.priority, within=target.within, window_start=month[0],
            window_end=month[1], met=met, breached=breached,
            running=running, percent_met=round(100.0 * met / done, 2) if done else None,
            status="breached" if breached else ("at_risk" if warned else "ok")))
    results = await objectives.current(conn, agreement, calendar, now)
    reads: list[ObjectiveCompliance] = [objective_compliance(o, r) for o, r in results]
    due = [month[1]] + [d for _, r in results for d in objectives.changes_by_themselves(r, now)]
    availability = [r for _, r in results if isinstance(r, AvailabilityResult)]
    if availability:
        due.append(now + (WHILE_DOWN if any(r.service_status != "up" for r in availability) else WHILE_UP))
    read = ComplianceRead(agreement_id=agreement.id, status=_worst([t.status for t in targets]
                                                                     + [o.status for o in reads]),
                          targets=targets, objectives=reads, computed_at=now)
    return read, min(due, default=None)


class Compliance:
    """Keeps every agreement's compliance current in the database, and streams its versions."""

    def __init__(self, uow_factory, calendars: CalendarStore):
        self._uow_factory = uow_factory
        self._calendars = calendars
        self._refreshed: dict[str, asyncio.Event] = {}  # agreement id -> set when a new version is committed
        self.scheduler = Scheduler(self.refresh, name="sla-compliance", concurrency=2, batch_size=50)

    async def start(self, conn) -> None:
        """Refresh every agreement once (what changed while the service was down), which sets its timer."""
        self.changed(await repository.agreement_ids(conn))
        self.scheduler.start()

    def changed(self, agreement_ids) -> None:
        """Something under these agreements changed: refresh each a moment from now (once for a burst)."""
        soon = datetime.now(UTC) + SETTLE
        for agreement_id in agreement_ids:
            self.scheduler.schedule(agreement_id, soon, keep_earlier=True)

    async def refresh(self, agreement_ids: list[str]) -> None:
        """Compute the agreements' compliance again and store each that changed as its next version."""
        async with self._uow_factory() as uow:
            for agreement in (await repository.get_agreements(uow.conn, sorted(agreement_ids))).values():
                await self.store(uow, agreement)
            await uow.commit()

    async def store(self, uow: UnitOfWork, agreement: Agreement) -> None:
        """Compute the agreement's compliance in this unit of work (objective checks do, so that the state
        changes with the events they publish), and store it as the next version if it changed.

        One at a time per agreement, each as of the instant it got its turn: a computation that started
        earlier can never overwrite a later one."""
        await uow.conn.execute(sa.select(sa.func.pg_advisory_xact_lock(
            sa.func.hashtextextended("compliance:" + agreement.id, 0))))
        read, due = await compute(uow.conn, self._calendars, agreement, datetime.now(UTC))
        updated = await _store(uow.conn, read)
        uow.after_commit(lambda: self._after_refresh(agreement.id, updated, due))

    def _after_refresh(self, agreement_id: str, updated: bool, due: datetime | None) -> None:
        if due is not None:  # a change while this refresh ran may have asked for an earlier one: keep it
            self.scheduler.schedule(agreement_id, due, keep_earlier=True)
        event = self._refreshed.pop(agreement_id, None) if updated else None
        if event is not None:
            event.set()

    async def read(self, conn, agreement: Agreement) -> tuple[int, dict]:
        """(version, document) of the agreement's compliance; computed and stored now if it never was."""
        row = (await conn.execute(sa.select(compliance.c.version, compliance.c.document)
                                  .where(compliance.c.agreement_id == agreement.id))).first()
        if row is None:
            await self.refresh([agreement.id])
            row = (await conn.execute(sa.select(compliance.c.version, compliance.c.document)
                                      .where(compliance.c.agreement_id == agreement.id))).first()
        return row.version, row.document

    async def watch(self, engine, agreement: Agreement) -> AsyncIterator[tuple[int, dict]]:
        """Each new version of the agreement's compliance, the current one first."""
        last = None
        while True:
            event = self._refreshed.setdefault(agreement.id, asyncio.Event())
            async with engine.connect() as conn:
                version, document = await self.read(conn, agreement)
            if version != last:
                last = version
                yield version, document
            try:
                await asyncio.wait_for(event.wait(), timeout=POLL_SECONDS)
            except TimeoutError:
                pass  # another replica may have refreshed it: read the version again


def _without_time(document):
    return document.op("-", return_type=JSONB)(sa.literal("computed_at"))


async def _store(conn, read: ComplianceRead) -> bool:
    """Store the compliance as a new version if it differs from the stored one (ignoring when it was computed)."""
    document = read.model_dump(mode="json")
    stmt = insert(compliance).values(agreement_id=read.agreement_id, version=1, status=read.status,
                                     document=document, updated_at=read.computed_at)
    stmt = stmt.on_conflict_do_update(
        index_elements=["agreement_id"],
        set_={"version": compliance.c.version + 1, "status": stmt.excluded.status, "document": stmt.excluded.document,
              "updated_at": stmt.excluded.updated_at},
        where=_without_time(compliance.c.document) != _without_time(stmt.excluded.document))
    return (await conn.execute(stmt.returning(compliance.c.version))).first() is not None
