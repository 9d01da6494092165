"""Loading and saving agreements and clocks with SQLAlchemy Core."""

from datetime import timedelta

import orjson
import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from itsm_events.sql import among, driver, execute_columns, unnest
from itsm_runtime.pagination import keyset_page

from ..domain.agreement import Agreement, AvailabilityObjective, Objective, RatioObjective, Target
from ..domain.clock import Clock
from ..domain.fold import ClockState, Fact
from .tables import (
    agreements, burn_alerts, calendars, clocks, incident_facts, maintenance_windows, objective_breaches,
    objective_rechecks, reports_published, service_status,
)


def objective_dict(objective: Objective) -> dict:
    """An objective as stored and as the API shows it."""
    common = {"id": objective.id, "kind": objective.kind, "target": objective.target, "window": objective.window}
    if isinstance(objective, RatioObjective):
        return {**common, "within_seconds": objective.within.total_seconds(),
                "priorities": list(objective.priorities)}
    return {**common, "exclude_maintenance": objective.exclude_maintenance}


def _objective(data: dict) -> Objective:
    if data["kind"] == "resolution_ratio":
        return RatioObjective(id=data["id"], target=data["target"], window=data["window"],
                              within=timedelta(seconds=data["within_seconds"]),
                              priorities=tuple(data["priorities"]))
    return AvailabilityObjective(**data)


def agreement_from_row(row) -> Agreement:
    return Agreement(
        id=row.id, name=row.name, service_id=row.service_id, customer_id=row.customer_id,
        calendar_id=row.calendar_id,
        targets=tuple(Target(metric=t["metric"], priority=t["priority"], within=timedelta(seconds=t["seconds"]))
                      for t in row.targets),
        warning_thresholds=tuple(row.warning_thresholds), pause_on=tuple(row.pause_on),
        objectives=tuple(_objective(o) for o in row.objectives),
        effective_from=row.effective_from, extra={"created_at": row.created_at},
    )


async def add_agreement(conn: AsyncConnection, agreement: Agreement, *, created_at) -> None:
    await conn.execute(agreements.insert().values(
        id=agreement.id, name=agreement.name, service_id=agreement.service_id, customer_id=agreement.customer_id,
        calendar_id=agreement.calendar_id,
        targets=[{"metric": t.metric, "priority": t.priority, "seconds": t.within.total_seconds()}
                 for t in agreement.targets],
        warning_thresholds=list(agreement.warning_thresholds), pause_on=list(agreement.pause_on),
        objectives=[objective_dict(o) for o in agreement.objectives],
        effective_from=agreement.effective_from, created_at=created_at,
    ))


async def get_agreement(conn: AsyncConnection, agreement_id: str) -> Agreement | None:
    row = (await conn.execute(sa.select(agreements).where(agreements.c.id == agreement_id))).first()
    return agreement_from_row(row) if row else None


async def get_agreements(conn: AsyncConnection, agreement_ids) -> dict[str, Agreement]:
    rows = (await conn.execute(sa.select(agreements).where(agreements.c.id.in_(list(agreement_ids)))
                               .order_by(agreements.c.id))).all()
    return {r.id: agreement_from_row(r) for r in rows}


async def agreement_ids(conn: AsyncConnection) -> list[str]:
    return list((await conn.execute(sa.select(agreements.c.id).order_by(agreements.c.created_seq))).scalars())


async def agreements_for_service(conn: AsyncConnection, service_id: str) -> list[Agreement]:
    rows = (await conn.execute(sa.select(agreements).where(agreements.c.service_id == service_id)
                               .order_by(agreements.c.created_seq))).all()
    return [agreement_from_row(r) for r in rows]


