"""HTTP routes of cmdb-svc: parse, call one handler, shape the response."""


from fastapi import APIRouter

from itsm_runtime.errors import Conflict, NotFound, Problem
from itsm_runtime.pagination import CursorParam, LimitParam, cursor_after, seq_after
from itsm_runtime.service import IdempotencyKey, RuntimeDep

from .. import handlers
from ..db import repository
from ..domain.model import (
    Ci, DuplicateRelationship, InvalidCi, InvalidRelationship, KeyTaken, Relationship, UnknownCi,
)
from .schemas import (
    CiCreate, CiPage, CiRead, CiTypeName, RelationshipCreate, RelationshipPage, RelationshipRead,
)

router = APIRouter(prefix="/v1")
cis = APIRouter(prefix="/cis", tags=["cis"])
relationships = APIRouter(prefix="/relationships", tags=["relationships"])


def _read_ci(ci: Ci) -> CiRead:
    return CiRead(id=ci.id, name=ci.name, type=ci.type, key=ci.key, criticality=ci.criticality,
                  attributes=ci.attributes, redundancy=ci.redundancy.as_dict() if ci.redundancy else None,
                  created_at=ci.created_at, updated_at=ci.updated_at)


def _read_relationship(relationship: Relationship) -> RelationshipRead:
    return RelationshipRead(id=relationship.id, source_id=relationship.source_id, target_id=relationship.target_id,
                            type=relationship.type, created_at=relationship.created_at)




def _invalid(exc: InvalidCi | InvalidRelationship | UnknownCi, *, error_type: str = "value_error") -> Problem:
    return Problem(422, str(exc), errors=[{"field": exc.field, "message": str(exc), "type": error_type}])


@cis.post("", status_code=201, response_model=CiRead)
async def create_ci(ci_in: CiCreate, runtime: RuntimeDep, idempotency_key: IdempotencyKey = None):
    """Add a configuration item; a key another CI holds is a 409."""

    async def create(uow):
        try:
            return _read_ci(await handlers.create_ci(uow, **ci_in.model_dump()))
        except KeyTaken as exc:
            raise Conflict(str(exc), key=exc.key) from exc
        except InvalidCi as exc:
            raise _invalid(exc) from exc

    return await runtime.create_once(key=idempotency_key, scope="POST /v1/cis", request=ci_in, create=create)


@cis.get("/{ci_id}", response_model=CiRead)
async def get_ci(ci_id: str, runtime: RuntimeDep):
    async with runtime.engine.connect() as conn:
        ci = await repository.get_ci(conn, ci_id)
    if ci is None:
        raise NotFound("CI", ci_id)
    return _read_ci(ci)


@cis.get("", response_model=CiPage)
async def list_cis(runtime: RuntimeDep, type: CiTypeName | None = None, limit: LimitParam = 50,
                   cursor: CursorParam = None):
    after_seq = seq_after(cursor)
    async with runtime.engine.connect() as conn:
        items, last = await repository.list_cis(conn, type=type, after_seq=after_seq, limit=limit)
    return CiPage(items=[_read_ci(c) for c in items], next_cursor=cursor_after(last))


@cis.get("/{ci_id}/relationships", response_model=RelationshipPage)
async def list_ci_relationships(ci_id: str, runtime: RuntimeDep, limit: LimitParam = 50,
                                cursor: CursorParam = None):
    """Relationships in which the CI is the source or the target."""
    after_seq = seq_after(cursor)
    async with runtime.engine.connect() as conn:
        if await repository.get_ci(conn, ci_id) is None:
            raise NotFound("CI", ci_id)
        items, last = await repository.list_relationships(conn, ci_id=ci_id, after_seq=after_seq, limit=limit)
    return RelationshipPage(items=[_read_relationship(r) for r in items],
                            next_cursor=cursor_after(last))


@relationships.post("", status_code=201, response_model=RelationshipRead)
async def create_relationship(relationship_in: RelationshipCreate, runtime: RuntimeDep,
                              idempotency_key: IdempotencyKey = None):
    """Relate two CIs; an unknown CI or a self-loop is a 422, an exact repeat a 409."""

    async def create(uow):
        try:
            return _read_relationship(await handlers.create_relationship(uow, **relationship_in.model_dump()))
        except DuplicateRelationship as exc:
            raise Conflict(str(exc)) from exc
        except InvalidRelationship as exc:
            raise _invalid(exc) from exc
        except UnknownCi as exc:
            raise _invalid(exc, error_type="not_found") from exc

    return await runtime.create_once(key=idempotency_key, scope="POST /v1/relationships", request=relationship_in,
                                     create=create)


router.include_router(cis)
router.include_router(relationships)
