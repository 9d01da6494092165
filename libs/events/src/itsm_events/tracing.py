"""W3C trace context carried through outbox rows and Kafka headers."""

from collections.abc import Iterator
from contextlib import contextmanager

from aiokafka import AIOKafkaProducer
from opentelemetry import context as otel_context
from opentelemetry import propagate

TRACEPARENT = "traceparent"
TRACE_HEADERS = (TRACEPARENT, "tracestate")


def current_traceparent() -> str | None:
    """The traceparent of the active span, to be stored with an outbox row."""
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return carrier.get(TRACEPARENT)


def context_from_headers(headers: dict[str, bytes]) -> otel_context.Context:
    """The trace context a Kafka record carries (empty context if none)."""
    carrier = {k: v.decode("latin-1") for k, v in headers.items() if k in (TRACEPARENT, "tracestate")}
    return propagate.extract(carrier)


def kafka_instrumented() -> bool:
    """True once the OpenTelemetry aiokafka instrumentation wraps the producer."""
    return hasattr(AIOKafkaProducer.send, "__wrapped__")


@contextmanager
def producing_in(headers: dict[str, bytes]) -> Iterator[list[tuple[str, bytes]]]:
    """Make the trace context a record was written in current while it is sent.

    Yields the headers to send, for the aiokafka instrumentation to add its send span's `traceparent` (without
    it, `KafkaTransport` sends the stored headers, `traceparent` included, as they are).
    """
    token = otel_context.attach(context_from_headers(headers))
    try:
        yield [(k, v) for k, v in headers.items() if k not in TRACE_HEADERS]
    finally:
        otel_context.detach(token)
