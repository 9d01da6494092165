"""Reporting periods and report rendering: no I/O. Expected instants are worked out by hand in comments.

2026: Jan 1 is a Thursday, so 2026 has 53 ISO weeks (W53 = Mon Dec 28 to Mon Jan 4 2027) and
2027 has 52. Europe/Berlin switches to CEST on Sun Mar 29 and back to CET on Sun Oct 25;
America/Los_Angeles goes back to PST on Sun Nov 1 at 02:00.
"""

import csv
import io
import json
import re
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from pydantic import ValidationError
from sla_svc.period_close import announced_status
from sla_svc.reports import (
    AVAILABILITY_COLOURS,
    InvalidPeriod,
    Report,
    format_duration,
    next_period,
    next_period_end,
    parse_period,
    period_of,
    periods_ended,
    previous_period,
    render,
)

HOUR = timedelta(hours=1)


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


# Periods -------------------------------------------------------------------------------------


def test_iso_week_runs_from_local_monday_midnight_to_the_next():
    # W47 of 2026 is Mon Nov 16 to Mon Nov 23; Berlin is UTC+1 in November.
    assert parse_period("2026-W47", "Europe/Berlin") == (utc(2026, 11, 15, 23), utc(2026, 11, 22, 23))
    assert parse_period("2026-W47", "UTC") == (utc(2026, 11, 16), utc(2026, 11, 23))


def test_week_53_exists_in_2026_and_spans_the_new_year():
    assert parse_period("2026-W53", "UTC") == (utc(2026, 12, 28), utc(2027, 1, 4))
    assert period_of(utc(2027, 1, 3, 12), "week", "UTC") == "2026-W53"
    assert next_period("2026-W53") == "2027-W01"
    assert previous_period("2027-W01") == "2026-W53"


def test_week_53_does_not_exist_in_2027():
    with pytest.raises(InvalidPeriod, match="W52"):
        parse_period("2027-W53", "UTC")


@pytest.mark.parametrize(("period", "hours"), [("2026-W43", 169), ("2026-W13", 167), ("2026-W47", 168)])
def test_a_week_with_a_daylight_saving_change_is_an_hour_longer_or_shorter(period, hours):
    # W43 (Oct 19-26) contains Sun Oct 25, when Berlin gains an hour; W13 contains Sun Mar 29.
    start, end = parse_period(period, "Europe/Berlin")
    assert end - start == hours * HOUR


def test_a_week_whose_monday_midnight_is_skipped_starts_at_the_first_instant_of_that_monday():
    # Tehran jumped from Sun Mar 21 2010 24:00 (UTC+3:30) to Mon 01:00 (UTC+4:30): 00:00 never happened.
    start, end = parse_period("2010-W12", "Asia/Tehran")
    assert start == datetime(2010, 3, 21, 20, 30, tzinfo=UTC)
    assert end - start == 167 * HOUR


def test_month_boundaries_are_local_midnights():
    # Nov 1 00:00 is still PDT (UTC-7); Dec 1 00:00 is PST (UTC-8).
    assert parse_period("2026-11", "America/Los_Angeles") == (utc(2026, 11, 1, 7), utc(2026, 12, 1, 8))
    # Tokyo (UTC+9, no DST): January starts on Dec 31 at 15:00 UTC.
    assert parse_period("2026-01", "Asia/Tokyo") == (utc(2025, 12, 31, 15), utc(2026, 1, 31, 15))
    assert period_of(utc(2025, 12, 31, 15, 30), "month", "Asia/Tokyo") == "2026-01"
    assert period_of(utc(2025, 12, 31, 15, 30), "month", "UTC") == "2025-12"


