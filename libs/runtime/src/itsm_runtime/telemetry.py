"""JSON logs that carry trace and span ids; OpenTelemetry traces exported by OTLP when configured."""

import logging
import sys

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from pythonjsonlogger.json import JsonFormatter

_configured = False
_logging_configured = False


class TraceContextFilter(logging.Filter):
    """Adds the active span's trace_id and span_id to every record."""

    def filter(self, record: logging.LogRecord) -> bool:
        ctx = trace.get_current_span().get_span_context()
        record.trace_id = format(ctx.trace_id, "032x") if ctx.is_valid else None
        record.span_id = format(ctx.span_id, "016x") if ctx.is_valid else None
        return True


def configure_logging(*, level: str, json_logs: bool, service: str) -> None:
    """JSON (or plain) logs to stdout, labelled with the service; the first call in a process wins,
    so that services sharing a process (standalone) share the launcher's label."""
    global _logging_configured
    if _logging_configured:
        return
    _logging_configured = True
    handler = logging.StreamHandler(sys.stdout)
    handler.addFilter(TraceContextFilter())
    if json_logs:
        handler.setFormatter(JsonFormatter(
            "%(asctime)s %(levelname)s %(name)s %(message)s %(trace_id)s %(span_id)s",
            rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
            static_fields={"service": service},
        ))
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s [%(trace_id)s] %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    logging.getLogger("aiokafka").setLevel(max(logging.WARNING, root.level))
    logging.getLogger("uvicorn.access").setLevel(logging.WARNING)
    logging.getLogger("alembic").setLevel(max(logging.WARNING, root.level))


def configure_tracing(*, service: str, otlp_endpoint: str | None) -> None:
    """Install one tracer provider per process; spans leave it only if an endpoint is set."""
    global _configured
    if _configured:
        return
    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    if otlp_endpoint:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.instrumentation.asyncpg import AsyncPGInstrumentor

        from opentelemetry.instrumentation.aiokafka import AIOKafkaInstrumentor

        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=otlp_endpoint)))
        # Database and Kafka send spans only when they leave the process: they cost a span per query and
        # per record. Without them a record still carries the traceparent it was written in, so the logs
        # of its handling in the consumer carry the trace id of the request that caused it.
        # (asyncpg rather than SQLAlchemy: the SQLAlchemy instrumentation does not support 2.1 yet.)
        AsyncPGInstrumentor().instrument()
        AIOKafkaInstrumentor().instrument()
    trace.set_tracer_provider(provider)
    _configured = True