async def list_agreements(conn: AsyncConnection, *, service_id: str | None, after_seq: int | None,
                          limit: int) -> tuple[list[Agreement], int | None]:
    stmt = sa.select(agreements)
    if service_id:
        stmt = stmt.where(agreements.c.service_id == service_id)
    rows, last = await keyset_page(conn, stmt, agreements.c.created_seq, after=after_seq, limit=limit)
    return [agreement_from_row(r) for r in rows], last


def clock_from_row(row) -> Clock:
    return Clock(id=row.id, agreement_id=row.agreement_id, incident_id=row.incident_id, service_id=row.service_id,
                 customer_id=row.customer_id, metric=row.metric, calendar_id=row.calendar_id,
                 calendar_version=row.calendar_version, state=ClockState.from_dict(orjson.loads(row.state)),
                 objective_id=row.objective_id, published=set(orjson.loads(row.published)),
                 row_version=row._mapping.get("row_version"))


# The columns that change as a clock moves on, with their types, in the order of `saved_columns`.
_MUTABLE = {"priority": "smallint", "target_seconds": "float8", "stage": "text", "deadline": "timestamptz",
            "warnings_fired": "smallint", "breached": "boolean", "breached_at": "timestamptz",
            "completed_at": "timestamptz", "next_due_at": "timestamptz", "state": "text", "published": "text"}
# A whole clock row, in the order of `clock_records`: what is set once, then what changes.
_CLOCK = {"id": "text", "agreement_id": "text", "incident_id": "text", "service_id": "text", "customer_id": "text",
          "metric": "text", "objective_id": "text", "calendar_id": "text", "calendar_version": "integer",
          "started_at": "timestamptz", **_MUTABLE}
CLOCK_COLUMNS = tuple(_CLOCK)
_UPSERT_SQL = (f"INSERT INTO clocks ({', '.join(_CLOCK)}) SELECT * FROM {unnest(_CLOCK.values())} "
               f"ON CONFLICT (id) DO UPDATE SET {', '.join(f'{name} = EXCLUDED.{name}' for name in _MUTABLE)}")


async def upsert_clocks(conn: AsyncConnection, many: list[Clock]) -> None:
    """Insert new clocks and save the state of known ones, in one statement."""
    await execute_columns(conn, _UPSERT_SQL, clock_records(many))


# One UPDATE for a whole batch of clocks, each row given as `saved_columns`.
_SAVE_SQL = (f"UPDATE clocks AS c SET {', '.join(f'{name} = v.{name}' for name in _MUTABLE)} "
             f"FROM {unnest(['text', *_MUTABLE.values()])} AS v(id, {', '.join(_MUTABLE)}) WHERE c.id = v.id")


def saved_columns(clock: Clock) -> tuple:
    """What `save_clocks` writes of a clock, encoded: built ahead when a timer is prepared before its instant."""
    state = clock.state
    return (clock.id, state.priority, state.target_seconds, str(state.stage), state.deadline, len(state.warned),
            state.breached, state.breached_at, state.completed_at, state.next_due, state.to_json().decode(),
            orjson.dumps(sorted(clock.published)).decode())


async def save_clocks(conn: AsyncConnection, saved: list[tuple]) -> None:
    """Save the changing columns (`saved_columns`) of many known clocks in one statement."""
    await execute_columns(conn, _SAVE_SQL, saved)


# PostgreSQL's row version (the transaction that wrote the row): a clock prepared ahead of its timer is saved
# as prepared only if its row has not changed since it was read.
_ROW_VERSION = sa.literal_column("clocks.xmin::text").label("row_version")


async def get_clocks(conn: AsyncConnection, clock_ids: list[str]) -> list[Clock]:
    """The clocks with these ids, each with its row version."""
    stmt = sa.select(clocks, _ROW_VERSION).where(among(clocks.c.id, clock_ids)).order_by(clocks.c.id)
    return [clock_from_row(r) for r in (await conn.execute(stmt)).all()]


