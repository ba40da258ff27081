"""Rows of the security-group tables and their Neutron dicts: the one writer and renderer of them.

Everything here runs inside a caller's transaction (:class:`~netplex.db.engine.Txn`)
or read session; every write also appends its change to the feed, so agents
that enforce groups learn about it in commit order.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from netplex.core.common import bump, iso, tags_for
from netplex.db.engine import Txn
from netplex.db.models import (
    DefaultSecurityGroup,
    SecurityGroup,
    SecurityGroupPortBinding,
    SecurityGroupRule,
)
from netplex.services.security_groups.rules import RuleSpec

__all__ = [
    "DEFAULT_NAME",
    "add_rule",
    "default_group_id",
    "default_group_ids",
    "delete_group_rows",
    "ensure_default",
    "group_dicts",
    "new_group",
    "rule_dict",
]

DEFAULT_NAME = "default"
_CHUNK = 500


def rule_dict(r: SecurityGroupRule, *, default_group: bool = False) -> dict[str, Any]:
    return {
        "id": r.id,
        "security_group_id": r.security_group_id,
        "direction": r.direction,
        "ethertype": r.ethertype,
        "protocol": r.protocol,
        "port_range_min": r.port_range_min,
        "port_range_max": r.port_range_max,
        "remote_ip_prefix": r.remote_ip_prefix,
        "normalized_cidr": _normalized(r),
        "remote_group_id": r.remote_group_id,
        "remote_address_group_id": r.remote_address_group_id,
        "description": r.description,
        "project_id": r.project_id,
        "tenant_id": r.project_id,
        "belongs_to_default_sg": default_group,
        "revision_number": r.revision_number,
        "created_at": iso(r.created_at),
        "updated_at": iso(r.updated_at),
    }


def _normalized(r: SecurityGroupRule) -> str | None:
    # match_key keeps the normalised prefix in field 5 (see RuleSpec.match_key).
    if r.remote_ip_prefix is None:
        return None
    return r.match_key.split("|")[5]


def group_dicts(s: Session, rows: Sequence[SecurityGroup]) -> list[dict[str, Any]]:
    """Dicts of many groups with their rules and tags: three queries per chunk, whatever the count."""
    ids = [g.id for g in rows]
    rules: dict[str, list[SecurityGroupRule]] = {i: [] for i in ids}
    for i in range(0, len(ids), _CHUNK):
        for r in s.execute(select(SecurityGroupRule)
                           .where(SecurityGroupRule.security_group_id.in_(ids[i:i + _CHUNK]))
                           .order_by(SecurityGroupRule.created_at, SecurityGroupRule.id)).scalars():
            rules[r.security_group_id].append(r)
    defaults = default_group_ids(s, ids)
    tags = tags_for(s, "security_groups", ids)
    return [{
        "id": g.id,
        "name": g.name,
        "description": g.description,
        "stateful": g.stateful,
        "project_id": g.project_id,
        "tenant_id": g.project_id,
        "security_group_rules": [rule_dict(r, default_group=g.id in defaults) for r in rules[g.id]],
        "tags": tags.get(g.id, []),
        "shared": False,
        "revision_number": g.revision_number,
        "created_at": iso(g.created_at),
        "updated_at": iso(g.updated_at),
    } for g in rows]


def add_rule(txn: Txn, group: SecurityGroup, spec: RuleSpec, *, project_id: str, description: str = "",
             record: bool = True) -> SecurityGroupRule:
    row = SecurityGroupRule(
        security_group_id=group.id, project_id=project_id, direction=spec.direction,
        ethertype=spec.ethertype, protocol=spec.protocol, port_range_min=spec.port_range_min,
        port_range_max=spec.port_range_max, remote_ip_prefix=spec.remote_ip_prefix,
        remote_group_id=spec.remote_group_id, match_key=spec.match_key, description=description,
    )
    txn.session.add(row)
    txn.session.flush()
    if record:
        txn.record("security_group_rule", row.id, "create", rule_dict(row))
    return row


_EGRESS_ANY = (RuleSpec("egress", "IPv4", None, None, None, None, None),
               RuleSpec("egress", "IPv6", None, None, None, None, None))


def new_group(txn: Txn, *, project_id: str, name: str, description: str, stateful: bool,
              default: bool = False) -> SecurityGroup:
    """A group with Neutron's initial rules: egress anywhere (v4, v6); the ``default`` group also
    admits ingress from its own members (v4, v6)."""
    g = SecurityGroup(project_id=project_id, name=name, description=description, stateful=stateful)
    txn.session.add(g)
    txn.session.flush()
    specs = list(_EGRESS_ANY)
    if default:
        txn.session.add(DefaultSecurityGroup(project_id=project_id, security_group_id=g.id))
        specs += [RuleSpec("ingress", eth, None, None, None, None, g.id) for eth in ("IPv4", "IPv6")]
    for spec in specs:
        add_rule(txn, g, spec, project_id=project_id, record=False)
    txn.session.flush()
    txn.record("security_group", g.id, "create", group_dicts(txn.session, [g])[0])
    return g


def default_group_id(s: Session, project_id: str) -> str | None:
    return s.execute(select(DefaultSecurityGroup.security_group_id)
                     .where(DefaultSecurityGroup.project_id == project_id)).scalar()


def default_group_ids(s: Session, group_ids: Iterable[str]) -> set[str]:
    """Which of ``group_ids`` are some project's ``default`` group."""
    ids = list(group_ids)
    out: set[str] = set()
    for i in range(0, len(ids), _CHUNK):
        out.update(s.execute(select(DefaultSecurityGroup.security_group_id)
                             .where(DefaultSecurityGroup.security_group_id.in_(ids[i:i + _CHUNK]))).scalars())
    return out


