"""Unit tests of the SLA clock and agreement rules: no I/O."""

from datetime import UTC, datetime, timedelta

import pytest

from sla_svc.domain.agreement import Agreement, InvalidAgreement, Target
from sla_svc.domain.calendar import TwentyFourSeven
from sla_svc.domain.clock import Breached, Clock, Stage, Stopped, Warned, target_reached

CAL = TwentyFourSeven()
T0 = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
HOUR = 3600.0


def start_clock(target_seconds: float = 4 * HOUR, thresholds=(0.5, 0.75, 0.9)) -> Clock:
    return Clock.start(id="c1", agreement_id="a1", incident_id="i1", service_id="svc", customer_id=None,
                       metric="resolution", priority=1, target_seconds=target_seconds, thresholds=thresholds,
                       calendar=CAL, at=T0)


def at(hours: float) -> datetime:
    return T0 + timedelta(hours=hours)


def test_deadline_is_start_plus_target_on_24x7():
    clock = start_clock()
    assert clock.deadline == at(4)
    assert clock.next_due(CAL) == at(2), "first wake-up is the 50% warning"


def test_warnings_fire_at_each_threshold_and_breach_at_the_deadline():
    clock = start_clock()
    clock.fire(CAL, at(3.2))
    assert clock.events == [Warned(0.5, at(2)), Warned(0.75, at(3))]
    assert clock.next_due(CAL) == at(3.6)
    clock.events.clear()
    clock.fire(CAL, at(4) + timedelta(milliseconds=3))
    assert clock.events == [Warned(0.9, at(3.6)), Breached(at(4))]
    assert clock.breached and clock.breached_at == at(4)
    assert clock.stage == Stage.RUNNING, "a breached clock keeps running until it stops"
    assert clock.next_due(CAL) is None


def test_firing_early_changes_nothing():
    clock = start_clock()
    clock.fire(CAL, at(1.9))
    assert clock.events == [] and clock.warnings_fired == 0


def test_paused_time_never_counts_and_moves_the_deadline():
    clock = start_clock(thresholds=())
    clock.pause(CAL, at(1))
    assert clock.elapsed(CAL, at(3)) == HOUR
    assert clock.next_due(CAL) is None, "a paused clock has no timer"
    clock.resume(CAL, at(3))
    assert clock.deadline == at(6)
    assert clock.elapsed(CAL, at(4)) == 2 * HOUR
    assert clock.remaining(CAL, at(4)) == 2 * HOUR
    assert clock.percent(CAL, at(4)) == 50.0


def test_stop_before_deadline_is_met():
    clock = start_clock(thresholds=())
    clock.stop(CAL, at(1))
    assert clock.stage == Stage.COMPLETED and not clock.breached
    assert clock.events == [Stopped(met=True, at=at(1), elapsed_seconds=HOUR)]
    assert clock.elapsed(CAL, at(10)) == HOUR, "a stopped clock no longer counts"


def test_stop_after_deadline_records_the_breach_at_the_deadline_even_if_no_timer_fired():
    clock = start_clock(thresholds=())
    clock.stop(CAL, at(5))
    assert clock.events == [Breached(at(4)), Stopped(met=False, at=at(5), elapsed_seconds=5 * HOUR)]


def test_stopping_twice_records_once():
    clock = start_clock(thresholds=())
    clock.stop(CAL, at(1))
    clock.stop(CAL, at(2))
    assert len(clock.events) == 1


def test_pause_after_warning_threshold_fires_the_warning_first():
    clock = start_clock()
    clock.pause(CAL, at(2.5))
    assert clock.events == [Warned(0.5, at(2))]
    assert clock.stage == Stage.PAUSED


def test_agreement_covers_its_service_and_customer_only():
    agreement = Agreement(id="a", name="Gold", service_id="svc", customer_id="acme",
                          targets=(Target("resolution", 1, timedelta(hours=4)),))
    assert agreement.covers(service_id="svc", customer_id="acme")
    assert not agreement.covers(service_id="svc", customer_id="other")
    assert not agreement.covers(service_id="svc2", customer_id="acme")
    anyone = Agreement(id="b", name="Std", service_id="svc", targets=(Target("resolution", 1, timedelta(hours=4)),))
    assert anyone.covers(service_id="svc", customer_id=None) and anyone.covers(service_id="svc", customer_id="x")


@pytest.mark.parametrize("kwargs", [
    {"targets": ()},
    {"targets": (Target("resolution", 1, timedelta(0)),)},
    {"targets": (Target("resolution", 1, timedelta(hours=1)), Target("resolution", 1, timedelta(hours=2)))},
    {"warning_thresholds": (0.9, 0.5)},
    {"warning_thresholds": (1.5,)},
    {"pause_on": ("resolved",)},
])
def test_invalid_agreements_are_refused(kwargs):
    values = {"id": "a", "name": "x", "service_id": "s", "targets": (Target("resolution", 1, timedelta(hours=1)),)}
    values.update(kwargs)
    with pytest.raises(InvalidAgreement):
        Agreement(**values)


@pytest.mark.parametrize(("metric", "from_status", "to_status", "reached"), [
    ("response", "new", "in_progress", True),
    ("response", "new", "on_hold", True),
    ("response", "in_progress", "on_hold", False),
    ("resolution", "in_progress", "resolved", True),
    ("resolution", "new", "resolved", True),
    ("resolution", "new", "in_progress", False),
])
def test_what_reaches_a_target(metric, from_status, to_status, reached):
    assert target_reached(metric, from_status=from_status, to_status=to_status) is reached
