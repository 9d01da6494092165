"""Loading and saving CIs, relationships, versions and health with SQLAlchemy Core.

Health is written set-based (one `unnest` statement per batch), never row by row.
"""

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from itsm_runtime.pagination import keyset_page

from ..domain.graph import CiHealth, Edge, Health, Node, Signal, StatusChange
from ..domain.model import Ci, CiType, LifecycleStatus, Redundancy, Relationship, RelationshipType
from .tables import ci_health, ci_status_changes, ci_versions, cis, graph_state, late_signals, relationships


@dataclass(frozen=True)
class CiRow:
    """A CI as read: the aggregate plus its current health."""

    ci: Ci
    health: Health
    health_since: datetime | None


def _ci_to_domain(row) -> Ci:
    return Ci(id=row.id, name=row.name, type=CiType(row.type), key=row.key, criticality=row.criticality,
              owner=row.owner, status=LifecycleStatus(row.status), attributes=row.attributes,
              redundancy=Redundancy.from_dict(row.redundancy) if row.redundancy else None, version=row.version,
              created_at=row.created_at, updated_at=row.updated_at)


def _ci_row(row) -> CiRow:
    return CiRow(ci=_ci_to_domain(row), health=Health(row.health or Health.UP), health_since=row.health_since)


def ci_to_row(ci: Ci) -> dict:
    return {"id": ci.id, "name": ci.name, "type": str(ci.type), "key": ci.key, "criticality": ci.criticality,
            "owner": ci.owner, "status": str(ci.status), "attributes": ci.attributes,
            "redundancy": ci.redundancy.as_dict() if ci.redundancy else None, "version": ci.version,
            "created_at": ci.created_at, "updated_at": ci.updated_at}


def _relationship_to_domain(row) -> Relationship:
    return Relationship(id=row.id, source_id=row.source_id, target_id=row.target_id,
                        type=RelationshipType(row.type), created_at=row.created_at)


def relationship_to_row(relationship: Relationship) -> dict:
    return {"id": relationship.id, "source_id": relationship.source_id, "target_id": relationship.target_id,
            "type": str(relationship.type), "created_at": relationship.created_at}


_CI_WITH_HEALTH = (
    sa.select(cis, ci_health.c.status.label("health"), ci_health.c.since.label("health_since"))
    .select_from(cis.outerjoin(ci_health, ci_health.c.ci_id == cis.c.id))
)


async def get_ci(conn: AsyncConnection, ci_id: str) -> Ci | None:
    row = (await conn.execute(sa.select(cis).where(cis.c.id == ci_id))).first()
    return _ci_to_domain(row) if row else None


async def get_ci_for_update(conn: AsyncConnection, ci_id: str) -> Ci | None:
    row = (await conn.execute(sa.select(cis).where(cis.c.id == ci_id).with_for_update())).first()
    return _ci_to_domain(row) if row else None


async def get_ci_row(conn: AsyncConnection, ci_id: str) -> CiRow | None:
    row = (await conn.execute(_CI_WITH_HEALTH.where(cis.c.id == ci_id))).first()
    return _ci_row(row) if row else None


async def ci_names(conn: AsyncConnection, ci_ids: Iterable[str]) -> dict[str, tuple[str, str, str | None]]:
    """(name, type, key) of each CI, for decorating graph answers."""
    rows = (await conn.execute(sa.select(cis.c.id, cis.c.name, cis.c.type, cis.c.key)
                               .where(cis.c.id == sa.any_(sa.cast(list(ci_ids), sa.ARRAY(sa.Text)))))).all()
    return {r.id: (r.name, r.type, r.key) for r in rows}


async def add_ci(conn: AsyncConnection, ci: Ci) -> bool:
    """Insert the CI; False (and nothing written) when its id or key is taken."""
    stmt = insert(cis).values(**ci_to_row(ci)).on_conflict_do_nothing().returning(cis.c.id)
    return (await conn.execute(stmt)).first() is not None


