"""Clocks folded from incident events on real PostgreSQL and Kafka: re-targeting, reopening, and events
that arrive late, twice or out of order."""

import asyncio
import json
import uuid
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from itsm_events import new_event, schemas, to_kafka, topics
from itsm_runtime.testing import eventually, read_topic
from sla_svc.calendars import CalendarStore
from sla_svc.db.tables import incident_facts
from sla_svc.handlers import Clocks
from sla_svc.objectives import Objectives
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


async def test_a_late_retarget_stamped_earlier_is_published_and_the_later_one_not_again(sla, send, kafka_bootstrap):
    """Timeline entries are named by kind and instant: a late entry stamped before those published does not rename
    them (as ranks did: the earlier retarget was never published and the later one went out twice)."""
    opened_at = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=3)
    agreement = await make_agreement(sla, effective_from=(opened_at - timedelta(days=1)).isoformat(), targets=[
        {"metric": "resolution", "priority": p, "within": f"PT{hours}H"} for p, hours in ((1, 4), (2, 8), (3, 24))])
    service_id, incident_id = agreement["service_id"], str(uuid.uuid4())

    def priority(at: datetime, before: int, after: int) -> schemas.IncidentPriorityChanged:
        return schemas.IncidentPriorityChanged(incident_id=incident_id, service_id=service_id, impact=after,
                                               urgency=after, from_priority=before, to_priority=after, changed_at=at)

    def retargets(records) -> list[tuple[datetime, int]]:
        return [(datetime.fromisoformat(v["retargeted_at"]), v["priority"]) for v in map(json.loads, (
            r.value for r in records if dict(r.headers)["ce_type"] == b"itsm.sla.clock_retargeted"
            and r.key == incident_id.encode()))]

    await send(opened(incident_id, service_id, opened_at, priority=3), incident_id)
    await send(priority(opened_at + timedelta(hours=2), 3, 2), incident_id)
    await one_clock(sla, incident_id, lambda c: c["priority"] == 2)
    await send(priority(opened_at + timedelta(hours=1), 3, 1), incident_id)  # late, stamped an hour earlier
    clock = await one_clock(sla, incident_id, lambda c: kinds(c).count("retargeted") == 2)
    assert [e["details"]["to_priority"] for e in clock["timeline"] if e["kind"] == "retargeted"] == [1, 2]

    expected = [(opened_at + timedelta(hours=2), 2), (opened_at + timedelta(hours=1), 1)]  # in publishing order
    records = await read_topic(kafka_bootstrap, topics.SLA, until=lambda rs: len(retargets(rs)) >= 2)
    await asyncio.sleep(1)  # a duplicate would be written in the same transaction as the second: already out
    assert retargets(await read_topic(kafka_bootstrap, topics.SLA, until=lambda rs: len(rs) >= len(records))) == \
        expected


async def fact_stored(sla_app, incident_id: str) -> None:
    """Wait until sla-svc has stored the incident's opening."""
    async def stored():
        async with sla_app.state.runtime.engine.connect() as conn:
            return (await conn.execute(sa.select(incident_facts.c.event_id)
                                       .where(incident_facts.c.incident_id == incident_id))).first()
    await eventually(stored)


async def test_an_agreement_covers_only_incidents_opened_while_it_is_in_force(sla, send, sla_app):
    agreement = await make_agreement(sla, within="PT1H")
    service_id = agreement["service_id"]
    before, after = str(uuid.uuid4()), str(uuid.uuid4())
    created = datetime.fromisoformat(agreement["effective_from"])
    await send(opened(before, service_id, created - timedelta(minutes=5)), before)
    await send(opened(after, service_id, created + timedelta(seconds=1)), after)
    await eventually(lambda: clocks_of(sla, after))
    await fact_stored(sla_app, before)
    assert await clocks_of(sla, before) == []


