"""incident-svc on real PostgreSQL and Kafka: API contract, outbox, idempotency, problem+json."""

import json
import uuid

import pytest
import sqlalchemy as sa

from incident_svc.db.tables import platform
from itsm_events import from_kafka, topics
from itsm_runtime.pagination import encode_cursor
from itsm_runtime.testing import eventually, read_topic


def new_incident(**overrides):
    body = {"title": "Checkout returns 500", "service_id": f"svc-{uuid.uuid4().hex[:8]}", "impact": 1,
            "urgency": 2}
    body.update(overrides)
    return body


async def test_create_computes_priority_and_publishes_opened_event(client, kafka_bootstrap):
    response = await client.post("/v1/incidents", json=new_incident())
    assert response.status_code == 201
    incident = response.json()
    assert incident["priority"] == 2 and incident["status"] == "new" and incident["number"].startswith("INC")

    def opened(records):
        return [r for r in records if r.key == incident["id"].encode()]

    records = await read_topic(kafka_bootstrap, topics.INCIDENT, until=opened)
    record = opened(records)[0]
    headers = dict(record.headers)
    assert headers["ce_type"] == b"itsm.incident.opened"
    assert headers["ce_specversion"] == b"1.0"
    assert headers["content-type"] == b"application/json"
    assert json.loads(record.value)["priority"] == 2
    assert from_kafka(headers, record.value).data["incident_id"] == incident["id"]


async def test_outbox_rows_are_marked_published(client, app):
    incident = (await client.post("/v1/incidents", json=new_incident())).json()
    outbox = platform["outbox"]
    engine = app.state.runtime.engine

    async def published():
        async with engine.connect() as conn:
            row = (await conn.execute(sa.select(outbox.c.published_at).where(outbox.c.key == incident["id"]))).one()
        return row.published_at is not None

    await eventually(published)


async def test_orphaned_outbox_rows_are_published_by_the_relay(client, app, kafka_bootstrap):
    """A row left unpublished (as after a crash between commit and publish) is published by the sweep."""
    incident = (await client.post("/v1/incidents", json=new_incident())).json()
    runtime = app.state.runtime
    outbox = platform["outbox"]
    await eventually(lambda: _published(runtime, outbox, incident["id"]))
    async with runtime.engine.begin() as conn:
        await conn.execute(outbox.update().where(outbox.c.key == incident["id"]).values(published_at=None))
    await eventually(lambda: _published(runtime, outbox, incident["id"]))
    records = await read_topic(kafka_bootstrap, topics.INCIDENT,
                               until=lambda rs: sum(r.key == incident["id"].encode() for r in rs) >= 2)
    ids = {dict(r.headers)["ce_id"] for r in records if r.key == incident["id"].encode()}
    assert len(ids) == 1, "a re-published row carries the same event id, so consumers drop the copy"


async def _published(runtime, outbox, key):
    async with runtime.engine.connect() as conn:
        rows = (await conn.execute(sa.select(outbox.c.published_at).where(outbox.c.key == key))).all()
    return rows and all(r.published_at is not None for r in rows)


async def test_idempotency_key_returns_the_first_result(client):
    body = new_incident()
    key = str(uuid.uuid4())
    first = await client.post("/v1/incidents", json=body, headers={"Idempotency-Key": key})
    second = await client.post("/v1/incidents", json=body, headers={"Idempotency-Key": key})
    assert first.status_code == second.status_code == 201
    assert second.json() == first.json()
    listed = (await client.get("/v1/incidents", params={"service_id": body["service_id"]})).json()
    assert len(listed["items"]) == 1


async def test_idempotency_key_reused_with_another_body_is_422(client):
    key = str(uuid.uuid4())
    await client.post("/v1/incidents", json=new_incident(), headers={"Idempotency-Key": key})
    response = await client.post("/v1/incidents", json=new_incident(title="other"), headers={"Idempotency-Key": key})
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"


