"""Objectives of an agreement, and `itsm.sla.objective_breached` at the instant one is breached.

- Availability: service status consumed from cmdb-svc, uptime and error budget per window; breached
  at the instant the window's target becomes impossible.
- Resolution ratio: the share of incidents resolved in time per window, from each ticket's clock;
  breached once the window has ended and the ratio can no longer be met (domain/ratio.py).

Every result is computed from event time only, so late and duplicate events give the same answer.
A durable timer is not needed: the next instant anything can change follows from the stored
statuses and clocks, so on start every agreement is checked once, which sets its timer again.
"""

import logging
import math
from bisect import bisect_left
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

from itsm_events import Envelope, UnitOfWork, schemas
from itsm_runtime.scheduler import Scheduler

from .calendars import CalendarStore
from .db import repository
from .domain.agreement import Agreement, AvailabilityObjective, Objective, RatioObjective
from .domain.calendar import NEVER, Calendar
from .domain.clock import Clock, Stage
from .domain.objectives import (
    SRE_WORKBOOK_RULES, AvailabilityResult, StatusChange, StatusTimeline, availability, length, next_burn_change,
    parse_window, window_at,
)
from .domain.ratio import RatioResult, Ticket, ratio
from .reviews import BreachRef, record_breaches

log = logging.getLogger("sla_svc.objectives")


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
    for objective in agreement.availability_objectives:
        spec = parse_window(objective.window)
        window = window_at(spec, calendar.timezone, now)
        results.append((objective, _over(objective, window, calendar, timeline, maintenance, now,
                                         rolling=spec.kind == "rolling")))
    return results


def _over(objective: AvailabilityObjective, window: tuple[datetime, datetime], calendar: Calendar,
          timeline: StatusTimeline, maintenance: list, now: datetime, *, rolling: bool = False,
          rules=SRE_WORKBOOK_RULES) -> AvailabilityResult:
    return availability(timeline, window=window, now=now, target_percent=objective.target, calendar=calendar,
                        maintenance=maintenance, exclude_maintenance=objective.exclude_maintenance, rolling=rolling,
                        rules=rules)


def settled(agreement: Agreement, calendar: Calendar, timeline: StatusTimeline, maintenance: list,
            now: datetime, *, since: datetime | None = None) -> list[tuple[AvailabilityObjective, AvailabilityResult]]:
    """Every calendar-week or -month availability objective over its closed windows that may still change
    (`_closed_windows`): a status that arrives late can still show its window missed."""
    results = []
    for objective in agreement.availability_objectives:
        spec = parse_window(objective.window)
        current_start = window_at(spec, calendar.timezone, now)[0]
        for window in _closed_windows(spec, calendar, agreement, current_start, since):
            results.append((objective, _over(objective, window, calendar, timeline, maintenance, now)))
    return results


def rolling_rechecked(agreement: Agreement, calendar: Calendar, timeline: StatusTimeline, maintenance: list,
                      now: datetime, *,
                      since: datetime | None) -> list[tuple[AvailabilityObjective, AvailabilityResult]]:
    """The breaches of rolling availability objectives found by checking them at each instant from `since` (a late
    status's) to `now` that the live service checks them at, as a replay does: every status change, and when the
    budget runs out if the service stays down. A rolling window ends at every instant: a late status can show one
    long gone breached. The first breach of each window it is counted once for."""
    rolling = [(o, spec) for o in agreement.availability_objectives
               if (spec := parse_window(o.window)).kind == "rolling"]
    if since is None or not rolling:
        return []
    at = max(since, agreement.effective_from or since)
    changes = timeline.changes_between(at - timedelta(microseconds=1), now)
    found: dict[tuple, tuple[AvailabilityObjective, AvailabilityResult]] = {}
    while at < now:
        results = [(o, _over(o, window_at(spec, calendar.timezone, at), calendar, timeline, maintenance, at,
                             rolling=True, rules=()))  # no burn rates: only breaches are looked for
                   for o, spec in rolling]
        for objective, result in results:
            if result.status == "breached" and result.breached_at is not None:
                found.setdefault((objective.id, _breach_window_start(objective, result)), (objective, result))
        later = [t for t in (*changes, *(r.exhausted_at_if_down_continues for _, r in results))
                 if t is not None and at < t < now]
        if not later:
            break
        at = min(later)
    return list(found.values())


