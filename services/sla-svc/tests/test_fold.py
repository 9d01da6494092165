"""Unit tests of the SLA clock fold: no I/O. Times are worked out by hand on 24x7 unless stated."""

import json
import random
from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from sla_svc.domain.calendar import NEVER, TwentyFourSeven, build_calendar
from sla_svc.domain.fold import ClockSpec, ClockState, Fact, Stage, advance, ever_targeted, fold

CAL = TwentyFourSeven()
T0 = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
HOUR = 3600.0
RESOLUTION = ClockSpec(metric="resolution", targets={1: 4 * HOUR, 2: 8 * HOUR, 3: 24 * HOUR},
                       thresholds=(0.5, 0.75, 0.9), pause_on=("on_hold",))
RESPONSE = ClockSpec(metric="response", targets={1: 0.5 * HOUR}, thresholds=(0.5,), pause_on=("on_hold",))


def at(hours: float) -> datetime:
    return T0 + timedelta(hours=hours)


def opened(priority: int = 1, hours: float = 0) -> Fact:
    return Fact(event_id="open", kind="opened", at=at(hours), priority=priority, status="new")


def status(event_id: str, hours: float, from_status: str, to_status: str) -> Fact:
    return Fact(event_id=event_id, kind="status", at=at(hours), from_status=from_status, status=to_status)


def priority(event_id: str, hours: float, to: int) -> Fact:
    return Fact(event_id=event_id, kind="priority", at=at(hours), priority=to)


def kinds(clock) -> list[tuple[str, datetime]]:
    return [(e.kind, e.at) for e in clock.timeline]


def test_deadline_is_start_plus_target_and_first_wake_up_is_the_first_warning():
    clock = fold(RESOLUTION, CAL, [opened()], now=at(0))
    assert clock.stage == Stage.RUNNING and clock.deadline == at(4)
    assert clock.next_due == at(2)


def test_warnings_and_breach_each_at_their_own_instant_and_the_clock_keeps_running():
    clock = fold(RESOLUTION, CAL, [opened()], now=at(4) + timedelta(milliseconds=3))
    assert kinds(clock) == [("started", at(0)), ("warning", at(2)), ("warning", at(3)), ("warning", at(3.6)),
                            ("breached", at(4))]
    assert clock.breached_at == at(4) and clock.stage == Stage.RUNNING and clock.next_due is None


def test_a_target_the_calendar_cannot_give_before_the_horizon_is_never_due():
    minute_a_week = build_calendar(id="sparse", version=1, timezone="UTC", hours={"mon": [["09:00", "09:01"]]})
    year = ClockSpec(metric="resolution", targets={1: 366 * 24 * HOUR}, thresholds=(0.5,), pause_on=("on_hold",))
    clock = fold(year, minute_a_week, [opened()], now=at(1))
    assert clock.stage == Stage.RUNNING and clock.deadline == NEVER
    assert clock.next_due is None, "no timer for an instant that never comes"
    assert kinds(clock) == [("started", at(0))]


def test_evaluating_early_records_nothing_due_later():
    clock = fold(RESOLUTION, CAL, [opened()], now=at(1.9))
    assert kinds(clock) == [("started", at(0))] and clock.warned == ()


def test_paused_time_never_counts_and_moves_the_deadline():
    # runs 1 h, on hold 2 h, runs again: 3 h left from 3:00, so the deadline is 6:00
    facts = [opened(), status("s1", 0.5, "new", "in_progress"), status("s2", 1, "in_progress", "on_hold"),
             status("s3", 3, "on_hold", "in_progress")]
    clock = fold(RESOLUTION, CAL, facts, now=at(3))
    assert clock.deadline == at(6) and clock.elapsed(CAL, at(4)) == 2 * HOUR
    paused = fold(RESOLUTION, CAL, facts[:3], now=at(2))
    assert paused.stage == Stage.PAUSED and paused.deadline == at(4), "as of the pause: 3 h left from 1:00"
    assert fold(RESOLUTION, CAL, facts[:3], now=at(100)).breached_at is None, "a paused clock never breaches"