async def test_an_agreement_in_force_from_the_past_adopts_the_incidents_opened_since(sla, send, sla_app):
    service_id, incident_id = f"svc-{uuid.uuid4().hex[:8]}", str(uuid.uuid4())
    opened_at = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
    await send(opened(incident_id, service_id, opened_at), incident_id)
    await fact_stored(sla_app, incident_id)
    await make_agreement(sla, service_id=service_id, within="PT4H",
                         effective_from=(opened_at - timedelta(hours=1)).isoformat())
    [clock] = await clocks_of(sla, incident_id)
    assert datetime.fromisoformat(clock["started_at"]) == opened_at, "as a replay of the events would give"
    assert datetime.fromisoformat(clock["deadline"]) == opened_at + timedelta(hours=4)


async def test_clocks_count_business_hours_and_keep_the_calendar_version_they_started_with(sla, send):
    calendar_id = f"office-{uuid.uuid4().hex[:6]}"
    week = {day: [["09:00", "17:00"]] for day in ("mon", "tue", "wed", "thu", "fri")}
    created = await sla.post("/v1/calendars", json={"id": calendar_id, "name": "Berlin office",
                                                    "timezone": "Europe/Berlin", "hours": week})
    assert created.status_code == 201, created.text
    agreement = await make_agreement(sla, within="PT2H", calendar_id=calendar_id,
                                     effective_from="2026-01-01T00:00:00Z")
    friday = str(uuid.uuid4())
    # Friday 20 November 2026, 16:00 in Berlin (UTC+1): one hour today, one from Monday 9:00, so Monday 10:00
    await send(opened(friday, agreement["service_id"], datetime(2026, 11, 20, 15, 0, tzinfo=UTC)), friday)
    clock = await one_clock(sla, friday, lambda c: c)
    assert datetime.fromisoformat(clock["deadline"]) == datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
    assert clock["calendar_version"] == 1

    week["fri"] = [["09:00", "12:00"]]
    changed = await sla.put(f"/v1/calendars/{calendar_id}", json={"name": "Berlin office",
                                                                  "timezone": "Europe/Berlin", "hours": week})
    assert changed.json()["version"] == 2
    later = str(uuid.uuid4())
    await send(opened(later, agreement["service_id"], datetime.now(UTC)), later)
    assert (await one_clock(sla, later, lambda c: c))["calendar_version"] == 2
    # put on hold at 16:30 that Friday and folded again after the change, the clock still counts on version 1:
    # half an hour done, an hour and a half left from 16:30 is Monday 10:00 again (on version 2, Monday 11:00)
    await send(status(friday, agreement["service_id"], datetime(2026, 11, 20, 15, 30, tzinfo=UTC), "new",
                      "on_hold"), friday)
    again = await one_clock(sla, friday, lambda c: c["stage"] == "paused")
    assert again["calendar_version"] == 1 and again["deadline"] == clock["deadline"]
    assert again["elapsed_seconds"] == 30 * 60 and not again["breached"]


