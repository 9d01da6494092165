"""HTTP routes of incident-svc: parse, call one handler, shape the response."""

from dataclasses import asdict
from typing import Annotated

from fastapi import APIRouter, Query

from itsm_runtime.errors import Conflict, NotFound, Problem
from itsm_runtime.pagination import CursorParam, LimitParam, cursor_after, seq_after
from itsm_runtime.service import IdempotencyKey, RuntimeDep

from .. import handlers
from ..db import repository
from ..domain.model import IllegalTransition, Incident, InvalidIncident
from .schemas import IncidentCreate, IncidentPage, IncidentRead, IncidentUpdate, Level, StatusName

router = APIRouter(prefix="/v1/incidents", tags=["incidents"])


def _read(incident: Incident) -> IncidentRead:
    values = asdict(incident)
    values.pop("events")
    return IncidentRead(**values)


@router.post("", status_code=201, response_model=IncidentRead)
async def create_incident(incident_in: IncidentCreate, runtime: RuntimeDep, idempotency_key: IdempotencyKey = None):
    """Open an incident; its priority follows the ITIL impact x urgency matrix."""

    async def create(uow):
        return _read(await handlers.open_incident(uow, **incident_in.model_dump()))

    return await runtime.create_once(key=idempotency_key, scope="POST /v1/incidents", request=incident_in,
                                     create=create)


@router.get("/{incident_id}", response_model=IncidentRead)
async def get_incident(incident_id: str, runtime: RuntimeDep):
    async with runtime.engine.connect() as conn:
        incident = await repository.get(conn, incident_id)
    if incident is None:
        raise NotFound("incident", incident_id)
    return _read(incident)


@router.get("", response_model=IncidentPage)
async def list_incidents(runtime: RuntimeDep, status: StatusName | None = None, service_id: str | None = None,
                         priority: Annotated[int | None, Query(ge=1, le=5)] = None, limit: LimitParam = 50,
                         cursor: CursorParam = None):
    async with runtime.engine.connect() as conn:
        items, last = await repository.list_page(conn, status=status, service_id=service_id, priority=priority,
                                                 after_seq=seq_after(cursor), limit=limit)
    return IncidentPage(items=[_read(i) for i in items], next_cursor=cursor_after(last))


@router.patch("/{incident_id}", response_model=IncidentRead)
async def update_incident(incident_id: str, incident_in: IncidentUpdate, runtime: RuntimeDep):
    """Move the incident through its lifecycle or reassess it; an illegal transition is a 409."""
    changes = incident_in.model_dump(exclude_unset=True)
    if not changes:
        raise Problem(422, "the request changes nothing")
    async with runtime.uow() as uow:
        incident = await repository.get(uow.conn, incident_id, for_update=True)
        if incident is None:
            raise NotFound("incident", incident_id)
        try:
            await handlers.update_incident(uow, incident, changes=changes)
        except IllegalTransition as exc:
            raise Conflict(str(exc), current_status=str(exc.current), requested_status=str(exc.requested)) from exc
        except InvalidIncident as exc:
            raise Problem(422, str(exc)) from exc
        await uow.commit()
    return _read(incident)


__all__ = ["router", "Level"]