def test_period_of_uses_the_local_week():
    # Sun Nov 22 23:30 UTC is already Mon Nov 23 00:30 in Berlin: week 48 there, 47 in UTC.
    at = utc(2026, 11, 22, 23, 30)
    assert period_of(at, "week", "Europe/Berlin") == "2026-W48"
    assert period_of(at, "week", "UTC") == "2026-W47"
    # ISO week-years differ from calendar years at the edges: Mon Dec 29 2025 is in 2026-W01.
    assert period_of(utc(2025, 12, 29, 12), "week", "UTC") == "2026-W01"


@pytest.mark.parametrize("tz", ["UTC", "Europe/Berlin", "America/Los_Angeles", "America/Santiago",
                                "Pacific/Kiritimati", "Pacific/Pago_Pago", "Australia/Lord_Howe"])
def test_every_period_of_2026_tiles_time_and_contains_its_own_instants(tz):
    labels = [f"2026-W{week:02d}" for week in range(1, 54)] + [f"2026-{month:02d}" for month in range(1, 13)]
    for label in labels:
        start, end = parse_period(label, tz)
        kind = "week" if "W" in label else "month"
        assert period_of(start, kind, tz) == label
        assert period_of(end - timedelta(microseconds=1), kind, tz) == label
        assert period_of(end, kind, tz) == next_period(label)
        assert parse_period(next_period(label), tz)[0] == end
        assert period_of(start - timedelta(microseconds=1), kind, tz) == previous_period(label)


def test_previous_and_next_months_cross_years():
    assert previous_period("2026-01") == "2025-12"
    assert next_period("2026-12") == "2027-01"
    assert previous_period("2026-W01") == "2025-W52"


@pytest.mark.parametrize("period", [
    "2026-W54", "2026-W00", "2026-13", "2026-00", "last week", "", "2026-W5", "2026-1", "26-11",
    "2026-11-01", " 2026-11", "2026-w47", "2026-W47-1", "9999-12", "0000-01", "0001-01",
])
def test_anything_but_a_week_or_month_label_is_an_invalid_period(period):
    with pytest.raises(InvalidPeriod, match=re.escape(repr(period))):
        parse_period(period, "Europe/Berlin")


def test_an_unknown_time_zone_is_refused_but_not_blamed_on_the_period():
    with pytest.raises(ValueError, match="time zone") as caught:
        parse_period("2026-W47", "Mars/Olympus_Mons")
    assert not isinstance(caught.value, InvalidPeriod)


def test_period_of_refuses_naive_datetimes_and_unknown_kinds():
    with pytest.raises(ValueError, match="aware"):
        period_of(datetime(2026, 11, 16), "week", "UTC")
    with pytest.raises(ValueError, match="kind"):
        period_of(utc(2026, 11, 16), "quarter", "UTC")  # type: ignore[arg-type]


@pytest.mark.parametrize(("after", "end"), [
    (utc(2026, 11, 18, 12), utc(2026, 11, 23)),  # Wed of W47: the week ends before November
    (utc(2026, 11, 23), utc(2026, 11, 30)),  # at a week's end, the next one
    (utc(2026, 11, 30, 12), utc(2026, 12, 1)),  # Mon Nov 30: November ends before W49
])
def test_next_period_end_is_the_earliest_week_or_month_end_after_the_instant(after, end):
    assert next_period_end(after, "UTC") == end


def test_next_period_end_is_a_local_midnight():
    assert next_period_end(utc(2026, 11, 18, 12), "Europe/Berlin") == utc(2026, 11, 22, 23)


def test_periods_ended_lists_weeks_and_months_ending_in_a_half_open_interval_in_end_order():
    assert periods_ended(utc(2026, 11, 18), utc(2026, 12, 7), "UTC") == ["2026-W47", "2026-W48", "2026-11", "2026-W49"]
    assert periods_ended(utc(2026, 11, 18), utc(2026, 11, 23), "UTC") == ["2026-W47"], "the end is included"
    assert periods_ended(utc(2026, 11, 23), utc(2026, 11, 29), "UTC") == [], "the start is not"
    assert periods_ended(utc(2026, 11, 18), utc(2026, 11, 22, 23), "Europe/Berlin") == ["2026-W47"]


