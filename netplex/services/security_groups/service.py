"""``/v2.0/security-groups`` and ``/v2.0/security-group-rules``: the two collections' operations.

Visibility is Neutron's: a project sees its own groups and the rules in them;
an admin sees all. Another project's group is "not found" (404), never 403.
The ``default`` group of a project appears on first use (listing groups,
creating a port) and its owner cannot delete it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from netplex.core.common import bump, check_revision, resolve_project
from netplex.core.context import Context
from netplex.core.listing import ListQuery, filter_clauses, finish_in_python, paginate
from netplex.db.engine import Database, Txn
from netplex.db.models import SecurityGroup, SecurityGroupRule
from netplex.errors import InvalidInput
from netplex.services.security_groups import errors as e
from netplex.services.security_groups import store
from netplex.services.security_groups.rules import check_rule

__all__ = ["RuleService", "SecurityGroupService", "visible_group"]

GROUP_COLUMNS = {
    "id": SecurityGroup.id, "name": SecurityGroup.name, "description": SecurityGroup.description,
    "project_id": SecurityGroup.project_id, "stateful": SecurityGroup.stateful,
    "revision_number": SecurityGroup.revision_number,
}
RULE_COLUMNS = {
    "id": SecurityGroupRule.id, "security_group_id": SecurityGroupRule.security_group_id,
    "direction": SecurityGroupRule.direction, "ethertype": SecurityGroupRule.ethertype,
    "protocol": SecurityGroupRule.protocol, "port_range_min": SecurityGroupRule.port_range_min,
    "port_range_max": SecurityGroupRule.port_range_max, "remote_ip_prefix": SecurityGroupRule.remote_ip_prefix,
    "remote_group_id": SecurityGroupRule.remote_group_id, "description": SecurityGroupRule.description,
    "project_id": SecurityGroupRule.project_id, "revision_number": SecurityGroupRule.revision_number,
    "remote_address_group_id": SecurityGroupRule.remote_address_group_id,
}


def visible_group(s: Session, ctx: Context, group_id: str) -> SecurityGroup:
    g = s.get(SecurityGroup, group_id)
    if g is None or not ctx.owns(g.project_id):
        raise e.SecurityGroupNotFound(id=group_id)
    return g


#: Inside a create transaction, after the new rows: raise OverQuota if the project is now
#: over its limit for the resource (``txn, project_id, resource``).
QuotaCheck = Callable[[Txn, str, str], None]


def _no_quota(txn: Txn, project_id: str, resource: str) -> None:
    return None


class SecurityGroupService:
    """Groups: create (with Neutron's initial egress rules), show, list, update, delete."""

    def __init__(self, db: Database, quota: QuotaCheck = _no_quota) -> None:
        self.db = db
        self._quota = quota

    def ensure_default(self, project_id: str) -> None:
        if not project_id:
            return
        with self.db.read() as s:
            if store.default_group_id(s, project_id) is not None:
                return
        self.db.transaction(lambda txn: store.ensure_default(txn, project_id))

    def create_bulk(self, ctx: Context, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        def fn(txn: Txn) -> list[dict[str, Any]]:
            out = []
            for attrs in items:
                project = resolve_project(ctx, attrs, "security_group")
                store.ensure_default(txn, project)
                if attrs.get("name") == store.DEFAULT_NAME:
                    raise e.SecurityGroupDefaultAlreadyExists()
                g = store.new_group(txn, project_id=project, name=attrs.get("name", ""),
                                    description=attrs.get("description", ""),
                                    stateful=attrs.get("stateful", True))
                self._quota(txn, project, "security_group")
                out.append(store.group_dicts(txn.session, [g])[0])
            return out

        return self.db.transaction(fn)

    def get(self, ctx: Context, group_id: str) -> dict[str, Any]:
        with self.db.read() as s:
            return store.group_dicts(s, [visible_group(s, ctx, group_id)])[0]

    def find(self, ctx: Context, query: ListQuery) -> list[dict[str, Any]]:
        if ctx.project_id:
            self.ensure_default(ctx.project_id)
        sql_filters, rest = query.split_filters(GROUP_COLUMNS)
        with self.db.read() as s:
            stmt = select(SecurityGroup).where(*filter_clauses(GROUP_COLUMNS, sql_filters))
            if not ctx.is_admin:
                stmt = stmt.where(SecurityGroup.project_id == (ctx.project_id or ""))
            stmt = paginate(s, stmt, GROUP_COLUMNS, SecurityGroup.id, query, resource="security_group",
                            apply_limit=not rest)
            items = store.group_dicts(s, list(s.execute(stmt).scalars()))
        return finish_in_python(items, rest, query)

    def update(self, ctx: Context, group_id: str, attrs: dict[str, Any], *,
               if_revision: int | None = None) -> dict[str, Any]:
        def fn(txn: Txn) -> dict[str, Any]:
            s = txn.session
            g = visible_group(s, ctx, group_id)
            check_revision(if_revision, g.revision_number)
            is_default = store.default_group_id(s, g.project_id) == g.id
            if "name" in attrs and attrs["name"] != g.name:
                if is_default:
                    raise e.SecurityGroupCannotUpdateDefault()
                if attrs["name"] == store.DEFAULT_NAME:
                    raise e.SecurityGroupDefaultAlreadyExists()
            if "stateful" in attrs and attrs["stateful"] != g.stateful and store.groups_in_use(s, [g.id]):
                raise e.SecurityGroupInUse(id=g.id)
            changed = False
            for key in ("name", "description", "stateful"):
                if key in attrs and getattr(g, key) != attrs[key]:
                    setattr(g, key, attrs[key])
                    changed = True
            if changed:
                bump(g)
                s.flush()
            out = store.group_dicts(s, [g])[0]
            if changed:
                txn.record("security_group", g.id, "update", out)
            return out

        return self.db.transaction(fn)

    def delete(self, ctx: Context, group_id: str, *, if_revision: int | None = None) -> None:
        def fn(txn: Txn) -> None:
            s = txn.session
            g = visible_group(s, ctx, group_id)
            check_revision(if_revision, g.revision_number)
            if store.default_group_id(s, g.project_id) == g.id and not ctx.is_admin:
                raise e.SecurityGroupCannotRemoveDefault()
            if store.groups_in_use(s, [g.id]):
                raise e.SecurityGroupInUse(id=g.id)
            store.delete_group_rows(txn, g)

        self.db.transaction(fn)


class RuleService:
    """Rules: create (checked as Neutron does, duplicates refused), show, list, delete; no update
    but of the description, as in Neutron."""

    def __init__(self, db: Database, quota: QuotaCheck = _no_quota) -> None:
        self.db = db
        self._quota = quota

    def create_bulk(self, ctx: Context, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        checked = [(attrs, check_rule(attrs)) for attrs in items]

        def fn(txn: Txn) -> list[dict[str, Any]]:
            s = txn.session
            out = []
            for attrs, spec in checked:
                g = visible_group(s, ctx, attrs["security_group_id"])
                project = resolve_project(ctx, attrs, "security_group_rule")
                if spec.remote_group_id is not None:
                    visible_group(s, ctx, spec.remote_group_id)
                dup = s.execute(select(SecurityGroupRule.id).where(
                    SecurityGroupRule.security_group_id == g.id,
                    SecurityGroupRule.match_key == spec.match_key)).scalar()
                if dup is not None:
                    raise e.SecurityGroupRuleExists(rule_id=dup)
                row = store.add_rule(txn, g, spec, project_id=project, description=attrs.get("description", ""))
                self._quota(txn, project, "security_group_rule")
                bump(g)
                s.flush()
                txn.record("security_group", g.id, "update", store.group_dicts(s, [g])[0])
                out.append(store.rule_dict(row, default_group=store.default_group_id(s, g.project_id) == g.id))
            return out

        return self.db.transaction(fn)

    def _visible_rule(self, s: Session, ctx: Context, rule_id: str) -> SecurityGroupRule:
        r = s.get(SecurityGroupRule, rule_id)
        if r is None:
            raise e.SecurityGroupRuleNotFound(id=rule_id)
        if not ctx.is_admin:
            g = s.get(SecurityGroup, r.security_group_id)
            if not (ctx.owns(r.project_id) or (g is not None and ctx.owns(g.project_id))):
                raise e.SecurityGroupRuleNotFound(id=rule_id)
        return r

    def _dict(self, s: Session, r: SecurityGroupRule) -> dict[str, Any]:
        g = s.get(SecurityGroup, r.security_group_id)
        default = g is not None and store.default_group_id(s, g.project_id) == g.id
        return store.rule_dict(r, default_group=default)

    def get(self, ctx: Context, rule_id: str) -> dict[str, Any]:
        with self.db.read() as s:
            return self._dict(s, self._visible_rule(s, ctx, rule_id))

    def find(self, ctx: Context, query: ListQuery) -> list[dict[str, Any]]:
        sql_filters, rest = query.split_filters(RULE_COLUMNS)
        with self.db.read() as s:
            stmt = select(SecurityGroupRule).where(*filter_clauses(RULE_COLUMNS, sql_filters))
            if not ctx.is_admin:
                own = select(SecurityGroup.id).where(SecurityGroup.project_id == (ctx.project_id or ""))
                stmt = stmt.where((SecurityGroupRule.project_id == (ctx.project_id or ""))
                                  | SecurityGroupRule.security_group_id.in_(own))
            stmt = paginate(s, stmt, RULE_COLUMNS, SecurityGroupRule.id, query, resource="security_group_rule",
                            apply_limit=not rest)
            rows = list(s.execute(stmt).scalars())
            defaults = store.default_group_ids(s, {r.security_group_id for r in rows})
            items = [store.rule_dict(r, default_group=r.security_group_id in defaults) for r in rows]
        return finish_in_python(items, rest, query)

    def update(self, ctx: Context, rule_id: str, attrs: dict[str, Any], *,
               if_revision: int | None = None) -> dict[str, Any]:
        if set(attrs) - {"description"}:
            raise InvalidInput(error_message="Only the description of a security group rule can be updated")

        def fn(txn: Txn) -> dict[str, Any]:
            r = self._visible_rule(txn.session, ctx, rule_id)
            check_revision(if_revision, r.revision_number)
            if "description" in attrs and attrs["description"] != r.description:
                r.description = attrs["description"]
                bump(r)
                txn.session.flush()
                txn.record("security_group_rule", r.id, "update", self._dict(txn.session, r))
            return self._dict(txn.session, r)

        return self.db.transaction(fn)

    def delete(self, ctx: Context, rule_id: str, *, if_revision: int | None = None) -> None:
        def fn(txn: Txn) -> None:
            s = txn.session
            r = self._visible_rule(s, ctx, rule_id)
            check_revision(if_revision, r.revision_number)
            g = s.get(SecurityGroup, r.security_group_id)
            s.delete(r)
            s.flush()
            txn.record("security_group_rule", rule_id, "delete", None)
            if g is not None:
                bump(g)
                s.flush()
                txn.record("security_group", g.id, "update", store.group_dicts(s, [g])[0])

        self.db.transaction(fn)
