"""An in-memory timer wheel over durable state: callers persist due times, this fires them.

Timers live in the database (a clock's next deadline, a delivery's next attempt); on start
a service loads them back with `schedule`, so a restart fires what fell due while it was down.
"""

import asyncio
import heapq
import logging
from collections.abc import Awaitable, Callable, Hashable
from datetime import UTC, datetime

log = logging.getLogger("itsm.scheduler")


class Scheduler:
    """Calls `fire(key)` at or just after each scheduled instant; one pending time per key."""

    def __init__(self, fire: Callable[[Hashable], Awaitable[None]], *, name: str, concurrency: int = 64):
        self._fire = fire
        self._name = name
        self._heap: list[tuple[float, int, Hashable]] = []
        self._due: dict[Hashable, float] = {}
        self._counter = 0
        self._changed = asyncio.Event()
        self._task: asyncio.Task | None = None
        self._slots = asyncio.Semaphore(concurrency)
        self._running: set[asyncio.Task] = set()

    def __len__(self) -> int:
        return len(self._due)

    def schedule(self, key: Hashable, when: datetime) -> None:
        """Fire `key` at `when` (replacing any earlier schedule of the same key)."""
        at = when.timestamp()
        self._due[key] = at
        self._counter += 1
        heapq.heappush(self._heap, (at, self._counter, key))
        if self._heap[0][2] == key:
            self._changed.set()

    def cancel(self, key: Hashable) -> None:
        self._due.pop(key, None)

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"{self._name}-scheduler")

    async def stop(self) -> None:
        for task in [self._task, *self._running]:
            if task is not None:
                task.cancel()
        await asyncio.gather(*(t for t in [self._task, *self._running] if t), return_exceptions=True)

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            self._changed.clear()
            now = datetime.now(UTC).timestamp()
            while self._heap and self._heap[0][0] <= now:
                at, _, key = heapq.heappop(self._heap)
                if self._due.get(key) != at:
                    continue  # superseded or cancelled
                del self._due[key]
                await self._slots.acquire()
                task = loop.create_task(self._fire_one(key))
                self._running.add(task)
                task.add_done_callback(self._running.discard)
            delay = self._heap[0][0] - now if self._heap else 3600.0
            try:
                await asyncio.wait_for(self._changed.wait(), timeout=max(0.0, delay))
            except TimeoutError:
                pass

    async def _fire_one(self, key: Hashable) -> None:
        try:
            await self._fire(key)
        except Exception:
            log.exception("%s timer %r failed; retrying in a second", self._name, key)
            if key not in self._due:
                self.schedule(key, datetime.fromtimestamp(datetime.now(UTC).timestamp() + 1, UTC))
        finally:
            self._slots.release()