@pytest.mark.parametrize("body", [
    {"title": "x", "service_id": "s", "impact": 4, "urgency": 1},
    {"title": "x", "service_id": "s", "impact": 1},
    {"title": "", "service_id": "s", "impact": 1, "urgency": 1},
    {"title": "x", "service_id": "s", "impact": "high", "urgency": 1},
    {"title": "x", "service_id": "s", "impact": 1, "urgency": 1, "opened_at": "yesterday"},
    {"title": "x", "service_id": "s", "impact": 1, "urgency": 1, "opened_at": "2026-11-24T10:00:00"},
    {"title": "x", "service_id": "s", "impact": 1, "urgency": 1, "severity": "sev1"},
    {"title": "x", "service_id": "s", "impact": 1, "urgency": 1, "opened_at": "9999-12-31T23:00:00Z"},
    {"title": "x", "service_id": "s", "impact": 1, "urgency": 1, "opened_at": "0001-01-01T00:00:00+05:00"},
])
async def test_bad_input_is_a_problem_with_field_errors(client, body):
    response = await client.post("/v1/incidents", json=body)
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["status"] == 422 and problem["errors"]


async def test_a_nul_character_is_a_problem_not_a_500(client):
    response = await client.post("/v1/incidents", json=new_incident(title="a\u0000b"))
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    assert (await client.get("/v1/incidents", params={"service_id": "\x00"})).status_code == 422


async def test_malformed_json_is_a_problem_not_a_500(client):
    response = await client.post("/v1/incidents", content=b"{not json", headers={"content-type": "application/json"})
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"


async def test_unknown_incident_is_404_problem(client):
    response = await client.get(f"/v1/incidents/{uuid.uuid4()}")
    assert response.status_code == 404
    assert response.json()["title"] == "Not Found"


async def test_lifecycle_through_patch_and_illegal_transition_is_409(client):
    incident = (await client.post("/v1/incidents", json=new_incident())).json()
    url = f"/v1/incidents/{incident['id']}"
    started = await client.patch(url, json={"status": "in_progress", "assignee": "ana"})
    assert started.json()["status"] == "in_progress"
    held = await client.patch(url, json={"status": "on_hold"})
    assert held.status_code == 422, "on hold needs a reason"
    held = await client.patch(url, json={"status": "on_hold", "hold_reason": "waiting for vendor"})
    assert held.json()["hold_reason"] == "waiting for vendor"
    resolved = (await client.patch(url, json={"status": "resolved", "resolution_notes": "restarted"})).json()
    assert resolved["status"] == "resolved" and resolved["resolved_at"]
    illegal = await client.patch(url, json={"status": "new"})
    assert illegal.status_code == 409
    assert illegal.headers["content-type"] == "application/problem+json"
    assert illegal.json()["current_status"] == "resolved"
    reopened = (await client.patch(url, json={"status": "in_progress"})).json()
    assert reopened["status"] == "in_progress" and reopened["resolved_at"] is None


async def test_reassessing_urgency_changes_priority(client):
    incident = (await client.post("/v1/incidents", json=new_incident(impact=3, urgency=3))).json()
    updated = (await client.patch(f"/v1/incidents/{incident['id']}", json={"urgency": 1})).json()
    assert updated["priority"] == 3


async def test_list_filters_and_paginates_with_a_cursor(client):
    service = f"svc-{uuid.uuid4().hex[:8]}"
    for _ in range(5):
        await client.post("/v1/incidents", json=new_incident(service_id=service))
    seen, cursor = [], None
    while True:
        params = {"service_id": service, "limit": 2} | ({"cursor": cursor} if cursor else {})
        page = (await client.get("/v1/incidents", params=params)).json()
        seen += [i["id"] for i in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert len(seen) == len(set(seen)) == 5
    assert (await client.get("/v1/incidents", params={"cursor": "garbage!"})).status_code == 400
    for forged in (encode_cursor(["x"]), encode_cursor([10**30]), encode_cursor([-1])):
        assert (await client.get("/v1/incidents", params={"cursor": forged})).status_code == 400


async def test_health_readiness_metrics_and_openapi(client):
    assert (await client.get("/healthz")).json()["status"] == "ok"
    ready = (await client.get("/readyz")).json()
    assert ready["checks"] == {"database": True, "bus": True}
    metrics = (await client.get("/metrics")).text
    assert "itsm_http_requests_total" in metrics and "itsm_events_published_total" in metrics
    assert "/v1/incidents" in (await client.get("/openapi.json")).json()["paths"]
