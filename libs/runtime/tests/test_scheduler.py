"""The timer wheel fires each key once, at its latest scheduled instant (no database needed)."""

import asyncio
from datetime import UTC, datetime, timedelta

from itsm_runtime.scheduler import Scheduler


async def run_for(scheduler: Scheduler, seconds: float) -> None:
    """Run the scheduler's timers for `seconds`, then stop them."""
    scheduler.start()
    try:
        await asyncio.sleep(seconds)
    finally:
        await scheduler.stop()


async def test_fires_at_the_instant_and_reschedule_replaces():
    fired: dict[str, datetime] = {}

    async def fire(keys):
        for key in keys:
            fired[key] = datetime.now(UTC)

    scheduler = Scheduler(fire, name="test")
    scheduler.start()
    try:
        now = datetime.now(UTC)
        scheduler.schedule("a", now + timedelta(milliseconds=200))
        scheduler.schedule("b", now + timedelta(milliseconds=100))
        scheduler.schedule("b", now + timedelta(milliseconds=300))  # replaces the earlier time
        scheduler.schedule("c", now + timedelta(milliseconds=150))
        scheduler.cancel("c")
        scheduler.schedule("late", now - timedelta(seconds=5))  # already due: fires at once
        await asyncio.sleep(0.5)
    finally:
        await scheduler.stop()
    assert set(fired) == {"a", "b", "late"}
    assert fired["a"] >= now + timedelta(milliseconds=200)
    assert fired["b"] >= now + timedelta(milliseconds=300)
    assert len(scheduler) == 0


async def test_a_failing_timer_is_retried():
    calls = []

    async def fire(keys):
        calls.extend(keys)
        if len(calls) == 1:
            raise RuntimeError("database away")

    scheduler = Scheduler(fire, name="test")
    scheduler.start()
    try:
        scheduler.schedule("k", datetime.now(UTC))
        for _ in range(40):
            if len(calls) >= 2:
                break
            await asyncio.sleep(0.1)
    finally:
        await scheduler.stop()
    assert calls == ["k", "k"]


async def test_keys_due_together_are_fired_in_batches():
    batches: list[list[int]] = []

    async def fire(keys):
        batches.append(list(keys))

    scheduler = Scheduler(fire, name="test", batch_size=100)
    at = datetime.now(UTC) + timedelta(milliseconds=100)
    for key in range(250):
        scheduler.schedule(key, at)
    await run_for(scheduler, 0.4)
    assert sorted(len(b) for b in batches) == [50, 100, 100]
    assert sorted(k for b in batches for k in b) == list(range(250))


def test_upcoming_lists_the_live_keys_due_by_an_instant():
    scheduler = Scheduler(lambda keys: None, name="test")
    now = datetime.now(UTC)
    for key in range(1000):
        scheduler.schedule(key, now + timedelta(seconds=key))
    scheduler.schedule(3, now + timedelta(hours=1))  # moved out
    scheduler.cancel(4)
    scheduler.schedule(999, now + timedelta(seconds=2))  # moved in
    assert scheduler.upcoming((now + timedelta(seconds=5.5)).timestamp()) == {
        key: (now + timedelta(seconds=at)).timestamp() for key, at in [(0, 0), (1, 1), (2, 2), (5, 5), (999, 2)]}


async def test_keys_are_prepared_once_ahead_of_their_instant():
    prepared: list[tuple[str, datetime, datetime]] = []
    fired: dict[str, datetime] = {}

    async def prepare(due):
        prepared.extend((key, at, datetime.now(UTC)) for key, at in due)

    async def fire(keys):
        fired.update((key, datetime.now(UTC)) for key in keys)

    scheduler = Scheduler(fire, name="test", prepare=prepare, lead=timedelta(milliseconds=400), batch_size=2)
    now = datetime.now(UTC)
    at = {"a": now + timedelta(milliseconds=600), "b": now + timedelta(milliseconds=700),
          "c": now + timedelta(milliseconds=800), "far": now + timedelta(hours=1)}
    for key, when in at.items():
        scheduler.schedule(key, when)
    await run_for(scheduler, 1.2)
    assert sorted(key for key, _, _ in prepared) == ["a", "b", "c"]  # each once, "far" not yet
    for key, due, prepared_at in prepared:
        assert due == at[key] and prepared_at < fired[key]
        assert prepared_at >= at[key] - timedelta(milliseconds=400)
    assert set(fired) == {"a", "b", "c"}
