"""HTTP routes of outage incidents: the per-service policy and the outages seen."""

from typing import Annotated

from fastapi import APIRouter, Path

from itsm_runtime.pagination import CursorParam, LimitParam, cursor_after, seq_after
from itsm_runtime.service import RuntimeDep

from .. import handlers
from ..db import outages as outage_store
from ..domain.outages import Availability, Outage, OutagePolicy
from .schemas import OutagePage, OutagePolicyRead, OutagePolicyUpdate, OutageRead

router = APIRouter(prefix="/v1/services", tags=["outages"])

ServiceId = Annotated[str, Path(min_length=1, max_length=200)]


def _read_outage(outage: Outage) -> OutageRead:
    return OutageRead(id=outage.id, service_id=outage.service_id, incident_id=outage.incident_id,
                      status=str(outage.status), started_at=outage.started_at,
                      last_observed_at=outage.last_observed_at, ended_at=outage.ended_at,
                      cause_ci_ids=outage.cause_ci_ids)


@router.put("/{service_id}/outage-policy", response_model=OutagePolicyRead)
async def put_outage_policy(service_id: ServiceId, policy_in: OutagePolicyUpdate, runtime: RuntimeDep):
    """Set when an outage of the service opens an incident (`down`, or already `degraded`) and whether
    the service coming back `up` resolves it. It applies from the next availability change."""
    policy = OutagePolicy(open_on=Availability(policy_in.open_on), auto_resolve=policy_in.auto_resolve)
    async with runtime.uow() as uow:
        at = await handlers.put_outage_policy(uow, service_id=service_id, policy=policy)
        await uow.commit()
    return OutagePolicyRead(service_id=service_id, open_on=policy_in.open_on, auto_resolve=policy.auto_resolve,
                            updated_at=at)


@router.get("/{service_id}/outage-policy", response_model=OutagePolicyRead)
async def get_outage_policy(service_id: ServiceId, runtime: RuntimeDep):
    """The service's policy; every service has one (the default opens on down and auto-resolves)."""
    async with runtime.engine.connect() as conn:
        found = await outage_store.get_policy_as_set(conn, service_id)
    policy, at = found if found else (OutagePolicy(), None)
    return OutagePolicyRead(service_id=service_id, open_on=str(policy.open_on), auto_resolve=policy.auto_resolve,
                            updated_at=at)


@router.get("/{service_id}/outages", response_model=OutagePage)
async def list_outages(service_id: ServiceId, runtime: RuntimeDep, limit: LimitParam = 50,
                       cursor: CursorParam = None):
    """Outages of the service as the CMDB's availability events reported them, oldest first."""
    async with runtime.engine.connect() as conn:
        items, last = await outage_store.list_outages(conn, service_id=service_id, after_seq=seq_after(cursor),
                                                      limit=limit)
    return OutagePage(items=[_read_outage(o) for o in items], next_cursor=cursor_after(last))
