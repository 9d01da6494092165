"""Alert intake rules (PagerDuty Events API v2 semantics): severity levels, deduplication, event time."""

import hashlib
import json
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from .model import Incident, Status


DESCRIPTION_LIMIT = 20000


class Severity(StrEnum):
    CRITICAL = "critical"
    ERROR = "error"
    WARNING = "warning"
    INFO = "info"


SEVERITY_LEVELS: dict[Severity, tuple[int, int]] = {
    Severity.CRITICAL: (1, 1),  # priority 1
    Severity.ERROR: (2, 1),     # priority 2
    Severity.WARNING: (2, 2),   # priority 3
    Severity.INFO: (3, 3),      # priority 5
}
"""(impact, urgency) of an incident opened by an alert of each PagerDuty severity.

PagerDuty's severity says how bad the alerting system thinks things are, which is both how
widely it hurts (impact) and how fast someone must act (urgency). PagerDuty itself pages at
high urgency for critical and error and at low urgency for warning and info; this table keeps
that split on urgency (1 for critical and error) and spreads impact so that the four severities
land on four distinct ITIL priorities: critical P1, error P2, warning P3, info P5.
A later alert with a higher severity raises the incident to that severity's levels; a lower one
never lowers what the incident has (a person may have reassessed it).
"""


def levels_for(severity: str) -> tuple[int, int]:
    """(impact, urgency) for a PagerDuty severity."""
    return SEVERITY_LEVELS[Severity(severity)]


class TriggerOutcome(StrEnum):
    OPEN = "open"      # no open incident for the dedup key: open one
    APPEND = "append"  # an open incident has the key: the alert joins it
    RETRY = "retry"    # the very event last applied to the open incident, sent again: nothing to do


def trigger_outcome(*, incident: Incident | None, last_fingerprint: str | None, fingerprint: str) -> TriggerOutcome:
    """What a trigger does, given the incident its dedup key points at (PagerDuty semantics).

    While the incident is open a trigger joins it; once it is resolved or closed the key is free
    again and a trigger opens a new incident. An event identical to the last one applied while
    the incident is open is a client retry (after a timeout or a 5xx) and is not counted twice.
    """
    if incident is None or not incident.is_open:
        return TriggerOutcome.OPEN
    if fingerprint == last_fingerprint:
        return TriggerOutcome.RETRY
    return TriggerOutcome.APPEND


def acknowledge(incident: Incident, *, at: datetime) -> bool:
    """An acknowledge moves a new incident to in_progress; anywhere else it changes nothing."""
    if incident.status != Status.NEW:
        return False
    incident.change_status(Status.IN_PROGRESS, at=not_before(at, incident.opened_at))
    return True


def resolve(incident: Incident, *, at: datetime, notes: str) -> bool:
    """A resolve resolves an open incident; a resolved or closed one stays as it is."""
    if not incident.is_open:
        return False
    incident.change_status(Status.RESOLVED, at=not_before(at, incident.opened_at), resolution_notes=notes)
    return True


def event_time(timestamp: datetime | None, *, now: datetime) -> datetime:
    """When the alert happened: its payload timestamp (naive means UTC), never later than now."""
    if timestamp is None:
        return now
    if timestamp.tzinfo is None:
        timestamp = timestamp.replace(tzinfo=UTC)
    return min(timestamp.astimezone(UTC), now)


def not_before(at: datetime, earliest: datetime) -> datetime:
    """A status change cannot predate the incident it changes."""
    return max(at, earliest)


def fingerprint(event: dict[str, Any]) -> str:
    """A stable digest of an event (key order and whitespace do not matter)."""
    return hashlib.sha256(json.dumps(event, sort_keys=True, separators=(",", ":"), default=str).encode()).hexdigest()


def generated_dedup_key(*, integration_id: str, event: dict[str, Any]) -> str:
    """The dedup key of a trigger that came without one: 32 hex characters, like PagerDuty's.

    PagerDuty makes up a random key; this one is derived from the integration and the event, so a
    client that retries the same trigger after a timeout reaches the same incident instead of
    opening a second one.
    """
    return fingerprint({"integration_id": integration_id, "event": event})[:32]


def describe(*, source: str, component: str | None, group: str | None, class_: str | None,
             custom_details: Any) -> str:
    """The incident description built from the alert payload's context fields."""
    lines = [f"Source: {source}"]
    for label, value in (("Component", component), ("Group", group), ("Class", class_)):
        if value:
            lines.append(f"{label}: {value}")
    if custom_details not in (None, "", {}, []):
        details = custom_details if isinstance(custom_details, str) else json.dumps(custom_details, indent=2,
                                                                                     sort_keys=True, default=str)
        lines.append(f"Details:\n{details}")
    return "\n".join(lines)[:DESCRIPTION_LIMIT]
