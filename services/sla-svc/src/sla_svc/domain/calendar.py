"""Business calendars: how much working time lies between two instants, and where N seconds end.

A `BusinessCalendar` describes working hours as local wall-clock ranges per weekday. All
arithmetic is done on the UTC instants of each day's working intervals, so weekends,
holidays, overnight ranges and daylight-saving changes are counted in real seconds.
"""

import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from types import MappingProxyType
from typing import Any, Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from holidays import country_holidays, list_supported_countries

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")

_DAY = timedelta(days=1)
# Working time is not counted beyond this: a target a calendar cannot give before then (a minute a week against
# a year's target would take ten thousand years, past the last date Python can hold) is reached NEVER.
HORIZON = datetime(2201, 1, 1, tzinfo=UTC)
NEVER = datetime.max.replace(tzinfo=UTC)
_WEEK = timedelta(days=7)
_ZERO = timedelta(0)
_HHMM = re.compile(r"([01]\d|2[0-3]):([0-5]\d)")

Interval = tuple[datetime, datetime]


class Calendar(Protocol):
    id: str
    version: int
    timezone: str  # where its days, weeks and months begin

    def add(self, start: datetime, seconds: float) -> datetime:
        """The instant at which `seconds` of working time have passed since `start`."""

    def between(self, start: datetime, end: datetime) -> float:
        """Working seconds in [start, end); 0 if end is not after start."""

    def working_intervals(self, start: datetime, end: datetime) -> list[Interval]:
        """The UTC working intervals inside [start, end), merged and sorted."""


@dataclass(frozen=True)
class TwentyFourSeven:
    """Every second counts."""

    id: str = "24x7"
    version: int = 1
    timezone: str = "UTC"

    def add(self, start: datetime, seconds: float) -> datetime:
        return start + timedelta(seconds=seconds)

    def between(self, start: datetime, end: datetime) -> float:
        return max(0.0, (end - start).total_seconds())

    def working_intervals(self, start: datetime, end: datetime) -> list[Interval]:
        if end <= start:
            return []
        return [(start.astimezone(UTC), end.astimezone(UTC))]


BUILT_IN: dict[str, Calendar] = {"24x7": TwentyFourSeven()}


class InvalidCalendar(ValueError):
    """A calendar definition that cannot be used; the message names the offending field."""


WorkingHours = Mapping[str, tuple[tuple[time, time], ...]]


