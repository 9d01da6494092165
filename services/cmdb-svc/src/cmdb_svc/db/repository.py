"""Loading and saving CIs and relationships with SQLAlchemy Core."""

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from itsm_runtime.pagination import keyset_page

from ..domain.model import Ci, CiType, Redundancy, Relationship, RelationshipType
from .tables import cis, relationships


def _ci_to_domain(row) -> Ci:
    return Ci(id=row.id, name=row.name, type=CiType(row.type), key=row.key, criticality=row.criticality,
              attributes=row.attributes, redundancy=Redundancy.from_dict(row.redundancy) if row.redundancy else None,
              created_at=row.created_at, updated_at=row.updated_at)


def _ci_to_row(ci: Ci) -> dict:
    return {"id": ci.id, "name": ci.name, "type": str(ci.type), "key": ci.key, "criticality": ci.criticality,
            "attributes": ci.attributes, "redundancy": ci.redundancy.as_dict() if ci.redundancy else None,
            "created_at": ci.created_at, "updated_at": ci.updated_at}


def _relationship_to_domain(row) -> Relationship:
    return Relationship(id=row.id, source_id=row.source_id, target_id=row.target_id,
                        type=RelationshipType(row.type), created_at=row.created_at)




async def get_ci(conn: AsyncConnection, ci_id: str) -> Ci | None:
    row = (await conn.execute(sa.select(cis).where(cis.c.id == ci_id))).first()
    return _ci_to_domain(row) if row else None


async def add_ci(conn: AsyncConnection, ci: Ci) -> bool:
    """Insert the CI; False (and nothing written) when its key is taken."""
    stmt = insert(cis).values(**_ci_to_row(ci)).on_conflict_do_nothing(index_elements=["key"]).returning(cis.c.id)
    return (await conn.execute(stmt)).first() is not None


async def existing_ci_ids(conn: AsyncConnection, ci_ids: list[str]) -> set[str]:
    rows = (await conn.execute(sa.select(cis.c.id).where(cis.c.id.in_(ci_ids)))).all()
    return {r.id for r in rows}


async def list_cis(conn: AsyncConnection, *, type: str | None, after_seq: int | None,
                   limit: int) -> tuple[list[Ci], int | None]:
    stmt = sa.select(cis)
    if type:
        stmt = stmt.where(cis.c.type == type)
    rows, last = await keyset_page(conn, stmt, cis.c.created_seq, after=after_seq, limit=limit)
    return [_ci_to_domain(r) for r in rows], last


async def add_relationship(conn: AsyncConnection, relationship: Relationship) -> bool:
    """Insert the relationship; False (and nothing written) when the same one exists."""
    stmt = (
        insert(relationships)
        .values(id=relationship.id, source_id=relationship.source_id, target_id=relationship.target_id,
                type=str(relationship.type), created_at=relationship.created_at)
        .on_conflict_do_nothing(index_elements=["source_id", "target_id", "type"])
        .returning(relationships.c.id)
    )
    return (await conn.execute(stmt)).first() is not None


async def list_relationships(conn: AsyncConnection, *, ci_id: str, after_seq: int | None,
                             limit: int) -> tuple[list[Relationship], int | None]:
    """Relationships in which the CI is the source or the target, oldest first."""
    stmt = sa.select(relationships).where(
        sa.or_(relationships.c.source_id == ci_id, relationships.c.target_id == ci_id))
    rows, last = await keyset_page(conn, stmt, relationships.c.created_seq, after=after_seq, limit=limit)
    return [_relationship_to_domain(r) for r in rows], last
