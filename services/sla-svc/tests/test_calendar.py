"""Business calendars: every expected instant below is worked out by hand in the comments.

Dates used (2026): Jan 1 is a Thursday, so Fri Jan 9 / Mon Jan 12; Europe/Berlin is UTC+1
in winter and UTC+2 in summer, switching on Sun Mar 29 (02:00 CET -> 03:00 CEST, at 01:00 UTC)
and back on Sun Oct 25 (03:00 CEST -> 02:00 CET, at 01:00 UTC).
"""

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sla_svc.domain.calendar import (
    BUILT_IN,
    HORIZON,
    NEVER,
    BusinessCalendar,
    InvalidCalendar,
    TwentyFourSeven,
    build_calendar,
)

BERLIN = ZoneInfo("Europe/Berlin")
LA = ZoneInfo("America/Los_Angeles")
HOUR = 3600.0
WEEKDAYS_ONLY = ("mon", "tue", "wed", "thu", "fri")


def berlin(*args: int) -> datetime:
    return datetime(*args, tzinfo=BERLIN)


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def calendar(hours: dict | None = None, *, days=WEEKDAYS_ONLY, span=("09:00", "17:00"),
             timezone: str = "Europe/Berlin", **kwargs) -> BusinessCalendar:
    """A calendar with `span` on `days`, unless `hours` is given in full."""
    if hours is None:
        hours = {day: [list(span)] for day in days}
    return build_calendar(id="test", version=1, timezone=timezone, hours=hours, **kwargs)


NINE_TO_FIVE = calendar()


# office hours ------------------------------------------------------------------------------

def test_four_hours_from_friday_afternoon_end_monday_eleven():
    # Fri 15:00-17:00 gives 2h, the weekend nothing, Mon 09:00-11:00 the other 2h.
    deadline = NINE_TO_FIVE.add(berlin(2026, 1, 9, 15), 4 * HOUR)
    assert deadline == berlin(2026, 1, 12, 11)
    assert deadline.tzinfo is UTC and deadline == utc(2026, 1, 12, 10)
    assert NINE_TO_FIVE.between(berlin(2026, 1, 9, 15), deadline) == 4 * HOUR


def test_inputs_in_any_zone_give_the_same_instants():
    # Fri 15:00 Berlin is 14:00 UTC and 06:00 in Los Angeles.
    assert NINE_TO_FIVE.add(utc(2026, 1, 9, 14), 4 * HOUR) == utc(2026, 1, 12, 10)
    assert NINE_TO_FIVE.add(datetime(2026, 1, 9, 6, tzinfo=LA), 4 * HOUR) == utc(2026, 1, 12, 10)


def test_start_outside_hours_counts_from_next_opening():
    # Sat 12:00: nothing until Mon 09:00, then one hour.
    assert NINE_TO_FIVE.add(berlin(2026, 1, 10, 12), HOUR) == berlin(2026, 1, 12, 10)
    # Thu 20:00: nothing until Fri 09:00.
    assert NINE_TO_FIVE.add(berlin(2026, 1, 8, 20), 30 * 60) == berlin(2026, 1, 9, 9, 30)


def test_target_ending_at_closing_time_ends_that_day():
    # Fri 13:00 + 4h is exactly Fri 17:00, not Mon 09:00.
    assert NINE_TO_FIVE.add(berlin(2026, 1, 9, 13), 4 * HOUR) == berlin(2026, 1, 9, 17)


def test_zero_seconds_is_the_start_itself():
    start = berlin(2026, 1, 10, 12)  # a Saturday, outside working hours
    assert NINE_TO_FIVE.add(start, 0) == start
    assert NINE_TO_FIVE.add(start, 0).tzinfo is UTC


