"""Clocks folded from incident events on real PostgreSQL and Kafka: re-targeting, reopening, and events
that arrive late, twice or out of order."""

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from itsm_events import new_event, schemas, to_kafka, topics
from itsm_runtime.testing import eventually, read_topic
from sla_testing import clocks_of, make_agreement


@pytest.fixture(scope="module")
def send(kafka_producer):
    async def send(data: schemas.EventData, incident_id: str) -> None:
        headers, value = to_kafka(new_event(data, source="/test", subject=incident_id))
        await kafka_producer.send_and_wait(topics.INCIDENT, value=value, key=incident_id.encode(),
                                           headers=list(headers.items()))
    return send


def opened(incident_id: str, service_id: str, at: datetime, priority: int = 1) -> schemas.IncidentOpened:
    return schemas.IncidentOpened(incident_id=incident_id, number="INC0000001", title="t", service_id=service_id,
                                  impact=1, urgency=1, priority=priority, status="new", opened_at=at)


def status(incident_id: str, service_id: str, at: datetime, from_status: str, to_status: str):
    return schemas.IncidentStatusChanged(incident_id=incident_id, service_id=service_id, priority=1,
                                         from_status=from_status, to_status=to_status, changed_at=at)


def kinds(clock: dict) -> list[str]:
    return [e["kind"] for e in clock["timeline"]]


async def one_clock(sla, incident_id: str, until) -> dict:
    async def matching():
        clocks = await clocks_of(sla, incident_id)
        return clocks[0] if clocks and until(clocks[0]) else None
    return await eventually(matching)


async def test_a_priority_change_retargets_the_running_clock_keeping_its_elapsed_time(sla, incidents,
                                                                                     kafka_bootstrap):
    agreement = await make_agreement(sla, targets=[{"metric": "resolution", "priority": 3, "within": "PT8H"},
                                                   {"metric": "resolution", "priority": 1, "within": "PT4H"}])
    incident = (await incidents.post("/v1/incidents", json={
        "title": "slow", "service_id": agreement["service_id"], "impact": 2, "urgency": 2})).json()
    assert incident["priority"] == 3
    await one_clock(sla, incident["id"], lambda c: c["target_seconds"] == 8 * 3600)
    await incidents.patch(f"/v1/incidents/{incident['id']}", json={"impact": 1, "urgency": 1})

    clock = await one_clock(sla, incident["id"], lambda c: c["priority"] == 1)
    assert clock["target_seconds"] == 4 * 3600 and clock["stage"] == "running"
    assert kinds(clock) == ["started", "retargeted"]
    retarget = clock["timeline"][1]["details"]
    assert (retarget["from_priority"], retarget["to_priority"]) == (3, 1)
    assert 0 < retarget["elapsed_seconds"] < 60, "the elapsed time is kept, not restarted"
    started = datetime.fromisoformat(clock["started_at"])
    assert datetime.fromisoformat(clock["deadline"]) == started + timedelta(hours=4)
    records = await read_topic(kafka_bootstrap, topics.SLA, until=lambda rs: any(
        dict(r.headers)["ce_type"] == b"itsm.sla.clock_retargeted" and r.key == incident["id"].encode()
        for r in rs))
    assert sum(dict(r.headers)["ce_type"] == b"itsm.sla.clock_retargeted" and r.key == incident["id"].encode()
               for r in records) == 1


async def test_reopening_a_resolved_incident_resumes_its_resolution_clock(sla, incidents):
    agreement = await make_agreement(sla, within="PT4H")
    incident = (await incidents.post("/v1/incidents", json={
        "title": "again", "service_id": agreement["service_id"], "impact": 1, "urgency": 1})).json()
    path = f"/v1/incidents/{incident['id']}"
    await incidents.patch(path, json={"status": "in_progress"})
    await incidents.patch(path, json={"status": "resolved", "resolution_notes": "restarted"})
    await one_clock(sla, incident["id"], lambda c: c["stage"] == "completed")
    await incidents.patch(path, json={"status": "in_progress"})
    clock = await one_clock(sla, incident["id"], lambda c: c["stage"] == "running")
    assert kinds(clock) == ["started", "stopped", "reopened"] and clock["completed_at"] is None


async def test_events_out_of_order_and_twice_give_the_clock_their_event_times_give(sla, send):
    opened_at = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=2)
    agreement = await make_agreement(sla, within="PT1H", effective_from=(opened_at - timedelta(days=1)).isoformat())
    service_id, incident_id = agreement["service_id"], str(uuid.uuid4())
    # on hold after 10 minutes and in progress again after 70: delivered before the opening, the hold twice
    hold = status(incident_id, service_id, opened_at + timedelta(minutes=10), "new", "on_hold")
    await send(hold, incident_id)
    await send(status(incident_id, service_id, opened_at + timedelta(minutes=70), "on_hold", "in_progress"),
               incident_id)
    await send(hold, incident_id)
    await send(opened(incident_id, service_id, opened_at), incident_id)

    clock = await one_clock(sla, incident_id, lambda c: c["breached"])
    # 10 min before the hold, 60 min on hold, then 50 min more reach the hour at 2:00
    assert datetime.fromisoformat(clock["breached_at"]) == opened_at + timedelta(minutes=120)
    assert kinds(clock)[:3] == ["started", "paused", "resumed"]

    # the resolution, stamped before that deadline, arrives late: the breach is undone, the clock met
    await send(status(incident_id, service_id, opened_at + timedelta(minutes=90), "in_progress", "resolved"),
               incident_id)
    clock = await one_clock(sla, incident_id, lambda c: c["stage"] == "completed")
    assert not clock["breached"] and clock["elapsed_seconds"] == 30 * 60
    assert "breached" not in kinds(clock)


async def test_an_agreement_covers_only_incidents_opened_while_it_is_in_force(sla, send, sla_app, kafka_bootstrap):
    agreement = await make_agreement(sla, within="PT1H")
    service_id = agreement["service_id"]
    before, after = str(uuid.uuid4()), str(uuid.uuid4())
    created = datetime.fromisoformat(agreement["effective_from"])
    await send(opened(before, service_id, created - timedelta(minutes=5)), before)
    await send(opened(after, service_id, created + timedelta(seconds=1)), after)
    await eventually(lambda: clocks_of(sla, after))
    assert await clocks_of(sla, before) == [], "events of one partition are handled in order"
