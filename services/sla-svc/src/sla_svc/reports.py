"""SLA reports: reporting periods, and one report rendered as JSON, CSV or a self-contained HTML page.

Pure code: no I/O. A period is labelled like "2026-W47" (ISO week) or "2026-11" (month) and
runs from local midnight to local midnight in the agreement's IANA time zone, so a week that
contains a daylight-saving change lasts 167 or 169 hours.

Every share in the report is a percentage (0-100), as in the compliance endpoint and the
`itsm.sla.objective_*` events: `percent_met` of a target, `target` and `actual` of an objective.
"""

import csv
import html
import io
import re
from collections.abc import Iterable
from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator

from .domain.objectives import FIRST_YEAR, LAST_YEAR

PeriodKind = Literal["week", "month"]
Status = Literal["ok", "at_risk", "breached"]
Availability = Literal["up", "degraded", "down", "maintenance"]

_WEEK_LABEL = re.compile(r"(\d{4})-W(\d{2})")
_MONTH_LABEL = re.compile(r"(\d{4})-(\d{2})")


class InvalidPeriod(ValueError):
    pass


# Periods -------------------------------------------------------------------------------------


def parse_period(period: str, tz: str) -> tuple[datetime, datetime]:
    """The UTC instants at which a period starts and ends (exclusive), from local midnights in `tz`."""
    zone = _zone(tz)
    first_day, next_first_day, _ = _local_days(period)
    if first_day.year < FIRST_YEAR or next_first_day.year > LAST_YEAR:
        raise InvalidPeriod(f"period {period!r}: reports cover the years {FIRST_YEAR} to {LAST_YEAR}")
    try:
        return _local_midnight(first_day, zone), _local_midnight(next_first_day, zone)
    except OverflowError:
        raise InvalidPeriod(f"period {period!r} is out of range") from None


def period_of(at: datetime, kind: PeriodKind, tz: str) -> str:
    """The label of the week or month, in local time in `tz`, that contains the instant `at`."""
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError("period_of needs a timezone-aware datetime")
    return _label_of(at.astimezone(_zone(tz)).date(), kind)


def previous_period(period: str) -> str:
    """The label of the period just before `period`, of the same kind."""
    first_day, _, kind = _local_days(period)
    return _label_of(first_day - timedelta(days=1), kind)


def next_period(period: str) -> str:
    """The label of the period just after `period`, of the same kind."""
    _, next_first_day, kind = _local_days(period)
    return _label_of(next_first_day, kind)


def next_period_end(after: datetime, tz: str) -> datetime:
    """The first instant after `after` at which a week or a month ends, in local time in `tz`."""
    return min(parse_period(period_of(after, kind, tz), tz)[1] for kind in ("week", "month"))


def periods_ended(after: datetime, until: datetime, tz: str) -> list[str]:
    """The labels of the weeks and months that end in (after, until], in the order they end."""
    ended = []
    for kind in ("week", "month"):
        label = period_of(after, kind, tz)
        while (end := parse_period(label, tz)[1]) <= until:
            ended.append((end, label))
            label = next_period(label)
    return [label for _, label in sorted(ended)]


