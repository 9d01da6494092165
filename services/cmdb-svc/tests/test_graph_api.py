"""cmdb-svc graph features on real PostgreSQL and Kafka: signals, availability, impact, import, history."""

import json
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from cmdb_svc.main import create_app
from cmdb_svc.settings import Settings
from itsm_events import from_kafka, topics
from itsm_runtime.testing import read_topic, running_app

T0 = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)


@pytest.fixture(scope="module")
def settings(service_settings):
    return service_settings(Settings, db_schema=f"cmdb_{uuid.uuid4().hex[:6]}")


@pytest.fixture(scope="module")
async def client(settings):
    async with running_app(create_app(settings)) as client:
        yield client


def at(minutes: int) -> str:
    return (T0 + timedelta(minutes=minutes)).isoformat().replace("+00:00", "Z")


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


async def create_ci(client, type_: str = "server", **fields) -> dict:
    response = await client.post("/v1/cis", json={"name": unique(type_), "type": type_} | fields)
    assert response.status_code == 201, response.text
    return response.json()


async def relate(client, source: dict, type_: str, target: dict) -> dict:
    response = await client.post("/v1/relationships",
                                 json={"source_id": source["id"], "target_id": target["id"], "type": type_})
    assert response.status_code == 201, response.text
    return response.json()


async def send(client, *signals: tuple[dict, str, int]) -> dict:
    body = {"signals": [{"ci_id": ci["id"], "status": status, "observed_at": at(minute)}
                        for ci, status, minute in signals]}
    response = await client.post("/v1/signals", json=body)
    assert response.status_code == 200, response.text
    return response.json()


async def availability(client, service: dict, **params) -> dict:
    response = await client.get(f"/v1/services/{service['id']}/availability", params=params)
    assert response.status_code == 200, response.text
    return response.json()


async def web_shop(client, *, redundancy: dict | None = None, nodes: int = 2) -> dict:
    """service depends_on app, app runs_on cluster, `nodes` servers member_of the cluster."""
    shop = {"service": await create_ci(client, "business_service", id=unique("shop")),
            "app": await create_ci(client, "application"),
            "cluster": await create_ci(client, "cluster", redundancy=redundancy or {"min_up": 1}),
            "nodes": [await create_ci(client, "server") for _ in range(nodes)]}
    await relate(client, shop["service"], "depends_on", shop["app"])
    await relate(client, shop["app"], "runs_on", shop["cluster"])
    for node in shop["nodes"]:
        await relate(client, node, "member_of", shop["cluster"])
    return shop


def assert_problem(response, status: int) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    return response.json()


# redundancy and propagation -------------------------------------------------------------------


async def test_one_of_two_nodes_down_degrades_the_service_and_both_down_take_it_down(client):
    shop = await web_shop(client)
    node1, node2 = shop["nodes"]
    await send(client, (node1, "down", 1))
    state = await availability(client, shop["service"])
    assert (state["status"], state["since"], state["cause_ci_ids"]) == ("degraded", at(1),
                                                                         [node1["id"]])
    await send(client, (node2, "down", 2))
    state = await availability(client, shop["service"])
    assert state["status"] == "down" and state["cause_ci_ids"] == sorted([node1["id"], node2["id"]])
    assert [h["status"] for h in state["history"]] == ["down", "degraded"], "newest first"
    cluster = (await client.get(f"/v1/cis/{shop['cluster']['id']}")).json()
    assert cluster["health"] == "down"


async def test_min_up_percent_keeps_the_service_degraded_until_too_few_members_remain(client):
    shop = await web_shop(client, redundancy={"min_up_percent": 50}, nodes=4)
    statuses = []
    for minute, node in enumerate(shop["nodes"], start=1):
        await send(client, (node, "down", minute))
        statuses.append((await availability(client, shop["service"]))["status"])
    assert statuses == ["degraded", "degraded", "down", "down"]


async def test_a_failure_deep_down_a_dependency_chain_takes_the_service_down_and_recovers(client):
    service = await create_ci(client, "business_service")
    chain = [service] + [await create_ci(client, t) for t in ("application", "application", "database", "server",
                                                              "cluster")]
    for upper, lower, type_ in zip(chain[:-1], chain[1:], ["depends_on", "depends_on", "depends_on", "runs_on",
                                                     "hosted_on"], strict=True):
        await relate(client, upper, type_, lower)
    result = await send(client, (chain[-1], "down", 1))
    assert [c["ci_id"] for c in result["changes"]] == [c["id"] for c in reversed(chain)]
    assert (await availability(client, service))["cause_ci_ids"] == [chain[-1]["id"]]
    await send(client, (chain[-1], "up", 2))
    state = await availability(client, service)
    assert (state["status"], state["cause_ci_ids"]) == ("up", [chain[-1]["id"]])


