"""Alert intake compatible with the PagerDuty Events API v2, and the integrations that own routing keys.

`POST /v2/enqueue` answers in PagerDuty's own response format (not problem+json): PagerDuty
clients and monitoring tools parse `status`, `message`, `dedup_key` and `errors`.
"""

import json
import math
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator
from pydantic_core import PydanticCustomError
from sqlalchemy.exc import DBAPIError

from itsm_runtime.errors import NotFound
from itsm_runtime.service import IdempotencyKey, RuntimeDep
from itsm_runtime.types import EARLIEST, LATEST

from .. import handlers
from ..db import alerts as alert_store
from ..domain.alerts import SEVERITY_LEVELS
from ..domain.model import priority_for
from .schemas import IntegrationCreate, IntegrationRead

MAX_EVENT_BYTES = 512 * 1024  # PagerDuty's documented limit for one event
MAX_NESTING = 64
ACTIONS = ("trigger", "acknowledge", "resolve")


# Request and response bodies -------------------------------------------------------------


def _timestamp(value: Any) -> Any:
    """ISO 8601 as PagerDuty takes it, `+0000` offsets included; a time without an offset is UTC."""
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.strip())
        except ValueError:
            raise PydanticCustomError("timestamp", "'payload.timestamp' is not an ISO 8601 date-time") from None
    if isinstance(value, datetime):
        aware = value if value.tzinfo else value.replace(tzinfo=UTC)
        if not EARLIEST <= aware < LATEST:
            raise PydanticCustomError("timestamp", "'payload.timestamp' is out of range")
        return aware
    return value


Timestamp = Annotated[datetime, BeforeValidator(_timestamp)]


class Image(BaseModel):
    model_config = ConfigDict(extra="allow")

    src: str = Field(max_length=2048)
    href: str | None = Field(default=None, max_length=2048)
    alt: str | None = Field(default=None, max_length=1024)


class Link(BaseModel):
    model_config = ConfigDict(extra="allow")

    href: str = Field(max_length=2048)
    text: str | None = Field(default=None, max_length=1024)


class AlertPayload(BaseModel):
    """PD-CEF: what the alert is about."""

    model_config = ConfigDict(populate_by_name=True)

    summary: str = Field(min_length=1, max_length=1024, description="Becomes the incident title")
    source: str = Field(min_length=1, max_length=1024, description="The affected system (host, URL, ...)")
    severity: Literal["critical", "error", "warning", "info"] = Field(
        description="Sets impact and urgency: " + ", ".join(
            f"{s} -> ({i}, {u}) P{priority_for(i, u)}" for s, (i, u) in SEVERITY_LEVELS.items()))
    timestamp: Timestamp | None = Field(
        default=None, description="When the problem was detected (ISO 8601); the incident's event time")
    component: str | None = Field(default=None, max_length=1024)
    group: str | None = Field(default=None, max_length=1024)
    class_: str | None = Field(default=None, alias="class", max_length=1024)
    custom_details: Any = None

    @field_validator("summary", "source")
    @classmethod
    def _not_blank(cls, value: str, info) -> str:
        if not value.strip():
            raise PydanticCustomError("blank", "'payload.{field}' is missing or blank", {"field": info.field_name})
        return value


class ActionPayload(BaseModel):
    """An acknowledge or resolve needs no payload; its timestamp, if any, is the change's event time."""

    timestamp: Timestamp | None = None


class _EventBase(BaseModel):
    routing_key: str = Field(description="The integration key of an integration (POST /v1/integrations)")
    images: list[Image] | None = None
    links: list[Link] | None = None
    client: str | None = Field(default=None, max_length=1024)
    client_url: str | None = Field(default=None, max_length=2048)

    @field_validator("routing_key")
    @classmethod
    def _routing_key_shape(cls, value: str) -> str:
        if len(value) != 32:
            raise PydanticCustomError("routing_key", "Length of 'routing_key' is incorrect (should be 32 characters)")
        if not value.isascii() or not value.isalnum():
            raise PydanticCustomError("routing_key", "'routing_key' cannot contain non-alphanumeric characters.")
        return value


class TriggerEvent(_EventBase):
    event_action: Literal["trigger"]
    dedup_key: str | None = Field(
        default=None, min_length=1, max_length=255,
        description="Groups alerts into one incident; generated (32 hex characters) when absent")
    payload: AlertPayload


