"""The dependency graph of CIs and how health propagates through it: pure, no I/O.

Health flows against the direction a CI *needs* another:

- `depends_on`, `runs_on`, `hosted_on` are hard dependencies: the source needs the target, so the
  source is down if the target is down and degraded if the target is degraded;
- `member_of` makes the target (a cluster or pool) need its members through its redundancy rule:
  up while every member is up, degraded while some are not up but enough (`min_up`, or
  `min_up_percent` of the members rounded up) are not down, down otherwise. A CI without a rule
  needs all its members; a rule asking for more members than there are asks for all of them;
- `connects_to` implies no dependency.

A CI's health is the worst of what its own signals report and what its needs make it. Only the
part of the graph above a changed CI is recomputed, in topological order (by level: a CI's level
is one more than the highest level of what it needs), so each CI is evaluated once per instant
signalled, after everything it needs.
"""

import heapq
from collections import deque
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from itertools import groupby
from datetime import datetime
from enum import StrEnum

from .model import CiType, Redundancy, RelationshipType

HARD_DEPENDENCIES = frozenset({RelationshipType.DEPENDS_ON, RelationshipType.RUNS_ON, RelationshipType.HOSTED_ON})
# What a cycle is checked on: every type through which health propagates.
DEPENDENCY_LIKE = HARD_DEPENDENCIES | {RelationshipType.MEMBER_OF}
MAX_CAUSES = 100


class Health(StrEnum):
    UP = "up"
    DEGRADED = "degraded"
    DOWN = "down"


_SEVERITY = {Health.UP: 0, Health.DEGRADED: 1, Health.DOWN: 2}


def worst(a: Health, b: Health) -> Health:
    return a if _SEVERITY[a] >= _SEVERITY[b] else b


class CycleDetected(ValueError):
    """A relationship would close a dependency cycle; `cycle` lists the CI ids around it, first repeated last."""

    def __init__(self, cycle: list[str]):
        super().__init__("the relationship would create a dependency cycle: " + " -> ".join(cycle))
        self.cycle = cycle


@dataclass(frozen=True)
class Node:
    id: str
    type: CiType
    redundancy: Redundancy | None = None


@dataclass(frozen=True)
class Edge:
    source_id: str
    target_id: str
    type: RelationshipType


