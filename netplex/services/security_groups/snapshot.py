"""The security-group part of a host agent's snapshot (``GET /v2.0/netplex/host-state``).

``security_groups``: every group a port on the host uses, plus every group their rules name
as ``remote_group_id`` (rules included). ``remote_group_ports``: the members of those remote
groups, wherever they are bound (id, network, MAC, fixed IPs, address pairs, groups), so the
host can fill its remote-group address sets. Read in the snapshot's consistent read.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Connection, select
from sqlalchemy.orm import Session

from netplex.db.models import IPAllocation, Port, SecurityGroup, SecurityGroupPortBinding, SecurityGroupRule
from netplex.services.security_groups.store import group_dicts

__all__ = ["host_snapshot"]

_CHUNK = 5000


def _chunks(ids: Sequence[str]) -> list[Sequence[str]]:
    return [ids[i:i + _CHUNK] for i in range(0, len(ids), _CHUNK)]


def host_snapshot(conn: Connection, host: str, ports: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    used = sorted({g for p in ports if p.get("binding:host_id") == host for g in p.get("security_groups") or ()})
    if not used:
        return {"security_groups": [], "remote_group_ports": []}
    remote: set[str] = set()
    for chunk in _chunks(used):
        remote.update(g for g in conn.execute(select(SecurityGroupRule.remote_group_id).where(
            SecurityGroupRule.security_group_id.in_(chunk),
            SecurityGroupRule.remote_group_id.is_not(None)).distinct()).scalars() if g)
    wanted = sorted(set(used) | remote)
    with Session(bind=conn) as s:
        rows = [g for chunk in _chunks(wanted)
                for g in s.execute(select(SecurityGroup).where(SecurityGroup.id.in_(chunk))
                                   .order_by(SecurityGroup.id)).scalars()]
        groups = group_dicts(s, rows)
    return {"security_groups": groups, "remote_group_ports": _members(conn, sorted(remote))}


def _members(conn: Connection, group_ids: Sequence[str]) -> list[dict[str, Any]]:
    if not group_ids:
        return []
    member_ids: set[str] = set()
    for chunk in _chunks(group_ids):
        member_ids.update(conn.execute(select(SecurityGroupPortBinding.port_id).where(
            SecurityGroupPortBinding.security_group_id.in_(chunk))).scalars())
    ids = sorted(member_ids)
    ports: dict[str, dict[str, Any]] = {}
    for chunk in _chunks(ids):
        for r in conn.execute(select(Port.id, Port.network_id, Port.mac_address, Port.allowed_address_pairs)
                              .where(Port.id.in_(chunk))):
            ports[r.id] = {"id": r.id, "network_id": r.network_id, "mac_address": r.mac_address,
                           "allowed_address_pairs": list(r.allowed_address_pairs or []), "fixed_ips": [],
                           "security_groups": []}
        for pid, sid, ip in conn.execute(select(IPAllocation.port_id, IPAllocation.subnet_id,
                                                IPAllocation.ip_address).where(IPAllocation.port_id.in_(chunk))):
            ports[pid]["fixed_ips"].append({"subnet_id": sid, "ip_address": ip})
        b = SecurityGroupPortBinding
        for pid, gid in conn.execute(select(b.port_id, b.security_group_id).where(b.port_id.in_(chunk))
                                     .order_by(b.security_group_id)):
            ports[pid]["security_groups"].append(gid)
    return [ports[i] for i in ids if i in ports]
