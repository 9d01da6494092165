"""sla-svc on real PostgreSQL and Kafka, fed by a real incident-svc over Kafka (fixtures in conftest.py)."""

import asyncio
import csv
import io
import json
import uuid
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from itsm_events import new_event, schemas, to_kafka, topics
from itsm_runtime.testing import eventually, read_topic, running_app
from sla_svc.db.tables import platform
from sla_svc.main import create_app as create_sla_app
from sla_svc.reports import period_of
from sla_svc.settings import Settings as SlaSettings
from sla_testing import clocks_of, make_agreement


async def test_agreement_round_trip_keeps_iso_durations(sla):
    agreement = await make_agreement(sla, within="PT4H")
    assert agreement["targets"][0]["within"] == "PT4H"
    assert agreement["calendar_id"] == "24x7" and agreement["warning_thresholds"] == [0.5, 0.75, 0.9]
    fetched = (await sla.get(f"/v1/agreements/{agreement['id']}")).json()
    assert fetched == agreement


async def test_bad_agreements_are_problems(sla):
    for body in ({"name": "x", "service_id": "s", "targets": []},
                 {"name": "x", "service_id": "s", "targets": [{"metric": "resolution", "priority": 1, "within": "4h"}]},
                 {"name": "x", "service_id": "s", "warning_thresholds": [0.9, 0.5],
                  "targets": [{"metric": "resolution", "priority": 1, "within": "PT1H"}]},
                 {"name": "x", "service_id": "s",
                  "targets": [{"metric": "resolution", "priority": 1, "within": "P999999999D"}]},
                 {"name": "x", "service_id": "s", "calendar_id": "nope",
                  "targets": [{"metric": "resolution", "priority": 1, "within": "PT1H"}]},
                 {"name": "x", "service_id": "s", "effective_from": "0001-01-01T00:00:00Z",
                  "targets": [{"metric": "resolution", "priority": 1, "within": "PT1H"}]}):
        response = await sla.post("/v1/agreements", json=body)
        assert response.status_code == 422, body
        assert response.headers["content-type"] == "application/problem+json"
    assert (await sla.get(f"/v1/agreements/{uuid.uuid4()}/compliance")).status_code == 404


async def test_p1_incident_breaches_at_the_deadline(sla, incidents, kafka_bootstrap):
    agreement = await make_agreement(sla, within="PT2S")
    incident = (await incidents.post("/v1/incidents", json={
        "title": "down", "service_id": agreement["service_id"], "impact": 1, "urgency": 1})).json()
    clocks = await eventually(lambda: clocks_of(sla, incident["id"]))
    assert clocks[0]["stage"] == "running" and clocks[0]["metric"] == "resolution"

    def breached(records):
        return [r for r in records if dict(r.headers)["ce_type"] == b"itsm.sla.breached"
                and json.loads(r.value)["incident_id"] == incident["id"]]

    records = breached(await read_topic(kafka_bootstrap, topics.SLA, until=breached, timeout=15))
    assert len(records) == 1
    data = json.loads(records[0].value)
    deadline = datetime.fromisoformat(data["deadline"])
    assert deadline == datetime.fromisoformat(incident["opened_at"]) + timedelta(seconds=2)
    assert datetime.fromisoformat(data["breached_at"]) == deadline
    assert dict(records[0].headers)["ce_time"].decode().startswith(deadline.strftime("%Y-%m-%dT%H:%M:%S"))
    clock = (await clocks_of(sla, incident["id"]))[0]
    assert clock["breached"] is True and clock["stage"] == "running"

    def warnings(records):
        return [json.loads(r.value) for r in records if dict(r.headers)["ce_type"] == b"itsm.sla.warning"
                and json.loads(r.value)["incident_id"] == incident["id"]]

    warned = warnings(await read_topic(kafka_bootstrap, topics.SLA, until=lambda rs: len(warnings(rs)) >= 3))
    opened_at = datetime.fromisoformat(incident["opened_at"])
    assert [(w["threshold"], datetime.fromisoformat(w["warned_at"])) for w in warned] == [
        (0.5, opened_at + timedelta(seconds=1)), (0.75, opened_at + timedelta(seconds=1.5)),
        (0.9, opened_at + timedelta(seconds=1.8))]

    async def compliance():  # refreshed a moment after the clock changed
        state = (await sla.get(f"/v1/agreements/{agreement['id']}/compliance")).json()
        return state if state["status"] == "breached" else None
    assert (await eventually(compliance))["targets"][0]["breached"] == 1


