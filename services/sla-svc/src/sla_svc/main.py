"""sla-svc: app factory and command line."""

from pathlib import Path

from fastapi import FastAPI

from itsm_events import Transport
from itsm_runtime.service import ServiceRuntime, build_app, serve

from .api.routes import router
from .consumer import subscriptions
from .db.tables import metadata
from .handlers import ClockTimers, IncidentEventHandlers
from .settings import Settings

NAME = "sla-svc"
MIGRATIONS = Path(__file__).resolve().parents[2] / "migrations"


def create_app(settings: Settings | None = None, transport: Transport | None = None) -> FastAPI:
    settings = settings or Settings()
    timers: ClockTimers | None = None

    async def start_timers(runtime: ServiceRuntime) -> None:
        async with runtime.engine.connect() as conn:
            await timers.start(conn)

    async def stop_timers(runtime: ServiceRuntime) -> None:
        await timers.scheduler.stop()

    runtime = ServiceRuntime(name=NAME, settings=settings, metadata=metadata, migrations_dir=MIGRATIONS,
                             transport=transport, on_start=[start_timers], on_stop=[stop_timers])
    timers = ClockTimers(runtime.uow, concurrency=settings.timer_concurrency, batch_size=settings.timer_batch_size)
    runtime.dispatcher.handlers.update(subscriptions(IncidentEventHandlers(timers)))
    runtime.state["timers"] = timers
    return build_app(runtime, title="sla-svc", routers=[router],
                     description="Service level agreements, live SLA clocks, warnings and breaches.")


def cli() -> None:
    settings = Settings()
    serve(create_app(settings), settings)


if __name__ == "__main__":
    cli()