def next_changes(agreement: Agreement, calendar: Calendar, timeline: StatusTimeline, maintenance: list, results,
                 now: datetime) -> list[datetime]:
    """When each objective's budget runs out if the service stays down, and when a burn alert may change (at the
    latest, a firing one at the end of its calendar or fixed window)."""
    due = []
    for objective, result in results:
        if result.exhausted_at_if_down_continues:
            due.append(result.exhausted_at_if_down_continues)
        if result.window_end > now and any(alert.firing for alert in result.burn_alerts):
            due.append(result.window_end)
        window_length = result.window_end - result.window_start
        change = next_burn_change(timeline, after=now, until=now + window_length, target_percent=objective.target,
                                  window_length=window_length, calendar=calendar,
                                  maintenance=maintenance, exclude_maintenance=objective.exclude_maintenance)
        if change:
            due.append(change)
    return due


def ticket_of(clock: Clock) -> Ticket:
    """A ratio objective's ticket, from its clock: met when resolved in time, missed when the time ran out."""
    return Ticket(opened_at=clock.started_at, missed_at=clock.breached_at,
                  met_at=clock.completed_at if clock.stage == Stage.COMPLETED and not clock.breached else None,
                  due_at=clock.deadline if clock.stage == Stage.RUNNING and clock.deadline != NEVER else None)


async def ratio_results(conn, agreement: Agreement, calendar: Calendar, now: datetime, *, settling: bool = False,
                        since: datetime | None = None) -> list[tuple[RatioObjective, RatioResult]]:
    """Each ratio objective over its window containing `now`; with `settling`, first over the windows before it
    that may still change: the one before (tickets opened near its end are still settling), or every one from the
    window holding `since` (a ticket opened then that changed late) on."""
    results = []
    for objective in agreement.ratio_objectives:
        spec = parse_window(objective.window)
        current_window = window_at(spec, calendar.timezone, now)
        windows = _closed_windows(spec, calendar, agreement, current_window[0], since) if settling else []
        windows.append(current_window)
        # the tickets of every window at once (a walk back over many windows is one query), sorted to split them
        clocks = sorted(await repository.ratio_tickets(conn, agreement.id, objective.id, windows[0][0],
                                                       windows[-1][1]), key=_started)
        for start, end in windows:
            within = clocks[bisect_left(clocks, start, key=_started):bisect_left(clocks, end, key=_started)]
            results.append((objective, ratio_in(within, objective, (start, end), now)))
    return results


def _started(clock: Clock) -> datetime:
    return clock.started_at


def _closed_windows(spec, calendar: Calendar, agreement: Agreement, current_start: datetime,
                    since: datetime | None) -> list[tuple[datetime, datetime]]:
    """The calendar windows before the one starting at `current_start` to check again: the one before it, or every
    one from the window holding `since` (a late event's instant) on if that is earlier, not before the agreement
    took effect. A fixed window has none before it; a rolling one ends at every instant."""
    if spec.kind not in ("calendar_week", "calendar_month"):
        return []
    first = current_start - timedelta(microseconds=1)
    if since is not None:  # not before the agreement: a bogus instant must not make it walk back for ages
        first = min(first, max(since, agreement.effective_from or since))
    windows, window = [], window_at(spec, calendar.timezone, first)
    while window[1] <= current_start:
        if agreement.effective_from is None or window[1] > agreement.effective_from:
            windows.append(window)
        window = window_at(spec, calendar.timezone, window[1])
    return windows


async def ratio_over(conn, agreement: Agreement, objective: RatioObjective, window: tuple[datetime, datetime],
                     now: datetime) -> RatioResult:
    """The ratio objective over the incidents opened in `window`, as known at `now`."""
    return ratio_in(await repository.ratio_tickets(conn, agreement.id, objective.id, *window), objective, window, now)