async def add_cis(conn: AsyncConnection, new_cis: list[Ci]) -> None:
    if new_cis:
        await conn.execute(cis.insert(), [ci_to_row(ci) for ci in new_cis])


async def save_ci(conn: AsyncConnection, ci: Ci) -> None:
    row = ci_to_row(ci)
    del row["id"], row["created_at"]
    await conn.execute(cis.update().where(cis.c.id == ci.id).values(**row))


async def ci_id_exists(conn: AsyncConnection, ci_id: str) -> bool:
    return (await conn.execute(sa.select(cis.c.id).where(cis.c.id == ci_id))).first() is not None


async def key_holder(conn: AsyncConnection, key: str) -> str | None:
    """The id of the CI holding `key`, if any."""
    return (await conn.execute(sa.select(cis.c.id).where(cis.c.key == key))).scalar()


async def existing_ci_ids(conn: AsyncConnection, ci_ids: Iterable[str]) -> set[str]:
    ids = list(set(ci_ids))
    if not ids:
        return set()
    rows = (await conn.execute(sa.select(cis.c.id).where(cis.c.id == sa.any_(sa.cast(ids, sa.ARRAY(sa.Text))))))
    return set(rows.scalars())


async def ids_by_key(conn: AsyncConnection, keys: Iterable[str]) -> dict[str, str]:
    wanted = list(set(keys))
    if not wanted:
        return {}
    rows = (await conn.execute(sa.select(cis.c.key, cis.c.id)
                               .where(cis.c.key == sa.any_(sa.cast(wanted, sa.ARRAY(sa.Text)))))).all()
    return {r.key: r.id for r in rows}


async def search_cis(conn: AsyncConnection, *, type: str | None = None, status: str | None = None,
                     criticality: int | None = None, owner: str | None = None, health: str | None = None,
                     q: str | None = None, after_seq: int | None, limit: int) -> tuple[list[CiRow], int | None]:
    """CIs matching every filter given, oldest first; `q` matches name or key, case-insensitively."""
    stmt = _CI_WITH_HEALTH
    if type:
        stmt = stmt.where(cis.c.type == type)
    if status:
        stmt = stmt.where(cis.c.status == status)
    if criticality is not None:
        stmt = stmt.where(cis.c.criticality == criticality)
    if owner:
        stmt = stmt.where(cis.c.owner == owner)
    if health:
        stmt = stmt.where(sa.func.coalesce(ci_health.c.status, Health.UP.value) == health)
    if q:
        pattern = "%" + q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        stmt = stmt.where(sa.or_(cis.c.name.ilike(pattern, escape="\\"), cis.c.key.ilike(pattern, escape="\\")))
    rows, last = await keyset_page(conn, stmt, cis.c.created_seq, after=after_seq, limit=limit)
    return [_ci_row(r) for r in rows], last


async def add_versions(conn: AsyncConnection, versions: list[dict]) -> None:
    """Insert version rows: {ci_id, version, changed_at, changed_by, change_ref, changes}."""
    if versions:
        await conn.execute(ci_versions.insert(), versions)


async def list_versions(conn: AsyncConnection, *, ci_id: str, after_version: int | None,
                        limit: int) -> tuple[list[Any], int | None]:
    stmt = sa.select(ci_versions).where(ci_versions.c.ci_id == ci_id)
    return await keyset_page(conn, stmt, ci_versions.c.version, after=after_version, limit=limit)


async def add_relationship(conn: AsyncConnection, relationship: Relationship) -> bool:
    """Insert the relationship; False (and nothing written) when the same one exists."""
    stmt = (
        insert(relationships)
        .values(**relationship_to_row(relationship))
        .on_conflict_do_nothing(index_elements=["source_id", "target_id", "type"])
        .returning(relationships.c.id)
    )
    return (await conn.execute(stmt)).first() is not None


