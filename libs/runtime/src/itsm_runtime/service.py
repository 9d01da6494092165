"""The one runtime every service is built on: engine, migrations, outbox relay, consumer, HTTP app."""

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated

import sqlalchemy as sa
from fastapi import APIRouter, Depends, FastAPI, Header, Request
from fastapi.responses import JSONResponse, PlainTextResponse
from itsm_events import Dispatcher, InProcessTransport, KafkaTransport, OutboxRelay, Transport, UnitOfWork
from itsm_events.bus import Handler
from itsm_events.outbox import dead_letter_table, messaging_tables
from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
from prometheus_client import CONTENT_TYPE_LATEST, Counter, Histogram, generate_latest
from pydantic import BaseModel

from .db import create_engine, migrate, ping
from .errors import install_problem_handlers, problem_response
from .idempotency import idempotency_table, run_idempotent
from .settings import ServiceSettings
from .telemetry import configure_logging, configure_tracing

log = logging.getLogger("itsm.service")

HTTP_REQUESTS = Counter("itsm_http_requests_total", "HTTP requests", ["service", "method", "route", "status"])
HTTP_LATENCY = Histogram("itsm_http_request_duration_seconds", "HTTP request latency", ["service", "method", "route"])

Hook = Callable[["ServiceRuntime"], Awaitable[None]]


def platform_tables(metadata: sa.MetaData) -> dict[str, sa.Table]:
    """Tables every service has beside its own: outbox, inbox, idempotency keys."""
    outbox, inbox = messaging_tables(metadata)
    return {"outbox": outbox, "inbox": inbox, "dead_letters": dead_letter_table(metadata),
            "idempotency": idempotency_table(metadata)}


class ServiceRuntime:
    """Everything a service needs at run time, wired by parameter so tests can pass their own."""

    def __init__(self, *, name: str, settings: ServiceSettings, metadata: sa.MetaData, migrations_dir: Path,
                 handlers: dict[str, Handler] | None = None, transport: Transport | None = None,
                 on_start: Iterable[Hook] = (), on_stop: Iterable[Hook] = ()):
        self.name = name
        self.settings = settings
        self.schema = settings.db_schema or name.replace("-", "_")
        self.metadata = metadata
        self.tables = metadata.tables
        self.migrations_dir = migrations_dir
        self.engine = create_engine(settings.database_url, schema=self.schema, pool_size=settings.db_pool_size)
        self.transport: Transport = transport or self._default_transport()
        self.relay = OutboxRelay(engine=self.engine, outbox=self.tables["outbox"], transport=self.transport,
                                 service=name, dead_letters=self.tables["dead_letters"])
        self.dispatcher = Dispatcher(group=settings.consumer_group or name, handlers=dict(handlers or {}),
                                     uow_factory=self.uow, inbox=self.tables["inbox"], transport=self.transport,
                                     dead_letters=self.tables["dead_letters"],
                                     max_attempts=settings.consumer_max_attempts)
        self._on_start = list(on_start)
        self._on_stop = list(on_stop)
        self._owns_transport = transport is None
        self.state: dict = {}

    def _default_transport(self) -> Transport:
        if self.settings.bus == "inprocess":
            return InProcessTransport()
        return KafkaTransport(bootstrap_servers=self.settings.kafka_bootstrap_servers, client_id=self.name,
                              partitions=self.settings.kafka_partitions)

    def uow(self) -> UnitOfWork:
        return UnitOfWork(self.engine, self.tables["outbox"], source=f"/{self.name}",
                          on_commit=self.relay.wakeup.set)

    async def start(self) -> None:
        try:
            await self._start()
        except BaseException:
            await self.stop()
            raise

    async def _start(self) -> None:
        await migrate(self.engine, migrations_dir=self.migrations_dir, schema=self.schema)
        if self.dispatcher.handlers:
            self.transport.subscribe(sorted(self.dispatcher.topics), self.dispatcher.group, self.dispatcher.dispatch)
        if self._owns_transport:
            await self.transport.start()
        for hook in self._on_start:
            await hook(self)
        self.relay.start()
        log.info("%s started (schema %s, bus %s)", self.name, self.schema, type(self.transport).__name__)

    async def stop(self) -> None:
        await self.relay.stop()
        for hook in reversed(self._on_stop):
            await hook(self)
        if self._owns_transport:
            await self.transport.stop()
        await self.engine.dispose()

    async def create_once(self, *, key: str | None, scope: str, request: BaseModel,
                          create: Callable[[UnitOfWork], Awaitable[BaseModel]]) -> JSONResponse:
        """Run a creating command in one unit of work, at most once per `Idempotency-Key`: 201 with what it made."""
        async with self.uow() as uow:
            async def action():
                return 201, (await create(uow)).model_dump(mode="json")

            status, body = await run_idempotent(uow.conn, self.tables["idempotency_keys"], key=key, scope=scope,
                                                request=request.model_dump(mode="json"), action=action)
            await uow.commit()
        return JSONResponse(body, status_code=status)

    async def ready(self) -> dict[str, bool]:
        database, bus = await asyncio.gather(ping(self.engine), self.transport.healthy())
        return {"database": database, "bus": bus}


