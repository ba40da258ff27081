"""``security_groups`` and ``port_security_enabled`` on ports, ``port_security_enabled`` on networks.

Neutron's rules, applied inside the port's own transaction:

* a port's ``port_security_enabled`` defaults to its network's (which defaults to true);
* a port with port security gets the project's ``default`` group unless it names its
  groups; ports owned by the network itself (``device_owner`` ``network:*``: DHCP,
  router interfaces) get none;
* a port without port security has no groups and no allowed address pairs: naming
  groups for it is a 400 (``PortSecurityAndIPRequiredForSecurityGroups``), turning port
  security off while groups remain is a 409 (``PortSecurityPortHasSecurityGroup``),
  address pairs without port security a 409 (``AddressPairAndPortSecurityRequired``);
* a group named must exist and be visible to the caller (404 otherwise).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Connection, bindparam, delete, select

from netplex.core.attr_map import Attr
from netplex.core.context import Context
from netplex.core.service_api import ResourceExtension
from netplex.db.engine import Txn
from netplex.db.models import NetworkSecurity, PortSecurity, SecurityGroup, SecurityGroupPortBinding
from netplex.db.prepared import Prepared
from netplex.services.security_groups import errors as e
from netplex.services.security_groups import store
from netplex.services.security_groups.attributes import NETWORK_EXTENSION, PORT_EXTENSION

__all__ = ["NetworkPortSecurity", "PortSecurityGroups"]

_CHUNK = 500
# The one-resource renders are on every port write's path: prepared (see netplex.db.prepared).
_NET_OFF = Prepared(select(NetworkSecurity.network_id).where(
    NetworkSecurity.network_id == bindparam("id"), NetworkSecurity.enabled.is_(False)))
_PORT_OFF = Prepared(select(PortSecurity.port_id).where(
    PortSecurity.port_id == bindparam("id"), PortSecurity.enabled.is_(False)))
_PORT_GROUPS = Prepared(select(SecurityGroupPortBinding.security_group_id).where(
    SecurityGroupPortBinding.port_id == bindparam("id")).order_by(SecurityGroupPortBinding.security_group_id))


def _network_enabled(txn: Txn, network_id: str) -> bool:
    row = txn.session.get(NetworkSecurity, network_id)
    return True if row is None else bool(row.enabled)


class NetworkPortSecurity(ResourceExtension):
    resource = "networks"

    def attributes(self) -> Mapping[str, Attr]:
        return NETWORK_EXTENSION

    def process_create(self, txn: Txn, ctx: Context, request: Mapping[str, Any], result: dict[str, Any]) -> None:
        enabled = request.get("port_security_enabled")
        enabled = True if enabled is None else bool(enabled)
        txn.session.add(NetworkSecurity(network_id=result["id"], enabled=enabled))
        result["port_security_enabled"] = enabled

    def process_update(self, txn: Txn, ctx: Context, request: Mapping[str, Any], result: dict[str, Any]) -> None:
        if "port_security_enabled" in request:
            row = txn.session.get(NetworkSecurity, result["id"])
            if row is None:
                row = NetworkSecurity(network_id=result["id"])
                txn.session.add(row)
            row.enabled = bool(request["port_security_enabled"])
        result["port_security_enabled"] = _network_enabled(txn, result["id"])

    def extend(self, conn: Connection, results: Sequence[dict[str, Any]]) -> None:
        if len(results) == 1:
            off = {results[0]["id"]} if _NET_OFF.scalar(conn, {"id": results[0]["id"]}) else set()
        else:
            ids = [r["id"] for r in results]
            off = set()
            for i in range(0, len(ids), _CHUNK):
                off.update(conn.execute(select(NetworkSecurity.network_id).where(
                    NetworkSecurity.network_id.in_(ids[i:i + _CHUNK]),
                    NetworkSecurity.enabled.is_(False))).scalars())
        for r in results:
            r["port_security_enabled"] = r["id"] not in off


class PortSecurityGroups(ResourceExtension):
    resource = "ports"

    def attributes(self) -> Mapping[str, Attr]:
        return PORT_EXTENSION

    def _check_groups(self, txn: Txn, ctx: Context, port: Mapping[str, Any], ids: list[str]) -> list[str]:
        s = txn.session
        found = {g.id: g for g in s.execute(select(SecurityGroup).where(SecurityGroup.id.in_(ids))).scalars()}
        for gid in ids:
            g = found.get(gid)
            # A group of another project is "not found" (as in Neutron), also when an admin
            # creates the port for that other project with a group of a third one.
            if g is None or not ctx.owns(g.project_id) or (not ctx.is_admin and g.project_id != port["project_id"]):
                raise e.SecurityGroupNotFound(id=gid)
        return ids

    def _write(self, txn: Txn, port_id: str, enabled: bool, groups: list[str], *, replace: bool) -> None:
        s = txn.session
        if replace:
            row = s.get(PortSecurity, port_id)
            if row is None:
                s.add(PortSecurity(port_id=port_id, enabled=enabled))
            else:
                row.enabled = enabled
            s.execute(delete(SecurityGroupPortBinding).where(SecurityGroupPortBinding.port_id == port_id))
        else:
            s.add(PortSecurity(port_id=port_id, enabled=enabled))
        s.add_all(SecurityGroupPortBinding(port_id=port_id, security_group_id=g) for g in groups)
        s.flush()

    def process_create(self, txn: Txn, ctx: Context, request: Mapping[str, Any], result: dict[str, Any]) -> None:
        enabled = request.get("port_security_enabled")
        if enabled is None:
            enabled = _network_enabled(txn, result["network_id"])
        wanted = request.get("security_groups")
        if not enabled:
            if wanted:
                raise e.PortSecurityAndIPRequiredForSecurityGroups()
            if result.get("allowed_address_pairs"):
                raise e.AddressPairAndPortSecurityRequired()
            groups: list[str] = []
        elif wanted is not None:
            groups = self._check_groups(txn, ctx, result, wanted)
        elif str(result.get("device_owner") or "").startswith("network:"):
            groups = []
        else:
            groups = [store.ensure_default(txn, result["project_id"])]
        self._write(txn, result["id"], bool(enabled), groups, replace=False)
        result["port_security_enabled"] = bool(enabled)
        result["security_groups"] = groups

    def process_update(self, txn: Txn, ctx: Context, request: Mapping[str, Any], result: dict[str, Any]) -> None:
        s = txn.session
        pid = result["id"]
        row = s.get(PortSecurity, pid)
        current_enabled = True if row is None else bool(row.enabled)
        current = list(s.execute(select(SecurityGroupPortBinding.security_group_id)
                                 .where(SecurityGroupPortBinding.port_id == pid)
                                 .order_by(SecurityGroupPortBinding.security_group_id)).scalars())
        touched = "port_security_enabled" in request or "security_groups" in request
        enabled = bool(request.get("port_security_enabled", current_enabled))
        if "security_groups" in request:
            groups = self._check_groups(txn, ctx, result, request["security_groups"] or [])
        else:
            groups = current
        if not enabled:
            if groups:
                if "security_groups" in request:
                    raise e.PortSecurityAndIPRequiredForSecurityGroups()
                raise e.PortSecurityPortHasSecurityGroup()
            if result.get("allowed_address_pairs"):
                raise e.AddressPairAndPortSecurityRequired()
        if touched and (enabled != current_enabled or sorted(groups) != current):
            self._write(txn, pid, enabled, groups, replace=True)
        result["port_security_enabled"] = enabled
        result["security_groups"] = groups

    def extend(self, conn: Connection, results: Sequence[dict[str, Any]]) -> None:
        off: set[str] = set()
        groups: dict[str, list[str]] = {}
        if len(results) == 1:
            pid = results[0]["id"]
            if _PORT_OFF.scalar(conn, {"id": pid}):
                off.add(pid)
            groups[pid] = [row[0] for row in _PORT_GROUPS.rows(conn, {"id": pid})]
        else:
            ids = [r["id"] for r in results]
            b = SecurityGroupPortBinding
            for i in range(0, len(ids), _CHUNK):
                chunk = ids[i:i + _CHUNK]
                off.update(conn.execute(select(PortSecurity.port_id).where(
                    PortSecurity.port_id.in_(chunk), PortSecurity.enabled.is_(False))).scalars())
                for pid, gid in conn.execute(select(b.port_id, b.security_group_id).where(b.port_id.in_(chunk))
                                             .order_by(b.security_group_id)):
                    groups.setdefault(pid, []).append(gid)
        for r in results:
            r["port_security_enabled"] = r["id"] not in off
            r["security_groups"] = groups.get(r["id"], [])
