from pydantic_settings import SettingsConfigDict

from itsm_runtime.settings import ServiceSettings


class Settings(ServiceSettings):
    """change-svc settings, from CHANGE_* environment variables."""

    model_config = SettingsConfigDict(env_prefix="CHANGE_", extra="ignore")

    port: int = 8103
    db_schema: str = "change"
