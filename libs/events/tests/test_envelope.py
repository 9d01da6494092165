"""Unit tests of the event contract: envelope, registry, topics (no I/O)."""

import json
from datetime import UTC, datetime

import pytest
from cloudevents.core.bindings import http as ce_http
from cloudevents.core.bindings import kafka as ce_kafka
from cloudevents.core.formats.json import JSONFormat
from pydantic import BaseModel

from itsm_events import PoisonMessage, from_kafka, new_event, registry, schemas, to_kafka, to_structured, topics
from itsm_events.envelope import parse_data

OPENED = schemas.IncidentOpened(incident_id="i-1", number="INC0000001", title="down", service_id="svc",
                                impact=1, urgency=1, priority=1, status="new",
                                opened_at=datetime(2026, 11, 24, 9, 0, tzinfo=UTC))


def test_binary_mode_headers_follow_the_kafka_binding():
    envelope = new_event(OPENED, source="/incident-svc", subject="i-1", time=OPENED.opened_at)
    headers, value = to_kafka(envelope)
    assert headers["ce_type"] == b"itsm.incident.opened"
    assert headers["ce_source"] == b"/incident-svc"
    assert headers["ce_specversion"] == b"1.0"
    assert headers["ce_subject"] == b"i-1"
    assert headers["ce_time"] == b"2026-11-24T09:00:00Z"
    assert headers["content-type"] == b"application/json"
    assert json.loads(value)["incident_id"] == "i-1"


def test_the_official_sdk_reads_our_records():
    envelope = new_event(OPENED, source="/incident-svc", subject="i-1")
    headers, value = to_kafka(envelope)
    event = ce_kafka.from_binary(ce_kafka.KafkaMessage(headers=headers, key=b"i-1", value=value), JSONFormat())
    assert event.get_id() == envelope.id
    assert event.get_type() == "itsm.incident.opened"
    assert event.get_data()["priority"] == 1


def test_round_trip_keeps_every_attribute_and_the_schema():
    envelope = new_event(OPENED, source="/incident-svc", subject="i-1")
    parsed = from_kafka(*to_kafka(envelope))
    assert parsed == envelope
    assert parse_data(parsed) == OPENED


def test_structured_mode_is_one_json_document_the_sdk_reads():
    envelope = new_event(OPENED, source="/incident-svc")
    body = to_structured(envelope)
    document = json.loads(body)
    assert document["type"] == "itsm.incident.opened" and document["data"]["title"] == "down"
    event = ce_http.from_structured(ce_http.HTTPMessage(headers={"content-type": "application/cloudevents+json"},
                                                        body=body), JSONFormat())
    assert event.get_id() == envelope.id


@pytest.mark.parametrize(("headers", "value"), [
    ({}, b"{}"),
    ({"ce_type": b"itsm.incident.opened", "ce_id": b"1", "ce_source": b"/x", "ce_specversion": b"1.0",
      "ce_time": b"2026-11-24T09:00:00Z", "content-type": b"application/json"}, b"[1, 2]"),
    ({"ce_type": b"itsm.incident.opened", "ce_id": b"1", "ce_source": b"/x", "ce_specversion": b"1.0",
      "content-type": b"application/json"}, b"{}"),
    ({"ce_type": b"itsm.incident.opened", "ce_id": b"1", "ce_source": b"/x", "ce_specversion": b"1.0",
      "ce_time": b"not a time", "content-type": b"application/json"}, b"{}"),
])
def test_records_that_are_not_events_are_poison(headers, value):
    with pytest.raises(PoisonMessage):
        from_kafka(headers, value)


def test_data_failing_its_schema_is_poison():
    envelope = new_event(OPENED, source="/x")
    bad = from_kafka(*to_kafka(envelope))
    object.__setattr__(bad, "data", {"incident_id": "i-1"})
    with pytest.raises(PoisonMessage):
        parse_data(bad)


def test_every_registered_type_maps_to_its_context_topic():
    for (event_type, version), model in registry.registered().items():
        assert version >= 1
        assert topics.topic_for_type(event_type) == f"itsm.{event_type.split('.')[1]}.events"
        assert issubclass(model, BaseModel)


def test_registering_another_class_under_a_taken_type_and_version_fails():
    class Imposter(schemas.EventData):
        pass

    with pytest.raises(ValueError):
        registry.register("itsm.incident.opened", 1)(Imposter)


def test_dead_letter_topic_names_topic_and_group():
    assert topics.dead_letter_topic(topics.INCIDENT, "sla-svc") == "itsm.incident.events.sla-svc.dlq"
    with pytest.raises(ValueError):
        topics.topic_for_type("incident.opened")
