"""`itsm.sla.report_ready` on real PostgreSQL and Kafka: the weeks and months an agreement created in the
past has seen close are announced once each, however often its timer fires."""

import asyncio
import json
import uuid
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from itsm_events import new_event, schemas, to_kafka, topics
from itsm_runtime.testing import eventually, read_topic
from sla_svc.db.tables import agreements, service_status
from sla_svc.reports import parse_period, period_of, periods_ended, previous_period


async def make_agreement(sla) -> dict:
    response = await sla.post("/v1/agreements", json={
        "name": "Payments", "service_id": f"svc-{uuid.uuid4().hex[:8]}",
        "targets": [{"metric": "resolution", "priority": 1, "within": "PT4H"}],
        "objectives": [{"kind": "availability", "target": 99.9, "window": "calendar_month"}]})
    assert response.status_code == 201, response.text
    return response.json()


async def backdate(sla_app, agreement_id: str, created_at: datetime) -> None:
    async with sla_app.state.runtime.engine.begin() as conn:
        await conn.execute(agreements.update().where(agreements.c.id == agreement_id).values(created_at=created_at))


async def service_was_down(sla_app, kafka_producer, service_id: str, start: datetime, end: datetime) -> None:
    """Publish the outage the way cmdb-svc does and wait until sla-svc has stored it."""
    for status, at in (("down", start), ("up", end)):
        headers, value = to_kafka(new_event(schemas.ServiceAvailabilityChanged(
            service_id=service_id, status=status, observed_at=at), source="/cmdb-svc", subject=service_id, time=at))
        await kafka_producer.send_and_wait(topics.CMDB, value=value, key=service_id.encode(),
                                           headers=list(headers.items()))

    async def stored():
        async with sla_app.state.runtime.engine.connect() as conn:
            count = sa.select(sa.func.count()).where(service_status.c.service_id == service_id)
            return (await conn.execute(count)).scalar() == 2

    await eventually(stored)


async def test_each_closed_week_and_month_is_announced_once_with_its_status(
        sla, sla_app, kafka_producer, kafka_bootstrap):
    agreement = await make_agreement(sla)
    last_week = previous_period(period_of(datetime.now(UTC), "week", "UTC"))
    down_from = parse_period(last_week, "UTC")[0] + timedelta(hours=1)  # 2 h down: over 99.9% of a week or month
    await service_was_down(sla_app, kafka_producer, agreement["service_id"], down_from, down_from + timedelta(hours=2))
    created_at = datetime.now(UTC) - timedelta(days=40)
    await backdate(sla_app, agreement["id"], created_at)  # only now has the agreement seen periods close

    closing = sla_app.state.runtime.state["period_closing"]
    await closing.fire([agreement["id"]])
    await closing.fire([agreement["id"]])
    expected = periods_ended(created_at, datetime.now(UTC), "UTC")
    assert last_week in expected and len(expected) >= 6  # five or six weeks and one or two months in 40 days

    def ready(records) -> list[dict]:
        return [json.loads(r.value) for r in records if dict(r.headers)["ce_type"] == b"itsm.sla.report_ready"
                and r.key == agreement["id"].encode()]

    await read_topic(kafka_bootstrap, topics.SLA, until=lambda rs: len(ready(rs)) >= len(expected))
    await asyncio.sleep(1)  # time for a duplicate to show
    announced = ready(await read_topic(kafka_bootstrap, topics.SLA, until=lambda rs: len(ready(rs)) >= len(expected)))
    assert [event["period"] for event in announced] == expected

    for event in announced:
        start, end = parse_period(event["period"], "UTC")
        assert (datetime.fromisoformat(event["period_start"]), datetime.fromisoformat(event["period_end"])) == \
            (start, end)
        assert event["status"] == ("breached" if start <= down_from < end else "ok"), event["period"]
        assert event["service_id"] == agreement["service_id"]
        assert event["url"] == f"/v1/reports/{agreement['id']}?period={event['period']}&format=html"

    page = await sla.get(announced[-1]["url"])
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
