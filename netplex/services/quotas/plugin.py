"""The quotas service plugin: Neutron's ``quotas`` and ``quota_details`` extensions.

Loaded by default (Neutron's quotas are always on). Limits come from ``[quotas]``
(``quota_<resource>``, ``default_quota``; -1 unlimited) and per-project rows an admin
sets with ``PUT /v2.0/quotas/{project_id}``. Networks and ports are enforced on create
(inside the create transaction); the routes are :mod:`netplex.api.quota_routes`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from netplex.config import Config
from netplex.core.service_api import CoreAccess, Extension, ResourceExtension, ServicePlugin
from netplex.services.quotas.counting import installed
from netplex.services.quotas.extensions import NetworkQuota, PortQuota
from netplex.services.quotas.options import RESOURCE_OPTIONS
from netplex.services.quotas.service import QuotaService

__all__ = ["QuotaPlugin", "quota_defaults"]


def quota_defaults(cfg: Config) -> dict[str, int]:
    """resource -> default limit from ``[quotas]``; ``""`` holds ``default_quota``."""
    out = {res: int(cfg.get("quotas", opt)) for res, (opt, _) in RESOURCE_OPTIONS.items()}
    out[""] = int(cfg.get("quotas", "default_quota"))
    return out


class QuotaPlugin(ServicePlugin):
    name = "quotas"

    def __init__(self, service: QuotaService) -> None:
        self.service = service

    @classmethod
    def build(cls, cfg: Config, core: CoreAccess) -> ServicePlugin:
        return cls(QuotaService(core.db, quota_defaults(cfg), installed()))

    def resource_extensions(self) -> Sequence[ResourceExtension]:
        return (NetworkQuota(self.service), PortQuota(self.service))

    def extensions(self) -> Sequence[Extension]:
        return (
            Extension("quotas", "Quota management support", "Expose functions for quotas management per project"),
            Extension("quota_details", "Quota details management support",
                      "Expose functions for quotas usage statistics per project"),
        )

    def policy_defaults(self) -> Mapping[str, str]:
        return {}
