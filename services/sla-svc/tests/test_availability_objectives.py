"""Availability objectives on real PostgreSQL and Kafka: `itsm.cmdb.service_availability_changed`
records published the way cmdb-svc publishes them, consumed by a running sla-svc."""

import json
import uuid
from functools import partial
from datetime import UTC, datetime, timedelta

import pytest

from itsm_events import new_event, schemas, to_kafka, topics
from itsm_runtime.testing import eventually, read_topic, running_app
from sla_svc.main import create_app
from sla_svc.reports import period_of
from sla_svc.settings import Settings

NOW = datetime.now(UTC).replace(microsecond=0)
DAY = 86400.0


@pytest.fixture(scope="module")
async def sla(service_settings):
    app = create_app(service_settings(Settings, db_schema=f"sla_{uuid.uuid4().hex[:6]}"))
    async with running_app(app) as client:
        yield client


async def agreement_with_objective(sla, **objective) -> dict:
    service_id = f"svc-{uuid.uuid4().hex[:8]}"
    response = await sla.post("/v1/agreements", json={
        "name": "Payments availability", "service_id": service_id,
        "targets": [{"metric": "resolution", "priority": 1, "within": "PT4H"}],
        "objectives": [{"kind": "availability", **objective}]})
    assert response.status_code == 201, response.text
    return response.json()


async def publish(producer, service_id: str, status: str, observed_at: datetime, times: int = 1) -> None:
    envelope = new_event(schemas.ServiceAvailabilityChanged(service_id=service_id, status=status,
                                                            observed_at=observed_at),
                         source="/cmdb-svc", subject=service_id, time=observed_at)
    headers, value = to_kafka(envelope)
    for _ in range(times):
        await producer.send_and_wait(topics.CMDB, value=value, key=service_id.encode(), headers=list(headers.items()))


async def objective_state(sla, agreement_id: str) -> dict:
    response = await sla.get(f"/v1/agreements/{agreement_id}/compliance")
    assert response.status_code == 200, response.text
    return response.json()["objectives"][0]


async def test_downtime_counts_by_event_time_whatever_the_order_and_duplicates(sla, kafka_producer):
    # 99% over a rolling day allows 864 s; down from -10 min to -5 min = 300 s of downtime
    agreement = await agreement_with_objective(sla, target=99.0, window="P1D")
    service_id = agreement["service_id"]
    await publish(kafka_producer, service_id, "up", NOW - timedelta(minutes=5))  # the recovery arrives first
    await publish(kafka_producer, service_id, "down", NOW - timedelta(minutes=10), times=2)  # and twice

    async def downtime_counted():
        state = await objective_state(sla, agreement["id"])
        return state if state["downtime_seconds"] > 0 else None

    state = await eventually(downtime_counted)
    assert state["downtime_seconds"] == 300.0
    assert state["allowed_downtime_seconds"] == pytest.approx(864.0)
    assert state["remaining_budget_seconds"] == pytest.approx(564.0)
    # burn windows scale to the one-day window (x 1/30): the ticket alert looks at 2.4 h and 12 min, which
    # burn 300/8640/0.01 = 3.5 and 300/720/0.01 = 41.7 >= 1; the pages' short windows (10 s, 1 min) are clean
    assert [(a["severity"], a["threshold"], a["firing"]) for a in state["burn_alerts"]] == [
        ("page", 14.4, False), ("page", 6.0, False), ("ticket", 1.0, True)]
    assert state["status"] == "at_risk" and state["breached_at"] is None

    # the month's report has the same downtime and the timeline of the outage
    month = period_of(NOW, "month", "UTC")
    report = (await sla.get(f"/v1/reports/{agreement['id']}", params={"period": month})).json()
    [objective] = report["objectives"]
    assert objective["downtime_seconds"] == 300.0 and objective["target"] == 99.0, "percent, as in compliance"
    assert {"start": (NOW - timedelta(minutes=10)).isoformat().replace("+00:00", "Z"),
            "end": (NOW - timedelta(minutes=5)).isoformat().replace("+00:00", "Z"),
            "status": "down"} in objective["timeline"]


