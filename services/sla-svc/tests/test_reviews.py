"""Service reviews opened by breaches, on real PostgreSQL."""

import uuid
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from sla_svc.reviews import BreachRef, record_breaches
from sla_testing import make_agreement


async def test_breaches_open_one_review_also_under_a_generic_plan(sla, sla_app):
    """A connection runs the same prepared statement many times, and PostgreSQL then plans it once for any
    parameters: the insert that opens a review must still find the partial unique index it conflicts on."""
    agreement = await make_agreement(sla, within="PT1H")
    refs = [str(uuid.uuid4()) for _ in range(3)]
    for ref_id in refs:  # each breach in a transaction of its own: the first opens the review, the others join it
        await record(sla_app, agreement, [ref_id])

    reviews = await reviews_of(sla, agreement)
    assert len(reviews) == 1 and reviews[0]["status"] == "open"
    assert sorted(b["ref_id"] for b in reviews[0]["breaches"]) == sorted(refs)


async def test_a_breach_joins_one_review_once_and_a_new_breach_after_closing_opens_the_next(sla, sla_app):
    agreement = await make_agreement(sla, within="PT1H")
    first, second = str(uuid.uuid4()), str(uuid.uuid4())
    await record(sla_app, agreement, [first])
    await record(sla_app, agreement, [first, second])  # a retry brings the first again, with a new one
    [review] = await reviews_of(sla, agreement)
    assert sorted(b["ref_id"] for b in review["breaches"]) == sorted([first, second])
    closed = await sla.patch(f"/v1/reviews/{review['id']}", json={"status": "closed", "root_cause": "disk full"})
    assert closed.status_code == 200, closed.text

    await record(sla_app, agreement, [second])  # held by the closed review already: no new review
    assert [r["id"] for r in await reviews_of(sla, agreement)] == [review["id"]]
    third = str(uuid.uuid4())
    await record(sla_app, agreement, [second, third])
    reviews = await reviews_of(sla, agreement)
    assert len(reviews) == 2
    [opened] = [r for r in reviews if r["id"] != review["id"]]
    assert opened["status"] == "open" and [b["ref_id"] for b in opened["breaches"]] == [third]


async def record(sla_app, agreement: dict, ref_ids: list[str]) -> None:
    """Record clock breaches in one transaction, on a connection that plans its statements generically."""
    at = datetime.now(UTC) - timedelta(minutes=1)
    async with sla_app.state.runtime.uow() as uow:
        await uow.conn.execute(sa.text("SET LOCAL plan_cache_mode = force_generic_plan"))
        await record_breaches(uow, [BreachRef(agreement_id=agreement["id"], service_id=agreement["service_id"],
                                              kind="clock", ref_id=ref_id, breached_at=at) for ref_id in ref_ids])
        await uow.commit()


async def reviews_of(sla, agreement: dict) -> list[dict]:
    return (await sla.get("/v1/reviews", params={"agreement_id": agreement["id"]})).json()["items"]