@dataclass(frozen=True)
class BusinessCalendar:
    """Working hours per weekday in a time zone, minus holidays.

    `hours` maps "mon".."sun" to (start, end) wall-clock ranges. An end at or before its start
    runs into the next day (time(0) is how "24:00" is stored) and the range belongs to the
    weekday it starts on; on a holiday, ranges that start that day do not count.
    """

    id: str
    version: int
    timezone: str
    hours: WorkingHours = field(hash=False)
    holidays: frozenset[date] = frozenset()
    holiday_country: str | None = None
    holiday_subdivision: str | None = None
    # Derived in __post_init__: per weekday, (start, end) offsets from local midnight.
    _ranges: tuple[tuple[tuple[timedelta, timedelta], ...], ...] = field(
        init=False, repr=False, compare=False, hash=False)
    _zone: ZoneInfo = field(init=False, repr=False, compare=False, hash=False)
    _week_total: timedelta = field(init=False, repr=False, compare=False, hash=False)
    # Per year, the Mondays whose week cannot be skipped whole; filled lazily, deterministic.
    _irregular_mondays: dict[int, frozenset[date]] = field(
        init=False, repr=False, compare=False, hash=False, default_factory=dict)

    def __post_init__(self) -> None:
        set_ = object.__setattr__  # frozen: derived fields are set once, here
        if not isinstance(self.id, str) or not self.id:
            raise InvalidCalendar("id: must be a non-empty string")
        if isinstance(self.version, bool) or not isinstance(self.version, int) or self.version < 1:
            raise InvalidCalendar(f"version: must be a positive integer, got {self.version!r}")
        set_(self, "_zone", _zone_of(self.timezone))
        hours = _normalise_hours(self.hours)
        set_(self, "hours", MappingProxyType(hours))
        ranges = tuple(tuple(_offsets(r) for r in hours[day]) for day in WEEKDAYS)
        _check_overlaps(ranges)
        week_total = sum((end - start for day in ranges for start, end in day), _ZERO)
        if week_total <= _ZERO:
            raise InvalidCalendar("hours: the calendar has no working hours at all")
        set_(self, "_ranges", ranges)
        set_(self, "_week_total", week_total)
        set_(self, "holidays", frozenset(_check_holiday_dates(self.holidays)))
        _check_holiday_codes(self.holiday_country, self.holiday_subdivision)

    # serialising -------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """The JSON-ready definition (without id and version), as `build_calendar` accepts it."""
        return {
            "timezone": self.timezone,
            "hours": {day: [[_hhmm(s), _hhmm(e, end=True)] for s, e in self.hours[day]] for day in WEEKDAYS},
            "holidays": [d.isoformat() for d in sorted(self.holidays)],
            "holiday_country": self.holiday_country,
            "holiday_subdivision": self.holiday_subdivision,
        }

    @classmethod
    def from_dict(cls, id: str, version: int, data: Mapping[str, Any]) -> "BusinessCalendar":
        """Rebuild a calendar from `to_dict()` output (or any valid definition)."""
        unknown = set(data) - {"timezone", "hours", "holidays", "holiday_country", "holiday_subdivision"}
        if unknown:
            raise InvalidCalendar(f"{sorted(unknown)[0]}: unknown field")
        if "timezone" not in data or "hours" not in data:
            raise InvalidCalendar(f"{'timezone' if 'timezone' not in data else 'hours'}: required")
        return build_calendar(id=id, version=version, **data)

    # the Calendar protocol ---------------------------------------------------------------

    def add(self, start: datetime, seconds: float) -> datetime:
        """The UTC instant at which `seconds` of working time have passed since `start`.

        Counting begins at the first working instant at or after `start`; amounts of zero or
        less return `start` itself (in UTC); NEVER when they run past the HORIZON.
        """
        at = _utc(start)
        remaining = timedelta(seconds=seconds)
        if remaining <= _ZERO:
            return at
        day = self._local_date(at) - _DAY  # yesterday's overnight range may still be running
        while True:
            if day.year >= HORIZON.year:
                return NEVER
            if day.weekday() == 0 and remaining > self._week_total:
                week_start = self._uniform_week_start(day)
                if week_start is not None and week_start >= at:
                    remaining -= self._week_total
                    day += _WEEK
                    continue
            for s, e in self._day_intervals(day):
                if e <= at:
                    continue
                s = max(s, at)
                if remaining <= e - s:
                    return s + remaining
                remaining -= e - s
            day += _DAY

    def between(self, start: datetime, end: datetime) -> float:
        """Working seconds in [start, end); 0 if end is not after start."""
        a, b = _utc(start), _utc(end)
        if b <= a:
            return 0.0
        total = _ZERO
        day, last = self._local_date(a) - _DAY, self._local_date(b)
        while day <= last:
            if day.weekday() == 0:
                week_start = self._uniform_week_start(day)
                # Sunday's last range may run into Monday, so the whole week ends by Tuesday 00:00.
                if week_start is not None and week_start >= a and week_start + _WEEK + _DAY <= b:
                    total += self._week_total
                    day += _WEEK
                    continue
            for s, e in self._day_intervals(day):
                s, e = max(s, a), min(e, b)
                if e > s:
                    total += e - s
            day += _DAY
        return total.total_seconds()

    def working_intervals(self, start: datetime, end: datetime) -> list[Interval]:
        """The UTC working intervals inside [start, end), merged and sorted."""
        a, b = _utc(start), _utc(end)
        merged: list[Interval] = []
        if b <= a:
            return merged
        for s, e in self._intervals_from(self._local_date(a) - _DAY, self._local_date(b)):
            s, e = max(s, a), min(e, b)
            if e <= s:
                continue
            if merged and s <= merged[-1][1]:
                merged[-1] = (merged[-1][0], max(e, merged[-1][1]))
            else:
                merged.append((s, e))
        return merged

    def is_holiday(self, day: date) -> bool:
        """Whether ranges starting on this local date are skipped."""
        if day in self.holidays:
            return True
        if self.holiday_country is None:
            return False
        return day in _country_holiday_dates(self.holiday_country, self.holiday_subdivision, day.year)

    def holidays_in(self, year: int) -> frozenset[date]:
        """The explicit and country holidays falling in `year`."""
        own = frozenset(d for d in self.holidays if d.year == year)
        if self.holiday_country is None:
            return own
        return own | _country_holiday_dates(self.holiday_country, self.holiday_subdivision, year)

    # internals ---------------------------------------------------------------------------

    def _intervals_from(self, first: date, last: date) -> Iterator[Interval]:
        day = first
        while day <= last:
            yield from self._day_intervals(day)
            day += _DAY

    def _day_intervals(self, day: date) -> list[Interval]:
        """UTC intervals of the ranges starting on local `day` (none on a holiday)."""
        ranges = self._ranges[day.weekday()]
        if not ranges or self.is_holiday(day):
            return []
        midnight = datetime(day.year, day.month, day.day)
        if day not in _offset_change_dates(self.timezone, day.year):
            # The UTC offset is constant from the day before to the day after: plain subtraction.
            offset = self._zone.utcoffset(midnight)
            base = (midnight - offset).replace(tzinfo=UTC)
            return [(base + s, base + e) for s, e in ranges]
        out = []
        for s, e in ranges:
            us, ue = self._wall_to_utc(midnight + s), self._wall_to_utc(midnight + e)
            if ue > us:  # a range lying wholly inside a spring-forward gap counts nothing
                out.append((us, ue))
        return out

    def _wall_to_utc(self, wall: datetime) -> datetime:
        """A naive local wall time as UTC: first occurrence if ambiguous, gap end if nonexistent."""
        utc = wall.replace(tzinfo=self._zone).astimezone(UTC)
        if utc.astimezone(self._zone).replace(tzinfo=None) == wall:
            return utc
        # In a gap fold=0 uses the offset before the change (an instant after it) and fold=1 the
        # offset after (an instant before it); the change itself is the first valid instant.
        before = wall.replace(tzinfo=self._zone, fold=1).astimezone(UTC)
        after_offset = wall.replace(tzinfo=self._zone, fold=1).utcoffset()
        lo, hi = int(before.timestamp()), int(utc.timestamp())
        while hi - lo > 1:  # transitions fall on whole seconds
            mid = (lo + hi) // 2
            if datetime.fromtimestamp(mid, self._zone).utcoffset() == after_offset:
                hi = mid
            else:
                lo = mid
        return datetime.fromtimestamp(hi, UTC)

    def _uniform_week_start(self, monday: date) -> datetime | None:
        """UTC of local `monday` 00:00 if its week holds no holiday and no offset change, else None.

        Such a week, including Sunday's range running into the next Monday, lasts exactly
        `_week_total` working time and one UTC offset holds through the next Tuesday 00:00.
        """
        irregular = self._irregular_mondays.get(monday.year)
        if irregular is None:
            irregular = self._irregular_mondays.setdefault(monday.year, self._find_irregular_mondays(monday.year))
        if monday in irregular:
            return None
        midnight = datetime(monday.year, monday.month, monday.day)
        return (midnight - self._zone.utcoffset(midnight)).replace(tzinfo=UTC)

    def _find_irregular_mondays(self, year: int) -> frozenset[date]:
        """Mondays of `year` whose week (through the next Monday) has a holiday or an offset change."""
        mondays = set()
        for y in (year, year + 1):
            for day in _offset_change_dates(self.timezone, y):
                mondays.add(day - timedelta(days=day.weekday()))
                if day.weekday() == 0:  # also the previous week, whose Sunday range may end on it
                    mondays.add(day - _WEEK)
            for day in self.holidays_in(y):
                mondays.add(day - timedelta(days=day.weekday()))
        return frozenset(d for d in mondays if d.year == year)

    def _local_date(self, at: datetime) -> date:
        return at.astimezone(self._zone).date()


