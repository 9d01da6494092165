"""Unit tests of availability objectives and burn-rate alerts: no I/O. Expected values worked out by hand."""

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sla_svc.domain.calendar import TwentyFourSeven, build_calendar
from sla_svc.domain.objectives import (
    new_window,
    InvalidObjective,
    StatusChange,
    StatusTimeline,
    WindowSpec,
    availability,
    burn_rates,
    intersect_intervals,
    length,
    merge_intervals,
    next_burn_change,
    parse_window,
    subtract_intervals,
    window_at,
)

CAL = TwentyFourSeven()
US = timedelta(microseconds=1)
NOVEMBER = (datetime(2026, 11, 1, tzinfo=UTC), datetime(2026, 12, 1, tzinfo=UTC))
THIRTY_DAYS = timedelta(days=30)
BERLIN = "Europe/Berlin"


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def outage(start: datetime, end: datetime, status: str = "down") -> list[StatusChange]:
    return [StatusChange(start, status), StatusChange(end, "up")]


def business_hours(timezone: str = "Europe/Berlin"):
    day = [["09:00", "17:00"]]
    return build_calendar(id="office", version=1, timezone=timezone,
                          hours={d: day for d in ("mon", "tue", "wed", "thu", "fri")})


def firing(timeline, at, *, calendar=CAL, target=99.9, window_length=THIRTY_DAYS):
    alerts = burn_rates(timeline, now=at, target_percent=target, window_length=window_length, calendar=calendar)
    return tuple(alert.firing for alert in alerts)


# windows -------------------------------------------------------------------------------------

def test_parse_window_accepts_every_api_form():
    assert parse_window("calendar_month") == WindowSpec(kind="calendar_month")
    assert parse_window("calendar_week") == WindowSpec(kind="calendar_week")
    assert parse_window("P30D") == WindowSpec(kind="rolling", duration=timedelta(days=30))
    assert parse_window("PT12H").duration == timedelta(hours=12)
    assert parse_window("P1W").duration == timedelta(days=7)
    season = parse_window({"start": "2026-11-20T00:00:00Z", "end": "2027-01-06T00:00:00+00:00"})
    assert (season.start, season.end) == (utc(2026, 11, 20), utc(2027, 1, 6))
    assert season.to_value() == {"start": "2026-11-20T00:00:00Z", "end": "2027-01-06T00:00:00Z"}
    assert parse_window("P1DT12H").to_value() == "P1DT12H"


@pytest.mark.parametrize("value, message", [
    ("P1M", "years or months"),
    ("calendar_year", "ISO 8601 duration"),
    ("P0D", "longer than zero"),
    ("PT", "ISO 8601 duration"),
    (30, "expected calendar_month"),
    ({"start": "2026-11-20"}, "window.end: required"),
    ({"start": "2026-11-20", "end": "2027-01-06"}, "RFC 3339"),
    ({"start": "2026-11-20T00:00:00", "end": "2027-01-06T00:00:00Z"}, "no UTC offset"),
    ({"start": "2027-01-06T00:00:00Z", "end": "2026-11-20T00:00:00Z"}, "end must be after start"),
    ({"start": "2026-11-20T00:00:00Z", "end": "2027-01-06T00:00:00Z", "tz": "UTC"}, "unknown field"),
    ("P99999999999W", "too long: 366 days at most"),  # beyond a timedelta
    ({"start": "0001-01-01T00:00:00+01:00", "end": "2026-01-01T00:00:00Z"}, "window.start: must lie between"),
    ({"start": "2026-01-01T00:00:00Z", "end": "9999-12-31T23:00:00-05:00"}, "window.end: must lie between"),
])
def test_parse_window_rejects_bad_values_with_a_clear_message(value, message):
    with pytest.raises(InvalidObjective, match=message):
        parse_window(value)


@pytest.mark.parametrize("value", [
    "P367D", "P999999999D",  # a valid timedelta, but no window can end before it starts
    {"start": "2026-01-01T00:00:00Z", "end": "2027-01-03T00:00:00Z"}])
def test_a_new_window_lasts_366_days_at_most_and_one_stored_before_is_still_read(value):
    with pytest.raises(InvalidObjective, match="366 days at most"):
        new_window(value)
    assert parse_window(value) == parse_window(parse_window(value).to_value()), "an agreement stored before loads"
    assert new_window("P366D").duration == timedelta(days=366)


