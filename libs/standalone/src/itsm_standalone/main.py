"""Standalone mode: all five services in one process, embedded PostgreSQL, the in-process bus.

`make run` starts it. Data lives under ITSM_DATA_DIR (default .data) between runs; killing the
process loses nothing: outbox rows not yet delivered are delivered on the next start, and
SLA timers are reloaded from the database.
"""

import asyncio
import contextlib
import logging
import signal
from pathlib import Path

import uvicorn
from pydantic_settings import BaseSettings, SettingsConfigDict

from itsm_events import InProcessTransport
from itsm_runtime import pg
from itsm_runtime.telemetry import configure_logging, configure_tracing

from .services import SERVICES

log = logging.getLogger("itsm.standalone")


class StandaloneSettings(BaseSettings):
    """ITSM_* environment variables of the standalone launcher."""

    model_config = SettingsConfigDict(env_prefix="ITSM_", extra="ignore")

    data_dir: Path = Path(".data")
    pg_port: int = 15432
    database_url: str | None = None
    host: str = "127.0.0.1"
    port_offset: int = 0
    log_json: bool = False


class _Server(uvicorn.Server):
    """A uvicorn server that leaves signal handling to the launcher (five share one process)."""

    @contextlib.contextmanager
    def capture_signals(self):
        yield


async def run(settings: StandaloneSettings) -> None:
    database_url = settings.database_url or pg.start(settings.data_dir / "pg", settings.pg_port)
    try:
        await serve_all(settings, database_url)
    finally:
        if settings.database_url is None:
            pg.stop(settings.data_dir / "pg")  # stop the embedded server it started (not after SIGKILL)


async def serve_all(settings: StandaloneSettings, database_url: str) -> None:
    configure_logging(level="INFO", json_logs=settings.log_json, service="itsm-standalone")
    configure_tracing(service="itsm-standalone", otlp_endpoint=None)
    transport = InProcessTransport()
    servers = []
    for spec in SERVICES:
        service_settings = spec.settings_class()(database_url=database_url, bus="inprocess", host=settings.host,
                                                 port=spec.port + settings.port_offset,
                                                 log_json=settings.log_json)
        app = spec.create_app()(service_settings, transport=transport)
        config = uvicorn.Config(app, host=settings.host, port=spec.port + settings.port_offset, log_config=None,
                                access_log=False, lifespan="on")
        servers.append(_Server(config))

    loop = asyncio.get_running_loop()

    def shutdown() -> None:
        for server in servers:
            server.should_exit = True

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, shutdown)

    tasks = [asyncio.create_task(server.serve()) for server in servers]
    while not all(server.started for server in servers):
        if any(task.done() for task in tasks):
            shutdown()
            await asyncio.gather(*tasks, return_exceptions=True)
            raise SystemExit("a service failed to start; see the log above")
        await asyncio.sleep(0.05)
    await transport.start()  # every service has subscribed: open delivery
    log.info("ITSM platform running standalone: %s", ", ".join(
        f"{spec.name} http://{settings.host}:{spec.port + settings.port_offset}" for spec in SERVICES))
    await asyncio.gather(*tasks)


def cli() -> None:
    asyncio.run(run(StandaloneSettings()))


if __name__ == "__main__":
    cli()
