"""The five services: name, settings class, app factory and port, in one table."""

from dataclasses import dataclass
from importlib import import_module


@dataclass(frozen=True)
class ServiceSpec:
    name: str
    package: str
    env_prefix: str
    port: int

    def settings_class(self):
        return import_module(f"{self.package}.settings").Settings

    def create_app(self):
        return import_module(f"{self.package}.main").create_app


SERVICES = (
    ServiceSpec("incident-svc", "incident_svc", "INCIDENT_", 8101),
    ServiceSpec("sla-svc", "sla_svc", "SLA_", 8102),
    ServiceSpec("change-svc", "change_svc", "CHANGE_", 8103),
    ServiceSpec("cmdb-svc", "cmdb_svc", "CMDB_", 8104),
    ServiceSpec("notify-svc", "notify_svc", "NOTIFY_", 8105),
)