def get_runtime(request: Request) -> ServiceRuntime:
    return request.app.state.runtime


RuntimeDep = Annotated[ServiceRuntime, Depends(get_runtime)]
IdempotencyKey = Annotated[str | None, Header(description="A retry with the same key returns the first result")]


class _MetricsMiddleware:
    """Counts requests by route template (pure ASGI: no per-request task overhead)."""

    def __init__(self, app, service: str):
        self.app = app
        self.service = service

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        started = time.perf_counter()
        status_holder = {"status": 500}

        async def send_wrapper(message):
            if message["type"] == "http.response.start":
                status_holder["status"] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            route = scope.get("route")
            path = getattr(route, "path", "unmatched")
            HTTP_REQUESTS.labels(self.service, scope["method"], path, str(status_holder["status"])).inc()
            HTTP_LATENCY.labels(self.service, scope["method"], path).observe(time.perf_counter() - started)


def build_app(runtime: ServiceRuntime, *, title: str, routers: Iterable[APIRouter], description: str = "") -> FastAPI:
    """The FastAPI app of a service: its routers plus health, readiness, metrics and problem+json."""
    settings = runtime.settings
    configure_logging(level=settings.log_level, json_logs=settings.log_json, service=runtime.name)
    configure_tracing(service=runtime.name, otlp_endpoint=settings.otlp_endpoint)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        await runtime.start()
        try:
            yield
        finally:
            await runtime.stop()

    app = FastAPI(title=title, description=description, version="0.1.0", lifespan=lifespan)
    app.state.runtime = runtime
    install_problem_handlers(app)
    for router in routers:
        app.include_router(router)

    @app.get("/healthz", tags=["operations"])
    async def healthz():
        """Liveness: the process answers."""
        return {"status": "ok", "service": runtime.name}

    @app.get("/readyz", tags=["operations"])
    async def readyz():
        """Readiness: the database and the bus are reachable."""
        checks = await runtime.ready()
        if all(checks.values()):
            return {"status": "ok", "checks": checks}
        failing = ", ".join(name for name, ok in checks.items() if not ok)
        return problem_response(503, detail=f"not ready: {failing} unreachable", instance="/readyz", checks=checks)

    @app.get("/metrics", tags=["operations"], response_class=PlainTextResponse)
    async def metrics():
        """Prometheus text exposition."""
        return PlainTextResponse(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    app.add_middleware(_MetricsMiddleware, service=runtime.name)
    FastAPIInstrumentor.instrument_app(app, excluded_urls="healthz,readyz,metrics", exclude_spans=["receive", "send"])
    return app


def serve(app: FastAPI, settings: ServiceSettings) -> None:
    """Run one service with uvicorn on its configured host and port."""
    import uvicorn

    uvicorn.run(app, host=settings.host, port=settings.port, log_config=None, access_log=False)
