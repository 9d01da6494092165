"""Service reviews: a breach of a target or objective opens a review for its agreement, or joins the
review already open; people then record the root cause and corrective actions and close it."""

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert

from itsm_events import UnitOfWork, schemas
from itsm_events.sql import driver, unnest
from itsm_runtime.errors import Problem
from itsm_runtime.pagination import keyset_page

from .db.tables import review_breaches, reviews


def _breaches(first: int) -> str:
    """Breaches given as four arrays, from parameter `first` on, as rows b(kind, ref_id, incident_id, breached_at)."""
    arrays = unnest(["text", "text", "text", "timestamptz"], first=first)
    return f"{arrays} AS b(kind, ref_id, incident_id, breached_at)"


_UNHELD = "NOT EXISTS (SELECT 1 FROM review_breaches k WHERE k.kind = b.kind AND k.ref_id = b.ref_id)"
# One statement: the agreement's open review, share-locked (closing it waits), takes the breaches no review holds
# yet; it answers the review's id, or nothing when none is open.
_ADD_TO_OPEN = ("WITH review AS (SELECT id FROM reviews WHERE agreement_id = $1 AND status <> 'closed' FOR SHARE), "
                "added AS (INSERT INTO review_breaches (review_id, kind, ref_id, incident_id, breached_at) "
                f"SELECT review.id, b.* FROM review, {_breaches(2)} WHERE {_UNHELD} ON CONFLICT DO NOTHING) "
                "SELECT id FROM review")
_UNHELD_OF = f"SELECT b.ref_id FROM {_breaches(1)} WHERE {_UNHELD}"
# The partial unique index's predicate as written, not a bound parameter: once PostgreSQL plans a connection's prepared
# insert for any parameters (a generic plan, after five runs), `status <> $1` no longer matches that index.
OPEN = sa.text("status <> 'closed'")
NEXT_STATUS = {"open": ("in_progress", "closed"), "in_progress": ("closed",), "closed": ()}


@dataclass(frozen=True)
class BreachRef:
    agreement_id: str
    service_id: str
    kind: str  # clock | objective
    ref_id: str
    breached_at: datetime
    incident_id: str | None = None


async def record_breaches(uow: UnitOfWork, breaches: list[BreachRef]) -> None:
    """Add each breach to its agreement's open review, opening one (and `itsm.sla.review_opened`) if none is.

    A breach some review already holds is left there (a replay or a retry finds it again)."""
    by_agreement: dict[str, list[BreachRef]] = {}
    for breach in breaches:
        by_agreement.setdefault(breach.agreement_id, []).append(breach)
    raw = await driver(uow.conn) if breaches else None
    for agreement_id, found in sorted(by_agreement.items()):  # a fixed order: concurrent batches never deadlock
        columns = [[b.kind for b in found], [b.ref_id for b in found], [b.incident_id for b in found],
                   [b.breached_at for b in found]]
        if await raw.fetchval(_ADD_TO_OPEN, agreement_id, *columns) is not None:
            continue
        unheld = {row["ref_id"] for row in await raw.fetch(_UNHELD_OF, *columns)}
        if unheld:  # open a review for them (or find the one another transaction just opened), and add them
            await _open_review(uow, next(b for b in found if b.ref_id in unheld))
            await raw.fetchval(_ADD_TO_OPEN, agreement_id, *columns)


async def _open_review(uow: UnitOfWork, first: BreachRef) -> str:
    """The agreement's open review, opened now if there is none.

    Share-locked, not exclusively: concurrent timer batches add breaches to the same review at once,
    while closing it waits for them. Opening is an insert that does nothing if another transaction
    opened one first (the partial unique index allows one open review per agreement)."""
    open_review = sa.select(reviews.c.id).where(reviews.c.agreement_id == first.agreement_id,
                                                reviews.c.status != "closed").with_for_update(read=True)
    while True:  # the open review found by the insert may be closed before the select: then open one again
        review_id = str(uuid.uuid4())
        opened = (await uow.conn.execute(
            insert(reviews).values(id=review_id, agreement_id=first.agreement_id, service_id=first.service_id,
                                   status="open", opened_at=first.breached_at)
            .on_conflict_do_nothing(index_elements=["agreement_id"], index_where=OPEN)
            .returning(reviews.c.id))).scalar()
        if opened is not None:
            break
        existing = (await uow.conn.execute(open_review)).scalar()
        if existing is not None:
            return existing
    reason = f"{first.kind} {first.ref_id} breached"
    uow.emit(schemas.ReviewOpened(review_id=review_id, agreement_id=first.agreement_id, service_id=first.service_id,
                                  reason=reason, opened_at=first.breached_at), key=first.agreement_id,
             time=first.breached_at)
    return review_id


async def _with_breaches(conn, rows) -> list[dict]:
    """Review rows as dicts, each with its breaches (one query for all of them)."""
    ids = [r.id for r in rows]
    found: dict[str, list[dict]] = {review_id: [] for review_id in ids}
    if ids:
        stmt = (sa.select(review_breaches).where(review_breaches.c.review_id.in_(ids))
                .order_by(review_breaches.c.breached_at, review_breaches.c.ref_id))
        for breach in (await conn.execute(stmt)).all():
            found[breach.review_id].append(dict(breach._mapping))
    return [{**r._mapping, "breaches": found[r.id]} for r in rows]


async def get_review(conn, review_id: str, *, for_update: bool = False) -> dict | None:
    stmt = sa.select(reviews).where(reviews.c.id == review_id)
    row = (await conn.execute(stmt.with_for_update() if for_update else stmt)).first()
    return (await _with_breaches(conn, [row]))[0] if row is not None else None


async def list_reviews(conn, *, agreement_id: str | None, status: str | None, after_seq: int | None, limit: int):
    stmt = sa.select(reviews)
    if agreement_id:
        stmt = stmt.where(reviews.c.agreement_id == agreement_id)
    if status:
        stmt = stmt.where(reviews.c.status == status)
    rows, last = await keyset_page(conn, stmt, reviews.c.created_seq, after=after_seq, limit=limit)
    return await _with_breaches(conn, rows), last


async def update_review(uow: UnitOfWork, review: dict, *, status: str | None, root_cause: str | None,
                        actions: list[dict] | None) -> None:
    values: dict = {}
    if root_cause is not None:
        values["root_cause"] = root_cause
    if actions is not None:
        values["actions"] = actions
    if status is not None and status != review["status"]:
        if status not in NEXT_STATUS[review["status"]]:
            raise Problem(409, f"a review that is {review['status']} cannot become {status}")
        if status == "closed" and not (root_cause or review["root_cause"]):
            raise Problem(422, "a review is closed with its root cause")
        values["status"] = status
        if status == "closed":
            values["closed_at"] = datetime.now(UTC)
            uow.emit(schemas.ReviewClosed(review_id=review["id"], agreement_id=review["agreement_id"],
                                          service_id=review["service_id"],
                                          root_cause=root_cause or review["root_cause"],
                                          closed_at=values["closed_at"]),
                     key=review["agreement_id"], time=values["closed_at"])
    if values:
        await uow.conn.execute(reviews.update().where(reviews.c.id == review["id"]).values(**values))