def ratio_in(clocks: list[Clock], objective: RatioObjective, window: tuple[datetime, datetime],
             now: datetime) -> RatioResult:
    """The ratio objective over `window`, from the ticket clocks of the incidents opened in it."""
    tickets = [ticket_of(c) for c in clocks if c.stage != Stage.CANCELLED]
    return ratio(tickets, target_percent=objective.target, window=window, now=now)


async def current(conn, agreement: Agreement, calendar: Calendar,
                  now: datetime) -> list[tuple[Objective, AvailabilityResult | RatioResult]]:
    """Every objective of the agreement over its current window, in the agreement's order."""
    results = {o.id: r for o, r in await ratio_results(conn, agreement, calendar, now)}
    if agreement.availability_objectives:
        inputs = await service_inputs(conn, agreement.service_id)
        results |= {o.id: r for o, r in evaluate(agreement, calendar, *inputs, now)}
    return [(o, results[o.id]) for o in agreement.objectives]


def changes_by_themselves(result: AvailabilityResult | RatioResult, now: datetime) -> list[datetime]:
    """When an objective's compliance changes with no event: its budget running out, its window ending (and,
    for availability, its uptime moving while the service is down or degraded: soon)."""
    if isinstance(result, RatioResult):
        due = [result.next_check]
    else:
        due = [result.exhausted_at_if_down_continues, result.window_end]
    return [d for d in due if d is not None and d > now]


def _rule(alert) -> str:
    return f"{alert.severity}:{alert.threshold:g}"


def _reason(objective: AvailabilityObjective, result: AvailabilityResult) -> str:
    """Why an availability objective breached, by event time (as a replay finds it, whenever the statuses arrived):
    its budget ran out while the window still ran (impossible), or the window ended short of it (missed). A rolling
    window ends at every instant: missed."""
    rolling = parse_window(objective.window).kind == "rolling"
    return "impossible" if not rolling and result.breached_at < result.window_end else "missed"


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


def status_row(event_id: str, data: schemas.ServiceAvailabilityChanged) -> dict:
    return {"event_id": event_id, "service_id": data.service_id, "status": data.status,
            "observed_at": data.observed_at}


