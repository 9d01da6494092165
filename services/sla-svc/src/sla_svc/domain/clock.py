"""The SLA clock: counts working time towards a target, pauses, warns, breaches and stops.

State is kept as `accumulated_seconds` (working time before the current running segment)
plus `running_since`, so elapsed time at any instant is exact on any calendar and a pause
never counts. The clock records what happened in `events`; the handler maps them to public
events stamped with the instant they happened (a breach with its deadline, not with the
time the timer got to it).
"""

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from .calendar import Calendar


class Stage(StrEnum):
    RUNNING = "running"
    PAUSED = "paused"
    COMPLETED = "completed"
    CANCELLED = "cancelled"


def target_reached(metric: str, *, from_status: str, to_status: str) -> bool:
    """Response is reached by the first move out of `new`; resolution by `resolved` (or `closed`)."""
    if metric == "response":
        return from_status == "new"
    return to_status in ("resolved", "closed")


@dataclass(frozen=True)
class Warned:
    threshold: float
    at: datetime


@dataclass(frozen=True)
class Breached:
    at: datetime


@dataclass(frozen=True)
class Stopped:
    met: bool
    at: datetime
    elapsed_seconds: float


@dataclass
class Clock:
    id: str
    agreement_id: str
    incident_id: str
    service_id: str
    metric: str
    priority: int
    target_seconds: float
    thresholds: tuple[float, ...]
    started_at: datetime
    deadline: datetime
    calendar_id: str = "24x7"
    customer_id: str | None = None
    stage: Stage = Stage.RUNNING
    accumulated_seconds: float = 0.0
    running_since: datetime | None = None
    warnings_fired: int = 0
    breached: bool = False
    breached_at: datetime | None = None
    completed_at: datetime | None = None
    events: list = field(default_factory=list, repr=False, compare=False)

    @classmethod
    def start(cls, *, id: str, agreement_id: str, incident_id: str, service_id: str, customer_id: str | None,
              metric: str, priority: int, target_seconds: float, thresholds: tuple[float, ...],
              calendar: Calendar, at: datetime) -> "Clock":
        return cls(id=id, agreement_id=agreement_id, incident_id=incident_id, service_id=service_id,
                   customer_id=customer_id, metric=metric, priority=priority, target_seconds=target_seconds,
                   thresholds=tuple(thresholds), calendar_id=calendar.id, started_at=at, running_since=at,
                   deadline=calendar.add(at, target_seconds))

    # reading -----------------------------------------------------------------------------

    def elapsed(self, calendar: Calendar, now: datetime) -> float:
        """Working seconds counted so far (never including paused time)."""
        if self.stage == Stage.RUNNING and self.running_since is not None:
            return self.accumulated_seconds + calendar.between(self.running_since, now)
        return self.accumulated_seconds

    def remaining(self, calendar: Calendar, now: datetime) -> float:
        return self.target_seconds - self.elapsed(calendar, now)

    def percent(self, calendar: Calendar, now: datetime) -> float:
        return 100.0 * self.elapsed(calendar, now) / self.target_seconds

    def _instant_of(self, calendar: Calendar, seconds: float) -> datetime:
        """When the running clock reaches `seconds` of elapsed working time."""
        assert self.running_since is not None
        return calendar.add(self.running_since, seconds - self.accumulated_seconds)

    def next_due(self, calendar: Calendar) -> datetime | None:
        """The next instant a timer must wake this clock: a warning threshold or the deadline."""
        if self.stage != Stage.RUNNING:
            return None
        if self.warnings_fired < len(self.thresholds):
            return self._instant_of(calendar, self.thresholds[self.warnings_fired] * self.target_seconds)
        if not self.breached:
            return self.deadline
        return None

    # changing ----------------------------------------------------------------------------

    def fire(self, calendar: Calendar, now: datetime) -> None:
        """Record every warning and the breach that are due at `now`, each at its own instant."""
        if self.stage != Stage.RUNNING:
            return
        while self.warnings_fired < len(self.thresholds):
            threshold = self.thresholds[self.warnings_fired]
            at = self._instant_of(calendar, threshold * self.target_seconds)
            if at > now:
                break
            self.warnings_fired += 1
            self.events.append(Warned(threshold=threshold, at=at))
        if not self.breached and self.deadline <= now:
            self.breached = True
            self.breached_at = self.deadline
            self.events.append(Breached(at=self.deadline))

    def pause(self, calendar: Calendar, at: datetime) -> None:
        if self.stage != Stage.RUNNING:
            return
        self.fire(calendar, at)
        self.accumulated_seconds = self.elapsed(calendar, at)
        self.running_since = None
        self.stage = Stage.PAUSED

    def resume(self, calendar: Calendar, at: datetime) -> None:
        if self.stage != Stage.PAUSED:
            return
        self.stage = Stage.RUNNING
        self.running_since = at
        if not self.breached:
            self.deadline = self._instant_of(calendar, self.target_seconds)

    def stop(self, calendar: Calendar, at: datetime) -> None:
        """The target's condition is reached (responded, resolved): met unless the deadline passed."""
        if self.stage in (Stage.COMPLETED, Stage.CANCELLED):
            return
        self.fire(calendar, at)
        self.accumulated_seconds = self.elapsed(calendar, at)
        self.running_since = None
        self.stage = Stage.COMPLETED
        self.completed_at = at
        self.events.append(Stopped(met=not self.breached, at=at, elapsed_seconds=self.accumulated_seconds))
