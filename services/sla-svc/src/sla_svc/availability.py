"""Availability objectives: service status consumed from cmdb-svc, uptime and error budget per window,
and `itsm.sla.objective_breached` at the instant the window's target becomes impossible.

Every result is computed from event time (`observed_at`) only, so late and duplicate availability
events give the same answer. A durable timer is not needed: the next breach instant follows from
the stored statuses, so on start every objective is evaluated once and its timer set again.
"""

import logging
import math
from datetime import UTC, datetime

from itsm_events import Envelope, UnitOfWork, schemas
from itsm_runtime.scheduler import Scheduler

from .db import repository
from .domain.agreement import Agreement, AvailabilityObjective
from .calendars import CalendarStore
from .domain.calendar import Calendar
from .reviews import BreachRef, record_breaches
from .domain.objectives import (
    AvailabilityResult, StatusChange, StatusTimeline, availability, length, next_burn_change, parse_window, window_at,
)

log = logging.getLogger("sla_svc.availability")


async def service_inputs(conn, service_id: str) -> tuple[StatusTimeline, list]:
    """The service's status timeline (sorted, de-duplicated by event time) and its maintenance windows."""
    timeline = StatusTimeline([StatusChange(at=at, status=status)
                               for at, status in await repository.service_statuses(conn, service_id)])
    return timeline, await repository.maintenance_of(conn, service_id)


def evaluate(agreement: Agreement, calendar: Calendar, timeline: StatusTimeline, maintenance: list,
             now: datetime) -> list[tuple[AvailabilityObjective, AvailabilityResult]]:
    """Every availability objective of the agreement over its window containing `now` (weeks and months in the
    calendar's timezone), counting only the calendar's working time."""
    results = []
    for objective in agreement.objectives:
        spec = parse_window(objective.window)
        results.append((objective, availability(
            timeline, window=window_at(spec, calendar.timezone, now), now=now, target_percent=objective.target,
            calendar=calendar, maintenance=maintenance,
            exclude_maintenance=objective.exclude_maintenance, rolling=spec.kind == "rolling")))
    return results


def next_changes(agreement: Agreement, calendar: Calendar, timeline: StatusTimeline, maintenance: list, results,
                 now: datetime) -> list[datetime]:
    """When each objective's budget runs out if the service stays down, and when a burn alert may change."""
    due = []
    for objective, result in results:
        if result.exhausted_at_if_down_continues:
            due.append(result.exhausted_at_if_down_continues)
        window_length = result.window_end - result.window_start
        change = next_burn_change(timeline, after=now, until=now + window_length, target_percent=objective.target,
                                  window_length=window_length, calendar=calendar,
                                  maintenance=maintenance, exclude_maintenance=objective.exclude_maintenance)
        if change:
            due.append(change)
    return due


def _rule(alert) -> str:
    return f"{alert.severity}:{alert.threshold:g}"


def _breach_window_start(objective: AvailabilityObjective, result: AvailabilityResult) -> datetime:
    """The window a breach is counted once for; a rolling window is bucketed by its length."""
    spec = parse_window(objective.window)
    if spec.kind != "rolling":
        return result.window_start
    seconds = length(spec).total_seconds()
    bucket = math.floor(result.breached_at.timestamp() / seconds) * seconds
    return datetime.fromtimestamp(bucket, UTC)


def _finite(rate: float) -> float:
    """JSON has no infinity: a 100% target with any downtime burns at the largest float."""
    return rate if math.isfinite(rate) else 1.7976931348623157e308


def status_row(envelope: Envelope, data: schemas.ServiceAvailabilityChanged) -> dict:
    return {"event_id": envelope.id, "service_id": data.service_id, "status": data.status,
            "observed_at": data.observed_at}