def ensure_default(txn: Txn, project_id: str) -> str:
    """The project's ``default`` group, created on first use. Two requests racing to create it
    collide on the primary key of ``default_security_groups``; the loser's transaction is
    retried by the database layer and then finds the winner's group."""
    found = default_group_id(txn.session, project_id)
    if found is not None:
        return found
    return new_group(txn, project_id=project_id, name=DEFAULT_NAME, description="Default security group",
                     stateful=True, default=True).id


def groups_in_use(s: Session, group_ids: Iterable[str]) -> set[str]:
    ids = list(group_ids)
    return set(s.execute(select(SecurityGroupPortBinding.security_group_id)
                         .where(SecurityGroupPortBinding.security_group_id.in_(ids)).distinct()).scalars())


def delete_group_rows(txn: Txn, group: SecurityGroup) -> None:
    """Delete a group, its rules and the rules of other groups that name it as remote group
    (Neutron cascades those too); every removed rule and each touched group goes to the feed."""
    s = txn.session
    referencing = list(s.execute(select(SecurityGroupRule).where(
        SecurityGroupRule.remote_group_id == group.id,
        SecurityGroupRule.security_group_id != group.id)).scalars())
    touched: dict[str, None] = {}
    for r in referencing:
        touched[r.security_group_id] = None
        txn.record("security_group_rule", r.id, "delete", None)
    own = list(s.execute(select(SecurityGroupRule.id).where(
        SecurityGroupRule.security_group_id == group.id)).scalars())
    for rid in own:
        txn.record("security_group_rule", rid, "delete", None)
    s.execute(delete(SecurityGroupRule).where(
        (SecurityGroupRule.security_group_id == group.id) | (SecurityGroupRule.remote_group_id == group.id)))
    s.execute(delete(DefaultSecurityGroup).where(DefaultSecurityGroup.security_group_id == group.id))
    s.delete(group)
    s.flush()
    txn.record("security_group", group.id, "delete", None)
    for gid in touched:
        other = s.get(SecurityGroup, gid)
        if other is not None:
            bump(other)
            s.flush()
            txn.record("security_group", gid, "update", group_dicts(s, [other])[0])