def test_resolution_before_the_deadline_is_met_and_after_it_is_breached_at_the_deadline():
    met = fold(RESOLUTION, CAL, [opened(), status("r", 3.5, "new", "resolved")], now=at(10))
    assert met.stage == Stage.COMPLETED and not met.breached and met.completed_at == at(3.5)
    assert met.timeline[-1].details == {"met": True, "elapsed_seconds": 3.5 * HOUR}
    late = fold(RESOLUTION, CAL, [opened(), status("r", 5, "new", "resolved")], now=at(10))
    assert late.breached_at == at(4) and late.timeline[-1].details["met"] is False


def test_response_stops_at_the_first_move_out_of_new_only():
    facts = [opened(), status("a", 0.2, "new", "in_progress"), status("b", 0.3, "in_progress", "on_hold")]
    clock = fold(RESPONSE, CAL, facts, now=at(5))
    assert clock.stage == Stage.COMPLETED and clock.completed_at == at(0.2) and not clock.breached


def test_priority_change_retargets_keeping_the_elapsed_time():
    # P3 (24 h) for 2 h, then P1 (4 h): 2 h already count, so the deadline is 2 h after the change
    facts = [opened(priority=3), priority("p", 2, 1)]
    clock = fold(RESOLUTION, CAL, facts, now=at(2))
    assert clock.priority == 1 and clock.target_seconds == 4 * HOUR and clock.deadline == at(4)
    assert ("retargeted", at(2)) in kinds(clock)
    retarget = next(e for e in clock.timeline if e.kind == "retargeted")
    assert retarget.details == {"from_priority": 3, "to_priority": 1, "target_seconds": 4 * HOUR,
                                "elapsed_seconds": 2 * HOUR}
    assert ("warning", at(2)) in kinds(clock), "50% of the new target is already used: warned at the change"


def test_priority_change_while_paused_keeps_paused_time_out():
    # P1 runs 1 h, on hold from 1:00 to 5:00, raised to P2 (8 h) at 3:00 while paused, resumed at 5:00
    facts = [opened(), status("h", 1, "new", "on_hold"), priority("p", 3, 2), status("r", 5, "on_hold", "in_progress")]
    clock = fold(RESOLUTION, CAL, facts, now=at(5))
    assert clock.elapsed(CAL, at(5)) == 1 * HOUR
    assert clock.deadline == at(12), "7 h of the 8 h target remain from 5:00"


def test_shorter_target_already_exceeded_breaches_at_the_change():
    clock = fold(RESOLUTION, CAL, [opened(priority=3), priority("p", 5, 1)], now=at(5))
    assert clock.breached_at == at(5)


def test_priority_without_a_target_cancels_until_one_applies_again():
    clock = fold(RESOLUTION, CAL, [opened(), priority("p", 1, 5)], now=at(10))
    assert clock.stage == Stage.CANCELLED and clock.breached_at is None and clock.next_due is None
    back = fold(RESOLUTION, CAL, [opened(), priority("p", 1, 5), priority("q", 2, 1)], now=at(2))
    assert back.stage == Stage.RUNNING and back.deadline == at(4), "the elapsed time kept counting"


def test_reopening_resumes_the_resolution_clock():
    # resolved at 1:00 (met), reopened at 3:00: 3 h remain, so it breaches at 6:00 and the second stop is late
    facts = [opened(), status("r1", 1, "new", "resolved"), status("o", 3, "resolved", "in_progress"),
             status("r2", 7, "in_progress", "resolved")]
    clock = fold(RESOLUTION, CAL, facts, now=at(8))
    assert [k for k, _ in kinds(clock)] == ["started", "stopped", "reopened", "warning", "warning", "warning",
                                            "breached", "stopped"]
    assert clock.breached_at == at(6) and clock.completed_at == at(7)
    stops = [e for e in clock.timeline if e.kind == "stopped"]
    assert [s.details["met"] for s in stops] == [True, False] and stops[0].key != stops[1].key


def test_a_finished_clock_keeps_the_priority_it_was_judged_against():
    # P3 (24 h) resolved at 10:00, met; escalated to P1 (4 h) afterwards: still a P3 met in 10 h, not a P1 at 250%
    facts = [opened(priority=3), status("r", 10, "new", "resolved"), priority("p", 11, 1)]
    clock = fold(RESOLUTION, CAL, facts, now=at(12))
    assert (clock.priority, clock.target_seconds, clock.stage, clock.breached_at) == (3, 24 * HOUR, Stage.COMPLETED,
                                                                                    None)
    assert clock.deadline == at(24) and [k for k, _ in kinds(clock)] == ["started", "stopped"]
    response = fold(RESPONSE, CAL, [opened(priority=1), status("a", 0.2, "new", "in_progress"),
                                    priority("p", 1, 2)], now=at(2))
    assert (response.priority, response.target_seconds) == (1, 0.5 * HOUR), "P2 has no response target"
    assert response.stage == Stage.COMPLETED


