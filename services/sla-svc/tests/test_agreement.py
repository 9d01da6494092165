"""Unit tests of the agreement rules: no I/O."""

from datetime import timedelta

import pytest

from sla_svc.domain.agreement import Agreement, InvalidAgreement, Target


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
