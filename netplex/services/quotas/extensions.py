"""Quota enforcement on the core's collections: a :class:`ResourceExtension` without
attributes whose ``process_create`` runs the check inside the create transaction."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from sqlalchemy import Connection

from netplex.core.attr_map import Attr
from netplex.core.context import Context
from netplex.core.service_api import ResourceExtension
from netplex.db.engine import Txn
from netplex.services.quotas.service import QuotaService

__all__ = ["NetworkQuota", "PortQuota"]


class _QuotaCheck(ResourceExtension):
    quota_resource: ClassVar[str]

    def __init__(self, quotas: QuotaService) -> None:
        self._quotas = quotas

    def attributes(self) -> Mapping[str, Attr]:
        return {}

    def process_create(self, txn: Txn, ctx: Context, request: Mapping[str, Any], result: dict[str, Any]) -> None:
        self._quotas.check(txn, str(result.get("project_id") or ""), self.quota_resource)

    def process_update(self, txn: Txn, ctx: Context, request: Mapping[str, Any], result: dict[str, Any]) -> None:
        return None

    def extend(self, conn: Connection, results: Sequence[dict[str, Any]]) -> None:
        return None


class NetworkQuota(_QuotaCheck):
    resource = "networks"
    quota_resource = "network"


class PortQuota(_QuotaCheck):
    resource = "ports"
    quota_resource = "port"