async def test_incident_resolved_in_time_completes_the_clock_as_met(sla, incidents):
    agreement = await make_agreement(sla, within="PT1H")
    incident = (await incidents.post("/v1/incidents", json={
        "title": "slow", "service_id": agreement["service_id"], "impact": 1, "urgency": 1})).json()
    await eventually(lambda: clocks_of(sla, incident["id"]))
    await incidents.patch(f"/v1/incidents/{incident['id']}", json={"status": "resolved"})

    async def completed():
        clocks = await clocks_of(sla, incident["id"])
        return clocks if clocks[0]["stage"] == "completed" else None

    clock = (await eventually(completed))[0]
    assert clock["breached"] is False

    async def compliance():  # refreshed a moment after the clock changed
        state = (await sla.get(f"/v1/agreements/{agreement['id']}/compliance")).json()
        return state if state["targets"][0]["met"] else None
    target = (await eventually(compliance))["targets"][0]
    assert {k: v for k, v in target.items() if k not in ("within", "window_start", "window_end")} == {
        "metric": "resolution", "priority": 1, "met": 1, "breached": 0, "running": 0, "percent_met": 100.0,
        "status": "ok"}
    assert target["window_start"] <= clock["started_at"] < target["window_end"], "clocks of this month"


async def test_on_hold_pauses_and_resumes_the_clock(sla, incidents):
    agreement = await make_agreement(sla, within="PT1H")
    incident = (await incidents.post("/v1/incidents", json={
        "title": "wait", "service_id": agreement["service_id"], "impact": 1, "urgency": 1})).json()
    await eventually(lambda: clocks_of(sla, incident["id"]))
    url = f"/v1/incidents/{incident['id']}"
    await incidents.patch(url, json={"status": "on_hold", "hold_reason": "customer"})

    async def stage_is(stage):
        clocks = await clocks_of(sla, incident["id"])
        return clocks[0] if clocks[0]["stage"] == stage else None

    paused = await eventually(lambda: stage_is("paused"))
    await incidents.patch(url, json={"status": "in_progress"})
    resumed = await eventually(lambda: stage_is("running"))
    assert datetime.fromisoformat(resumed["deadline"]) > datetime.fromisoformat(paused["deadline"])


async def test_response_clock_stops_at_first_move_out_of_new(sla, incidents):
    agreement = await make_agreement(sla, within="PT15M", metric="response", priority=3)
    incident = (await incidents.post("/v1/incidents", json={
        "title": "ack me", "service_id": agreement["service_id"], "impact": 2, "urgency": 2})).json()
    await eventually(lambda: clocks_of(sla, incident["id"]))
    await incidents.patch(f"/v1/incidents/{incident['id']}", json={"status": "in_progress"})

    async def completed():
        clocks = await clocks_of(sla, incident["id"])
        return clocks[0]["stage"] == "completed" and not clocks[0]["breached"]

    await eventually(completed)


async def opened_event_processed(sla_app, kafka_bootstrap, incident_id: str) -> None:
    """Wait until sla-svc's inbox holds the itsm.incident.opened event of this incident."""
    records = await read_topic(kafka_bootstrap, topics.INCIDENT,
                               until=lambda rs: any(r.key == incident_id.encode() for r in rs))
    event_id = next(dict(r.headers)["ce_id"].decode() for r in records if r.key == incident_id.encode())
    inbox = platform["inbox"]

    async def in_inbox():
        async with sla_app.state.runtime.engine.connect() as conn:
            return (await conn.execute(sa.select(inbox.c.event_id).where(inbox.c.event_id == event_id))).first()

    await eventually(in_inbox)


async def test_incident_of_another_customer_or_priority_gets_no_clock(sla, incidents, sla_app, kafka_bootstrap):
    agreement = await make_agreement(sla, within="PT1H", customer_id="acme")
    other = (await incidents.post("/v1/incidents", json={"title": "x", "service_id": agreement["service_id"],
                                                         "customer_id": "globex", "impact": 1, "urgency": 1})).json()
    low = (await incidents.post("/v1/incidents", json={
        "title": "x", "service_id": agreement["service_id"], "customer_id": "acme", "impact": 3, "urgency": 3})).json()
    for incident in (other, low):
        await opened_event_processed(sla_app, kafka_bootstrap, incident["id"])
        assert await clocks_of(sla, incident["id"]) == []


