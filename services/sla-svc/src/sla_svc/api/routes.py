"""HTTP routes of sla-svc: parse, call one handler, shape the response."""

import uuid
from collections.abc import AsyncIterable
from datetime import UTC, datetime
from functools import partial
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response
from fastapi.sse import EventSourceResponse, ServerSentEvent

from itsm_runtime.errors import NotFound, Problem
from itsm_runtime.pagination import CursorParam, LimitParam, cursor_after, seq_after
from itsm_runtime.service import IdempotencyKey, RuntimeDep

from .. import handlers, period_report, reviews
from ..reports import InvalidPeriod, render
from ..db import repository
from ..domain.agreement import Agreement, AvailabilityObjective, InvalidAgreement, Objective, RatioObjective, Target
from ..domain.clock import Clock
from ..domain.objectives import FIRST_YEAR, LAST_YEAR, InvalidObjective, new_window
from .schemas import (
    AgreementCreate, AgreementPage, AgreementRead, AvailabilityObjectiveIn, ClockPage, ClockRead, ComplianceRead,
    MaintenanceWindowCreate, MaintenanceWindowPage, MaintenanceWindowRead, RatioObjectiveIn, ReviewPage, ReviewPatch,
    ReviewRead, TargetRead, TimelineEntryRead,
)

router = APIRouter(prefix="/v1", tags=["sla"])


def _agreement_read(agreement: Agreement) -> AgreementRead:
    return AgreementRead(
        id=agreement.id, name=agreement.name, service_id=agreement.service_id, customer_id=agreement.customer_id,
        calendar_id=agreement.calendar_id,
        targets=[TargetRead(metric=t.metric, priority=t.priority, within=t.within) for t in agreement.targets],
        warning_thresholds=list(agreement.warning_thresholds), pause_on=list(agreement.pause_on),
        objectives=[repository.objective_dict(o) for o in agreement.objectives],
        effective_from=agreement.effective_from, created_at=agreement.extra["created_at"],
    )


def _clock_read(clock: Clock, calendar, now: datetime) -> ClockRead:
    remaining, percent = clock.remaining(calendar, now), clock.percent(calendar, now)
    return ClockRead(
        id=clock.id, agreement_id=clock.agreement_id, incident_id=clock.incident_id, service_id=clock.service_id,
        customer_id=clock.customer_id, metric=clock.metric, objective_id=clock.objective_id, priority=clock.priority,
        stage=str(clock.stage),
        breached=clock.breached, started_at=clock.started_at, deadline=clock.deadline,
        breached_at=clock.breached_at, completed_at=clock.completed_at,
        target_seconds=clock.target_seconds, elapsed_seconds=round(clock.elapsed(calendar, now), 3),
        remaining_seconds=None if remaining is None else round(remaining, 3),
        percent=None if percent is None else round(percent, 2), warnings_fired=clock.warnings_fired,
        calendar_id=clock.calendar_id, calendar_version=clock.calendar_version,
        timeline=[TimelineEntryRead(kind=e.kind, at=e.at, details=e.details) for e in clock.state.timeline],
    )


@router.post("/agreements", status_code=201, response_model=AgreementRead, tags=["agreements"])
async def create_agreement(agreement_in: AgreementCreate, runtime: RuntimeDep,
                           idempotency_key: IdempotencyKey = None):
    """Create an agreement with response/resolution targets per priority."""
    try:
        agreement = Agreement(
            id=str(uuid.uuid4()), name=agreement_in.name, service_id=agreement_in.service_id,
            customer_id=agreement_in.customer_id, calendar_id=agreement_in.calendar_id,
            targets=tuple(Target(metric=t.metric, priority=t.priority, within=t.within) for t in agreement_in.targets),
            warning_thresholds=tuple(agreement_in.warning_thresholds), pause_on=tuple(agreement_in.pause_on),
            objectives=tuple(_objective(f"objective-{n}", o) for n, o in enumerate(agreement_in.objectives, start=1)),
            effective_from=agreement_in.effective_from,
        )
    except InvalidAgreement as exc:
        raise Problem(422, str(exc)) from exc

    async def create(uow):
        if not await runtime.state["calendars"].exists(uow.conn, agreement.calendar_id):
            raise Problem(422, f"calendar {agreement.calendar_id!r} does not exist")
        created = await handlers.create_agreement(uow, agreement)
        if created.effective_from < created.extra["created_at"]:
            await runtime.state["clocks"].adopt(uow, created)
            # every window closed since it took effect, as statuses that arrive late get (and a rebuild does)
            await runtime.state["objectives"].check(uow, created, created.extra["created_at"],
                                                    since=created.effective_from)
        uow.after_commit(partial(runtime.state["period_closing"].check_soon, agreement.id))
        uow.after_commit(partial(runtime.state["compliance"].changed, [agreement.id]))
        uow.after_commit(partial(runtime.state["objectives"].check_soon, [agreement.id]))
        return _agreement_read(await repository.get_agreement(uow.conn, agreement.id))

    return await runtime.create_once(key=idempotency_key, scope="POST /v1/agreements", request=agreement_in,
                                     create=create)


