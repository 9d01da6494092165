"""Public event schemas: the data of every event type, versioned.

A new version is additive or gets a new class registered under the next version number.
"""

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict

from .registry import register


class EventData(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True)


# incident context ---------------------------------------------------------------------


@register("itsm.incident.opened", 1)
class IncidentOpened(EventData):
    incident_id: str
    number: str
    title: str
    service_id: str
    customer_id: str | None = None
    impact: int
    urgency: int
    priority: int
    status: str
    opened_at: datetime


@register("itsm.incident.status_changed", 1)
class IncidentStatusChanged(EventData):
    incident_id: str
    service_id: str
    customer_id: str | None = None
    priority: int
    from_status: str
    to_status: str
    hold_reason: str | None = None
    changed_at: datetime


@register("itsm.incident.priority_changed", 1)
class IncidentPriorityChanged(EventData):
    incident_id: str
    service_id: str
    customer_id: str | None = None
    impact: int
    urgency: int
    from_priority: int
    to_priority: int
    changed_at: datetime


@register("itsm.incident.resolved", 1)
class IncidentResolved(EventData):
    incident_id: str
    service_id: str
    customer_id: str | None = None
    priority: int
    resolution_notes: str | None = None
    resolved_at: datetime


# sla context --------------------------------------------------------------------------


class ClockRef(EventData):
    clock_id: str
    agreement_id: str
    incident_id: str
    service_id: str
    customer_id: str | None = None
    metric: Literal["response", "resolution"]
    priority: int
    deadline: datetime


@register("itsm.sla.agreement_created", 1)
class AgreementCreated(EventData):
    agreement_id: str
    name: str
    service_id: str
    customer_id: str | None = None


@register("itsm.sla.clock_started", 1)
class ClockStarted(ClockRef):
    started_at: datetime


@register("itsm.sla.warning", 1)
class SlaWarning(ClockRef):
    threshold: float
    warned_at: datetime


@register("itsm.sla.breached", 1)
class SlaBreached(ClockRef):
    breached_at: datetime


@register("itsm.sla.clock_stopped", 1)
class ClockStopped(ClockRef):
    met: bool
    stopped_at: datetime
    elapsed_seconds: float


# cmdb context -------------------------------------------------------------------------


@register("itsm.cmdb.ci_created", 1)
class CiCreated(EventData):
    ci_id: str
    name: str
    type: str
    key: str | None = None
    criticality: int | None = None


@register("itsm.cmdb.relationship_created", 1)
class RelationshipCreated(EventData):
    relationship_id: str
    source_id: str
    target_id: str
    type: str


@register("itsm.cmdb.service_availability_changed", 1)
class ServiceAvailabilityChanged(EventData):
    service_id: str
    status: Literal["up", "degraded", "down"]
    observed_at: datetime
    cause_ci_ids: list[str] = []


# change context -----------------------------------------------------------------------


@register("itsm.change.requested", 1)
class ChangeRequested(EventData):
    change_id: str
    number: str
    title: str
    type: Literal["standard", "normal", "emergency"]
    service_id: str | None = None
    risk: str
    planned_start: datetime | None = None
    planned_end: datetime | None = None


# notify context -----------------------------------------------------------------------


@register("itsm.notify.delivery_dead", 1)
class DeliveryDead(EventData):
    delivery_id: str
    subscription_id: str
    event_id: str
    event_type: str
    attempts: int
    last_status_code: int | None = None