class AvailabilityObjectives:
    """Consumes service availability and keeps one timer per agreement at its next possible breach."""

    def __init__(self, uow_factory, calendars: CalendarStore):
        self._uow_factory = uow_factory
        self.calendars = calendars
        self.scheduler = Scheduler(self.fire, name="sla-objectives", concurrency=2, batch_size=100)

    async def start(self, conn) -> int:
        now = datetime.now(UTC)
        agreements = await repository.agreements_with_objectives(conn)
        for agreement in agreements:
            timeline, maintenance = await service_inputs(conn, agreement.service_id)
            calendar = await self.calendars.current(conn, agreement.calendar_id, now)
            results = evaluate(agreement, calendar, timeline, maintenance, now)
            self._track(agreement.id, next_changes(agreement, calendar, timeline, maintenance, results, now))
        self.scheduler.start()
        return len(agreements)

    def _track(self, agreement_id: str, due: list[datetime]) -> None:
        if due:
            self.scheduler.schedule(agreement_id, min(due))
        else:
            self.scheduler.cancel(agreement_id)

    async def check(self, uow: UnitOfWork, agreement: Agreement, now: datetime,
                    inputs: tuple[StatusTimeline, list] | None = None) -> list[datetime]:
        """Publish the breach of any objective that has become impossible; set the next timer after commit.

        `inputs` are the service's timeline and maintenance when the caller has already read them.
        Returns the instants the agreement must be checked again at."""
        if not agreement.objectives:
            return []
        timeline, maintenance = inputs or await service_inputs(uow.conn, agreement.service_id)
        calendar = await self.calendars.current(uow.conn, agreement.calendar_id, now)
        results = evaluate(agreement, calendar, timeline, maintenance, now)
        for objective, result in results:
            if result.status != "breached" or result.breached_at is None:
                continue
            reason = "missed" if now >= result.window_end else "impossible"
            window_start = _breach_window_start(objective, result)
            if await repository.record_objective_breach(
                    uow.conn, agreement_id=agreement.id, objective_id=objective.id,
                    window_start=window_start, breached_at=result.breached_at, reason=reason):
                await record_breaches(uow, [BreachRef(
                    agreement_id=agreement.id, service_id=agreement.service_id, kind="objective",
                    ref_id=f"{objective.id}@{window_start.isoformat()}", breached_at=result.breached_at)])
                uow.emit(schemas.ObjectiveBreached(
                    agreement_id=agreement.id, objective_id=objective.id, service_id=agreement.service_id,
                    kind="availability", target=objective.target, window_start=result.window_start,
                    window_end=result.window_end, actual=result.actual_percent, reason=reason,
                    breached_at=result.breached_at), key=agreement.id, time=result.breached_at)
        await self._publish_burn_changes(uow, agreement, results, now)
        due = next_changes(agreement, calendar, timeline, maintenance, results, now)
        uow.after_commit(lambda: self._track(agreement.id, due))
        return due

    async def _publish_burn_changes(self, uow: UnitOfWork, agreement: Agreement, results, now: datetime) -> None:
        """`itsm.sla.budget_burn` firing when a burn-rate alert starts, cleared when it stops."""
        known = await repository.firing_burn_alerts(uow.conn, agreement.id)
        for objective, result in results:
            for alert in result.burn_alerts:
                rule = _rule(alert)
                if known.get((objective.id, rule), False) == alert.firing:
                    continue
                await repository.set_burn_alert(uow.conn, agreement_id=agreement.id, objective_id=objective.id,
                                                rule=rule, firing=alert.firing, changed_at=now)
                uow.emit(schemas.BudgetBurn(
                    agreement_id=agreement.id, objective_id=objective.id, service_id=agreement.service_id,
                    kind="availability", target=objective.target, window_start=result.window_start,
                    window_end=result.window_end, state="firing" if alert.firing else "cleared",
                    severity=alert.severity, burn_rate_threshold=alert.threshold,
                    long_window_seconds=alert.long_window.total_seconds(),
                    short_window_seconds=alert.short_window.total_seconds(),
                    long_rate=_finite(alert.long_rate), short_rate=_finite(alert.short_rate), at=now),
                    key=agreement.id, time=now)

    async def on_service_availability_changed(self, envelope: Envelope, data: schemas.ServiceAvailabilityChanged,
                                              uow: UnitOfWork) -> None:
        await repository.add_service_statuses(uow.conn, [status_row(envelope, data)])
        now = datetime.now(UTC)
        agreements = [a for a in await repository.agreements_for_service(uow.conn, data.service_id) if a.objectives]
        if agreements:
            inputs = await service_inputs(uow.conn, data.service_id)  # read once for every agreement of the service
            for agreement in agreements:
                await self.check(uow, agreement, now, inputs)

    async def fire(self, agreement_ids: list[str]) -> None:
        async with self._uow_factory() as uow:
            now = datetime.now(UTC)
            for agreement_id in agreement_ids:
                agreement = await repository.get_agreement(uow.conn, agreement_id)
                if agreement is not None:
                    await self.check(uow, agreement, now)
            await uow.commit()
