"""The real stack for end-to-end tests: each service its own process, talking only over Kafka."""

import os

import httpx
import pytest

from itsm_runtime.testing import OtlpReceiver, WebhookReceiver
from itsm_standalone.services import SERVICES
from itsm_standalone.stack import ProcessStack


@pytest.fixture(scope="session")
async def otlp():
    """Where every service of the stack exports its traces."""
    async with OtlpReceiver() as receiver:
        yield receiver


@pytest.fixture(scope="session")
def stack(database_url, kafka_bootstrap, tmp_path_factory, otlp, monkeypatch_session):
    monkeypatch_session.setenv("OTEL_BSP_SCHEDULE_DELAY", "200")  # the SDK's own setting: export quickly
    stack = ProcessStack(database_url=database_url, kafka=kafka_bootstrap, log_dir=tmp_path_factory.mktemp("logs"),
                         port_offset=int(os.environ.get("ITSM_TEST_PORT_OFFSET", "10000")),
                         extra_env={"LOG_JSON": "true", "ENVIRONMENT": "test", "OTLP_ENDPOINT": otlp.url})
    try:
        for spec in SERVICES:
            stack.start(spec.name)
        yield stack
    finally:
        stack.stop_all()


@pytest.fixture(scope="session")
async def receiver():
    async with WebhookReceiver() as receiver:
        yield receiver


@pytest.fixture(scope="session")
async def http():
    async with httpx.AsyncClient(timeout=10) as client:
        yield client


@pytest.fixture(scope="session")
def monkeypatch_session():
    with pytest.MonkeyPatch.context() as patch:
        yield patch