def build_calendar(*, id: str, version: int, timezone: str, hours: Mapping[str, Iterable[Iterable[str]]],
                   holidays: Iterable[str] = (), holiday_country: str | None = None,
                   holiday_subdivision: str | None = None) -> BusinessCalendar:
    """Parse and validate a calendar definition; raises InvalidCalendar naming the bad field."""
    if not isinstance(hours, Mapping):
        raise InvalidCalendar("hours: must be an object keyed by weekday (mon..sun)")
    parsed: dict[str, tuple[tuple[time, time], ...]] = {}
    for day, ranges in hours.items():
        if day not in WEEKDAYS:
            raise InvalidCalendar(f"hours: unknown weekday {day!r}, expected one of {', '.join(WEEKDAYS)}")
        parsed[day] = tuple(_parse_range(f"hours.{day}[{i}]", r)
                            for i, r in enumerate(_as_list(f"hours.{day}", ranges)))
    dates = [_parse_date(f"holidays[{i}]", text) for i, text in enumerate(_as_list("holidays", holidays))]
    return BusinessCalendar(id=id, version=version, timezone=timezone, hours=parsed, holidays=frozenset(dates),
                            holiday_country=holiday_country, holiday_subdivision=holiday_subdivision)


# validation helpers ------------------------------------------------------------------------

