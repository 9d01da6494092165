"""notify-svc on real PostgreSQL and Kafka: subscriptions, signed webhook deliveries, retries, the delivery log."""

import asyncio
import json
import socket
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa
import uvicorn
from standardwebhooks import Webhook, WebhookVerificationError

from itsm_events import Envelope, from_kafka, new_event, schemas, to_kafka, to_structured, topics
from itsm_runtime.testing import eventually, read_topic, running_app
from notify_svc.db import repository
from notify_svc.db.tables import deliveries
from notify_svc.main import create_app
from notify_svc.settings import Settings

MAX_ATTEMPTS = 4


# A webhook receiver on 127.0.0.1 ------------------------------------------------------


@dataclass(frozen=True)
class Reply:
    status: int = 200
    delay: float = 0.0
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Received:
    headers: dict[str, str]
    body: bytes
    at: float


class Receiver:
    """Records every request; each endpoint answers from its script, repeating the last reply."""

    def __init__(self):
        self.base_url = ""
        self.received: dict[str, list[Received]] = defaultdict(list)
        self._scripts: dict[str, list[Reply]] = {}

    def endpoint(self, *replies: int | Reply) -> str:
        path = f"/hooks/{uuid.uuid4().hex}"
        self._scripts[path] = [r if isinstance(r, Reply) else Reply(r) for r in replies] or [Reply()]
        return self.base_url + path

    def requests(self, url: str) -> list[Received]:
        return self.received[url.removeprefix(self.base_url)]

    async def __call__(self, scope, receive, send):
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        path = scope["path"]
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        self.received[path].append(Received(headers=headers, body=body, at=time.monotonic()))
        script = self._scripts.get(path, [Reply(404)])
        reply = script.pop(0) if len(script) > 1 else script[0]
        await asyncio.sleep(reply.delay)
        await send({"type": "http.response.start", "status": reply.status,
                    "headers": [(k.encode(), v.encode()) for k, v in reply.headers.items()]})
        await send({"type": "http.response.body", "body": b"ok"})


@pytest.fixture(scope="module")
async def receiver():
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    app = Receiver()
    app.base_url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    server = uvicorn.Server(uvicorn.Config(app, lifespan="off", log_level="warning", timeout_graceful_shutdown=1))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    await eventually(lambda: server.started)
    yield app
    server.should_exit = True
    await task


# The service and a producer acting as the other services -------------------------------


@pytest.fixture(scope="module")
async def app(service_settings):
    return create_app(service_settings(
        Settings, db_schema=f"notify_{uuid.uuid4().hex[:6]}", retry_base_seconds=0.05, retry_max_seconds=0.2,
        max_attempts=MAX_ATTEMPTS, delivery_timeout_seconds=0.5, sweep_seconds=1.0))


@pytest.fixture(scope="module")
async def client(app):
    async with running_app(app) as client:
        yield client


@pytest.fixture(scope="module")
def producer(kafka_producer):
    return kafka_producer


async def publish(producer, data, *, key: str, copies: int = 1) -> Envelope:
    """Put an event on its topic the way a service's outbox relay does (binary mode, keyed by aggregate)."""
    envelope = new_event(data, source="/test", subject=key)
    headers, value = to_kafka(envelope)
    for _ in range(copies):
        await producer.send_and_wait(topics.topic_for_type(envelope.type), value=value, key=key.encode(),
                                     headers=list(headers.items()))
    return envelope


def breach(service_id: str, customer_id: str | None = None) -> schemas.SlaBreached:
    now = datetime.now(UTC)
    return schemas.SlaBreached(clock_id=str(uuid.uuid4()), agreement_id=str(uuid.uuid4()),
                               incident_id=str(uuid.uuid4()), service_id=service_id, customer_id=customer_id,
                               metric="resolution", priority=2, deadline=now, breached_at=now)


def new_service() -> str:
    return f"svc-{uuid.uuid4().hex[:8]}"


async def subscribe(client, target: str, *, event_types=("itsm.sla.breached",), **filter) -> dict:
    body = {"channel": "webhook", "target": target, "event_types": list(event_types)}
    if filter:
        body["filter"] = filter
    response = await client.post("/v1/subscriptions", json=body)
    assert response.status_code == 201, response.text
    return response.json()