async def add_relationships(conn: AsyncConnection, new_relationships: list[Relationship]) -> None:
    if new_relationships:
        await conn.execute(relationships.insert(), [relationship_to_row(r) for r in new_relationships])


async def existing_relationships(conn: AsyncConnection,
                                 candidates: Iterable[tuple[str, str, str]]) -> set[tuple[str, str, str]]:
    """Which of these (source_id, target_id, type) relationships exist already."""
    candidates = list(candidates)
    if not candidates:
        return set()
    sources, targets, types = (list(column) for column in zip(*candidates, strict=True))
    stmt = sa.text("""
        SELECT r.source_id, r.target_id, r.type
        FROM relationships r
        JOIN unnest(CAST(:sources AS text[]), CAST(:targets AS text[]), CAST(:types AS text[])) AS c(s, t, ty)
          ON r.source_id = c.s AND r.target_id = c.t AND r.type = c.ty
    """)
    rows = (await conn.execute(stmt, {"sources": sources, "targets": targets, "types": types})).all()
    return {(r.source_id, r.target_id, r.type) for r in rows}


async def list_relationships(conn: AsyncConnection, *, ci_id: str, after_seq: int | None,
                             limit: int) -> tuple[list[Relationship], int | None]:
    """Relationships in which the CI is the source or the target, oldest first."""
    stmt = sa.select(relationships).where(
        sa.or_(relationships.c.source_id == ci_id, relationships.c.target_id == ci_id))
    rows, last = await keyset_page(conn, stmt, relationships.c.created_seq, after=after_seq, limit=limit)
    return [_relationship_to_domain(r) for r in rows], last


# graph state ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class GraphVersions:
    topology: int
    health: int


async def graph_versions(conn: AsyncConnection, *, for_update: bool) -> GraphVersions:
    """The versions of the graph; `for_update` locks them until the transaction ends (writers serialise)."""
    stmt = sa.select(graph_state.c.topology_version, graph_state.c.health_version).where(graph_state.c.id == 1)
    if for_update:
        stmt = stmt.with_for_update()
    row = (await conn.execute(stmt)).one()
    return GraphVersions(topology=row.topology_version, health=row.health_version)


async def set_graph_versions(conn: AsyncConnection, versions: GraphVersions) -> None:
    await conn.execute(graph_state.update().where(graph_state.c.id == 1).values(
        topology_version=versions.topology, health_version=versions.health))


async def load_topology(conn: AsyncConnection) -> tuple[list[Node], list[Edge]]:
    node_rows = (await conn.execute(sa.select(cis.c.id, cis.c.type, cis.c.redundancy))).all()
    nodes = [Node(id=r.id, type=CiType(r.type), redundancy=Redundancy.from_dict(r.redundancy) if r.redundancy
                  else None) for r in node_rows]
    edge_rows = (await conn.execute(sa.select(relationships.c.source_id, relationships.c.target_id,
                                              relationships.c.type))).all()
    edges = [Edge(source_id=r.source_id, target_id=r.target_id, type=RelationshipType(r.type)) for r in edge_rows]
    return nodes, edges


async def load_health(conn: AsyncConnection, *, newer_than: int) -> dict[str, CiHealth]:
    """Health rows written by batches after `newer_than` (all of them from -1)."""
    rows = (await conn.execute(sa.select(ci_health).where(ci_health.c.health_version > newer_than))).all()
    return {r.ci_id: CiHealth(reported=Health(r.reported), reported_at=r.reported_at, status=Health(r.status),
                              since=r.since, causes=tuple(r.cause_ci_ids)) for r in rows}