async def test_maintenance_windows_are_excluded_when_the_objective_says_so(sla, kafka_producer):
    agreement = await agreement_with_objective(sla, target=99.0, window="P1D", exclude_maintenance=True)
    service_id = agreement["service_id"]
    window = await sla.post("/v1/maintenance-windows", json={
        "service_id": service_id, "start": (NOW - timedelta(minutes=10)).isoformat(),
        "end": (NOW - timedelta(minutes=8)).isoformat(), "reference": "CHG0000042"})
    assert window.status_code == 201, window.text
    await publish(kafka_producer, service_id, "down", NOW - timedelta(minutes=10))
    await publish(kafka_producer, service_id, "up", NOW - timedelta(minutes=5))

    async def recovered():
        state = await objective_state(sla, agreement["id"])
        return state if state["downtime_seconds"] == 180.0 else None

    state = await eventually(recovered)
    assert state["allowed_downtime_seconds"] == pytest.approx(0.01 * (DAY - 120)), "maintenance is not counted time"
    listed = (await sla.get("/v1/maintenance-windows", params={"service_id": service_id})).json()["items"]
    assert [w["reference"] for w in listed] == ["CHG0000042"]


@pytest.mark.parametrize(("window", "target", "reason"), [
    ("P1D", 99.99, "missed"),  # a rolling window ends now: its target is missed from that instant on
    ("calendar_month", 99.99999, "impossible"),  # the month still runs, but no uptime can save it any more
])
async def test_objective_breached_is_published_at_the_instant_the_budget_runs_out(sla, kafka_producer,
                                                                                  kafka_bootstrap, window, target,
                                                                                  reason):
    # 99.99% of a rolling day allows 8.64 s; 99.99999% of a month about 0.26 s. Down since 4 s ago
    agreement = await agreement_with_objective(sla, target=target, window=window)
    allowed = (await objective_state(sla, agreement["id"]))["allowed_downtime_seconds"]
    down_at = datetime.now(UTC) - timedelta(seconds=4)
    await publish(kafka_producer, agreement["service_id"], "down", down_at)

    def breaches(records):
        return [json.loads(r.value) for r in records
                if dict(r.headers)["ce_type"] == b"itsm.sla.objective_breached"
                and json.loads(r.value)["agreement_id"] == agreement["id"]]

    found = breaches(await read_topic(kafka_bootstrap, topics.SLA, until=breaches, timeout=20))
    assert len(found) == 1
    breach = found[0]
    exhausted = down_at + timedelta(seconds=allowed)
    assert abs((datetime.fromisoformat(breach["breached_at"]) - exhausted).total_seconds()) <= 1e-5
    assert breach["reason"] == reason and breach["objective_id"] == "objective-1"
    state = await objective_state(sla, agreement["id"])
    assert state["status"] == "breached"
    reviews = (await sla.get("/v1/reviews", params={"agreement_id": agreement["id"]})).json()["items"]
    assert [[b["kind"] for b in r["breaches"]] for r in reviews] == [["objective"]], "the breach opened a review"


@pytest.mark.parametrize("objective", [
    {"kind": "availability", "target": 100.5, "window": "P30D"},
    {"kind": "availability", "target": 99.9, "window": "fortnightly"},
    {"kind": "resolution_ratio", "target": 80, "window": "P7D", "within": "PT1H"},
    {"kind": "resolution_ratio", "target": 80, "window": "calendar_week", "within": "PT0S"},
    {"kind": "resolution_ratio", "target": 80, "window": "calendar_week", "within": "PT1H", "priorities": [6]},
    {"kind": "uptime", "target": 80, "window": "calendar_week"},
    {"kind": "availability", "target": 99.9, "window": "P99999999999W"},  # beyond a timedelta: was a 500
    {"kind": "availability", "target": 99.9, "window": "P999999999D"},  # accepted, then every check failed
    {"kind": "availability", "target": 99.9,
     "window": {"start": "0001-01-01T00:00:00+01:00", "end": "2026-01-01T00:00:00Z"}},  # the year 0 in UTC: a 500
])
async def test_bad_objectives_are_problems(sla, objective):
    response = await sla.post("/v1/agreements", json={
        "name": "x", "service_id": "s", "targets": [{"metric": "resolution", "priority": 1, "within": "PT1H"}],
        "objectives": [objective]})
    assert response.status_code == 422 and response.headers["content-type"] == "application/problem+json"


async def test_maintenance_window_must_end_after_it_starts(sla):
    response = await sla.post("/v1/maintenance-windows", json={
        "service_id": "s", "start": NOW.isoformat(), "end": (NOW - timedelta(hours=1)).isoformat()})
    assert response.status_code == 422


async def test_maintenance_window_must_lie_in_the_years_windows_may_cover(sla):
    response = await sla.post("/v1/maintenance-windows", json={
        "service_id": "s", "start": "0001-01-01T00:00:00+01:00", "end": NOW.isoformat()})
    assert response.status_code == 422 and "start: must lie between the years" in response.json()["detail"]
    assert (await sla.get("/v1/maintenance-windows", params={"service_id": "s"})).status_code == 200