class Objectives:
    """Checks an agreement's objectives when the service's availability or its ratio tickets change, and keeps
    one timer per agreement at the next instant an objective can change."""

    def __init__(self, uow_factory, calendars: CalendarStore, *,
                 checked: Callable[[UnitOfWork, Agreement], Awaitable[None]] | None = None):
        self._uow_factory = uow_factory
        self.calendars = calendars
        self._checked = checked  # called in the unit of work of each check (live compliance stores its state)
        self.scheduler = Scheduler(self.fire, name="sla-objectives", concurrency=2, batch_size=100)

    async def start(self, conn) -> int:
        """Check every agreement with objectives at once: that publishes what happened while the service was
        down, and sets each agreement's timer."""
        agreements = await repository.agreements_with_objectives(conn)
        self.check_soon({a.id for a in agreements})
        self.scheduler.start()
        return len(agreements)

    def check_soon(self, agreement_ids) -> None:
        """Check these agreements' objectives in a moment (their ratio tickets changed, or on start)."""
        now = datetime.now(UTC)
        for agreement_id in agreement_ids:
            self.scheduler.schedule(agreement_id, now, keep_earlier=True)

    def _track(self, agreement_id: str, due: list[datetime]) -> None:
        # a check asked for while this one ran (check_soon) stays: it may see what this one did not
        if due:
            self.scheduler.schedule(agreement_id, min(due), keep_earlier=True)

    async def check(self, uow: UnitOfWork, agreement: Agreement, now: datetime,
                    inputs: tuple[StatusTimeline, list] | None = None, *,
                    since: datetime | None = None) -> list[datetime]:
        """Publish the breach of any objective that has become impossible; set the next timer after commit.

        `inputs` are the service's timeline and maintenance when the caller has already read them; `since`, the
        instant of a status that arrived late (every window from the one holding it is checked again; so are those
        of the ratio tickets that changed since the last check, `repository.recheck_from`).
        Returns the instants the agreement must be checked again at."""
        if not agreement.objectives:
            return []
        status_since = since
        if agreement.ratio_objectives:  # tickets that changed late: their windows too, however old
            changed = await repository.take_recheck(uow.conn, agreement.id)
            since = min(since, changed) if since is not None and changed is not None else since or changed
        calendar = await self.calendars.current(uow.conn, agreement.calendar_id, now)
        due = []
        if agreement.availability_objectives:
            timeline, maintenance = inputs or await service_inputs(uow.conn, agreement.service_id)
            results = evaluate(agreement, calendar, timeline, maintenance, now)
            for objective, result in (rolling_rechecked(agreement, calendar, timeline, maintenance, now,
                                                        since=status_since)
                                      + results + settled(agreement, calendar, timeline, maintenance, now,
                                                          since=since)):
                if result.status == "breached" and result.breached_at is not None:
                    await self._breached(uow, agreement, objective, result, _breach_window_start(objective, result),
                                         reason=_reason(objective, result))
            await self._publish_burn_changes(uow, agreement, results, now)
            due += next_changes(agreement, calendar, timeline, maintenance, results, now)
        for objective, result in await ratio_results(uow.conn, agreement, calendar, now, settling=True,
                                                     since=since):
            if result.breached_at is not None:
                await self._breached(uow, agreement, objective, result, result.window_start, reason="missed")
            if result.next_check is not None:
                due.append(result.next_check)
        uow.after_commit(lambda: self._track(agreement.id, due))
        if self._checked is not None:
            await self._checked(uow, agreement)
        return due

    async def _breached(self, uow: UnitOfWork, agreement: Agreement, objective: Objective,
                        result: AvailabilityResult | RatioResult, window_start: datetime, *, reason: str) -> None:
        """Record the objective's breach in this window once: its review and `itsm.sla.objective_breached`."""
        if not await repository.record_objective_breach(
                uow.conn, agreement_id=agreement.id, objective_id=objective.id, window_start=window_start,
                breached_at=result.breached_at, reason=reason):
            return
        await record_breaches(uow, [BreachRef(
            agreement_id=agreement.id, service_id=agreement.service_id, kind="objective",
            ref_id=f"{objective.id}@{window_start.isoformat()}", breached_at=result.breached_at)])
        uow.emit(schemas.ObjectiveBreached(
            agreement_id=agreement.id, objective_id=objective.id, service_id=agreement.service_id,
            kind=objective.kind, target=objective.target, window_start=result.window_start,
            window_end=result.window_end, actual=result.actual_percent, reason=reason,
            breached_at=result.breached_at), key=agreement.id, time=result.breached_at)

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
        stored = await repository.add_service_status(uow.conn, status_row(envelope.id, data))
        # a new status may be late: its windows are checked again, however old (a redelivery has been already);
        # naive, it is local time, as the driver stores it
        since = data.observed_at.astimezone(UTC) if stored else None
        now = datetime.now(UTC)
        agreements = sorted((a for a in await repository.agreements_for_service(uow.conn, data.service_id)
                             if a.availability_objectives), key=lambda a: a.id)  # the order compliance locks in
        if agreements:
            inputs = await service_inputs(uow.conn, data.service_id)  # read once for every agreement of the service
            for agreement in agreements:
                await self.check(uow, agreement, now, inputs, since=since)

    async def fire(self, agreement_ids: list[str]) -> None:
        async with self._uow_factory() as uow:
            now = datetime.now(UTC)
            for agreement_id in sorted(agreement_ids):  # the order compliance locks in
                agreement = await repository.get_agreement(uow.conn, agreement_id)
                if agreement is not None:
                    await self.check(uow, agreement, now)
            await uow.commit()
