"""incident-svc: app factory and command line."""

from pathlib import Path

from fastapi import FastAPI

from itsm_events import Transport
from itsm_runtime.service import ServiceRuntime, build_app, serve

from .api import outages, pagerduty
from .api.routes import router
from .consumer import HANDLERS
from .db.tables import metadata
from .settings import Settings

NAME = "incident-svc"
MIGRATIONS = Path(__file__).resolve().parents[2] / "migrations"


DESCRIPTION = """Incidents: ITIL priority, lifecycle, hold, resolve, reopen.

Alert intake: `POST /v2/enqueue` speaks the PagerDuty Events API v2 (it answers in PagerDuty's
format, not problem+json); register sources with `POST /v1/integrations`.

Outage incidents: incident-svc consumes `itsm.cmdb.service_availability_changed` and opens one
incident per outage of a business service (impact from the service's CMDB criticality, learnt
from `itsm.cmdb.ci_created`; impact 1 while unknown), updates it while the outage lasts and
resolves it when the service is back up, as `PUT /v1/services/{service_id}/outage-policy` says.
"""


def create_app(settings: Settings | None = None, transport: Transport | None = None) -> FastAPI:
    settings = settings or Settings()
    runtime = ServiceRuntime(name=NAME, settings=settings, metadata=metadata, migrations_dir=MIGRATIONS,
                             handlers=HANDLERS, transport=transport)
    return build_app(runtime, title="incident-svc",
                     routers=[router, pagerduty.integrations, pagerduty.enqueue, outages.router],
                     description=DESCRIPTION)


def cli() -> None:
    settings = Settings()
    serve(create_app(settings), settings)


if __name__ == "__main__":
    cli()