async def test_a_ratio_objective_is_at_risk_then_breached_when_its_window_ends(sla, send, kafka_bootstrap):
    now = datetime.now(UTC)
    end = now + timedelta(seconds=6)
    agreement = await make_agreement(sla, within="PT4H", objectives=[{
        "kind": "resolution_ratio", "target": 80, "within": "PT2S", "priorities": [1],
        "window": {"start": (now - timedelta(days=1)).isoformat(), "end": end.isoformat()}}])
    service_id, incidents = agreement["service_id"], [str(uuid.uuid4()) for _ in range(5)]
    now = datetime.now(UTC)  # after the agreement is in force
    for incident_id in incidents:
        await send(opened(incident_id, service_id, now), incident_id)
    for incident_id in incidents[:3]:  # three resolved within the two seconds, two never
        await send(status(incident_id, service_id, now + timedelta(seconds=1), "new", "resolved"), incident_id)

    async def ratio(status: str):
        compliance = (await sla.get(f"/v1/agreements/{agreement['id']}/compliance")).json()
        objective = compliance["objectives"][0]
        return objective if objective["status"] == status else None

    at_risk = await eventually(lambda: ratio("at_risk"))
    assert datetime.now(UTC) < end, "at risk while the window runs"
    assert (at_risk["tickets"], at_risk["met"], at_risk["missed"], at_risk["open"]) == (5, 3, 2, 0)
    assert at_risk["actual_percent"] == 60.0 and at_risk["kind"] == "resolution_ratio"
    assert len((await sla.get("/v1/clocks", params={"incident_id": incidents[0]})).json()["items"]) == 2, \
        "the incident's resolution clock, and its ticket's clock for the objective"

    records = await read_topic(kafka_bootstrap, topics.SLA, until=lambda rs: any(
        dict(r.headers)["ce_type"] == b"itsm.sla.objective_breached" and r.key == agreement["id"].encode()
        for r in rs), timeout=30)
    breach = next(r for r in records if dict(r.headers)["ce_type"] == b"itsm.sla.objective_breached"
                  and r.key == agreement["id"].encode())
    data = json.loads(breach.value)
    assert data["kind"] == "resolution_ratio" and data["reason"] == "missed" and data["actual"] == 60.0
    assert datetime.fromisoformat(data["breached_at"]) == end, "breached when the window ended"
    reviews = (await sla.get("/v1/reviews", params={"agreement_id": agreement["id"]})).json()["items"]
    assert [b["kind"] for b in reviews[0]["breaches"]] == ["objective"]
    report = (await sla.get(f"/v1/reports/{agreement['id']}", params={"period": now.strftime("%G-W%V")})).json()
    assert report["objectives"] == [{
        "id": "objective-1", "kind": "resolution_ratio", "target": 80.0, "actual": 60.0, "status": "at_risk",
        "window_start": report["period_start"], "window_end": report["period_end"], "met": 3, "missed": 2,
        "pending": 0}], "the week's report counts the incidents opened in the week"


async def test_a_clock_prepared_ahead_of_its_breach_still_follows_the_events_before_it(sla, send, sla_app):
    """Timers prepare a clock's breach ahead of its instant; an event in between wins over it, also when
    another replica prepared it (the row version tells it is stale)."""
    agreement = await make_agreement(sla, within="PT4S", warning_thresholds=[])
    service_id, held, left = agreement["service_id"], str(uuid.uuid4()), str(uuid.uuid4())
    opened_at = datetime.now(UTC)
    for incident_id in (held, left):
        await send(opened(incident_id, service_id, opened_at), incident_id)
    running = [await one_clock(sla, i, lambda c: c["stage"] == "running") for i in (held, left)]
    clocks = sla_app.state.runtime.state["clocks"]
    await eventually(lambda: all(c["id"] in clocks._prepared for c in running), timeout=3)
    replica = Clocks(clocks._uow_factory, clocks.calendars)  # its timers are not started: fired by hand below
    deadline = opened_at + timedelta(seconds=4)
    await replica.prepare([(running[0]["id"], deadline)])
    assert replica._prepared[running[0]["id"]].breaches

    await send(status(held, service_id, opened_at + timedelta(seconds=1), "new", "on_hold"), held)
    await one_clock(sla, held, lambda c: c["stage"] == "paused")
    breached = await one_clock(sla, left, lambda c: c["breached"])
    assert kinds(breached) == ["started", "breached"]
    assert datetime.fromisoformat(breached["breached_at"]) == deadline

    await replica.fire([running[0]["id"]])
    assert running[0]["id"] not in replica._prepared
    clock = (await clocks_of(sla, held))[0]
    assert kinds(clock) == ["started", "paused"] and clock["stage"] == "paused" and not clock["breached"]
    assert clock["elapsed_seconds"] == 1