async def test_connects_to_does_not_propagate(client):
    service = await create_ci(client, "business_service")
    switch = await create_ci(client, "network")
    await relate(client, service, "connects_to", switch)
    await send(client, (switch, "down", 1))
    assert (await availability(client, service))["status"] == "up"


async def test_a_late_signal_is_acknowledged_and_does_not_overwrite_newer_state(client):
    shop = await web_shop(client)
    node1 = shop["nodes"][0]
    await send(client, (node1, "down", 10))
    result = await send(client, (node1, "up", 5))
    assert result["applied"] == 0 and result["changes"] == []
    assert [(s["ci_id"], s["status"]) for s in result["late"]] == [(node1["id"], "up")]
    assert (await availability(client, shop["service"]))["status"] == "degraded"
    assert (await client.get(f"/v1/cis/{node1['id']}")).json()["health"] == "down"


async def test_signal_shapes_single_batch_and_list_are_accepted(client):
    server = await create_ci(client)
    single = await client.post("/v1/signals", json={"ci_id": server["id"], "status": "down", "observed_at": at(1)})
    listed = await client.post("/v1/signals", json=[{"ci_id": server["id"], "status": "up", "observed_at": at(2)},
                                                    {"ci_id": server["id"], "status": "degraded", "source": "nagios"}])
    assert single.status_code == listed.status_code == 200
    assert single.json()["changes"][0]["status"] == "down"
    assert [c["status"] for c in listed.json()["changes"]] == ["up", "degraded"]


async def test_a_signal_for_an_unknown_ci_rejects_the_whole_batch(client):
    server = await create_ci(client)
    missing = str(uuid.uuid4())
    problem = assert_problem(await client.post("/v1/signals", json={"signals": [
        {"ci_id": server["id"], "status": "down"}, {"ci_id": missing, "status": "down"}]}), 422)
    assert problem["errors"] == [{"field": "signals.1.ci_id", "message": f"CI {missing} does not exist",
                                  "type": "not_found"}]
    assert (await client.get(f"/v1/cis/{server['id']}")).json()["health"] == "up"


@pytest.mark.parametrize("body", [
    {"ci_id": "x", "status": "sideways"},
    {"ci_id": "x", "status": "up", "observed_at": "2026-11-24T09:00:00"},
    {"signals": []},
    {"signals": [{"status": "up"}]},
    [],
    "up",
])
async def test_bad_signals_are_a_problem_with_field_errors(client, body):
    assert_problem(await client.post("/v1/signals", json=body), 422)


async def test_availability_events_are_published_only_when_the_service_status_changes(client, kafka_bootstrap):
    shop = await web_shop(client)
    node1, node2 = shop["nodes"]
    await send(client, (node1, "down", 1))
    await send(client, (node1, "down", 2))  # no change anywhere
    await send(client, (node1, "up", 3), (node2, "down", 3))  # the cluster stays degraded
    await send(client, (node2, "up", 4))
    service_id = shop["service"]["id"]

    def availability_events(records):
        return [from_kafka(dict(r.headers), r.value) for r in records if r.key == service_id.encode()
                and dict(r.headers)["ce_type"] == b"itsm.cmdb.service_availability_changed"]

    # per-key order: once the recovery is read, every earlier event for the service has been too
    records = await read_topic(kafka_bootstrap, topics.CMDB, until=lambda rs: any(
        e.data["status"] == "up" for e in availability_events(rs)))
    events = [e.data for e in availability_events(records)]
    assert [(e["status"], e["observed_at"]) for e in events] == [("degraded", at(1)), ("up", at(4))]
    assert events[0] == {"service_id": service_id, "status": "degraded", "observed_at": at(1),
                         "cause_ci_ids": [node1["id"]]}
    node_events = [json.loads(r.value) for r in records if r.key == node1["id"].encode()
                   and dict(r.headers)["ce_type"] == b"itsm.cmdb.ci_status_changed"]
    assert [(e["previous_status"], e["status"]) for e in node_events] == [("up", "down"), ("down", "up")]