async def lock_clocks(conn: AsyncConnection, clock_ids: list[str]) -> dict[str, str]:
    """Lock the clocks with these ids, leaving out those locked elsewhere: id -> row version of each locked."""
    stmt = (sa.select(clocks.c.id, _ROW_VERSION).where(among(clocks.c.id, clock_ids)).order_by(clocks.c.id)
            .with_for_update(skip_locked=True))
    return dict((await conn.execute(stmt)).all())


async def clocks_of_incident(conn: AsyncConnection, incident_id: str, *, for_update: bool = False) -> list[Clock]:
    stmt = sa.select(clocks).where(clocks.c.incident_id == incident_id).order_by(clocks.c.id)
    if for_update:
        stmt = stmt.with_for_update()
    return [clock_from_row(r) for r in (await conn.execute(stmt)).all()]


# incident facts ----------------------------------------------------------------------------------


async def lock_incident(conn: AsyncConnection, incident_id: str) -> None:
    """Serialise the handlers of one incident until commit (facts arrive in any order)."""
    await conn.execute(sa.select(sa.func.pg_advisory_xact_lock(sa.func.hashtextextended(incident_id, 0))))


async def add_fact(conn: AsyncConnection, incident_id: str, fact: Fact) -> bool:
    """Store an incident event as a fact; False when it was already stored."""
    row = dict(zip(FACT_COLUMNS, _fact_record(incident_id, fact), strict=True))
    stmt = insert(incident_facts).values(**row).on_conflict_do_nothing()
    return (await conn.execute(stmt.returning(incident_facts.c.event_id))).first() is not None


async def copy_records(conn: AsyncConnection, table: sa.Table, columns: tuple[str, ...], records: list[tuple]) -> None:
    """Bulk-load rows, as tuples in the order of `columns`, into an empty table (PostgreSQL COPY): for a rebuild
    into a fresh schema. A JSON value is given as its JSON text."""
    if not records:
        return
    await (await driver(conn)).copy_records_to_table(table.name, columns=columns, records=records)


FACT_COLUMNS = ("event_id", "incident_id", "kind", "at", "priority", "status", "from_status", "service_id",
                "customer_id")


def _fact_record(incident_id: str, f: Fact) -> tuple:
    return (f.event_id, incident_id, f.kind, f.at, f.priority, f.status, f.from_status, f.service_id or "",
            f.customer_id)


def fact_records(facts: list[tuple[str, Fact]]) -> list[tuple]:
    """(incident id, fact) as incident_facts records (FACT_COLUMNS), each event once."""
    unique = {}
    for incident_id, f in facts:
        if f.event_id not in unique:
            unique[f.event_id] = _fact_record(incident_id, f)
    return list(unique.values())


def clock_records(many: list[Clock]) -> list[tuple]:
    """Clocks as whole rows (CLOCK_COLUMNS), encoded: for `upsert_clocks` and a rebuild's COPY."""
    return [(c.id, c.agreement_id, c.incident_id, c.service_id, c.customer_id, c.metric, c.objective_id, c.calendar_id,
             c.calendar_version, c.state.started_at, *saved_columns(c)[1:]) for c in many]


def _fact(row) -> Fact:
    return Fact(event_id=row.event_id, kind=row.kind, at=row.at, priority=row.priority, status=row.status,
                from_status=row.from_status, service_id=row.service_id or None, customer_id=row.customer_id)


async def incidents_opened(conn: AsyncConnection, service_id: str, *, since) -> list[str]:
    """The incidents of the service opened at or after `since` (event time), in a fixed order."""
    f = incident_facts.c
    stmt = sa.select(f.incident_id).where(f.kind == "opened", f.service_id == service_id, f.at >= since)
    return list((await conn.execute(stmt.distinct().order_by(f.incident_id))).scalars())


async def facts_of(conn: AsyncConnection, incident_id: str) -> list[Fact]:
    rows = await conn.execute(sa.select(incident_facts).where(incident_facts.c.incident_id == incident_id))
    return [_fact(r) for r in rows]


