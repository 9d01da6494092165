"""Use cases of cmdb-svc: commands in, domain events out through the outbox.

Every use case that writes the graph or health runs with the live graph's lock held (the route
takes it around the unit of work) and syncs the graph under the `graph_state` row lock first.
"""

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from itsm_events import UnitOfWork, schemas

from .db import repository
from .domain.graph import (
    CycleDetected, Edge, HealthBoard, Node, Signal, SignalOutcome, StatusChange, Topology, apply_signals,
)
from .domain.model import (
    TOPOLOGY_FIELDS, Ci, CiAdded, CiChanged, CiType, DuplicateRelationship, IdTaken, InvalidCi,
    InvalidRelationship, KeyTaken, Relationship, RelationshipAdded, UnknownCi,
)
from .live_graph import LiveGraph


def publish_ci(uow: UnitOfWork, ci: Ci) -> None:
    """Map the CI's recorded domain events to public events in the outbox."""
    for event in ci.events:
        match event:
            case CiAdded(at=at):
                data = schemas.CiCreated(ci_id=ci.id, name=ci.name, type=str(ci.type), key=ci.key,
                                         criticality=ci.criticality)
            case CiChanged(at=at, version=version, changes=changes, changed_by=changed_by, change_ref=change_ref):
                data = schemas.CiUpdated(ci_id=ci.id, version=version, changed=list(changes),
                                         changed_by=changed_by, change_ref=change_ref)
            case _:
                raise TypeError(f"no public event for {event!r}")
        uow.emit(data, key=ci.id, time=at)
    ci.events.clear()


def publish_relationship(uow: UnitOfWork, relationship: Relationship) -> None:
    """Map the relationship's recorded domain events to public events, keyed by the source CI."""
    for event in relationship.events:
        match event:
            case RelationshipAdded(at=at):
                data = schemas.RelationshipCreated(relationship_id=relationship.id, source_id=relationship.source_id,
                                                   target_id=relationship.target_id, type=str(relationship.type))
            case _:
                raise TypeError(f"no public event for {event!r}")
        uow.emit(data, key=relationship.source_id, time=at)
    relationship.events.clear()


def publish_status_changes(uow: UnitOfWork, graph: LiveGraph, changes: list[StatusChange]) -> None:
    """Every CI status change, and a service availability change for each business service among them."""
    for change in changes:
        uow.emit(schemas.CiStatusChanged(ci_id=change.ci_id, status=change.status.value,
                                         previous_status=change.previous.value, observed_at=change.observed_at,
                                         cause_ci_ids=list(change.cause_ci_ids)),
                 key=change.ci_id, time=change.observed_at)
        node = graph.topology.nodes.get(change.ci_id)
        if node is not None and node.type == CiType.BUSINESS_SERVICE:
            uow.emit(schemas.ServiceAvailabilityChanged(service_id=change.ci_id, status=change.status.value,
                                                        observed_at=change.observed_at,
                                                        cause_ci_ids=list(change.cause_ci_ids)),
                     key=change.ci_id, time=change.observed_at)


def _node(ci: Ci) -> Node:
    return Node(id=ci.id, type=ci.type, redundancy=ci.redundancy)


def _edge(relationship: Relationship) -> Edge:
    return Edge(source_id=relationship.source_id, target_id=relationship.target_id, type=relationship.type)


def _first_version(ci: Ci, *, changed_by: str | None, change_ref: str | None) -> dict:
    values = ci.field_values()
    changes = {name: {"before": None, "after": value} for name, value in values.items() if value not in (None, {})}
    return {"ci_id": ci.id, "version": 1, "changed_at": ci.created_at, "changed_by": changed_by,
            "change_ref": change_ref, "changes": changes}


async def create_ci(uow: UnitOfWork, graph: LiveGraph, *, name: str, type: str, id: str | None = None,
                    key: str | None = None, criticality: int | None = None, owner: str | None = None,
                    status: str = "active", attributes: Mapping[str, Any] | None = None,
                    redundancy: Mapping[str, Any] | None = None, changed_by: str | None = None,
                    change_ref: str | None = None) -> Ci:
    """Add a CI, as version 1 of its history; a taken id is an IdTaken, a taken key a KeyTaken."""
    ci = Ci.create(id=id or str(uuid.uuid4()), name=name, type=type, key=key, criticality=criticality, owner=owner,
                   status=status, attributes=attributes, redundancy=redundancy, created_at=datetime.now(UTC))
    await graph.sync(uow.conn, for_update=True)
    if not await repository.add_ci(uow.conn, ci):
        if await repository.ci_id_exists(uow.conn, ci.id):
            raise IdTaken(ci.id)
        raise KeyTaken(key)
    await repository.add_versions(uow.conn, [_first_version(ci, changed_by=changed_by, change_ref=change_ref)])
    uow.after_commit(await graph.bump_topology(uow.conn, nodes=[_node(ci)]))
    publish_ci(uow, ci)
    return ci


