"""Unit tests of the change request aggregate: no I/O."""

from datetime import UTC, datetime, timedelta

import pytest

from change_svc.domain.model import (
    Change, ChangeType, InvalidChange, Requested, Risk, Status, check_window, risk_for,
)

T0 = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)


def make_change(**overrides) -> Change:
    values = dict(id="c-1", number="CHG0000001", title="Upgrade payments-db to PostgreSQL 18", type="normal",
                  requested_at=T0)
    values.update(overrides)
    return Change.request(**values)


@pytest.mark.parametrize(("type_", "risk"), [
    (ChangeType.STANDARD, Risk.LOW), (ChangeType.NORMAL, Risk.MEDIUM), (ChangeType.EMERGENCY, Risk.HIGH),
])
def test_risk_defaults_to_the_rule_of_the_change_type(type_, risk):
    assert risk_for(type_) == risk
    assert make_change(type=str(type_)).risk == risk


def test_an_assessed_risk_overrides_the_default():
    assert risk_for(ChangeType.EMERGENCY, Risk.LOW) == Risk.LOW
    assert make_change(type="standard", risk="high").risk == Risk.HIGH


def test_a_new_change_is_requested_and_records_it():
    change = make_change(service_id="svc-pay", description="minor version")
    assert change.status == Status.REQUESTED
    assert change.created_at == change.updated_at == T0
    assert change.events == [Requested(at=T0)]


@pytest.mark.parametrize(("field", "value"), [("type", "urgent"), ("risk", "extreme"), ("title", " ")])
def test_unknown_values_are_rejected_and_name_the_field(field, value):
    with pytest.raises(InvalidChange) as caught:
        make_change(**{field: value})
    assert caught.value.field == field


@pytest.mark.parametrize(("start", "end"), [
    (T0, T0 + timedelta(hours=2)),
    (T0, None),
    (None, T0),
    (None, None),
    (T0, (T0 + timedelta(minutes=1)).astimezone(tz=None)),
])
def test_a_window_that_ends_after_it_starts_or_is_open_is_accepted(start, end):
    check_window(start, end)
    assert make_change(planned_start=start, planned_end=end).planned_end == end


@pytest.mark.parametrize("end", [T0, T0 - timedelta(seconds=1)])
def test_a_window_that_ends_at_or_before_its_start_is_rejected(end):
    with pytest.raises(InvalidChange) as caught:
        make_change(planned_start=T0, planned_end=end)
    assert caught.value.field == "planned_end"


def test_planned_times_without_an_offset_are_rejected():
    with pytest.raises(InvalidChange) as caught:
        check_window(T0.replace(tzinfo=None), T0 + timedelta(hours=1))
    assert caught.value.field == "planned_start"
