"""Business calendars on real PostgreSQL: CalendarStore."""

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from itsm_runtime.testing import running_app
from sla_svc.calendars import CalendarStore, UnknownCalendar
from sla_svc.db import repository
from sla_svc.domain.calendar import BusinessCalendar, TwentyFourSeven
from sla_svc.main import create_app as create_sla_app
from sla_svc.settings import Settings as SlaSettings

@pytest.fixture(scope="module")
async def sla_app(service_settings):
    return create_sla_app(service_settings(SlaSettings, db_schema=f"sla_{uuid.uuid4().hex[:6]}"))


@pytest.fixture(scope="module")
async def sla(sla_app):
    async with running_app(sla_app) as client:
        yield client


T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


async def stored_calendar(sla_app, *created_at: datetime) -> str:
    """A calendar whose versions 1, 2, ... were created at these instants; version n is open n hours a day."""
    calendar_id = f"cal-{uuid.uuid4().hex[:8]}"
    async with sla_app.state.runtime.engine.begin() as conn:
        for version, at in enumerate(created_at, start=1):
            definition = {"timezone": "UTC", "hours": {"mon": [["00:00", f"{version:02d}:00"]]}}
            await repository.add_calendar_version(conn, id=calendar_id, version=version, name="c",
                                                  definition=definition, created_at=at)
    return calendar_id


async def test_version_at_is_the_latest_version_created_by_then(sla, sla_app):
    hour = timedelta(hours=1)
    calendar_id = await stored_calendar(sla_app, T0, T0 + hour, T0 + 2 * hour)
    store = CalendarStore()
    async with sla_app.state.runtime.engine.connect() as conn:
        assert await store.version_at(conn, calendar_id, T0 - hour) == 1  # before every version: the first
        assert await store.version_at(conn, calendar_id, T0) == 1
        assert await store.version_at(conn, calendar_id, T0 + hour - timedelta(microseconds=1)) == 1
        assert await store.version_at(conn, calendar_id, T0 + hour) == 2
        assert await store.version_at(conn, calendar_id, T0 + 1.5 * hour) == 2
        assert await store.version_at(conn, calendar_id, T0 + 10 * hour) == 3
        assert await store.version_at(conn, "24x7", T0) == 1
        with pytest.raises(UnknownCalendar):
            await store.version_at(conn, "nope", T0)


async def test_store_gets_each_version_and_keeps_it(sla, sla_app):
    calendar_id = await stored_calendar(sla_app, T0, T0 + timedelta(hours=1))
    store = CalendarStore()
    async with sla_app.state.runtime.engine.connect() as conn:
        second = await store.get(conn, calendar_id, 2)
        assert isinstance(second, BusinessCalendar) and (second.id, second.version) == (calendar_id, 2)
        assert second.between(T0, T0 + timedelta(days=7)) == 2 * 3600  # Monday 00:00-02:00 in version 2
        assert (await store.get(conn, calendar_id, 1)).between(T0, T0 + timedelta(days=7)) == 3600
        assert isinstance(await store.get(conn, "24x7", 1), TwentyFourSeven)
        assert await store.exists(conn, calendar_id) and await store.exists(conn, "24x7")
        assert not await store.exists(conn, "nope")
        with pytest.raises(UnknownCalendar):
            await store.get(conn, calendar_id, 3)
    assert await store.get(None, calendar_id, 2) is second  # cached: no database needed any more