async def facts_of_incidents(conn: AsyncConnection, incident_ids: list[str]) -> list[tuple[str, Fact]]:
    """(incident id, fact) of every fact of these incidents."""
    rows = await conn.execute(sa.select(incident_facts).where(among(incident_facts.c.incident_id, incident_ids)))
    return [(r.incident_id, _fact(r)) for r in rows]


async def list_clocks(conn: AsyncConnection, *, incident_id: str | None, agreement_id: str | None,
                      stage: str | None, after_seq: int | None, limit: int) -> tuple[list[Clock], int | None]:
    stmt = sa.select(clocks)
    if incident_id:
        stmt = stmt.where(clocks.c.incident_id == incident_id)
    if agreement_id:
        stmt = stmt.where(clocks.c.agreement_id == agreement_id)
    if stage:
        stmt = stmt.where(clocks.c.stage == stage)
    rows, last = await keyset_page(conn, stmt, clocks.c.created_seq, after=after_seq, limit=limit)
    return [clock_from_row(r) for r in rows], last


async def ratio_tickets(conn: AsyncConnection, agreement_id: str, objective_id: str, start, end) -> list[Clock]:
    """The ticket clocks of a ratio objective for incidents opened in [start, end)."""
    stmt = sa.select(clocks).where(clocks.c.agreement_id == agreement_id, clocks.c.objective_id == objective_id,
                                   clocks.c.started_at >= start, clocks.c.started_at < end)
    return [clock_from_row(r) for r in (await conn.execute(stmt)).all()]


async def due_clocks(conn: AsyncConnection) -> list[tuple[str, object]]:
    """(clock id, next due instant) of every clock a timer must wake, for start-up."""
    rows = await conn.execute(sa.select(clocks.c.id, clocks.c.next_due_at).where(clocks.c.next_due_at.is_not(None)))
    return [(r.id, r.next_due_at) for r in rows]


async def compliance_counts(conn: AsyncConnection, agreement_id: str, start, end) -> list:
    """Per (metric, priority): clocks met, breached and running/paused among those started in [start, end)
    or still open, and how many open ones passed a warning threshold."""
    c = clocks
    done = c.c.stage == "completed"
    open_ = c.c.stage.in_(["running", "paused"])
    stmt = (
        sa.select(
            c.c.metric, c.c.priority,
            sa.func.count().filter(done & ~c.c.breached).label("met"),
            sa.func.count().filter(c.c.breached).label("breached"),
            sa.func.count().filter(open_).label("open"),
            sa.func.count().filter(open_ & ~c.c.breached & (c.c.warnings_fired > 0)).label("warned"),
        )
        .where(c.c.agreement_id == agreement_id, c.c.objective_id.is_(None),
               ((c.c.started_at >= start) & (c.c.started_at < end)) | open_)
        .group_by(c.c.metric, c.c.priority)
    )
    return (await conn.execute(stmt)).all()


# availability ----------------------------------------------------------------------------------


async def add_service_status(conn: AsyncConnection, row: dict) -> bool:
    """Store a consumed availability change ({event_id, service_id, status, observed_at}) once; False if it was
    stored already."""
    stmt = insert(service_status).values(row).on_conflict_do_nothing().returning(service_status.c.event_id)
    return (await conn.execute(stmt)).first() is not None


async def service_statuses(conn: AsyncConnection, service_id: str) -> list[tuple]:
    """Every (observed_at, status) consumed for the service; the objective code sorts and de-duplicates."""
    rows = await conn.execute(sa.select(service_status.c.observed_at, service_status.c.status)
                              .where(service_status.c.service_id == service_id))
    return [(r.observed_at, r.status) for r in rows]


async def all_agreements(conn: AsyncConnection) -> list[Agreement]:
    rows = (await conn.execute(sa.select(agreements).order_by(agreements.c.created_seq))).all()
    return [agreement_from_row(r) for r in rows]


