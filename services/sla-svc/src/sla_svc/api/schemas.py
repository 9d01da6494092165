from datetime import date, datetime, timedelta
from typing import Annotated, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

Priority = Annotated[int, Field(ge=1, le=5)]


class TargetIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    metric: Literal["response", "resolution"]
    priority: Priority
    within: timedelta = Field(gt=timedelta(0), le=timedelta(days=366), description="ISO 8601 duration, e.g. PT4H")


class AvailabilityObjectiveIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: Literal["availability"]
    target: float = Field(gt=0, lt=100, description="percent uptime, e.g. 99.9")
    window: str | dict = Field(description='"calendar_month", "calendar_week", a rolling ISO 8601 duration such as '
                                           '"P30D", or a fixed {start, end} such as a holiday season')
    exclude_maintenance: bool = True


class RatioObjectiveIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: Literal["resolution_ratio"]
    target: float = Field(gt=0, lt=100, description="percent of incidents, e.g. 80")
    within: timedelta = Field(gt=timedelta(0), le=timedelta(days=366), description="ISO 8601 duration, e.g. PT1H")
    window: str | dict = Field(description='"calendar_week", "calendar_month" or a fixed {start, end}')
    priorities: list[Priority] = Field(default=[], description="only incidents of these priorities; all if empty")


ObjectiveIn = Annotated[AvailabilityObjectiveIn | RatioObjectiveIn, Field(discriminator="kind")]


class AgreementCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=300)
    service_id: str = Field(min_length=1, max_length=200)
    customer_id: str | None = Field(default=None, min_length=1, max_length=200)
    calendar_id: str = "24x7"
    targets: list[TargetIn] = Field(min_length=1, max_length=50)
    warning_thresholds: list[float] = [0.5, 0.75, 0.9]
    pause_on: list[str] = ["on_hold"]
    objectives: list[ObjectiveIn] = Field(default=[], max_length=20)
    effective_from: AwareDatetime | None = Field(
        default=None, description="covers incidents opened from this instant on (default: when it is created)")


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
    objectives: list[dict]
    effective_from: datetime | None
    created_at: datetime


class AgreementPage(BaseModel):
    items: list[AgreementRead]
    next_cursor: str | None


class TimelineEntryRead(BaseModel):
    kind: Literal["started", "paused", "resumed", "retargeted", "warning", "breached", "stopped", "reopened"]
    at: datetime
    details: dict


class ClockRead(BaseModel):
    id: str
    agreement_id: str
    incident_id: str
    service_id: str
    customer_id: str | None
    metric: str
    objective_id: str | None = Field(description="the ratio objective this is an incident's ticket clock for; "
                                                 "null for a target's clock")
    priority: int
    stage: Literal["running", "paused", "completed", "cancelled"]
    breached: bool
    started_at: datetime
    deadline: datetime | None
    breached_at: datetime | None
    completed_at: datetime | None
    target_seconds: float | None
    elapsed_seconds: float
    remaining_seconds: float | None
    percent: float | None
    warnings_fired: int
    calendar_id: str
    calendar_version: int
    timeline: list[TimelineEntryRead]


class ClockPage(BaseModel):
    items: list[ClockRead]
    next_cursor: str | None


class TargetCompliance(BaseModel):
    """A target's clocks started in the current calendar month, and those still open."""

    metric: str
    priority: int
    within: timedelta
    window_start: datetime
    window_end: datetime
    met: int
    breached: int
    running: int
    percent_met: float | None
    status: Literal["ok", "at_risk", "breached"]


class BurnAlertRead(BaseModel):
    severity: Literal["page", "ticket"]
    threshold: float
    long_window: timedelta
    short_window: timedelta
    long_rate: float
    short_rate: float
    firing: bool


class ObjectiveCompliance(BaseModel):
    """An availability objective's uptime and error budget, or a ratio objective's tickets, in the current window."""

    id: str
    kind: Literal["availability", "resolution_ratio"]
    target: float
    window_start: datetime
    window_end: datetime
    actual_percent: float | None
    breached_at: datetime | None
    status: Literal["ok", "at_risk", "breached"]
    # availability
    downtime_seconds: float | None = None
    degraded_seconds: float | None = None
    allowed_downtime_seconds: float | None = None
    remaining_budget_seconds: float | None = None
    budget_remaining_percent: float | None = None
    burn_alerts: list[BurnAlertRead] = []
    # resolution_ratio
    tickets: int | None = None
    met: int | None = None
    missed: int | None = None
    open: int | None = None
    best_percent: float | None = Field(default=None, description="the ratio if every open ticket is met")


class ComplianceRead(BaseModel):
    agreement_id: str
    status: Literal["ok", "at_risk", "breached"]
    targets: list[TargetCompliance]
    objectives: list[ObjectiveCompliance]
    computed_at: datetime


class CalendarCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str | None = Field(default=None, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$",
                           description="chosen by the service when left out; on PUT it must match the path")
    name: str = Field(min_length=1, max_length=300)
    timezone: str = Field(max_length=100, description="IANA time zone, e.g. Europe/Berlin")
    hours: dict[str, list[list[str]]] = Field(
        description='working hours per weekday as local [start, end] times, e.g. {"mon": [["09:00", "17:00"]]}; '
                    'an end at or before its start runs into the next day, "24:00" ends at midnight')
    holidays: list[str] = Field(default=[], max_length=2000, description="extra non-working dates, YYYY-MM-DD")
    holiday_country: str | None = Field(default=None, max_length=10,
                                        description="ISO 3166-1 code whose public holidays are not worked, e.g. DE")
    holiday_subdivision: str | None = Field(default=None, max_length=10, description="e.g. BY for Bavaria")


class CalendarRead(BaseModel):
    id: str
    name: str
    version: int
    timezone: str
    hours: dict[str, list[list[str]]]
    holidays: list[date]
    holiday_country: str | None
    holiday_subdivision: str | None
    created_at: datetime | None = Field(description="when this version was made; null for the built-in 24x7")


class CalendarPage(BaseModel):
    items: list[CalendarRead]
    next_cursor: str | None


class MaintenanceWindowCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    service_id: str = Field(min_length=1, max_length=200)
    start: datetime
    end: datetime
    reference: str | None = Field(default=None, max_length=200, description="e.g. the change request number")


class MaintenanceWindowRead(BaseModel):
    id: str
    service_id: str
    start: datetime
    end: datetime
    reference: str | None
    created_at: datetime


class MaintenanceWindowPage(BaseModel):
    items: list[MaintenanceWindowRead]
    next_cursor: str | None


class ReviewAction(BaseModel):
    model_config = ConfigDict(extra="forbid")

    description: str = Field(min_length=1, max_length=2000)
    owner: str = Field(min_length=1, max_length=200)
    due_date: date | None = None
    done: bool = False


class ReviewPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    status: Literal["open", "in_progress", "closed"] | None = None
    root_cause: str | None = Field(default=None, min_length=1, max_length=10000)
    actions: list[ReviewAction] | None = Field(default=None, max_length=100)


class ReviewBreach(BaseModel):
    kind: Literal["clock", "objective"]
    ref_id: str
    incident_id: str | None
    breached_at: datetime


class ReviewRead(BaseModel):
    id: str
    agreement_id: str
    service_id: str
    status: Literal["open", "in_progress", "closed"]
    root_cause: str | None
    actions: list[ReviewAction]
    opened_at: datetime
    closed_at: datetime | None
    breaches: list[ReviewBreach]


class ReviewPage(BaseModel):
    items: list[ReviewRead]
    next_cursor: str | None