async def test_duplicate_delivery_has_one_effect(sla, producer, sla_app):
    agreement = await make_agreement(sla, within="PT1H")
    incident_id = str(uuid.uuid4())
    envelope = new_event(schemas.IncidentOpened(
        incident_id=incident_id, number="INC9999999", title="dup", service_id=agreement["service_id"],
        impact=1, urgency=1, priority=1, status="new", opened_at=datetime.now(UTC)),
        source="/test", subject=incident_id)
    headers, value = to_kafka(envelope)
    for _ in range(3):
        await producer.send_and_wait(topics.INCIDENT, value=value, key=incident_id.encode(),
                                     headers=list(headers.items()))
    await eventually(lambda: clocks_of(sla, incident_id))
    inbox = platform["inbox"]
    async with sla_app.state.runtime.engine.connect() as conn:
        rows = (await conn.execute(sa.select(inbox).where(inbox.c.event_id == envelope.id))).all()
    assert len(rows) == 1
    assert len(await clocks_of(sla, incident_id)) == 1


async def test_poison_message_goes_to_the_dead_letter_topic_and_consumption_continues(
        sla, sla_app, producer, kafka_bootstrap):
    key = uuid.uuid4().hex.encode()
    await producer.send_and_wait(topics.INCIDENT, value=b"\x00not json", key=key,
                                 headers=[("ce_type", b"itsm.incident.opened"), ("ce_id", b"poison-1"),
                                          ("ce_source", b"/test"), ("ce_specversion", b"1.0"),
                                          ("ce_time", b"2026-11-24T10:00:00Z"),
                                          ("content-type", b"application/json")])
    await producer.send_and_wait(topics.INCIDENT, value=b"{}", key=key, headers=[("ce_type", b"garbage")])
    dlq = topics.dead_letter_topic(topics.INCIDENT, sla_app.state.runtime.dispatcher.group)
    records = await read_topic(kafka_bootstrap, dlq, until=lambda rs: sum(r.key == key for r in rs) >= 2)
    dead = [r for r in records if r.key == key]
    assert all(dict(r.headers)["error"].startswith(b"PoisonMessage") for r in dead)
    assert dict(dead[0].headers)["original_topic"] == topics.INCIDENT.encode()
    # the consumer keeps going: a valid event after the poison is processed
    agreement = await make_agreement(sla, within="PT1H")
    incident_id = str(uuid.uuid4())
    headers, value = to_kafka(new_event(schemas.IncidentOpened(
        incident_id=incident_id, number="INC9999998", title="after poison", service_id=agreement["service_id"],
        impact=1, urgency=1, priority=1, status="new", opened_at=datetime.now(UTC)), source="/test"))
    await producer.send_and_wait(topics.INCIDENT, value=value, key=key, headers=list(headers.items()))
    await eventually(lambda: clocks_of(sla, incident_id))


async def test_overdue_timers_fire_after_restart_stamped_with_the_deadline(
        service_settings, incidents, kafka_bootstrap):
    """A clock whose deadline passes while sla-svc is down breaches once, at its deadline, on restart."""
    schema = f"sla_{uuid.uuid4().hex[:6]}"
    # its own consumer group: it must not share partitions with the module's sla-svc on another schema
    settings = service_settings(SlaSettings, db_schema=schema, consumer_group=f"sla-svc-{schema}")
    app = create_sla_app(settings)
    async with running_app(app) as sla:
        agreement = await make_agreement(sla, within="PT3S")
        incident = (await incidents.post("/v1/incidents", json={
            "title": "restart", "service_id": agreement["service_id"], "impact": 1, "urgency": 1})).json()
        clock = (await eventually(lambda: clocks_of(sla, incident["id"]), timeout=30))[0]
    deadline = datetime.fromisoformat(clock["deadline"])
    assert datetime.now(UTC) < deadline, "the service stopped before the deadline"
    await asyncio.sleep((deadline - datetime.now(UTC)).total_seconds() + 0.5)
    app = create_sla_app(settings)
    async with running_app(app) as sla:
        breached = await eventually(lambda: _breached_clock(sla, incident["id"]))
        assert breached["breached_at"] == breached["deadline"]

        def breaches(records):
            return [r for r in records if dict(r.headers)["ce_type"] == b"itsm.sla.breached"
                    and json.loads(r.value)["incident_id"] == incident["id"]]

        records = await read_topic(kafka_bootstrap, topics.SLA, until=breaches)
        await asyncio.sleep(1)
        records = breaches(await read_topic(kafka_bootstrap, topics.SLA, until=breaches))
        assert len(records) == 1