def _local_days(period: str) -> tuple[date, date, PeriodKind]:
    """The first local day of the period, the first day of the next one, and the period's kind."""
    if not isinstance(period, str):
        raise InvalidPeriod(f"a period is a string like 2026-W47 or 2026-11, not {period!r}")
    try:
        if week := _WEEK_LABEL.fullmatch(period):
            year, number = int(week[1]), int(week[2])
            weeks = _weeks_in(year)
            if not 1 <= number <= weeks:
                raise InvalidPeriod(f"period {period!r}: ISO year {year} has weeks W01 to W{weeks}")
            first_day = date.fromisocalendar(year, number, 1)
            return first_day, first_day + timedelta(days=7), "week"
        if month := _MONTH_LABEL.fullmatch(period):
            year, number = int(month[1]), int(month[2])
            if not 1 <= number <= 12:
                raise InvalidPeriod(f"period {period!r}: months run from 01 to 12")
            first_day = date(year, number, 1)
            return first_day, date(year + number // 12, number % 12 + 1, 1), "month"
    except (ValueError, OverflowError) as error:
        if isinstance(error, InvalidPeriod):
            raise
        raise InvalidPeriod(f"period {period!r} is out of range") from None
    raise InvalidPeriod(f"period {period!r} is neither an ISO week like 2026-W47 nor a month like 2026-11")


def _weeks_in(year: int) -> int:
    # 28 December always falls in the last ISO week of its year.
    return date(year, 12, 28).isocalendar().week


def _label_of(day: date, kind: str) -> str:
    if kind == "week":
        iso = day.isocalendar()
        return f"{iso.year:04d}-W{iso.week:02d}"
    if kind == "month":
        return f"{day.year:04d}-{day.month:02d}"
    raise ValueError(f"a period kind is 'week' or 'month', not {kind!r}")


def _local_midnight(day: date, zone: ZoneInfo) -> datetime:
    # fold=0 picks the earlier offset, which is the first instant of the day both when midnight
    # is repeated and when it is skipped by a daylight-saving change.
    return datetime.combine(day, time(0), tzinfo=zone).astimezone(UTC)


def _zone(tz: str) -> ZoneInfo:
    # Not InvalidPeriod: the zone comes from configuration, so a bad one is not the caller's period.
    try:
        return ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError, TypeError):
        raise ValueError(f"unknown IANA time zone {tz!r}") from None


# The report ----------------------------------------------------------------------------------


class _Strict(BaseModel):
    # Unknown keys are refused rather than dropped, so the JSON is always the whole report.
    model_config = ConfigDict(extra="forbid", frozen=True)


class AgreementRef(_Strict):
    id: str
    name: str
    service_id: str
    customer_id: str | None = None


class TargetResult(_Strict):
    metric: Literal["response", "resolution"]
    priority: int = Field(ge=1, le=5)
    within_seconds: float = Field(gt=0)
    met: int = Field(ge=0)
    breached: int = Field(ge=0)
    running: int = Field(ge=0)
    percent_met: float | None = Field(ge=0, le=100, description="Percentage of finished clocks met in time")
    status: Status
    goal_percent: float | None = Field(None, ge=0, le=100, description="Percentage the agreement aims for, if any")


class TimelineSegment(_Strict):
    start: AwareDatetime
    end: AwareDatetime
    status: Availability


class AvailabilityObjective(_Strict):
    id: str
    kind: Literal["availability"]
    target: float = Field(ge=0, le=100, description="Percent of the window the service must be up")
    actual: float | None = Field(ge=0, le=100)
    status: Status
    window_start: AwareDatetime
    window_end: AwareDatetime
    downtime_seconds: float
    allowed_downtime_seconds: float
    remaining_budget_seconds: float
    timeline: list[TimelineSegment] = []


class RatioObjective(_Strict):
    id: str
    kind: Literal["resolution_ratio"]
    target: float = Field(ge=0, le=100, description="Percent of incidents that must be resolved in time")
    actual: float | None = Field(ge=0, le=100)
    status: Status
    window_start: AwareDatetime
    window_end: AwareDatetime
    met: int = Field(ge=0)
    missed: int = Field(ge=0)
    pending: int = Field(ge=0)


Objective = Annotated[AvailabilityObjective | RatioObjective, Field(discriminator="kind")]


class Breach(_Strict):
    kind: Literal["clock", "objective"]
    id: str
    incident_id: str | None = None
    metric: str | None = None
    priority: int | None = None
    at: AwareDatetime


class Report(_Strict):
    """The SLA report of one agreement over one period."""

    agreement: AgreementRef
    period: str
    period_start: AwareDatetime
    period_end: AwareDatetime
    generated_at: AwareDatetime
    status: Status
    targets: list[TargetResult]
    objectives: list[Objective]
    breaches: list[Breach]
    incidents: int = Field(ge=0)
    mtta_seconds: float | None
    mttr_seconds: float | None

    @field_validator("period")
    @classmethod
    def _is_a_period(cls, value: str) -> str:
        _local_days(value)
        return value