async def test_an_incident_reported_weeks_late_settles_its_week_of_a_ratio_objective(sla, send, kafka_bootstrap):
    """A ticket opened three weeks ago and missed, which arrives now: its week is checked again, as a replay in
    event-time order (rebuild) finds it, not only the week before."""
    now = datetime.now(UTC)
    agreement = await make_agreement(sla, within="PT4H", effective_from=(now - timedelta(days=40)).isoformat(),
                                     objectives=[{"kind": "resolution_ratio", "target": 80, "within": "PT1H",
                                                  "window": "calendar_week"}])
    incident_id, opened_at = str(uuid.uuid4()), now - timedelta(days=21)
    await send(opened(incident_id, agreement["service_id"], opened_at), incident_id)
    await send(status(incident_id, agreement["service_id"], opened_at + timedelta(hours=2), "new", "resolved"),
               incident_id)

    def breaches(records):
        return [json.loads(r.value) for r in records if dict(r.headers)["ce_type"] == b"itsm.sla.objective_breached"
                and r.key == agreement["id"].encode()]

    [breach] = breaches(await read_topic(kafka_bootstrap, topics.SLA, until=breaches, timeout=30))
    monday = (opened_at - timedelta(days=opened_at.weekday())).replace(hour=0, minute=0, second=0, microsecond=0)
    assert breach["kind"] == "resolution_ratio" and breach["actual"] == 0.0
    assert datetime.fromisoformat(breach["window_start"]) == monday
    assert datetime.fromisoformat(breach["breached_at"]) == monday + timedelta(days=7), "when that week ended"


async def test_how_far_back_a_late_ticket_needs_its_objectives_checked_survives_a_restart(
        sla, send, sla_app, kafka_bootstrap, monkeypatch):
    """The ticket's transaction keeps from when the next check must look back: a service that stops before
    checking (here its check never runs) leaves it to the next one, in another process after a restart."""
    now = datetime.now(UTC)
    agreement = await make_agreement(sla, within="PT4H", effective_from=(now - timedelta(days=40)).isoformat(),
                                     objectives=[{"kind": "resolution_ratio", "target": 80, "within": "PT1H",
                                                  "window": "calendar_week"}])
    live = sla_app.state.runtime.state["objectives"]
    monkeypatch.setattr(live, "check_soon", lambda agreement_ids: None)  # stops before checking
    incident_id, opened_at = str(uuid.uuid4()), now - timedelta(days=21)
    await send(opened(incident_id, agreement["service_id"], opened_at), incident_id)
    await send(status(incident_id, agreement["service_id"], opened_at + timedelta(hours=2), "new", "resolved"),
               incident_id)
    await eventually(lambda: _ticket_completed(sla, incident_id))

    restarted = Objectives(live._uow_factory, CalendarStore())  # noqa: SLF001 - a new process's, no memory
    await restarted.fire([agreement["id"]])

    def breaches(records):
        return [json.loads(r.value) for r in records if dict(r.headers)["ce_type"] == b"itsm.sla.objective_breached"
                and r.key == agreement["id"].encode()]

    [breach] = breaches(await read_topic(kafka_bootstrap, topics.SLA, until=breaches, timeout=30))
    monday = (opened_at - timedelta(days=opened_at.weekday())).replace(hour=0, minute=0, second=0, microsecond=0)
    assert datetime.fromisoformat(breach["window_start"]) == monday


async def _ticket_completed(sla, incident_id: str) -> bool:
    return any(c["objective_id"] and c["stage"] == "completed" for c in await clocks_of(sla, incident_id))


def breaches_for(records, incident_id: str) -> list:
    return [r for r in records if dict(r.headers)["ce_type"] == b"itsm.sla.breached" and r.key == incident_id.encode()]


async def outbox_rows(sla_app, event_type: str, key: str) -> list:
    outbox = sla_app.state.runtime.tables["outbox"]
    async with sla_app.state.runtime.engine.connect() as conn:
        return (await conn.execute(sa.select(outbox).where(outbox.c.event_type == event_type, outbox.c.key == key)
                                   .order_by(outbox.c.id))).all()