async def change_ci(uow: UnitOfWork, graph: LiveGraph, *, ci_id: str, changes: Mapping[str, Any],
                    changed_by: str | None = None, change_ref: str | None = None) -> Ci | None:
    """Change fields of a CI as a new version; None when the CI does not exist. No real change, no version."""
    await graph.sync(uow.conn, for_update=True)  # before writing: a reload must see only committed rows
    ci = await repository.get_ci_for_update(uow.conn, ci_id)
    if ci is None:
        return None
    diff = ci.change(changes, at=datetime.now(UTC), changed_by=changed_by, change_ref=change_ref)
    if not diff:
        return ci
    if "key" in diff and ci.key is not None:
        holder = await repository.key_holder(uow.conn, ci.key)
        if holder is not None and holder != ci.id:
            raise KeyTaken(ci.key)
    await repository.save_ci(uow.conn, ci)
    await repository.add_versions(uow.conn, [{
        "ci_id": ci.id, "version": ci.version, "changed_at": ci.updated_at, "changed_by": changed_by,
        "change_ref": change_ref,
        "changes": {name: {"before": c.before, "after": c.after} for name, c in diff.items()}}])
    if TOPOLOGY_FIELDS & set(diff):
        uow.after_commit(await graph.bump_topology(uow.conn, nodes=[_node(ci)]))
    publish_ci(uow, ci)
    return ci


async def create_relationship(uow: UnitOfWork, graph: LiveGraph, *, source_id: str, target_id: str,
                              type: str) -> Relationship:
    """Relate two existing CIs; an unknown CI is an UnknownCi, an exact repeat a DuplicateRelationship,
    a dependency cycle a CycleDetected."""
    relationship = Relationship.create(id=str(uuid.uuid4()), source_id=source_id, target_id=target_id, type=type,
                                       created_at=datetime.now(UTC))
    await graph.sync(uow.conn, for_update=True)
    for field_name, ci_id in (("source_id", source_id), ("target_id", target_id)):
        if ci_id not in graph.topology:
            raise UnknownCi(ci_id, field=field_name)
    cycle = graph.topology.find_cycle(_edge(relationship))
    if cycle:
        raise CycleDetected(cycle)
    if not await repository.add_relationship(uow.conn, relationship):
        raise DuplicateRelationship(source_id, target_id, type)
    uow.after_commit(await graph.bump_topology(uow.conn, edges=[_edge(relationship)]))
    publish_relationship(uow, relationship)
    return relationship


class UnknownSignalledCis(LookupError):
    """Signals name CIs the CMDB does not hold: (index in the batch, CI id) of each."""

    def __init__(self, unknown: list[tuple[int, str]]):
        super().__init__(f"{len(unknown)} signal(s) name CIs that do not exist")
        self.unknown = unknown


async def record_signals(uow: UnitOfWork, graph: LiveGraph, signals: list[Signal]) -> SignalOutcome:
    """Apply a batch of health signals: propagate through the graph, persist, publish what changed.

    The whole batch is rejected when a signal names an unknown CI.
    """
    await graph.sync(uow.conn, for_update=True)
    unknown = [(i, s.ci_id) for i, s in enumerate(signals) if s.ci_id not in graph.topology]
    if unknown:
        raise UnknownSignalledCis(unknown)
    board = HealthBoard(graph.health)
    outcome = apply_signals(graph.topology, board, signals)
    await repository.add_status_changes(uow.conn, outcome.changes)
    await repository.add_late_signals(uow.conn, outcome.late)
    uow.after_commit(await graph.bump_health(uow.conn, board.pending))
    publish_status_changes(uow, graph, outcome.changes)
    return outcome


# bulk import --------------------------------------------------------------------------------


@dataclass(frozen=True)
class RowError:
    section: str  # "cis" or "relationships"
    row: int
    field: str
    message: str


class ImportRejected(ValueError):
    """Rows of an import are bad; nothing was written."""

    def __init__(self, errors: list[RowError]):
        super().__init__(f"{len(errors)} row(s) of the import are invalid; nothing was imported")
        self.errors = errors


@dataclass(frozen=True)
class RelationshipRowIn:
    """A relationship row: each end by `*_id` or by `*_key` (a key in this import or already in the CMDB)."""

    type: str
    source_id: str | None = None
    source_key: str | None = None
    target_id: str | None = None
    target_key: str | None = None


@dataclass
class Imported:
    cis: list[Ci] = field(default_factory=list)
    relationships: list[Relationship] = field(default_factory=list)


