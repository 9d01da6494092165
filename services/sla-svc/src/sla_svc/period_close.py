"""Closing reporting periods: `itsm.sla.report_ready` once per agreement and ended ISO week or month.

Like availability objectives, this needs no durable timer: which periods ended since an agreement
was created follows from the time, and `reports_published` says which were announced. So on start
every agreement is checked at once (announcing what ended while the service was down), and after
each check its timer is set to its next period end.
"""

import logging
from datetime import UTC, datetime
from functools import partial

from itsm_events import UnitOfWork, schemas
from itsm_runtime.scheduler import Scheduler

from . import period_report
from .calendars import CalendarStore
from .db import repository
from .domain.calendar import Calendar
from .domain.agreement import Agreement
from .reports import Report, Status, next_period_end, periods_ended

log = logging.getLogger("sla_svc.period_close")


def announced_status(report: Report) -> Status:
    """breached if anything breached in the period, at_risk if something fell short or ran low on budget, else ok."""
    if report.breaches or report.status == "breached":
        return "breached"
    short = any(t.percent_met is not None and t.goal_percent is not None and t.percent_met < t.goal_percent
                for t in report.targets)
    short |= any(o.actual is not None and o.actual < o.target for o in report.objectives)
    return "at_risk" if short or report.status == "at_risk" else "ok"


def report_url(agreement_id: str, period: str) -> str:
    """The relative URL of the period's HTML report."""
    return f"/v1/reports/{agreement_id}?period={period}&format=html"


class PeriodClosing:
    """Keeps one timer per agreement at its next period end, and announces each closed period's report once."""

    def __init__(self, uow_factory, calendars: CalendarStore):
        self._uow_factory = uow_factory
        self.calendars = calendars
        # one agreement per unit of work: an agreement whose report fails is retried alone
        self.scheduler = Scheduler(self.fire, name="sla-period-close", concurrency=4, batch_size=1)

    async def start(self, conn) -> int:
        """Check every agreement at once: periods that ended while the service was down are announced now."""
        agreement_ids = await repository.agreement_ids(conn)
        now = datetime.now(UTC)
        for agreement_id in agreement_ids:
            self.scheduler.schedule(agreement_id, now)
        self.scheduler.start()
        return len(agreement_ids)

    def check_soon(self, agreement_id: str) -> None:
        """Check a new agreement now, which sets its timer to its first period end; call once it is committed."""
        self.scheduler.schedule(agreement_id, datetime.now(UTC))

    def track(self, agreement_id: str, timezone: str, now: datetime) -> None:
        """Wake the agreement at its first period end after `now` (weeks and months in `timezone`)."""
        self.scheduler.schedule(agreement_id, next_period_end(now, timezone))

    async def fire(self, agreement_ids: list[str]) -> None:
        """Announce every period of these agreements that has ended and was not announced yet."""
        for agreement_id in agreement_ids:
            async with self._uow_factory() as uow:
                now = datetime.now(UTC)
                agreement = await repository.get_agreement(uow.conn, agreement_id)
                if agreement is None:
                    continue
                calendar = await self.calendars.current(uow.conn, agreement.calendar_id, now)
                announced = await self._announce(uow, agreement, calendar, now)
                # from the instant checked, not from after the commit: a period ending in between is not skipped
                uow.after_commit(partial(self.track, agreement_id, calendar.timezone, now))
                await uow.commit()
            if announced:
                log.info("agreement %s: reports ready for %s", agreement_id, ", ".join(announced))

    async def _announce(self, uow: UnitOfWork, agreement: Agreement, calendar: Calendar,
                        now: datetime) -> list[str]:
        published = await repository.published_periods(uow.conn, agreement.id)
        announced = []
        for period in periods_ended(agreement.extra["created_at"], now, calendar.timezone):
            if period in published or not await repository.mark_report_published(
                    uow.conn, agreement_id=agreement.id, period=period, published_at=now):
                continue  # announced before, or by a concurrent transaction that has just committed
            report = await period_report.build(uow.conn, agreement, period, calendar)
            uow.emit(schemas.ReportReady(
                agreement_id=agreement.id, service_id=agreement.service_id, period=period,
                period_start=report.period_start, period_end=report.period_end, status=announced_status(report),
                url=report_url(agreement.id, period)), key=agreement.id, time=report.period_end)
            announced.append(period)
        return announced
