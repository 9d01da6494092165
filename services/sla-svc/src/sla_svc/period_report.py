"""The performance report of one agreement over an ISO week or a month, gathered from sla-svc's state."""

from datetime import UTC, datetime
from statistics import fmean

from .objectives import ratio_over, service_inputs
from .db import repository
from .domain.agreement import Agreement
from .domain.calendar import Calendar
from .domain.clock import Clock, Stage
from .domain.objectives import StatusTimeline, availability
from .reports import Report, parse_period


def _worst(statuses) -> str:
    statuses = set(statuses)
    return "breached" if "breached" in statuses else ("at_risk" if "at_risk" in statuses else "ok")


def _segments(timeline: StatusTimeline, start: datetime, end: datetime) -> list[dict]:
    """The service's status over [start, end) as consecutive segments (up before anything is known)."""
    cuts = sorted({start, end, *timeline.changes_between(start, end)})
    segments: list[dict] = []
    for lo, hi in zip(cuts, cuts[1:], strict=False):
        status = timeline.status_at(lo)
        if segments and segments[-1]["status"] == status:
            segments[-1]["end"] = hi
        else:
            segments.append({"start": lo, "end": hi, "status": status})
    return segments


def _target_results(agreement: Agreement, started: list[Clock]) -> list[dict]:
    results = []
    for target in agreement.targets:
        mine = [c for c in started if c.metric == target.metric and c.priority == target.priority]
        met = sum(1 for c in mine if c.stage == Stage.COMPLETED and not c.breached)
        breached = sum(1 for c in mine if c.breached)
        running = sum(1 for c in mine if c.stage in (Stage.RUNNING, Stage.PAUSED) and not c.breached)
        done = met + breached
        results.append({"metric": target.metric, "priority": target.priority,
                        "within_seconds": target.within.total_seconds(), "met": met, "breached": breached,
                        "running": running, "percent_met": round(100.0 * met / done, 2) if done else None,
                        "status": "breached" if breached else "ok"})
    return results


async def build(conn, agreement: Agreement, period: str, calendar: Calendar) -> Report:
    """The period's report, its weeks and months in the calendar's timezone, counting the calendar's working time.

    Raises reports.InvalidPeriod for a period that is neither `YYYY-Www` nor `YYYY-MM`."""
    start, end = parse_period(period, calendar.timezone)
    now = datetime.now(UTC)
    clocks = await repository.clocks_for_period(conn, agreement.id, start, end)
    started = [c for c in clocks if start <= c.started_at < end]

    def mean_duration(metric: str) -> float | None:
        spans = [(c.completed_at - c.started_at).total_seconds() for c in started
                 if c.metric == metric and c.completed_at is not None]
        return round(fmean(spans), 3) if spans else None

    breaches = [{"kind": "clock", "id": c.id, "incident_id": c.incident_id, "metric": c.metric,
                 "priority": c.priority, "at": c.breached_at}
                for c in clocks if c.breached_at is not None and start <= c.breached_at < end]
    breaches += [{"kind": "objective", "id": b.objective_id, "at": b.breached_at}
                 for b in await repository.objective_breaches_between(conn, agreement.id, start, end)]

    objectives = {}
    if agreement.availability_objectives:
        timeline, maintenance = await service_inputs(conn, agreement.service_id)
        for objective in agreement.availability_objectives:
            result = availability(timeline, window=(start, end), now=min(now, end), target_percent=objective.target,
                                  calendar=calendar, maintenance=maintenance,
                                  exclude_maintenance=objective.exclude_maintenance)
            objectives[objective.id] = {
                "id": objective.id, "kind": "availability", "target": objective.target,
                "actual": result.actual_percent,
                "status": result.status, "window_start": start, "window_end": end,
                "downtime_seconds": result.downtime_seconds,
                "allowed_downtime_seconds": result.allowed_downtime_seconds,
                "remaining_budget_seconds": result.remaining_budget_seconds,
                "timeline": _segments(timeline, start, min(now, end)) if now > start else []}
    for objective in agreement.ratio_objectives:  # over the incidents opened in the period
        result = await ratio_over(conn, agreement, objective, (start, end), now)
        objectives[objective.id] = {
            "id": objective.id, "kind": "resolution_ratio", "target": objective.target,
            "actual": result.actual_percent, "status": result.status, "window_start": start, "window_end": end,
            "met": result.met, "missed": result.missed, "pending": result.open}

    targets = _target_results(agreement, started)
    return Report.model_validate({
        "agreement": {"id": agreement.id, "name": agreement.name, "service_id": agreement.service_id,
                      "customer_id": agreement.customer_id},
        "period": period, "period_start": start, "period_end": end, "generated_at": now,
        "status": _worst([t["status"] for t in targets] + [o["status"] for o in objectives.values()]),
        "targets": targets, "objectives": [objectives[o.id] for o in agreement.objectives],
        "breaches": sorted(breaches, key=lambda b: b["at"]),
        "incidents": len({c.incident_id for c in started}),
        "mtta_seconds": mean_duration("response"), "mttr_seconds": mean_duration("resolution"),
    })