def test_a_week_and_a_month_ending_together_both_end():
    # Mon Jun 1 2026 00:00 ends both May and W22.
    assert periods_ended(utc(2026, 5, 31), utc(2026, 6, 1), "UTC") == ["2026-05", "2026-W22"]


# Report factories ----------------------------------------------------------------------------

WEEK_START, WEEK_END = utc(2026, 11, 16), utc(2026, 11, 23)


def availability(**overrides) -> dict:
    objective = {
        "id": "avail-eu", "kind": "availability", "target": 99.9, "actual": 85.714, "status": "breached",
        "window_start": WEEK_START, "window_end": WEEK_END,
        "downtime_seconds": 86400.0, "allowed_downtime_seconds": 604.8, "remaining_budget_seconds": -85795.2,
        "timeline": [
            {"start": WEEK_START, "end": utc(2026, 11, 18), "status": "up"},
            {"start": utc(2026, 11, 18), "end": utc(2026, 11, 19), "status": "down"},
            {"start": utc(2026, 11, 19), "end": utc(2026, 11, 19, 2), "status": "maintenance"},
            {"start": utc(2026, 11, 19, 2), "end": WEEK_END, "status": "up"},
        ],
    }
    return objective | overrides


def ratio(**overrides) -> dict:
    objective = {"id": "resolve, in time", "kind": "resolution_ratio", "target": 95.0, "actual": 90.0,
                 "status": "breached", "window_start": WEEK_START, "window_end": WEEK_END,
                 "met": 9, "missed": 1, "pending": 2}
    return objective | overrides


def target(**overrides) -> dict:
    values = {"metric": "resolution", "priority": 1, "within_seconds": 14400.0, "met": 9, "breached": 1,
              "running": 2, "percent_met": 90.0, "status": "breached"}
    return values | overrides


def report(**overrides) -> dict:
    values = {
        "agreement": {"id": "gold", "name": "Gold", "service_id": "payments", "customer_id": "acme"},
        "period": "2026-W47", "period_start": WEEK_START, "period_end": WEEK_END,
        "generated_at": utc(2026, 11, 23, 0, 5),
        "status": "breached",
        "targets": [target(), target(metric="response", within_seconds=900.0, met=12, breached=0, running=0,
                                     percent_met=100.0, status="ok", goal_percent=99.0)],
        "objectives": [availability(), ratio()],
        "breaches": [
            {"kind": "clock", "id": "clk-1", "incident_id": "INC-7", "metric": "resolution", "priority": 1,
             "at": utc(2026, 11, 18, 9)},
            {"kind": "objective", "id": "avail-eu", "incident_id": None, "metric": None, "priority": None,
             "at": utc(2026, 11, 18, 0, 10)},
        ],
        "incidents": 12, "mtta_seconds": 2592.0, "mttr_seconds": 7500.0,
    }
    return values | overrides


# JSON ----------------------------------------------------------------------------------------


def test_json_is_a_faithful_round_trip_of_the_report():
    body, media_type = render(report(), "json")
    assert media_type == "application/json"
    loaded = json.loads(body)
    assert loaded["period_start"] == "2026-11-16T00:00:00Z"
    assert loaded["objectives"][0]["timeline"][1] == {"start": "2026-11-18T00:00:00Z",
                                                       "end": "2026-11-19T00:00:00Z", "status": "down"}
    assert loaded["breaches"][1]["incident_id"] is None
    assert Report.model_validate(loaded) == Report.model_validate(report())


def test_render_takes_a_report_model_or_a_dict_alike():
    for fmt in ("json", "csv", "html"):
        assert render(Report.model_validate(report()), fmt) == render(report(), fmt)