def test_a_reopened_clock_runs_on_the_priority_the_incident_has_then():
    # P3 resolved at 10:00 (met), escalated to P1 at 11:00, reopened at 12:00: 10 h elapsed already exceed P1's
    # 4 h, so the re-target at the reopening crosses every threshold and the target at once
    facts = [opened(priority=3), status("r", 10, "new", "resolved"), priority("p", 11, 1),
             status("o", 12, "resolved", "in_progress")]
    clock = fold(RESOLUTION, CAL, facts, now=at(13))
    assert kinds(clock) == [("started", at(0)), ("stopped", at(10)), ("reopened", at(12)), ("retargeted", at(12)),
                            ("warning", at(12)), ("warning", at(12)), ("warning", at(12)), ("breached", at(12))]
    retargeted = clock.timeline[3].details
    assert (retargeted["from_priority"], retargeted["to_priority"], retargeted["elapsed_seconds"]) == (3, 1, 10 * HOUR)
    assert (clock.priority, clock.target_seconds, clock.stage) == (1, 4 * HOUR, Stage.RUNNING)
    assert clock.breached_at == at(12) and clock.elapsed(CAL, at(13)) == 11 * HOUR


def test_entries_are_named_by_kind_and_instant_so_a_late_earlier_one_renames_none():
    hold = [opened(), status("h", 1.5, "new", "on_hold"), status("r", 3, "on_hold", "in_progress")]
    first = fold(RESOLUTION, CAL, hold, now=at(3.2))
    late = fold(RESOLUTION, CAL, [*hold, status("h0", 0.5, "new", "on_hold"), status("r0", 1, "on_hold", "new")],
                now=at(3.2))
    assert [e.key for e in first.timeline] == [
        f"started:{at(0).isoformat()}", f"paused:{at(1.5).isoformat()}", f"resumed:{at(3).isoformat()}"]
    assert {e.key for e in first.timeline} < {e.key for e in late.timeline}, "the earlier pause adds keys only"
    assert [e.key for e in late.timeline if e.kind == "stopped"] == []
    stopped = fold(RESOLUTION, CAL, [opened(), status("r", 1, "new", "resolved")], now=at(2)).timeline[-1]
    assert stopped.key == f"stopped:{at(1).isoformat()}:True", "a stop's key says whether it met the target"


def test_two_entries_of_a_kind_at_one_instant_are_told_apart():
    # resolved, reopened and resolved again within the same instant (events stamped alike, ordered by id)
    facts = [opened(), status("a", 1, "new", "resolved"), status("b", 1, "resolved", "in_progress"),
             status("c", 1, "in_progress", "resolved")]
    clock = fold(RESOLUTION, CAL, facts, now=at(2))
    stop = f"stopped:{at(1).isoformat()}:True"
    assert [e.key for e in clock.timeline] == [
        f"started:{at(0).isoformat()}", stop, f"reopened:{at(1).isoformat()}", f"{stop}#2"]
    saved = json.loads(clock.to_json())
    assert [e.get("key") for e in saved["timeline"]] == [None, None, None, f"{stop}#2"], \
        "the JSON names only what a reader cannot name again"
    assert ClockState.from_dict(saved) == clock


def test_a_late_resolution_stamped_before_the_deadline_undoes_the_breach():
    before = fold(RESOLUTION, CAL, [opened()], now=at(5))
    after = fold(RESOLUTION, CAL, [opened(), status("r", 3.9, "new", "resolved")], now=at(5))
    assert before.breached and not after.breached and after.completed_at == at(3.9)


def test_events_after_opening_but_delivered_before_it_still_count():
    facts = [status("r", 1, "new", "resolved"), opened()]
    assert fold(RESOLUTION, CAL, facts, now=at(5)).completed_at == at(1)
    assert fold(RESOLUTION, CAL, facts[:1], now=at(5)) is None, "no clock before the incident is opened"