async def test_burn_rate_alert_fires_and_clears_at_the_exact_instant(sla, kafka_producer, kafka_bootstrap):
    # 99% over a rolling day: the workbook's lookbacks scale by 1/30, so the fast page looks at 2 min and 10 s.
    # Down for the last 30 s: 10 s burn 100/1 = 100 and 2 min burn 25, both >= 14.4: the page fires. The
    # 6x page (12 min: 4.2) and the ticket (2.4 h: 0.35) stay quiet. After recovery, the 10 s window burns
    # below 14.4 once less than 1.44 s of it is down: 8.56 s after the recovery, the page clears.
    agreement = await agreement_with_objective(sla, target=99.0, window="P1D")
    down_at = datetime.now(UTC) - timedelta(seconds=30)
    await publish(kafka_producer, agreement["service_id"], "down", down_at)
    burns = partial(budget_burns, agreement)

    [firing] = burns(await read_topic(kafka_bootstrap, topics.SLA, until=burns))
    assert (firing["state"], firing["severity"], firing["burn_rate_threshold"]) == ("firing", "page", 14.4)
    assert (firing["long_window_seconds"], firing["short_window_seconds"]) == (120.0, 10.0)
    assert firing["short_rate"] == pytest.approx(100.0)

    up_at = datetime.now(UTC)
    await publish(kafka_producer, agreement["service_id"], "up", up_at)
    both = burns(await read_topic(kafka_bootstrap, topics.SLA, until=lambda r: len(burns(r)) == 2, timeout=30))
    cleared = both[1]
    assert (cleared["state"], cleared["severity"], cleared["burn_rate_threshold"]) == ("cleared", "page", 14.4)
    cleared_at = datetime.fromisoformat(cleared["at"])
    assert abs((cleared_at - (up_at + timedelta(seconds=8.56))).total_seconds()) < 0.1, "the timer fires on time"
    state = await objective_state(sla, agreement["id"])
    assert not any(a["firing"] for a in state["burn_alerts"])


def budget_burns(agreement: dict, records) -> list[dict]:
    return [json.loads(r.value) for r in records if dict(r.headers)["ce_type"] == b"itsm.sla.budget_burn"
            and json.loads(r.value)["agreement_id"] == agreement["id"]]


async def test_a_firing_burn_alert_clears_when_its_fixed_window_ends(sla, kafka_producer, kafka_bootstrap):
    # A fixed window of about a day: lookbacks as in the rolling day above. Down for the last 30 s, the fast page
    # fires; the service stays down, but once the window is over there is no budget left to burn.
    end = datetime.now(UTC) + timedelta(seconds=6)
    agreement = await agreement_with_objective(sla, target=99.0, window={
        "start": (end - timedelta(days=1)).isoformat(), "end": end.isoformat()})
    await publish(kafka_producer, agreement["service_id"], "down", datetime.now(UTC) - timedelta(seconds=30))
    burns = partial(budget_burns, agreement)

    both = burns(await read_topic(kafka_bootstrap, topics.SLA, until=lambda r: len(burns(r)) == 2, timeout=30))
    assert [(b["state"], b["severity"], b["burn_rate_threshold"]) for b in both] == [
        ("firing", "page", 14.4), ("cleared", "page", 14.4)]
    cleared_at = datetime.fromisoformat(both[1]["at"])
    assert end <= cleared_at < end + timedelta(seconds=1), "cleared by a timer at the window's end"
    state = await objective_state(sla, agreement["id"])
    assert state["burn_alerts"] and not any(a["firing"] for a in state["burn_alerts"])


@pytest.mark.parametrize("weeks", [1, 3])
async def test_a_status_arriving_late_shows_its_week_breached(sla, kafka_producer, kafka_bootstrap, weeks):
    """The week before, or any closed week: every one from the late status's on is checked again, as a replay of
    the events in event-time order (rebuild) finds it."""
    agreement = await weekly_agreement(sla, f"svc-{uuid.uuid4().hex[:8]}")
    down_at = NOW - timedelta(days=7 * weeks)  # the same weekday: an hour down, 10 min 4.8 s allowed
    await publish(kafka_producer, agreement["service_id"], "up", down_at + timedelta(hours=1))
    await publish(kafka_producer, agreement["service_id"], "down", down_at)

    breach = await the_breach_of(kafka_bootstrap, agreement)
    # by event time the budget ran out 604.8 s after the outage began, while that week still ran
    assert breach["reason"] == "impossible" and datetime.fromisoformat(breach["window_start"]) == monday_of(down_at)
    exhausted = down_at + timedelta(seconds=604.8)
    assert abs((datetime.fromisoformat(breach["breached_at"]) - exhausted).total_seconds()) <= 1e-5
    state = await objective_state(sla, agreement["id"])
    assert state["downtime_seconds"] == 0 and state["status"] == "ok", "this week is untouched"