def test_calendar_month_starts_at_local_midnight_and_has_its_real_length():
    month = parse_window("calendar_month")
    # 00:30 on 1 November in Berlin (CET, UTC+1) is still 31 October in UTC.
    assert window_at(month, BERLIN, utc(2026, 10, 31, 23, 30)) == (utc(2026, 10, 31, 23), utc(2026, 11, 30, 23))
    # October 2026 in Berlin runs from CEST to CET: 31 days and one hour.
    assert window_at(month, BERLIN, utc(2026, 10, 31, 22, 59)) == (utc(2026, 9, 30, 22), utc(2026, 10, 31, 23))
    assert length(month, tz="Europe/Berlin", at=utc(2026, 10, 15)) == timedelta(days=31, hours=1)
    assert length(month, at=utc(2026, 11, 15)) == timedelta(days=30)
    assert window_at(month, "Europe/Berlin", utc(2026, 12, 31, 23, 30)) == (utc(2026, 12, 31, 23), utc(2027, 1, 31, 23))


def test_calendar_week_is_the_local_iso_week_across_a_dst_change():
    week = parse_window("calendar_week")
    # Sunday 1 November 2026, 07:00 in New York, hours after DST ended: the week began Monday 26 October (EDT).
    start, end = window_at(week, "America/New_York", utc(2026, 11, 1, 12))
    assert (start, end) == (utc(2026, 10, 26, 4), utc(2026, 11, 2, 5))
    assert length(week, tz="America/New_York", at=start) == timedelta(days=7, hours=1)
    # The boundary instant belongs to the week it starts.
    assert window_at(week, "America/New_York", end)[0] == end


def test_rolling_window_ends_now_and_fixed_window_is_itself():
    at = utc(2026, 11, 24, 9, 30)
    assert window_at(parse_window("P30D"), "Europe/Berlin", at) == (at - timedelta(days=30), at)
    season = parse_window({"start": "2026-11-20T00:00:00Z", "end": "2027-01-06T00:00:00Z"})
    assert window_at(season, "UTC", at) == (utc(2026, 11, 20), utc(2027, 1, 6))
    assert length(season) == timedelta(days=47)
    assert length(parse_window("PT12H")) == timedelta(hours=12)


def test_unknown_timezone_is_rejected():
    with pytest.raises(InvalidObjective, match="Mars/Olympus"):
        window_at(parse_window("calendar_month"), "Mars/Olympus", utc(2026, 11, 1))


# interval arithmetic -------------------------------------------------------------------------

def test_interval_helpers():
    assert merge_intervals([(5, 7), (1, 3), (3, 4), (6, 9), (10, 10)]) == [(1, 4), (5, 9)]
    assert intersect_intervals([(0, 5), (8, 12)], [(3, 9), (11, 20)]) == [(3, 5), (8, 9), (11, 12)]
    assert subtract_intervals([(0, 10), (20, 30)], [(2, 3), (5, 22), (25, 26)]) == [(0, 2), (3, 5), (22, 25), (26, 30)]
    assert subtract_intervals([(0, 10)], []) == [(0, 10)]


# availability ---------------------------------------------------------------------------------

def test_november_at_three_nines_allows_43_minutes_12_seconds():
    timeline = outage(utc(2026, 11, 5, 10), utc(2026, 11, 5, 10, 20))
    result = availability(timeline, window=NOVEMBER, now=utc(2026, 12, 2), target_percent=99.9, calendar=CAL)
    assert result.total_counted_seconds == result.counted_seconds_so_far == 30 * 86400
    assert result.allowed_downtime_seconds == 2592.0  # 43.2 minutes
    assert result.downtime_seconds == 1200.0
    assert result.remaining_budget_seconds == 1392.0
    assert result.actual_percent == pytest.approx(100 * (1 - 1200 / 2_592_000))
    assert result.budget_remaining_percent == pytest.approx(100 * 1392 / 2592)
    assert (result.status, result.breached_at) == ("ok", None)
    assert len(result.burn_alerts) == 3 and not any(a.firing for a in result.burn_alerts), "November is over"


