"""sla-svc: app factory and command line."""

import argparse
import asyncio
import dataclasses
import itertools
import json
import logging

from fastapi import FastAPI

from itsm_events import Transport
from itsm_runtime.service import ServiceRuntime, build_app, serve

from .api import calendar_routes
from .api.routes import router
from .objectives import Objectives
from .calendars import CalendarStore
from .compliance import Compliance
from .consumer import subscriptions
from .db import MIGRATIONS
from .db.tables import metadata
from .domain.clock import Clock
from .handlers import Clocks
from .rebuild import rebuild
from .period_close import PeriodClosing
from .settings import Settings

NAME = "sla-svc"
log = logging.getLogger("sla_svc")


def create_app(settings: Settings | None = None, transport: Transport | None = None) -> FastAPI:
    settings = settings or Settings()
    clocks: Clocks | None = None

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
                    loaded = await clocks.start(conn)
                    await objectives.start(conn)
                    await period_closing.start(conn)
                    await compliance.start(conn)
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
        await clocks.scheduler.stop()
        await objectives.scheduler.stop()
        await period_closing.scheduler.stop()
        await compliance.scheduler.stop()

    runtime = ServiceRuntime(name=NAME, settings=settings, metadata=metadata, migrations_dir=MIGRATIONS,
                             transport=transport, on_start=[start_timers], on_stop=[stop_timers])
    calendars = CalendarStore()
    compliance = Compliance(runtime.uow, calendars)
    objectives = Objectives(runtime.uow, calendars, checked=compliance.store)

    def clocks_changed(changed: list[Clock]) -> None:
        objectives.check_soon({c.agreement_id for c in changed if c.objective_id is not None})  # ratio tickets
        compliance.changed({c.agreement_id for c in changed})

    clocks = Clocks(runtime.uow, calendars, concurrency=settings.timer_concurrency,
                    batch_size=settings.timer_batch_size, changed=clocks_changed,
                    published_through=runtime.relay.published_through)
    period_closing = PeriodClosing(runtime.uow, calendars)
    runtime.dispatcher.handlers.update(subscriptions(clocks, objectives))
    runtime.state["clocks"] = clocks
    runtime.state["calendars"] = calendars
    runtime.state["compliance"] = compliance
    runtime.state["objectives"] = objectives
    runtime.state["period_closing"] = period_closing  # routes schedule the agreements they create
    return build_app(runtime, title="sla-svc", routers=[router, calendar_routes.router],
                     description="Service level agreements, live SLA clocks, warnings and breaches.")


def cli(argv: list[str] | None = None) -> None:
    """`sla-svc` serves the API; `sla-svc rebuild --schema NAME` rebuilds the SLA state from the topics."""
    parser = argparse.ArgumentParser(prog="sla-svc", description=__doc__)
    commands = parser.add_subparsers(dest="command")
    rebuild_cmd = commands.add_parser("rebuild", help="replay the consumed topics into a fresh schema")
    rebuild_cmd.add_argument("--schema", required=True, help="the schema to build (not the one in use)")
    rebuild_cmd.add_argument("--replace", action="store_true", help="drop the schema first if it exists")
    rebuild_cmd.add_argument("--processes", type=int, default=None,
                             help="replay the partitions in up to N processes (default: two per core; 0: in this one)")
    args = parser.parse_args(argv)
    settings = Settings()
    if args.command == "rebuild":
        report = asyncio.run(rebuild(settings, schema=args.schema, replace=args.replace, processes=args.processes))
        print(json.dumps({**dataclasses.asdict(report), "records_per_second": round(report.records_per_second)}))
        return
    serve(create_app(settings), settings)


if __name__ == "__main__":
    cli()
