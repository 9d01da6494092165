"""Business calendars on real PostgreSQL: the REST resource with immutable versions, and CalendarStore."""

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from sla_svc.calendars import CalendarStore, UnknownCalendar
from sla_svc.db import repository
from sla_svc.domain.calendar import BusinessCalendar, TwentyFourSeven

OFFICE = {"name": "Office hours", "timezone": "Europe/Berlin",
          "hours": {day: [["09:00", "17:00"]] for day in ("mon", "tue", "wed", "thu", "fri")},
          "holidays": ["2026-12-24"], "holiday_country": "DE", "holiday_subdivision": "BY"}


async def make_calendar(sla, **changes) -> dict:
    response = await sla.post("/v1/calendars", json={"id": f"cal-{uuid.uuid4().hex[:8]}", **OFFICE, **changes})
    assert response.status_code == 201, response.text
    return response.json()


async def test_created_calendar_reads_back_with_its_normalised_definition(sla):
    calendar = await make_calendar(sla, hours={"mon": [["22:00", "24:00"]], "fri": [["09:00", "17:00"]]})
    assert calendar["version"] == 1 and calendar["name"] == "Office hours"
    assert calendar["timezone"] == "Europe/Berlin"
    assert calendar["hours"] == {"mon": [["22:00", "24:00"]], "tue": [], "wed": [], "thu": [],
                                 "fri": [["09:00", "17:00"]], "sat": [], "sun": []}
    assert calendar["holidays"] == ["2026-12-24"]
    assert (calendar["holiday_country"], calendar["holiday_subdivision"]) == ("DE", "BY")
    assert datetime.fromisoformat(calendar["created_at"]) <= datetime.now(UTC)
    assert (await sla.get(f"/v1/calendars/{calendar['id']}")).json() == calendar


async def test_calendar_without_an_id_gets_one(sla):
    response = await sla.post("/v1/calendars", json=OFFICE)
    assert response.status_code == 201
    assert (await sla.get(f"/v1/calendars/{response.json()['id']}")).status_code == 200


async def test_put_adds_a_version_and_earlier_versions_stay_readable(sla):
    first = await make_calendar(sla)
    url = f"/v1/calendars/{first['id']}"
    changed = {**OFFICE, "name": "Office hours (winter)", "timezone": "Europe/London"}
    response = await sla.put(url, json=changed)
    assert response.status_code == 200, response.text
    second = response.json()
    assert (second["version"], second["name"], second["timezone"]) == (2, "Office hours (winter)", "Europe/London")
    assert (await sla.put(url, json=changed)).json() == second  # a retried PUT adds nothing
    assert (await sla.get(url)).json() == second
    assert (await sla.get(url, params={"version": 1})).json() == first
    versions = (await sla.get(f"{url}/versions")).json()
    assert versions == {"items": [first, second], "next_cursor": None}
    page = (await sla.get(f"{url}/versions", params={"limit": 1})).json()
    assert page["items"] == [first]
    assert (await sla.get(f"{url}/versions", params={"cursor": page["next_cursor"]})).json()["items"] == [second]


@pytest.mark.parametrize(("changes", "field"), [
    ({"hours": {"monday": [["09:00", "17:00"]]}}, "hours"),
    ({"hours": {"mon": [["9:00", "17:00"]]}}, "hours.mon[0]"),
    ({"hours": {"mon": [["09:00", "25:00"]]}}, "hours.mon[0]"),
    ({"hours": {"mon": [["09:00", "12:00", "17:00"]]}}, "hours.mon[0]"),
    ({"hours": {"mon": [["09:00", "13:00"], ["12:00", "17:00"]]}}, "hours.mon"),
    ({"hours": {}}, "hours"),
    ({"timezone": "Europe/Atlantis"}, "timezone"),
    ({"holidays": ["2026-13-01"]}, "holidays[0]"),
    ({"holiday_country": "XX"}, "holiday_country"),
    ({"holiday_subdivision": "ZZ"}, "holiday_subdivision"),
])
async def test_invalid_definitions_are_422_naming_the_field(sla, changes, field):
    response = await sla.post("/v1/calendars", json={**OFFICE, **changes})
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["detail"].startswith(f"{field}: ")
    assert problem["errors"][0]["field"] == field
    calendar = await make_calendar(sla)
    assert (await sla.put(f"/v1/calendars/{calendar['id']}", json={**OFFICE, **changes})).status_code == 422