async def _breached_clock(sla, incident_id):
    clocks = await clocks_of(sla, incident_id)
    return clocks[0] if clocks and clocks[0]["breached"] else None


async def test_breaches_open_one_review_per_agreement_that_is_worked_and_closed(sla, incidents, kafka_bootstrap):
    agreement = await make_agreement(sla, within="PT1S")
    opened = []
    for _ in range(2):
        opened.append((await incidents.post("/v1/incidents", json={
            "title": "down", "service_id": agreement["service_id"], "impact": 1, "urgency": 1})).json())

    async def review_with_both_breaches():
        items = (await sla.get("/v1/reviews", params={"agreement_id": agreement["id"]})).json()["items"]
        return items if items and len(items[0]["breaches"]) == 2 else None

    [review] = await eventually(review_with_both_breaches, timeout=15)
    assert review["status"] == "open" and review["service_id"] == agreement["service_id"]
    assert sorted(b["incident_id"] for b in review["breaches"]) == sorted(i["id"] for i in opened)
    assert {b["kind"] for b in review["breaches"]} == {"clock"}

    url = f"/v1/reviews/{review['id']}"
    assert (await sla.patch(url, json={"status": "closed"})).status_code == 422, "closing needs a root cause"
    working = await sla.patch(url, json={"status": "in_progress", "actions": [
        {"description": "add a second card network route", "owner": "payments-team", "due_date": "2026-12-15"}]})
    assert working.status_code == 200 and working.json()["status"] == "in_progress"
    assert working.json()["actions"][0]["done"] is False
    assert (await sla.patch(url, json={"status": "open"})).status_code == 409, "reviews only move forward"
    closed = await sla.patch(url, json={"status": "closed", "root_cause": "single route to the card network"})
    assert closed.status_code == 200 and closed.json()["closed_at"] is not None
    assert (await sla.get("/v1/reviews/missing")).status_code == 404

    def review_events(records):
        return [dict(r.headers)["ce_type"] for r in records
                if dict(r.headers)["ce_type"] in (b"itsm.sla.review_opened", b"itsm.sla.review_closed")
                and json.loads(r.value)["review_id"] == review["id"]]

    events = review_events(await read_topic(kafka_bootstrap, topics.SLA, until=lambda r: len(review_events(r)) == 2))
    assert events == [b"itsm.sla.review_opened", b"itsm.sla.review_closed"]


async def test_weekly_report_in_json_csv_and_html(sla, incidents):
    agreement = await make_agreement(sla, within="PT1S", name="Gold <VIP>")
    incident = (await incidents.post("/v1/incidents", json={
        "title": "down", "service_id": agreement["service_id"], "impact": 1, "urgency": 1})).json()

    async def breached():
        clocks = await clocks_of(sla, incident["id"])
        return clocks if clocks and clocks[0]["breached"] else None

    await eventually(breached, timeout=15)
    await incidents.patch(f"/v1/incidents/{incident['id']}", json={"status": "resolved"})
    await eventually(lambda: completed(sla, incident["id"]), timeout=15)
    week = period_of(datetime.now(UTC), "week", "UTC")
    url = f"/v1/reports/{agreement['id']}"

    report = (await sla.get(url, params={"period": week})).json()
    assert report["period"] == week and report["status"] == "breached" and report["incidents"] == 1
    assert report["targets"] == [{
        "metric": "resolution", "priority": 1, "within_seconds": 1.0, "met": 0, "breached": 1, "running": 0,
        "percent_met": 0.0, "status": "breached", "goal_percent": None}]
    assert [(b["kind"], b["incident_id"]) for b in report["breaches"]] == [("clock", incident["id"])]
    assert report["mttr_seconds"] > 1.0

    csv_answer = await sla.get(url, params={"period": week, "format": "csv"})
    assert csv_answer.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(csv_answer.text)))
    assert {r["section"] for r in rows} >= {"targets", "breaches"}

    html = await sla.get(url, params={"period": week, "format": "html"})
    assert html.headers["content-type"].startswith("text/html")
    assert "<svg" in html.text and "Gold &lt;VIP&gt;" in html.text and "<VIP>" not in html.text

    assert (await sla.get(url, params={"period": "last week"})).status_code == 422
    assert (await sla.get(url, params={"period": week, "format": "pdf"})).status_code == 422
    assert (await sla.get("/v1/reports/missing", params={"period": week})).status_code == 404


async def completed(sla, incident_id: str):
    clocks = await clocks_of(sla, incident_id)
    return clocks if clocks and clocks[0]["stage"] == "completed" else None
