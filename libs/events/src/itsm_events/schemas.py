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


@register("itsm.incident.alert_appended", 1)
class IncidentAlertAppended(EventData):
    """Another alert with the incident's dedup key arrived (PagerDuty Events API v2 intake)."""

    incident_id: str
    service_id: str
    dedup_key: str
    integration_id: str
    summary: str
    severity: Literal["critical", "error", "warning", "info"]
    source: str | None = None
    received_at: datetime


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


@register("itsm.sla.clock_retargeted", 1)
class ClockRetargeted(ClockRef):
    """A priority change moved a running clock to the new priority's target; elapsed time is kept."""

    from_priority: int
    target_seconds: float
    retargeted_at: datetime


class ObjectiveRef(EventData):
    agreement_id: str
    objective_id: str
    service_id: str
    kind: Literal["availability", "resolution_ratio"]
    target: float
    window_start: datetime
    window_end: datetime


@register("itsm.sla.objective_breached", 1)
class ObjectiveBreached(ObjectiveRef):
    """The window's target is missed, or can no longer be met (`reason` says which)."""

    actual: float | None = None
    reason: Literal["impossible", "missed"]
    breached_at: datetime


@register("itsm.sla.budget_burn", 1)
class BudgetBurn(ObjectiveRef):
    """A multi-window burn-rate alert on an availability error budget started or cleared."""

    state: Literal["firing", "cleared"]
    severity: Literal["page", "ticket"]
    burn_rate_threshold: float
    long_window_seconds: float
    short_window_seconds: float
    long_rate: float
    short_rate: float
    at: datetime


@register("itsm.sla.report_ready", 1)
class ReportReady(EventData):
    agreement_id: str
    service_id: str
    period: str
    period_start: datetime
    period_end: datetime
    status: Literal["ok", "at_risk", "breached"]
    url: str


@register("itsm.sla.review_opened", 1)
class ReviewOpened(EventData):
    review_id: str
    agreement_id: str
    service_id: str
    reason: str
    opened_at: datetime


@register("itsm.sla.review_closed", 1)
class ReviewClosed(EventData):
    review_id: str
    agreement_id: str
    service_id: str
    root_cause: str | None = None
    closed_at: datetime


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


@register("itsm.cmdb.ci_updated", 1)
class CiUpdated(EventData):
    ci_id: str
    version: int
    changed: list[str]
    changed_by: str | None = None
    change_ref: str | None = None


@register("itsm.cmdb.ci_status_changed", 1)
class CiStatusChanged(EventData):
    ci_id: str
    status: Literal["up", "degraded", "down"]
    previous_status: Literal["up", "degraded", "down"] | None = None
    observed_at: datetime
    cause_ci_ids: list[str] = []


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
