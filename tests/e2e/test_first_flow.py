"""The first flow end to end: incident -> SLA clock -> breach -> signed webhook, over real Kafka."""

import asyncio
import secrets
import uuid
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest
from aiokafka import AIOKafkaProducer
from standardwebhooks import Webhook

from itsm_events import topics
from itsm_runtime.testing import eventually, read_topic

from itsm_runtime.testing import wait_for_log

pytestmark = pytest.mark.e2e

BREACH = "itsm.sla.breached"


async def setup_service(stack, http, receiver, *, within: str) -> tuple[str, str]:
    """An agreement with one P1 resolution target and a webhook subscription for its breaches."""
    service_id = f"svc-{uuid.uuid4().hex[:8]}"
    agreement = await http.post(f"{stack.url('sla-svc')}/v1/agreements", json={
        "name": "Payments P1", "service_id": service_id,
        "targets": [{"metric": "resolution", "priority": 1, "within": within}]})
    assert agreement.status_code == 201, agreement.text
    subscription = await http.post(f"{stack.url('notify-svc')}/v1/subscriptions", json={
        "channel": "webhook", "target": receiver.url, "event_types": [BREACH, "itsm.sla.clock_stopped"],
        "filter": {"service_id": service_id}})
    assert subscription.status_code == 201, subscription.text
    secret = subscription.json()["secret"]
    assert secret.startswith("whsec_")
    return service_id, secret


async def open_p1(stack, http, service_id: str, **headers) -> dict:
    response = await http.post(f"{stack.url('incident-svc')}/v1/incidents", headers=headers, json={
        "title": "Card payments failing", "service_id": service_id, "impact": 1, "urgency": 1})
    assert response.status_code == 201, response.text
    return response.json()


async def clocks(stack, http, incident_id: str) -> list[dict]:
    response = await http.get(f"{stack.url('sla-svc')}/v1/clocks", params={"incident_id": incident_id})
    return response.json()["items"]


async def test_p1_incident_produces_a_signed_breach_webhook_at_the_deadline(stack, http, receiver):
    service_id, secret = await setup_service(stack, http, receiver, within="PT3S")
    incident = await open_p1(stack, http, service_id)
    deadline = datetime.fromisoformat(incident["opened_at"]) + timedelta(seconds=3)

    received = await eventually(lambda: receiver.matching(event_type=BREACH, incident_id=incident["id"]),
                                timeout=20)
    assert len(received) == 1
    webhook = received[0]
    payload = Webhook(secret).verify(webhook.body, webhook.headers)
    assert payload["type"] == BREACH and payload["specversion"] == "1.0"
    assert webhook.headers["content-type"].startswith("application/cloudevents+json")
    assert datetime.fromisoformat(payload["data"]["breached_at"]) == deadline
    assert (webhook.at - deadline).total_seconds() < 1.0, f"webhook arrived {webhook.at - deadline} after deadline"
    await asyncio.sleep(1)
    assert len(receiver.matching(event_type=BREACH, incident_id=incident["id"])) == 1


async def test_incident_resolved_in_time_has_a_met_clock_and_no_breach(stack, http, receiver):
    service_id, _ = await setup_service(stack, http, receiver, within="PT4S")
    incident = await open_p1(stack, http, service_id)
    await eventually(lambda: clocks(stack, http, incident["id"]))
    resolved = await http.patch(f"{stack.url('incident-svc')}/v1/incidents/{incident['id']}",
                                json={"status": "resolved", "resolution_notes": "failover"})
    assert resolved.status_code == 200

    stopped = await eventually(lambda: receiver.matching(event_type="itsm.sla.clock_stopped",
                                                         incident_id=incident["id"]))
    assert stopped[0].json()["data"]["met"] is True
    clock = (await clocks(stack, http, incident["id"]))[0]
    assert clock["stage"] == "completed" and clock["breached"] is False
    deadline = datetime.fromisoformat(clock["deadline"])
    await asyncio.sleep(max(0.0, (deadline - datetime.now(UTC)).total_seconds()) + 1.5)
    assert receiver.matching(event_type=BREACH, incident_id=incident["id"]) == []


async def test_breach_is_delivered_once_at_the_deadline_after_sla_svc_is_killed(stack, http, receiver):
    service_id, secret = await setup_service(stack, http, receiver, within="PT4S")
    incident = await open_p1(stack, http, service_id)
    clock = (await eventually(lambda: clocks(stack, http, incident["id"])))[0]
    deadline = datetime.fromisoformat(clock["deadline"])
    assert datetime.now(UTC) < deadline
    stack.kill("sla-svc")
    await asyncio.sleep((deadline - datetime.now(UTC)).total_seconds() + 1.5)
    assert receiver.matching(event_type=BREACH, incident_id=incident["id"]) == []
    await asyncio.to_thread(stack.start, "sla-svc")

    received = await eventually(lambda: receiver.matching(event_type=BREACH, incident_id=incident["id"]),
                                timeout=30)
    payload = Webhook(secret).verify(received[0].body, received[0].headers)
    assert datetime.fromisoformat(payload["data"]["breached_at"]) == deadline
    assert datetime.fromisoformat(payload["time"].replace("Z", "+00:00")) == deadline
    await asyncio.sleep(2)
    assert len(receiver.matching(event_type=BREACH, incident_id=incident["id"])) == 1


