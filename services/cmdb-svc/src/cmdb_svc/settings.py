from pydantic_settings import SettingsConfigDict

from itsm_runtime.settings import ServiceSettings


class Settings(ServiceSettings):
    """cmdb-svc settings, from CMDB_* environment variables."""

    model_config = SettingsConfigDict(env_prefix="CMDB_", extra="ignore")

    port: int = 8104
    db_schema: str = "cmdb"
