"""Business calendars as immutable versions, and a cache of loaded versions.

A change never alters a version; it adds the next one. The version a clock uses is the one in force
at its start (`CalendarStore.version_at`), so a calendar edit applies to clocks started afterwards
and replaying the same events picks the same versions.
"""

from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncConnection

from .db import repository
from .domain.calendar import BUILT_IN, BusinessCalendar, Calendar


class UnknownCalendar(LookupError):
    """No such calendar, or no such version of it."""


class CalendarStore:
    """Calendars by (id, version), cached for the life of the process: a stored version never changes."""

    def __init__(self) -> None:
        self._cache: dict[tuple[str, int], Calendar] = {(c.id, c.version): c for c in BUILT_IN.values()}

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

        Not cached: another replica may add a version at any moment.
        """
        if calendar_id in BUILT_IN:
            return BUILT_IN[calendar_id].version
        version = await repository.calendar_version_at(conn, calendar_id, at)
        if version is None:
            raise UnknownCalendar(f"calendar {calendar_id} does not exist")
        return version

    async def exists(self, conn: AsyncConnection, calendar_id: str) -> bool:
        """Whether the calendar exists (calendars are never deleted)."""
        return calendar_id in BUILT_IN or await repository.get_calendar_version(conn, calendar_id) is not None