async def deliveries_of(client, subscription_id: str, **params) -> list[dict]:
    page = (await client.get("/v1/deliveries", params={"subscription_id": subscription_id, **params})).json()
    return page["items"]


async def settled(client, subscription_id: str, count: int = 1) -> list[dict]:
    """The subscription's deliveries once there are `count` and none is pending."""
    async def check():
        items = await deliveries_of(client, subscription_id)
        return items if len(items) == count and all(d["status"] != "pending" for d in items) else None

    return await eventually(check)


# Deliveries ------------------------------------------------------------------------------


async def test_breach_is_delivered_once_signed_with_the_cloudevent_in_structured_mode(client, receiver, producer):
    service = new_service()
    target = receiver.endpoint(200)
    subscription = await subscribe(client, target, service_id=service)
    envelope = await publish(producer, breach(service), key=service)

    [delivery] = await settled(client, subscription["id"])
    assert delivery["status"] == "delivered" and delivery["attempts"] == 1 and delivery["last_status_code"] == 200
    assert delivery["event_id"] == envelope.id and delivery["event_type"] == "itsm.sla.breached"
    assert delivery["delivered_at"] and delivery["next_attempt_at"] is None
    await asyncio.sleep(0.3)
    [request] = receiver.requests(target)
    assert request.headers["content-type"] == "application/cloudevents+json"
    assert request.headers["webhook-id"] == delivery["id"]
    event = Webhook(subscription["secret"]).verify(request.body, request.headers)
    assert event["specversion"] == "1.0" and event["id"] == envelope.id and event["type"] == "itsm.sla.breached"
    assert event["source"] == "/test" and event["datacontenttype"] == "application/json"
    assert event["data"]["service_id"] == service and event["data"]["clock_id"] == envelope.data["clock_id"]
    with pytest.raises(WebhookVerificationError):
        Webhook(f"whsec_{'A' * 44}").verify(request.body, request.headers)

    detail = (await client.get(f"/v1/deliveries/{delivery['id']}")).json()
    assert [(a["number"], a["status_code"]) for a in detail["attempt_log"]] == [(1, 200)]


async def test_server_errors_are_retried_until_the_receiver_accepts(client, receiver, producer):
    service = new_service()
    target = receiver.endpoint(500, 503, 200)
    subscription = await subscribe(client, target, service_id=service)
    await publish(producer, breach(service), key=service)

    [delivery] = await settled(client, subscription["id"])
    assert delivery["status"] == "delivered" and delivery["attempts"] == 3
    requests = receiver.requests(target)
    assert len(requests) == 3
    assert {r.headers["webhook-id"] for r in requests} == {delivery["id"]}, "the id is stable across retries"
    for request in requests:
        Webhook(subscription["secret"]).verify(request.body, request.headers)
    detail = (await client.get(f"/v1/deliveries/{delivery['id']}")).json()
    assert [a["status_code"] for a in detail["attempt_log"]] == [500, 503, 200]


@pytest.mark.parametrize("status", [400, 410])
async def test_client_errors_fail_at_once_without_retry(client, receiver, producer, status):
    service = new_service()
    target = receiver.endpoint(status, 200)
    subscription = await subscribe(client, target, service_id=service)
    await publish(producer, breach(service), key=service)

    [delivery] = await settled(client, subscription["id"])
    assert delivery["status"] == "failed" and delivery["attempts"] == 1 and delivery["last_status_code"] == status
    await asyncio.sleep(0.5)
    assert len(receiver.requests(target)) == 1


async def test_too_many_requests_waits_for_retry_after(client, receiver, producer):
    service = new_service()
    target = receiver.endpoint(Reply(429, headers={"retry-after": "1"}), 200)
    subscription = await subscribe(client, target, service_id=service)
    await publish(producer, breach(service), key=service)

    [delivery] = await settled(client, subscription["id"])
    assert delivery["status"] == "delivered" and delivery["attempts"] == 2
    first, second = receiver.requests(target)
    assert second.at - first.at >= 0.9


