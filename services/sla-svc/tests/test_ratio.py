"""Ratio objectives, worked by hand: no I/O."""

from datetime import UTC, datetime, timedelta

from sla_svc.domain.ratio import Ticket, ratio

MONDAY = datetime(2026, 11, 23, tzinfo=UTC)
WEEK = (MONDAY, MONDAY + timedelta(days=7))


def day(n: float) -> datetime:
    return MONDAY + timedelta(days=n)


def met(opened: float, at: float) -> Ticket:
    return Ticket(opened_at=day(opened), met_at=day(at))


def missed(opened: float, at: float) -> Ticket:
    return Ticket(opened_at=day(opened), missed_at=day(at))


def running(opened: float, due: float) -> Ticket:
    return Ticket(opened_at=day(opened), due_at=day(due))


def test_the_ratio_counts_decided_tickets_opened_in_the_window():
    tickets = [met(0, 0.1), met(1, 1.1), met(2, 2.1), missed(3, 3.1), running(4, 4.1),
               met(-1, 0.5), met(7, 7.1)]  # opened before and after the week: not this window's
    result = ratio(tickets, target_percent=80, window=WEEK, now=day(4.05))
    assert (result.tickets, result.met, result.missed, result.open) == (5, 3, 1, 1)
    assert result.actual_percent == 75.0 and result.best_percent == 80.0
    assert result.status == "at_risk", "3 of 4 decided is below 80%"
    assert result.next_check == WEEK[1], "while the week runs, new tickets can still save it"


def test_at_risk_when_even_every_open_ticket_met_would_not_reach_the_target():
    tickets = [met(0, 0.1), met(0, 0.2), met(0, 0.3), met(0, 0.4), missed(1, 1.1), running(2, 2.1)]
    early = ratio(tickets[:4], target_percent=80, window=WEEK, now=day(1))
    assert early.status == "ok" and early.actual_percent == 100.0
    assert ratio(tickets, target_percent=80, window=WEEK, now=day(2.05)).status == "ok", "4 of 5 met is 80%"
    tickets.append(missed(2, 2.2))
    result = ratio(tickets, target_percent=80, window=WEEK, now=day(2.3))
    assert result.best_percent == 100 * 5 / 7 and result.status == "at_risk" and result.breached_at is None


def test_breached_at_the_end_of_the_window_when_it_can_no_longer_be_met():
    tickets = [met(0, 0.1), missed(1, 1.1), missed(2, 2.1), met(3, 3.1)]
    before_end = ratio(tickets, target_percent=80, window=WEEK, now=day(6.9))
    assert before_end.status == "at_risk" and before_end.breached_at is None
    after = ratio(tickets, target_percent=80, window=WEEK, now=day(7.5))
    assert after.status == "breached" and after.breached_at == WEEK[1] and after.next_check is None


def test_after_the_window_the_breach_waits_for_the_open_tickets_that_could_still_save_it():
    # 4 met, 1 open at the end of the week: 4 of 5 can still be 80% if it is met, so not breached yet
    tickets = [met(0, 0.1), met(1, 1.1), met(2, 2.1), met(3, 3.1), running(6.9, 7.2)]
    at_end = ratio(tickets, target_percent=90, window=WEEK, now=day(7))
    assert at_end.status == "ok" and at_end.next_check == day(7.2), "look again when the open ticket is due"
    tickets[-1] = missed(6.9, 7.2)
    settled = ratio(tickets, target_percent=90, window=WEEK, now=day(7.3))
    assert settled.status == "breached" and settled.breached_at == day(7.2), "breached when its miss settled it"
    tickets[-1] = met(6.9, 7.1)
    assert ratio(tickets, target_percent=90, window=WEEK, now=day(7.3)).status == "ok"


def test_an_empty_window_is_ok():
    result = ratio([], target_percent=80, window=WEEK, now=day(8))
    assert result.status == "ok" and result.actual_percent is None and result.breached_at is None


def test_a_ratio_exactly_at_a_decimal_target_meets_it():
    # 161 of 250 is 64.4% exactly; in binary floats 100 × 161 < 64.4 × 250 (16,100.000000000002) held
    tickets = [met(0, 0.1)] * 161 + [missed(0, 0.5)] * 89
    result = ratio(tickets, target_percent=64.4, window=WEEK, now=day(8))
    assert (result.status, result.breached_at) == ("ok", None)
    during = ratio(tickets, target_percent=64.4, window=WEEK, now=day(1))
    assert during.status == "ok", "161 of 250 decided meets 64.4% while the week runs too"
    short = ratio(tickets[1:], target_percent=64.4, window=WEEK, now=day(8))
    assert short.status == "breached" and short.breached_at == WEEK[1], "160 of 249 is 64.26%"
