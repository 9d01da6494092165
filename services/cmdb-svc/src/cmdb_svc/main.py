"""cmdb-svc: app factory and command line."""

from pathlib import Path

from fastapi import FastAPI

from itsm_events import Transport
from itsm_runtime.service import ServiceRuntime, build_app, serve

from .api.routes import router
from .consumer import HANDLERS
from .db.tables import metadata
from .live_graph import LiveGraph
from .settings import Settings

NAME = "cmdb-svc"
MIGRATIONS = Path(__file__).resolve().parents[2] / "migrations"
DESCRIPTION = """Configuration items, the relationships between them, their health and the availability of
business services.

**Service ids.** A business service is a CI of type `business_service`; its CI `id` is the
`service_id` that incidents, SLAs and `itsm.cmdb.service_availability_changed` use. Create it with
your own `id` (e.g. `"id": "payments"`) to keep an id the platform already uses, or let the CMDB
assign a UUID. The `key` is a separate, unique business key (e.g. a discovery id) and is never a
service id.

**Health.** `POST /v1/signals` takes component health; each CI's health is the worst of its own
signals and its needs: a hard dependency (depends_on, runs_on, hosted_on target) that is down or
degraded makes it down or degraded; a cluster (the target of member_of) is up while all members are
up, degraded while some are not up but at least its redundancy rule's count is not down, down
otherwise; connects_to carries no health. A CI's lifecycle `status` (planned, active, maintenance,
retired) is separate from its `health`.
"""


def create_app(settings: Settings | None = None, transport: Transport | None = None) -> FastAPI:
    settings = settings or Settings()
    graph = LiveGraph()

    async def load_graph(runtime: ServiceRuntime) -> None:
        await graph.refresh(runtime.engine)

    runtime = ServiceRuntime(name=NAME, settings=settings, metadata=metadata, migrations_dir=MIGRATIONS,
                             handlers=HANDLERS, transport=transport, on_start=[load_graph])
    runtime.state["graph"] = graph
    return build_app(runtime, title="cmdb-svc", routers=[router], description=DESCRIPTION)


def cli() -> None:
    settings = Settings()
    serve(create_app(settings), settings)


if __name__ == "__main__":
    cli()