def test_a_report_with_unknown_keys_or_naive_datetimes_is_refused_not_silently_trimmed():
    with pytest.raises(ValidationError):
        render(report(surprise=1), "json")
    with pytest.raises(ValidationError):
        render(report(generated_at=datetime(2026, 11, 23)), "json")
    with pytest.raises(ValidationError):
        render(report(period="last week"), "json")


def test_an_unknown_format_is_refused():
    with pytest.raises(ValueError, match="pdf"):
        render(report(), "pdf")


# CSV -----------------------------------------------------------------------------------------


def test_csv_has_one_section_per_table_and_reads_back_with_the_csv_module():
    body, media_type = render(report(), "csv")
    assert media_type == "text/csv"
    rows = list(csv.DictReader(io.StringIO(body, newline="")))
    by_section: dict[str, list[dict]] = {}
    for row in rows:
        by_section.setdefault(row["section"], []).append(row)
    assert list(by_section) == ["targets", "objectives", "timeline", "breaches"]

    first_target = by_section["targets"][0]
    assert (first_target["metric"], int(first_target["priority"]), float(first_target["within_seconds"])) == \
        ("resolution", 1, 14400.0)
    assert float(first_target["percent_met"]) == 90.0 and first_target["status"] == "breached"
    assert first_target["goal_percent"] == "" and float(by_section["targets"][1]["goal_percent"]) == 99.0

    objectives = {row["id"]: row for row in by_section["objectives"]}
    assert set(objectives) == {"avail-eu", "resolve, in time"}  # the comma survives quoting
    assert float(objectives["avail-eu"]["remaining_budget_seconds"]) == -85795.2
    assert datetime.fromisoformat(objectives["avail-eu"]["start"]) == WEEK_START
    assert (objectives["resolve, in time"]["met"], objectives["resolve, in time"]["pending"]) == ("9", "2")

    assert [row["status"] for row in by_section["timeline"]] == ["up", "down", "maintenance", "up"]
    down = by_section["timeline"][1]
    assert datetime.fromisoformat(down["end"]) - datetime.fromisoformat(down["start"]) == timedelta(days=1)

    objective_breach = by_section["breaches"][1]
    assert objective_breach["incident_id"] == "" and objective_breach["kind"] == "objective"
    assert datetime.fromisoformat(objective_breach["at"]) == utc(2026, 11, 18, 0, 10)


# HTML ----------------------------------------------------------------------------------------


def hostile_report() -> dict:
    return report(agreement={"id": "gold", "name": "<script>alert(1)</script>", "service_id": "pay&<b>",
                             "customer_id": '"acme"'},
                  objectives=[availability(id="<img src=x onerror=alert(2)>"), ratio()])


def test_html_is_a_complete_page_with_inline_svg_charts():
    body, media_type = render(report(), "html")
    assert media_type == "text/html"
    assert body.startswith("<!DOCTYPE html>") and body.rstrip().endswith("</html>")
    assert "<style>" in body
    assert body.count("<svg") == 2
    assert 'class="timeline"' in body and 'class="targets"' in body


def test_html_escapes_every_user_provided_string():
    body, _ = render(hostile_report(), "html")
    assert "<script" not in body.lower()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in body
    assert "<img" not in body and "&lt;img src=x onerror=alert(2)&gt;" in body
    assert "pay&amp;&lt;b&gt;" in body and "&quot;acme&quot;" in body


def test_html_references_no_external_resource():
    body, _ = render(report(), "html")
    assert "http" not in body.lower()
    assert "<link" not in body and "src=" not in body and "url(" not in body


def test_timeline_draws_a_down_interval_in_red_at_its_place_in_the_period():
    body, _ = render(report(), "html")
    segments = re.findall(r'<rect class="segment" data-status="(\w+)" x="([\d.]+)" y="\d+" width="([\d.]+)" '
                          r'height="\d+" fill="(#[0-9a-f]{6})"', body)
    down = [s for s in segments if s[0] == "down"]
    assert len(down) == 1
    _, x, width, fill = down[0]
    assert fill == AVAILABILITY_COLOURS["down"]
    up_widths = [float(s[2]) for s in segments if s[0] == "up"]
    track = sum(up_widths) + float(width) + float(next(s[2] for s in segments if s[0] == "maintenance"))
    # Down from Wed 00:00 to Thu 00:00: the third seventh of the week.
    x0 = min(float(s[1]) for s in segments)
    assert float(width) == pytest.approx(track / 7, abs=0.05)
    assert float(x) - x0 == pytest.approx(2 * track / 7, abs=0.05)


