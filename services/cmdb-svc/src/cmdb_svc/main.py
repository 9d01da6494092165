"""cmdb-svc: app factory and command line."""

from pathlib import Path

from fastapi import FastAPI

from itsm_events import Transport
from itsm_runtime.service import ServiceRuntime, build_app, serve

from .api.routes import router
from .consumer import HANDLERS
from .db.tables import metadata
from .settings import Settings

NAME = "cmdb-svc"
MIGRATIONS = Path(__file__).resolve().parents[2] / "migrations"


def create_app(settings: Settings | None = None, transport: Transport | None = None) -> FastAPI:
    settings = settings or Settings()
    runtime = ServiceRuntime(name=NAME, settings=settings, metadata=metadata, migrations_dir=MIGRATIONS,
                             handlers=HANDLERS, transport=transport)
    return build_app(runtime, title="cmdb-svc", routers=[router],
                     description="Configuration items, their redundancy and the relationships between them.")


def cli() -> None:
    settings = Settings()
    serve(create_app(settings), settings)


if __name__ == "__main__":
    cli()
