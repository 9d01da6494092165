"""The SLA clock as a deterministic fold over an incident's events.

A clock's whole state (elapsed working time, pauses, re-targets, warnings, breach, stops and
reopenings) is computed by `fold` from the incident's facts sorted by event time, evaluated at
an instant `now`; `advance` moves a saved state on to a later instant without the facts (what a
timer does), and gives the same state as folding again.

Facts may arrive late, twice or out of order: the fold sorts and de-duplicates them, so the
result depends only on the facts and `now`, never on arrival order. Rebuilding the state from
the event log therefore gives the same clocks.

Elapsed time is kept as `accumulated` (working seconds before the current running segment)
plus `running_since`, so it is exact on any calendar and paused time never counts, also across
a priority change while paused.
"""

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import NamedTuple

import orjson

from .calendar import NEVER, Calendar
from .clock import Stage  # CANCELLED here: the incident's current priority has no target in the agreement

STOP_STATUSES = ("resolved", "closed")
_KIND_ORDER = {"opened": 0, "priority": 1, "status": 2}


class Fact(NamedTuple):
    """One incident event as the clocks see it. (A named tuple: made for every event a rebuild replays, in half
    the time a frozen dataclass takes.)"""

    event_id: str
    kind: str  # opened | status | priority
    at: datetime
    priority: int | None = None  # opened, priority
    status: str | None = None  # opened: initial status; status: the new status
    from_status: str | None = None  # status
    service_id: str | None = None  # opened
    customer_id: str | None = None  # opened

    @property
    def order(self) -> tuple:
        return (self.at, _KIND_ORDER[self.kind], self.event_id)


@dataclass(frozen=True)
class ClockSpec:
    """What an agreement asks of one metric: a target per priority, thresholds and pausing statuses."""

    metric: str  # response | resolution
    targets: Mapping[int, float]  # priority -> target in working seconds
    thresholds: tuple[float, ...]
    pause_on: tuple[str, ...]
    objective_id: str | None = None  # the clock of a ratio objective's ticket, not of a target


@dataclass
class Entry:
    """One line of a clock's timeline. `key` names it uniquely so it is published once: by its kind and instant
    (and what it says, for a stop), never by its rank, which a late event stamped earlier would change.

    Its JSON leaves out the name when it is the one `entry_name` gives, which a reader derives again (all but a
    `#n` name: 15% of a state's bytes). The name is `_key`, which orjson does not write (it leaves out the
    attributes of a dataclass starting with "_"), and a `#n` name is also set as `key` in the instance's dict,
    which orjson does write (the property reads `_key`).
    (Not frozen, though never changed: a frozen dataclass sets each field through object.__setattr__, and a rebuild
    makes several entries per clock: 0.4 instead of 1.0 µs each, measured.)"""

    kind: str  # started paused resumed retargeted warning breached stopped reopened
    at: datetime
    _key: str
    details: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if "#" in self._key:
            self.__dict__["key"] = self._key

    @property
    def key(self) -> str:
        return self._key