async def import_graph(uow: UnitOfWork, graph: LiveGraph, *, ci_rows: list[dict[str, Any]],
                       relationship_rows: list[RelationshipRowIn], changed_by: str | None = None,
                       change_ref: str | None = None) -> Imported:
    """Create CIs and relationships all together or not at all; every bad row is an error in ImportRejected.

    `ci_rows` hold CiCreate values. Relationships are checked against the graph plus the imported
    CIs, in row order, so a row closing a cycle with earlier rows is the bad one.
    """
    now = datetime.now(UTC)
    await graph.sync(uow.conn, for_update=True)
    errors: list[RowError] = []
    new_cis, keys = await _checked_ci_rows(uow, ci_rows, now=now, errors=errors)
    trial = graph.topology.copy()
    for ci in new_cis:
        trial.put_node(_node(ci))
    new_relationships = await _checked_relationship_rows(uow, relationship_rows, trial=trial, keys=keys, now=now,
                                                         errors=errors)
    if errors:
        raise ImportRejected(sorted(errors, key=lambda e: (e.section != "cis", e.row)))

    await repository.add_cis(uow.conn, new_cis)
    await repository.add_versions(uow.conn, [_first_version(ci, changed_by=changed_by, change_ref=change_ref)
                                             for ci in new_cis])
    await repository.add_relationships(uow.conn, new_relationships)
    uow.after_commit(await graph.bump_topology(uow.conn, nodes=[_node(ci) for ci in new_cis],
                                               edges=[_edge(r) for r in new_relationships]))
    for ci in new_cis:
        publish_ci(uow, ci)
    for relationship in new_relationships:
        publish_relationship(uow, relationship)
    return Imported(cis=new_cis, relationships=new_relationships)


async def _checked_ci_rows(uow: UnitOfWork, ci_rows: list[dict[str, Any]], *, now: datetime,
                           errors: list[RowError]) -> tuple[list[Ci], dict[str, str]]:
    """The CIs of the valid rows, and CI ids by key (existing and imported); bad rows go to `errors`."""
    created: list[tuple[int, Ci]] = []
    for row, values in enumerate(ci_rows):
        try:
            given = {k: v for k, v in values.items() if v is not None}
            created.append((row, Ci.create(**{"id": str(uuid.uuid4())} | given, created_at=now)))
        except InvalidCi as exc:
            errors.append(RowError("cis", row, exc.field, str(exc)))
    taken_ids = await repository.existing_ci_ids(uow.conn, [ci.id for row, ci in created if ci_rows[row].get("id")])
    keys = await repository.ids_by_key(uow.conn, [ci.key for _, ci in created if ci.key])
    seen_ids: set[str] = set()
    valid = []
    for row, ci in created:
        if ci.id in taken_ids or ci.id in seen_ids:
            errors.append(RowError("cis", row, "id", str(IdTaken(ci.id))))
        elif ci.key and ci.key in keys:
            errors.append(RowError("cis", row, "key", str(KeyTaken(ci.key))))
        else:
            valid.append(ci)
        seen_ids.add(ci.id)
        if ci.key:
            keys.setdefault(ci.key, ci.id)
    return valid, keys


async def _checked_relationship_rows(uow: UnitOfWork, rows: list[RelationshipRowIn], *, trial: Topology,
                                     keys: dict[str, str], now: datetime,
                                     errors: list[RowError]) -> list[Relationship]:
    """The relationships of the valid rows, added to `trial` as they pass; bad rows go to `errors`."""
    keys = keys | await repository.ids_by_key(
        uow.conn, {k for r in rows for k in (r.source_key, r.target_key) if k and k not in keys})
    checked: list[tuple[int, Relationship]] = []
    seen: set[tuple[str, str, str]] = set()
    for row, rel_in in enumerate(rows):
        ends = {}
        for end in ("source", "target"):
            ci_id, key = getattr(rel_in, f"{end}_id"), getattr(rel_in, f"{end}_key")
            if key is not None:
                ci_id = keys.get(key)
                if ci_id is None:
                    errors.append(RowError("relationships", row, f"{end}_key", f"no CI has key {key!r}"))
            elif ci_id not in trial:
                errors.append(RowError("relationships", row, f"{end}_id", str(UnknownCi(ci_id, field=end))))
                ci_id = None
            ends[end] = ci_id
        if ends["source"] is None or ends["target"] is None:
            continue
        try:
            relationship = Relationship.create(id=str(uuid.uuid4()), source_id=ends["source"],
                                               target_id=ends["target"], type=rel_in.type, created_at=now)
        except InvalidRelationship as exc:
            errors.append(RowError("relationships", row, exc.field, str(exc)))
            continue
        identity = (relationship.source_id, relationship.target_id, str(relationship.type))
        if identity in seen:
            errors.append(RowError("relationships", row, "type", str(_duplicate(relationship))))
            continue
        seen.add(identity)
        cycle = trial.find_cycle(_edge(relationship))
        if cycle:
            errors.append(RowError("relationships", row, "target", str(CycleDetected(cycle))))
            continue
        trial.add_edge(_edge(relationship))
        checked.append((row, relationship))
    existing = await repository.existing_relationships(uow.conn, seen)
    for row, relationship in checked:
        if (relationship.source_id, relationship.target_id, str(relationship.type)) in existing:
            errors.append(RowError("relationships", row, "type", str(_duplicate(relationship))))
    return [relationship for _, relationship in checked]


def _duplicate(relationship: Relationship) -> DuplicateRelationship:
    return DuplicateRelationship(relationship.source_id, relationship.target_id, str(relationship.type))
