"""Service availability end to end over real Kafka, each service its own process:
a component goes down -> its business service goes down (cmdb-svc) -> an outage incident opens
(incident-svc) -> the SLA resolution clock starts and the availability objective counts downtime
(sla-svc) -> the component recovers -> the service is up, the incident is resolved, the clock stops
as met and the downtime is exactly the outage; a strict objective it broke opened a service review,
and the month's report shows the clock, both objectives and the breach.
"""

import uuid
from datetime import UTC, datetime

import pytest

from itsm_runtime.testing import eventually

pytestmark = pytest.mark.e2e


async def post(http, url: str, body: dict) -> dict:
    response = await http.post(url, json=body)
    assert response.status_code in (200, 201, 202), response.text
    return response.json()


async def test_a_component_outage_opens_and_resolves_an_incident_with_its_sla_clock(stack, http):
    cmdb, incidents, sla = stack.url("cmdb-svc"), stack.url("incident-svc"), stack.url("sla-svc")
    service_id = f"payments-{uuid.uuid4().hex[:8]}"
    agreement = await post(http, f"{sla}/v1/agreements", {
        "name": "Payments", "service_id": service_id,
        "targets": [{"metric": "resolution", "priority": 1, "within": "PT1H"}],
        "objectives": [{"kind": "availability", "target": 99.9, "window": "calendar_month"},
                       {"kind": "availability", "target": 99.9999999, "window": "calendar_month"}]})
    service = await post(http, f"{cmdb}/v1/cis", {"id": service_id, "name": "Payments", "type": "business_service",
                                                  "criticality": 1})
    app = await post(http, f"{cmdb}/v1/cis", {"name": "payments-api", "type": "application"})
    cluster = await post(http, f"{cmdb}/v1/cis", {"name": "payments-db", "type": "cluster",
                                                  "redundancy": {"min_up": 1}})
    nodes = [await post(http, f"{cmdb}/v1/cis", {"name": f"db-{n}", "type": "database"}) for n in (1, 2)]
    for source, target, kind in [(service, app, "depends_on"), (app, cluster, "depends_on"),
                                 (nodes[0], cluster, "member_of"), (nodes[1], cluster, "member_of")]:
        await post(http, f"{cmdb}/v1/relationships", {"source_id": source["id"], "target_id": target["id"],
                                                      "type": kind})

    async def outage_incidents():
        response = await http.get(f"{incidents}/v1/incidents", params={"service_id": service_id})
        return response.json()["items"]

    # one node down: redundancy keeps the service degraded, which by default opens no incident
    await post(http, f"{cmdb}/v1/signals", {"ci_id": nodes[0]["id"], "status": "down"})
    availability = (await http.get(f"{cmdb}/v1/services/{service_id}/availability")).json()
    assert availability["status"] == "degraded"

    # both nodes down: the service is down and one P1 outage incident opens with an SLA clock
    down_at = datetime.now(UTC)
    await post(http, f"{cmdb}/v1/signals", {"ci_id": nodes[1]["id"], "status": "down",
                                            "observed_at": down_at.isoformat()})
    opened = await eventually(outage_incidents, timeout=20)
    assert len(opened) == 1 and opened[0]["priority"] == 1 and opened[0]["status"] != "resolved"
    incident = opened[0]
    assert datetime.fromisoformat(incident["opened_at"]) == down_at, "the incident opens at the outage's event time"

    async def clocks():
        response = await http.get(f"{sla}/v1/clocks", params={"incident_id": incident["id"]})
        return response.json()["items"]

    clock = (await eventually(clocks, timeout=20))[0]
    assert clock["stage"] == "running" and clock["metric"] == "resolution"

    # the nodes recover: the service is up, the incident resolves and the clock stops as met
    up_at = datetime.now(UTC)
    await post(http, f"{cmdb}/v1/signals", {"signals": [{"ci_id": n["id"], "status": "up",
                                                         "observed_at": up_at.isoformat()} for n in nodes]})

    async def resolved():
        items = await outage_incidents()
        return items if items and items[0]["status"] == "resolved" else None

    await eventually(resolved, timeout=20)

    async def stopped():
        items = await clocks()
        return items if items and items[0]["stage"] == "completed" else None

    clock = (await eventually(stopped, timeout=20))[0]
    assert clock["breached"] is False
    availability = (await http.get(f"{cmdb}/v1/services/{service_id}/availability")).json()
    assert availability["status"] == "up"
    assert [h["status"] for h in availability["history"]][:3] == ["up", "down", "degraded"]
    assert len(await outage_incidents()) == 1, "one incident per outage"

    async def outage_counted():
        objective = (await http.get(f"{sla}/v1/agreements/{agreement['id']}/compliance")).json()["objectives"][0]
        return objective if objective["downtime_seconds"] == (up_at - down_at).total_seconds() else None

    objective = await eventually(outage_counted, timeout=20)
    assert objective["remaining_budget_seconds"] < objective["allowed_downtime_seconds"]
    assert objective["degraded_seconds"] > 0, "one node down degraded the service before the outage"

    # the outage broke the strict objective (under 3 ms a month): it opened a service review
    async def review():
        response = await http.get(f"{sla}/v1/reviews", params={"agreement_id": agreement["id"]})
        return response.json()["items"]

    reviews = await eventually(review, timeout=20)
    assert [(b["kind"], b["ref_id"].split("@")[0]) for b in reviews[0]["breaches"]] == [("objective", "objective-2")]
    compliance = (await http.get(f"{sla}/v1/agreements/{agreement['id']}/compliance")).json()
    assert compliance["status"] == "breached" and compliance["objectives"][1]["status"] == "breached", compliance

    # and the month's report has the met clock, both objectives and the breach, in JSON and in HTML
    period = down_at.strftime("%Y-%m")
    report = (await http.get(f"{sla}/v1/reports/{agreement['id']}", params={"period": period})).json()
    assert report["incidents"] == 1 and report["targets"][0]["met"] == 1
    assert [o["status"] for o in report["objectives"]] == ["ok", "breached"]
    assert [b["kind"] for b in report["breaches"]] == ["objective"]
    page = await http.get(f"{sla}/v1/reports/{agreement['id']}", params={"period": period, "format": "html"})
    assert page.status_code == 200 and "<svg" in page.text