async def test_availability_history_pages_from_newest_to_oldest(client):
    shop = await web_shop(client, redundancy={"min_up": 2})
    node = shop["nodes"][0]
    for minute in range(1, 6):
        await send(client, (node, "down" if minute % 2 else "up", minute))
    first = await availability(client, shop["service"], limit=2)
    second = await availability(client, shop["service"], limit=2, cursor=first["next_cursor"])
    third = await availability(client, shop["service"], limit=2, cursor=second["next_cursor"])
    seen = [h["observed_at"] for page in (first, second, third) for h in page["history"]]
    assert seen == [at(m) for m in (5, 4, 3, 2, 1)]
    assert third["next_cursor"] is None


async def test_availability_of_an_unknown_service_or_a_non_service_is_404(client):
    assert_problem(await client.get(f"/v1/services/{uuid.uuid4()}/availability"), 404)
    server = await create_ci(client)
    assert_problem(await client.get(f"/v1/services/{server['id']}/availability"), 404)


async def test_a_second_process_on_the_same_database_sees_the_graph_and_health(client, settings):
    shop = await web_shop(client)
    await send(client, (shop["nodes"][0], "down", 1))
    async with running_app(create_app(settings)) as other:
        await send(other, (shop["nodes"][1], "down", 2))
        assert (await availability(other, shop["service"]))["status"] == "down"
        late_server = await create_ci(other)
        await relate(other, late_server, "member_of", shop["cluster"])
    result = await send(client, (shop["nodes"][0], "up", 3))
    assert (await availability(client, shop["service"]))["status"] == "degraded", (
        "the first process picked up the member added by the second: 2 of 3 up")
    assert {c["ci_id"] for c in result["changes"]} >= {shop["cluster"]["id"], shop["service"]["id"]}


# business service ids -------------------------------------------------------------------------


async def test_a_business_service_can_be_created_with_the_service_id_the_platform_uses(client):
    service_id = unique("payments")
    created = await create_ci(client, "business_service", id=service_id)
    assert created["id"] == service_id
    assert (await availability(client, created))["service_id"] == service_id
    problem = assert_problem(await client.post("/v1/cis", json={"id": service_id, "name": "again",
                                                                "type": "business_service"}), 409)
    assert problem["id"] == service_id
    assert_problem(await client.post("/v1/cis", json={"id": "has/slash", "name": "x", "type": "server"}), 422)


# cycles ---------------------------------------------------------------------------------------


async def test_a_relationship_closing_a_dependency_cycle_is_a_409_naming_it(client):
    a, b, c = [await create_ci(client, "application") for _ in range(3)]
    await relate(client, a, "depends_on", b)
    await relate(client, b, "runs_on", c)
    problem = assert_problem(await client.post("/v1/relationships", json={
        "source_id": c["id"], "target_id": a["id"], "type": "hosted_on"}), 409)
    assert problem["cycle"] == [c["id"], a["id"], b["id"], c["id"]]
    assert a["id"] in problem["detail"]
    assert (await client.post("/v1/relationships", json={
        "source_id": c["id"], "target_id": a["id"], "type": "connects_to"})).status_code == 201
    relationships = (await client.get(f"/v1/cis/{c['id']}/relationships")).json()["items"]
    assert sorted(r["type"] for r in relationships) == ["connects_to", "runs_on"]


# impact and graph queries ---------------------------------------------------------------------


async def test_impact_lists_services_with_paths_honouring_redundancy(client):
    shop = await web_shop(client)
    billing = await create_ci(client, "business_service")
    await relate(client, billing, "depends_on", shop["app"])
    node1 = shop["nodes"][0]
    impact = (await client.get(f"/v1/cis/{node1['id']}/impact")).json()
    assert [(s["service_id"], s["status"]) for s in impact["services"]] == sorted(
        [(shop["service"]["id"], "degraded"), (billing["id"], "degraded")])
    path = next(s for s in impact["services"] if s["service_id"] == shop["service"]["id"])["path"]
    assert [(p["ci_id"], p["via"]) for p in path] == [
        (shop["service"]["id"], None), (shop["app"]["id"], "depends_on"), (shop["cluster"]["id"], "runs_on"),
        (node1["id"], "member_of")]
    assert path[0]["name"] == shop["service"]["name"] and path[-1]["type"] == "server"
    app_impact = (await client.get(f"/v1/cis/{shop['app']['id']}/impact")).json()
    assert {s["status"] for s in app_impact["services"]} == {"down"}


