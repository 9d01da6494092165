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
    uow_factory = sla_app.state.runtime.state["clocks"]._uow_factory
    at = datetime.now(UTC) - timedelta(minutes=1)
    refs = [str(uuid.uuid4()) for _ in range(3)]
    for ref_id in refs:  # each breach in a transaction of its own: the first opens the review, the others join it
        async with uow_factory() as uow:
            await uow.conn.execute(sa.text("SET LOCAL plan_cache_mode = force_generic_plan"))
            await record_breaches(uow, [BreachRef(agreement_id=agreement["id"], service_id=agreement["service_id"],
                                                  kind="clock", ref_id=ref_id, breached_at=at)])
            await uow.commit()

    reviews = (await sla.get("/v1/reviews", params={"agreement_id": agreement["id"]})).json()["items"]
    assert len(reviews) == 1 and reviews[0]["status"] == "open"
    assert sorted(b["ref_id"] for b in reviews[0]["breaches"]) == sorted(refs)