def test_a_tiny_outage_stays_visible_on_a_month_long_timeline():
    month_start, month_end = utc(2026, 11, 1), utc(2026, 12, 1)
    blip = availability(window_start=month_start, window_end=month_end, timeline=[
        {"start": utc(2026, 11, 10), "end": utc(2026, 11, 10, 0, 1), "status": "down"}])
    body, _ = render(report(period="2026-11", period_start=month_start, period_end=month_end, objectives=[blip]),
                     "html")
    width = re.search(r'data-status="down" x="[\d.]+" y="\d+" width="([\d.]+)"', body)[1]
    assert float(width) >= 1.0


def test_target_bars_show_percent_met_against_the_goal():
    body, _ = render(report(), "html")
    assert re.findall(r'<rect class="bar" data-status="(\w+)"', body) == ["breached", "ok"]
    # The response target sets its own goal (99 %); the resolution one falls back to the ratio objective (95 %).
    assert "<title>goal 95 %</title>" in body and "<title>goal 99 %</title>" in body


def test_html_shows_durations_for_people():
    body, _ = render(report(), "html")
    assert "43 min 12 s" in body  # MTTA 2592 s
    assert "2 h 5 min" in body  # MTTR 7500 s


def test_an_empty_report_still_renders():
    body, _ = render(report(targets=[], objectives=[], breaches=[], incidents=0, mtta_seconds=None,
                            mttr_seconds=None, status="ok"), "html")
    assert "No breaches in this period." in body and "<svg" not in body


@pytest.mark.parametrize(("seconds", "text"), [
    (0, "0 s"), (0.2, "< 1 s"), (59.6, "1 min"), (2592, "43 min 12 s"), (3600, "1 h"), (3661, "1 h 1 min"),
    (90061, "1 d 1 h"), (-600, "-10 min"), (None, "\u2014"),
])
def test_format_duration(seconds, text):
    assert format_duration(seconds) == text


def test_report_dates_are_not_needed_to_be_utc():
    berlin = ZoneInfo("Europe/Berlin")
    local = report(generated_at=datetime.combine(date(2026, 11, 23), datetime.min.time(), tzinfo=berlin))
    assert json.loads(render(local, "json")[0])["generated_at"] == "2026-11-23T00:00:00+01:00"


# Status announced when a period closes -------------------------------------------------------


def test_a_closed_period_with_a_breach_is_announced_breached():
    assert announced_status(Report.model_validate(report())) == "breached"


def test_a_breach_in_the_period_counts_even_when_every_target_and_objective_is_ok():
    # a clock started in the previous period and breached in this one is listed but not counted in the targets
    ok = report(status="ok", targets=[target(breached=0, met=10, percent_met=100.0, status="ok")], objectives=[])
    assert announced_status(Report.model_validate(ok)) == "breached"


def test_a_period_without_breach_is_at_risk_when_short_of_a_goal_or_low_on_budget():
    def clean(**overrides) -> Report:
        return Report.model_validate(report(**{"status": "ok", "breaches": [], "targets": [], "objectives": []}
                                            | overrides))

    short = clean(targets=[target(breached=0, met=9, percent_met=90.0, status="ok", goal_percent=95.0)])
    low = clean(status="at_risk", objectives=[availability(status="at_risk", actual=99.92)])
    assert announced_status(short) == "at_risk" and announced_status(low) == "at_risk"
    assert announced_status(clean()) == "ok"
