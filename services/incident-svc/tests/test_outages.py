"""Outage incidents on real PostgreSQL and Kafka: `itsm.cmdb.*` records published to Kafka the way
cmdb-svc publishes them, consumed by a running incident-svc."""

import json
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from itsm_events import new_event, schemas, to_kafka, topics
from itsm_runtime.testing import eventually, read_topic

START = (datetime.now(UTC) - timedelta(hours=1)).replace(microsecond=0)


async def publish(producer, data, *, key: str, time: datetime | None = None):
    envelope = new_event(data, source="/cmdb-svc", subject=key, time=time)
    headers, value = to_kafka(envelope)
    await producer.send_and_wait(topics.CMDB, value=value, key=key.encode(), headers=list(headers.items()))
    return envelope


def availability(service_id: str, status: str, minutes: int, causes=()) -> schemas.ServiceAvailabilityChanged:
    return schemas.ServiceAvailabilityChanged(service_id=service_id, status=status,
                                              observed_at=START + timedelta(minutes=minutes),
                                              cause_ci_ids=list(causes))


async def change(producer, service_id: str, status: str, minutes: int, causes=()):
    data = availability(service_id, status, minutes, causes)
    return await publish(producer, data, key=service_id, time=data.observed_at)


async def business_service(producer, *, criticality: int | None, name: str = "Online shop") -> str:
    service_id = str(uuid.uuid4())
    await publish(producer, schemas.CiCreated(ci_id=service_id, name=name, type="business_service",
                                              criticality=criticality), key=service_id)
    return service_id


async def incidents_of(client, service_id: str) -> list[dict]:
    return (await client.get("/v1/incidents", params={"service_id": service_id})).json()["items"]


async def outages_of(client, service_id: str) -> list[dict]:
    return (await client.get(f"/v1/services/{service_id}/outages")).json()["items"]


async def last_outage_matches(client, service_id: str, **expected) -> dict | None:
    outages = await outages_of(client, service_id)
    if outages and all(outages[-1][k] == v for k, v in expected.items()):
        return outages[-1]
    return None


async def test_an_outage_opens_one_incident_is_updated_and_resolves_when_the_service_is_back(
        client, kafka_producer, kafka_bootstrap):
    service_id = await business_service(kafka_producer, criticality=3)
    await change(kafka_producer, service_id, "down", 0, causes=["db-1"])
    [incident] = await eventually(lambda: incidents_of(client, service_id))
    assert incident["title"] == "Outage: Online shop is down"
    assert (incident["impact"], incident["urgency"], incident["priority"]) == (2, 1, 2), "criticality 3 -> impact 2"
    assert datetime.fromisoformat(incident["opened_at"]) == START and "db-1" in incident["description"]

    await change(kafka_producer, service_id, "down", 2, causes=["db-2"])
    await change(kafka_producer, service_id, "degraded", 4, causes=["db-2"])
    outage = await eventually(lambda: last_outage_matches(client, service_id, status="degraded"))
    assert outage["cause_ci_ids"] == ["db-1", "db-2"] and outage["incident_id"] == incident["id"]
    [updated] = await incidents_of(client, service_id)
    assert updated["urgency"] == 2 and updated["priority"] == 3, "degraded lowers the urgency"

    await change(kafka_producer, service_id, "up", 9)
    ended = await eventually(lambda: last_outage_matches(client, service_id, status="up"))
    assert datetime.fromisoformat(ended["ended_at"]) == START + timedelta(minutes=9)
    [resolved] = await incidents_of(client, service_id)
    assert resolved["status"] == "resolved"
    assert datetime.fromisoformat(resolved["resolved_at"]) == START + timedelta(minutes=9)
    assert "Online shop is back up" in resolved["resolution_notes"]

    def events_of(records):
        return [dict(r.headers)["ce_type"] for r in records if r.key == incident["id"].encode()]

    types = events_of(await read_topic(kafka_bootstrap, topics.INCIDENT,
                                       until=lambda rs: b"itsm.incident.resolved" in events_of(rs)))
    assert types.count(b"itsm.incident.opened") == 1 and b"itsm.incident.priority_changed" in types


