"""An SLA clock as stored: who it belongs to, and its state as the fold computed it (see fold.py).

The state is never changed by hand: an incident event folds the incident's facts again, a timer
advances the saved state to now. `published` names the timeline entries already turned into
public events, so each is published once however often the clock is recomputed.
"""

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING

from .calendar import Calendar

if TYPE_CHECKING:
    from .fold import ClockState


class Stage(StrEnum):
    RUNNING = "running"
    PAUSED = "paused"
    COMPLETED = "completed"
    CANCELLED = "cancelled"  # the incident's current priority has no target in the agreement


@dataclass
class Clock:
    id: str
    agreement_id: str
    incident_id: str
    service_id: str
    metric: str
    calendar_id: str
    calendar_version: int
    state: "ClockState"
    customer_id: str | None = None
    objective_id: str | None = None  # the ticket of a ratio objective, not a target's clock
    published: set[str] = field(default_factory=set)
    row_version: str | None = None  # as read from the database, to tell whether it changed since

    @property
    def priority(self) -> int:
        return self.state.priority

    @property
    def stage(self) -> Stage:
        return self.state.stage

    @property
    def target_seconds(self) -> float | None:
        return self.state.target_seconds

    @property
    def started_at(self) -> datetime:
        return self.state.started_at

    @property
    def deadline(self) -> datetime | None:
        return self.state.deadline

    @property
    def breached(self) -> bool:
        return self.state.breached

    @property
    def breached_at(self) -> datetime | None:
        return self.state.breached_at

    @property
    def completed_at(self) -> datetime | None:
        return self.state.completed_at

    @property
    def warnings_fired(self) -> int:
        return len(self.state.warned)

    def elapsed(self, calendar: Calendar, now: datetime) -> float:
        """Working seconds counted so far (never including paused time)."""
        return self.state.elapsed(calendar, now)

    def remaining(self, calendar: Calendar, now: datetime) -> float | None:
        if self.target_seconds is None:
            return None
        return self.target_seconds - self.elapsed(calendar, now)

    def percent(self, calendar: Calendar, now: datetime) -> float | None:
        if not self.target_seconds:
            return None
        return 100.0 * self.elapsed(calendar, now) / self.target_seconds