async def test_a_receiver_that_times_out_is_retried(client, receiver, producer):
    service = new_service()
    target = receiver.endpoint(Reply(200, delay=1.5), 200)
    subscription = await subscribe(client, target, service_id=service)
    await publish(producer, breach(service), key=service)

    [delivery] = await settled(client, subscription["id"])
    assert delivery["status"] == "delivered" and delivery["attempts"] == 2
    log = (await client.get(f"/v1/deliveries/{delivery['id']}")).json()["attempt_log"]
    assert log[0]["status_code"] is None and log[0]["error"] == "timeout"
    assert log[1]["status_code"] == 200


async def test_retries_end_dead_with_a_delivery_dead_event_only_for_who_asks(client, receiver, producer,
                                                                             kafka_bootstrap):
    service = new_service()
    failing = await subscribe(client, receiver.endpoint(503), service_id=service)
    wildcard_target = receiver.endpoint(200)
    await subscribe(client, wildcard_target, event_types=["*"])
    dead_target = receiver.endpoint(200)
    watcher = await subscribe(client, dead_target, event_types=["itsm.notify.delivery_dead"])
    envelope = await publish(producer, breach(service), key=service)

    [delivery] = await settled(client, failing["id"])
    assert delivery["status"] == "dead" and delivery["attempts"] == MAX_ATTEMPTS
    assert delivery["last_status_code"] == 503

    def dead_event(records):
        return [r for r in records if r.key == delivery["id"].encode()]

    [record] = dead_event(await read_topic(kafka_bootstrap, topics.NOTIFY, until=dead_event))
    dead = from_kafka(dict(record.headers), record.value)
    assert dead.type == "itsm.notify.delivery_dead"
    assert dead.data == {"delivery_id": delivery["id"], "subscription_id": failing["id"],
                         "event_id": envelope.id, "event_type": "itsm.sla.breached", "attempts": MAX_ATTEMPTS,
                         "last_status_code": 503}

    async def watcher_got_it():
        return [d for d in await deliveries_of(client, watcher["id"], status="delivered") if d["event_id"] == dead.id]

    await eventually(watcher_got_it)
    [request] = [r for r in receiver.requests(dead_target) if json.loads(r.body)["id"] == dead.id]
    assert json.loads(request.body)["data"]["delivery_id"] == delivery["id"]
    wildcard_types = [json.loads(r.body)["type"] for r in receiver.requests(wildcard_target)]
    assert "itsm.sla.breached" in wildcard_types
    assert not [t for t in wildcard_types if t.startswith("itsm.notify.")], "no loop through a '*' subscription"


async def test_a_redelivered_kafka_record_gives_one_delivery(client, receiver, producer):
    service = new_service()
    target = receiver.endpoint(200)
    subscription = await subscribe(client, target, service_id=service)
    duplicated = await publish(producer, breach(service), key=service, copies=3)
    # same key, same partition: once the marker is delivered the copies before it were consumed
    marker = await publish(producer, breach(service), key=service)

    await eventually(lambda: deliveries_of(client, subscription["id"], event_id=marker.id, status="delivered"))
    items = await deliveries_of(client, subscription["id"])
    assert [d["event_id"] for d in items] == [duplicated.id, marker.id]
    await settled(client, subscription["id"], count=2)
    await asyncio.sleep(0.3)
    assert sorted(json.loads(r.body)["id"] for r in receiver.requests(target)) == sorted([duplicated.id, marker.id])


async def test_fanning_out_the_same_event_twice_keeps_one_delivery_per_subscription(client, app, receiver):
    """Even past the inbox (a replay, a second consumer), (event, subscription) is unique."""
    service = new_service()
    subscription = await subscribe(client, receiver.endpoint(200), service_id=service)
    envelope = new_event(breach(service), source="/test", subject=service)
    runtime = app.state.runtime
    fan_out = runtime.dispatcher.handlers["*"]
    for _ in range(2):
        async with runtime.uow() as uow:
            await fan_out(envelope, None, uow)
            await uow.commit()
    await settled(client, subscription["id"])
    async with runtime.engine.connect() as conn:
        count = (await conn.execute(sa.select(sa.func.count()).select_from(deliveries)
                                    .where(deliveries.c.event_id == envelope.id,
                                           deliveries.c.subscription_id == subscription["id"]))).scalar_one()
    assert count == 1


