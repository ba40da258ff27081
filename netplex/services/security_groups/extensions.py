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

from sqlalchemy import Connection, bindparam, delete, insert, select

from netplex.core.attr_map import Attr
from netplex.core.context import Context
from netplex.core.service_api import ResourceExtension
from netplex.db.engine import Txn
from netplex.db.models import (
    DefaultSecurityGroup,
    NetworkSecurity,
    PortSecurity,
    SecurityGroup,
    SecurityGroupPortBinding,
)
from netplex.db.prepared import Prepared
from netplex.services.security_groups import errors as e
from netplex.services.security_groups import store
from netplex.services.security_groups.attributes import NETWORK_EXTENSION, PORT_EXTENSION

__all__ = ["NetworkPortSecurity", "PortSecurityGroups"]

_CHUNK = 5000  # as the core: below every supported bind-parameter limit
# The one-resource renders are on every port write's path: prepared (see netplex.db.prepared).
_NET_OFF = Prepared(select(NetworkSecurity.network_id).where(
    NetworkSecurity.network_id == bindparam("id"), NetworkSecurity.enabled.is_(False)))
_PORT_OFF = Prepared(select(PortSecurity.port_id).where(
    PortSecurity.port_id == bindparam("id"), PortSecurity.enabled.is_(False)))
_PORT_GROUPS = Prepared(select(SecurityGroupPortBinding.security_group_id).where(
    SecurityGroupPortBinding.port_id == bindparam("id")).order_by(SecurityGroupPortBinding.security_group_id))
_NET_ENABLED = Prepared(select(NetworkSecurity.enabled).where(NetworkSecurity.network_id == bindparam("id")))
_GROUP_OWNER = Prepared(select(SecurityGroup.project_id).where(SecurityGroup.id == bindparam("id")))
_DEFAULT_OF = Prepared(select(DefaultSecurityGroup.security_group_id).where(
    DefaultSecurityGroup.project_id == bindparam("p")))
#: Only ports *without* port security have a row: the common case costs no insert.
_INSERT_PORT_SECURITY = Prepared(insert(PortSecurity), keys=["port_id", "enabled"])
_DELETE_PORT_SECURITY = Prepared(delete(PortSecurity).where(PortSecurity.port_id == bindparam("id")))
_INSERT_BINDING = Prepared(insert(SecurityGroupPortBinding), keys=["port_id", "security_group_id"])
_DELETE_BINDINGS = Prepared(delete(SecurityGroupPortBinding).where(SecurityGroupPortBinding.port_id == bindparam("id")))
_UPDATE_KEYS = frozenset({"port_security_enabled", "security_groups", "allowed_address_pairs"})


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
    """On the port-create hot path: prepared statements on the transaction's connection only
    (no ORM session), one indexed probe per group named plus two inserts."""

    resource = "ports"

    def attributes(self) -> Mapping[str, Attr]:
        return PORT_EXTENSION

    def _check_groups(self, conn: Connection, ctx: Context, port: Mapping[str, Any], ids: list[str]) -> list[str]:
        for gid in ids:
            owner = _GROUP_OWNER.scalar(conn, {"id": gid})
            # A group of another project is "not found" (as in Neutron), also when an admin
            # creates the port for that other project with a group of a third one.
            if owner is None or not ctx.owns(owner) or (not ctx.is_admin and owner != port["project_id"]):
                raise e.SecurityGroupNotFound(id=gid)
        return ids

    @staticmethod
    def _bind(conn: Connection, port_id: str, groups: list[str]) -> None:
        if groups:
            _INSERT_BINDING.executemany(conn, [{"port_id": port_id, "security_group_id": g} for g in groups])

    def _default_group(self, txn: Txn, project_id: str) -> str:
        found = _DEFAULT_OF.scalar(txn.conn, {"p": project_id})
        if found is not None:
            return str(found)
        gid = store.ensure_default(txn, project_id)  # first port of the project: the ORM, once
        txn.flush()
        return gid

    def process_create(self, txn: Txn, ctx: Context, request: Mapping[str, Any], result: dict[str, Any]) -> None:
        conn = txn.conn
        enabled = request.get("port_security_enabled")
        if enabled is None:
            enabled = _NET_ENABLED.scalar(conn, {"id": result["network_id"]}) is not False
        wanted = request.get("security_groups")
        if not enabled:
            if wanted:
                raise e.PortSecurityAndIPRequiredForSecurityGroups()
            if result.get("allowed_address_pairs"):
                raise e.AddressPairAndPortSecurityRequired()
            groups: list[str] = []
        elif wanted is not None:
            groups = self._check_groups(conn, ctx, result, wanted)
        elif str(result.get("device_owner") or "").startswith("network:"):
            groups = []
        else:
            groups = [self._default_group(txn, result["project_id"])]
        if not enabled:
            _INSERT_PORT_SECURITY.execute(conn, {"port_id": result["id"], "enabled": False})
        self._bind(conn, result["id"], groups)
        result["port_security_enabled"] = bool(enabled)
        result["security_groups"] = sorted(groups)

    def process_update(self, txn: Txn, ctx: Context, request: Mapping[str, Any], result: dict[str, Any]) -> None:
        if not _UPDATE_KEYS.intersection(request):
            return  # ``result`` was rendered with this extension's attributes already
        conn = txn.conn
        pid = result["id"]
        current_enabled = _PORT_OFF.scalar(conn, {"id": pid}) is None
        current = [row[0] for row in _PORT_GROUPS.rows(conn, {"id": pid})]
        enabled = bool(request.get("port_security_enabled", current_enabled))
        if "security_groups" in request:
            groups = self._check_groups(conn, ctx, result, request["security_groups"] or [])
        else:
            groups = current
        if not enabled:
            if groups:
                if "security_groups" in request:
                    raise e.PortSecurityAndIPRequiredForSecurityGroups()
                raise e.PortSecurityPortHasSecurityGroup()
            if result.get("allowed_address_pairs"):
                raise e.AddressPairAndPortSecurityRequired()
        if enabled != current_enabled:
            _DELETE_PORT_SECURITY.execute(conn, {"id": pid})
            if not enabled:
                _INSERT_PORT_SECURITY.execute(conn, {"port_id": pid, "enabled": False})
        if sorted(groups) != current:
            _DELETE_BINDINGS.execute(conn, {"id": pid})
            self._bind(conn, pid, groups)
        result["port_security_enabled"] = enabled
        result["security_groups"] = sorted(groups)

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