_SAVE_HEALTH = sa.text("""
    INSERT INTO ci_health (ci_id, reported, reported_at, status, since, cause_ci_ids, health_version)
    SELECT h.ci_id, h.reported, h.reported_at, h.status, h.since,
           CASE WHEN h.causes = '' THEN '{}'::text[] ELSE string_to_array(h.causes, ' ') END, :version
    FROM unnest(CAST(:ci_ids AS text[]), CAST(:reported AS text[]), CAST(:reported_at AS timestamptz[]),
                CAST(:status AS text[]), CAST(:since AS timestamptz[]), CAST(:causes AS text[]))
         AS h(ci_id, reported, reported_at, status, since, causes)
    ON CONFLICT (ci_id) DO UPDATE SET
        reported = excluded.reported, reported_at = excluded.reported_at, status = excluded.status,
        since = excluded.since, cause_ci_ids = excluded.cause_ci_ids, health_version = excluded.health_version
""")


def _joined(ids: tuple[str, ...]) -> str:
    # CI ids never hold whitespace (API and import reject it), so a space-separated list round-trips
    # and keeps the array-of-arrays out of unnest, which would flatten it.
    return " ".join(ids)


async def save_health(conn: AsyncConnection, health: Mapping[str, CiHealth], *, version: int) -> None:
    """Upsert the health of these CIs in one statement, stamped with the batch's version."""
    if not health:
        return
    ids = list(health)
    values = [health[i] for i in ids]
    await conn.execute(_SAVE_HEALTH, {
        "ci_ids": ids, "reported": [h.reported.value for h in values], "reported_at": [h.reported_at for h in values],
        "status": [h.status.value for h in values], "since": [h.since for h in values],
        "causes": [_joined(h.causes) for h in values], "version": version})


_ADD_CHANGES = sa.text("""
    INSERT INTO ci_status_changes (ci_id, previous_status, status, observed_at, cause_ci_ids)
    SELECT c.ci_id, c.previous_status, c.status, c.observed_at,
           CASE WHEN c.causes = '' THEN '{}'::text[] ELSE string_to_array(c.causes, ' ') END
    FROM unnest(CAST(:ci_ids AS text[]), CAST(:previous AS text[]), CAST(:status AS text[]),
                CAST(:observed_at AS timestamptz[]), CAST(:causes AS text[]))
         WITH ORDINALITY AS c(ci_id, previous_status, status, observed_at, causes, n)
    ORDER BY c.n
""")


async def add_status_changes(conn: AsyncConnection, changes: list[StatusChange]) -> None:
    """Append status changes in the order they happened, in one statement."""
    if not changes:
        return
    await conn.execute(_ADD_CHANGES, {
        "ci_ids": [c.ci_id for c in changes], "previous": [c.previous.value for c in changes],
        "status": [c.status.value for c in changes], "observed_at": [c.observed_at for c in changes],
        "causes": [_joined(c.cause_ci_ids) for c in changes]})


async def add_late_signals(conn: AsyncConnection, signals: list[Signal]) -> None:
    if signals:
        await conn.execute(late_signals.insert(), [
            {"ci_id": s.ci_id, "status": s.status.value, "observed_at": s.observed_at, "source": s.source}
            for s in signals])


async def health_of(conn: AsyncConnection, ci_id: str) -> CiHealth | None:
    row = (await conn.execute(sa.select(ci_health).where(ci_health.c.ci_id == ci_id))).first()
    if row is None:
        return None
    return CiHealth(reported=Health(row.reported), reported_at=row.reported_at, status=Health(row.status),
                    since=row.since, causes=tuple(row.cause_ci_ids))


async def status_changes(conn: AsyncConnection, *, ci_id: str, before_seq: int | None,
                         limit: int) -> tuple[list[Any], int | None]:
    """Status changes of a CI, newest first, and the seq to continue before."""
    stmt = sa.select(ci_status_changes).where(ci_status_changes.c.ci_id == ci_id)
    if before_seq is not None:
        stmt = stmt.where(ci_status_changes.c.seq < before_seq)
    rows = (await conn.execute(stmt.order_by(ci_status_changes.c.seq.desc()).limit(limit + 1))).all()
    if len(rows) > limit:
        return rows[:limit], rows[limit - 1].seq
    return rows, None

