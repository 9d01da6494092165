"""Prometheus instruments of the event backbone, labelled by service."""

from prometheus_client import Counter, Gauge, Histogram

EVENTS_PUBLISHED = Counter("itsm_events_published_total", "Events published to the bus", ["service", "topic"])
EVENTS_CONSUMED = Counter(
    "itsm_events_consumed_total", "Events consumed, by outcome", ["service", "type", "outcome"]
)
HANDLER_ERRORS = Counter("itsm_handler_errors_total", "Failed handler attempts", ["service", "type"])
DEAD_LETTERS = Counter("itsm_dead_letters_total",
                       "Records dead-lettered: consumed ones (topic and table), outbox rows too large (table)",
                       ["service", "topic"])
OUTBOX_BACKLOG = Gauge("itsm_outbox_backlog", "Outbox rows not yet published", ["service"])
CONSUMER_LAG = Gauge("itsm_consumer_lag", "Records behind the partition end", ["service", "topic", "partition"])
PUBLISH_LATENCY = Histogram(
    "itsm_outbox_publish_delay_seconds", "Time from outbox commit to publish", ["service"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
