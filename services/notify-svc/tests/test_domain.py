"""Unit tests of notify's rules: matching, retry classification, backoff, secrets. No I/O."""

import base64
from datetime import UTC, datetime, timedelta

import pytest
from standardwebhooks import Webhook

from notify_svc.domain.model import (
    DeliveryStatus, Outcome, RetryPolicy, Subscription, UnsupportedChannel, classify, filter_matches, new_secret,
    parse_retry_after, wants_type,
)

T0 = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
BREACH = {"service_id": "svc-pay", "customer_id": "acme", "clock_id": "c-1"}


def make_subscription(**overrides) -> Subscription:
    values = dict(id="s-1", channel="webhook", target="https://hooks.example/itsm",
                  event_types=["itsm.sla.breached"], filter=None, created_at=T0)
    values.update(overrides)
    return Subscription.create(**values)


@pytest.mark.parametrize(("event_types", "event_type", "wanted"), [
    (["itsm.sla.breached"], "itsm.sla.breached", True),
    (["itsm.sla.breached"], "itsm.sla.warning", False),
    (["itsm.sla.warning", "itsm.sla.breached"], "itsm.sla.breached", True),
    (["*"], "itsm.incident.opened", True),
    (["*"], "itsm.notify.delivery_dead", False),
    (["*", "itsm.notify.delivery_dead"], "itsm.notify.delivery_dead", True),
    (["itsm.notify.delivery_dead"], "itsm.notify.delivery_dead", True),
])
def test_event_type_rule_with_wildcard_that_skips_notifys_own_events(event_types, event_type, wanted):
    assert wants_type(event_types, event_type) is wanted


@pytest.mark.parametrize(("filter", "matches"), [
    (None, True),
    ({}, True),
    ({"service_id": "svc-pay"}, True),
    ({"service_id": "svc-other"}, False),
    ({"service_id": "svc-pay", "customer_id": "acme"}, True),
    ({"service_id": "svc-pay", "customer_id": "globex"}, False),
    ({"customer_id": "acme"}, True),
])
def test_filter_needs_every_named_field_to_match(filter, matches):
    assert filter_matches(filter, BREACH) is matches


def test_a_filter_on_a_field_the_event_lacks_does_not_match():
    assert not filter_matches({"customer_id": "acme"}, {"service_id": "svc-pay"})
    assert not filter_matches({"service_id": "svc-pay"}, {"customer_id": None})


def test_subscription_wants_combines_type_and_filter():
    subscription = make_subscription(filter={"service_id": "svc-pay", "customer_id": None})
    assert subscription.filter == {"service_id": "svc-pay"}
    assert subscription.wants("itsm.sla.breached", BREACH)
    assert not subscription.wants("itsm.sla.breached", {**BREACH, "service_id": "svc-hr"})
    assert not subscription.wants("itsm.sla.warning", BREACH)


def test_only_the_webhook_channel_is_supported_yet():
    for channel in ("email", "chat"):
        with pytest.raises(UnsupportedChannel, match="not supported yet"):
            make_subscription(channel=channel)


def test_duplicate_event_types_are_dropped_keeping_order():
    assert make_subscription(event_types=["b.x", "a.y", "b.x"]).event_types == ["b.x", "a.y"]


def test_secrets_are_fresh_standard_webhooks_secrets():
    first, second = new_secret(), new_secret()
    assert first != second
    assert first.startswith("whsec_")
    assert len(base64.b64decode(first.removeprefix("whsec_"))) >= 24
    signature = Webhook(first).sign("msg_1", T0, "{}")
    assert signature.startswith("v1,")


@pytest.mark.parametrize(("status_code", "outcome"), [
    (200, Outcome.DELIVERED), (201, Outcome.DELIVERED), (204, Outcome.DELIVERED), (299, Outcome.DELIVERED),
    (500, Outcome.RETRY), (502, Outcome.RETRY), (503, Outcome.RETRY), (599, Outcome.RETRY),
    (429, Outcome.RETRY), (None, Outcome.RETRY),
    (400, Outcome.FAILED), (401, Outcome.FAILED), (404, Outcome.FAILED), (410, Outcome.FAILED),
    (301, Outcome.FAILED), (302, Outcome.FAILED),
])
def test_retry_classification_of_responses(status_code, outcome):
    assert classify(status_code) is outcome


@pytest.mark.parametrize("attempt", range(1, 30))
def test_backoff_is_full_jitter_under_an_exponential_ceiling_and_the_cap(attempt):
    policy = RetryPolicy(base_seconds=1.0, max_seconds=300.0)
    ceiling = min(300.0, 2.0 ** (attempt - 1))
    assert policy.backoff(attempt, rand=lambda: 0.0) == 0.0
    assert policy.backoff(attempt, rand=lambda: 0.999999) == pytest.approx(ceiling * 0.999999)
    assert 0.0 <= policy.backoff(attempt) <= ceiling


def test_backoff_ceiling_doubles_then_stops_at_the_cap():
    policy = RetryPolicy(base_seconds=1.0, max_seconds=300.0)
    ceilings = [policy.backoff(n, rand=lambda: 1.0) for n in range(1, 12)]
    assert ceilings == [1, 2, 4, 8, 16, 32, 64, 128, 256, 300, 300]
    assert policy.backoff(10_000, rand=lambda: 1.0) == 300


def test_decide_delivered_failed_retry_and_dead():
    policy = RetryPolicy(base_seconds=1.0, max_seconds=300.0, max_attempts=3)
    delivered = policy.decide(status_code=200, attempts=1, now=T0)
    assert delivered.status is DeliveryStatus.DELIVERED and delivered.delivered_at == T0
    assert policy.decide(status_code=410, attempts=1, now=T0).status is DeliveryStatus.FAILED
    retry = policy.decide(status_code=503, attempts=2, now=T0, rand=lambda: 0.5)
    assert retry.status is DeliveryStatus.PENDING and retry.next_attempt_at == T0 + timedelta(seconds=1)
    assert policy.decide(status_code=None, attempts=3, now=T0).status is DeliveryStatus.DEAD
    assert policy.decide(status_code=404, attempts=3, now=T0).status is DeliveryStatus.FAILED


def test_retry_after_is_honoured_up_to_its_cap():
    policy = RetryPolicy(base_seconds=1.0, max_seconds=300.0, retry_after_max_seconds=3600)
    waited = policy.decide(status_code=429, attempts=1, now=T0, retry_after=120, rand=lambda: 0.0)
    assert waited.next_attempt_at == T0 + timedelta(seconds=120)
    capped = policy.decide(status_code=429, attempts=1, now=T0, retry_after=86400)
    assert capped.next_attempt_at == T0 + timedelta(seconds=3600)


@pytest.mark.parametrize(("header", "seconds"), [
    (None, None), ("", None), ("120", 120.0), (" 5 ", 5.0), ("soon", None), ("-3", None),
    ("Tue, 24 Nov 2026 09:01:30 GMT", 90.0), ("Tue, 24 Nov 2026 08:00:00 GMT", 0.0),
])
def test_retry_after_header_in_seconds_or_as_an_http_date(header, seconds):
    assert parse_retry_after(header, now=T0) == seconds
