"""Service level agreements: which incidents they cover and the targets they set."""

from dataclasses import dataclass, field
from functools import cached_property
from datetime import datetime, timedelta
from typing import Literal

from .fold import ClockSpec
from .objectives import FIRST_YEAR, LAST_YEAR, InvalidObjective, parse_window

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
class RatioObjective:
    """`target` percent of the incidents opened in each `window` resolved `within` (working time, pauses
    excluded), counting only `priorities` when given (see ratio.py)."""

    id: str
    target: float
    window: object
    within: timedelta
    priorities: tuple[int, ...] = ()
    kind: str = "resolution_ratio"

    def clock_spec(self, pause_on: tuple[str, ...]) -> ClockSpec:
        """Each covered incident gets a clock of its own for the objective: met or missed decides its ticket."""
        seconds = self.within.total_seconds()
        return ClockSpec(metric="resolution", targets={p: seconds for p in self.priorities or range(1, 6)},
                         thresholds=(), pause_on=pause_on, objective_id=self.id)


Objective = AvailabilityObjective | RatioObjective


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
    objectives: tuple[Objective, ...] = ()
    effective_from: datetime | None = None  # covers incidents opened from then on (event time); None: always
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
                window = parse_window(objective.window)
            except InvalidObjective as exc:
                raise InvalidAgreement(f"objective {objective.id}: {exc}") from exc
            if isinstance(objective, RatioObjective):
                if window.kind == "rolling":
                    raise InvalidAgreement(f"objective {objective.id}: a ratio is counted per window that ends "
                                           "(calendar_week, calendar_month or {start, end}), not a rolling one")
                if objective.within <= timedelta(0):
                    raise InvalidAgreement(f"objective {objective.id}: within must be a positive duration")
        if "resolved" in self.pause_on or "closed" in self.pause_on or "new" in self.pause_on:
            raise InvalidAgreement("only in_progress-like statuses such as on_hold can pause a clock")
        if self.effective_from is not None and not FIRST_YEAR <= self.effective_from.year <= LAST_YEAR:
            # its windows since then are all checked on creation: years, not millennia
            raise InvalidAgreement(f"effective_from must fall in the years {FIRST_YEAR} to {LAST_YEAR}")

    def covers(self, *, service_id: str, customer_id: str | None, opened_at: datetime | None = None) -> bool:
        """An agreement covers its service, only its customer when it names one, and incidents opened while
        it is in force: a function of event time only, so a replay of the events starts the same clocks."""
        if service_id != self.service_id:
            return False
        if opened_at is not None and self.effective_from is not None and opened_at < self.effective_from:
            return False
        return self.customer_id is None or self.customer_id == customer_id

    @cached_property
    def clock_specs(self) -> list[ClockSpec]:
        """One clock per metric the agreement sets a target for, with the target of each priority; and one
        per ratio objective."""
        metrics = dict.fromkeys(t.metric for t in self.targets)
        return [ClockSpec(metric=metric,
                          targets={t.priority: t.within.total_seconds() for t in self.targets if t.metric == metric},
                          thresholds=self.warning_thresholds, pause_on=self.pause_on)
                for metric in metrics] + [o.clock_spec(self.pause_on)
                                          for o in self.ratio_objectives]

    @property
    def availability_objectives(self) -> list[AvailabilityObjective]:
        return [o for o in self.objectives if isinstance(o, AvailabilityObjective)]

    @property
    def ratio_objectives(self) -> list[RatioObjective]:
        return [o for o in self.objectives if isinstance(o, RatioObjective)]