def test_between_counts_only_working_time_and_never_negative():
    # Mon 08:00 to Wed 12:00: Mon 8h + Tue 8h + Wed 09:00-12:00 3h = 19h.
    assert NINE_TO_FIVE.between(berlin(2026, 1, 12, 8), berlin(2026, 1, 14, 12)) == 19 * HOUR
    assert NINE_TO_FIVE.between(berlin(2026, 1, 14, 12), berlin(2026, 1, 12, 8)) == 0.0
    # A whole weekend is worth nothing.
    assert NINE_TO_FIVE.between(berlin(2026, 1, 10), berlin(2026, 1, 12)) == 0.0


def test_fractional_seconds_keep_microseconds():
    # Mon 09:00 + 1.5 s + 1 µs.
    deadline = NINE_TO_FIVE.add(berlin(2026, 1, 12, 9), 1.500001)
    assert deadline == berlin(2026, 1, 12, 9, 0, 1, 500001)
    assert NINE_TO_FIVE.between(berlin(2026, 1, 12, 9), deadline) == 1.500001


def test_long_targets_skip_whole_weeks_exactly():
    # 10 weeks of 40h from Mon Jan 12 09:00 (no German federal holiday until Good Friday Apr 3,
    # no DST change until Mar 29): the 400th hour ends Fri Mar 20 17:00.
    cal = calendar(holiday_country="DE")
    deadline = cal.add(berlin(2026, 1, 12, 9), 400 * HOUR)
    assert deadline == berlin(2026, 3, 20, 17)
    assert cal.between(berlin(2026, 1, 12, 9), deadline) == 400 * HOUR


# holidays ----------------------------------------------------------------------------------

def test_explicit_holiday_is_skipped():
    # Thu Apr 30 15:00-17:00 gives 2h; Fri May 1 is a holiday; the weekend nothing;
    # Mon May 4 09:00-11:00 the other 2h. (CEST, so 11:00 Berlin is 09:00 UTC.)
    cal = calendar(holidays=["2026-05-01"])
    assert cal.add(berlin(2026, 4, 30, 15), 4 * HOUR) == utc(2026, 5, 4, 9)
    assert cal.between(berlin(2026, 4, 30), berlin(2026, 5, 5)) == 8 * HOUR + 8 * HOUR
    assert NINE_TO_FIVE.between(berlin(2026, 4, 30), berlin(2026, 5, 5)) == 3 * 8 * HOUR


def test_german_christmas_from_the_holidays_package():
    # Thu Dec 24 is a working day in Germany; Fri 25 and Sat 26 are holidays.
    # Thu 16:00-17:00 gives 1h, then nothing until Mon Dec 28 09:00-10:00 (CET: 09:00 UTC).
    cal = calendar(holiday_country="DE")
    assert cal.add(berlin(2026, 12, 24, 16), 2 * HOUR) == utc(2026, 12, 28, 9)
    assert NINE_TO_FIVE.add(berlin(2026, 12, 24, 16), 2 * HOUR) == berlin(2026, 12, 25, 10)


def test_californian_christmas_in_los_angeles():
    # US/CA: Fri Dec 25 2026 is Christmas Day. Thu Dec 24 09:00 to Tue Dec 29 09:00 (PST)
    # holds Thu 8h + Mon 8h = 16h; Thu 16:00 + 2h ends Mon 10:00 PST = 18:00 UTC.
    cal = calendar(timezone="America/Los_Angeles", holiday_country="US", holiday_subdivision="CA")
    start = datetime(2026, 12, 24, 9, tzinfo=LA)
    assert cal.between(start, datetime(2026, 12, 29, 9, tzinfo=LA)) == 16 * HOUR
    assert cal.add(datetime(2026, 12, 24, 16, tzinfo=LA), 2 * HOUR) == utc(2026, 12, 28, 18)