async def test_poison_message_is_dead_lettered_and_the_consumer_keeps_going(stack, http, receiver, kafka_bootstrap):
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    await producer.start()
    try:
        key = uuid.uuid4().hex.encode()
        await producer.send_and_wait(topics.INCIDENT, key=key, value=b'{"truncated": ',
                                     headers=[("ce_type", b"itsm.incident.opened"), ("ce_id", key),
                                              ("ce_source", b"/e2e"), ("ce_specversion", b"1.0"),
                                              ("ce_time", b"2026-11-24T10:00:00Z"),
                                              ("content-type", b"application/json")])
    finally:
        await producer.stop()
    dlq = topics.dead_letter_topic(topics.INCIDENT, "sla-svc")
    records = await read_topic(kafka_bootstrap, dlq, until=lambda rs: any(r.key == key for r in rs))
    dead = next(r for r in records if r.key == key)
    assert dict(dead.headers)["error_type"] == b"PoisonMessage"
    assert dead.value == b'{"truncated": ', "the dead letter keeps the original bytes"
    conn = await asyncpg.connect(stack.database_url)
    try:
        stored = await conn.fetchrow("SELECT error, value FROM sla.dead_letters WHERE key = $1", key)
    finally:
        await conn.close()
    assert stored["value"] == dead.value and "PoisonMessage" in stored["error"]

    service_id, _ = await setup_service(stack, http, receiver, within="PT1H")
    incident = await open_p1(stack, http, service_id)
    assert await eventually(lambda: clocks(stack, http, incident["id"]))


async def test_one_trace_spans_the_incident_post_and_the_sla_handling(stack, http, receiver, otlp):
    service_id, _ = await setup_service(stack, http, receiver, within="PT1H")
    trace_id = secrets.token_hex(16)
    incident = await open_p1(stack, http, service_id, traceparent=f"00-{trace_id}-{secrets.token_hex(8)}-01")
    await eventually(lambda: clocks(stack, http, incident["id"]))

    expected = {("incident-svc", "POST /v1/incidents"), ("sla-svc", "sla-svc process itsm.incident.opened")}

    def spans_of_trace():  # each process exports its spans in batches of its own: wait for both named ones
        spans = [s for s in otlp.spans() if s.trace_id == trace_id]
        return spans if expected <= {(s.service, s.name) for s in spans} else None

    spans = await eventually(spans_of_trace, timeout=20)
    names = {(s.service, s.name) for s in spans}
    assert any(s.service == "incident-svc" and "send" in s.name and "http" not in s.name for s in spans), sorted(names)
    # the sla-svc logs of that handling carry the same trace id
    record = await asyncio.to_thread(
        wait_for_log, stack.log("sla-svc"),
        lambda r: r.get("trace_id") == trace_id and "itsm.incident.opened" in r.get("message", ""))
    assert record["service"] == "sla-svc" and record["span_id"]


async def test_a_resolution_made_while_sla_svc_was_down_is_not_reported_as_a_breach(stack, http, receiver):
    """On restart the backlog is consumed before the timers run: a clock met in time stays met."""
    service_id, _ = await setup_service(stack, http, receiver, within="PT4S")
    incident = await open_p1(stack, http, service_id)
    clock = (await eventually(lambda: clocks(stack, http, incident["id"])))[0]
    deadline = datetime.fromisoformat(clock["deadline"])
    stack.kill("sla-svc")
    resolved = await http.patch(f"{stack.url('incident-svc')}/v1/incidents/{incident['id']}",
                                json={"status": "resolved"})
    assert datetime.fromisoformat(resolved.json()["resolved_at"]) < deadline
    await asyncio.sleep((deadline - datetime.now(UTC)).total_seconds() + 1.0)
    await asyncio.to_thread(stack.start, "sla-svc")

    stopped = await eventually(lambda: receiver.matching(event_type="itsm.sla.clock_stopped",
                                                         incident_id=incident["id"]), timeout=30)
    assert stopped[0].json()["data"]["met"] is True
    clock = (await clocks(stack, http, incident["id"]))[0]
    assert clock["stage"] == "completed" and clock["breached"] is False
    await asyncio.sleep(1.5)
    assert receiver.matching(event_type=BREACH, incident_id=incident["id"]) == []