STEPS = [("status", "new", "in_progress"), ("status", "in_progress", "on_hold"), ("status", "on_hold", "in_progress"),
         ("priority", 2, None), ("priority", 1, None), ("status", "in_progress", "resolved"),
         ("status", "resolved", "in_progress"), ("status", "in_progress", "resolved")]


@st.composite
def incident_histories(draw):
    """An opened incident followed by a random walk of changes at increasing instants."""
    facts = [opened(priority=draw(st.sampled_from([1, 2, 3])))]
    hour = 0.0
    for n in range(draw(st.integers(0, 8))):
        hour += draw(st.floats(0.01, 3.0, allow_nan=False))
        kind, a, b = draw(st.sampled_from(STEPS))
        facts.append(status(f"e{n}", hour, a, b) if kind == "status" else priority(f"e{n}", hour, a))
    return facts


@settings(max_examples=200, deadline=None)
@given(incident_histories(), st.randoms(use_true_random=False), st.floats(0, 40))
def test_the_fold_depends_only_on_event_time_not_on_arrival_order_or_duplicates(facts, rnd: random.Random, now):
    expected = fold(RESOLUTION, CAL, facts, now=at(now))
    delivered = facts + rnd.sample(facts, k=len(facts) // 2)  # redelivered copies
    rnd.shuffle(delivered)
    assert fold(RESOLUTION, CAL, delivered, now=at(now)) == expected


@settings(max_examples=200, deadline=None)
@given(incident_histories(), st.floats(0, 40))
def test_elapsed_never_exceeds_wall_time_and_every_timeline_instant_is_in_order(facts, now):
    clock = fold(RESOLUTION, CAL, facts, now=at(now))
    last = max(at(now), max(f.at for f in facts))
    assert 0 <= clock.elapsed(CAL, last) <= (last - T0).total_seconds() + 1e-6
    instants = [e.at for e in clock.timeline]
    assert instants == sorted(instants)
    assert len({e.key for e in clock.timeline}) == len(clock.timeline), "timeline keys are unique"


@settings(max_examples=200, deadline=None)
@given(incident_histories(), st.floats(0, 20), st.floats(0, 20))
def test_a_saved_state_advanced_by_a_timer_equals_folding_again(facts, later, saved_at):
    """What a timer does (load the saved state, move it on) gives the state the facts give at that instant."""
    t1 = max(f.at for f in facts) + timedelta(hours=saved_at)
    t2 = t1 + timedelta(hours=later)
    saved = ClockState.from_dict(fold(RESOLUTION, CAL, facts, now=t1).to_dict())
    assert advance(RESOLUTION, CAL, saved, t2) == fold(RESOLUTION, CAL, facts, now=t2)


@settings(max_examples=200, deadline=None)
@given(incident_histories(), st.floats(0, 40), st.integers(0, 999_999))
def test_the_state_as_json_is_the_json_of_its_dict(facts, now, microseconds):
    """to_json (the rebuild's, by orjson) writes what to_dict gives, instants with microseconds too."""
    clock = fold(RESOLUTION, CAL, facts, now=at(now) + timedelta(microseconds=microseconds))
    assert json.loads(clock.to_json()) == json.loads(json.dumps(clock.to_dict()))
    assert ClockState.from_dict(json.loads(clock.to_json())) == clock


@settings(max_examples=200, deadline=None)
@given(incident_histories(), st.floats(0, 40))
def test_a_state_with_every_entry_named_reads_the_same(facts, now):
    """States written before e8b3f0c6d1a4 name every entry, also those `entry_name` names."""
    clock = fold(RESOLUTION, CAL, facts, now=at(now))
    saved = json.loads(clock.to_json())
    for entry, e in zip(saved["timeline"], clock.timeline, strict=True):
        assert entry.get("key", e.key) == e.key
        entry["key"] = e.key
    assert ClockState.from_dict(saved) == clock


def test_an_incident_whose_priorities_never_had_a_target_gets_no_clock():
    assert not ever_targeted(RESPONSE, [opened(priority=2), priority("p", 1, 3)])
    assert ever_targeted(RESPONSE, [opened(priority=2), priority("p", 1, 1)])