async def _unscheduled_delivery(runtime, subscription_id: str) -> str:
    """A pending, due delivery written straight to the table, unknown to the worker's scheduler."""
    envelope = new_event(breach(new_service()), source="/test")
    now = datetime.now(UTC)
    async with runtime.uow() as uow:
        [(delivery_id, _)] = await repository.add_deliveries(uow.conn, [{
            "id": str(uuid.uuid4()), "subscription_id": subscription_id, "event_id": envelope.id,
            "event_type": envelope.type, "body": to_structured(envelope), "status": "pending", "attempts": 0,
            "next_attempt_at": now, "created_at": now, "updated_at": now}])
        await uow.commit()
    return delivery_id


async def test_concurrent_attempts_send_a_delivery_once(client, app, receiver):
    target = receiver.endpoint(Reply(200, delay=0.2))
    subscription = await subscribe(client, target, service_id=new_service())
    runtime = app.state.runtime
    delivery_id = await _unscheduled_delivery(runtime, subscription["id"])
    worker = runtime.state["worker"]
    await asyncio.gather(*(worker.attempt(delivery_id) for _ in range(5)))

    [delivery] = await settled(client, subscription["id"])
    assert delivery["status"] == "delivered" and delivery["attempts"] == 1
    assert len(receiver.requests(target)) == 1


async def test_pending_deliveries_are_resumed_when_the_worker_starts(client, app, receiver):
    target = receiver.endpoint(200)
    subscription = await subscribe(client, target, service_id=new_service())
    runtime = app.state.runtime
    worker = runtime.state["worker"]
    await worker.stop(runtime)
    delivery_id = await _unscheduled_delivery(runtime, subscription["id"])
    await worker.start(runtime)

    [delivery] = await settled(client, subscription["id"])
    assert delivery["id"] == delivery_id and delivery["status"] == "delivered"
    assert len(receiver.requests(target)) == 1


async def test_filters_pick_deliveries_by_service_and_customer(client, receiver, producer):
    service_a, service_b = new_service(), new_service()
    to_a = await subscribe(client, receiver.endpoint(200), service_id=service_a)
    to_b = await subscribe(client, receiver.endpoint(200), service_id=service_b)
    to_a_globex = await subscribe(client, receiver.endpoint(200), service_id=service_a, customer_id="globex")
    to_a_acme = await subscribe(client, receiver.endpoint(200), service_id=service_a, customer_id="acme")
    for_a = await publish(producer, breach(service_a, "acme"), key="same-key")
    for_b = await publish(producer, breach(service_b), key="same-key")

    [delivered_b] = await settled(client, to_b["id"])
    [delivered_a] = await settled(client, to_a["id"])
    [delivered_acme] = await settled(client, to_a_acme["id"])
    assert delivered_a["event_id"] == delivered_acme["event_id"] == for_a.id
    assert delivered_b["event_id"] == for_b.id
    assert await deliveries_of(client, to_a_globex["id"]) == []


