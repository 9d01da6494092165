"""cmdb-svc on real PostgreSQL and Kafka: API contract, outbox, idempotency, problem+json."""

import base64
import json
import uuid

import pytest

from cmdb_svc.main import create_app
from cmdb_svc.settings import Settings
from itsm_events import from_kafka, topics
from itsm_runtime.testing import read_topic, running_app


@pytest.fixture(scope="module")
async def app(service_settings):
    return create_app(service_settings(Settings, db_schema=f"cmdb_{uuid.uuid4().hex[:6]}"))


@pytest.fixture(scope="module")
async def client(app):
    async with running_app(app) as client:
        yield client


def new_ci(**overrides):
    body = {"name": f"payments-db-{uuid.uuid4().hex[:6]}", "type": "database"}
    body.update(overrides)
    return body


async def create_ci(client, **overrides) -> dict:
    response = await client.post("/v1/cis", json=new_ci(**overrides))
    assert response.status_code == 201, response.text
    return response.json()


def assert_problem(response, status: int) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["status"] == status
    return problem


async def test_create_returns_the_ci_and_publishes_ci_created(client, kafka_bootstrap):
    key = f"db-{uuid.uuid4().hex[:8]}"
    response = await client.post("/v1/cis", json=new_ci(key=key, criticality=1, attributes={"engine": "postgres"},
                                                         redundancy={"min_up": 1}))
    assert response.status_code == 201
    ci = response.json()
    assert set(ci) == {"id", "name", "type", "key", "criticality", "owner", "status", "attributes", "redundancy",
                       "version", "health", "health_since", "created_at", "updated_at"}
    assert (ci["status"], ci["version"], ci["health"]) == ("active", 1, "up")
    assert (ci["type"], ci["key"], ci["criticality"]) == ("database", key, 1)
    assert ci["attributes"] == {"engine": "postgres"} and ci["redundancy"] == {"min_up": 1}
    assert (await client.get(f"/v1/cis/{ci['id']}")).json() == ci

    def created(records):
        return [r for r in records if r.key == ci["id"].encode()]

    record = created(await read_topic(kafka_bootstrap, topics.CMDB, until=created))[0]
    headers = dict(record.headers)
    assert headers["ce_type"] == b"itsm.cmdb.ci_created"
    assert headers["content-type"] == b"application/json"
    data = from_kafka(headers, record.value).data
    assert data == {"ci_id": ci["id"], "name": ci["name"], "type": "database", "key": key, "criticality": 1}


async def test_optional_fields_default_to_empty(client):
    ci = await create_ci(client, type="server")
    assert ci["key"] is None and ci["criticality"] is None and ci["redundancy"] is None
    assert ci["attributes"] == {}


async def test_percentage_redundancy_round_trips(client):
    ci = await create_ci(client, type="cluster", redundancy={"min_up_percent": 50})
    assert (await client.get(f"/v1/cis/{ci['id']}")).json()["redundancy"] == {"min_up_percent": 50}


async def test_a_taken_key_is_a_409_problem_and_writes_nothing(client):
    key = f"srv-{uuid.uuid4().hex[:8]}"
    await create_ci(client, key=key, type="server")
    problem = assert_problem(await client.post("/v1/cis", json=new_ci(key=key, type="server")), 409)
    assert problem["key"] == key
    listed = (await client.get("/v1/cis", params={"type": "server", "limit": 500})).json()["items"]
    assert sum(c["key"] == key for c in listed) == 1


async def test_idempotency_key_returns_the_first_result(client):
    body = new_ci(type="network", key=f"net-{uuid.uuid4().hex[:8]}")
    key = str(uuid.uuid4())
    first = await client.post("/v1/cis", json=body, headers={"Idempotency-Key": key})
    second = await client.post("/v1/cis", json=body, headers={"Idempotency-Key": key})
    assert first.status_code == second.status_code == 201
    assert second.json() == first.json()


async def test_idempotency_key_reused_with_another_body_is_422(client):
    key = str(uuid.uuid4())
    await client.post("/v1/cis", json=new_ci(), headers={"Idempotency-Key": key})
    assert_problem(await client.post("/v1/cis", json=new_ci(name="other"), headers={"Idempotency-Key": key}), 422)