# Rendering -----------------------------------------------------------------------------------

MEDIA_TYPES = {"json": "application/json", "csv": "text/csv", "html": "text/html"}


def render(report: Report | dict[str, Any], fmt: str) -> tuple[str, str]:
    """The report as (body, media type) in `fmt`: "json", "csv" or "html"."""
    if fmt not in MEDIA_TYPES:
        raise ValueError(f"unknown report format {fmt!r}; expected one of {', '.join(MEDIA_TYPES)}")
    model = report if isinstance(report, Report) else Report.model_validate(report)
    body = {"json": _json, "csv": _csv, "html": _html}[fmt](model)
    return body, MEDIA_TYPES[fmt]


def _json(report: Report) -> str:
    return report.model_dump_json(indent=2)


# CSV: one rectangular table, so spreadsheets and csv.DictReader read it as is; the `section`
# column says which part of the report a row comes from and which columns it fills.
CSV_COLUMNS = (
    "section", "id", "kind", "metric", "priority", "incident_id", "within_seconds", "target", "actual",
    "percent_met", "goal_percent", "met", "breached", "running", "missed", "pending", "downtime_seconds",
    "allowed_downtime_seconds", "remaining_budget_seconds", "start", "end", "at", "status",
)


def _csv(report: Report) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=CSV_COLUMNS, restval="")
    writer.writeheader()
    writer.writerows({key: _csv_value(value) for key, value in row.items()} for row in _csv_rows(report))
    return buffer.getvalue()


def _csv_rows(report: Report) -> Iterable[dict[str, Any]]:
    for target in report.targets:
        yield {"section": "targets", **target.model_dump()}
    for objective in report.objectives:
        row = objective.model_dump(exclude={"timeline", "window_start", "window_end"})
        yield {"section": "objectives", **row, "start": objective.window_start, "end": objective.window_end}
    for objective in report.objectives:
        if isinstance(objective, AvailabilityObjective):
            for segment in objective.timeline:
                yield {"section": "timeline", "id": objective.id, "start": segment.start, "end": segment.end,
                       "status": segment.status}
    for breach in report.breaches:
        yield {"section": "breaches", **breach.model_dump()}


def _csv_value(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)


# HTML ----------------------------------------------------------------------------------------

AVAILABILITY_COLOURS = {"up": "#2e7d32", "degraded": "#f9a825", "down": "#c62828", "maintenance": "#5c6bc0"}
STATUS_COLOURS = {"ok": "#2e7d32", "at_risk": "#f9a825", "breached": "#c62828"}
_NO_DATA = "#e0e0e0"

_CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #212121;
       max-width: 980px; margin: 2rem auto; padding: 0 1rem; line-height: 1.4; }