@dataclass
class ClockState:
    metric: str
    priority: int
    target_seconds: float | None
    started_at: datetime
    stage: Stage = Stage.RUNNING
    accumulated: float = 0.0
    running_since: datetime | None = None
    paused: bool = False
    stopped: bool = False
    breached_at: datetime | None = None
    completed_at: datetime | None = None
    last_change_at: datetime | None = None
    deadline: datetime | None = None
    warned: tuple[float, ...] = ()
    timeline: list[Entry] = field(default_factory=list)
    next_due: datetime | None = None
    status: str = "new"  # the incident's status as of the last fact

    def to_dict(self) -> dict:
        """JSON-ready; `from_dict` reads it back."""
        return {
            "metric": self.metric, "priority": self.priority, "target_seconds": self.target_seconds,
            "started_at": _iso(self.started_at), "stage": str(self.stage), "accumulated": self.accumulated,
            "running_since": _iso(self.running_since), "paused": self.paused, "stopped": self.stopped,
            "breached_at": _iso(self.breached_at), "completed_at": _iso(self.completed_at),
            "last_change_at": _iso(self.last_change_at), "deadline": _iso(self.deadline),
            "warned": list(self.warned), "next_due": _iso(self.next_due), "status": self.status,
            "timeline": [{"kind": e.kind, "at": _iso(e.at), "details": e.details} | _ranked(e) for e in self.timeline],
        }

    def to_json(self) -> bytes:
        """`to_dict()` as JSON text, the same (in another key order) but ten times faster: orjson writes the
        dataclass itself, its fields and its entries', a datetime as isoformat() does, the stage by its value and
        a tuple as a list. (It writes every attribute the instance has but those starting with "_": test_fold checks
        that they are to_dict()'s. Slots would keep others out, but orjson writes a dataclass with slots 50% slower.)"""
        return orjson.dumps(self)

    @classmethod
    def from_dict(cls, data: Mapping) -> "ClockState":
        when = _when
        return cls(
            metric=data["metric"], priority=data["priority"], target_seconds=data["target_seconds"],
            started_at=when(data["started_at"]), stage=Stage(data["stage"]), accumulated=data["accumulated"],
            running_since=when(data["running_since"]), paused=data["paused"], stopped=data["stopped"],
            breached_at=when(data["breached_at"]), completed_at=when(data["completed_at"]),
            last_change_at=when(data["last_change_at"]), deadline=when(data["deadline"]),
            warned=tuple(data["warned"]), next_due=when(data["next_due"]), status=data["status"],
            timeline=[_entry(e) for e in data["timeline"]],
        )

    @property
    def breached(self) -> bool:
        return self.breached_at is not None

    def elapsed(self, calendar: Calendar, at: datetime) -> float:
        if self.running_since is not None and at > self.running_since:
            return self.accumulated + calendar.between(self.running_since, at)
        return self.accumulated


def entry_name(kind: str, at: datetime, details: Mapping) -> str:
    """A timeline entry's name, before a `#n` when the same name comes again: a warning by its threshold and the
    breach once, as the written-ahead events are marked; any other by its kind and instant, and a stop by whether
    it met its target too (a late event correcting a stop must publish it again)."""
    if kind == "warning":
        return f"warning:{details['threshold']}"
    if kind == "breached":
        return "breached"
    if kind == "stopped":
        return f"stopped:{at.isoformat()}:{details['met']}"
    return f"{kind}:{at.isoformat()}"


def _ranked(entry: Entry) -> dict:
    """The name an entry's JSON gives, as orjson writes it: a `#n` name only (see Entry)."""
    return {"key": entry.key} if "key" in vars(entry) else {}


def _entry(data: Mapping) -> Entry:
    """An entry as `to_dict` writes it: without a `key`, it has its plain name. (Versions before e8b3f0c6d1a4
    wrote every name.)"""
    at = _when(data["at"])
    key = data.get("key") or entry_name(data["kind"], at, data["details"])
    return Entry(data["kind"], at, key, data["details"])


def _iso(at: datetime | None) -> str | None:
    return at.isoformat() if at is not None else None