def _as_list(name: str, value: Any) -> list:
    if isinstance(value, str | bytes) or not isinstance(value, Iterable):
        raise InvalidCalendar(f"{name}: must be a list")
    return list(value)


def _parse_range(name: str, value: Any) -> tuple[time, time]:
    pair = _as_list(name, value)
    if len(pair) != 2:
        raise InvalidCalendar(f"{name}: must be a [start, end] pair")
    start, end = pair
    if start == "24:00":
        raise InvalidCalendar(f"{name}: 24:00 is only allowed as an end")
    return _parse_time(name, start), time(0) if end == "24:00" else _parse_time(name, end)


def _parse_time(name: str, text: Any) -> time:
    match = _HHMM.fullmatch(text) if isinstance(text, str) else None
    if match is None:
        raise InvalidCalendar(f"{name}: bad time {text!r}, expected HH:MM")
    return time(int(match[1]), int(match[2]))


def _parse_date(name: str, text: Any) -> date:
    try:
        if isinstance(text, str) and len(text) == 10:
            return date.fromisoformat(text)
    except ValueError:
        pass
    raise InvalidCalendar(f"{name}: bad date {text!r}, expected YYYY-MM-DD")


def _zone_of(key: Any) -> ZoneInfo:
    try:
        return ZoneInfo(key)
    except (ZoneInfoNotFoundError, ValueError, TypeError):
        raise InvalidCalendar(f"timezone: unknown IANA time zone {key!r}") from None


def _normalise_hours(hours: Any) -> dict[str, tuple[tuple[time, time], ...]]:
    if not isinstance(hours, Mapping):
        raise InvalidCalendar("hours: must be a mapping keyed by weekday (mon..sun)")
    unknown = [day for day in hours if day not in WEEKDAYS]
    if unknown:
        raise InvalidCalendar(f"hours: unknown weekday {unknown[0]!r}, expected one of {', '.join(WEEKDAYS)}")
    out = {}
    for day in WEEKDAYS:
        ranges = tuple(tuple(r) for r in hours.get(day, ()))
        for i, r in enumerate(ranges):
            if len(r) != 2 or not all(_is_wall_time(t) for t in r):
                raise InvalidCalendar(f"hours.{day}[{i}]: must be a (start, end) pair of whole-minute times")
        out[day] = tuple(sorted(ranges))
    return out


def _is_wall_time(value: Any) -> bool:
    return isinstance(value, time) and value.tzinfo is None and value.second == 0 and value.microsecond == 0