async def test_a_status_arriving_late_shows_an_old_rolling_window_breached(sla, kafka_producer, kafka_bootstrap):
    """A rolling window is checked again at each instant a replay checks it at, from the late status on: the
    status changes, and when the budget runs out while the service is down."""
    response = await sla.post("/v1/agreements", json={
        "name": "Rolling", "service_id": f"svc-{uuid.uuid4().hex[:8]}",
        "effective_from": (NOW - timedelta(days=40)).isoformat(),
        "targets": [{"metric": "resolution", "priority": 1, "within": "PT4H"}],
        "objectives": [{"kind": "availability", "target": 99.9, "window": "P7D"}]})
    assert response.status_code == 201, response.text
    agreement = response.json()
    down_at = NOW - timedelta(days=21)  # an hour down, 604.8 s allowed in any 7 days: long out of today's window
    await publish(kafka_producer, agreement["service_id"], "up", down_at + timedelta(hours=1))
    await publish(kafka_producer, agreement["service_id"], "down", down_at)

    breach = await the_breach_of(kafka_bootstrap, agreement)
    exhausted = down_at + timedelta(seconds=604.8)
    assert breach["reason"] == "missed"
    assert abs((datetime.fromisoformat(breach["breached_at"]) - exhausted).total_seconds()) <= 1e-5
    assert datetime.fromisoformat(breach["window_end"]) - datetime.fromisoformat(breach["window_start"]) \
        == timedelta(days=7)
    state = await objective_state(sla, agreement["id"])
    assert state["downtime_seconds"] == 0 and state["status"] == "ok", "today's 7 days are untouched"


async def test_an_agreement_taking_effect_in_the_past_checks_the_weeks_closed_since(sla, kafka_producer,
                                                                                   kafka_bootstrap):
    """Statuses stored before the agreement exists count for every window since it took effect, as a replay
    finds them."""
    probe = await agreement_with_objective(sla, target=99.9, window="P1D")  # tells when the statuses are in
    service_id = probe["service_id"]
    down_at = NOW - timedelta(days=21)
    await publish(kafka_producer, service_id, "down", down_at)
    await publish(kafka_producer, service_id, "up", down_at + timedelta(hours=1))
    await publish(kafka_producer, service_id, "degraded", datetime.now(UTC) - timedelta(seconds=2))
    await eventually(lambda: _degraded(sla, probe["id"]))

    breach = await the_breach_of(kafka_bootstrap, await weekly_agreement(sla, service_id))
    assert breach["reason"] == "impossible" and datetime.fromisoformat(breach["window_start"]) == monday_of(down_at)


async def weekly_agreement(sla, service_id: str) -> dict:
    """99.9 % uptime a calendar week, in force since 40 days ago."""
    response = await sla.post("/v1/agreements", json={
        "name": "Weekly", "service_id": service_id, "effective_from": (NOW - timedelta(days=40)).isoformat(),
        "targets": [{"metric": "resolution", "priority": 1, "within": "PT4H"}],
        "objectives": [{"kind": "availability", "target": 99.9, "window": "calendar_week"}]})
    assert response.status_code == 201, response.text
    return response.json()


async def the_breach_of(kafka_bootstrap: str, agreement: dict) -> dict:
    """The agreement's one `itsm.sla.objective_breached`, once on the topic."""
    def breaches(records):
        return [json.loads(r.value) for r in records if dict(r.headers)["ce_type"] == b"itsm.sla.objective_breached"
                and json.loads(r.value)["agreement_id"] == agreement["id"]]

    [breach] = breaches(await read_topic(kafka_bootstrap, topics.SLA, until=breaches, timeout=20))
    return breach


def monday_of(at: datetime) -> datetime:
    return (at - timedelta(days=at.weekday())).replace(hour=0, minute=0, second=0, microsecond=0)


async def _degraded(sla, agreement_id: str) -> bool:
    return (await objective_state(sla, agreement_id))["degraded_seconds"] > 0