def test_burn_alerts_stop_when_a_fixed_window_ends_though_the_service_stays_down():
    window = (utc(2026, 11, 1), utc(2026, 11, 8))
    timeline = [StatusChange(utc(2026, 11, 7, 23), "down")]
    last_hour = availability(timeline, window=window, now=utc(2026, 11, 7, 23, 30), target_percent=99.9,
                             calendar=CAL)
    assert {(a.severity, a.threshold) for a in last_hour.burn_alerts if a.firing} == {
        ("page", 14.4), ("page", 6), ("ticket", 1)}
    after = availability(timeline, window=window, now=utc(2026, 11, 8, 0, 30), target_percent=99.9, calendar=CAL)
    assert [(a.severity, a.threshold, a.firing) for a in after.burn_alerts] == [
        ("page", 14.4, False), ("page", 6, False), ("ticket", 1, False)]
    at_the_end = availability(timeline, window=window, now=window[1], target_percent=99.9, calendar=CAL)
    assert [(a.long_rate, a.short_rate) for a in after.burn_alerts] == [
        (a.long_rate, a.short_rate) for a in at_the_end.burn_alerts], "the rates as they were at the end"


def test_outage_inside_maintenance_is_excluded_from_downtime_and_counted_time():
    maintenance = [(utc(2026, 11, 10, 2), utc(2026, 11, 10, 4))]
    timeline = [*outage(utc(2026, 11, 5, 10), utc(2026, 11, 5, 10, 20)),
                *outage(utc(2026, 11, 10, 2, 30), utc(2026, 11, 10, 3, 30))]
    result = availability(timeline, window=NOVEMBER, now=utc(2026, 12, 2), target_percent=99.9, calendar=CAL,
                          maintenance=maintenance)
    assert result.total_counted_seconds == 30 * 86400 - 7200
    assert result.allowed_downtime_seconds == pytest.approx(2584.8)
    assert result.downtime_seconds == 1200.0
    assert result.status == "ok"

    counted = availability(timeline, window=NOVEMBER, now=utc(2026, 12, 2), target_percent=99.9, calendar=CAL,
                           maintenance=maintenance, exclude_maintenance=False)
    assert counted.downtime_seconds == 4800.0
    assert counted.status == "breached"
    # 1200 s in the first outage, then 1392 s more into the second: 02:53:12 used it all up.
    assert counted.breached_at == utc(2026, 11, 10, 2, 53, 12) + US


def test_degraded_counts_as_up_but_is_reported():
    timeline = outage(utc(2026, 11, 5, 10), utc(2026, 11, 5, 11), status="degraded")
    result = availability(timeline, window=NOVEMBER, now=utc(2026, 11, 20), target_percent=99.9, calendar=CAL)
    assert (result.downtime_seconds, result.degraded_seconds) == (0.0, 3600.0)
    assert result.actual_percent == 100.0
    assert result.status == "ok"


def test_nothing_counted_yet_has_no_actual_percent():
    result = availability([], window=NOVEMBER, now=utc(2026, 10, 20), target_percent=99.9, calendar=CAL)
    assert result.counted_seconds_so_far == 0.0
    assert result.actual_percent is None
    assert result.status == "ok"


def test_breached_as_soon_as_the_target_becomes_impossible():
    timeline = [StatusChange(utc(2026, 11, 5, 10), "down")]
    at_limit = availability(timeline, window=NOVEMBER, now=utc(2026, 11, 5, 10, 43, 12), target_percent=99.9,
                            calendar=CAL)
    assert at_limit.remaining_budget_seconds == 0.0
    assert at_limit.status == "at_risk"  # the target can still just be met
    assert at_limit.exhausted_at_if_down_continues == utc(2026, 11, 5, 10, 43, 12) + US

    after = availability(timeline, window=NOVEMBER, now=utc(2026, 11, 5, 11), target_percent=99.9, calendar=CAL)
    assert after.status == "breached"
    assert after.breached_at == utc(2026, 11, 5, 10, 43, 12) + US
    assert after.exhausted_at_if_down_continues is None