class Topology:
    """CIs and the relationships that carry health between them, indexed both ways."""

    def __init__(self, nodes: Iterable[Node] = (), edges: Iterable[Edge] = ()):
        self.nodes: dict[str, Node] = {}
        self._needs: dict[str, set[str]] = {}  # ci -> what it needs (hard targets and members)
        self._needed_by: dict[str, set[str]] = {}  # ci -> what needs it
        self._members: dict[str, set[str]] = {}  # cluster -> members
        self._hard: dict[str, set[str]] = {}  # ci -> hard targets
        self._relations: dict[tuple[str, str], set[RelationshipType]] = {}  # (needer, needed) -> types
        self._levels: dict[str, int] | None = None
        for node in nodes:
            self.put_node(node)
        for edge in edges:
            self.add_edge(edge)

    def __contains__(self, ci_id: str) -> bool:
        return ci_id in self.nodes

    def __len__(self) -> int:
        return len(self.nodes)

    def copy(self) -> "Topology":
        """An independent copy, to try changes on."""
        clone = Topology()
        clone.nodes = dict(self.nodes)
        for name in ("_needs", "_needed_by", "_members", "_hard", "_relations"):
            setattr(clone, name, {k: set(v) for k, v in getattr(self, name).items()})
        return clone

    def put_node(self, node: Node) -> None:
        """Add a CI or replace its type and redundancy."""
        self.nodes[node.id] = node
        self._levels = None

    def add_edge(self, edge: Edge) -> None:
        """Add a relationship between known CIs; `connects_to` carries no health and is not kept."""
        if edge.type not in DEPENDENCY_LIKE:
            return
        needer, needed = self._direction(edge)
        self._needs.setdefault(needer, set()).add(needed)
        self._needed_by.setdefault(needed, set()).add(needer)
        if edge.type == RelationshipType.MEMBER_OF:
            self._members.setdefault(needer, set()).add(needed)
        else:
            self._hard.setdefault(needer, set()).add(needed)
        self._relations.setdefault((needer, needed), set()).add(edge.type)
        self._levels = None

    @staticmethod
    def _direction(edge: Edge) -> tuple[str, str]:
        """(the CI that needs, the CI it needs) for a dependency-like relationship."""
        if edge.type == RelationshipType.MEMBER_OF:
            return edge.target_id, edge.source_id
        return edge.source_id, edge.target_id

    def needs(self, ci_id: str) -> set[str]:
        return self._needs.get(ci_id, set())

    def needed_by(self, ci_id: str) -> set[str]:
        return self._needed_by.get(ci_id, set())

    def members(self, ci_id: str) -> set[str]:
        return self._members.get(ci_id, set())

    def hard_dependencies(self, ci_id: str) -> set[str]:
        return self._hard.get(ci_id, set())

    def edges_between(self, needer: str, needed: str) -> list[Edge]:
        """The relationships, as stored (source, target, type), through which `needer` needs `needed`."""
        return [Edge(source_id=needed, target_id=needer, type=t) if t == RelationshipType.MEMBER_OF
                else Edge(source_id=needer, target_id=needed, type=t)
                for t in sorted(self._relations.get((needer, needed), ()))]

    def find_cycle(self, edge: Edge) -> list[str] | None:
        """The cycle this relationship would close, as CI ids from needer back to needer, or None."""
        if edge.type not in DEPENDENCY_LIKE:
            return None
        needer, needed = self._direction(edge)
        if needer == needed:
            return [needer, needer]
        path = self._path(needed, needer)
        return [needer, *path] if path else None

    def _path(self, start: str, goal: str) -> list[str] | None:
        """A shortest chain of needs from `start` to `goal`, both included."""
        parents: dict[str, str | None] = {start: None}
        queue = deque([start])
        while queue:
            current = queue.popleft()
            if current == goal:
                path = [current]
                while parents[path[-1]] is not None:
                    path.append(parents[path[-1]])
                return path[::-1]
            for nxt in self.needs(current):
                if nxt not in parents:
                    parents[nxt] = current
                    queue.append(nxt)
        return None

    def level(self, ci_id: str) -> int:
        if self._levels is None:
            self._levels = self._compute_levels()
        return self._levels.get(ci_id, 0)

    def _compute_levels(self) -> dict[str, int]:
        """Longest chain of needs below each CI (Kahn's algorithm; the graph is acyclic by construction)."""
        remaining = {ci: len(self.needs(ci)) for ci in self.nodes}
        levels = {ci: 0 for ci, count in remaining.items() if count == 0}
        ready = deque(levels)
        while ready:
            current = ready.popleft()
            for needer in self.needed_by(current):
                levels[needer] = max(levels.get(needer, 0), levels[current] + 1)
                remaining[needer] -= 1
                if remaining[needer] == 0:
                    ready.append(needer)
        return levels

    def walk(self, ci_id: str, *, upstream: bool, depth: int) -> tuple[dict[str, int], list[tuple[str, str]]]:
        """CIs within `depth` steps that need this one (upstream) or that it needs (downstream).

        Returns each CI's distance and the (needer, needed) pairs crossed.
        """
        distances = {ci_id: 0}
        pairs: list[tuple[str, str]] = []
        frontier = [ci_id]
        for distance in range(1, depth + 1):
            next_frontier = []
            for current in frontier:
                for other in sorted(self.needed_by(current) if upstream else self.needs(current)):
                    pairs.append((other, current) if upstream else (current, other))
                    if other not in distances:
                        distances[other] = distance
                        next_frontier.append(other)
            frontier = next_frontier
        return distances, pairs


@dataclass(frozen=True)
class CiHealth:
    """What signals say about a CI itself (`reported`) and what it is once its needs count (`status`)."""

    reported: Health = Health.UP
    reported_at: datetime | None = None
    status: Health = Health.UP
    since: datetime | None = None
    causes: tuple[str, ...] = ()


UNREPORTED = CiHealth()


@dataclass(frozen=True)
class Signal:
    ci_id: str
    status: Health
    observed_at: datetime
    source: str | None = None


@dataclass(frozen=True)
class StatusChange:
    ci_id: str
    previous: Health
    status: Health
    observed_at: datetime
    cause_ci_ids: tuple[str, ...]


class HealthBoard:
    """Health of every CI: the committed state plus the changes of the batch being computed.

    The committed mapping is never written, so a batch whose transaction fails leaves it intact;
    `pending` is merged into it only after the commit.
    """

    def __init__(self, committed: Mapping[str, CiHealth]):
        self.committed = committed
        self.pending: dict[str, CiHealth] = {}

    def __getitem__(self, ci_id: str) -> CiHealth:
        found = self.pending.get(ci_id)
        if found is None:
            found = self.committed.get(ci_id, UNREPORTED)
        return found

    def __setitem__(self, ci_id: str, health: CiHealth) -> None:
        self.pending[ci_id] = health