async def test_an_id_already_taken_is_409(sla):
    calendar = await make_calendar(sla)
    for taken in (calendar["id"], "24x7"):
        response = await sla.post("/v1/calendars", json={**OFFICE, "id": taken})
        assert response.status_code == 409
        assert response.headers["content-type"] == "application/problem+json"
    assert (await sla.put("/v1/calendars/24x7", json=OFFICE)).status_code == 409


async def test_put_with_another_id_in_the_body_is_422(sla):
    calendar = await make_calendar(sla)
    assert (await sla.put(f"/v1/calendars/{calendar['id']}", json={**OFFICE, "id": "other"})).status_code == 422


async def test_unknown_calendar_or_version_is_404(sla):
    calendar = await make_calendar(sla)
    for method, url, params in (("GET", "/v1/calendars/nope", {}), ("PUT", "/v1/calendars/nope", {}),
                                ("GET", "/v1/calendars/nope/versions", {}),
                                ("GET", f"/v1/calendars/{calendar['id']}", {"version": 2}),
                                ("GET", "/v1/calendars/24x7", {"version": 2})):
        response = await sla.request(method, url, params=params, json=OFFICE if method == "PUT" else None)
        assert response.status_code == 404, (method, url, params)
        assert response.headers["content-type"] == "application/problem+json"


async def test_retry_with_the_same_idempotency_key_returns_the_first_calendar(sla):
    headers = {"Idempotency-Key": uuid.uuid4().hex}
    first = await sla.post("/v1/calendars", json=OFFICE, headers=headers)
    retry = await sla.post("/v1/calendars", json=OFFICE, headers=headers)
    assert first.status_code == retry.status_code == 201
    assert retry.json() == first.json()
    other_body = await sla.post("/v1/calendars", json={**OFFICE, "name": "x"}, headers=headers)
    assert other_body.status_code == 422


async def test_list_shows_the_built_in_first_then_the_latest_version_of_each(sla):
    changed = await make_calendar(sla)
    await sla.put(f"/v1/calendars/{changed['id']}", json={**OFFICE, "name": "Changed"})
    plain = await make_calendar(sla)
    items, cursor = [], None
    while True:
        page = (await sla.get("/v1/calendars", params={"limit": 1, **({"cursor": cursor} if cursor else {})})).json()
        items += page["items"]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    builtin = items[0]
    assert (builtin["id"], builtin["version"], builtin["timezone"], builtin["created_at"]) == ("24x7", 1, "UTC", None)
    assert builtin["hours"]["sun"] == [["00:00", "24:00"]]
    by_id = {c["id"]: c for c in items}
    assert len(by_id) == len(items)
    assert (by_id[changed["id"]]["version"], by_id[changed["id"]]["name"]) == (2, "Changed")
    assert by_id[plain["id"]] == plain
    assert [c["id"] for c in items].index(changed["id"]) < [c["id"] for c in items].index(plain["id"])
    assert (await sla.get("/v1/calendars")).json()["items"] == items


async def test_agreement_may_use_a_created_calendar(sla):
    calendar = await make_calendar(sla)
    body = {"name": "Gold", "service_id": f"svc-{uuid.uuid4().hex[:8]}", "calendar_id": calendar["id"],
            "targets": [{"metric": "resolution", "priority": 1, "within": "PT8H"}]}
    response = await sla.post("/v1/agreements", json=body)
    assert response.status_code == 201, response.text
    assert response.json()["calendar_id"] == calendar["id"]
    response = await sla.post("/v1/agreements", json={**body, "calendar_id": "nope"})
    assert response.status_code == 422 and "nope" in response.json()["detail"]


# CalendarStore ---------------------------------------------------------------------------------

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


@pytest.mark.parametrize("fixed", [False, True], ids=["read each time", "read once (a rebuild's)"])
async def test_version_at_is_the_latest_version_created_by_then(sla, sla_app, fixed):
    hour = timedelta(hours=1)
    calendar_id = await stored_calendar(sla_app, T0, T0 + hour, T0 + 2 * hour)
    store = CalendarStore(fixed=fixed)
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
