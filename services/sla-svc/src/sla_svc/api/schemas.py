from datetime import datetime, timedelta
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

Priority = Annotated[int, Field(ge=1, le=5)]


class TargetIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    metric: Literal["response", "resolution"]
    priority: Priority
    within: timedelta = Field(gt=timedelta(0), le=timedelta(days=366), description="ISO 8601 duration, e.g. PT4H")


class AgreementCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=300)
    service_id: str = Field(min_length=1, max_length=200)
    customer_id: str | None = Field(default=None, min_length=1, max_length=200)
    calendar_id: str = "24x7"
    targets: list[TargetIn] = Field(min_length=1, max_length=50)
    warning_thresholds: list[float] = [0.5, 0.75, 0.9]
    pause_on: list[str] = ["on_hold"]


class TargetRead(BaseModel):
    metric: str
    priority: int
    within: timedelta


class AgreementRead(BaseModel):
    id: str
    name: str
    service_id: str
    customer_id: str | None
    calendar_id: str
    targets: list[TargetRead]
    warning_thresholds: list[float]
    pause_on: list[str]
    created_at: datetime


class AgreementPage(BaseModel):
    items: list[AgreementRead]
    next_cursor: str | None


class ClockRead(BaseModel):
    id: str
    agreement_id: str
    incident_id: str
    service_id: str
    customer_id: str | None
    metric: str
    priority: int
    stage: Literal["running", "paused", "completed", "cancelled"]
    breached: bool
    started_at: datetime
    deadline: datetime
    breached_at: datetime | None
    completed_at: datetime | None
    elapsed_seconds: float
    remaining_seconds: float
    percent: float
    warnings_fired: int


class ClockPage(BaseModel):
    items: list[ClockRead]
    next_cursor: str | None


class TargetCompliance(BaseModel):
    metric: str
    priority: int
    within: timedelta
    met: int
    breached: int
    running: int
    percent_met: float | None
    status: Literal["ok", "at_risk", "breached"]


class ComplianceRead(BaseModel):
    agreement_id: str
    status: Literal["ok", "at_risk", "breached"]
    targets: list[TargetCompliance]
    computed_at: datetime


class CalendarRead(BaseModel):
    id: str
    name: str
    timezone: str
