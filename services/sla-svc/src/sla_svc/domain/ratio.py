"""Ratio objectives: "80% of incidents resolved within 1 hour" per window, optionally per priority.

Each incident opened in the window is a ticket, decided when it is resolved within the time
(met) or when that time runs out (missed); both instants are event time, from the ticket's clock.
While the window runs, new tickets can still lift the ratio, so it is at risk, never breached:
at risk when the ratio of decided tickets is below target, or when even every open ticket met
would not reach it. Once the window has ended no ticket can join, and the objective is breached
at the first instant it can no longer be met: the window's end, or the later miss that settles it.
"""

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from fractions import Fraction

from .objectives import ObjectiveStatus, exact


@dataclass(frozen=True)
class Ticket:
    opened_at: datetime
    met_at: datetime | None = None
    missed_at: datetime | None = None
    due_at: datetime | None = None  # while undecided and running: when it is missed unless resolved


@dataclass(frozen=True)
class RatioResult:
    window_start: datetime
    window_end: datetime
    tickets: int
    met: int
    missed: int
    open: int
    actual_percent: float | None  # of the decided tickets
    best_percent: float | None  # if every open ticket is met
    status: ObjectiveStatus
    breached_at: datetime | None
    next_check: datetime | None  # when the status can next change without a new event


def ratio(tickets: Iterable[Ticket], *, target_percent: float, window: tuple[datetime, datetime],
          now: datetime) -> RatioResult:
    """The ratio objective over `window` as known at `now`."""
    start, end = window
    target = exact(target_percent, "target_percent")  # as written: 64.4, not the float just above it
    mine = [t for t in tickets if start <= t.opened_at < end and t.opened_at <= now]
    met = sum(1 for t in mine if t.met_at is not None and t.met_at <= now)
    missed_at = sorted(t.missed_at for t in mine if t.missed_at is not None and t.missed_at <= now)
    missed = len(missed_at)
    undecided = len(mine) - met - missed
    decided = met + missed
    actual = 100.0 * met / decided if decided else None
    best = 100.0 * (met + undecided) / len(mine) if mine else None
    breached_at = None
    if now >= end:
        # the n-th miss leaves at best (tickets - n) met: the first n for which that falls short settles it
        for n, at in enumerate(missed_at, start=1):
            if _short_of(len(mine) - n, len(mine), target):
                breached_at = max(at, end)
                break
    if breached_at is not None:
        status: ObjectiveStatus = "breached"
    elif (decided and _short_of(met, decided, target)) or (mine and _short_of(met + undecided, len(mine), target)):
        status = "at_risk"
    else:
        status = "ok"
    pending = [t.due_at for t in mine if t.due_at is not None and t.met_at is None and t.missed_at is None]
    if now < end:
        next_check = end
    elif breached_at is None and pending:
        next_check = min(pending)
    else:
        next_check = None
    return RatioResult(window_start=start, window_end=end, tickets=len(mine), met=met, missed=missed,
                       open=undecided, actual_percent=actual, best_percent=best, status=status,
                       breached_at=breached_at, next_check=next_check)


def _short_of(met: int, tickets: int, target: Fraction) -> bool:
    """Whether `met` of `tickets` falls short of the target percent, exactly: 161 of 250 is 64.4% and meets
    64.4% (in floats, 100 × 161 / 250 < 64.4 is true)."""
    return 100 * met < target * tickets
