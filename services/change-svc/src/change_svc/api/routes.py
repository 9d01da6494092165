"""HTTP routes of change-svc: parse, call one handler, shape the response."""

from dataclasses import asdict

from fastapi import APIRouter

from itsm_runtime.errors import NotFound, Problem
from itsm_runtime.pagination import CursorParam, LimitParam, cursor_after, seq_after
from itsm_runtime.service import IdempotencyKey, RuntimeDep

from .. import handlers
from ..db import repository
from ..domain.model import Change, InvalidChange
from .schemas import ChangeCreate, ChangePage, ChangeRead, ChangeTypeName, StatusName

router = APIRouter(prefix="/v1/changes", tags=["changes"])


def _read(change: Change) -> ChangeRead:
    values = asdict(change)
    values.pop("events")
    return ChangeRead(**values)




@router.post("", status_code=201, response_model=ChangeRead)
async def create_change(change_in: ChangeCreate, runtime: RuntimeDep, idempotency_key: IdempotencyKey = None):
    """Request a change; without a risk, the risk follows from its type."""

    async def create(uow):
        try:
            return _read(await handlers.request_change(uow, **change_in.model_dump()))
        except InvalidChange as exc:
            raise Problem(422, str(exc),
                          errors=[{"field": exc.field, "message": str(exc), "type": "value_error"}]) from exc

    return await runtime.create_once(key=idempotency_key, scope="POST /v1/changes", request=change_in, create=create)


@router.get("/{change_id}", response_model=ChangeRead)
async def get_change(change_id: str, runtime: RuntimeDep):
    async with runtime.engine.connect() as conn:
        change = await repository.get(conn, change_id)
    if change is None:
        raise NotFound("change", change_id)
    return _read(change)


@router.get("", response_model=ChangePage)
async def list_changes(runtime: RuntimeDep, status: StatusName | None = None, type: ChangeTypeName | None = None,
                       service_id: str | None = None, limit: LimitParam = 50, cursor: CursorParam = None):
    after_seq = seq_after(cursor)
    async with runtime.engine.connect() as conn:
        items, last = await repository.list_page(conn, status=status, type=type, service_id=service_id,
                                                 after_seq=after_seq, limit=limit)
    return ChangePage(items=[_read(c) for c in items], next_cursor=cursor_after(last))