def test_holiday_drops_ranges_starting_that_day_only():
    # Nights 22:00-06:00 Mon-Fri, Fri Jan 9 a holiday. From Fri 00:00 to Sat 12:00 only
    # Thursday's night counts (its range started on Thursday): Fri 00:00-06:00 = 6h.
    # Friday's own 22:00-06:00 night starts on the holiday and is dropped.
    cal = calendar(span=("22:00", "06:00"), holidays=["2026-01-09"])
    assert cal.between(berlin(2026, 1, 9), berlin(2026, 1, 10, 12)) == 6 * HOUR


# several ranges a day, overnight ranges ----------------------------------------------------

def test_lunch_break_is_not_counted():
    # 09:00-12:00 and 13:00-17:00: Mon 11:00 + 3h = 11-12 (1h) + 13-15 (2h) -> 15:00.
    cal = calendar({day: [["09:00", "12:00"], ["13:00", "17:00"]] for day in WEEKDAYS_ONLY})
    assert cal.add(berlin(2026, 1, 12, 11), 3 * HOUR) == berlin(2026, 1, 12, 15)
    # Mon 08:00-18:00 holds 3h + 4h = 7h; a target ending at 12:00 stays before lunch.
    assert cal.between(berlin(2026, 1, 12, 8), berlin(2026, 1, 12, 18)) == 7 * HOUR
    assert cal.add(berlin(2026, 1, 12, 9), 3 * HOUR) == berlin(2026, 1, 12, 12)


def test_overnight_range_belongs_to_the_day_it_starts():
    # 22:00-06:00 Mon-Fri: Friday's night runs until Sat 06:00; Saturday has none.
    # Sat 05:00 + 2h = Sat 05:00-06:00 (1h) + Mon 22:00-23:00 (1h).
    cal = calendar(span=("22:00", "06:00"))
    assert cal.add(berlin(2026, 1, 10, 5), 2 * HOUR) == berlin(2026, 1, 12, 23)
    # Mon 00:00 to Tue 00:00 holds only Monday's 22:00-24:00 (Sunday has no night).
    assert cal.between(berlin(2026, 1, 12), berlin(2026, 1, 13)) == 2 * HOUR


def test_end_of_24_00_means_midnight():
    cal = calendar(span=("18:00", "24:00"))
    assert cal.between(berlin(2026, 1, 12), berlin(2026, 1, 13)) == 6 * HOUR
    assert cal.to_dict()["hours"]["mon"] == [["18:00", "24:00"]]


# daylight saving ---------------------------------------------------------------------------

def test_overnight_range_on_spring_forward_night_is_seven_hours():
    # Sat Mar 28 22:00 CET (21:00 UTC) to Sun 06:00 CEST (04:00 UTC): 7 real hours.
    cal = calendar(days=("sat",), span=("22:00", "06:00"))
    assert cal.between(berlin(2026, 3, 28), berlin(2026, 3, 30)) == 7 * HOUR
    assert cal.add(berlin(2026, 3, 28, 12), 7 * HOUR) == utc(2026, 3, 29, 4)
    assert cal.working_intervals(berlin(2026, 3, 28), berlin(2026, 3, 30)) == [
        (utc(2026, 3, 28, 21), utc(2026, 3, 29, 4))]


def test_overnight_range_on_fall_back_night_is_nine_hours():
    # Sat Oct 24 22:00 CEST (20:00 UTC) to Sun 06:00 CET (05:00 UTC): 9 real hours.
    cal = calendar(days=("sat",), span=("22:00", "06:00"))
    assert cal.between(berlin(2026, 10, 24), berlin(2026, 10, 26)) == 9 * HOUR
    assert cal.add(berlin(2026, 10, 24, 12), 9 * HOUR) == utc(2026, 10, 25, 5)


def test_range_over_the_missing_hour_counts_two_real_hours():
    # Sun Mar 29 01:00-04:00: 01:00 CET = 00:00 UTC, 04:00 CEST = 02:00 UTC.
    cal = calendar(days=("sun",), span=("01:00", "04:00"))
    assert cal.working_intervals(berlin(2026, 3, 28), berlin(2026, 3, 30)) == [
        (utc(2026, 3, 29, 0), utc(2026, 3, 29, 2))]
    assert cal.between(berlin(2026, 3, 28), berlin(2026, 3, 30)) == 2 * HOUR


