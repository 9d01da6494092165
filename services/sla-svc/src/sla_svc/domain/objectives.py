"""Availability objectives, error budgets and multi-window burn-rate alerts.

Everything here is a deterministic function of event time: a service's status timeline is
sorted and de-duplicated before use, so late, repeated or reordered delivery changes nothing.

Instants are handled internally as whole microseconds since the Unix epoch (the resolution of
`datetime`), and targets and thresholds as exact fractions, so budgets, breach instants and
alert changes are computed exactly rather than to floating-point noise. One consequence: an
objective is breached when downtime *exceeds* the allowance, so `breached_at` (and the instant
a timer should fire) is the first microsecond at which that holds, e.g. 10:43:12.000001 when
the allowance of 43.2 minutes is used up at 10:43:12.
"""

import math
import re
from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from fractions import Fraction
from itertools import chain, pairwise
from typing import Any, Literal, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from .calendar import Calendar

Status = Literal["up", "degraded", "down"]
ObjectiveStatus = Literal["ok", "at_risk", "breached"]
WindowKind = Literal["calendar_month", "calendar_week", "rolling", "fixed"]
Interval = tuple[datetime, datetime]

T = TypeVar("T")

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_US = timedelta(microseconds=1)
_FOREVER = 2**62  # microseconds: far beyond datetime.max; the end of a status that never changed
_THIRTY_DAYS = timedelta(days=30)
# When several statuses are reported for one instant, the worst one holds: a simultaneous "up"
# never hides a "down", whatever order the events arrived in.
_SEVERITY = {"up": 0, "degraded": 1, "down": 2}
_STATUSES = ("up", "degraded", "down")


class InvalidObjective(ValueError):
    """An objective or window definition that cannot be used; the message names the problem."""


# windows -------------------------------------------------------------------------------------

@dataclass(frozen=True)
class WindowSpec:
    """The period an objective is measured over, as parsed from the API value."""

    kind: WindowKind
    duration: timedelta | None = None  # rolling
    start: datetime | None = None  # fixed
    end: datetime | None = None  # fixed

    def to_value(self) -> str | dict[str, str]:
        """The API value this spec was parsed from (durations and instants normalised)."""
        if self.kind == "rolling":
            return _format_duration(self.duration)
        if self.kind == "fixed":
            return {"start": _rfc3339(self.start), "end": _rfc3339(self.end)}
        return self.kind


_DURATION = re.compile(r"P(?:(\d+)W)?(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:\.\d{1,6})?)S)?)?")
_CALENDAR_UNITS = re.compile(r"P(?:\d+Y)?(?:\d+M)?(?:\d+W)?(?:\d+D)?(?:T.*)?")


FIRST_YEAR, LAST_YEAR = 1970, 2200  # the years a fixed window or a report may cover
LONGEST_WINDOW = timedelta(days=366)  # of a rolling or fixed window: an error budget is spent within a year


def parse_window(value: Any) -> WindowSpec:
    """Parse "calendar_month", "calendar_week", an ISO 8601 duration ("P30D") or {start, end}."""
    if isinstance(value, WindowSpec):
        return value
    if value in ("calendar_month", "calendar_week"):
        return WindowSpec(kind=value)
    if isinstance(value, str):
        return WindowSpec(kind="rolling", duration=_parse_duration(value))
    if isinstance(value, Mapping):
        unknown = set(value) - {"start", "end"}
        if unknown:
            raise InvalidObjective(f"window.{sorted(unknown)[0]}: unknown field, a fixed window has start and end")
        if "start" not in value or "end" not in value:
            raise InvalidObjective(f"window.{'start' if 'start' not in value else 'end'}: required for a fixed window")
        start, end = _parse_instant("window.start", value["start"]), _parse_instant("window.end", value["end"])
        if end <= start:
            raise InvalidObjective("window: end must be after start")
        if start.year < FIRST_YEAR or end.year > LAST_YEAR:
            raise InvalidObjective(f"window: must lie between the years {FIRST_YEAR} and {LAST_YEAR}")
        return WindowSpec(kind="fixed", start=start, end=end)
    raise InvalidObjective(f"window: expected calendar_month, calendar_week, an ISO 8601 duration such as P30D "
                           f"or {{start, end}}, got {value!r}")