def evaluate(topology: Topology, board: HealthBoard, ci_id: str) -> tuple[Health, tuple[str, ...]]:
    """A CI's status from its own report, its hard dependencies and its members, with the root causes."""
    health = board[ci_id]
    status = health.reported
    causes: set[str] = {ci_id} if health.reported != Health.UP else set()
    for needed in topology.hard_dependencies(ci_id):
        needed_health = board[needed]
        if needed_health.status != Health.UP:
            status = worst(status, needed_health.status)
            causes.update(needed_health.causes)
    members = topology.members(ci_id)
    if members:
        node = topology.nodes.get(ci_id)
        member_health = [board[m] for m in members]
        available = sum(h.status != Health.DOWN for h in member_health)
        required = min(len(members), node.redundancy.required_up(len(members))
                       if node and node.redundancy else len(members))
        if available < required:
            pooled = Health.DOWN
        elif any(h.status != Health.UP for h in member_health):
            pooled = Health.DEGRADED
        else:
            pooled = Health.UP
        if pooled != Health.UP:
            status = worst(status, pooled)
            for h in member_health:
                causes.update(h.causes)
    return status, tuple(sorted(causes)[:MAX_CAUSES])


@dataclass
class SignalOutcome:
    applied: list[Signal] = field(default_factory=list)
    late: list[Signal] = field(default_factory=list)
    changes: list[StatusChange] = field(default_factory=list)


def apply_signals(topology: Topology, board: HealthBoard, signals: Iterable[Signal]) -> SignalOutcome:
    """Apply signals in the order they were observed, propagating each instant's changes up the graph.

    Signals observed at the same instant apply together (the last one given for a CI wins); distinct
    instants apply one after the other, so a CI that goes down and comes back within a batch
    produces both transitions. A signal observed before the last one applied to its CI is late: it
    is returned in `late` and changes nothing. Changes are those of `status`; a CI whose causes
    change but whose status does not is updated without a change.
    """
    outcome = SignalOutcome()
    for observed_at, group in groupby(sorted(signals, key=lambda s: s.observed_at), key=lambda s: s.observed_at):
        changed: list[str] = []
        for signal in group:
            current = board[signal.ci_id]
            if current.reported_at is not None and signal.observed_at < current.reported_at:
                outcome.late.append(signal)
                continue
            outcome.applied.append(signal)
            board[signal.ci_id] = replace(current, reported=signal.status, reported_at=observed_at)
            changed.append(signal.ci_id)
        if changed:
            outcome.changes.extend(propagate(topology, board, changed, observed_at=observed_at))
    return outcome


def propagate(topology: Topology, board: HealthBoard, starts: Iterable[str], *,
              observed_at: datetime) -> Iterator[StatusChange]:
    """Re-evaluate `starts` and, while something changes, every CI that needs them, lowest level first.

    A CI that turns degraded or down names the root causes below it; one that turns up names the
    starts below it (what recovered).
    """
    origins: dict[str, set[str]] = {}
    queue = []
    for start in dict.fromkeys(starts):
        origins[start] = {start}
        queue.append((topology.level(start), start))
    heapq.heapify(queue)
    while queue:
        _, ci_id = heapq.heappop(queue)
        before = board[ci_id]
        status, causes = evaluate(topology, board, ci_id)
        if status == before.status and causes == before.causes:
            continue
        if status == before.status:
            board[ci_id] = replace(before, causes=causes)
        else:
            board[ci_id] = replace(before, status=status, since=observed_at, causes=causes)
            yield StatusChange(ci_id=ci_id, previous=before.status, status=status, observed_at=observed_at,
                               cause_ci_ids=causes if status != Health.UP else tuple(sorted(origins[ci_id])))
        for needer in topology.needed_by(ci_id):
            if needer not in origins:
                origins[needer] = set()
                heapq.heappush(queue, (topology.level(needer), needer))
            origins[needer] |= origins[ci_id]


@dataclass(frozen=True)
class Impact:
    """A business service a failure would take down or degrade, and a shortest path (of CI ids) from it
    down to the failed CI through CIs the failure affects."""

    service_id: str
    status: Health
    path: list[str]


def impact_of_failure(topology: Topology, baseline: Mapping[str, CiHealth], ci_id: str) -> list[Impact]:
    """Business services that are not up once `ci_id` is down, starting from `baseline` health.

    Redundancy counts: losing one of two members of a `min_up: 1` cluster degrades what needs the
    cluster instead of taking it down. Nothing is written; the simulation runs on a scratch board.
    """
    board = HealthBoard(baseline)
    board[ci_id] = replace(board[ci_id], reported=Health.DOWN)
    for _ in propagate(topology, board, [ci_id], observed_at=datetime.min):
        pass
    affected = {c for c, h in board.pending.items() if h.status != Health.UP}
    if ci_id not in affected:
        return []
    parents: dict[str, str | None] = {ci_id: None}
    queue = deque([ci_id])
    impacts = []
    while queue:
        current = queue.popleft()
        node = topology.nodes.get(current)
        if node is not None and node.type == CiType.BUSINESS_SERVICE:
            path = [current]
            while parents[path[-1]] is not None:
                path.append(parents[path[-1]])
            impacts.append(Impact(service_id=current, status=board[current].status, path=path))
        for needer in sorted(topology.needed_by(current)):
            if needer in affected and needer not in parents:
                parents[needer] = current
                queue.append(needer)
    return impacts