def test_range_over_the_repeated_hour_counts_four_real_hours():
    # Sun Oct 25 01:00-04:00: 01:00 CEST = Sat 23:00 UTC, 04:00 CET = 03:00 UTC.
    cal = calendar(days=("sun",), span=("01:00", "04:00"))
    assert cal.working_intervals(berlin(2026, 10, 24), berlin(2026, 10, 26)) == [
        (utc(2026, 10, 24, 23), utc(2026, 10, 25, 3))]
    assert cal.between(berlin(2026, 10, 24), berlin(2026, 10, 26)) == 4 * HOUR


def test_nonexistent_start_moves_to_the_end_of_the_gap():
    # 02:30 does not exist on Mar 29; the first valid instant is 03:00 CEST = 01:00 UTC.
    # So 02:30-04:00 counts 1h, and 02:00-03:00 (wholly missing) counts nothing that day:
    # 30 min from Sat then lands on Sun Apr 5 02:30 CEST = 00:30 UTC.
    late = calendar(days=("sun",), span=("02:30", "04:00"))
    assert late.working_intervals(berlin(2026, 3, 28), berlin(2026, 3, 30)) == [
        (utc(2026, 3, 29, 1), utc(2026, 3, 29, 2))]
    gap = calendar(days=("sun",), span=("02:00", "03:00"))
    assert gap.between(berlin(2026, 3, 28), berlin(2026, 3, 30)) == 0.0
    assert gap.add(berlin(2026, 3, 28), 30 * 60) == utc(2026, 4, 5, 0, 30)


def test_ambiguous_start_takes_the_first_occurrence():
    # Oct 25 02:00-03:00: 02:00 happens twice; the first is CEST = 00:00 UTC. 03:00 only
    # happens once, in CET = 02:00 UTC. So the range lasts 2 real hours.
    cal = calendar(days=("sun",), span=("02:00", "03:00"))
    assert cal.working_intervals(berlin(2026, 10, 24), berlin(2026, 10, 26)) == [
        (utc(2026, 10, 25, 0), utc(2026, 10, 25, 2))]


def test_office_hours_across_spring_forward_week():
    # Fri Mar 27 16:00 CET + 2h: 1h on Friday, then Mon Mar 30 09:00-10:00 CEST = 08:00 UTC.
    assert NINE_TO_FIVE.add(berlin(2026, 3, 27, 16), 2 * HOUR) == utc(2026, 3, 30, 8)
    # Four full weeks either side of both changes still hold 4 * 40h.
    assert NINE_TO_FIVE.between(berlin(2026, 3, 16), berlin(2026, 4, 13)) == 160 * HOUR
    assert NINE_TO_FIVE.between(berlin(2026, 10, 12), berlin(2026, 11, 9)) == 160 * HOUR


# working_intervals -------------------------------------------------------------------------

def test_working_intervals_are_clipped_sorted_utc():
    # Fri Jan 9 12:00 to Mon Jan 12 10:00 Berlin: Fri 12:00-17:00 and Mon 09:00-10:00 (CET).
    assert NINE_TO_FIVE.working_intervals(berlin(2026, 1, 9, 12), berlin(2026, 1, 12, 10)) == [
        (utc(2026, 1, 9, 11), utc(2026, 1, 9, 16)),
        (utc(2026, 1, 12, 8), utc(2026, 1, 12, 9)),
    ]
    assert NINE_TO_FIVE.working_intervals(berlin(2026, 1, 12, 10), berlin(2026, 1, 12, 10)) == []


