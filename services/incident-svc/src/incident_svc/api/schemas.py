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


class IncidentPage(BaseModel):
    items: list[IncidentRead]
    next_cursor: str | None
