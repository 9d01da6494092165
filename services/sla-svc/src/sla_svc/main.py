"""sla-svc: app factory and command line."""

import asyncio
import itertools
import logging
from pathlib import Path

from fastapi import FastAPI

from itsm_events import Transport
from itsm_runtime.service import ServiceRuntime, build_app, serve

from .api import calendar_routes
from .api.routes import router
from .availability import AvailabilityObjectives
from .calendars import CalendarStore
from .consumer import subscriptions
from .db.tables import metadata
from .handlers import ClockTimers, IncidentEventHandlers
from .settings import Settings

NAME = "sla-svc"
log = logging.getLogger("sla_svc")
MIGRATIONS = Path(__file__).resolve().parents[2] / "migrations"


def create_app(settings: Settings | None = None, transport: Transport | None = None) -> FastAPI:
    settings = settings or Settings()
    timers: ClockTimers | None = None

    async def load_timers_when_caught_up(runtime: ServiceRuntime) -> None:
        # Consume the backlog first: a resolution that happened before a deadline but was published
        # while sla-svc was down must stop its clock before the timer could call it a breach.
        try:
            caught_up = await runtime.transport.caught_up(timeout=settings.catch_up_seconds)
        except Exception:
            log.exception("could not tell whether the consumers caught up")
            caught_up = False
        if not caught_up:
            log.warning("sla-svc starts its timers before its consumers caught up (after %ss)",
                        settings.catch_up_seconds)
        for attempt in itertools.count(1):  # without timers no breach would ever fire: keep trying
            try:
                async with runtime.engine.connect() as conn:
                    loaded = await timers.start(conn)
                    await objectives.start(conn)
                break
            except Exception:
                log.exception("loading the SLA timers failed (attempt %d); retrying", attempt)
                await asyncio.sleep(min(30.0, 0.5 * 2 ** attempt))
        log.info("sla-svc timers running: %d clocks loaded", loaded)

    async def start_timers(runtime: ServiceRuntime) -> None:
        runtime.state["timers_task"] = asyncio.create_task(load_timers_when_caught_up(runtime))

    async def stop_timers(runtime: ServiceRuntime) -> None:
        task = runtime.state.pop("timers_task", None)
        if task is not None:
            task.cancel()
            await asyncio.wait([task], timeout=5)
        await timers.scheduler.stop()
        await objectives.scheduler.stop()

    runtime = ServiceRuntime(name=NAME, settings=settings, metadata=metadata, migrations_dir=MIGRATIONS,
                             transport=transport, on_start=[start_timers], on_stop=[stop_timers])
    timers = ClockTimers(runtime.uow, concurrency=settings.timer_concurrency, batch_size=settings.timer_batch_size)
    objectives = AvailabilityObjectives(runtime.uow)
    runtime.dispatcher.handlers.update(subscriptions(IncidentEventHandlers(timers), objectives))
    runtime.state["timers"] = timers
    runtime.state["calendars"] = CalendarStore()
    return build_app(runtime, title="sla-svc", routers=[router, calendar_routes.router],
                     description="Service level agreements, live SLA clocks, warnings and breaches.")


def cli() -> None:
    settings = Settings()
    serve(create_app(settings), settings)


if __name__ == "__main__":
    cli()