async def agreements_with_objectives(conn: AsyncConnection) -> list[Agreement]:
    rows = (await conn.execute(sa.select(agreements).where(agreements.c.objectives != sa.text("'[]'::jsonb"))
                               .order_by(agreements.c.created_seq))).all()
    return [agreement_from_row(r) for r in rows]


async def add_maintenance_window(conn: AsyncConnection, **values) -> None:
    await conn.execute(maintenance_windows.insert().values(**values))


async def get_maintenance_window(conn: AsyncConnection, window_id: str):
    return (await conn.execute(sa.select(maintenance_windows).where(maintenance_windows.c.id == window_id))).first()


async def list_maintenance_windows(conn: AsyncConnection, *, service_id: str | None, after_seq: int | None,
                                   limit: int) -> tuple[list, int | None]:
    stmt = sa.select(maintenance_windows)
    if service_id:
        stmt = stmt.where(maintenance_windows.c.service_id == service_id)
    return await keyset_page(conn, stmt, maintenance_windows.c.created_seq, after=after_seq, limit=limit)


async def maintenance_of(conn: AsyncConnection, service_id: str) -> list[tuple]:
    rows = await conn.execute(sa.select(maintenance_windows.c.start, maintenance_windows.c.end)
                              .where(maintenance_windows.c.service_id == service_id))
    return [(r.start, r.end) for r in rows]


async def record_objective_breach(conn: AsyncConnection, *, agreement_id: str, objective_id: str, window_start,
                                  breached_at, reason: str) -> bool:
    """Remember the objective's breach in this window; False if it was already recorded."""
    stmt = insert(objective_breaches).values(
        agreement_id=agreement_id, objective_id=objective_id, window_start=window_start, breached_at=breached_at,
        reason=reason).on_conflict_do_nothing().returning(objective_breaches.c.objective_id)
    return (await conn.execute(stmt)).first() is not None


_RECHECK = ("INSERT INTO objective_rechecks (agreement_id, since) SELECT a, min(s) "
            "FROM unnest($1::text[], $2::timestamptz[]) AS t(a, s) GROUP BY a")


async def recheck_from(conn: AsyncConnection, changed: list[Clock]) -> None:
    """Remember, per agreement, the earliest ratio ticket among these changed clocks: its objectives' next check
    looks back to that ticket's window. Nothing is written when none is a ticket."""
    await execute_columns(conn, _RECHECK, [(c.agreement_id, c.started_at) for c in changed
                                           if c.objective_id is not None])


async def take_recheck(conn: AsyncConnection, agreement_id: str):
    """How far back the agreement's objectives must be checked for tickets that changed (None: nothing changed),
    forgotten if this transaction commits."""
    stmt = (sa.delete(objective_rechecks).where(objective_rechecks.c.agreement_id == agreement_id)
            .returning(objective_rechecks.c.since))
    return min((await conn.execute(stmt)).scalars(), default=None)


async def clocks_for_period(conn: AsyncConnection, agreement_id: str, start, end) -> list[Clock]:
    """The agreement's clocks that started, breached or completed in [start, end)."""
    def within(column):
        return (column >= start) & (column < end)

    stmt = sa.select(clocks).where(clocks.c.agreement_id == agreement_id, clocks.c.objective_id.is_(None),
                                   within(clocks.c.started_at) | within(clocks.c.breached_at)
                                   | within(clocks.c.completed_at)).order_by(clocks.c.started_at, clocks.c.id)
    return [clock_from_row(r) for r in (await conn.execute(stmt)).all()]


async def objective_breaches_between(conn: AsyncConnection, agreement_id: str, start, end) -> list:
    stmt = sa.select(objective_breaches).where(objective_breaches.c.agreement_id == agreement_id,
                                               objective_breaches.c.breached_at >= start,
                                               objective_breaches.c.breached_at < end)
    return (await conn.execute(stmt.order_by(objective_breaches.c.breached_at))).all()


