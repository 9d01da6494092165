"""Unit tests of the alert intake and outage rules: no I/O."""

from datetime import UTC, datetime, timedelta, timezone

import pytest

from incident_svc.domain import alerts, outages
from incident_svc.domain.alerts import SEVERITY_LEVELS, TriggerOutcome
from incident_svc.domain.model import AlertAppended, Incident, PriorityChanged, Status, priority_for
from incident_svc.domain.outages import Availability, Outage, OutagePolicy, ServiceState, Step

T0 = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)


def make_incident(**overrides) -> Incident:
    values = dict(id="i-1", number="INC0000001", title="Disk full", service_id="svc", impact=2, urgency=2,
                  opened_at=T0)
    values.update(overrides)
    incident = Incident.open(**values)
    incident.events.clear()
    return incident


@pytest.mark.parametrize(("severity", "impact", "urgency", "priority"), [
    ("critical", 1, 1, 1), ("error", 2, 1, 2), ("warning", 2, 2, 3), ("info", 3, 3, 5),
])
def test_severity_table_sets_impact_urgency_and_priority(severity, impact, urgency, priority):
    assert alerts.levels_for(severity) == (impact, urgency)
    assert priority_for(*alerts.levels_for(severity)) == priority


def test_every_severity_has_its_own_priority_and_order_is_kept():
    priorities = [priority_for(*SEVERITY_LEVELS[s]) for s in alerts.Severity]
    assert priorities == sorted(set(priorities))


def test_unknown_severity_is_refused():
    with pytest.raises(ValueError):
        alerts.levels_for("sev1")


def test_trigger_opens_when_no_incident_or_the_incident_is_over():
    assert alerts.trigger_outcome(incident=None, last_fingerprint=None, fingerprint="a") == TriggerOutcome.OPEN
    for status in ("resolved", "closed"):
        incident = make_incident()
        incident.change_status(Status.RESOLVED, at=T0)
        if status == "closed":
            incident.change_status(Status.CLOSED, at=T0)
        assert alerts.trigger_outcome(incident=incident, last_fingerprint="a", fingerprint="a") == TriggerOutcome.OPEN


def test_trigger_appends_to_an_open_incident_and_an_identical_resend_is_a_retry():
    incident = make_incident()
    assert alerts.trigger_outcome(incident=incident, last_fingerprint="a", fingerprint="b") == TriggerOutcome.APPEND
    assert alerts.trigger_outcome(incident=incident, last_fingerprint="a", fingerprint="a") == TriggerOutcome.RETRY
    incident.change_status(Status.IN_PROGRESS, at=T0)
    assert alerts.trigger_outcome(incident=incident, last_fingerprint="a", fingerprint="b") == TriggerOutcome.APPEND


def test_append_counts_the_alert_and_records_it():
    incident = make_incident()
    incident.append_alert(integration_id="int", dedup_key="k", summary="again", severity="error", source="h",
                          at=T0 + timedelta(minutes=1))
    assert incident.alert_count == 1 and incident.last_alert_at == T0 + timedelta(minutes=1)
    assert isinstance(incident.events[0], AlertAppended)


def test_escalate_raises_priority_but_never_lowers_it():
    incident = make_incident(impact=2, urgency=2)
    incident.escalate(impact=1, urgency=1, at=T0)
    assert (incident.impact, incident.urgency, incident.priority) == (1, 1, 1)
    assert incident.events == [PriorityChanged(from_priority=3, to_priority=1, at=T0)]
    incident.events.clear()
    incident.escalate(impact=3, urgency=3, at=T0)
    assert incident.priority == 1 and incident.events == []


def test_acknowledge_moves_only_a_new_incident_and_resolve_only_an_open_one():
    incident = make_incident()
    assert alerts.acknowledge(incident, at=T0 + timedelta(minutes=1))
    assert incident.status == Status.IN_PROGRESS
    assert not alerts.acknowledge(incident, at=T0 + timedelta(minutes=2))
    assert alerts.resolve(incident, at=T0 + timedelta(minutes=3), notes="fixed")
    assert incident.status == Status.RESOLVED and incident.resolution_notes == "fixed"
    assert not alerts.resolve(incident, at=T0 + timedelta(minutes=4), notes="again")
    assert not alerts.acknowledge(incident, at=T0 + timedelta(minutes=5))
    assert incident.resolved_at == T0 + timedelta(minutes=3)


