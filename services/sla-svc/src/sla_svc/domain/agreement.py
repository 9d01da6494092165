"""Service level agreements: which incidents they cover and the targets they set."""

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Literal

from .objectives import InvalidObjective, parse_window

Metric = Literal["response", "resolution"]

DEFAULT_WARNING_THRESHOLDS = (0.5, 0.75, 0.9)
DEFAULT_PAUSE_ON = ("on_hold",)


class InvalidAgreement(ValueError):
    pass


@dataclass(frozen=True)
class Target:
    metric: Metric
    priority: int
    within: timedelta


@dataclass(frozen=True)
class AvailabilityObjective:
    """`target` percent uptime of the whole service over `window` (the API value, see objectives.parse_window)."""

    id: str
    target: float
    window: object
    exclude_maintenance: bool = True
    kind: str = "availability"


@dataclass(frozen=True)
class Agreement:
    id: str
    name: str
    service_id: str
    targets: tuple[Target, ...]
    customer_id: str | None = None
    calendar_id: str = "24x7"
    warning_thresholds: tuple[float, ...] = DEFAULT_WARNING_THRESHOLDS
    pause_on: tuple[str, ...] = DEFAULT_PAUSE_ON
    objectives: tuple[AvailabilityObjective, ...] = ()
    extra: dict = field(default_factory=dict, compare=False)

    def __post_init__(self):
        if not self.targets:
            raise InvalidAgreement("an agreement needs at least one target")
        seen = set()
        for target in self.targets:
            if target.within <= timedelta(0):
                raise InvalidAgreement(f"target {target.metric} P{target.priority} must be a positive duration")
            key = (target.metric, target.priority)
            if key in seen:
                raise InvalidAgreement(f"two {target.metric} targets for priority {target.priority}")
            seen.add(key)
        if any(not 0 < t < 1 for t in self.warning_thresholds):
            raise InvalidAgreement("warning thresholds are fractions between 0 and 1")
        if list(self.warning_thresholds) != sorted(set(self.warning_thresholds)):
            raise InvalidAgreement("warning thresholds must be increasing and distinct")
        for objective in self.objectives:
            if not 0 < objective.target < 100:
                raise InvalidAgreement(f"objective {objective.id}: target is a percentage between 0 and 100")
            try:
                parse_window(objective.window)
            except InvalidObjective as exc:
                raise InvalidAgreement(f"objective {objective.id}: {exc}") from exc
        if "resolved" in self.pause_on or "closed" in self.pause_on or "new" in self.pause_on:
            raise InvalidAgreement("only in_progress-like statuses such as on_hold can pause a clock")

    def covers(self, *, service_id: str, customer_id: str | None) -> bool:
        """An agreement covers its service, and only its customer when it names one."""
        if service_id != self.service_id:
            return False
        return self.customer_id is None or self.customer_id == customer_id

    def targets_for(self, priority: int) -> list[Target]:
        return [t for t in self.targets if t.priority == priority]