async def test_impact_from_the_current_state_counts_a_member_already_down(client):
    shop = await web_shop(client)
    await send(client, (shop["nodes"][1], "down", 1))
    node1 = shop["nodes"][0]
    assert (await client.get(f"/v1/cis/{node1['id']}/impact")).json()["services"][0]["status"] == "degraded"
    current = (await client.get(f"/v1/cis/{node1['id']}/impact", params={"baseline": "current"})).json()
    assert current["services"][0]["status"] == "down"
    assert (await client.get(f"/v1/cis/{node1['id']}")).json()["health"] == "up", "impact writes nothing"


async def test_upstream_and_downstream_stop_at_the_depth(client):
    shop = await web_shop(client)
    node1 = shop["nodes"][0]
    upstream = (await client.get(f"/v1/cis/{node1['id']}/upstream", params={"depth": 2})).json()
    assert [(c["id"], c["distance"]) for c in upstream["cis"]] == [(shop["cluster"]["id"], 1),
                                                                    (shop["app"]["id"], 2)]
    assert {(r["source_id"], r["type"], r["target_id"]) for r in upstream["relationships"]} == {
        (node1["id"], "member_of", shop["cluster"]["id"]), (shop["app"]["id"], "runs_on", shop["cluster"]["id"])}
    downstream = (await client.get(f"/v1/cis/{shop['service']['id']}/downstream", params={"depth": 10})).json()
    assert {c["id"] for c in downstream["cis"]} == {shop["app"]["id"], shop["cluster"]["id"],
                                                    *(n["id"] for n in shop["nodes"])}
    assert_problem(await client.get(f"/v1/cis/{node1['id']}/upstream", params={"depth": 0}), 422)
    assert_problem(await client.get(f"/v1/cis/{uuid.uuid4()}/downstream"), 404)
    assert_problem(await client.get(f"/v1/cis/{uuid.uuid4()}/impact"), 404)


# changes and history --------------------------------------------------------------------------


async def test_changes_are_versioned_with_who_what_and_the_change_reference(client, kafka_bootstrap):
    ci = await create_ci(client, "database", key=unique("db"), attributes={"engine": "postgres", "tier": "gold"})
    response = await client.patch(f"/v1/cis/{ci['id']}", headers={"X-Actor": "alice"}, json={
        "status": "maintenance", "owner": "dba-team", "attributes": {"tier": None, "version": "18"},
        "change_ref": "CHG0001234"})
    assert response.status_code == 200, response.text
    changed = response.json()
    assert (changed["status"], changed["owner"], changed["version"]) == ("maintenance", "dba-team", 2)
    assert changed["attributes"] == {"engine": "postgres", "version": "18"}
    await client.patch(f"/v1/cis/{ci['id']}", json={"criticality": 1, "changed_by": "bob"})
    same = await client.patch(f"/v1/cis/{ci['id']}", json={"criticality": 1, "changed_by": "bob"})
    assert same.json()["version"] == 3, "a change that changes nothing is no version"
    history = (await client.get(f"/v1/cis/{ci['id']}/history")).json()["items"]
    assert [(h["version"], h["changed_by"], h["change_ref"]) for h in history] == [
        (1, None, None), (2, "alice", "CHG0001234"), (3, "bob", None)]
    assert history[1]["changes"] == {
        "owner": {"before": None, "after": "dba-team"}, "status": {"before": "active", "after": "maintenance"},
        "attributes": {"before": {"engine": "postgres", "tier": "gold"},
                       "after": {"engine": "postgres", "version": "18"}}}
    assert history[0]["changes"]["name"] == {"before": None, "after": ci["name"]}

    def updates(records):
        return [json.loads(r.value) for r in records if r.key == ci["id"].encode()
                and dict(r.headers)["ce_type"] == b"itsm.cmdb.ci_updated"]

    events = updates(await read_topic(kafka_bootstrap, topics.CMDB, until=lambda rs: len(updates(rs)) >= 2))
    assert events[0] == {"ci_id": ci["id"], "version": 2, "changed": ["owner", "status", "attributes"],
                         "changed_by": "alice", "change_ref": "CHG0001234"}


