"""The timer wheel fires each key once, at its latest scheduled instant (no database needed)."""

import asyncio
from datetime import UTC, datetime, timedelta

from itsm_runtime.scheduler import Scheduler


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
    scheduler.start()
    try:
        await asyncio.sleep(0.4)
    finally:
        await scheduler.stop()
    assert sorted(len(b) for b in batches) == [50, 100, 100]
    assert sorted(k for b in batches for k in b) == list(range(250))