def test_exhaustion_instant_skips_maintenance_and_is_when_the_breach_is_seen():
    maintenance = [(utc(2026, 11, 5, 10, 30), utc(2026, 11, 5, 11, 30))]
    timeline = [StatusChange(utc(2026, 11, 5, 10), "down")]
    kwargs = dict(window=NOVEMBER, target_percent=99.9, calendar=CAL, maintenance=maintenance)
    result = availability(timeline, now=utc(2026, 11, 5, 10, 20), **kwargs)
    # Allowance 0.1% of 30 days less 1 h = 2588.4 s; 1800 s are down by 10:30, the rest 788.4 s after 11:30.
    assert result.allowed_downtime_seconds == pytest.approx(2588.4)
    exhausted = utc(2026, 11, 5, 11, 43, 8, 400_001)
    assert result.exhausted_at_if_down_continues == exhausted

    # A durable timer firing at that instant sees the breach, at that very instant.
    fired = availability(timeline, now=exhausted, **kwargs)
    assert (fired.status, fired.breached_at) == ("breached", exhausted)
    just_before = availability(timeline, now=exhausted - US, **kwargs)
    assert just_before.status != "breached"


def test_exhaustion_follows_business_hours():
    office = business_hours("Europe/Berlin")
    week = window_at(parse_window("calendar_week"), "Europe/Berlin", utc(2026, 11, 25, 12))
    assert week == (utc(2026, 11, 22, 23), utc(2026, 11, 29, 23))
    # Down since Tuesday 16:50 Berlin (15:50 UTC); 40 office hours at 99% allow 24 minutes.
    timeline = [StatusChange(utc(2026, 11, 24, 15, 50), "down")]
    result = availability(timeline, window=week, now=utc(2026, 11, 24, 15, 55), target_percent=99, calendar=office)
    assert result.total_counted_seconds == 40 * 3600
    assert result.allowed_downtime_seconds == 1440.0
    assert result.downtime_seconds == 300.0
    # 5 more minutes until 17:00, then 14 minutes on Wednesday from 09:00 Berlin.
    assert result.exhausted_at_if_down_continues == utc(2026, 11, 25, 8, 14) + US

    recovered = [*timeline, StatusChange(utc(2026, 11, 25, 8, 10), "up")]
    final = availability(recovered, window=week, now=utc(2026, 11, 30), target_percent=99, calendar=office)
    assert final.downtime_seconds == 1200.0  # 16:50-17:00 and 09:00-09:10; the night does not count
    assert final.status == "ok"


def test_fixed_holiday_season_window():
    season = window_at(parse_window({"start": "2026-11-20T00:00:00Z", "end": "2027-01-06T00:00:00Z"}), "UTC",
                       utc(2026, 12, 20))
    timeline = outage(utc(2026, 12, 1, 10), utc(2026, 12, 1, 10, 30))
    result = availability(timeline, window=season, now=utc(2026, 12, 20), target_percent=99.95, calendar=CAL)
    assert result.total_counted_seconds == 47 * 86400
    assert result.allowed_downtime_seconds == pytest.approx(2030.4)
    assert result.remaining_budget_seconds == pytest.approx(230.4)
    assert not any(alert.firing for alert in result.burn_alerts)
    assert result.status == "at_risk"  # less than 25% of the budget left
    relaxed = availability(timeline, window=season, now=utc(2026, 12, 20), target_percent=99.95, calendar=CAL,
                           at_risk_below=0.1)
    assert relaxed.status == "ok"
    over = availability(timeline, window=season, now=utc(2027, 1, 7), target_percent=99.95, calendar=CAL)
    assert over.status == "ok"  # the window is over and the target was met


def test_rolling_p30d_window():
    now = utc(2026, 11, 24, 12)
    window = window_at(parse_window("P30D"), "UTC", now)
    timeline = [*outage(utc(2026, 10, 20), utc(2026, 10, 21)),  # slid out of the window
                *outage(utc(2026, 11, 20, 10), utc(2026, 11, 20, 10, 30))]
    result = availability(timeline, window=window, now=now, target_percent=99.9, calendar=CAL, rolling=True)
    assert result.counted_seconds_so_far == result.total_counted_seconds == 30 * 86400
    assert result.downtime_seconds == 1800.0
    assert result.status == "ok"