def test_a_change_dated_before_the_incident_is_moved_to_its_opening():
    incident = make_incident()
    alerts.acknowledge(incident, at=T0 - timedelta(hours=1))
    assert incident.events[0].at == T0


def test_event_time_is_the_payload_timestamp_in_utc_but_never_in_the_future():
    now = T0 + timedelta(hours=1)
    assert alerts.event_time(None, now=now) == now
    assert alerts.event_time(datetime(2026, 11, 24, 11, 30, tzinfo=timezone(timedelta(hours=2))), now=now) == \
        T0 + timedelta(minutes=30)
    assert alerts.event_time(datetime(2026, 11, 24, 9, 15), now=now) == T0 + timedelta(minutes=15)
    assert alerts.event_time(now + timedelta(days=1), now=now) == now


def test_generated_dedup_key_is_32_hex_and_stable_for_the_same_event():
    event = {"event_action": "trigger", "payload": {"summary": "x", "source": "h", "severity": "info"}}
    key = alerts.generated_dedup_key(integration_id="a", event=event)
    assert len(key) == 32 and int(key, 16) >= 0
    reordered = {"payload": {"severity": "info", "source": "h", "summary": "x"}, "event_action": "trigger"}
    assert alerts.generated_dedup_key(integration_id="a", event=reordered) == key
    assert alerts.generated_dedup_key(integration_id="b", event=event) != key


def test_description_carries_the_payload_context():
    text = alerts.describe(source="db-1", component="postgres", group="prod", class_="disk",
                           custom_details={"free": "1%"})
    assert "Source: db-1" in text and "Component: postgres" in text and '"free": "1%"' in text


# outages --------------------------------------------------------------------------------


@pytest.mark.parametrize(("criticality", "impact"), [(1, 1), (2, 1), (3, 2), (4, 3), (5, 3), (None, 1), (9, 1)])
def test_outage_impact_follows_criticality_and_defaults_to_one(criticality, impact):
    assert outages.impact_for(criticality) == impact


def outage(**overrides) -> Outage:
    values = dict(id="o", service_id="svc", incident_id="i", status=Availability.DOWN, at=T0, cause_ci_ids=["db"])
    values.update(overrides)
    return Outage.start(**values)


def test_default_policy_opens_on_down_only():
    policy = OutagePolicy()
    assert outages.plan(last=None, outage=None, policy=policy, status=Availability.DOWN, observed_at=T0) == Step.OPEN
    assert outages.plan(last=None, outage=None, policy=policy, status=Availability.DEGRADED,
                        observed_at=T0) == Step.NONE
    assert outages.plan(last=None, outage=None, policy=policy, status=Availability.UP, observed_at=T0) == Step.NONE


def test_open_on_degraded_policy_opens_on_degraded():
    policy = OutagePolicy(open_on=Availability.DEGRADED)
    assert outages.plan(last=None, outage=None, policy=policy, status=Availability.DEGRADED,
                        observed_at=T0) == Step.OPEN


def test_policy_cannot_open_on_up():
    with pytest.raises(ValueError):
        OutagePolicy(open_on=Availability.UP)


def test_ongoing_outage_is_updated_then_ended_by_up():
    ongoing = outage()
    last = ServiceState(service_id="svc", status=Availability.DOWN, observed_at=T0)
    later = T0 + timedelta(minutes=5)
    policy = OutagePolicy()
    assert outages.plan(last=last, outage=ongoing, policy=policy, status=Availability.DEGRADED,
                        observed_at=later) == Step.UPDATE
    assert outages.plan(last=last, outage=ongoing, policy=policy, status=Availability.UP,
                        observed_at=later) == Step.END
    ongoing.observe(Availability.DEGRADED, at=later, cause_ci_ids=["db", "cache"])
    assert ongoing.cause_ci_ids == ["db", "cache"] and ongoing.ongoing
    ongoing.end(at=later)
    assert not ongoing.ongoing and ongoing.status == Availability.UP


def test_an_observation_older_than_the_last_applied_is_stale():
    ongoing = outage()
    last = ServiceState(service_id="svc", status=Availability.DOWN, observed_at=T0)
    assert outages.plan(last=last, outage=ongoing, policy=OutagePolicy(), status=Availability.UP,
                        observed_at=T0 - timedelta(seconds=1)) == Step.STALE
