"""Time from deadline to webhook receipt with 1,000 SLA clocks breaching in the same second.

1,000 `itsm.incident.opened` events go to Kafka with opened_at chosen so that every clock's
deadline is the same instant a few seconds ahead; sla-svc fires the breaches from its timers
and notify-svc delivers each as a signed webhook to a local receiver.
"""

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import asyncpg
import httpx
from aiokafka import AIOKafkaProducer

from itsm_events import new_event, schemas, to_kafka, topics
from itsm_runtime.testing import WebhookReceiver

from .common import percentile, start_stack

CLOCKS = 1000
TARGET = timedelta(minutes=1)
LEAD = timedelta(seconds=20)


async def run(clocks: int = CLOCKS) -> dict:
    stack = await start_stack("sla-svc", "notify-svc")
    try:
        async with WebhookReceiver() as receiver, httpx.AsyncClient(timeout=30) as client:
            service_id = f"bench-{uuid.uuid4().hex[:6]}"
            (await client.post(stack.url("sla-svc") + "/v1/agreements", json={
                "name": "bench", "service_id": service_id, "warning_thresholds": [0.5],
                # the incidents are back-dated by the target: the agreement must be in force by then
                "effective_from": (datetime.now(UTC) - timedelta(days=1)).isoformat(),
                "targets": [{"metric": "resolution", "priority": 1, "within": "PT1M"}]})).raise_for_status()
            (await client.post(stack.url("notify-svc") + "/v1/subscriptions", json={
                "channel": "webhook", "target": receiver.url, "event_types": ["itsm.sla.breached"],
                "filter": {"service_id": service_id}})).raise_for_status()
            deadline = (datetime.now(UTC) + LEAD).replace(microsecond=0)
            producer = AIOKafkaProducer(bootstrap_servers=stack.kafka, acks="all", linger_ms=5)
            await producer.start()
            try:
                for i in range(clocks):
                    incident_id = str(uuid.uuid4())
                    headers, value = to_kafka(new_event(schemas.IncidentOpened(
                        incident_id=incident_id, number=f"INC{i:07d}", title="bench", service_id=service_id,
                        impact=1, urgency=1, priority=1, status="new", opened_at=deadline - TARGET),
                        source="/bench", subject=incident_id))
                    await producer.send(topics.INCIDENT, value=value, key=incident_id.encode(),
                                        headers=list(headers.items()))
                await producer.flush()
            finally:
                await producer.stop()
            loop = asyncio.get_running_loop()
            give_up = loop.time() + LEAD.total_seconds() + 120
            while len(receiver.requests) < clocks and loop.time() < give_up:
                await asyncio.sleep(0.1)
            delays = sorted((r.at - deadline).total_seconds() for r in receiver.requests)
        assert len(delays) == clocks, f"only {len(delays)} of {clocks} breach webhooks arrived"
        assert datetime.now(UTC) > deadline
        stages = await stage_delays(stack.database_url, deadline)
        return {
            "clocks": clocks,
            **stages,
            "deadline_to_webhook_p50_ms": round(percentile(delays, 50) * 1000, 1),
            "deadline_to_webhook_p99_ms": round(percentile(delays, 99) * 1000, 1),
            "deadline_to_webhook_max_ms": round(delays[-1] * 1000, 1),
        }
    finally:
        stack.stop_all()


async def stage_delays(database_url: str, deadline: datetime) -> dict:
    """Where the time goes: breach published (written ahead of the deadline, sla-svc's relay publishes it at the
    instant), delivery created (p50/p99 after the deadline)."""
    conn = await asyncpg.connect(database_url)
    try:
        committed = await conn.fetch("SELECT published_at FROM sla.outbox WHERE event_type = $1",
                                     "itsm.sla.breached")
        created = await conn.fetch("SELECT created_at FROM notify.deliveries WHERE event_type = $1",
                                   "itsm.sla.breached")
    finally:
        await conn.close()

    def p(values: list[datetime], q: float) -> float:
        return round(percentile(sorted((v - deadline).total_seconds() for v in values), q) * 1000, 1)

    return {
        "breach_published_p50_ms": p([r["published_at"] for r in committed], 50),
        "breach_published_p99_ms": p([r["published_at"] for r in committed], 99),
        "delivery_created_p50_ms": p([r["created_at"] for r in created], 50),
        "delivery_created_p99_ms": p([r["created_at"] for r in created], 99),
    }
