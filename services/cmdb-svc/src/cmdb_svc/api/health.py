"""HTTP routes of cmdb-svc for health: signals, service availability, impact and graph queries."""

import json
from datetime import UTC, datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request
from fastapi.exceptions import RequestValidationError
from pydantic import TypeAdapter, ValidationError

from itsm_runtime.errors import NotFound, Problem
from itsm_runtime.pagination import CursorParam, LimitParam, cursor_after, seq_after
from itsm_runtime.service import RuntimeDep

from .. import handlers
from ..db import repository
from ..domain.graph import CiHealth, Health, Signal, impact_of_failure
from ..domain.model import CiType
from .deps import GraphDep
from .schemas import (
    AvailabilityChange, AvailabilityRead, GraphCi, GraphRead, GraphRelationship, ImpactedService, ImpactRead,
    PathStep, SignalBatch, SignalIn, SignalRead, SignalsResult, StatusChangeRead,
)

router = APIRouter()

_SIGNALS = TypeAdapter(list[SignalIn])
_SIGNAL_SCHEMA = SignalIn.model_json_schema()
_SIGNALS_OPENAPI = {"requestBody": {"required": True, "content": {"application/json": {"schema": {"anyOf": [
    _SIGNAL_SCHEMA,
    {"type": "object", "title": "SignalBatch", "required": ["signals"], "additionalProperties": False,
     "properties": {"signals": {"type": "array", "items": _SIGNAL_SCHEMA, "minItems": 1, "maxItems": 10_000}}},
    {"type": "array", "items": _SIGNAL_SCHEMA, "minItems": 1, "maxItems": 10_000},
]}}}}}
DepthParam = Annotated[int, Query(ge=1, le=50, description="How many relationships away to go")]


def _parse_signals(body: bytes) -> list[SignalIn]:
    """One signal, `{"signals": [...]}` or a JSON list of signals; field errors as a 422."""
    try:
        document = json.loads(body)
    except ValueError as exc:
        raise Problem(422, f"the body is not valid JSON: {exc}") from None
    try:
        if isinstance(document, list):
            if not 1 <= len(document) <= 10_000:
                raise Problem(422, "send between 1 and 10000 signals")
            return _SIGNALS.validate_python(document)
        if isinstance(document, dict) and "signals" in document:
            return SignalBatch.model_validate(document).signals
        return [SignalIn.model_validate(document)]
    except ValidationError as exc:
        raise RequestValidationError([e | {"loc": ("body", *e["loc"])} for e in exc.errors()]) from None


@router.post("/signals", tags=["health"], response_model=SignalsResult, openapi_extra=_SIGNALS_OPENAPI)
async def record_signals(request: Request, runtime: RuntimeDep, graph: GraphDep):
    """Component health from monitoring: one signal, `{"signals": [...]}` or a list.

    Signals apply in `observed_at` order. The CIs that need a changed CI are recomputed (down if a
    hard dependency is down, degraded if one is degraded; clusters by their redundancy rule) and
    `itsm.cmdb.ci_status_changed` is published for each CI whose status changes, plus
    `itsm.cmdb.service_availability_changed` for each business service among them. A signal observed
    before the newest one applied to its CI is late: recorded and returned in `late`, not applied.
    A signal naming an unknown CI rejects the whole batch (422, nothing applied).
    """
    signals_in = _parse_signals(await request.body())
    received_at = datetime.now(UTC)
    signals = [Signal(ci_id=s.ci_id, status=Health(s.status), observed_at=s.observed_at or received_at,
                      source=s.source) for s in signals_in]
    async with graph.lock, runtime.uow() as uow:
        try:
            outcome = await handlers.record_signals(uow, graph, signals)
        except handlers.UnknownSignalledCis as exc:
            raise Problem(422, str(exc), errors=[
                {"field": f"signals.{i}.ci_id", "message": f"CI {ci_id} does not exist", "type": "not_found"}
                for i, ci_id in exc.unknown]) from exc
        await uow.commit()
    return SignalsResult(
        received=len(signals), applied=len(outcome.applied),
        late=[SignalRead(ci_id=s.ci_id, status=s.status, observed_at=s.observed_at) for s in outcome.late],
        changes=[StatusChangeRead(ci_id=c.ci_id, previous_status=c.previous, status=c.status,
                                  observed_at=c.observed_at, cause_ci_ids=list(c.cause_ci_ids))
                 for c in outcome.changes])