def new_window(value: Any) -> WindowSpec:
    """`parse_window` for a new objective: a rolling or fixed window lasts `LONGEST_WINDOW` at most. (An objective
    stored before this limit is read as it is.)"""
    spec = parse_window(value)
    length = spec.duration if spec.kind == "rolling" else spec.end - spec.start if spec.kind == "fixed" else None
    if length is not None and length > LONGEST_WINDOW:
        raise InvalidObjective(f"window: a {spec.kind} window may last {LONGEST_WINDOW.days} days at most")
    return spec


def window_at(spec: WindowSpec, tz: str | ZoneInfo, at: datetime) -> tuple[datetime, datetime]:
    """The UTC [start, end) of the window containing `at`; a rolling window ends at `at`.

    Calendar months and ISO weeks (Monday start) begin at local midnight in `tz`. A fixed
    window is the only window there is, so it is returned whatever `at` is.
    """
    at = _aware("at", at).astimezone(UTC)
    if spec.kind == "rolling":
        return at - spec.duration, at
    if spec.kind == "fixed":
        return spec.start, spec.end
    zone = _zone(tz)
    day = at.astimezone(zone).date()
    if spec.kind == "calendar_week":
        first = day - timedelta(days=day.weekday())
        following = first + timedelta(days=7)
    else:
        first = day.replace(day=1)
        following = date(first.year + first.month // 12, first.month % 12 + 1, 1)
    return _start_of_local_day(first, zone), _start_of_local_day(following, zone)


def length(spec: WindowSpec, *, tz: str | ZoneInfo = "UTC", at: datetime | None = None) -> timedelta:
    """The window's length, for scaling burn-rate lookbacks.

    Rolling: its duration; fixed: end - start; calendar month or week: the real length of the one
    containing `at` (a 31-day month, or a week with a daylight-saving change, lasts what it lasts).
    """
    if spec.kind == "rolling":
        return spec.duration
    if spec.kind == "fixed":
        return spec.end - spec.start
    if at is None:
        raise ValueError(f"the length of a {spec.kind} window depends on which one: pass `at`")
    start, end = window_at(spec, tz, at)
    return end - start


# status timeline -----------------------------------------------------------------------------

@dataclass(frozen=True)
class StatusChange:
    """From `at` on, the service is `status` (until the next change)."""

    at: datetime
    status: Status

    def __post_init__(self) -> None:
        if self.status not in _SEVERITY:
            raise InvalidObjective(f"status: expected one of {', '.join(_STATUSES)}, got {self.status!r}")
        _aware("at", self.at)


class StatusTimeline:
    """A service's status changes sorted by (at, severity) and de-duplicated; "up" before the first.

    Build it once and pass it to several evaluations to sort only once.
    """

    def __init__(self, changes: Iterable[StatusChange]) -> None:
        worst: dict[int, int] = {}
        for change in changes:
            at = _us(change.at)
            worst[at] = max(worst.get(at, 0), _SEVERITY[change.status])
        instants: list[int] = []
        statuses: list[Status] = []
        for at, rank in sorted(worst.items()):
            if _STATUSES[rank] != (statuses[-1] if statuses else "up"):
                instants.append(at)
                statuses.append(_STATUSES[rank])
        self._instants = instants
        self._statuses = statuses
        spans = list(zip(instants, [*instants[1:], _FOREVER], statuses, strict=False))  # the last never ends
        self.down = _Spans([(s, e) for s, e, status in spans if status == "down"])
        self.degraded = _Spans([(s, e) for s, e, status in spans if status == "degraded"])

    def changes_between(self, start: datetime, end: datetime) -> list[datetime]:
        """The instants in (start, end) at which the status changes."""
        lo, hi = _us(start), _us(end)
        return [_dt(at) for at in self._instants if lo < at < hi]

    def status_at(self, at: datetime) -> Status:
        """The status holding at `at` (a change at exactly `at` already counts)."""
        return self._status_at(_us(at))

    def _status_at(self, at: int) -> Status:
        i = bisect_right(self._instants, at)
        return self._statuses[i - 1] if i else "up"


Timeline = StatusTimeline | Iterable[StatusChange]


# availability --------------------------------------------------------------------------------

@dataclass(frozen=True)
class BurnRule:
    """Alert when the burn rate reaches `threshold` over both lookbacks (given for a 30-day window)."""

    severity: Literal["page", "ticket"]
    threshold: float
    long_window: timedelta
    short_window: timedelta


# The Google SRE workbook's multi-window, multi-burn-rate table for a 30-day objective.
SRE_WORKBOOK_RULES = (
    BurnRule("page", 14.4, timedelta(hours=1), timedelta(minutes=5)),
    BurnRule("page", 6, timedelta(hours=6), timedelta(minutes=30)),
    BurnRule("ticket", 1, timedelta(days=3), timedelta(hours=6)),
)


@dataclass(frozen=True)
class BurnAlert:
    """One rule evaluated at an instant; lookbacks already scaled to the objective's window."""

    severity: Literal["page", "ticket"]
    threshold: float
    long_window: timedelta
    short_window: timedelta
    long_rate: float  # inf when the target is 100% and there was downtime
    short_rate: float
    firing: bool


@dataclass(frozen=True)
class AvailabilityResult:
    window_start: datetime
    window_end: datetime
    target_percent: float
    counted_seconds_so_far: float
    total_counted_seconds: float
    downtime_seconds: float
    degraded_seconds: float
    actual_percent: float | None  # None while nothing has been counted yet
    allowed_downtime_seconds: float
    remaining_budget_seconds: float  # negative once overspent
    budget_remaining_percent: float | None  # None when no downtime at all is allowed
    status: ObjectiveStatus
    breached_at: datetime | None
    exhausted_at_if_down_continues: datetime | None
    burn_alerts: tuple[BurnAlert, ...]
    service_status: Status = "up"  # at `now`


def availability(timeline: Timeline, *, window: tuple[datetime, datetime], now: datetime,
                 target_percent: float, calendar: Calendar, maintenance: Iterable[Interval] = (),
                 exclude_maintenance: bool = True, at_risk_below: float = 0.25, rolling: bool = False,
                 rules: Sequence[BurnRule] = SRE_WORKBOOK_RULES) -> AvailabilityResult:
    """Availability, error budget and status of one objective in `window`, as known at `now`.

    Only the calendar's working time counts, minus maintenance when `exclude_maintenance`;
    "degraded" counts as up. Breached once downtime exceeds the allowance (the target can no
    longer be met); at risk when less than `at_risk_below` of the allowance is left or a burn
    alert fires. A calendar or fixed window is over once `now` is past its end; then it is
    only ok or breached, and no burn alert fires (a firing one is cleared). Pass `rolling=True`
    for a window that slides with `now` (it is never over, and the exhaustion instant accounts
    for old downtime sliding out; its `breached_at` is where downtime counted from the current
    window's start passed the allowance).
    """
    timeline = _as_timeline(timeline)
    budget = _budget(target_percent)
    start, end, now_us = _us(window[0]), _us(window[1]), _us(now)
    if end <= start:
        raise InvalidObjective("window: end must be after start")
    maintenance_spans = _maintenance(maintenance) if exclude_maintenance else []
    counted = _Spans(_counted(calendar, maintenance_spans, start, end))
    so_far = min(max(now_us, start), end)
    down = _Spans(intersect_intervals(timeline.down.clip(start, so_far), counted.clip(start, so_far)))
    degraded = _Spans(intersect_intervals(timeline.degraded.clip(start, so_far), counted.clip(start, so_far)))

    counted_so_far, total = counted.measure(start, so_far), counted.total
    downtime = down.total
    allowed = budget * total
    remaining = allowed - downtime
    over = not rolling and now_us > end
    breached = downtime > allowed
    if over and (counted_so_far - downtime) * 100 < (1 - budget) * 100 * counted_so_far:
        breached = True  # equivalent once the window is complete; kept as the definition of a missed target

    # A breach is the first microsecond at which downtime exceeds the allowance.
    needed = math.floor(allowed) + 1
    breached_at = down.reach(start, needed) if breached else None
    exhausted_at = None
    if not breached and not over and timeline._status_at(now_us) == "down":
        if rolling:
            exhausted_at = _rolling_exhaustion(timeline, calendar, maintenance_spans, budget, now_us, end - start)
        else:
            exhausted_at = counted.reach(max(now_us, start), needed - downtime)

    alerts: tuple[BurnAlert, ...] = ()
    if now_us >= start:
        alerts = tuple(_burn_rates(timeline, min(now_us, end), budget, end - start, calendar, maintenance_spans,
                                   rules))
    if over:  # no budget is left to burn: each alert stops at the window's end, its rates as they were then
        alerts = tuple(replace(alert, firing=False) for alert in alerts)
    if breached:
        status: ObjectiveStatus = "breached"
    elif not over and (remaining < exact(at_risk_below, "at_risk_below") * allowed or any(a.firing for a in alerts)):
        status = "at_risk"
    else:
        status = "ok"
    return AvailabilityResult(
        window_start=_dt(start), window_end=_dt(end), target_percent=target_percent,
        counted_seconds_so_far=_seconds(counted_so_far), total_counted_seconds=_seconds(total),
        downtime_seconds=_seconds(downtime), degraded_seconds=_seconds(degraded.total),
        actual_percent=float(Fraction(counted_so_far - downtime, counted_so_far) * 100) if counted_so_far else None,
        allowed_downtime_seconds=_seconds(allowed), remaining_budget_seconds=_seconds(remaining),
        budget_remaining_percent=float(remaining / allowed * 100) if allowed else None,
        status=status,
        breached_at=None if breached_at is None else _dt(breached_at),
        exhausted_at_if_down_continues=None if exhausted_at is None else _dt(exhausted_at),
        burn_alerts=alerts, service_status=timeline._status_at(now_us),
    )


def _rolling_exhaustion(timeline: StatusTimeline, calendar: Calendar, maintenance: list[tuple[int, int]],
                        budget: Fraction, now: int, width: int) -> int | None:
    """When a rolling window's downtime first exceeds its allowance if the service stays down."""
    lo, until = now - width, now + width  # after one more window length everything counted is down
    counted = _counted(calendar, maintenance, lo, until)
    down = merge_intervals(timeline.down.clip(lo, now) + [(now, until)])
    breach = _Ratio(_Spans(intersect_intervals(down, counted)), _Spans(counted), width, budget, strict=True)
    return _first_change([[breach]], now, until)


# burn rates ----------------------------------------------------------------------------------

def scale_window(window: timedelta, window_length: timedelta) -> timedelta:
    """A lookback from the 30-day table scaled to an objective window (1h -> 14m for 7 days)."""
    return round(Fraction(window // _US) * Fraction(window_length // _US, _THIRTY_DAYS // _US)) * _US


def burn_rates(timeline: Timeline, *, now: datetime, target_percent: float, window_length: timedelta,
               calendar: Calendar, maintenance: Iterable[Interval] = (), exclude_maintenance: bool = True,
               rules: Sequence[BurnRule] = SRE_WORKBOOK_RULES) -> list[BurnAlert]:
    """Each rule's burn rates over its scaled lookbacks ending at `now`, and whether it fires.

    Burn rate over a lookback = (down time / counted time in it) / (1 - target); a lookback with
    nothing counted burns at 0. A rule fires when both rates reach its threshold.
    """
    maintenance_spans = _maintenance(maintenance) if exclude_maintenance else []
    return _burn_rates(_as_timeline(timeline), _us(now), _budget(target_percent), window_length // _US,
                       calendar, maintenance_spans, rules)


def next_burn_change(timeline: Timeline, *, after: datetime, until: datetime, target_percent: float,
                     window_length: timedelta, calendar: Calendar, maintenance: Iterable[Interval] = (),
                     exclude_maintenance: bool = True,
                     rules: Sequence[BurnRule] = SRE_WORKBOOK_RULES) -> datetime | None:
    """The first instant in (after, until] at which any rule's firing state differs from `after`.

    Exact on every calendar (to the microsecond): between breakpoints (status changes, calendar
    and maintenance boundaries, and each of them shifted by a lookback) the down and counted
    time of every lookback are linear in t, so each threshold crossing is solved in closed form.
    The timeline is taken as complete: changes after `after` that it already holds are honoured,
    otherwise the status at `after` continues.
    """
    a, b = _us(after), _us(until)
    if b <= a:
        return None
    timeline = _as_timeline(timeline)
    budget = _budget(target_percent)
    maintenance_spans = _maintenance(maintenance) if exclude_maintenance else []
    groups = [list(pair) for pair in _rule_ratios(timeline, a, b, budget, window_length // _US, calendar,
                                                    maintenance_spans, rules)]
    change = _first_change(groups, a, b)
    return None if change is None else _dt(change)


def _burn_rates(timeline: StatusTimeline, now: int, budget: Fraction, window_length: int, calendar: Calendar,
                maintenance: list[tuple[int, int]], rules: Sequence[BurnRule]) -> list[BurnAlert]:
    alerts = []
    pairs = _rule_ratios(timeline, now, now, budget, window_length, calendar, maintenance, rules)
    for rule, (long, short) in zip(rules, pairs, strict=True):
        alerts.append(BurnAlert(
            severity=rule.severity, threshold=rule.threshold, long_window=long.width * _US,
            short_window=short.width * _US, long_rate=long.rate(now, budget), short_rate=short.rate(now, budget),
            firing=long.holds(now) and short.holds(now)))
    return alerts


def _rule_ratios(timeline: StatusTimeline, lo: int, hi: int, budget: Fraction, window_length: int,
                 calendar: Calendar, maintenance: list[tuple[int, int]],
                 rules: Sequence[BurnRule]) -> list[tuple["_Ratio", "_Ratio"]]:
    """Per rule, the (long, short) lookback tests, with spans covering every lookback ending in [lo, hi]."""
    scaled = _scaled_rules(rules, window_length)
    widest = max((w for _, long, short in scaled for w in (long, short)), default=0)
    counted = _counted(calendar, maintenance, lo - widest, hi)
    bad = _Spans(intersect_intervals(timeline.down.clip(lo - widest, hi), counted))
    counted_spans = _Spans(counted)
    return [(_Ratio(bad, counted_spans, long, budget * threshold),
             _Ratio(bad, counted_spans, short, budget * threshold)) for threshold, long, short in scaled]


def _scaled_rules(rules: Sequence[BurnRule], window_length: int) -> list[tuple[Fraction, int, int]]:
    if window_length <= 0:
        raise InvalidObjective("window_length: must be positive")
    factor = Fraction(window_length, _THIRTY_DAYS // _US)
    return [(exact(rule.threshold), round(rule.long_window // _US * factor), round(rule.short_window // _US * factor))
            for rule in rules]


@dataclass(frozen=True)
class _Ratio:
    """Over the lookback [t - width, t): does bad time reach k times the counted time?

    Both amounts are piecewise linear in t with breakpoints at the spans' endpoints and at those
    endpoints plus `width`; in between, the test is a linear inequality solved in closed form.
    """

    bad: "_Spans"
    counted: "_Spans"
    width: int
    k: Fraction
    strict: bool = False  # bad > k * counted instead of >=

    def sums(self, t: int) -> tuple[int, int]:
        return self.bad.measure(t - self.width, t), self.counted.measure(t - self.width, t)

    def holds(self, t: int) -> bool:
        bad, counted = self.sums(t)
        return counted > 0 and bad > 0 and (bad > self.k * counted if self.strict else bad >= self.k * counted)

    def rate(self, t: int, budget: Fraction) -> float:
        bad, counted = self.sums(t)
        if not counted or not bad:
            return 0.0
        return math.inf if not budget else float(Fraction(bad, counted) / budget)

    def breakpoints(self, lo: int, hi: int) -> Iterator[int]:
        for p in chain(self.bad.endpoints(lo - self.width, hi), self.counted.endpoints(lo - self.width, hi)):
            for q in (p, p + self.width):
                if lo < q < hi:
                    yield q

    def flips(self, a: int, b: int) -> Iterator[int]:
        """Where in (a, b] one of the tests making up `holds` changes; sums must be linear on [a, b]."""
        bad_a, counted_a = self.sums(a)
        bad_b, counted_b = self.sums(b)
        for at_a, at_b, strict in ((counted_a - 1, counted_b - 1, False), (bad_a - 1, bad_b - 1, False),
                                   (bad_a - self.k * counted_a, bad_b - self.k * counted_b, self.strict)):
            flip = _linear_flip(a, b, Fraction(at_a), Fraction(at_b), strict)
            if flip is not None:
                yield flip


def _linear_flip(a: int, b: int, at_a: Fraction, at_b: Fraction, strict: bool) -> int | None:
    """First integer t in (a, b] where `g(t) > 0` (strict) or `g(t) >= 0` differs from t = a; g linear."""
    slope = (at_b - at_a) / (b - a)
    holds = at_a > 0 if strict else at_a >= 0
    if holds and slope < 0:
        steps = math.ceil(at_a / -slope) if strict else math.floor(at_a / -slope) + 1
    elif not holds and slope > 0:
        steps = math.floor(-at_a / slope) + 1 if strict else math.ceil(-at_a / slope)
    else:
        return None
    return a + steps if a + steps <= b else None


def _first_change(groups: Sequence[Sequence[_Ratio]], after: int, until: int) -> int | None:
    """First t in (after, until] where any group's all-tests-hold state differs from its state at `after`."""
    def state(t: int) -> tuple[bool, ...]:
        return tuple(all(ratio.holds(t) for ratio in group) for group in groups)

    initial = state(after)
    ratios = [ratio for group in groups for ratio in group]
    points = sorted({after, until, *(q for ratio in ratios for q in ratio.breakpoints(after, until))})
    for a, b in pairwise(points):
        # Each test is monotone on a linear stretch, so the state can only change at a test's flip.
        for t in sorted({t for ratio in ratios for t in ratio.flips(a, b)}):
            if state(t) != initial:
                return t
    return None


# interval arithmetic -------------------------------------------------------------------------
# Half-open [start, end) intervals; "sorted" lists are sorted by start, disjoint and non-touching.

def merge_intervals(intervals: Iterable[tuple[T, T]]) -> list[tuple[T, T]]:
    """Sort, drop empty intervals, and merge overlapping or touching ones."""
    merged: list[tuple[T, T]] = []
    for start, end in sorted(i for i in intervals if i[0] < i[1]):
        if merged and start <= merged[-1][1]:
            if end > merged[-1][1]:
                merged[-1] = (merged[-1][0], end)
        else:
            merged.append((start, end))
    return merged


def intersect_intervals(a: Sequence[tuple[T, T]], b: Sequence[tuple[T, T]]) -> list[tuple[T, T]]:
    """The parts of sorted `a` that lie in sorted `b`, in O(len(a) + len(b))."""
    out: list[tuple[T, T]] = []
    i = j = 0
    while i < len(a) and j < len(b):
        start, end = max(a[i][0], b[j][0]), min(a[i][1], b[j][1])
        if start < end:
            out.append((start, end))
        if a[i][1] < b[j][1]:
            i += 1
        else:
            j += 1
    return out


def subtract_intervals(a: Sequence[tuple[T, T]], b: Sequence[tuple[T, T]]) -> list[tuple[T, T]]:
    """The parts of sorted `a` outside sorted `b`, in O(len(a) + len(b))."""
    out: list[tuple[T, T]] = []
    j = 0
    for start, end in a:
        while j < len(b) and b[j][1] <= start:
            j += 1
        cursor, k = start, j
        while k < len(b) and b[k][0] < end:
            if b[k][0] > cursor:
                out.append((cursor, b[k][0]))
            cursor = max(cursor, b[k][1])
            k += 1
        if cursor < end:
            out.append((cursor, end))
    return out


class _Spans:
    """Sorted integer intervals with prefix sums: measure up to a point in O(log n)."""

    __slots__ = ("starts", "ends", "upto")

    def __init__(self, intervals: Sequence[tuple[int, int]]) -> None:
        self.starts = [s for s, _ in intervals]
        self.ends = [e for _, e in intervals]
        self.upto = [0]  # upto[i]: total length of the first i intervals
        for s, e in intervals:
            self.upto.append(self.upto[-1] + e - s)

    @property
    def total(self) -> int:
        return self.upto[-1]

    def measure_to(self, x: int) -> int:
        i = bisect_right(self.starts, x)
        return self.upto[i - 1] + min(self.ends[i - 1], x) - self.starts[i - 1] if i else 0

    def measure(self, lo: int, hi: int) -> int:
        return self.measure_to(hi) - self.measure_to(lo) if hi > lo else 0

    def reach(self, lo: int, amount: int) -> int | None:
        """The instant at which `amount` (> 0) has accumulated counting from `lo`, or None if never."""
        target = self.measure_to(lo) + amount
        if target > self.total:
            return None
        j = bisect_left(self.upto, target, 1) - 1
        return self.starts[j] + target - self.upto[j]

    def clip(self, lo: int, hi: int) -> list[tuple[int, int]]:
        out = []
        for i in range(bisect_right(self.ends, lo), bisect_left(self.starts, hi)):
            out.append((max(self.starts[i], lo), min(self.ends[i], hi)))
        return out

    def endpoints(self, lo: int, hi: int) -> Iterator[int]:
        yield from self.starts[bisect_left(self.starts, lo):bisect_right(self.starts, hi)]
        yield from self.ends[bisect_left(self.ends, lo):bisect_right(self.ends, hi)]


# helpers -------------------------------------------------------------------------------------

def _as_timeline(timeline: Timeline) -> StatusTimeline:
    return timeline if isinstance(timeline, StatusTimeline) else StatusTimeline(timeline)


def _counted(calendar: Calendar, maintenance: list[tuple[int, int]], lo: int, hi: int) -> list[tuple[int, int]]:
    """Working time in [lo, hi) minus maintenance (pass no maintenance to keep it)."""
    if hi <= lo:
        return []
    working = [(_us(s), _us(e)) for s, e in calendar.working_intervals(_dt(lo), _dt(hi))]
    return subtract_intervals(working, maintenance) if maintenance else working


def _maintenance(windows: Iterable[Interval]) -> list[tuple[int, int]]:
    return merge_intervals((_us(start), _us(end)) for start, end in windows)


def _budget(target_percent: Any) -> Fraction:
    """The allowed fraction of counted time down: 1 - target/100, exactly."""
    target = exact(target_percent, "target_percent")
    if not 0 < target <= 100:
        raise InvalidObjective(f"target_percent: must be above 0 and at most 100, got {target_percent!r}")
    return (100 - target) / 100


def exact(value: Any, name: str = "threshold") -> Fraction:
    """A number as the exact decimal it was written as (99.9 is 999/10, not the nearest binary float)."""
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal | Fraction):
        raise InvalidObjective(f"{name}: must be a number, got {value!r}")
    if isinstance(value, float):
        if not math.isfinite(value):
            raise InvalidObjective(f"{name}: must be finite, got {value!r}")
        return Fraction(Decimal(repr(value)))
    return Fraction(value)


def _parse_duration(text: str) -> timedelta:
    match = _DURATION.fullmatch(text)
    if match is None or text in ("P", "") or text.endswith("T"):
        if _CALENDAR_UNITS.fullmatch(text) and re.search(r"\d+[YM]", text.split("T")[0]):
            raise InvalidObjective(f"window: {text!r} uses years or months, which have no fixed length; "
                                   f"use calendar_month or a number of days such as P30D")
        raise InvalidObjective(f"window: {text!r} is not calendar_month, calendar_week or an ISO 8601 duration "
                               f"such as P30D, P7D or PT12H")
    weeks, days, hours, minutes, seconds = match.groups()
    try:
        duration = timedelta(weeks=int(weeks or 0), days=int(days or 0), hours=int(hours or 0),
                             minutes=int(minutes or 0), seconds=float(Decimal(seconds or 0)))
    except OverflowError:
        raise InvalidObjective(f"window: {text!r} is too long: {LONGEST_WINDOW.days} days at most") from None
    if duration <= timedelta(0):
        raise InvalidObjective(f"window: a rolling window must be longer than zero, got {text!r}")
    return duration


def _format_duration(duration: timedelta) -> str:
    seconds, micros = divmod(duration // _US, 1_000_000)
    days, seconds = divmod(seconds, 86400)
    hours, seconds = divmod(seconds, 3600)
    minutes, seconds = divmod(seconds, 60)
    time = "".join(f"{n}{unit}" for n, unit in ((hours, "H"), (minutes, "M")) if n)
    if seconds or micros:
        time += f"{seconds}.{micros:06d}".rstrip("0").rstrip(".") + "S"
    return f"P{f'{days}D' if days else ''}{'T' + time if time else ''}"


def _parse_instant(name: str, value: Any) -> datetime:
    if isinstance(value, datetime):
        at = value
    elif isinstance(value, str) and "T" in value.upper():
        try:
            at = datetime.fromisoformat(value)
        except ValueError:
            raise InvalidObjective(f"{name}: bad timestamp {value!r}, expected RFC 3339 such as "
                                   f"2026-11-20T00:00:00Z") from None
    else:
        raise InvalidObjective(f"{name}: expected an RFC 3339 timestamp with offset such as 2026-11-20T00:00:00Z, "
                               f"got {value!r}")
    if at.tzinfo is None or at.utcoffset() is None:
        raise InvalidObjective(f"{name}: {value!r} has no UTC offset; add Z or +hh:mm")
    try:
        return at.astimezone(UTC)
    except OverflowError:  # 0001-01-01T00:00:00+01:00 is in the year 0
        raise InvalidObjective(f"{name}: must lie between the years {FIRST_YEAR} and {LAST_YEAR}") from None


def _rfc3339(at: datetime) -> str:
    return at.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _zone(tz: str | ZoneInfo) -> ZoneInfo:
    if isinstance(tz, ZoneInfo):
        return tz
    try:
        return ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError, TypeError):
        raise InvalidObjective(f"timezone: unknown IANA time zone {tz!r}") from None


def _start_of_local_day(day: date, zone: ZoneInfo) -> datetime:
    """The first UTC instant whose local date in `zone` is `day` (midnight, or the end of a gap at it)."""
    wall = datetime(day.year, day.month, day.day)
    at = wall.replace(tzinfo=zone).astimezone(UTC)
    if at.astimezone(zone).replace(tzinfo=None) == wall:
        return at
    # Midnight falls in a spring-forward gap: the day begins at the change, found to the second.
    lo = int(wall.replace(tzinfo=zone, fold=1).timestamp())  # before the change
    hi = int(at.timestamp())  # after it
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if datetime.fromtimestamp(mid, zone).date() >= day:
            hi = mid
        else:
            lo = mid
    return datetime.fromtimestamp(hi, UTC)


def _aware(name: str, at: datetime) -> datetime:
    if not isinstance(at, datetime) or at.tzinfo is None or at.utcoffset() is None:
        raise ValueError(f"{name}: needs a timezone-aware datetime, got {at!r}")
    return at


def _us(at: datetime) -> int:
    return (_aware("instant", at) - _EPOCH) // _US


def _dt(us: int) -> datetime:
    return _EPOCH + us * _US


def _seconds(us: int | Fraction) -> float:
    return float(Fraction(us) / 1_000_000)