def test_rolling_exhaustion_accounts_for_old_downtime_sliding_out():
    now = utc(2026, 11, 24, 9)
    window = window_at(parse_window("P1D"), "UTC", now)
    # 10 minutes down yesterday from 09:01, and down again since 08:58: 720 s of the 864 s allowed at 99%.
    timeline = [*outage(utc(2026, 11, 23, 9, 1), utc(2026, 11, 23, 9, 11)),
                StatusChange(utc(2026, 11, 24, 8, 58), "down")]
    result = availability(timeline, window=window, now=now, target_percent=99, calendar=CAL, rolling=True)
    assert (result.downtime_seconds, result.allowed_downtime_seconds) == (720.0, 864.0)
    # From 09:01 to 09:11 yesterday's outage slides out as fast as today's grows (780 s), then 120 + x > 864.
    assert result.exhausted_at_if_down_continues == utc(2026, 11, 24, 9, 12, 24) + US
    later = window_at(parse_window("P1D"), "UTC", utc(2026, 11, 24, 9, 12, 24) + US)
    fired = availability(timeline, window=later, now=later[1], target_percent=99, calendar=CAL, rolling=True)
    assert fired.status == "breached"


changes = st.lists(st.tuples(st.integers(0, 48 * 60), st.sampled_from(["up", "degraded", "down"])), max_size=12)


@settings(max_examples=60, deadline=None)
@given(changes=changes, data=st.data())
def test_order_and_duplicates_do_not_change_the_result(changes, data):
    base = utc(2026, 11, 29)
    timeline = [StatusChange(base + timedelta(minutes=m), s) for m, s in changes]
    shuffled = data.draw(st.permutations(timeline + data.draw(st.lists(st.sampled_from(timeline), max_size=5))
                                         if timeline else []))
    kwargs = dict(window=NOVEMBER, now=utc(2026, 11, 30, 12), target_percent=99.5, calendar=CAL,
                  maintenance=[(utc(2026, 11, 29, 6), utc(2026, 11, 29, 7))])
    assert availability(shuffled, **kwargs) == availability(timeline, **kwargs)


def test_simultaneous_reports_resolve_to_the_worst_status_whatever_the_order():
    at = utc(2026, 11, 5, 10)
    one = [StatusChange(at, "up"), StatusChange(at, "down"), StatusChange(at + timedelta(minutes=10), "up")]
    assert StatusTimeline(one).status_at(at) == "down"
    assert StatusTimeline(reversed(one)).status_at(at) == "down"
    assert StatusTimeline(one).status_at(at - US) == "up"


# burn rates ----------------------------------------------------------------------------------

def test_full_outage_burns_a_three_nines_budget_at_1000x():
    now = utc(2026, 11, 24, 12)
    alerts = burn_rates([StatusChange(now - timedelta(days=4), "down")], now=now, target_percent=99.9,
                        window_length=THIRTY_DAYS, calendar=CAL)
    assert [(a.severity, a.threshold, a.long_window, a.short_window) for a in alerts] == [
        ("page", 14.4, timedelta(hours=1), timedelta(minutes=5)),
        ("page", 6, timedelta(hours=6), timedelta(minutes=30)),
        ("ticket", 1, timedelta(days=3), timedelta(hours=6)),
    ]
    assert all(a.long_rate == pytest.approx(1000) and a.short_rate == pytest.approx(1000) and a.firing
               for a in alerts)


def test_two_percent_of_the_last_hour_pages_only_if_the_last_five_minutes_also_burn():
    now = utc(2026, 11, 24, 12)
    recent = outage(now - timedelta(seconds=72), now + timedelta(hours=1))  # 72 s = 2% of an hour, ongoing
    page, slow_page, ticket = burn_rates(recent, now=now, target_percent=99.9, window_length=THIRTY_DAYS,
                                         calendar=CAL)
    assert page.long_rate == pytest.approx(20) and page.short_rate == pytest.approx(240)
    assert page.firing
    assert not slow_page.firing and not ticket.firing

    earlier = outage(now - timedelta(minutes=10, seconds=72), now - timedelta(minutes=10))
    page, _, _ = burn_rates(earlier, now=now, target_percent=99.9, window_length=THIRTY_DAYS, calendar=CAL)
    assert page.long_rate == pytest.approx(20) and page.short_rate == 0.0
    assert not page.firing


