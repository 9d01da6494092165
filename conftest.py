"""Fixtures shared by every test: the real PostgreSQL and Kafka that `make test` starts.

`make test` exports ITSM_TEST_DATABASE_URL and ITSM_TEST_KAFKA; each test session gets a
fresh database on that server. Unit tests of pure domain code need neither.
"""

import os
import uuid
from collections.abc import AsyncIterator, Callable

import pytest
from aiokafka import AIOKafkaProducer

from itsm_runtime.testing import create_database


def _required(name: str) -> str:
    value = os.environ.get(name)
    if not value:
        pytest.fail(f"{name} is not set: run the suite with `make test`, which starts Kafka and PostgreSQL")
    return value


@pytest.fixture(scope="session")
def kafka_bootstrap() -> str:
    return _required("ITSM_TEST_KAFKA")


@pytest.fixture(scope="session")
def new_database() -> Callable:
    """Create a fresh database on the test server; returns its postgresql:// URL."""
    server = _required("ITSM_TEST_DATABASE_URL")
    return lambda: create_database(server)


@pytest.fixture(scope="session")
async def database_url(new_database) -> AsyncIterator[str]:
    """A fresh database for this test session."""
    yield await new_database()


@pytest.fixture(scope="session")
def service_settings(database_url, kafka_bootstrap) -> Callable:
    """Settings for a service under test: real database and Kafka, a schema per test module if asked."""

    def make(settings_cls, **overrides):
        # a consumer group of its own: apps under test must not share partitions with the e2e stack's processes
        values = {"database_url": database_url, "kafka_bootstrap_servers": kafka_bootstrap,
                  "environment": "test", "log_json": False, "consumer_group": f"test-{uuid.uuid4().hex[:8]}"}
        values.update(overrides)
        return settings_cls(**values)

    return make


@pytest.fixture(scope="session")
async def kafka_producer(kafka_bootstrap) -> AsyncIterator[AIOKafkaProducer]:
    """A plain producer, for tests that publish records the way another system would."""
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    await producer.start()
    yield producer
    await producer.stop()
