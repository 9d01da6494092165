from pydantic_settings import SettingsConfigDict

from itsm_runtime.settings import ServiceSettings


class Settings(ServiceSettings):
    """incident-svc settings, from INCIDENT_* environment variables."""

    model_config = SettingsConfigDict(env_prefix="INCIDENT_", extra="ignore")

    port: int = 8101
    db_schema: str = "incident"
