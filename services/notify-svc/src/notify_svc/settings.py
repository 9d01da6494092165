from pydantic_settings import SettingsConfigDict

from itsm_runtime.settings import ServiceSettings


class Settings(ServiceSettings):
    """notify-svc settings, from NOTIFY_* environment variables."""

    model_config = SettingsConfigDict(env_prefix="NOTIFY_", extra="ignore")

    port: int = 8105
    db_schema: str = "notify"
    delivery_timeout_seconds: float = 5.0
    delivery_concurrency: int = 16
    retry_base_seconds: float = 1.0
    retry_max_seconds: float = 300.0
    retry_after_max_seconds: float = 3600.0
    max_attempts: int = 8
    sweep_seconds: float = 30.0