def test_working_intervals_merge_touching_days():
    # Round the clock Mon-Fri: Mon 00:00 to Sat 00:00 is a single interval.
    cal = calendar(span=("00:00", "24:00"))
    assert cal.working_intervals(berlin(2026, 1, 11), berlin(2026, 1, 18)) == [
        (utc(2026, 1, 11, 23), utc(2026, 1, 16, 23))]


# properties --------------------------------------------------------------------------------

PROPERTY_CALENDARS = [
    calendar(holiday_country="DE", holiday_subdivision="BY", holidays=["2026-12-24"]),
    calendar({day: [["09:00", "12:00"], ["13:00", "17:00"]] for day in WEEKDAYS_ONLY}),
    calendar(span=("22:00", "06:00"), days=("mon", "tue", "wed", "thu", "fri", "sat", "sun")),
    calendar({"fri": [["22:00", "00:30"]], "sun": [["01:00", "04:00"], ["08:00", "08:30"]]}),
    calendar(timezone="America/Los_Angeles", holiday_country="US", holiday_subdivision="CA"),
    calendar(span=("00:00", "24:00"), timezone="Australia/Lord_Howe"),  # 30-minute DST shifts
]
starts = st.datetimes(min_value=datetime(2025, 1, 1), max_value=datetime(2028, 12, 31),
                      timezones=st.just(UTC))
# Whole microseconds, so that float -> timedelta -> float round-trips exactly.
amounts = st.integers(min_value=0, max_value=400 * 86400 * 10**6).map(lambda us: us / 10**6)


@settings(max_examples=300, deadline=None)
@given(cal=st.sampled_from(PROPERTY_CALENDARS), start=starts, seconds=amounts)
def test_between_inverts_add(cal, start, seconds):
    end = cal.add(start, seconds)
    assert end >= start
    assert cal.between(start, end) == seconds


@settings(max_examples=150, deadline=None)
@given(cal=st.sampled_from(PROPERTY_CALENDARS), start=starts,
       length=st.integers(min_value=0, max_value=120 * 86400))
def test_between_equals_sum_of_working_intervals(cal, start, length):
    # working_intervals walks every day; between skips whole weeks: they must agree.
    end = start + timedelta(seconds=length)
    intervals = cal.working_intervals(start, end)
    assert intervals == sorted(intervals)
    assert all(a < b for a, b in intervals)
    assert all(b1 < a2 for (_, b1), (a2, _) in zip(intervals, intervals[1:], strict=False))
    assert cal.between(start, end) == sum((b - a for a, b in intervals), timedelta(0)).total_seconds()


# definitions and validation ----------------------------------------------------------------

def test_to_dict_round_trips():
    cal = calendar({"mon": [["13:00", "17:00"], ["09:00", "12:00"]], "fri": [["22:00", "06:00"]]},
                   holidays=["2026-12-24", "2026-01-02"], holiday_country="DE", holiday_subdivision="BY")
    data = cal.to_dict()
    assert data == {
        "timezone": "Europe/Berlin",
        "hours": {"mon": [["09:00", "12:00"], ["13:00", "17:00"]], "tue": [], "wed": [], "thu": [],
                  "fri": [["22:00", "06:00"]], "sat": [], "sun": []},
        "holidays": ["2026-01-02", "2026-12-24"],
        "holiday_country": "DE",
        "holiday_subdivision": "BY",
    }
    again = BusinessCalendar.from_dict("test", 1, data)
    assert again == cal and again.to_dict() == data


def test_direct_construction_is_validated_too():
    cal = BusinessCalendar(id="x", version=2, timezone="UTC", hours={"mon": ((time(9), time(17)),)})
    assert cal.between(utc(2026, 1, 12), utc(2026, 1, 13)) == 8 * HOUR
    with pytest.raises(InvalidCalendar, match="no working hours"):
        BusinessCalendar(id="x", version=2, timezone="UTC", hours={})