async def existing_agreement(agreement_id: str, runtime: RuntimeDep) -> Agreement:
    async with runtime.engine.connect() as conn:
        agreement = await repository.get_agreement(conn, agreement_id)
    if agreement is None:
        raise NotFound("agreement", agreement_id)
    return agreement


AgreementDep = Annotated[Agreement, Depends(existing_agreement)]


@router.get("/agreements/{agreement_id}", response_model=AgreementRead, tags=["agreements"])
async def get_agreement(agreement: AgreementDep):
    return _agreement_read(agreement)


@router.get("/agreements", response_model=AgreementPage, tags=["agreements"])
async def list_agreements(runtime: RuntimeDep, service_id: str | None = None, limit: LimitParam = 50,
                          cursor: CursorParam = None):
    async with runtime.engine.connect() as conn:
        items, last = await repository.list_agreements(conn, service_id=service_id,
                                                       after_seq=seq_after(cursor), limit=limit)
    return AgreementPage(items=[_agreement_read(a) for a in items],
                         next_cursor=cursor_after(last))


@router.get("/clocks", response_model=ClockPage, tags=["clocks"])
async def list_clocks(runtime: RuntimeDep, incident_id: str | None = None, agreement_id: str | None = None,
                      stage: str | None = None, limit: LimitParam = 100, cursor: CursorParam = None):
    """SLA clocks as of now: elapsed and remaining time, and the warnings and breach due by now, also in the
    moment before their timer records them (their events go out at the instant)."""
    if stage is not None and stage not in ("running", "paused", "completed", "cancelled"):
        raise Problem(422, f"unknown stage {stage!r}")
    async with runtime.engine.connect() as conn:
        items, last = await repository.list_clocks(conn, incident_id=incident_id, agreement_id=agreement_id,
                                                   stage=stage, after_seq=seq_after(cursor),
                                                   limit=limit)
        clocks = runtime.state["clocks"]
        calendars = {(c.calendar_id, c.calendar_version): await clocks.calendars.get(conn, c.calendar_id,
                                                                                     c.calendar_version)
                     for c in items}
        now = datetime.now(UTC)
        await clocks.as_of(conn, items, now)
    return ClockPage(items=[_clock_read(c, calendars[c.calendar_id, c.calendar_version], now) for c in items],
                     next_cursor=cursor_after(last))


@router.get("/agreements/{agreement_id}/compliance", response_model=ComplianceRead, tags=["agreements"])
async def agreement_compliance(agreement: AgreementDep, runtime: RuntimeDep):
    """Live state of every target and objective in its current window, as last refreshed (`computed_at`)."""
    async with runtime.engine.connect() as conn:
        _, document = await runtime.state["compliance"].read(conn, agreement)
    return document


@router.get("/agreements/{agreement_id}/compliance/stream", response_class=EventSourceResponse, tags=["agreements"])
async def agreement_compliance_stream(agreement: AgreementDep, runtime: RuntimeDep) -> AsyncIterable[ServerSentEvent]:
    """Server-Sent Events: the compliance now, then each new version of it (`id` is the version)."""
    async for version, document in runtime.state["compliance"].watch(runtime.engine, agreement):
        yield ServerSentEvent(data=document, event="compliance", id=str(version))


def _objective(objective_id: str, objective_in: AvailabilityObjectiveIn | RatioObjectiveIn) -> Objective:
    try:
        new_window(objective_in.window)
    except InvalidObjective as exc:
        raise InvalidAgreement(f"objective {objective_id}: {exc}") from exc
    if isinstance(objective_in, RatioObjectiveIn):
        return RatioObjective(id=objective_id, target=objective_in.target, window=objective_in.window,
                              within=objective_in.within, priorities=tuple(sorted(set(objective_in.priorities))))
    return AvailabilityObjective(id=objective_id, target=objective_in.target, window=objective_in.window,
                                 exclude_maintenance=objective_in.exclude_maintenance)