async def test_a_late_up_older_than_the_outage_does_not_resolve_it(client, kafka_producer):
    service_id = await business_service(kafka_producer, criticality=1)
    await change(kafka_producer, service_id, "down", 10)
    await change(kafka_producer, service_id, "up", 5)  # observed before the outage began, delivered after
    await change(kafka_producer, service_id, "down", 11, causes=["lb-1"])  # a marker that the late up was handled
    await eventually(lambda: last_outage_matches(client, service_id, cause_ci_ids=["lb-1"]))
    [incident] = await incidents_of(client, service_id)
    assert incident["status"] == "new" and incident["priority"] == 1
    assert len(await outages_of(client, service_id)) == 1

    await change(kafka_producer, service_id, "up", 12)
    await eventually(lambda: last_outage_matches(client, service_id, status="up"))
    assert (await incidents_of(client, service_id))[0]["status"] == "resolved"


async def test_an_unknown_service_gets_impact_one_and_degraded_alone_opens_nothing_by_default(
        client, kafka_producer):
    service_id = f"svc-{uuid.uuid4().hex[:8]}"
    await change(kafka_producer, service_id, "degraded", 0)
    await change(kafka_producer, service_id, "down", 1)
    [incident] = await eventually(lambda: incidents_of(client, service_id))
    assert incident["impact"] == 1 and incident["title"] == f"Outage: {service_id} is down"
    assert datetime.fromisoformat(incident["opened_at"]) == START + timedelta(minutes=1)


async def test_a_redelivered_event_has_one_effect(client, kafka_producer):
    service_id = await business_service(kafka_producer, criticality=5)
    data = availability(service_id, "down", 0)
    headers, value = to_kafka(new_event(data, source="/cmdb-svc", subject=service_id, time=data.observed_at))
    for _ in range(3):
        await kafka_producer.send_and_wait(topics.CMDB, value=value, key=service_id.encode(),
                                           headers=list(headers.items()))
    await change(kafka_producer, service_id, "down", 1, causes=["marker"])
    await eventually(lambda: last_outage_matches(client, service_id, cause_ci_ids=["marker"]))
    [incident] = await incidents_of(client, service_id)
    assert incident["impact"] == 3 and len(await outages_of(client, service_id)) == 1


async def test_policy_can_open_on_degraded_and_leave_resolution_to_people(client, kafka_producer):
    service_id = await business_service(kafka_producer, criticality=2)
    default = (await client.get(f"/v1/services/{service_id}/outage-policy")).json()
    assert default == {"service_id": service_id, "open_on": "down", "auto_resolve": True, "updated_at": None}
    put = await client.put(f"/v1/services/{service_id}/outage-policy",
                           json={"open_on": "degraded", "auto_resolve": False})
    assert put.status_code == 200 and put.json()["open_on"] == "degraded" and put.json()["updated_at"]
    assert (await client.get(f"/v1/services/{service_id}/outage-policy")).json() == put.json()

    await change(kafka_producer, service_id, "degraded", 0, causes=["node-3"])
    [incident] = await eventually(lambda: incidents_of(client, service_id))
    assert (incident["impact"], incident["urgency"]) == (1, 2)
    await change(kafka_producer, service_id, "up", 3)
    await eventually(lambda: last_outage_matches(client, service_id, status="up"))
    assert (await incidents_of(client, service_id))[0]["status"] == "new", "auto_resolve is off"

    # the service fails again before anyone resolved the incident: the new outage joins it
    await change(kafka_producer, service_id, "down", 6)
    await eventually(lambda: last_outage_matches(client, service_id, status="down"))
    outages = await outages_of(client, service_id)
    assert len(outages) == 2 and {o["incident_id"] for o in outages} == {incident["id"]}
    [same] = await incidents_of(client, service_id)
    assert same["urgency"] == 1 and same["priority"] == 1


@pytest.mark.parametrize("body", [{"open_on": "up"}, {"auto_resolve": "sometimes"}, {"open_on": "down", "x": 1}])
async def test_bad_outage_policy_is_a_problem(client, body):
    response = await client.put("/v1/services/svc-x/outage-policy", json=body)
    assert response.status_code == 422 and response.headers["content-type"] == "application/problem+json"
    assert json.loads(response.text)["errors"]


async def test_a_too_long_service_id_is_a_problem_not_a_500(client):
    response = await client.get(f"/v1/services/{'s' * 201}/outages")
    assert response.status_code == 422 and response.headers["content-type"] == "application/problem+json"
