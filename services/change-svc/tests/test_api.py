"""change-svc on real PostgreSQL and Kafka: API contract, outbox, idempotency, problem+json."""

import base64
import uuid

import pytest

from change_svc.main import create_app
from change_svc.settings import Settings
from itsm_events import from_kafka, topics
from itsm_runtime.testing import read_topic, running_app


@pytest.fixture(scope="module")
async def app(service_settings):
    return create_app(service_settings(Settings, db_schema=f"change_{uuid.uuid4().hex[:6]}"))


@pytest.fixture(scope="module")
async def client(app):
    async with running_app(app) as client:
        yield client


def new_change(**overrides):
    body = {"title": "Upgrade payments-db to PostgreSQL 18", "type": "normal",
            "service_id": f"svc-{uuid.uuid4().hex[:8]}"}
    body.update(overrides)
    return body


def assert_problem(response, status: int) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["status"] == status
    return problem


async def test_create_derives_risk_numbers_the_change_and_publishes_requested(client, kafka_bootstrap):
    body = new_change(type="emergency", description="CVE fix", planned_start="2026-12-01T22:00:00+01:00",
                      planned_end="2026-12-01T23:30:00+01:00")
    response = await client.post("/v1/changes", json=body)
    assert response.status_code == 201
    change = response.json()
    assert set(change) == {"id", "number", "title", "description", "type", "service_id", "risk", "status",
                           "planned_start", "planned_end", "created_at", "updated_at"}
    assert change["risk"] == "high" and change["status"] == "requested" and change["type"] == "emergency"
    assert change["number"].startswith("CHG") and len(change["number"]) == 10
    assert change["planned_start"] == "2026-12-01T21:00:00Z", "stored and returned in UTC"
    assert (await client.get(f"/v1/changes/{change['id']}")).json() == change

    def requested(records):
        return [r for r in records if r.key == change["id"].encode()]

    record = requested(await read_topic(kafka_bootstrap, topics.CHANGE, until=requested))[0]
    headers = dict(record.headers)
    assert headers["ce_type"] == b"itsm.change.requested"
    assert headers["content-type"] == b"application/json"
    data = from_kafka(headers, record.value).data
    assert (data["change_id"], data["number"], data["risk"], data["type"], data["service_id"]) == (
        change["id"], change["number"], "high", "emergency", body["service_id"])


@pytest.mark.parametrize(("type_", "risk"), [("standard", "low"), ("normal", "medium"), ("emergency", "high")])
async def test_risk_follows_the_type_when_not_given(client, type_, risk):
    assert (await client.post("/v1/changes", json=new_change(type=type_))).json()["risk"] == risk


async def test_a_given_risk_is_kept(client):
    assert (await client.post("/v1/changes", json=new_change(type="standard", risk="high"))).json()["risk"] == "high"


async def test_numbers_increase_with_each_change(client):
    first = (await client.post("/v1/changes", json=new_change())).json()["number"]
    second = (await client.post("/v1/changes", json=new_change())).json()["number"]
    assert int(second[3:]) > int(first[3:])


@pytest.mark.parametrize("end", ["2026-12-01T22:00:00Z", "2026-12-01T21:59:59Z"])
async def test_a_planned_end_not_after_the_start_is_a_422_problem(client, end):
    body = new_change(planned_start="2026-12-01T22:00:00Z", planned_end=end)
    problem = assert_problem(await client.post("/v1/changes", json=body), 422)
    assert [e["field"] for e in problem["errors"]] == ["planned_end"]
    listed = (await client.get("/v1/changes", params={"service_id": body["service_id"]})).json()
    assert listed["items"] == [], "nothing was written"


async def test_idempotency_key_returns_the_first_result(client):
    body = new_change()
    key = str(uuid.uuid4())
    first = await client.post("/v1/changes", json=body, headers={"Idempotency-Key": key})
    second = await client.post("/v1/changes", json=body, headers={"Idempotency-Key": key})
    assert first.status_code == second.status_code == 201
    assert second.json() == first.json()
    listed = (await client.get("/v1/changes", params={"service_id": body["service_id"]})).json()
    assert len(listed["items"]) == 1


async def test_idempotency_key_reused_with_another_body_is_422(client):
    key = str(uuid.uuid4())
    await client.post("/v1/changes", json=new_change(), headers={"Idempotency-Key": key})
    assert_problem(await client.post("/v1/changes", json=new_change(title="other"),
                                     headers={"Idempotency-Key": key}), 422)


@pytest.mark.parametrize("body", [
    {"title": "x", "type": "urgent"},
    {"title": "x"},
    {"title": "", "type": "normal"},
    {"title": "x", "type": "normal", "risk": "extreme"},
    {"title": "x", "type": "normal", "planned_start": "tomorrow"},
    {"title": "x", "type": "normal", "planned_start": "2026-12-01T22:00:00"},
    {"title": "x", "type": "normal", "status": "approved"},
])
async def test_bad_input_is_a_problem_with_field_errors(client, body):
    problem = assert_problem(await client.post("/v1/changes", json=body), 422)
    assert problem["errors"]


async def test_malformed_json_is_a_problem_not_a_500(client):
    response = await client.post("/v1/changes", content=b"{not json", headers={"content-type": "application/json"})
    assert_problem(response, 422)


async def test_unknown_change_is_404_problem(client):
    problem = assert_problem(await client.get(f"/v1/changes/{uuid.uuid4()}"), 404)
    assert problem["title"] == "Not Found"


async def test_list_filters_and_paginates_with_a_cursor(client):
    service = f"svc-{uuid.uuid4().hex[:8]}"
    for type_ in ["standard", "normal", "standard", "emergency", "standard"]:
        await client.post("/v1/changes", json=new_change(service_id=service, type=type_))
    seen, cursor = [], None
    while True:
        params = {"service_id": service, "type": "standard", "status": "requested", "limit": 2}
        page = (await client.get("/v1/changes", params=params | ({"cursor": cursor} if cursor else {}))).json()
        assert all(c["type"] == "standard" for c in page["items"])
        seen += [c["id"] for c in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert len(seen) == len(set(seen)) == 3
    all_of_service = (await client.get("/v1/changes", params={"service_id": service})).json()["items"]
    assert len(all_of_service) == 5


@pytest.mark.parametrize("cursor", ["garbage!", base64.urlsafe_b64encode(b'["x"]').decode()])
async def test_a_cursor_this_api_did_not_return_is_400(client, cursor):
    assert_problem(await client.get("/v1/changes", params={"cursor": cursor}), 400)


async def test_unknown_status_filter_is_422(client):
    assert_problem(await client.get("/v1/changes", params={"status": "implemented"}), 422)


async def test_health_readiness_metrics_and_openapi(client):
    assert (await client.get("/healthz")).json() == {"status": "ok", "service": "change-svc"}
    assert (await client.get("/readyz")).json()["checks"] == {"database": True, "bus": True}
    assert "itsm_http_requests_total" in (await client.get("/metrics")).text
    assert {"/v1/changes", "/v1/changes/{change_id}"} <= set((await client.get("/openapi.json")).json()["paths"])