@pytest.mark.parametrize("body", [
    {"name": "x", "type": "vm"},
    {"name": "x"},
    {"name": "", "type": "server"},
    {"name": "x", "type": "server", "criticality": 6},
    {"name": "x", "type": "server", "key": "has space"},
    {"name": "x", "type": "server", "attributes": ["not", "an", "object"]},
    {"name": "x", "type": "cluster", "redundancy": {"min_up": 0}},
    {"name": "x", "type": "cluster", "redundancy": {"min_up_percent": 101}},
    {"name": "x", "type": "cluster", "redundancy": {"min_up": 2, "min_up_percent": 50}},
    {"name": "x", "type": "cluster", "redundancy": {}},
    {"name": "x", "type": "server", "colour": "blue"},
])
async def test_bad_ci_input_is_a_problem_with_field_errors(client, body):
    problem = assert_problem(await client.post("/v1/cis", json=body), 422)
    assert problem["errors"]


async def test_malformed_json_is_a_problem_not_a_500(client):
    for path in ("/v1/cis", "/v1/relationships"):
        response = await client.post(path, content=b"{not json", headers={"content-type": "application/json"})
        assert_problem(response, 422)


async def test_unknown_ci_is_404_problem(client):
    problem = assert_problem(await client.get(f"/v1/cis/{uuid.uuid4()}"), 404)
    assert problem["title"] == "Not Found"
    assert_problem(await client.get(f"/v1/cis/{uuid.uuid4()}/relationships"), 404)


async def test_relationship_is_created_and_published_after_its_source_ci(client, kafka_bootstrap):
    app_ci = await create_ci(client, type="application")
    db_ci = await create_ci(client, type="database")
    response = await client.post("/v1/relationships",
                                 json={"source_id": app_ci["id"], "target_id": db_ci["id"], "type": "depends_on"})
    assert response.status_code == 201
    relationship = response.json()
    assert set(relationship) == {"id", "source_id", "target_id", "type", "created_at"}
    assert (relationship["source_id"], relationship["target_id"], relationship["type"]) == (
        app_ci["id"], db_ci["id"], "depends_on")

    def of_source(records):
        return [r for r in records if r.key == app_ci["id"].encode()]

    records = of_source(await read_topic(kafka_bootstrap, topics.CMDB, until=lambda rs: len(of_source(rs)) >= 2))
    types = [dict(r.headers)["ce_type"] for r in records]
    assert types == [b"itsm.cmdb.ci_created", b"itsm.cmdb.relationship_created"], "keyed by source: in order"
    data = json.loads(records[1].value)
    assert data == {"relationship_id": relationship["id"], "source_id": app_ci["id"], "target_id": db_ci["id"],
                    "type": "depends_on"}


async def test_relationships_of_a_ci_list_both_directions(client):
    cluster = await create_ci(client, type="cluster", redundancy={"min_up": 1})
    node = await create_ci(client, type="server")
    app_ci = await create_ci(client, type="application")
    stranger = await create_ci(client, type="server")
    member = (await client.post("/v1/relationships", json={"source_id": node["id"], "target_id": cluster["id"],
                                                           "type": "member_of"})).json()
    runs = (await client.post("/v1/relationships", json={"source_id": app_ci["id"], "target_id": node["id"],
                                                         "type": "runs_on"})).json()
    await client.post("/v1/relationships", json={"source_id": app_ci["id"], "target_id": stranger["id"],
                                                  "type": "connects_to"})
    page = (await client.get(f"/v1/cis/{node['id']}/relationships")).json()
    assert [r["id"] for r in page["items"]] == [member["id"], runs["id"]]
    assert page["next_cursor"] is None
    first = (await client.get(f"/v1/cis/{node['id']}/relationships", params={"limit": 1})).json()
    second = (await client.get(f"/v1/cis/{node['id']}/relationships",
                               params={"limit": 1, "cursor": first["next_cursor"]})).json()
    assert [r["id"] for r in first["items"] + second["items"]] == [member["id"], runs["id"]]


