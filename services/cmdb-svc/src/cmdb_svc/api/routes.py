"""HTTP routes of cmdb-svc for CIs, relationships and bulk import: parse, call one handler, shape the response."""

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse

from itsm_runtime.errors import Conflict, NotFound, Problem
from itsm_runtime.pagination import CursorParam, LimitParam, cursor_after, seq_after
from itsm_runtime.service import IdempotencyKey, RuntimeDep

from .. import handlers
from ..db import repository
from ..domain.graph import CycleDetected, Health
from ..domain.model import (
    Ci, DuplicateRelationship, IdTaken, InvalidCi, InvalidRelationship, KeyTaken, Relationship, UnknownCi,
)
from . import health, importing
from .deps import ActorHeader, GraphDep
from .schemas import (
    CiCreate, CiHistoryPage, CiPage, CiRead, CiTypeName, CiUpdate, CiVersionRead, HealthName, LifecycleName,
    RelationshipCreate, RelationshipPage, RelationshipRead,
)

router = APIRouter(prefix="/v1")
cis = APIRouter(prefix="/cis", tags=["cis"])
relationships = APIRouter(prefix="/relationships", tags=["relationships"])


def read_ci(ci: Ci, *, health: Health = Health.UP, health_since: datetime | None = None) -> CiRead:
    return CiRead(id=ci.id, name=ci.name, type=ci.type, key=ci.key, criticality=ci.criticality, owner=ci.owner,
                  status=ci.status, attributes=ci.attributes,
                  redundancy=ci.redundancy.as_dict() if ci.redundancy else None, version=ci.version,
                  health=health, health_since=health_since, created_at=ci.created_at, updated_at=ci.updated_at)


def _read_row(row: repository.CiRow) -> CiRead:
    return read_ci(row.ci, health=row.health, health_since=row.health_since)


def _read_relationship(relationship: Relationship) -> RelationshipRead:
    return RelationshipRead(id=relationship.id, source_id=relationship.source_id, target_id=relationship.target_id,
                            type=relationship.type, created_at=relationship.created_at)


def _invalid(exc: InvalidCi | InvalidRelationship | UnknownCi, *, error_type: str = "value_error") -> Problem:
    return Problem(422, str(exc), errors=[{"field": exc.field, "message": str(exc), "type": error_type}])


def cycle_problem(exc: CycleDetected) -> Problem:
    return Conflict(str(exc), cycle=exc.cycle)


@cis.post("", status_code=201, response_model=CiRead)
async def create_ci(ci_in: CiCreate, runtime: RuntimeDep, graph: GraphDep, actor: ActorHeader = None,
                    idempotency_key: IdempotencyKey = None):
    """Add a configuration item; a taken id or key is a 409.

    Business services: the CI id is the `service_id` the rest of the platform (incidents, SLAs)
    uses. Pass your own `id` (e.g. `payments`) to keep an existing service id; otherwise a UUID is
    assigned and that is the service id. The `key` is a separate unique business key.
    """

    async def create(uow):
        try:
            return read_ci(await handlers.create_ci(uow, graph, **ci_in.model_dump(), changed_by=actor))
        except IdTaken as exc:
            raise Conflict(str(exc), id=exc.ci_id) from exc
        except KeyTaken as exc:
            raise Conflict(str(exc), key=exc.key) from exc
        except InvalidCi as exc:
            raise _invalid(exc) from exc

    async with graph.lock:
        return await runtime.create_once(key=idempotency_key, scope="POST /v1/cis", request=ci_in, create=create)


@cis.get("/{ci_id}", response_model=CiRead)
async def get_ci(ci_id: str, runtime: RuntimeDep):
    async with runtime.engine.connect() as conn:
        row = await repository.get_ci_row(conn, ci_id)
    if row is None:
        raise NotFound("CI", ci_id)
    return _read_row(row)


@cis.patch("/{ci_id}", response_model=CiRead)
async def change_ci(ci_id: str, ci_in: CiUpdate, runtime: RuntimeDep, graph: GraphDep, actor: ActorHeader = None):
    """Change a CI: each real change is a new version in its history, with who (`changed_by` or the
    X-Actor header), when, the fields before and after, and the optional `change_ref`."""
    changes = ci_in.model_dump(exclude_unset=True, exclude={"changed_by", "change_ref"})
    async with graph.lock, runtime.uow() as uow:
        try:
            ci = await handlers.change_ci(uow, graph, ci_id=ci_id, changes=changes,
                                          changed_by=ci_in.changed_by or actor, change_ref=ci_in.change_ref)
        except KeyTaken as exc:
            raise Conflict(str(exc), key=exc.key) from exc
        except InvalidCi as exc:
            raise _invalid(exc) from exc
        if ci is None:
            raise NotFound("CI", ci_id)
        await uow.commit()
    async with runtime.engine.connect() as conn:
        return _read_row(await repository.get_ci_row(conn, ci_id))


