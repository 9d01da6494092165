from pydantic_settings import SettingsConfigDict

from itsm_runtime.settings import ServiceSettings


class Settings(ServiceSettings):
    """sla-svc settings, from SLA_* environment variables."""

    model_config = SettingsConfigDict(env_prefix="SLA_", extra="ignore")

    port: int = 8102
    db_schema: str = "sla"
    timer_concurrency: int = 8
    timer_batch_size: int = 500
    catch_up_seconds: float = 30.0