class AcknowledgeOrResolveEvent(_EventBase):
    event_action: Literal["acknowledge", "resolve"]
    dedup_key: str = Field(min_length=1, max_length=255, description="The dedup key a trigger answered with")
    payload: ActionPayload | None = None


PagerDutyEvent = Annotated[TriggerEvent | AcknowledgeOrResolveEvent, Field(discriminator="event_action")]


class EnqueueAccepted(BaseModel):
    status: Literal["success"] = "success"
    message: str = "Event processed"
    dedup_key: str


class InvalidEvent(BaseModel):
    status: Literal["invalid event"] = "invalid event"
    message: str = "Event object is invalid"
    errors: list[str]


def invalid_event(*errors: str) -> JSONResponse:
    return JSONResponse(InvalidEvent(errors=list(errors)).model_dump(), status_code=400)


# Turning validation failures into PagerDuty's error strings --------------------------------


def pagerduty_errors(errors: list[dict]) -> list[str]:
    """One readable line per validation error, in the style of PagerDuty's `errors` array."""
    lines = []
    for err in errors:
        loc = [str(p) for p in err.get("loc", ()) if p not in ("body", *ACTIONS)]
        path = ".".join("class" if p == "class_" else p for p in loc)
        kind = err.get("type", "")
        if kind in ("routing_key", "blank", "timestamp", "event"):
            lines.append(err["msg"])
        elif kind == "missing" or (err.get("input", "") is None and path):
            lines.append(f"'{path}' is missing or blank")
        elif kind == "union_tag_not_found":
            lines.append("'event_action' is missing or blank")
        elif kind == "union_tag_invalid":
            lines.append("'event_action' must be one of: trigger, acknowledge, resolve")
        elif kind == "json_invalid":
            lines.append("Event object is not valid JSON")
        elif kind == "model_attributes_type" and not path:
            lines.append("Event object must be a JSON object")
        else:
            lines.append(f"'{path}' is invalid: {err.get('msg', 'invalid')}" if path else err.get("msg", "invalid"))
    return lines or ["Event object is invalid"]


def _unstorable(value: Any, depth: int = 0) -> str | None:
    """Why a parsed JSON value cannot be stored as it is (the database refuses NUL, lone surrogates, NaN)."""
    if depth > MAX_NESTING:
        return f"Event object is nested deeper than {MAX_NESTING} levels"
    if isinstance(value, str):
        if "\x00" in value:
            return "Event object contains a NUL character"
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return "Event object contains an invalid Unicode string"
        return None
    if isinstance(value, float) and not math.isfinite(value):
        return "Event object contains a number that is not finite"
    children = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, child in children:
        reason = _unstorable(key, depth + 1) if isinstance(key, str) else None
        if reason or (reason := _unstorable(child, depth + 1)):
            return reason
    return None


class PagerDutyRoute(APIRoute):
    """Events API v2 behaviour around a normal route.

    The body is JSON whatever Content-Type a client sends (PagerDuty's tools send
    `application/json`, `application/json; charset=utf-8`, none, or curl's default form type),
    and every rejection is PagerDuty's 400 `invalid event` body instead of problem+json.
    """

    def get_route_handler(self):
        handler = super().get_route_handler()

        async def route(request: Request) -> Response:
            body = await request.body()
            if len(body) > MAX_EVENT_BYTES:
                return invalid_event(f"Event object is larger than {MAX_EVENT_BYTES // 1024} KiB")
            try:
                parsed = json.loads(body)
            except (ValueError, RecursionError):
                return invalid_event("Event object is not valid JSON")
            if reason := _unstorable(parsed):
                return invalid_event(reason)
            as_json = request.scope | {"headers": [
                *((k, v) for k, v in request.scope["headers"] if k.lower() != b"content-type"),
                (b"content-type", b"application/json")]}

            async def receive():
                return {"type": "http.request", "body": body, "more_body": False}

            try:
                return await handler(Request(as_json, receive))
            except RequestValidationError as exc:
                return invalid_event(*pagerduty_errors(exc.errors()))
            except DBAPIError as exc:
                if (getattr(exc.orig, "sqlstate", None) or "").startswith("22"):
                    return invalid_event("Event object holds a value that cannot be stored")
                raise

        return route


# Routes --------------------------------------------------------------------------------------

integrations = APIRouter(prefix="/v1/integrations", tags=["alert intake"])
enqueue = APIRouter(tags=["alert intake"], route_class=PagerDutyRoute)