async def test_bad_changes_are_problems(client):
    ci = await create_ci(client, key=unique("k"))
    other = await create_ci(client, key=unique("k"))
    assert_problem(await client.patch(f"/v1/cis/{ci['id']}", json={"key": other["key"]}), 409)
    assert_problem(await client.patch(f"/v1/cis/{ci['id']}", json={"status": "dead"}), 422)
    assert_problem(await client.patch(f"/v1/cis/{ci['id']}", json={"name": None}), 422)
    assert_problem(await client.patch(f"/v1/cis/{ci['id']}", json={"colour": "red"}), 422)
    assert_problem(await client.patch(f"/v1/cis/{uuid.uuid4()}", json={"owner": "x"}), 404)
    assert (await client.get(f"/v1/cis/{ci['id']}")).json()["version"] == 1


async def test_changing_a_cluster_redundancy_changes_its_health_on_the_next_signal(client):
    shop = await web_shop(client, redundancy={"min_up": 2})
    await send(client, (shop["nodes"][0], "down", 1))
    assert (await availability(client, shop["service"]))["status"] == "down"
    await client.patch(f"/v1/cis/{shop['cluster']['id']}", json={"redundancy": {"min_up": 1}})
    await send(client, (shop["nodes"][1], "up", 2), (shop["nodes"][0], "down", 2))
    assert (await client.get(f"/v1/cis/{shop['cluster']['id']}/impact")).json()["services"][0]["status"] == "down"


# search ---------------------------------------------------------------------------------------


async def test_search_filters_by_type_status_criticality_and_text(client):
    tag = uuid.uuid4().hex[:8]
    wanted = await create_ci(client, "database", name=f"Orders_{tag} primary", criticality=1, status="active")
    await create_ci(client, "database", name=f"orders_{tag} replica", criticality=2)
    await create_ci(client, "database", name=f"orders_{tag} old", criticality=1, status="retired")
    await create_ci(client, "server", name=f"orders_{tag} host", criticality=1)
    found = (await client.get("/v1/cis", params={"q": f"ORDERS_{tag}", "type": "database", "status": "active",
                                                 "criticality": 1})).json()["items"]
    assert [c["id"] for c in found] == [wanted["id"]]
    assert len((await client.get("/v1/cis", params={"q": f"orders_{tag}", "limit": 2})).json()["items"]) == 2
    assert (await client.get("/v1/cis", params={"q": "%_%" + tag})).json()["items"] == [], "wildcards are literal"
    assert_problem(await client.get("/v1/cis", params={"status": "gone"}), 422)


async def test_search_by_health(client):
    server = await create_ci(client, name=unique("sick"))
    await send(client, (server, "degraded", 1))
    found = (await client.get("/v1/cis", params={"health": "degraded", "q": server["name"]})).json()["items"]
    assert [c["id"] for c in found] == [server["id"]] and found[0]["health"] == "degraded"


# import ---------------------------------------------------------------------------------------


async def test_json_import_creates_cis_and_relationships_by_key_in_one_go(client, kafka_bootstrap):
    tag = uuid.uuid4().hex[:8]
    existing = await create_ci(client, "cluster", key=f"vmware-{tag}", redundancy={"min_up": 1})
    body = {"cis": [
        {"id": f"svc-{tag}", "name": "Shop", "type": "business_service", "criticality": 1},
        {"key": f"app-{tag}", "name": "shop-app", "type": "application", "owner": "team-shop"},
        {"key": f"db-{tag}", "name": "shop-db", "type": "database", "attributes": {"engine": "postgres"}},
    ], "relationships": [
        {"source_id": f"svc-{tag}", "target_key": f"app-{tag}", "type": "depends_on"},
        {"source_key": f"app-{tag}", "target_key": f"db-{tag}", "type": "depends_on"},
        {"source_key": f"db-{tag}", "target_key": f"vmware-{tag}", "type": "hosted_on"},
    ]}
    response = await client.post("/v1/import", json=body, headers={"X-Actor": "discovery"})
    assert response.status_code == 201, response.text
    result = response.json()
    assert [r["key"] for r in result["cis"]] == [None, f"app-{tag}", f"db-{tag}"]
    assert result["cis"][0]["id"] == f"svc-{tag}" and len(result["relationships"]) == 3
    impact = (await client.get(f"/v1/cis/{existing['id']}/impact")).json()["services"]
    assert [(s["service_id"], s["status"], len(s["path"])) for s in impact] == [(f"svc-{tag}", "down", 4)]
    history = (await client.get(f"/v1/cis/{result['cis'][1]['id']}/history")).json()["items"]
    assert history[0]["changed_by"] == "discovery"

    def created(records):
        return [r for r in records if r.key == f"svc-{tag}".encode()]

    records = created(await read_topic(kafka_bootstrap, topics.CMDB, until=lambda rs: len(created(rs)) >= 2))
    assert [dict(r.headers)["ce_type"] for r in records] == [b"itsm.cmdb.ci_created",
                                                              b"itsm.cmdb.relationship_created"]