@pytest.mark.parametrize(("changes", "message"), [
    ({"timezone": "Europe/Berln"}, "timezone: unknown IANA time zone 'Europe/Berln'"),
    ({"hours": {"monday": [["09:00", "17:00"]]}}, "hours: unknown weekday 'monday'"),
    ({"hours": {"mon": [["9:00", "17:00"]]}}, r"hours.mon\[0\]: bad time '9:00'"),
    ({"hours": {"mon": [["09:00", "25:00"]]}}, r"hours.mon\[0\]: bad time '25:00'"),
    ({"hours": {"mon": [["24:00", "06:00"]]}}, r"hours.mon\[0\]: 24:00 is only allowed as an end"),
    ({"hours": {"mon": [["09:00"]]}}, r"hours.mon\[0\]: must be a \[start, end\] pair"),
    ({"hours": {"mon": [["09:00", "12:00"], ["11:00", "13:00"]]}},
     "hours.mon: 09:00-12:00 overlaps 11:00-13:00"),
    ({"hours": {"mon": [["22:00", "06:00"]], "tue": [["05:00", "09:00"]]}},
     "hours.mon: 22:00-06:00 runs into tue 05:00-09:00"),
    ({"hours": {"mon": [], "sat": []}}, "hours: the calendar has no working hours at all"),
    ({"holidays": ["2026-02-30"]}, r"holidays\[0\]: bad date '2026-02-30'"),
    ({"holidays": ["25.12.2026"]}, r"holidays\[0\]: bad date '25.12.2026'"),
    ({"holiday_country": "XX"}, "holiday_country: unknown country code 'XX'"),
    ({"holiday_country": "DE", "holiday_subdivision": "ZZ"}, "holiday_subdivision: unknown subdivision 'ZZ'"),
    ({"holiday_subdivision": "BY"}, "holiday_subdivision: needs a holiday_country"),
    ({"version": 0}, "version: must be a positive integer"),
])
def test_invalid_definitions_name_the_field(changes, message):
    definition = {"id": "bad", "version": 1, "timezone": "Europe/Berlin",
                  "hours": {"mon": [["09:00", "17:00"]]}} | changes
    with pytest.raises(InvalidCalendar, match=message):
        build_calendar(**definition)


def test_invalid_calendar_is_a_value_error():
    assert issubclass(InvalidCalendar, ValueError)


def test_working_time_the_calendar_cannot_give_before_the_horizon_is_reached_never():
    # one working minute a week: a year of working time would take 525,600 weeks (ten thousand years, past the last
    # date Python holds), and counting them took 1.6 s before failing
    minute = build_calendar(id="sparse", version=1, timezone="UTC", hours={"mon": [["09:00", "09:01"]]})
    start = utc(2026, 1, 12, 9)  # a Monday
    assert minute.add(start, 366 * 24 * HOUR) == NEVER
    assert minute.add(start, 3 * 60.0) == utc(2026, 1, 26, 9, 1), "three minutes: the third Monday's"
    # the last working minute before the horizon (Monday 2200-12-29) is still reached, the next one never
    last = minute.between(start, HORIZON)
    assert minute.add(start, last) == datetime(2200, 12, 29, 9, 1, tzinfo=UTC)
    assert minute.add(start, last + 60.0) == NEVER


# the built-in calendar ---------------------------------------------------------------------

def test_twenty_four_seven_is_unchanged():
    cal = BUILT_IN["24x7"]
    assert isinstance(cal, TwentyFourSeven) and cal.id == "24x7" and cal.version == 1
    start = utc(2026, 3, 28, 22)
    assert cal.add(start, 5 * HOUR) == utc(2026, 3, 29, 3)
    assert cal.between(start, utc(2026, 3, 29, 3)) == 5 * HOUR
    assert cal.between(utc(2026, 3, 29, 3), start) == 0.0
    assert cal.working_intervals(start, utc(2026, 3, 29, 3)) == [(start, utc(2026, 3, 29, 3))]
    assert cal.working_intervals(start, start) == []