@router.get("/services/{service_id}/availability", tags=["health"], response_model=AvailabilityRead)
async def service_availability(service_id: str, runtime: RuntimeDep, limit: LimitParam = 50,
                               cursor: CursorParam = None):
    """Current status of a business service (the CI whose id is `service_id`) and its changes, newest first."""
    before = seq_after(cursor)
    async with runtime.engine.connect() as conn:
        ci = await repository.get_ci(conn, service_id)
        if ci is None or ci.type != CiType.BUSINESS_SERVICE:
            raise NotFound("business service", service_id)
        health = await repository.health_of(conn, service_id) or CiHealth()
        rows, last = await repository.status_changes(conn, ci_id=service_id, before_seq=before, limit=limit)
        latest, _ = await repository.status_changes(conn, ci_id=service_id, before_seq=None, limit=1)
    # While not up: the root causes as they stand. Once up: what recovered, as the last change named it.
    recovered_by = latest[0].cause_ci_ids if latest else []
    causes = list(health.causes) if health.status != Health.UP else recovered_by
    return AvailabilityRead(
        service_id=service_id, name=ci.name, status=health.status, since=health.since, cause_ci_ids=causes,
        history=[AvailabilityChange(previous_status=r.previous_status, status=r.status, observed_at=r.observed_at,
                                    cause_ci_ids=r.cause_ci_ids) for r in rows],
        next_cursor=cursor_after(last))


async def _known(runtime, graph, ci_id: str) -> None:
    await graph.refresh(runtime.engine)
    if ci_id not in graph.topology:
        raise NotFound("CI", ci_id)


@router.get("/cis/{ci_id}/impact", tags=["health"], response_model=ImpactRead)
async def ci_impact(ci_id: str, runtime: RuntimeDep, graph: GraphDep,
                    baseline: Literal["all_up", "current"] = "all_up"):
    """Business services that would go down or degrade if this CI failed, each with a path to it.

    Redundancy counts: a server that is one of two members of a `min_up: 1` cluster degrades the
    services above the cluster instead of taking them down. `baseline=all_up` (default) assumes
    everything else is up; `baseline=current` starts from the health the CMDB holds now, and lists
    only services the failure would make worse.
    """
    await _known(runtime, graph, ci_id)
    impacts = impact_of_failure(graph.topology, graph.health if baseline == "current" else {}, ci_id)
    async with runtime.engine.connect() as conn:
        names = await repository.ci_names(conn, {c for i in impacts for c in i.path})
    services = []
    for impact in impacts:
        path = impact.path
        steps = [PathStep(ci_id=c, name=names[c][0], type=names[c][1],
                          via=graph.topology.edges_between(path[n - 1], c)[0].type if n else None)
                 for n, c in enumerate(path)]
        services.append(ImpactedService(service_id=impact.service_id, name=names[impact.service_id][0],
                                        status=impact.status, path=steps))
    return ImpactRead(ci_id=ci_id, baseline=baseline, services=services)


async def _graph_query(runtime, graph, ci_id: str, *, upstream: bool, depth: int) -> GraphRead:
    await _known(runtime, graph, ci_id)
    distances, pairs = graph.topology.walk(ci_id, upstream=upstream, depth=depth)
    async with runtime.engine.connect() as conn:
        names = await repository.ci_names(conn, distances)
    cis = [GraphCi(id=c, name=names[c][0], type=names[c][1], key=names[c][2],
                   health=graph.health[c].status if c in graph.health else Health.UP, distance=d)
           for c, d in sorted(distances.items(), key=lambda item: (item[1], item[0])) if c != ci_id]
    relationships = [GraphRelationship(source_id=e.source_id, target_id=e.target_id, type=e.type)
                     for needer, needed in pairs for e in graph.topology.edges_between(needer, needed)]
    return GraphRead(ci_id=ci_id, direction="upstream" if upstream else "downstream", depth=depth, cis=cis,
                     relationships=relationships)


@router.get("/cis/{ci_id}/upstream", tags=["health"], response_model=GraphRead)
async def ci_upstream(ci_id: str, runtime: RuntimeDep, graph: GraphDep, depth: DepthParam = 3):
    """CIs that need this one, up to `depth` relationships away: what its failure can affect.

    Follows depends_on, runs_on and hosted_on from target to source, and member_of from member to
    cluster; connects_to implies no dependency and is not followed.
    """
    return await _graph_query(runtime, graph, ci_id, upstream=True, depth=depth)


@router.get("/cis/{ci_id}/downstream", tags=["health"], response_model=GraphRead)
async def ci_downstream(ci_id: str, runtime: RuntimeDep, graph: GraphDep, depth: DepthParam = 3):
    """CIs this one needs, up to `depth` relationships away: its hard dependencies and, for a cluster, its members."""
    return await _graph_query(runtime, graph, ci_id, upstream=False, depth=depth)
