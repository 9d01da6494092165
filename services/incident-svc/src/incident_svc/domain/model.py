"""The incident aggregate: ITIL priority, the status lifecycle and what happened to it."""

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum


class Status(StrEnum):
    NEW = "new"
    IN_PROGRESS = "in_progress"
    ON_HOLD = "on_hold"
    RESOLVED = "resolved"
    CLOSED = "closed"


# ITIL impact x urgency matrix, 1 = highest.
PRIORITY_MATRIX: dict[tuple[int, int], int] = {
    (1, 1): 1, (1, 2): 2, (1, 3): 3,
    (2, 1): 2, (2, 2): 3, (2, 3): 4,
    (3, 1): 3, (3, 2): 4, (3, 3): 5,
}

TRANSITIONS: dict[Status, frozenset[Status]] = {
    Status.NEW: frozenset({Status.IN_PROGRESS, Status.ON_HOLD, Status.RESOLVED}),
    Status.IN_PROGRESS: frozenset({Status.ON_HOLD, Status.RESOLVED}),
    Status.ON_HOLD: frozenset({Status.IN_PROGRESS, Status.RESOLVED}),
    Status.RESOLVED: frozenset({Status.IN_PROGRESS, Status.CLOSED}),
    Status.CLOSED: frozenset(),
}


OPEN_STATUSES = frozenset({Status.NEW, Status.IN_PROGRESS, Status.ON_HOLD})
"""Statuses in which someone still works on the incident: alerts and outages attach to it."""


class IllegalTransition(Exception):
    def __init__(self, current: Status, requested: Status):
        allowed = ", ".join(sorted(TRANSITIONS[current])) or "none"
        super().__init__(f"an incident cannot go from {current} to {requested} (allowed: {allowed})")
        self.current = current
        self.requested = requested


class InvalidIncident(ValueError):
    pass


def priority_for(impact: int, urgency: int) -> int:
    """ITIL priority of an impact and urgency, each 1 (high) to 3 (low)."""
    try:
        return PRIORITY_MATRIX[(impact, urgency)]
    except KeyError:
        raise InvalidIncident(f"impact and urgency must be 1..3, got {impact} and {urgency}") from None


# Domain events: what happened, recorded on the aggregate, mapped to public events later.


@dataclass(frozen=True)
class Opened:
    at: datetime


@dataclass(frozen=True)
class StatusChanged:
    from_status: Status
    to_status: Status
    at: datetime


@dataclass(frozen=True)
class PriorityChanged:
    from_priority: int
    to_priority: int
    at: datetime


@dataclass(frozen=True)
class Resolved:
    at: datetime


@dataclass(frozen=True)
class AlertAppended:
    """Another alert with the same dedup key arrived while the incident was open."""

    integration_id: str
    dedup_key: str
    summary: str
    severity: str
    source: str | None
    at: datetime


@dataclass
class Incident:
    id: str
    number: str
    title: str
    service_id: str
    impact: int
    urgency: int
    priority: int
    status: Status
    opened_at: datetime
    updated_at: datetime
    description: str | None = None
    customer_id: str | None = None
    assignee: str | None = None
    hold_reason: str | None = None
    resolution_notes: str | None = None
    resolved_at: datetime | None = None
    closed_at: datetime | None = None
    alert_count: int = 0
    last_alert_at: datetime | None = None
    events: list = field(default_factory=list, repr=False, compare=False)

    @classmethod
    def open(cls, *, id: str, number: str, title: str, service_id: str, impact: int, urgency: int,
             opened_at: datetime, description: str | None = None, customer_id: str | None = None) -> "Incident":
        incident = cls(id=id, number=number, title=title, description=description, service_id=service_id,
                       customer_id=customer_id, impact=impact, urgency=urgency,
                       priority=priority_for(impact, urgency), status=Status.NEW, opened_at=opened_at,
                       updated_at=opened_at)
        incident.events.append(Opened(at=opened_at))
        return incident

    def change_status(self, to: Status, *, at: datetime, hold_reason: str | None = None,
                      resolution_notes: str | None = None) -> None:
        if to == self.status:
            return
        if to not in TRANSITIONS[self.status]:
            raise IllegalTransition(self.status, to)
        if to == Status.ON_HOLD and not (hold_reason or self.hold_reason):
            raise InvalidIncident("putting an incident on hold needs a hold_reason")
        previous = self.status
        self.status = to
        self.updated_at = at
        if to == Status.ON_HOLD:
            self.hold_reason = hold_reason or self.hold_reason
        elif previous == Status.ON_HOLD:
            self.hold_reason = None
        if to == Status.RESOLVED:
            self.resolved_at = at
            if resolution_notes is not None:
                self.resolution_notes = resolution_notes
        if previous == Status.RESOLVED and to == Status.IN_PROGRESS:
            self.resolved_at = None  # reopened
        if to == Status.CLOSED:
            self.closed_at = at
        self.events.append(StatusChanged(from_status=previous, to_status=to, at=at))
        if to == Status.RESOLVED:
            self.events.append(Resolved(at=at))

    def reassess(self, *, impact: int | None, urgency: int | None, at: datetime) -> None:
        """Change impact and/or urgency; the priority follows the matrix."""
        if self.status == Status.CLOSED:
            raise IllegalTransition(self.status, self.status)
        new_impact = impact if impact is not None else self.impact
        new_urgency = urgency if urgency is not None else self.urgency
        new_priority = priority_for(new_impact, new_urgency)
        self.impact, self.urgency = new_impact, new_urgency
        if new_priority != self.priority:
            self.events.append(PriorityChanged(from_priority=self.priority, to_priority=new_priority, at=at))
            self.priority = new_priority
        self.updated_at = at

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES

    def record_alert(self, *, at: datetime) -> None:
        """Count an alert that opened or joined this incident (no event: opening already says it)."""
        self.alert_count += 1
        self.last_alert_at = at if self.last_alert_at is None else max(self.last_alert_at, at)

    def append_alert(self, *, integration_id: str, dedup_key: str, summary: str, severity: str,
                     source: str | None, at: datetime) -> None:
        """Another alert joined the open incident: count it and record that it arrived."""
        self.record_alert(at=at)
        self.events.append(AlertAppended(integration_id=integration_id, dedup_key=dedup_key, summary=summary,
                                         severity=severity, source=source, at=at))

    def escalate(self, *, impact: int, urgency: int, at: datetime) -> None:
        """Raise impact and urgency to at least the given levels; never lowers what someone assessed."""
        raised = (min(self.impact, impact), min(self.urgency, urgency))
        if raised != (self.impact, self.urgency):
            self.reassess(impact=raised[0], urgency=raised[1], at=at)
