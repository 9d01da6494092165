"""Unit tests of the incident aggregate: no I/O."""

from datetime import UTC, datetime

import pytest

from incident_svc.domain.model import (
    IllegalTransition, Incident, InvalidIncident, PriorityChanged, Resolved, Status, StatusChanged, priority_for,
)

T0 = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)


def make_incident(**overrides) -> Incident:
    values = dict(id="i-1", number="INC0000001", title="Payments fail", service_id="svc-pay", impact=2,
                  urgency=2, opened_at=T0)
    values.update(overrides)
    return Incident.open(**values)


@pytest.mark.parametrize(("impact", "urgency", "priority"), [
    (1, 1, 1), (1, 2, 2), (2, 1, 2), (1, 3, 3), (2, 2, 3), (3, 1, 3), (2, 3, 4), (3, 2, 4), (3, 3, 5),
])
def test_priority_follows_the_itil_matrix(impact, urgency, priority):
    assert priority_for(impact, urgency) == priority
    assert make_incident(impact=impact, urgency=urgency).priority == priority


def test_impact_outside_one_to_three_is_rejected():
    with pytest.raises(InvalidIncident):
        priority_for(4, 1)


def test_a_new_incident_records_that_it_opened():
    incident = make_incident()
    assert incident.status == Status.NEW
    assert [type(e).__name__ for e in incident.events] == ["Opened"]


def test_full_lifecycle_with_hold_and_reopen_records_each_move():
    incident = make_incident()
    incident.events.clear()
    moves = [("in_progress", None), ("on_hold", "waiting for vendor"), ("in_progress", None), ("resolved", None),
             ("in_progress", None), ("resolved", None), ("closed", None)]
    for minute, (status, reason) in enumerate(moves, start=1):
        incident.change_status(Status(status), at=T0.replace(minute=minute), hold_reason=reason)
    changes = [(e.from_status, e.to_status) for e in incident.events if isinstance(e, StatusChanged)]
    assert changes == [("new", "in_progress"), ("in_progress", "on_hold"), ("on_hold", "in_progress"),
                       ("in_progress", "resolved"), ("resolved", "in_progress"), ("in_progress", "resolved"),
                       ("resolved", "closed")]
    assert sum(isinstance(e, Resolved) for e in incident.events) == 2
    assert incident.closed_at == T0.replace(minute=7)
    assert incident.hold_reason is None


@pytest.mark.parametrize(("path", "illegal"), [
    ([], "closed"),
    (["in_progress", "resolved", "closed"], "in_progress"),
    (["in_progress"], "new"),
])
def test_illegal_transitions_are_refused(path, illegal):
    incident = make_incident()
    for status in path:
        incident.change_status(Status(status), at=T0)
    with pytest.raises(IllegalTransition):
        incident.change_status(Status(illegal), at=T0)


def test_hold_needs_a_reason():
    incident = make_incident()
    with pytest.raises(InvalidIncident):
        incident.change_status(Status.ON_HOLD, at=T0)


def test_reassessing_impact_changes_priority_and_records_it():
    incident = make_incident(impact=3, urgency=3)
    incident.events.clear()
    incident.reassess(impact=1, urgency=None, at=T0)
    assert incident.priority == 3
    assert incident.events == [PriorityChanged(from_priority=5, to_priority=3, at=T0)]
    incident.events.clear()
    incident.reassess(impact=1, urgency=3, at=T0)
    assert incident.events == []