h1 { margin-bottom: .2rem; } h2 { margin-top: 2rem; border-bottom: 1px solid #ddd; padding-bottom: .2rem; }
.meta { color: #555; margin: .2rem 0; }
.badge { display: inline-block; padding: .1rem .6rem; border-radius: 1rem; color: #fff; font-weight: 600; }
.badge.ok { background: #2e7d32; } .badge.at_risk { background: #f9a825; color: #212121; }
.badge.breached { background: #c62828; }
table { border-collapse: collapse; width: 100%; margin: .5rem 0; font-size: .92rem; }
th, td { text-align: left; padding: .3rem .5rem; border-bottom: 1px solid #eee; }
th { background: #fafafa; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
dl.summary { display: grid; grid-template-columns: max-content auto; gap: .2rem 1rem; }
dl.summary dt { color: #555; } dl.summary dd { margin: 0; font-weight: 600; }
svg { max-width: 100%; height: auto; font-size: 12px; }
.empty { color: #777; font-style: italic; }
@media print { body { margin: 0; max-width: none; } }
"""


def _html(report: Report) -> str:
    agreement = report.agreement
    title = f"SLA report: {agreement.name}, {report.period}"
    customer = f" &middot; customer {_e(agreement.customer_id)}" if agreement.customer_id else ""
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en">',
        '<head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{_e(title)}</title><style>{_CSS}</style></head>",
        "<body>",
        f"<h1>{_e(agreement.name)} <span class=\"badge {_e(report.status)}\">{_e(_words(report.status))}</span></h1>",
        f'<p class="meta">Agreement {_e(agreement.id)} &middot; service {_e(agreement.service_id)}{customer}</p>',
        f'<p class="meta">Period {_e(report.period)}: {_e(_when(report.period_start))} to '
        f"{_e(_when(report.period_end))} &middot; generated {_e(_when(report.generated_at))}</p>",
        '<h2>Summary</h2><dl class="summary">',
        f"<dt>Incidents</dt><dd>{report.incidents}</dd>",
        f"<dt>Mean time to acknowledge</dt><dd>{_e(format_duration(report.mtta_seconds))}</dd>",
        f"<dt>Mean time to resolve</dt><dd>{_e(format_duration(report.mttr_seconds))}</dd>",
        f"<dt>Breaches</dt><dd>{len(report.breaches)}</dd></dl>",
        "<h2>Targets</h2>",
        _targets_chart(report),
        _targets_table(report),
        "<h2>Objectives</h2>",
        _timeline_chart(report),
        _objectives_table(report),
        "<h2>Breaches</h2>",
        _breaches_table(report),
        "</body></html>",
    ]
    return "\n".join(parts) + "\n"


def _targets_table(report: Report) -> str:
    if not report.targets:
        return '<p class="empty">This agreement sets no targets.</p>'
    rows = "".join(
        f"<tr><td>{_e(t.metric.capitalize())}</td><td>P{t.priority}</td><td>{_e(format_duration(t.within_seconds))}</td>"
        f'<td class="num">{t.met}</td><td class="num">{t.breached}</td><td class="num">{t.running}</td>'
        f'<td class="num">{_e(_percent(t.percent_met))}</td><td class="num">{_e(_percent(t.goal_percent))}</td>'
        f"<td>{_badge(t.status)}</td></tr>"
        for t in report.targets)
    return ("<table><thead><tr><th>Metric</th><th>Priority</th><th>Within</th><th>Met</th><th>Breached</th>"
            f"<th>Running</th><th>Met %</th><th>Goal %</th><th>Status</th></tr></thead><tbody>{rows}</tbody></table>")


def _objectives_table(report: Report) -> str:
    if not report.objectives:
        return '<p class="empty">This agreement sets no objectives.</p>'
    rows = []
    for o in report.objectives:
        if isinstance(o, AvailabilityObjective):
            details = (f"down {format_duration(o.downtime_seconds)} of {format_duration(o.allowed_downtime_seconds)}"
                       f" allowed; budget left {format_duration(o.remaining_budget_seconds)}")
        else:
            details = f"{o.met} met, {o.missed} missed, {o.pending} pending"
        rows.append(
            f"<tr><td>{_e(o.id)}</td><td>{_e(_words(o.kind))}</td><td class=\"num\">{_e(_percent(o.target))}</td>"
            f'<td class="num">{_e(_percent(o.actual))}</td><td>{_badge(o.status)}</td>'
            f"<td>{_e(_when(o.window_start))} to {_e(_when(o.window_end))}</td><td>{_e(details)}</td></tr>")
    return ("<table><thead><tr><th>Objective</th><th>Kind</th><th>Target</th><th>Actual</th><th>Status</th>"
            f"<th>Window</th><th>Details</th></tr></thead><tbody>{''.join(rows)}</tbody></table>")


def _breaches_table(report: Report) -> str:
    if not report.breaches:
        return '<p class="empty">No breaches in this period.</p>'
    rows = "".join(
        f"<tr><td>{_e(_when(b.at))}</td><td>{_e(b.kind)}</td><td>{_e(b.id)}</td><td>{_e(b.incident_id or '')}</td>"
        f"<td>{_e(b.metric or '')}</td><td>{'' if b.priority is None else f'P{b.priority}'}</td></tr>"
        for b in sorted(report.breaches, key=lambda b: b.at))
    return ("<table><thead><tr><th>At</th><th>Kind</th><th>ID</th><th>Incident</th><th>Metric</th>"
            f"<th>Priority</th></tr></thead><tbody>{rows}</tbody></table>")


# Charts: inline SVG without an xmlns (HTML5 does not need one), so the page references nothing.
_LABEL_WIDTH = 200
_TRACK_WIDTH = 680
_CHART_WIDTH = _LABEL_WIDTH + _TRACK_WIDTH + 60
_ROW = 24
_ROW_GAP = 10


def _timeline_chart(report: Report) -> str:
    """One bar per availability objective across the period, coloured by status over time."""
    objectives = [o for o in report.objectives if isinstance(o, AvailabilityObjective)]
    if not objectives:
        return ""
    start, end = report.period_start, report.period_end
    span = (end - start).total_seconds()
    top = 24
    height = top + len(objectives) * (_ROW + _ROW_GAP) + 34
    out = [f'<svg class="timeline" viewBox="0 0 {_CHART_WIDTH} {height}" width="{_CHART_WIDTH}" height="{height}" '
           f'role="img" aria-label="Availability timeline"><title>Availability over {_e(report.period)}</title>']
    out.append(_legend({**AVAILABILITY_COLOURS, "no data": _NO_DATA}, y=12))
    for row, objective in enumerate(objectives):
        y = top + row * (_ROW + _ROW_GAP)
        out.append(f'<text x="{_LABEL_WIDTH - 8}" y="{y + _ROW / 2 + 4}" text-anchor="end">{_e(objective.id)}</text>')
        out.append(f'<rect x="{_LABEL_WIDTH}" y="{y}" width="{_TRACK_WIDTH}" height="{_ROW}" fill="{_NO_DATA}">'
                   "<title>no data</title></rect>")
        # Up first, so the others, widened to stay visible, are drawn over it.
        for segment in sorted(objective.timeline, key=lambda s: (s.status != "up", s.start)):
            seg_start, seg_end = max(segment.start, start), min(segment.end, end)
            if seg_end <= seg_start or span <= 0:
                continue
            x = _LABEL_WIDTH + (seg_start - start).total_seconds() / span * _TRACK_WIDTH
            width = (seg_end - seg_start).total_seconds() / span * _TRACK_WIDTH
            if segment.status != "up":
                width = max(width, 1.0)  # a one-minute outage in a month is still worth seeing
            tip = f"{segment.status}: {_when(segment.start)} to {_when(segment.end)}" \
                  f" ({format_duration((segment.end - segment.start).total_seconds())})"
            out.append(f'<rect class="segment" data-status="{segment.status}" x="{x:.2f}" y="{y}" width="{width:.2f}" '
                       f'height="{_ROW}" fill="{AVAILABILITY_COLOURS[segment.status]}"><title>{_e(tip)}</title></rect>')
    out.append(_time_axis(report, y=top + len(objectives) * (_ROW + _ROW_GAP)))
    out.append("</svg>")
    return "".join(out)


def _time_axis(report: Report, *, y: int) -> str:
    # Ticks at local midnights, placed as if every day lasted 24 h: an hour of daylight saving
    # moves a tick by well under a pixel.
    first_day, next_first_day, kind = _local_days(report.period)
    days = (next_first_day - first_day).days
    step = 1 if kind == "week" else 7
    out = []
    for offset in range(0, days, step):
        x = _LABEL_WIDTH + offset / days * _TRACK_WIDTH
        day = first_day + timedelta(days=offset)
        label = day.strftime("%a %d") if kind == "week" else day.strftime("%d %b")
        out.append(f'<line x1="{x:.2f}" y1="{y - 6}" x2="{x:.2f}" y2="{y + 2}" stroke="#757575"/>'
                   f'<text x="{x + 3:.2f}" y="{y + 14}" fill="#555">{_e(label)}</text>')
    return "".join(out)


def _targets_chart(report: Report) -> str:
    """A horizontal bar per target: percent met, with the goal marked."""
    if not report.targets:
        return ""
    goal_fallback = next((o.target for o in report.objectives if isinstance(o, RatioObjective)), None)
    top = 10
    height = top + len(report.targets) * (_ROW + _ROW_GAP) + 24
    out = [f'<svg class="targets" viewBox="0 0 {_CHART_WIDTH} {height}" width="{_CHART_WIDTH}" height="{height}" '
           'role="img" aria-label="Percent met per target"><title>Percent of clocks met per target</title>']
    for row, target in enumerate(report.targets):
        y = top + row * (_ROW + _ROW_GAP)
        label = f"{target.metric.capitalize()} P{target.priority} ({format_duration(target.within_seconds)})"
        out.append(f'<text x="{_LABEL_WIDTH - 8}" y="{y + _ROW / 2 + 4}" text-anchor="end">{_e(label)}</text>')
        out.append(f'<rect x="{_LABEL_WIDTH}" y="{y}" width="{_TRACK_WIDTH}" height="{_ROW}" fill="#f5f5f5"/>')
        if target.percent_met is None:
            out.append(f'<text x="{_LABEL_WIDTH + 6}" y="{y + _ROW / 2 + 4}" fill="#777">no finished clocks</text>')
        else:
            width = target.percent_met / 100 * _TRACK_WIDTH
            out.append(f'<rect class="bar" data-status="{target.status}" x="{_LABEL_WIDTH}" y="{y}" '
                       f'width="{width:.2f}" height="{_ROW}" fill="{STATUS_COLOURS[target.status]}">'
                       f"<title>{_e(label)}: {_e(_percent(target.percent_met))} met</title></rect>")
            out.append(f'<text x="{_LABEL_WIDTH + _TRACK_WIDTH + 6}" y="{y + _ROW / 2 + 4}">'
                       f"{_e(_percent(target.percent_met))}</text>")
        goal = target.goal_percent if target.goal_percent is not None else goal_fallback
        if goal is not None:
            x = _LABEL_WIDTH + goal / 100 * _TRACK_WIDTH
            out.append(f'<line class="goal" x1="{x:.2f}" y1="{y - 3}" x2="{x:.2f}" y2="{y + _ROW + 3}" '
                       f'stroke="#212121" stroke-width="2"><title>goal {_e(_percent(goal))}</title></line>')
    axis_y = top + len(report.targets) * (_ROW + _ROW_GAP)
    for tick in (0, 25, 50, 75, 100):
        x = _LABEL_WIDTH + tick / 100 * _TRACK_WIDTH
        out.append(f'<text x="{x:.2f}" y="{axis_y + 10}" text-anchor="middle" fill="#555">{tick} %</text>')
    out.append("</svg>")
    return "".join(out)


def _legend(colours: dict[str, str], *, y: int) -> str:
    out, x = [], _LABEL_WIDTH
    for name, colour in colours.items():
        out.append(f'<rect x="{x}" y="{y - 9}" width="10" height="10" fill="{colour}"/>'
                   f'<text x="{x + 14}" y="{y}">{_e(name)}</text>')
        x += 110
    return "".join(out)


# Formatting ----------------------------------------------------------------------------------

_UNITS = (("d", 86400), ("h", 3600), ("min", 60), ("s", 1))


def format_duration(seconds: float | None) -> str:
    """A duration for people, to its two largest units: "43 min 12 s", "2 h", "3 d 4 h"."""
    if seconds is None:
        return "\u2014"
    if seconds < 0:
        return "-" + format_duration(-seconds)
    if 0 < seconds < 0.5:
        return "< 1 s"
    remaining = round(seconds)
    if remaining == 0:
        return "0 s"
    amounts = []
    for unit, size in _UNITS:
        amount, remaining = divmod(remaining, size)
        amounts.append((amount, unit))
    first = next(i for i, (amount, _) in enumerate(amounts) if amount)
    return " ".join(f"{amount} {unit}" for amount, unit in amounts[first:first + 2] if amount)


def _percent(value: float | None) -> str:
    if value is None:
        return "\u2014"
    return f"{value:.3f}".rstrip("0").rstrip(".") + " %"


def _when(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def _words(value: str) -> str:
    return value.replace("_", " ")


def _badge(status: str) -> str:
    return f'<span class="badge {_e(status)}">{_e(_words(status))}</span>'


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)