def _read(integration: alert_store.Integration) -> IntegrationRead:
    return IntegrationRead(id=integration.id, routing_key=integration.routing_key, name=integration.name,
                           service_id=integration.service_id, customer_id=integration.customer_id,
                           created_at=integration.created_at)


@integrations.post("", status_code=201, response_model=IntegrationRead)
async def create_integration(integration_in: IntegrationCreate, runtime: RuntimeDep,
                             idempotency_key: IdempotencyKey = None):
    """Register an alert source for a service. Its `routing_key` is what the source puts in every
    Events API v2 event (PagerDuty calls it the integration key)."""

    async def create(uow):
        return _read(await handlers.create_integration(uow, **integration_in.model_dump()))

    return await runtime.create_once(key=idempotency_key, scope="POST /v1/integrations", request=integration_in,
                                     create=create)


@integrations.get("/{integration_id}", response_model=IntegrationRead)
async def get_integration(integration_id: str, runtime: RuntimeDep):
    async with runtime.engine.connect() as conn:
        integration = await alert_store.get_integration(conn, integration_id)
    if integration is None:
        raise NotFound("integration", integration_id)
    return _read(integration)


ENQUEUE_DESCRIPTION = f"""
PagerDuty Events API v2 compatible: point a PagerDuty client or a monitoring tool's PagerDuty
integration at this service's base URL and use an integration's `routing_key`.

* `trigger` opens an incident on the integration's service: title = `payload.summary`,
  impact and urgency from `payload.severity`
  ({", ".join(f"{s} -> impact {i}, urgency {u}, P{priority_for(i, u)}" for s, (i, u) in SEVERITY_LEVELS.items())}),
  opened at `payload.timestamp` when given (never later than now). Another trigger with the same
  `dedup_key` while that incident is open joins it (alert count, `itsm.incident.alert_appended`,
  priority raised to the new severity's if higher); once the incident is resolved or closed the
  next trigger opens a new incident. Without a `dedup_key` one is generated (32 hex characters)
  from the event, so a retried trigger finds the same incident. The same event sent again while
  its incident is open is a retry and is not counted twice.
* `acknowledge` moves a `new` incident to `in_progress`; `resolve` resolves an open incident.
  Either one is accepted and does nothing for an unknown `dedup_key` or an incident already
  past that state, as PagerDuty does.

Answers are PagerDuty's, not problem+json: `202 {{"status": "success", "message": "Event
processed", "dedup_key": ...}}`; a malformed event, or a `routing_key` of no integration, is
`400 {{"status": "invalid event", "message": "Event object is invalid", "errors": [...]}}`
(PagerDuty rejects an unknown routing key with a 400 too, error "Invalid routing key").
The body is read as JSON whatever the Content-Type; at most {MAX_EVENT_BYTES // 1024} KiB.
`/v2/enqueue/` is accepted as well.
"""


@enqueue.post("/v2/enqueue", status_code=202, response_model=EnqueueAccepted, description=ENQUEUE_DESCRIPTION,
              summary="Send an alert event (PagerDuty Events API v2)",
              responses={400: {"model": InvalidEvent, "description": "Invalid event or unknown routing key"}})
@enqueue.post("/v2/enqueue/", status_code=202, response_model=EnqueueAccepted, include_in_schema=False)
async def enqueue_event(event_in: Annotated[PagerDutyEvent, Body()], runtime: RuntimeDep):
    body = event_in.model_dump(mode="json", by_alias=True, exclude_none=True, exclude={"routing_key"})
    payload = event_in.payload
    alert = ({"summary": payload.summary, "source": payload.source, "severity": payload.severity,
              "component": payload.component, "group": payload.group, "class_": payload.class_,
              "custom_details": payload.custom_details} if isinstance(payload, AlertPayload) else {})
    event = handlers.AlertEvent(action=event_in.event_action, dedup_key=event_in.dedup_key, body=body,
                                timestamp=payload.timestamp if payload else None, **alert)
    async with runtime.uow() as uow:
        integration = await alert_store.integration_by_routing_key(uow.conn, event_in.routing_key)
        if integration is None:
            return invalid_event("Invalid routing key")
        dedup_key = await handlers.handle_alert(uow, integration=integration, event=event)
        await uow.commit()
    return JSONResponse(EnqueueAccepted(dedup_key=dedup_key).model_dump(), status_code=202)
