"""The security-group service plugin: Neutron's ``security-group``, ``port-security`` and
``stateful-security-group`` extensions on the API.

Loaded by default, as Neutron's ML2 does (``[securitygroup] enable_security_group``, default
true; false turns the API off). Enforcement is the host agents' job (they follow the feed:
``security_group``, ``security_group_rule`` and the ports' ``security_groups``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Connection

from netplex.config import Config
from netplex.core.service_api import CoreAccess, Extension, Resource, ResourceExtension, ServicePlugin
from netplex.services.quotas.counting import installed
from netplex.services.quotas.plugin import quota_defaults
from netplex.services.quotas.service import QuotaService
from netplex.services.security_groups.attributes import SECURITY_GROUP, SECURITY_GROUP_RULE
from netplex.services.security_groups.extensions import NetworkPortSecurity, PortSecurityGroups
from netplex.services.security_groups.service import RuleService, SecurityGroupService
from netplex.services.security_groups.snapshot import host_snapshot

__all__ = ["SecurityGroupPlugin"]

_OWNER = "rule:admin_or_owner"


class SecurityGroupPlugin(ServicePlugin):
    name = "security_group"

    def __init__(self, groups: SecurityGroupService, rules: RuleService) -> None:
        self._groups = groups
        self._rules = rules

    @classmethod
    def build(cls, cfg: Config, core: CoreAccess) -> ServicePlugin:
        # Neutron counts groups and rules against [quotas] quota_security_group(_rule).
        quotas = QuotaService(core.db, quota_defaults(cfg), installed())
        return cls(SecurityGroupService(core.db, quotas.check), RuleService(core.db, quotas.check))

    def resources(self) -> Sequence[Resource]:
        return (
            Resource(member="security_group", plural="security_groups", path="security-groups",
                     attributes=SECURITY_GROUP, service=self._groups),
            Resource(member="security_group_rule", plural="security_group_rules", path="security-group-rules",
                     attributes=SECURITY_GROUP_RULE, service=self._rules),
        )

    def resource_extensions(self) -> Sequence[ResourceExtension]:
        return (PortSecurityGroups(), NetworkPortSecurity())

    def extensions(self) -> Sequence[Extension]:
        return (
            Extension("security-group", "security-group", "The security groups extension."),
            Extension("port-security", "Port Security", "Provides port security"),
            Extension("stateful-security-group", "Stateful security group",
                      "Indicates if the security group is stateful or not"),
            Extension("security-groups-normalized-cidr", "Security group with normalized CIDR",
                      "Add new field with normalized remote_ip_prefix cidr in SG rule"),
        )

    def host_state(self, conn: Connection, host: str, ports: Sequence[Mapping[str, Any]]) -> Mapping[str, Any]:
        return host_snapshot(conn, host, ports)

    def policy_defaults(self) -> Mapping[str, str]:
        return {
            "create_security_group": "",
            "get_security_group": _OWNER,
            "update_security_group": _OWNER,
            "delete_security_group": _OWNER,
            "create_security_group_rule": _OWNER,
            "get_security_group_rule": _OWNER,
            "update_security_group_rule": _OWNER,
            "delete_security_group_rule": _OWNER,
        }
