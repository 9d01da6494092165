"""An in-memory timer wheel over durable state: callers persist due times, this fires them.

Timers live in the database (a clock's next deadline, a delivery's next attempt); on start
a service loads them back with `schedule`, so a restart fires what fell due while it was down.
Keys that fall due together are handed over together, up to `batch_size` at a time, so that
10,000 clocks breaching in the same second cost a few transactions, not 10,000.
With `prepare`, keys are also handed over `lead` ahead of their instant, once per schedule, so the work that
does not need the instant itself (reading state, building and writing events ahead) is done before it comes.
"""

import asyncio
import heapq
import logging
from collections.abc import Awaitable, Callable, Hashable
from datetime import UTC, datetime, timedelta

from itsm_events.bus import is_transient

log = logging.getLogger("itsm.scheduler")

FireFn = Callable[[list[Hashable]], Awaitable[None]]
PrepareFn = Callable[[list[tuple[Hashable, datetime]]], Awaitable[None]]  # (key, the instant it is due)


class Scheduler:
    """Calls `fire(keys)` at or just after each scheduled instant; one pending time per key."""

    def __init__(self, fire: FireFn, *, name: str, concurrency: int = 64, batch_size: int = 1,
                 prepare: PrepareFn | None = None, lead: timedelta = timedelta(0)):
        self._fire = fire
        self._prepare = prepare
        self._lead = lead.total_seconds()
        self._prepared: dict[Hashable, float] = {}  # key -> the instant it was prepared for
        self._name = name
        self._batch_size = batch_size
        self._heap: list[tuple[float, int, Hashable]] = []
        self._due: dict[Hashable, float] = {}
        self._counter = 0
        self._changed = asyncio.Event()
        self._task: asyncio.Task | None = None
        self._preparing: asyncio.Task | None = None
        self._slots = asyncio.Semaphore(concurrency)
        self._running: set[asyncio.Task] = set()

    def __len__(self) -> int:
        return len(self._due)

    def schedule(self, key: Hashable, when: datetime, *, keep_earlier: bool = False) -> None:
        """Fire `key` at `when`, replacing its pending schedule; with `keep_earlier`, unless that comes first."""
        at = when.timestamp()
        if keep_earlier and self._due.get(key, at) < at:
            return
        self._due[key] = at
        self._prepared.pop(key, None)  # what changed may need preparing again, even for the same instant
        self._counter += 1
        heapq.heappush(self._heap, (at, self._counter, key))
        if self._heap[0][2] == key:
            self._changed.set()
        self._compact()

    def cancel(self, key: Hashable) -> None:
        self._due.pop(key, None)
        self._prepared.pop(key, None)
        self._compact()

    def _compact(self) -> None:
        """Drop superseded heap entries once they outnumber the live ones (reschedules leave them behind)."""
        if len(self._heap) > 2 * len(self._due) + 1024:
            self._heap = [entry for entry in self._heap if self._due.get(entry[2]) == entry[0]]
            heapq.heapify(self._heap)

    def start(self) -> None:
        """Start firing; starting a running scheduler again changes nothing."""
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(), name=f"{self._name}-scheduler")
        if self._prepare is not None and (self._preparing is None or self._preparing.done()):
            self._preparing = asyncio.create_task(self._prepare_ahead(), name=f"{self._name}-prepare")

    async def stop(self) -> None:
        tasks = [t for t in [self._task, self._preparing, *self._running] if t is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _run(self) -> None:
        while True:
            self._changed.clear()
            now = datetime.now(UTC).timestamp()
            batch: list[Hashable] = []
            while self._heap and self._heap[0][0] <= now:
                at, _, key = heapq.heappop(self._heap)
                if self._due.get(key) != at:
                    continue  # superseded or cancelled
                del self._due[key]
                self._prepared.pop(key, None)
                batch.append(key)
                if len(batch) == self._batch_size:
                    await self._spawn(batch)
                    batch = []
            if batch:
                await self._spawn(batch)
            delay = self._heap[0][0] - now if self._heap else 3600.0
            try:
                await asyncio.wait_for(self._changed.wait(), timeout=max(0.0, delay))
            except TimeoutError:
                pass

    def upcoming(self, until: float) -> dict[Hashable, float]:
        """Key -> instant of every pending key due by `until` (epoch seconds).

        Walks only the top of the heap: a node's children never fall due before it, so the walk stops
        at the first node after `until` on each branch, whatever the number of keys."""
        found: dict[Hashable, float] = {}
        heap, stack = self._heap, [0]
        while stack:
            i = stack.pop()
            if i >= len(heap) or heap[i][0] > until:
                continue
            at, _, key = heap[i]
            if self._due.get(key) == at:
                found[key] = at
            stack += (2 * i + 1, 2 * i + 2)
        return found

    async def _prepare_ahead(self) -> None:
        """Hand each key to `prepare` once, `lead` before it falls due, the earliest first."""
        every = min(1.0, max(0.1, self._lead / 4))
        while True:
            now = datetime.now(UTC).timestamp()
            ahead = sorted(((at, key) for key, at in self.upcoming(now + self._lead).items()
                            if at > now and self._prepared.get(key) != at), key=lambda pair: pair[0])
            for start in range(0, len(ahead), self._batch_size):
                batch = ahead[start:start + self._batch_size]
                self._prepared.update((key, at) for at, key in batch)
                try:
                    await self._prepare([(key, datetime.fromtimestamp(at, UTC)) for at, key in batch])
                except Exception:  # firing does the whole work then
                    log.exception("%s: preparing %d timer(s) failed", self._name, len(batch))
            await asyncio.sleep(every)

    async def _spawn(self, keys: list[Hashable]) -> None:
        await self._slots.acquire()
        task = asyncio.get_running_loop().create_task(self._fire_batch(keys))
        self._running.add(task)
        task.add_done_callback(self._running.discard)

    async def _fire_batch(self, keys: list[Hashable]) -> None:
        try:
            try:
                await self._fire(keys)
            except Exception as exc:
                if len(keys) == 1 or is_transient(exc):
                    raise
                # one bad key must not hold back the others: fire each alone
                log.exception("%s: a batch of %d timers failed; firing them one by one", self._name, len(keys))
                for key in keys:
                    await self._fire_alone(key)
        except Exception:
            log.exception("%s: %d timer(s) failed; retrying in a second", self._name, len(keys))
            for key in keys:
                self._retry(key)
        finally:
            self._slots.release()

    async def _fire_alone(self, key: Hashable) -> None:
        try:
            await self._fire([key])
        except Exception:
            log.exception("%s: timer %r failed; retrying in a second", self._name, key)
            self._retry(key)

    def _retry(self, key: Hashable) -> None:
        if key not in self._due:
            self.schedule(key, datetime.now(UTC) + timedelta(seconds=1))
