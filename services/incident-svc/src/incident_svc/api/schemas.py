from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from itsm_runtime.types import PastTime

Level = Annotated[int, Field(ge=1, le=3)]
StatusName = Literal["new", "in_progress", "on_hold", "resolved", "closed"]


class IncidentCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    title: str = Field(min_length=1, max_length=500)
    description: str | None = Field(default=None, max_length=20000)
    service_id: str = Field(min_length=1, max_length=200)
    customer_id: str | None = Field(default=None, min_length=1, max_length=200)
    impact: Level
    urgency: Level
    opened_at: PastTime | None = None


class IncidentUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    status: StatusName | None = None
    impact: Level | None = None
    urgency: Level | None = None
    assignee: str | None = Field(default=None, max_length=200)
    hold_reason: str | None = Field(default=None, max_length=2000)
    resolution_notes: str | None = Field(default=None, max_length=20000)


class IncidentRead(BaseModel):
    id: str
    number: str
    title: str
    description: str | None
    service_id: str
    customer_id: str | None
    impact: int
    urgency: int
    priority: int
    status: StatusName
    assignee: str | None
    hold_reason: str | None
    resolution_notes: str | None
    opened_at: datetime
    updated_at: datetime
    resolved_at: datetime | None
    closed_at: datetime | None
    alert_count: int = Field(description="Alerts (Events API v2 triggers) that opened or joined this incident")
    last_alert_at: datetime | None


class IncidentPage(BaseModel):
    items: list[IncidentRead]
    next_cursor: str | None


class IntegrationCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    service_id: str = Field(min_length=1, max_length=200)
    customer_id: str | None = Field(default=None, min_length=1, max_length=200)


class IntegrationRead(BaseModel):
    id: str
    routing_key: str = Field(description="The Events API v2 integration key: 32 lowercase hex characters")
    name: str
    service_id: str
    customer_id: str | None
    created_at: datetime


class OutagePolicyUpdate(BaseModel):
    """The whole policy (PUT): a field left out takes its default."""

    model_config = ConfigDict(extra="forbid")

    open_on: Literal["down", "degraded"] = Field(
        default="down", description="The service state that opens an outage incident")
    auto_resolve: bool = Field(default=True, description="Resolve the incident when the service is back up")


class OutagePolicyRead(BaseModel):
    service_id: str
    open_on: Literal["down", "degraded"]
    auto_resolve: bool
    updated_at: datetime | None = Field(description="null while the service has the default policy")


class OutageRead(BaseModel):
    id: str
    service_id: str
    incident_id: str
    status: Literal["up", "degraded", "down"]
    started_at: datetime
    last_observed_at: datetime
    ended_at: datetime | None
    cause_ci_ids: list[str]


class OutagePage(BaseModel):
    items: list[OutageRead]
    next_cursor: str | None
