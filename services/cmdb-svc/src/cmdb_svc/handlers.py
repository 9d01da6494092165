"""Use cases of cmdb-svc: commands in, domain events out through the outbox."""

import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from itsm_events import UnitOfWork, schemas

from .db import repository
from .domain.model import (
    Ci, CiAdded, DuplicateRelationship, KeyTaken, Relationship, RelationshipAdded, UnknownCi,
)


def publish_ci(uow: UnitOfWork, ci: Ci) -> None:
    """Map the CI's recorded domain events to public events in the outbox."""
    for event in ci.events:
        match event:
            case CiAdded(at=at):
                data = schemas.CiCreated(ci_id=ci.id, name=ci.name, type=str(ci.type), key=ci.key,
                                         criticality=ci.criticality)
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


async def create_ci(uow: UnitOfWork, *, name: str, type: str, key: str | None = None,
                    criticality: int | None = None, attributes: Mapping[str, Any] | None = None,
                    redundancy: Mapping[str, Any] | None = None) -> Ci:
    """Add a CI; a key another CI holds is a KeyTaken."""
    ci = Ci.create(id=str(uuid.uuid4()), name=name, type=type, key=key, criticality=criticality,
                   attributes=attributes, redundancy=redundancy, created_at=datetime.now(UTC))
    if not await repository.add_ci(uow.conn, ci):
        raise KeyTaken(key)
    publish_ci(uow, ci)
    return ci


async def create_relationship(uow: UnitOfWork, *, source_id: str, target_id: str, type: str) -> Relationship:
    """Relate two existing CIs; an unknown CI is an UnknownCi, an exact repeat a DuplicateRelationship."""
    relationship = Relationship.create(id=str(uuid.uuid4()), source_id=source_id, target_id=target_id, type=type,
                                       created_at=datetime.now(UTC))
    existing = await repository.existing_ci_ids(uow.conn, [source_id, target_id])
    for field, ci_id in (("source_id", source_id), ("target_id", target_id)):
        if ci_id not in existing:
            raise UnknownCi(ci_id, field=field)
    if not await repository.add_relationship(uow.conn, relationship):
        raise DuplicateRelationship(source_id, target_id, type)
    publish_relationship(uow, relationship)
    return relationship
