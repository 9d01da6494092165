"""sla-svc on real PostgreSQL and Kafka, with a real incident-svc feeding it over Kafka (both in this process)."""

import uuid

import pytest

from incident_svc.main import create_app as create_incident_app
from incident_svc.settings import Settings as IncidentSettings
from itsm_runtime.testing import running_app
from sla_svc.main import create_app as create_sla_app
from sla_svc.settings import Settings as SlaSettings


@pytest.fixture(scope="module")
async def sla_app(service_settings):
    return create_sla_app(service_settings(SlaSettings, db_schema=f"sla_{uuid.uuid4().hex[:6]}"))


@pytest.fixture(scope="module")
async def sla(sla_app):
    async with running_app(sla_app) as client:
        yield client


@pytest.fixture(scope="module")
async def incidents(service_settings, sla):
    app = create_incident_app(service_settings(IncidentSettings, db_schema=f"incident_{uuid.uuid4().hex[:6]}"))
    async with running_app(app) as client:
        yield client


@pytest.fixture(scope="module")
def producer(kafka_producer):
    return kafka_producer
