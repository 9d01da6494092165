"""Live compliance kept up to date in the database and streamed as Server-Sent Events (over real HTTP)."""

import asyncio
import json
import uuid
from datetime import UTC, datetime

import httpx
import sqlalchemy as sa

from itsm_events import new_event, schemas, to_kafka, topics
from itsm_runtime.testing import served
from sla_svc.db.tables import compliance
from sla_testing import make_agreement


async def next_event(lines) -> dict:
    """The next `compliance` event of the stream: {event, id, data}."""
    event: dict = {}
    async for line in lines:
        if not line:
            if "data" in event:
                return event
            continue
        field, _, value = line.partition(": ")
        if field in ("event", "id"):
            event[field] = value
        elif field == "data":
            event["data"] = json.loads(value)
    raise AssertionError("the stream ended")


async def test_compliance_is_served_from_maintained_state_and_streamed_as_it_changes(sla_app, sla, kafka_producer):
    agreement = await make_agreement(sla, within="PT1H")
    path = f"/v1/agreements/{agreement['id']}/compliance/stream"
    async with (served(sla_app) as base, httpx.AsyncClient(base_url=base, timeout=30) as http,
                http.stream("GET", path) as response):
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        lines = response.aiter_lines()
        first = await asyncio.wait_for(next_event(lines), 10)
        assert first["event"] == "compliance" and first["data"]["targets"][0]["running"] == 0

        incident_id = str(uuid.uuid4())
        headers, value = to_kafka(new_event(schemas.IncidentOpened(
            incident_id=incident_id, number="INC0000042", title="streamed", service_id=agreement["service_id"],
            impact=1, urgency=1, priority=1, status="new", opened_at=datetime.now(UTC)), source="/test"))
        await kafka_producer.send_and_wait(topics.INCIDENT, value=value, key=incident_id.encode(),
                                           headers=list(headers.items()))
        second = await asyncio.wait_for(next_event(lines), 10)
        assert int(second["id"]) > int(first["id"]), "each change is a new version"
        assert second["data"]["targets"][0]["running"] == 1

    stored = (await sla.get(f"/v1/agreements/{agreement['id']}/compliance")).json()
    assert stored == second["data"], "a request answers with the stored state the stream sent"


async def test_compliance_of_an_unknown_agreement_is_a_404_problem(sla):
    for path in ("/v1/agreements/nope/compliance", "/v1/agreements/nope/compliance/stream"):
        response = await sla.get(path)
        assert response.status_code == 404 and response.headers["content-type"] == "application/problem+json"


async def test_compliance_is_stored_once_per_change_not_per_request(sla_app, sla):
    agreement = await make_agreement(sla, within="PT1H")
    first = (await sla.get(f"/v1/agreements/{agreement['id']}/compliance")).json()
    await sla_app.state.runtime.state["compliance"].refresh([agreement["id"]])  # nothing changed under it
    assert (await sla.get(f"/v1/agreements/{agreement['id']}/compliance")).json() == first, \
        "the same stored state, computed_at included: neither the refresh nor the request computed a new one"
    async with sla_app.state.runtime.engine.connect() as conn:
        version = (await conn.execute(sa.select(compliance.c.version)
                                      .where(compliance.c.agreement_id == agreement["id"]))).scalar()
    assert version == 1
