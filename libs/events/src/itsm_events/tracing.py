"""W3C trace context carried through outbox rows and Kafka headers."""

from opentelemetry import context as otel_context
from opentelemetry import propagate

TRACEPARENT = "traceparent"


def current_traceparent() -> str | None:
    """The traceparent of the active span, to be stored with an outbox row."""
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return carrier.get(TRACEPARENT)


def context_from_headers(headers: dict[str, bytes]) -> otel_context.Context:
    """The trace context a Kafka record carries (empty context if none)."""
    carrier = {k: v.decode("latin-1") for k, v in headers.items() if k in (TRACEPARENT, "tracestate")}
    return propagate.extract(carrier)
