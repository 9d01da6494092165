"""Fixtures of incident-svc's integration tests: one running app, on a schema of its own, per test module."""

import uuid

import pytest

from incident_svc.main import create_app
from incident_svc.settings import Settings
from itsm_runtime.testing import running_app


@pytest.fixture(scope="module")
async def app(service_settings):
    return create_app(service_settings(Settings, db_schema=f"incident_{uuid.uuid4().hex[:6]}"))


@pytest.fixture(scope="module")
async def client(app):
    async with running_app(app) as client:
        yield client
