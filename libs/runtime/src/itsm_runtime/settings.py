"""Settings shared by every service; each service subclasses with its own env prefix."""

from typing import Literal

from pydantic import model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class ServiceSettings(BaseSettings):
    """Read from `<PREFIX>_*` environment variables (e.g. INCIDENT_DATABASE_URL)."""

    model_config = SettingsConfigDict(extra="ignore")

    environment: Literal["development", "test", "production"] = "development"
    host: str = "127.0.0.1"
    port: int = 8100
    database_url: str = "postgresql+asyncpg://postgres@127.0.0.1:15432/itsm"
    db_schema: str = ""
    db_pool_size: int = 10
    bus: Literal["kafka", "inprocess"] = "kafka"
    kafka_bootstrap_servers: str = "127.0.0.1:9092"
    kafka_partitions: int = 3
    consumer_group: str = ""
    consumer_max_attempts: int = 5
    otlp_endpoint: str | None = None
    log_level: str = "INFO"
    log_json: bool = True

    @model_validator(mode="after")
    def _normalise(self):
        url = self.database_url
        for plain in ("postgresql://", "postgres://"):
            if url.startswith(plain):
                self.database_url = "postgresql+asyncpg://" + url[len(plain):]
        return self
