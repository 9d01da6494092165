"""Helpers for integration and end-to-end tests against real PostgreSQL and Kafka."""

import asyncio
import json
import socket
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager, nullcontext
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx
import uvicorn
from aiokafka import AIOKafkaConsumer, TopicPartition
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route


async def create_database(server_url: str, *, prefix: str = "test") -> str:
    """Create a fresh database on the server of `server_url`; return its postgresql:// URL."""
    import uuid

    import asyncpg

    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    conn = await asyncpg.connect(server_url)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return server_url.rsplit("/", 1)[0] + "/" + name


@asynccontextmanager
async def running_app(app) -> AsyncIterator[httpx.AsyncClient]:
    """Run an app's lifespan (migrations, relay, consumers) and talk to it in-process over ASGI."""
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            yield client


async def eventually(check: Callable, *, timeout: float = 20.0, interval: float = 0.1):
    """Await `check()` until it returns a truthy value; fail with the last value after `timeout`."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    last = None
    while loop.time() < deadline:
        last = check()
        if asyncio.iscoroutine(last):
            last = await last
        if last:
            return last
        await asyncio.sleep(interval)
    raise AssertionError(f"condition not met within {timeout}s (last value: {last!r})")


async def read_topic(bootstrap: str, topic: str, *, until: Callable[[list], bool],
                     timeout: float = 20.0) -> list:
    """Read `topic` from the beginning (no consumer group) until `until(records)` holds."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    records: list = []
    try:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        partitions = None
        while partitions is None and loop.time() < deadline:
            partitions = consumer.partitions_for_topic(topic)
            if partitions is None:
                await consumer._client.force_metadata_update()  # noqa: SLF001 - topic may be brand new
                await asyncio.sleep(0.2)
        assert partitions, f"topic {topic} does not exist"
        tps = [TopicPartition(topic, p) for p in partitions]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        while loop.time() < deadline:
            batch = await consumer.getmany(timeout_ms=200)
            for tp_records in batch.values():
                records.extend(tp_records)
            if until(records):
                return records
        raise AssertionError(f"{topic}: condition not met within {timeout}s ({len(records)} records read)")
    finally:
        await consumer.stop()


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes
    at: datetime

    def json(self) -> dict:
        return json.loads(self.body)


@asynccontextmanager
async def served(app) -> AsyncIterator[str]:
    """Serve an app whose lifespan already runs over real HTTP on 127.0.0.1 (for streams): yields its base URL."""
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, access_log=False,
                                           lifespan="off"))
    server.capture_signals = nullcontext
    task = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


class HttpRecorder:
    """A local HTTP endpoint on 127.0.0.1 that records every POST it gets."""

    path = "/hook"

    def __init__(self, respond: Callable[[int], int] = lambda n: 204):
        self.requests: list[Received] = []
        self._respond = respond
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}{self.path}"

    async def _record(self, request: Request) -> Response:
        body = await request.body()
        self.requests.append(Received(headers=dict(request.headers), body=body, at=datetime.now(UTC)))
        return Response(status_code=self._respond(len(self.requests)))

    async def __aenter__(self):
        app = Starlette(routes=[Route(self.path, self._record, methods=["POST"])])
        self._server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, log_config=None,
                                                     access_log=False, lifespan="off"))
        self._server.capture_signals = nullcontext
        self._task = asyncio.create_task(self._server.serve())
        while not self._server.started:
            await asyncio.sleep(0.02)
        return self

    async def __aexit__(self, *exc):
        self._server.should_exit = True
        await self._task


class WebhookReceiver(HttpRecorder):
    """Receives webhook deliveries (CloudEvents in structured mode)."""

    def matching(self, *, event_type: str, incident_id: str) -> list[Received]:
        return [r for r in self.requests
                if r.json()["type"] == event_type and r.json()["data"].get("incident_id") == incident_id]


@dataclass(frozen=True)
class ExportedSpan:
    service: str
    name: str
    trace_id: str
    span_id: str
    parent_span_id: str


class OtlpReceiver(HttpRecorder):
    """A minimal OTLP/HTTP traces endpoint: decodes the protobuf exports it receives."""

    path = "/v1/traces"

    def __init__(self):
        super().__init__(respond=lambda n: 200)

    def spans(self) -> list[ExportedSpan]:
        from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

        found = []
        for received in list(self.requests):
            export = ExportTraceServiceRequest.FromString(received.body)
            for resource_spans in export.resource_spans:
                attributes = {a.key: a.value.string_value for a in resource_spans.resource.attributes}
                for scope_spans in resource_spans.scope_spans:
                    found += [ExportedSpan(service=attributes.get("service.name", ""), name=span.name,
                                           trace_id=span.trace_id.hex(), span_id=span.span_id.hex(),
                                           parent_span_id=span.parent_span_id.hex())
                              for span in scope_spans.spans]
        return found


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_log(path: Path, predicate, timeout: float = 20.0) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for line in path.read_text().splitlines():
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if predicate(record):
                return record
        time.sleep(0.2)
    raise AssertionError(f"no matching log line in {path}")