def _offsets(r: tuple[time, time]) -> tuple[timedelta, timedelta]:
    start = timedelta(hours=r[0].hour, minutes=r[0].minute)
    end = timedelta(hours=r[1].hour, minutes=r[1].minute)
    return start, end if end > start else end + _DAY


def _check_overlaps(ranges: tuple[tuple[tuple[timedelta, timedelta], ...], ...]) -> None:
    """Ranges may not overlap within a day, nor an overnight range with the next day's ranges."""
    for i, day in enumerate(ranges):
        for (s1, e1), (s2, e2) in zip(day, day[1:], strict=False):
            if s2 < e1:
                raise InvalidCalendar(f"hours.{WEEKDAYS[i]}: {_span(s1, e1)} overlaps {_span(s2, e2)}")
        following = ranges[(i + 1) % 7]
        if day and following and day[-1][1] - _DAY > following[0][0]:
            raise InvalidCalendar(f"hours.{WEEKDAYS[i]}: {_span(*day[-1])} runs into "
                                  f"{WEEKDAYS[(i + 1) % 7]} {_span(*following[0])}")


def _span(start: timedelta, end: timedelta) -> str:
    def fmt(offset: timedelta) -> str:
        minutes = int(offset.total_seconds()) // 60 % (24 * 60)
        return f"{minutes // 60:02d}:{minutes % 60:02d}"
    return f"{fmt(start)}-{fmt(end) if end != _DAY else '24:00'}"


def _hhmm(t: time, *, end: bool = False) -> str:
    return "24:00" if end and t == time(0) else f"{t.hour:02d}:{t.minute:02d}"


def _check_holiday_dates(values: Any) -> Iterator[date]:
    for value in values:
        if not isinstance(value, date) or isinstance(value, datetime):
            raise InvalidCalendar(f"holidays: {value!r} is not a date")
        yield value


def _check_holiday_codes(country: str | None, subdivision: str | None) -> None:
    if country is None:
        if subdivision is not None:
            raise InvalidCalendar("holiday_subdivision: needs a holiday_country")
        return
    supported = _supported_countries()
    if country not in supported:
        raise InvalidCalendar(f"holiday_country: unknown country code {country!r}")
    if subdivision is not None and subdivision not in supported[country]:
        raise InvalidCalendar(f"holiday_subdivision: unknown subdivision {subdivision!r} of {country!r}")


# deterministic, process-wide caches --------------------------------------------------------

@lru_cache(maxsize=1)
def _supported_countries() -> dict[str, frozenset[str]]:
    return {code: frozenset(subdivisions) for code, subdivisions in list_supported_countries().items()}


@lru_cache(maxsize=1024)
def _country_holiday_dates(country: str, subdivision: str | None, year: int) -> frozenset[date]:
    """Holidays falling in `year`; neighbouring years are asked too, for observed days that cross over."""
    found = country_holidays(country, subdiv=subdivision, years=(year - 1, year, year + 1))
    return frozenset(d for d in found if d.year == year)


@lru_cache(maxsize=1024)
def _offset_change_dates(timezone: str, year: int) -> frozenset[date]:
    """Local dates of `year` on, or next to, which the UTC offset changes.

    Sampled at each local midnight, and widened by a day either side so that any wall time
    in a gap or a repeated hour (including ones spanning midnight) falls on a marked date.
    Outside these dates one offset holds from the day before to the day after.
    """
    zone = ZoneInfo(timezone)
    marked = set()
    day = date(year - 1, 12, 30)
    offset = zone.utcoffset(datetime(day.year, day.month, day.day))
    while day <= date(year + 1, 1, 1):
        following = day + _DAY
        next_offset = zone.utcoffset(datetime(following.year, following.month, following.day))
        if next_offset != offset:
            marked.update(d for d in (day - _DAY, day, following) if d.year == year)
        day, offset = following, next_offset
    return frozenset(marked)


def _utc(at: datetime) -> datetime:
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError("calendar arithmetic needs timezone-aware datetimes")
    return at.astimezone(UTC)
