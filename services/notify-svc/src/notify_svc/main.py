"""notify-svc: app factory and command line."""

from pathlib import Path

from fastapi import FastAPI

from itsm_events import Transport
from itsm_runtime.service import ServiceRuntime, build_app, serve

from . import consumer
from .api.routes import routers
from .db.tables import metadata
from .delivery import DeliveryWorker
from .settings import Settings

NAME = "notify-svc"
MIGRATIONS = Path(__file__).resolve().parents[2] / "migrations"


def create_app(settings: Settings | None = None, transport: Transport | None = None) -> FastAPI:
    settings = settings or Settings()
    worker = DeliveryWorker(settings)
    runtime = ServiceRuntime(name=NAME, settings=settings, metadata=metadata, migrations_dir=MIGRATIONS,
                             handlers=consumer.handlers(worker), transport=transport,
                             on_start=[worker.start], on_stop=[worker.stop])
    runtime.state["worker"] = worker
    return build_app(runtime, title="notify-svc", routers=routers,
                     description="Webhook subscriptions and signed, retried deliveries of platform events.")


def cli() -> None:
    settings = Settings()
    serve(create_app(settings), settings)


if __name__ == "__main__":
    cli()