async def firing_burn_alerts(conn: AsyncConnection, agreement_id: str) -> dict[tuple[str, str], bool]:
    """(objective id, rule) -> firing, for the agreement's burn-rate alerts seen so far."""
    rows = await conn.execute(sa.select(burn_alerts).where(burn_alerts.c.agreement_id == agreement_id)
                              .with_for_update())
    return {(r.objective_id, r.rule): r.firing for r in rows}


async def set_burn_alert(conn: AsyncConnection, *, agreement_id: str, objective_id: str, rule: str, firing: bool,
                         changed_at) -> None:
    stmt = insert(burn_alerts).values(agreement_id=agreement_id, objective_id=objective_id, rule=rule, firing=firing,
                                      changed_at=changed_at)
    await conn.execute(stmt.on_conflict_do_update(index_elements=["agreement_id", "objective_id", "rule"],
                                                  set_={"firing": firing, "changed_at": changed_at}))


# period reports ---------------------------------------------------------------------------------


async def published_periods(conn: AsyncConnection, agreement_id: str) -> set[str]:
    """The periods whose itsm.sla.report_ready the agreement has already published."""
    rows = await conn.execute(sa.select(reports_published.c.period)
                              .where(reports_published.c.agreement_id == agreement_id))
    return set(rows.scalars())


async def mark_report_published(conn: AsyncConnection, *, agreement_id: str, period: str, published_at) -> bool:
    """Record the period's report as published; False if it already was (here or in a concurrent transaction)."""
    stmt = insert(reports_published).values(agreement_id=agreement_id, period=period, published_at=published_at)
    return (await conn.execute(stmt.on_conflict_do_nothing().returning(reports_published.c.period))).first() is not None
# calendars -------------------------------------------------------------------------------------


async def add_calendar_version(conn: AsyncConnection, *, id: str, version: int, name: str, definition: dict,
                               created_at) -> bool:
    """Insert one calendar version; False if that (id, version) already exists."""
    stmt = insert(calendars).values(id=id, version=version, name=name, definition=definition, created_at=created_at)
    return (await conn.execute(stmt.on_conflict_do_nothing().returning(calendars.c.id))).first() is not None


async def get_calendar_version(conn: AsyncConnection, calendar_id: str, version: int | None = None):
    """The row of this version of the calendar, or of its latest version; None if there is none."""
    stmt = sa.select(calendars).where(calendars.c.id == calendar_id)
    if version is not None:
        stmt = stmt.where(calendars.c.version == version)
    return (await conn.execute(stmt.order_by(calendars.c.version.desc()).limit(1))).first()


async def calendar_versions_created(conn: AsyncConnection, calendar_id: str) -> list[tuple]:
    """(created_at, version) of each version of the calendar."""
    c = calendars.c
    return [tuple(r) for r in await conn.execute(sa.select(c.created_at, c.version).where(c.id == calendar_id))]


async def calendar_versions(conn: AsyncConnection, calendar_id: str, *, after_version: int | None,
                            limit: int) -> tuple[list, int | None]:
    stmt = sa.select(calendars).where(calendars.c.id == calendar_id)
    return await keyset_page(conn, stmt, calendars.c.version, after=after_version, limit=limit)


async def list_calendars(conn: AsyncConnection, *, after_seq: int | None, limit: int) -> tuple[list, int | None]:
    """The latest version of each calendar, in the order the calendars were first created."""
    c = calendars.c
    ranked = sa.select(calendars, sa.func.max(c.version).over(partition_by=c.id).label("latest"),
                       sa.func.min(c.created_seq).over(partition_by=c.id).label("first_seq")).subquery()
    stmt = sa.select(ranked).where(ranked.c.version == ranked.c.latest)
    return await keyset_page(conn, stmt, ranked.c.first_seq, after=after_seq, limit=limit)
