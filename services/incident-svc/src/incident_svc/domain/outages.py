"""Outage incidents: how a business service's availability, as the CMDB observes it, opens and ends them."""

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum


class Availability(StrEnum):
    UP = "up"
    DEGRADED = "degraded"
    DOWN = "down"


CRITICALITY_IMPACT: dict[int, int] = {1: 1, 2: 1, 3: 2, 4: 3, 5: 3}
"""Impact of an outage of a business service of each CMDB criticality (1 = most critical .. 5).

A full outage of one of the two most critical tiers hurts the business widely (impact 1); the
middle tier is impact 2; the two least critical tiers are impact 3.
"""

DEFAULT_IMPACT = 1
"""Impact when incident-svc has not seen the service's criticality (no `itsm.cmdb.ci_created` for it yet):
an outage of a service nobody classified is treated as serious rather than ignored."""

URGENCY: dict[Availability, int] = {Availability.DOWN: 1, Availability.DEGRADED: 2}
"""Urgency follows the service's state: down needs action now; degraded is urgent, but less."""


def impact_for(criticality: int | None) -> int:
    """Outage impact for a CMDB criticality; unknown or out of range gives DEFAULT_IMPACT."""
    return CRITICALITY_IMPACT.get(criticality, DEFAULT_IMPACT) if criticality is not None else DEFAULT_IMPACT


@dataclass(frozen=True)
class OutagePolicy:
    """Per service: which state opens an outage incident and whether recovery resolves it."""

    open_on: Availability = Availability.DOWN
    auto_resolve: bool = True

    def __post_init__(self):
        if self.open_on not in (Availability.DOWN, Availability.DEGRADED):
            raise ValueError(f"an outage opens on down or degraded, not {self.open_on}")

    def opens_on(self, status: Availability) -> bool:
        return status == Availability.DOWN or status == self.open_on == Availability.DEGRADED


@dataclass
class ServiceState:
    """The latest availability observation applied for a service."""

    service_id: str
    status: Availability
    observed_at: datetime


@dataclass
class Outage:
    """One stretch of time a service was not up, and the incident that tracks it."""

    id: str
    service_id: str
    incident_id: str
    status: Availability
    started_at: datetime
    last_observed_at: datetime
    ended_at: datetime | None = None
    cause_ci_ids: list[str] = field(default_factory=list)

    @classmethod
    def start(cls, *, id: str, service_id: str, incident_id: str, status: Availability, at: datetime,
              cause_ci_ids: list[str]) -> "Outage":
        outage = cls(id=id, service_id=service_id, incident_id=incident_id, status=status, started_at=at,
                     last_observed_at=at)
        outage.add_causes(cause_ci_ids)
        return outage

    @property
    def ongoing(self) -> bool:
        return self.ended_at is None

    def add_causes(self, cause_ci_ids: list[str]) -> None:
        """Remember every CI that was named as a cause during the outage, first seen first."""
        for ci_id in cause_ci_ids:
            if ci_id not in self.cause_ci_ids:
                self.cause_ci_ids.append(ci_id)

    def observe(self, status: Availability, *, at: datetime, cause_ci_ids: list[str]) -> None:
        self.status = status
        self.last_observed_at = at
        self.add_causes(cause_ci_ids)

    def end(self, *, at: datetime) -> None:
        self.status = Availability.UP
        self.last_observed_at = at
        self.ended_at = at


class Step(StrEnum):
    STALE = "stale"    # older than what was already applied: ignored
    OPEN = "open"      # the service went (far enough) down: an outage starts
    UPDATE = "update"  # still not up: the ongoing outage records the new state and causes
    END = "end"        # back up: the outage ends (and its incident resolves if the policy says so)
    NONE = "none"      # nothing to do (up while no outage, or degraded under an open-on-down policy)


def plan(*, last: ServiceState | None, outage: Outage | None, policy: OutagePolicy, status: Availability,
         observed_at: datetime) -> Step:
    """What one availability observation does to a service's outage.

    Observations are applied in event-time order: one older than the latest applied for the
    service is stale (a late `up` from before an outage started cannot end it). Equal times are
    applied in delivery order.
    """
    if last is not None and observed_at < last.observed_at:
        return Step.STALE
    if outage is not None and outage.ongoing:
        return Step.END if status == Availability.UP else Step.UPDATE
    if status != Availability.UP and policy.opens_on(status):
        return Step.OPEN
    return Step.NONE