def test_workbook_table_scaled_to_a_seven_day_window():
    alerts = burn_rates([], now=utc(2026, 11, 24), target_percent=99.9, window_length=timedelta(days=7),
                        calendar=CAL)
    assert [(a.long_window, a.short_window) for a in alerts] == [
        (timedelta(minutes=14), timedelta(seconds=70)),
        (timedelta(minutes=84), timedelta(minutes=7)),
        (timedelta(hours=16, minutes=48), timedelta(minutes=84)),
    ]
    assert not any(a.firing or a.long_rate or a.short_rate for a in alerts)


def test_burn_rates_count_only_working_time():
    office = business_hours("UTC")
    # Monday 09:00 UTC: the last hour of working time was Friday 16:00-17:00, all of it down.
    timeline = outage(utc(2026, 11, 20, 16), utc(2026, 11, 20, 17, 30))
    page, _, _ = burn_rates(timeline, now=utc(2026, 11, 23, 9), target_percent=99.9, window_length=THIRTY_DAYS,
                            calendar=office)
    assert (page.long_rate, page.short_rate, page.firing) == (0.0, 0.0, False)  # nothing counted in the lookbacks
    page, _, _ = burn_rates(timeline, now=utc(2026, 11, 20, 17), target_percent=99.9, window_length=THIRTY_DAYS,
                            calendar=office)
    assert page.long_rate == pytest.approx(1000) and page.firing


def test_next_burn_change_when_an_outage_starts():
    start = utc(2026, 11, 24, 12)
    timeline = [StatusChange(start, "down")]
    # 14.4 x 0.1% of an hour = 51.84 s down (the 5-minute window needs only 4.32 s).
    change = next_burn_change(timeline, after=start, until=start + timedelta(hours=1), target_percent=99.9,
                              window_length=THIRTY_DAYS, calendar=CAL)
    assert change == start + timedelta(seconds=51.84)
    assert firing(timeline, change) == (True, False, False)
    assert firing(timeline, change - US) == (False, False, False)


def test_next_burn_change_when_a_recovered_outage_leaves_the_short_window():
    start = utc(2026, 11, 24, 12)
    timeline = outage(start, start + timedelta(minutes=10))
    after = start + timedelta(minutes=10)
    assert firing(timeline, after) == (True, True, True)
    change = next_burn_change(timeline, after=after, until=after + timedelta(days=4), target_percent=99.9,
                              window_length=THIRTY_DAYS, calendar=CAL)
    # The 5-minute window keeps burning >= 14.4 while at least 4.32 s of it are down.
    assert change == after + timedelta(seconds=295.68) + US
    assert firing(timeline, change) == (False, True, True)
    assert next_burn_change(timeline, after=after, until=change - US, target_percent=99.9,
                            window_length=THIRTY_DAYS, calendar=CAL) is None


@settings(max_examples=40, deadline=None)
@given(changes=changes, office=st.booleans(), horizon=st.integers(1, 72 * 60))
def test_next_burn_change_is_the_first_change(changes, office, horizon):
    calendar = business_hours("Europe/Berlin") if office else CAL
    base = utc(2026, 11, 23, 6)
    timeline = StatusTimeline(StatusChange(base + timedelta(minutes=m), s) for m, s in changes)
    after = base + timedelta(hours=24)
    until = after + timedelta(minutes=horizon)
    kwargs = dict(target_percent=99.5, window_length=timedelta(days=7), calendar=calendar)
    change = next_burn_change(timeline, after=after, until=until, **kwargs)
    initial = firing(timeline, after, calendar=calendar, target=99.5, window_length=timedelta(days=7))
    probes = [after + timedelta(minutes=m) for m in range(1, horizon + 1)]
    if change is None:
        assert all(firing(timeline, t, calendar=calendar, target=99.5, window_length=timedelta(days=7)) == initial
                   for t in probes)
        return
    assert after < change <= until
    assert firing(timeline, change, calendar=calendar, target=99.5, window_length=timedelta(days=7)) != initial
    assert all(firing(timeline, t, calendar=calendar, target=99.5, window_length=timedelta(days=7)) == initial
               for t in [*(p for p in probes if p < change), change - US])