async def test_csv_import_creates_cis(client):
    tag = uuid.uuid4().hex[:8]
    csv_body = (
        "key,name,type,criticality,owner,status,min_up,min_up_percent,attributes\n"
        f"web-{tag}-1,web 1,server,2,ops,active,,,\"{{\"\"rack\"\": \"\"A1\"\"}}\"\n"
        f"web-{tag}-pool,web pool,cluster,,ops,planned,,50,\n"
    )
    response = await client.post("/v1/import", content=csv_body.encode(), headers={"content-type": "text/csv"})
    assert response.status_code == 201, response.text
    ids = [r["id"] for r in response.json()["cis"]]
    web, pool = [(await client.get(f"/v1/cis/{i}")).json() for i in ids]
    assert (web["key"], web["criticality"], web["owner"], web["attributes"]) == (f"web-{tag}-1", 2, "ops",
                                                                                   {"rack": "A1"})
    assert (pool["status"], pool["redundancy"], pool["criticality"]) == ("planned", {"min_up_percent": 50}, None)


async def test_an_import_with_bad_rows_writes_nothing_and_lists_every_bad_row(client):
    tag = uuid.uuid4().hex[:8]
    taken = await create_ci(client, key=f"taken-{tag}")
    a, b = await create_ci(client, "application"), await create_ci(client, "application")
    await relate(client, a, "depends_on", b)
    body = {"cis": [
        {"key": f"ok-{tag}", "name": "fine", "type": "server"},
        {"key": taken["key"], "name": "clash", "type": "server"},
        {"key": f"dup-{tag}", "name": "first", "type": "server"},
        {"key": f"dup-{tag}", "name": "second", "type": "server"},
    ], "relationships": [
        {"source_key": f"ok-{tag}", "target_key": f"nowhere-{tag}", "type": "runs_on"},
        {"source_id": b["id"], "target_id": a["id"], "type": "depends_on"},
        {"source_key": f"ok-{tag}", "target_id": b["id"], "type": "member_of"},
    ]}
    problem = assert_problem(await client.post("/v1/import", json=body), 422)
    assert [(e["section"], e["row"], e["field"]) for e in problem["errors"]] == [
        ("cis", 1, "key"), ("cis", 3, "key"), ("relationships", 0, "target_key"), ("relationships", 1, "target")]
    assert "cycle" in problem["errors"][3]["message"]
    assert (await client.get("/v1/cis", params={"q": f"ok-{tag}"})).json()["items"] == []
    assert len((await client.get(f"/v1/cis/{b['id']}/relationships")).json()["items"]) == 1


async def test_schema_errors_in_import_rows_name_row_and_field(client):
    body = {"cis": [{"name": "fine", "type": "server"}, {"name": "bad", "type": "vm"},
                    {"name": "worse", "type": "server", "criticality": 9}],
            "relationships": [{"source_key": "x", "type": "depends_on"}]}
    problem = assert_problem(await client.post("/v1/import", json=body), 422)
    assert [(e["section"], e["row"], e["field"]) for e in problem["errors"]] == [
        ("cis", 1, "type"), ("cis", 2, "criticality"), ("relationships", 0, "row")]
    csv_problem = assert_problem(await client.post("/v1/import", content=b"name,type\nok,server\n,server\n",
                                                   headers={"content-type": "text/csv"}), 422)
    assert [(e["row"], e["field"]) for e in csv_problem["errors"]] == [(1, "name")]
    assert_problem(await client.post("/v1/import", content=b"name,colour\nx,red\n",
                                     headers={"content-type": "text/csv"}), 422)
    assert_problem(await client.post("/v1/import", content=b"<cis/>", headers={"content-type": "application/xml"}),
                   415)
    assert_problem(await client.post("/v1/import", content=b"{oops", headers={"content-type": "application/json"}),
                   422)
