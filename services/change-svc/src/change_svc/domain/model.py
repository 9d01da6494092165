"""The change request aggregate: its type, its risk and its planned window."""

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum


class ChangeType(StrEnum):
    STANDARD = "standard"
    NORMAL = "normal"
    EMERGENCY = "emergency"


class Risk(StrEnum):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"


class Status(StrEnum):
    """Where a change stands; only the first step exists until CAB approval is built."""

    REQUESTED = "requested"


DEFAULT_RISK: dict[ChangeType, Risk] = {
    ChangeType.STANDARD: Risk.LOW,
    ChangeType.NORMAL: Risk.MEDIUM,
    ChangeType.EMERGENCY: Risk.HIGH,
}


class InvalidChange(ValueError):
    """A change request breaks a rule; `field` names the offending input."""

    def __init__(self, message: str, *, field: str):
        super().__init__(message)
        self.field = field


def risk_for(type: ChangeType, risk: Risk | None = None) -> Risk:
    """The risk of a change: the requester's assessment when given, else the default of its type.

    Defaults: standard -> low (pre-authorised, proven procedure), normal -> medium (assessed by
    the CAB), emergency -> high (skips the usual assessment, so it is treated as risky until
    someone assesses it).
    """
    return Risk(risk) if risk is not None else DEFAULT_RISK[ChangeType(type)]


def check_window(planned_start: datetime | None, planned_end: datetime | None) -> None:
    """Planned times carry a UTC offset, and the end comes strictly after the start."""
    for name, value in (("planned_start", planned_start), ("planned_end", planned_end)):
        if value is not None and value.utcoffset() is None:
            raise InvalidChange(f"{name} needs a UTC offset", field=name)
    if planned_start is not None and planned_end is not None and planned_end <= planned_start:
        raise InvalidChange("planned_end must be after planned_start", field="planned_end")


# Domain events: what happened, recorded on the aggregate, mapped to public events later.


@dataclass(frozen=True)
class Requested:
    at: datetime


@dataclass
class Change:
    id: str
    number: str
    title: str
    type: ChangeType
    risk: Risk
    status: Status
    created_at: datetime
    updated_at: datetime
    description: str | None = None
    service_id: str | None = None
    planned_start: datetime | None = None
    planned_end: datetime | None = None
    events: list = field(default_factory=list, repr=False, compare=False)

    @classmethod
    def request(cls, *, id: str, number: str, title: str, type: str, requested_at: datetime,
                description: str | None = None, service_id: str | None = None, risk: str | None = None,
                planned_start: datetime | None = None, planned_end: datetime | None = None) -> "Change":
        """A new change request, validated, with its risk derived when none was given."""
        if not title or not title.strip():
            raise InvalidChange("a change needs a title", field="title")
        try:
            change_type = ChangeType(type)
        except ValueError:
            raise InvalidChange(f"unknown change type {type!r}", field="type") from None
        try:
            change_risk = risk_for(change_type, Risk(risk) if risk is not None else None)
        except ValueError:
            raise InvalidChange(f"unknown risk {risk!r}", field="risk") from None
        check_window(planned_start, planned_end)
        change = cls(id=id, number=number, title=title, description=description, type=change_type,
                     service_id=service_id, risk=change_risk, status=Status.REQUESTED,
                     planned_start=planned_start, planned_end=planned_end, created_at=requested_at,
                     updated_at=requested_at)
        change.events.append(Requested(at=requested_at))
        return change