@cis.get("/{ci_id}/history", response_model=CiHistoryPage)
async def ci_history(ci_id: str, runtime: RuntimeDep, limit: LimitParam = 50, cursor: CursorParam = None):
    """Versions of a CI, oldest first: version 1 is its creation."""
    after = seq_after(cursor)
    async with runtime.engine.connect() as conn:
        if await repository.get_ci(conn, ci_id) is None:
            raise NotFound("CI", ci_id)
        rows, last = await repository.list_versions(conn, ci_id=ci_id, after_version=after, limit=limit)
    return CiHistoryPage(items=[CiVersionRead(version=r.version, changed_at=r.changed_at, changed_by=r.changed_by,
                                              change_ref=r.change_ref, changes=r.changes) for r in rows],
                         next_cursor=cursor_after(last))


@cis.get("", response_model=CiPage)
async def list_cis(runtime: RuntimeDep, type: CiTypeName | None = None, status: LifecycleName | None = None,
                   criticality: Annotated[int | None, Query(ge=1, le=5)] = None,
                   owner: Annotated[str | None, Query(max_length=200)] = None, health: HealthName | None = None,
                   q: Annotated[str | None, Query(min_length=1, max_length=200,
                                                  description="Matches name or key, case-insensitively")] = None,
                   limit: LimitParam = 50, cursor: CursorParam = None):
    """Search CIs; every filter given must match. `status` is the lifecycle status, `health` the health."""
    after_seq = seq_after(cursor)
    async with runtime.engine.connect() as conn:
        items, last = await repository.search_cis(conn, type=type, status=status, criticality=criticality,
                                                  owner=owner, health=health, q=q, after_seq=after_seq, limit=limit)
    return CiPage(items=[_read_row(c) for c in items], next_cursor=cursor_after(last))


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
async def create_relationship(relationship_in: RelationshipCreate, runtime: RuntimeDep, graph: GraphDep,
                              idempotency_key: IdempotencyKey = None):
    """Relate two CIs; an unknown CI or a self-loop is a 422, an exact repeat a 409, and so is a
    dependency cycle (depends_on, runs_on, hosted_on, member_of), named in `cycle`."""

    async def create(uow):
        try:
            return _read_relationship(await handlers.create_relationship(uow, graph,
                                                                         **relationship_in.model_dump()))
        except DuplicateRelationship as exc:
            raise Conflict(str(exc)) from exc
        except CycleDetected as exc:
            raise cycle_problem(exc) from exc
        except InvalidRelationship as exc:
            raise _invalid(exc) from exc
        except UnknownCi as exc:
            raise _invalid(exc, error_type="not_found") from exc

    async with graph.lock:
        return await runtime.create_once(key=idempotency_key, scope="POST /v1/relationships",
                                         request=relationship_in, create=create)


@router.post("/import", status_code=201, tags=["import"], openapi_extra=importing.OPENAPI)
async def import_cis(request: Request, runtime: RuntimeDep, graph: GraphDep, actor: ActorHeader = None):
    """Import CIs and relationships in one transaction: all rows or none.

    `application/json`: `{"cis": [CiCreate...], "relationships": [{source_id | source_key,
    target_id | target_key, type}...]}`; relationships may name CIs of the same import by key.
    `text/csv`: CIs only, one per row, with a header of columns among id, key, name, type,
    criticality, owner, status, min_up, min_up_percent, attributes (a JSON object).
    Any bad row makes it a 422 whose `errors` list each bad row: section, row, field, message.
    """
    ci_rows, relationship_rows = await importing.parse(request)
    async with graph.lock, runtime.uow() as uow:
        try:
            imported = await handlers.import_graph(uow, graph, ci_rows=ci_rows, relationship_rows=relationship_rows,
                                                   changed_by=actor)
        except handlers.ImportRejected as exc:
            raise importing.rejected(exc.errors) from exc
        await uow.commit()
    return JSONResponse(importing.result(imported).model_dump(mode="json"), status_code=201)


router.include_router(cis)
router.include_router(relationships)
router.include_router(health.router)
