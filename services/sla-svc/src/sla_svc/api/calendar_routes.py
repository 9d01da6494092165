"""HTTP routes of business calendars: a version never changes, a PUT adds the next one."""

from typing import Annotated

from fastapi import APIRouter, Query

from itsm_runtime.errors import Problem
from itsm_runtime.pagination import CursorParam, LimitParam, cursor_after, seq_after
from itsm_runtime.service import IdempotencyKey, RuntimeDep

from .. import calendars
from .schemas import CalendarCreate, CalendarPage, CalendarRead

router = APIRouter(prefix="/v1/calendars", tags=["calendars"])


def _calendar_read(version: calendars.CalendarVersion) -> CalendarRead:
    return CalendarRead(id=version.id, name=version.name, version=version.version, created_at=version.created_at,
                        **version.definition)


def _definition(calendar_in: CalendarCreate) -> dict:
    return calendar_in.model_dump(exclude={"id", "name"})


@router.post("", status_code=201, response_model=CalendarRead)
async def create_calendar(calendar_in: CalendarCreate, runtime: RuntimeDep, idempotency_key: IdempotencyKey = None):
    """Create a calendar (version 1): working hours per weekday in a time zone, minus holidays."""
    async def create(uow):
        return _calendar_read(await calendars.create_calendar(
            uow, calendar_id=calendar_in.id, name=calendar_in.name, definition=_definition(calendar_in)))

    return await runtime.create_once(key=idempotency_key, scope="POST /v1/calendars", request=calendar_in,
                                     create=create)


@router.get("", response_model=CalendarPage)
async def list_calendars(runtime: RuntimeDep, limit: LimitParam = 50, cursor: CursorParam = None):
    """The latest version of every calendar; the built-in `24x7` comes first."""
    async with runtime.engine.connect() as conn:
        items, last = await calendars.list_latest(conn, after_seq=seq_after(cursor), limit=limit)
    return CalendarPage(items=[_calendar_read(v) for v in items], next_cursor=cursor_after(last))


@router.get("/{calendar_id}", response_model=CalendarRead)
async def get_calendar(calendar_id: str, runtime: RuntimeDep,
                       version: Annotated[int | None, Query(ge=1, le=2**31 - 1)] = None):
    """The latest version of the calendar, or the one asked for."""
    async with runtime.engine.connect() as conn:
        return _calendar_read(await calendars.get_version(conn, calendar_id, version))


@router.put("/{calendar_id}", response_model=CalendarRead)
async def change_calendar(calendar_id: str, calendar_in: CalendarCreate, runtime: RuntimeDep):
    """Add the calendar's next version, which applies to clocks started from now on; the same body again is a
    no-op."""
    if calendar_in.id not in (None, calendar_id):
        raise Problem(422, f"id: {calendar_in.id!r} does not match the path")
    async with runtime.uow() as uow:
        changed = await calendars.change_calendar(uow, calendar_id=calendar_id, name=calendar_in.name,
                                                  definition=_definition(calendar_in))
        await uow.commit()
    return _calendar_read(changed)


@router.get("/{calendar_id}/versions", response_model=CalendarPage)
async def list_calendar_versions(calendar_id: str, runtime: RuntimeDep, limit: LimitParam = 50,
                                 cursor: CursorParam = None):
    """Every version of the calendar, oldest first."""
    async with runtime.engine.connect() as conn:
        items, last = await calendars.versions(conn, calendar_id, after_version=seq_after(cursor), limit=limit)
    return CalendarPage(items=[_calendar_read(v) for v in items], next_cursor=cursor_after(last))