async def test_the_delivery_log_filters_and_pages(client, receiver, producer):
    service = new_service()
    subscription = await subscribe(client, receiver.endpoint(200), service_id=service)
    sent = [await publish(producer, breach(service), key=service) for _ in range(3)]
    await settled(client, subscription["id"], count=3)

    seen, cursor = [], None
    while True:
        params = {"subscription_id": subscription["id"], "limit": 2} | ({"cursor": cursor} if cursor else {})
        page = (await client.get("/v1/deliveries", params=params)).json()
        seen += [d["event_id"] for d in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert seen == [e.id for e in sent]
    by_event = await deliveries_of(client, subscription["id"], event_id=sent[1].id)
    assert [d["event_id"] for d in by_event] == [sent[1].id]
    assert await deliveries_of(client, subscription["id"], status="failed") == []
    assert (await client.get("/v1/deliveries", params={"status": "lost"})).status_code == 422
    assert (await client.get("/v1/deliveries", params={"cursor": "garbage!"})).status_code == 400
    assert (await client.get(f"/v1/deliveries/{uuid.uuid4()}")).status_code == 404


# Subscriptions ---------------------------------------------------------------------------


async def test_the_secret_is_shown_only_when_the_subscription_is_created(client, receiver):
    created = await subscribe(client, receiver.endpoint(), event_types=["itsm.sla.breached", "itsm.sla.warning"],
                              service_id="svc-pay")
    assert created["secret"].startswith("whsec_")
    assert created["channel"] == "webhook" and created["filter"] == {"service_id": "svc-pay", "customer_id": None}
    fetched = (await client.get(f"/v1/subscriptions/{created['id']}")).json()
    assert "secret" not in fetched
    assert fetched == {k: v for k, v in created.items() if k != "secret"}
    listed, cursor = [], None
    while True:
        params = {"limit": 2} | ({"cursor": cursor} if cursor else {})
        page = (await client.get("/v1/subscriptions", params=params)).json()
        listed += page["items"]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert fetched in listed and all("secret" not in s for s in listed)


async def test_idempotency_key_returns_the_first_subscription_and_its_secret(client, receiver):
    body = {"channel": "webhook", "target": receiver.endpoint(), "event_types": ["*"]}
    key = str(uuid.uuid4())
    first = await client.post("/v1/subscriptions", json=body, headers={"Idempotency-Key": key})
    second = await client.post("/v1/subscriptions", json=body, headers={"Idempotency-Key": key})
    assert first.status_code == second.status_code == 201
    assert second.json() == first.json()


async def test_deleting_a_subscription_stops_its_deliveries(client, receiver, producer):
    service = new_service()
    deleted = await subscribe(client, receiver.endpoint(200), service_id=service)
    kept = await subscribe(client, receiver.endpoint(200), service_id=service)
    assert (await client.delete(f"/v1/subscriptions/{deleted['id']}")).status_code == 204
    assert (await client.get(f"/v1/subscriptions/{deleted['id']}")).status_code == 404
    assert (await client.delete(f"/v1/subscriptions/{deleted['id']}")).status_code == 404
    await publish(producer, breach(service), key=service)
    await settled(client, kept["id"])
    assert await deliveries_of(client, deleted["id"]) == []


@pytest.mark.parametrize("channel", ["email", "chat"])
async def test_other_channels_are_not_supported_yet(client, channel):
    response = await client.post("/v1/subscriptions", json={"channel": channel, "target": "ops@example.com",
                                                            "event_types": ["itsm.sla.breached"]})
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    assert "not supported yet" in response.json()["detail"]


@pytest.mark.parametrize("body", [
    {"channel": "webhook", "target": "https://example.com/h"},
    {"channel": "webhook", "target": "https://example.com/h", "event_types": []},
    {"channel": "webhook", "target": "ftp://example.com/h", "event_types": ["*"]},
    {"channel": "webhook", "target": "not a url", "event_types": ["*"]},
    {"channel": "webhook", "target": "https://example.com/h", "event_types": ["sla breached"]},
    {"channel": "sms", "target": "+15550100", "event_types": ["*"]},
    {"channel": "webhook", "target": "https://example.com/h", "event_types": ["*"], "filter": {"team": "x"}},
    {"channel": "webhook", "target": "https://example.com/h", "event_types": ["*"], "secret": "whsec_mine"},
])
async def test_bad_input_is_a_problem_with_field_errors(client, body):
    response = await client.post("/v1/subscriptions", json=body)
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["status"] == 422 and problem["errors"]


async def test_unknown_subscription_is_404_problem(client):
    response = await client.get(f"/v1/subscriptions/{uuid.uuid4()}")
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"


async def test_health_readiness_and_openapi(client):
    assert (await client.get("/healthz")).json()["status"] == "ok"
    assert (await client.get("/readyz")).json()["checks"] == {"database": True, "bus": True}
    paths = (await client.get("/openapi.json")).json()["paths"]
    assert {"/v1/subscriptions", "/v1/subscriptions/{subscription_id}", "/v1/deliveries",
            "/v1/deliveries/{delivery_id}"} <= set(paths)