@pytest.mark.parametrize("stopped", ["after the deadline", "before the deadline"])
async def test_a_breach_written_ahead_goes_out_once_when_an_event_is_handled_before_the_timer_records_it(
        sla, send, sla_app, kafka_bootstrap, stopped):
    """A breach is written ahead of its instant and the relay publishes it then. An event of the incident
    handled after that instant but before the timer fires records the breach (its review too) without
    publishing it again: the outbox tells the clock it went out. Also when the event stops the clock before the
    deadline: the clock is met, and the breach that went out stays in the review (as a breach recorded before
    such a late event does)."""
    agreement = await make_agreement(sla, within="PT2S", warning_thresholds=[])
    service_id, incident_id = agreement["service_id"], str(uuid.uuid4())
    runtime = sla_app.state.runtime
    clocks = runtime.state["clocks"]
    await eventually(lambda: runtime.state["timers_task"].done())  # or it would start them again
    await clocks.scheduler.stop()  # this test prepares and fires the timer by hand
    try:
        opened_at = datetime.now(UTC)
        await send(opened(incident_id, service_id, opened_at), incident_id)
        clock = await one_clock(sla, incident_id, lambda c: c["stage"] == "running")
        deadline = opened_at + timedelta(seconds=2)
        replica = Clocks(clocks._uow_factory, clocks.calendars, published_through=runtime.relay.published_through)
        await replica.prepare([(clock["id"], deadline + timedelta(seconds=1))])  # a stale schedule: not its instant
        assert await outbox_rows(sla_app, "itsm.sla.breached", incident_id) == []
        await replica.prepare([(clock["id"], deadline)])
        [ahead] = await outbox_rows(sla_app, "itsm.sla.breached", incident_id)
        assert ahead.due_at == deadline and ahead.published_at is None and ahead.mark == "breached"
        await read_topic(kafka_bootstrap, topics.SLA, until=lambda rs: breaches_for(rs, incident_id))

        resolved_at = datetime.now(UTC) if stopped == "after the deadline" else deadline - timedelta(seconds=0.5)
        await send(status(incident_id, service_id, resolved_at, "new", "resolved"), incident_id)
        recorded = await one_clock(sla, incident_id, lambda c: c["stage"] == "completed")
        await replica.fire([clock["id"]])  # the timer comes after the event: nothing is left to it

        clock_now = (await clocks_of(sla, incident_id))[0]
        if stopped == "after the deadline":
            assert kinds(recorded) == kinds(clock_now) == ["started", "breached", "stopped"] and clock_now["breached"]
            assert datetime.fromisoformat(clock_now["breached_at"]) == deadline
        else:
            assert kinds(recorded) == kinds(clock_now) == ["started", "stopped"] and not clock_now["breached"]
        assert len(await outbox_rows(sla_app, "itsm.sla.breached", incident_id)) == 1, "one breach event, ever"
        [stop] = await outbox_rows(sla_app, "itsm.sla.clock_stopped", incident_id)
        assert json.loads(stop.payload)["met"] == (stopped == "before the deadline")
        reviews = (await sla.get("/v1/reviews", params={"agreement_id": agreement["id"]})).json()["items"]
        assert [(b["kind"], b["ref_id"], datetime.fromisoformat(b["breached_at"])) for b in reviews[0]["breaches"]] \
            == [("clock", clock["id"], deadline)]
    finally:
        clocks.scheduler.start()


async def test_an_event_before_the_instant_withdraws_the_breach_written_ahead(sla, send, sla_app):
    """The clock stops before its deadline, after its breach was written ahead: the breach is withdrawn and never
    goes out; the clock is met."""
    agreement = await make_agreement(sla, within="PT5S", warning_thresholds=[])
    service_id, incident_id = agreement["service_id"], str(uuid.uuid4())
    opened_at = datetime.now(UTC)
    await send(opened(incident_id, service_id, opened_at), incident_id)
    await one_clock(sla, incident_id, lambda c: c["stage"] == "running")
    [ahead] = await eventually(lambda: outbox_rows(sla_app, "itsm.sla.breached", incident_id), timeout=4)
    assert ahead.due_at == opened_at + timedelta(seconds=5) and ahead.published_at is None, "written ahead"

    await send(status(incident_id, service_id, opened_at + timedelta(seconds=1), "new", "resolved"), incident_id)
    stopped = await one_clock(sla, incident_id, lambda c: c["stage"] == "completed")
    assert kinds(stopped) == ["started", "stopped"] and not stopped["breached"]
    await asyncio.sleep(max(0.0, (opened_at + timedelta(seconds=6) - datetime.now(UTC)).total_seconds()))
    assert await outbox_rows(sla_app, "itsm.sla.breached", incident_id) == [], "withdrawn: nothing to publish"
    assert kinds((await clocks_of(sla, incident_id))[0]) == ["started", "stopped"]