def _when(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text is not None else None


class _Folder:
    def __init__(self, spec: ClockSpec, calendar: Calendar, state: ClockState):
        self.spec, self.calendar, self.s = spec, calendar, state
        self.priority = state.priority  # the incident's, as of the last fact: a stopped clock keeps its own
        self.names: dict[str, int] = {}  # timeline entries per name (before a `#n`)
        for entry in state.timeline:
            name = entry.key.partition("#")[0]
            self.names[name] = self.names.get(name, 0) + 1

    @classmethod
    def opening(cls, spec: ClockSpec, calendar: Calendar, opened: Fact) -> "_Folder":
        folder = cls(spec, calendar, ClockState(
            metric=spec.metric, priority=opened.priority, started_at=opened.at,
            target_seconds=spec.targets.get(opened.priority), running_since=opened.at, last_change_at=opened.at,
            status=opened.status or "new"))
        folder._log("started", opened.at, priority=opened.priority, target_seconds=folder.s.target_seconds)
        if folder.status in spec.pause_on:
            folder._pause(opened.at)
        return folder

    @property
    def status(self) -> str:
        return self.s.status

    @status.setter
    def status(self, value: str) -> None:
        self.s.status = value

    def _log(self, kind: str, at: datetime, **details) -> None:
        key = entry_name(kind, at, details)
        n = self.names[key] = self.names.get(key, 0) + 1
        if n > 1:  # the same name again (facts stamped alike): the later one in fact order gets a rank
            key = f"{key}#{n}"
        self.s.timeline.append(Entry(kind, at, key, details))

    def _instant(self, seconds: float) -> datetime:
        """When the running clock reaches `seconds` of elapsed working time."""
        return self.calendar.add(self.s.running_since, max(0.0, seconds - self.s.accumulated))

    def _pending(self) -> list[tuple[float, str, float | None]]:
        """Pending warnings and the breach of a running clock: (elapsed seconds, kind, threshold)."""
        s = self.s
        if s.running_since is None or s.target_seconds is None:
            return []
        pending = [(t * s.target_seconds, "warning", t) for t in self.spec.thresholds if t not in s.warned]
        if not s.breached:
            pending.append((s.target_seconds, "breached", None))
        return pending

    def _due(self) -> list[tuple[datetime, str, float | None]]:
        """The pending warnings and breach at their instants, the earliest first: (instant, kind, threshold)."""
        due = [(self._instant(seconds), kind, t) for seconds, kind, t in self._pending()]
        return sorted(due, key=lambda d: (d[0], d[1] == "breached"))

    def _first_pending(self) -> float | None:
        """The elapsed seconds of the earliest of `_pending()`, without listing them (done at every fact)."""
        s = self.s
        if s.running_since is None or s.target_seconds is None:
            return None
        first = None if s.breached_at is not None else s.target_seconds
        for t in self.spec.thresholds:
            if t not in s.warned and (first is None or t * s.target_seconds < first):
                first = t * s.target_seconds
        return first

    def advance(self, to: datetime) -> None:
        """Record every warning and the breach that fall at or before `to`, each at its own instant."""
        first = self._first_pending()
        # the usual case, without the instant of every pending one: calendar.add is monotonic
        if first is None or self._instant(first) > to:
            return
        for at, kind, threshold in self._due():
            if at > to:
                break
            self._cross(kind, threshold, at)

    def _cross(self, kind: str, threshold: float | None, at: datetime) -> None:
        s = self.s
        if kind == "warning":
            s.warned = tuple(sorted((*s.warned, threshold)))
            self._log("warning", at, threshold=threshold)
        else:
            s.breached_at = at
            self._log("breached", at, target_seconds=s.target_seconds)

    def _cross_exceeded(self, at: datetime) -> None:
        """After a re-target: thresholds and the target already exceeded are crossed now."""
        s = self.s
        if s.target_seconds is None:
            return
        elapsed = s.elapsed(self.calendar, at)
        for threshold in self.spec.thresholds:
            if threshold not in s.warned and elapsed >= threshold * s.target_seconds:
                self._cross("warning", threshold, at)
        if not s.breached and elapsed >= s.target_seconds:
            self._cross("breached", None, at)

    def _settle(self, at: datetime) -> None:
        s = self.s
        s.accumulated = s.elapsed(self.calendar, at)
        s.running_since = None
        s.last_change_at = at

    def _pause(self, at: datetime) -> None:
        self._settle(at)
        self.s.paused = True
        self._log("paused", at, status=self.status)

    def _run(self, at: datetime, kind: str) -> None:
        self.s.running_since = at
        self.s.paused = False
        self.s.last_change_at = at
        self._log(kind, at, status=self.status)

    def apply(self, fact: Fact) -> None:
        s, spec = self.s, self.spec
        self.advance(fact.at)
        if fact.kind == "priority":
            self._retarget(fact)
            return
        if fact.kind != "status":
            return
        before, self.status = fact.from_status or self.status, fact.status
        if spec.metric == "response":
            if not s.stopped and before == "new" and self.status != "new":
                self._stop(fact.at)
            elif not s.stopped:
                self._pause_or_resume(fact.at)
            return
        if self.status in STOP_STATUSES:
            if not s.stopped:
                self._stop(fact.at)
        elif s.stopped:  # resolved -> in_progress reopens: the resolution clock resumes
            s.stopped = False
            s.completed_at = None
            if self.status in spec.pause_on:
                s.paused = True
                s.last_change_at = fact.at
                self._log("reopened", fact.at, status=self.status)
            else:
                self._run(fact.at, "reopened")
            self._retarget_to_incident(fact.at)  # its priority changed while it was stopped
        else:
            self._pause_or_resume(fact.at)

    def _pause_or_resume(self, at: datetime) -> None:
        pausing = self.status in self.spec.pause_on
        if pausing and not self.s.paused:
            self._pause(at)
        elif not pausing and self.s.paused:
            self._run(at, "resumed")

    def _retarget(self, fact: Fact) -> None:
        self.priority = fact.priority
        # A finished clock keeps the priority and target it was judged against (its compliance counts under
        # them); a reopening runs on the incident's priority then.
        if not self.s.stopped:
            self._retarget_to_incident(fact.at)

    def _retarget_to_incident(self, at: datetime) -> None:
        s = self.s
        if self.priority == s.priority:
            return
        before = s.priority
        s.priority = self.priority
        s.target_seconds = self.spec.targets.get(self.priority)
        self._log("retargeted", at, from_priority=before, to_priority=s.priority,
                  target_seconds=s.target_seconds, elapsed_seconds=s.elapsed(self.calendar, at))
        self._cross_exceeded(at)

    def _stop(self, at: datetime) -> None:
        s = self.s
        self._settle(at)
        s.stopped, s.paused, s.completed_at = True, False, at
        met = not s.breached
        self._log("stopped", at, met=met, elapsed_seconds=s.accumulated)

    def finish(self, now: datetime) -> ClockState:
        s = self.s
        if not s.stopped and not s.paused:
            self.advance(now)
        if s.stopped:
            s.stage = Stage.COMPLETED
        elif s.target_seconds is None:
            s.stage = Stage.CANCELLED
        else:
            s.stage = Stage.PAUSED if s.paused else Stage.RUNNING
        s.deadline = self._deadline()
        due = self._due() if s.stage == Stage.RUNNING else []
        s.next_due = due[0][0] if due and due[0][0] != NEVER else None  # no timer for what is never due
        return s

    def _deadline(self) -> datetime | None:
        """When elapsed time reaches the target: from now on if running, as of the last change otherwise."""
        s = self.s
        if s.target_seconds is None:
            return None
        if s.running_since is not None:
            if s.breached and s.accumulated >= s.target_seconds:
                return s.breached_at
            return self._instant(s.target_seconds)
        remaining = s.target_seconds - s.accumulated
        if remaining <= 0:
            return s.breached_at or s.last_change_at
        return self.calendar.add(s.last_change_at, remaining)


def sort_facts(facts: Iterable[Fact]) -> list[Fact]:
    """Event-time order with a stable tie-break; a fact delivered twice counts once."""
    return sorted({f.event_id: f for f in facts}.values(), key=_order)


def _order(fact: Fact) -> tuple:
    return fact.order


def fold(spec: ClockSpec, calendar: Calendar, facts: Iterable[Fact], now: datetime) -> ClockState | None:
    """The clock for `spec` over an incident's facts, as of `now`; None until the incident is opened."""
    opened = from_opening(sort_facts(facts))
    return fold_sorted(spec, calendar, opened, now) if opened else None


def from_opening(facts: list[Fact]) -> list[Fact]:
    """Facts in `sort_facts` order from the incident's (first) opening on, which the clocks start at; the facts
    before it are ignored. Empty until it is opened."""
    for i, fact in enumerate(facts):
        if fact.kind == "opened":
            return facts[i:]
    return []


def fold_sorted(spec: ClockSpec, calendar: Calendar, facts: list[Fact], now: datetime) -> ClockState:
    """`fold` over facts already `from_opening` (an incident's clocks share one sort)."""
    folder = _Folder.opening(spec, calendar, facts[0])
    for fact in facts[1:]:
        folder.apply(fact)
    return folder.finish(now)


def advance(spec: ClockSpec, calendar: Calendar, state: ClockState, now: datetime) -> ClockState:
    """Move a saved state on to `now` in place (what a timer does): equal to folding the facts again at `now`."""
    return _Folder(spec, calendar, state).finish(now)


def ever_targeted(spec: ClockSpec, facts: Iterable[Fact]) -> bool:
    """Whether any priority the incident had has a target for this metric (else it gets no clock)."""
    return any(f.priority in spec.targets for f in facts if f.kind in ("opened", "priority"))