@router.post("/maintenance-windows", status_code=201, response_model=MaintenanceWindowRead, tags=["maintenance"])
async def create_maintenance_window(window_in: MaintenanceWindowCreate, runtime: RuntimeDep,
                                    idempotency_key: IdempotencyKey = None):
    """Planned maintenance of a service: excluded from availability objectives that say so."""
    if window_in.start.tzinfo is None or window_in.end.tzinfo is None:
        raise Problem(422, "start and end need a UTC offset")
    if window_in.end <= window_in.start:
        raise Problem(422, "end must be after start")
    for name, at in (("start", window_in.start), ("end", window_in.end)):
        if not FIRST_YEAR <= at.year <= LAST_YEAR:  # the year 1 at +01:00 would be stored in the year 0 (BC)
            raise Problem(422, f"{name}: must lie between the years {FIRST_YEAR} and {LAST_YEAR}")
    window_id = str(uuid.uuid4())

    async def create(uow):
        await repository.add_maintenance_window(
            uow.conn, id=window_id, service_id=window_in.service_id, start=window_in.start, end=window_in.end,
            reference=window_in.reference, created_at=datetime.now(UTC))
        return MaintenanceWindowRead.model_validate(
            dict((await repository.get_maintenance_window(uow.conn, window_id))._mapping))

    return await runtime.create_once(key=idempotency_key, scope="POST /v1/maintenance-windows", request=window_in,
                                     create=create)


@router.get("/maintenance-windows", response_model=MaintenanceWindowPage, tags=["maintenance"])
async def list_maintenance_windows(runtime: RuntimeDep, service_id: str | None = None, limit: LimitParam = 50,
                                   cursor: CursorParam = None):
    async with runtime.engine.connect() as conn:
        rows, last = await repository.list_maintenance_windows(conn, service_id=service_id,
                                                               after_seq=seq_after(cursor), limit=limit)
    return MaintenanceWindowPage(items=[MaintenanceWindowRead.model_validate(dict(r._mapping)) for r in rows],
                                 next_cursor=cursor_after(last))



@router.get("/reviews", response_model=ReviewPage, tags=["reviews"])
async def list_reviews(runtime: RuntimeDep, agreement_id: str | None = None, status: str | None = None,
                       limit: LimitParam = 50, cursor: CursorParam = None):
    """Service reviews opened by breaches of an agreement's targets and objectives."""
    if status is not None and status not in reviews.NEXT_STATUS:
        raise Problem(422, f"unknown status {status!r}")
    async with runtime.engine.connect() as conn:
        items, last = await reviews.list_reviews(conn, agreement_id=agreement_id, status=status,
                                                 after_seq=seq_after(cursor), limit=limit)
    return ReviewPage(items=items, next_cursor=cursor_after(last))


@router.get("/reviews/{review_id}", response_model=ReviewRead, tags=["reviews"])
async def get_review(review_id: str, runtime: RuntimeDep):
    async with runtime.engine.connect() as conn:
        review = await reviews.get_review(conn, review_id)
    if review is None:
        raise NotFound("review", review_id)
    return review


@router.patch("/reviews/{review_id}", response_model=ReviewRead, tags=["reviews"])
async def update_review(review_id: str, patch: ReviewPatch, runtime: RuntimeDep):
    """Record the root cause and corrective actions; status moves open -> in_progress -> closed."""
    async with runtime.uow() as uow:
        review = await reviews.get_review(uow.conn, review_id, for_update=True)
        if review is None:
            raise NotFound("review", review_id)
        actions = [a.model_dump(mode="json") for a in patch.actions] if patch.actions is not None else None
        await reviews.update_review(uow, review, status=patch.status, root_cause=patch.root_cause, actions=actions)
        updated = await reviews.get_review(uow.conn, review_id)
        await uow.commit()
    return updated



@router.get("/reports/{agreement_id}", tags=["reports"],
            responses={200: {"content": {"application/json": {}, "text/csv": {}, "text/html": {}}}})
async def agreement_report(agreement: AgreementDep, runtime: RuntimeDep,
                           period: str = Query(description="an ISO week such as 2026-W47, or a month such as 2026-11"),
                           format: str = Query("json", pattern="^(json|csv|html)$")):
    """The agreement's performance over a week or month: compliance per target and objective, breaches,
    MTTA/MTTR and the availability timeline; `html` is a self-contained page with its charts."""
    async with runtime.engine.connect() as conn:
        try:
            calendar = await runtime.state["calendars"].current(conn, agreement.calendar_id, datetime.now(UTC))
            report = await period_report.build(conn, agreement, period, calendar)
        except InvalidPeriod as exc:
            raise Problem(422, str(exc)) from exc
    body, media_type = render(report, format)
    return Response(content=body, media_type=media_type)
