"""The CloudEvents 1.0 envelope, in Kafka binary mode and HTTP structured mode.

Conversion goes through the official `cloudevents` SDK so that any CloudEvents consumer
reads our records: ce_* headers, `content-type: application/json`, data as the value.
"""

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from cloudevents.core.bindings import kafka as ce_kafka
from cloudevents.core.formats.json import JSONFormat
from cloudevents.core.v1.event import CloudEvent
from pydantic import BaseModel, ValidationError

from . import registry

JSON = JSONFormat()
CONTENT_TYPE = "application/json"
VERSION_EXTENSION = "dataversion"


class PoisonMessage(ValueError):
    """A record that can never be processed: not a CloudEvent, or data that fails its schema."""


@dataclass(frozen=True)
class Envelope:
    """One event: the CloudEvents context attributes plus its JSON data."""

    type: str
    source: str
    data: dict[str, Any]
    time: datetime
    subject: str | None = None
    id: str = field(default_factory=lambda: str(uuid.uuid4()))
    dataversion: int = 1

    def model(self) -> BaseModel:
        """The data parsed into its registered schema."""
        schema = registry.model_for(self.type, self.dataversion)
        return schema.model_validate(self.data)

    def to_cloudevent(self) -> CloudEvent:
        attributes: dict[str, Any] = {
            "id": self.id,
            "source": self.source,
            "type": self.type,
            "specversion": "1.0",
            "time": self.time,
            "datacontenttype": CONTENT_TYPE,
            VERSION_EXTENSION: str(self.dataversion),
        }
        if self.subject is not None:
            attributes["subject"] = self.subject
        return CloudEvent(attributes, self.data)


def new_event(data: BaseModel, *, source: str, subject: str | None = None,
              time: datetime | None = None) -> Envelope:
    """Wrap a registered schema instance in an envelope stamped with the time it happened."""
    event_type, version = registry.key_of(type(data))
    return Envelope(
        type=event_type,
        source=source,
        subject=subject,
        time=(time or datetime.now(UTC)).astimezone(UTC),
        data=data.model_dump(mode="json"),
        dataversion=version,
    )


def to_kafka(envelope: Envelope) -> tuple[dict[str, bytes], bytes]:
    """Binary content mode: (headers, value)."""
    message = ce_kafka.to_binary(envelope.to_cloudevent(), JSON)
    return message.headers, message.value


def from_kafka(headers: dict[str, bytes], value: bytes) -> Envelope:
    """Parse a binary-mode record; raise PoisonMessage if it is not a valid event of ours."""
    if "ce_time" not in headers:
        raise PoisonMessage("event has no ce_time: every event carries the time it happened")
    try:
        event = ce_kafka.from_binary(ce_kafka.KafkaMessage(headers=headers, key=None, value=value), JSON)
        data = event.get_data()
        if not isinstance(data, dict):
            raise PoisonMessage("event data is not a JSON object")
        time = event.get_time()
        envelope = Envelope(
            id=event.get_id(),
            type=event.get_type(),
            source=event.get_source(),
            subject=event.get_subject(),
            time=time.astimezone(UTC),
            data=data,
            dataversion=int(event.get_extension(VERSION_EXTENSION) or 1),
        )
    except PoisonMessage:
        raise
    except Exception as exc:  # the SDK raises several unrelated types for malformed input
        raise PoisonMessage(f"not a CloudEvent: {exc}") from exc
    return envelope


def parse_data(envelope: Envelope) -> BaseModel:
    """Validate the data against its schema; a failure makes the record poison."""
    try:
        return envelope.model()
    except (ValidationError, registry.UnknownEventType) as exc:
        raise PoisonMessage(f"{envelope.type} v{envelope.dataversion}: {exc}") from exc


def to_structured(envelope: Envelope) -> bytes:
    """Structured content mode (`application/cloudevents+json`), as sent over webhooks."""
    return JSON.write(envelope.to_cloudevent())


STRUCTURED_CONTENT_TYPE = "application/cloudevents+json"