async def test_an_exact_duplicate_relationship_is_409_but_another_type_is_fine(client):
    a, b = await create_ci(client, type="server"), await create_ci(client, type="network")
    body = {"source_id": a["id"], "target_id": b["id"], "type": "connects_to"}
    assert (await client.post("/v1/relationships", json=body)).status_code == 201
    assert_problem(await client.post("/v1/relationships", json=body), 409)
    assert (await client.post("/v1/relationships", json=body | {"type": "depends_on"})).status_code == 201
    assert (await client.post("/v1/relationships", json=body | {"source_id": b["id"], "target_id": a["id"]})
            ).status_code == 201, "the reverse direction is a different relationship"


async def test_a_self_loop_is_a_422_problem(client):
    ci = await create_ci(client, type="server")
    problem = assert_problem(await client.post("/v1/relationships", json={
        "source_id": ci["id"], "target_id": ci["id"], "type": "depends_on"}), 422)
    assert problem["errors"][0]["field"] == "target_id"


@pytest.mark.parametrize("missing", ["source_id", "target_id"])
async def test_a_relationship_to_an_unknown_ci_is_a_422_naming_the_field(client, missing):
    ci = await create_ci(client, type="server")
    body = {"source_id": ci["id"], "target_id": ci["id"], "type": "runs_on"} | {missing: str(uuid.uuid4())}
    problem = assert_problem(await client.post("/v1/relationships", json=body), 422)
    assert problem["errors"] == [{"field": missing, "message": f"CI {body[missing]} does not exist",
                                  "type": "not_found"}]


async def test_bad_relationship_input_is_a_problem_with_field_errors(client):
    ci = await create_ci(client)
    problem = assert_problem(await client.post("/v1/relationships", json={
        "source_id": ci["id"], "target_id": str(uuid.uuid4()), "type": "uses"}), 422)
    assert [e["field"] for e in problem["errors"]] == ["type"]


async def test_relationship_idempotency_key_returns_the_first_result(client):
    a, b = await create_ci(client, type="application"), await create_ci(client, type="database")
    body = {"source_id": a["id"], "target_id": b["id"], "type": "depends_on"}
    key = str(uuid.uuid4())
    first = await client.post("/v1/relationships", json=body, headers={"Idempotency-Key": key})
    second = await client.post("/v1/relationships", json=body, headers={"Idempotency-Key": key})
    assert first.status_code == second.status_code == 201
    assert second.json() == first.json()


async def test_list_filters_by_type_and_paginates_with_a_cursor(client):
    created = {(await create_ci(client, type="other"))["id"] for _ in range(5)}
    seen, cursor = [], None
    while True:
        params = {"type": "other", "limit": 2} | ({"cursor": cursor} if cursor else {})
        page = (await client.get("/v1/cis", params=params)).json()
        assert len(page["items"]) <= 2
        assert all(c["type"] == "other" for c in page["items"])
        seen += [c["id"] for c in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert len(seen) == len(set(seen)) and created <= set(seen)


@pytest.mark.parametrize("cursor", ["garbage!", base64.urlsafe_b64encode(b'["x"]').decode()])
async def test_a_cursor_this_api_did_not_return_is_400(client, cursor):
    assert_problem(await client.get("/v1/cis", params={"cursor": cursor}), 400)


async def test_unknown_type_filter_is_422(client):
    assert_problem(await client.get("/v1/cis", params={"type": "vm"}), 422)


async def test_health_readiness_metrics_and_openapi(client):
    assert (await client.get("/healthz")).json() == {"status": "ok", "service": "cmdb-svc"}
    assert (await client.get("/readyz")).json()["checks"] == {"database": True, "bus": True}
    assert "itsm_http_requests_total" in (await client.get("/metrics")).text
    paths = (await client.get("/openapi.json")).json()["paths"]
    assert {"/v1/cis", "/v1/cis/{ci_id}", "/v1/cis/{ci_id}/relationships", "/v1/relationships"} <= set(paths)
