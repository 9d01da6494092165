"""Business calendars as immutable versions: creating one, adding versions, and a cache of loaded versions.

A change never alters a version; it adds the next one. The version a clock uses is the one in force
at its start (`CalendarStore.version_at`), so a calendar edit applies to clocks started afterwards
and replaying the same events picks the same versions.
"""

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncConnection

from itsm_events import UnitOfWork
from itsm_runtime.errors import Conflict, NotFound, Problem

from .db import repository
from .domain.calendar import BUILT_IN, WEEKDAYS, BusinessCalendar, Calendar, InvalidCalendar, build_calendar


class UnknownCalendar(LookupError):
    """No such calendar, or no such version of it."""


@dataclass(frozen=True)
class CalendarVersion:
    """One stored version: its name and definition (`BusinessCalendar.to_dict()`) as shown by the API."""

    id: str
    version: int
    name: str
    definition: dict
    created_at: datetime | None  # None for a built-in calendar, which has always existed


BUILT_IN_VERSIONS = {
    "24x7": CalendarVersion(id="24x7", version=1, name="24 hours, 7 days", created_at=None, definition=build_calendar(
        id="24x7", version=1, timezone="UTC", hours={day: [["00:00", "24:00"]] for day in WEEKDAYS}).to_dict()),
}


def _version_of(row) -> CalendarVersion:
    return CalendarVersion(id=row.id, version=row.version, name=row.name, definition=row.definition,
                           created_at=row.created_at)


def _definition(calendar_id: str, version: int, definition: dict) -> dict:
    """The normalised definition; an invalid one is a 422 naming the field."""
    try:
        return build_calendar(id=calendar_id, version=version, **definition).to_dict()
    except InvalidCalendar as exc:
        field, _, message = str(exc).partition(": ")
        raise Problem(422, str(exc), errors=[{"field": field, "message": message, "type": "value_error"}]) from exc


async def create_calendar(uow: UnitOfWork, *, calendar_id: str | None, name: str,
                          definition: dict) -> CalendarVersion:
    """Add version 1 of a new calendar; an id already taken is a 409."""
    calendar_id = calendar_id or str(uuid.uuid4())
    normalised = _definition(calendar_id, 1, definition)
    if calendar_id in BUILT_IN or not await repository.add_calendar_version(
            uow.conn, id=calendar_id, version=1, name=name, definition=normalised, created_at=datetime.now(UTC)):
        raise Conflict(f"calendar {calendar_id} already exists")
    return await get_version(uow.conn, calendar_id, 1)


async def change_calendar(uow: UnitOfWork, *, calendar_id: str, name: str, definition: dict) -> CalendarVersion:
    """Add the next version of an existing calendar, unless it would equal the latest (a retried PUT)."""
    if calendar_id in BUILT_IN:
        raise Conflict(f"the built-in calendar {calendar_id} cannot be changed")
    latest = await get_version(uow.conn, calendar_id)
    version = latest.version + 1
    normalised = _definition(calendar_id, version, definition)
    if (name, normalised) == (latest.name, latest.definition):
        return latest
    if not await repository.add_calendar_version(uow.conn, id=calendar_id, version=version, name=name,
                                                 definition=normalised, created_at=datetime.now(UTC)):
        raise Conflict(f"calendar {calendar_id} was changed at the same time; retry")
    return await get_version(uow.conn, calendar_id, version)


async def get_version(conn: AsyncConnection, calendar_id: str, version: int | None = None) -> CalendarVersion:
    """This version of the calendar, or its latest; 404 if there is none."""
    if calendar_id in BUILT_IN_VERSIONS and version in (None, 1):
        return BUILT_IN_VERSIONS[calendar_id]
    row = await repository.get_calendar_version(conn, calendar_id, version)
    if row is None:
        raise NotFound("calendar", calendar_id if version is None else f"{calendar_id} version {version}")
    return _version_of(row)


async def versions(conn: AsyncConnection, calendar_id: str, *, after_version: int | None,
                   limit: int) -> tuple[list[CalendarVersion], int | None]:
    """The calendar's versions, oldest first; 404 if it does not exist."""
    if calendar_id in BUILT_IN_VERSIONS:
        return ([BUILT_IN_VERSIONS[calendar_id]] if after_version is None else []), None
    rows, last = await repository.calendar_versions(conn, calendar_id, after_version=after_version, limit=limit)
    if not rows and after_version is None:
        raise NotFound("calendar", calendar_id)
    return [_version_of(r) for r in rows], last


async def list_latest(conn: AsyncConnection, *, after_seq: int | None,
                      limit: int) -> tuple[list[CalendarVersion], int | None]:
    """The latest version of each calendar, the built-in ones first (they come before sequence number 1)."""
    items = list(BUILT_IN_VERSIONS.values()) if after_seq is None else []
    if len(items) >= limit:
        return items[:limit], 0
    rows, last = await repository.list_calendars(conn, after_seq=after_seq, limit=limit - len(items))
    return items + [_version_of(r) for r in rows], last


class CalendarStore:
    """Calendars by (id, version), cached for the life of the process: a stored version never changes."""

    def __init__(self, *, fixed: bool = False) -> None:
        """`fixed`: no version is added while the store is used (a rebuild reads a copy), so the instants
        at which each calendar's versions came into force are read once, not once per clock."""
        self._cache: dict[tuple[str, int], Calendar] = {(c.id, c.version): c for c in BUILT_IN.values()}
        self._fixed = fixed
        self._created: dict[str, list[tuple[datetime, int]]] = {}  # when fixed: calendar id -> (created_at, version)

    async def get(self, conn: AsyncConnection, calendar_id: str, version: int) -> Calendar:
        """The calendar as it was in `version`; UnknownCalendar if there is no such version."""
        calendar = self._cache.get((calendar_id, version))
        if calendar is None:
            row = await repository.get_calendar_version(conn, calendar_id, version)
            if row is None:
                raise UnknownCalendar(f"calendar {calendar_id} version {version} does not exist")
            calendar = BusinessCalendar.from_dict(calendar_id, version, row.definition)
            self._cache[(calendar_id, version)] = calendar
        return calendar

    async def version_at(self, conn: AsyncConnection, calendar_id: str, at: datetime) -> int:
        """The latest version created at or before `at`, or version 1 if all came later.

        Not cached unless the store is `fixed`: another replica may add a version at any moment.
        """
        if calendar_id in BUILT_IN:
            return BUILT_IN[calendar_id].version
        created = self._created.get(calendar_id)
        if created is None:
            created = await repository.calendar_versions_created(conn, calendar_id)
            if self._fixed:
                self._created[calendar_id] = created
        version = max((v for when, v in created if when <= at), default=min((v for _, v in created), default=None))
        if version is None:
            raise UnknownCalendar(f"calendar {calendar_id} does not exist")
        return version

    async def current(self, conn: AsyncConnection, calendar_id: str, at: datetime) -> Calendar:
        """The calendar as it is in force at `at`."""
        return await self.get(conn, calendar_id, await self.version_at(conn, calendar_id, at))

    async def exists(self, conn: AsyncConnection, calendar_id: str) -> bool:
        """Whether the calendar exists (calendars are never deleted)."""
        return calendar_id in BUILT_IN or await repository.get_calendar_version(conn, calendar_id) is not None
