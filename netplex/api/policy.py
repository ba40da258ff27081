"""Authorization as Neutron does it: named rules, defaults in code, an operator's file on top.

:class:`Policy` holds every rule compiled once (:data:`~netplex.api.policy_defaults.DEFAULTS`
plus the operator's ``[oslo_policy] policy_file``). A request gets a
:class:`CallerPolicy` (``policy.for_caller(ctx)``) that evaluates rules for
that caller: a rule that reads only the caller (``rule:admin_only``,
``role:...``) is evaluated once per request and cached, so filtering 10,000
rows costs one set lookup per key; only rules that read the target are
evaluated per resource.

What is checked where (the whole of it lives in :mod:`netplex.api.collections`,
:mod:`netplex.api.agent_routes` and :mod:`netplex.api.feed_routes`):

* the action: ``create_/get_/update_/delete_<resource>`` (Neutron's names);
* each attribute a request body explicitly sets that has a rule
  ``<action>:<attr>`` (and ``<action>:fixed_ips:ip_address`` /
  ``:subnet_id`` per fixed_ips entry), all before anything is written;
* responses: an attribute whose ``get_<resource>:<attr>`` rule fails is
  removed from the returned dict (a tenant's port has no ``binding:vif_details``).

The target of a rule on an existing resource is loaded only if a rule reads it
(an admin never pays for it), and ``%(network:tenant_id)s`` /
``field:networks:shared`` on a port or subnet look up its network the same
way. Which rows a caller sees at all (404 for the rest) stays with the core's
visibility filters, which implement the default ``get_<resource>`` rules in SQL;
an operator who overrides a ``get_<resource>`` rule gets it applied per row on
top.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from netplex.api.policy_defaults import DEFAULTS
from netplex.api.policy_syntax import Check, Credentials, PolicySyntaxError, compile_rule
from netplex.config import Config, ConfigError
from netplex.core.context import Context
from netplex.errors import PolicyNotAuthorized

__all__ = [
    "CallerPolicy",
    "LazyTarget",
    "Policy",
    "PolicyError",
    "PolicySyntaxError",
    "load_policy",
]

LOG = logging.getLogger(__name__)

#: The value of ``[oslo_policy] policy_file`` a deployment need not provide.
DEFAULT_POLICY_FILE = "policy.yaml"


class PolicyError(ConfigError):
    """The policy cannot be built: a bad file, a bad rule, a rule cycle (a configuration error)."""


class Policy:
    """Every rule, compiled; immutable after construction."""

    def __init__(self, overrides: Mapping[str, Any] | None = None, *, source: str = "defaults",
                 extra_defaults: Mapping[str, str] | None = None) -> None:
        """``extra_defaults``: rules service plugins add (name -> default check string)."""
        self.source = source
        self._defaults = {d.name: d.check_str for d in DEFAULTS}
        for name, check_str in (extra_defaults or {}).items():
            if self._defaults.get(name, check_str) != check_str:
                raise PolicyError(f"a service plugin redefines the default of policy rule {name!r}")
            self._defaults[name] = check_str
        strings = dict(self._defaults)
        for name, check_str in (overrides or {}).items():
            if not isinstance(name, str):
                raise PolicyError(f"{source}: rule names must be strings, got {name!r}")
            strings[name] = check_str
        self.check_strings: dict[str, str] = {}
        self._rules: dict[str, Check] = {}
        for name, check_str in strings.items():
            try:
                self._rules[name] = compile_rule(name, check_str)
            except PolicySyntaxError as exc:
                raise PolicyError(f"{source}: {exc}") from None
            self.check_strings[name] = check_str
        #: Rules the operator changed (or added): only these may need per-row
        #: evaluation where the core already implements the default.
        self.overridden = frozenset(n for n, s in strings.items() if self._defaults.get(n) != s)
        self._reads_target = self._link()
        self._attr_rules: dict[str, tuple[tuple[str, str], ...]] = {}

    def _link(self) -> dict[str, bool]:
        """For each rule whether it (through its references) reads the target; cycles are errors."""
        out: dict[str, bool] = {}
        visiting: list[str] = []

        def walk(name: str) -> bool:
            if name in out:
                return out[name]
            check = self._rules.get(name)
            if check is None:
                LOG.warning("policy (%s): rule %r is referenced but not defined; it never matches", self.source, name)
                out[name] = False
                return False
            if name in visiting:
                cycle = " -> ".join([*visiting[visiting.index(name) :], name])
                raise PolicyError(f"{self.source}: rules refer to each other in a cycle: {cycle}")
            visiting.append(name)
            reads = check.reads_target
            for ref in check.refs():
                reads = walk(ref) or reads
            visiting.pop()
            out[name] = reads
            return reads

        for name in list(self._rules):
            walk(name)
        return out

    # -- queries ------------------------------------------------------------------

    def rule(self, name: str) -> Check | None:
        return self._rules.get(name)

    def has_rule(self, name: str) -> bool:
        return name in self._rules

    def reads_target(self, name: str) -> bool:
        return self._reads_target.get(name, False)

    def attribute_rules(self, action: str) -> tuple[tuple[str, str], ...]:
        """``(attribute, rule name)`` of every ``<action>:<attr>`` rule (``fixed_ips:ip_address`` included)."""
        found = self._attr_rules.get(action)
        if found is None:
            prefix = f"{action}:"
            found = tuple((n[len(prefix) :], n) for n in self._rules if n.startswith(prefix))
            self._attr_rules[action] = found
        return found

    def for_caller(self, ctx: Context) -> CallerPolicy:
        return CallerPolicy(self, ctx)


class LazyTarget:
    """The resource a rule is checked against, loaded only when a rule reads it.

    ``base`` holds what is known without a database read (a create body);
    ``load`` returns the stored resource (update/delete); ``network`` returns
    a network by id, for the ``network:<attr>`` keys rules use on ports and
    subnets. Each is called at most once.
    """

    def __init__(
        self,
        base: Mapping[str, Any] | None = None,
        *,
        load: Callable[[], Mapping[str, Any]] | None = None,
        network: Callable[[str], Mapping[str, Any] | None] | None = None,
    ) -> None:
        self._base = base
        self._load = load
        self._network = network
        self._loaded: Mapping[str, Any] | None = None
        self._net: Mapping[str, Any] | None = None
        self._net_done = False

    def _resource(self) -> Mapping[str, Any]:
        if self._loaded is None:
            loaded = dict(self._load()) if self._load is not None else {}
            loaded.update(self._base or {})
            if "project_id" in loaded:
                loaded.setdefault("tenant_id", loaded["project_id"])
            self._loaded = loaded
        return self._loaded

    def get(self, key: str, default: Any = None) -> Any:
        if key.startswith("network:"):
            net = self._network_dict()
            if net is None:
                return default
            attr = key[len("network:") :]
            if attr == "tenant_id":
                attr = "project_id"
            return net.get(attr, default)
        return self._resource().get(key, default)

    def _network_dict(self) -> Mapping[str, Any] | None:
        if not self._net_done:
            self._net_done = True
            res = self._resource()
            net_id = res.get("network_id")
            if self._network is not None and isinstance(net_id, str):
                self._net = self._network(net_id)
        return self._net


_EMPTY = LazyTarget({})


class CallerPolicy:
    """One caller's view of the policy, for one request (results of caller-only rules cached)."""

    def __init__(self, policy: Policy, ctx: Context) -> None:
        self.policy = policy
        self.ctx = ctx
        project = ctx.project_id
        self.creds = Credentials(
            values={
                "project_id": project,
                "tenant_id": project,
                "user_id": ctx.user_id,
                "is_admin": ctx.is_admin,
            },
            roles=frozenset(r.lower() for r in ctx.roles),
        )
        self._cache: dict[str, bool] = {}
        self._hidden: dict[str, frozenset[str]] = {}
        self._row_rules: dict[str, tuple[tuple[str, str], ...]] = {}

    def _lookup(self, name: str) -> Check | None:
        return self.policy.rule(name)

    def allowed(self, name: str, target: Any = _EMPTY) -> bool:
        """Whether ``name`` allows this caller on ``target``; an unknown action uses ``default``."""
        if not self.policy.has_rule(name):
            name = "default"
        cached = self._cache.get(name)
        if cached is not None:
            return cached
        check = self.policy.rule(name)
        result = check is not None and check(self.creds, target, self._lookup)
        if not self.policy.reads_target(name):
            self._cache[name] = result
        return result

    def enforce(self, name: str, target: Any = _EMPTY) -> None:
        if not self.allowed(name, target):
            raise PolicyNotAuthorized(action=name)

    def caller_only(self, name: str) -> bool:
        return not self.policy.reads_target(name if self.policy.has_rule(name) else "default")

    # -- request bodies -------------------------------------------------------------

    def enforce_body(
        self,
        action: str,
        body: Mapping[str, Any],
        target: Any,
        *,
        defaults: Mapping[str, Any] | None = None,
    ) -> None:
        """The action, then every explicitly set attribute with a rule (Neutron's order and names).

        On create (``defaults`` given) an attribute equal to its default is not
        "set", as in Neutron: ``shared: false`` needs no admin.
        """
        self.enforce(action, target)
        for attr, rule in self.policy.attribute_rules(action):
            head, _, sub = attr.partition(":")
            key = attr if attr in body else head
            if key not in body:
                continue
            value = body[key]
            if defaults is not None and key in defaults and value == defaults[key]:
                continue
            # A sub-attribute rule (fixed_ips:ip_address) applies when an entry names it.
            if key == attr or (key == "fixed_ips" and sub and _fixed_ips_name(value, sub)):
                self.enforce(rule, target)

    # -- responses ----------------------------------------------------------------

    def hidden(self, member: str) -> frozenset[str]:
        """Attributes of ``member`` whose caller-only ``get_`` rule fails for this caller."""
        found = self._hidden.get(member)
        if found is None:
            found = frozenset(
                attr
                for attr, rule in self.policy.attribute_rules(f"get_{member}")
                if self.caller_only(rule) and not self.allowed(rule)
            )
            self._hidden[member] = found
        return found

    def row_rules(self, member: str) -> tuple[tuple[str, str], ...]:
        """``get_`` attribute rules that read the target (evaluated per row; none by default)."""
        found = self._row_rules.get(member)
        if found is None:
            found = tuple(
                (attr, rule)
                for attr, rule in self.policy.attribute_rules(f"get_{member}")
                if not self.caller_only(rule)
            )
            self._row_rules[member] = found
        return found

    def view(
        self,
        member: str,
        item: Mapping[str, Any],
        fields: Iterable[str] | None,
        network: Callable[[str], Mapping[str, Any] | None] | None = None,
    ) -> dict[str, Any]:
        """What this caller may see of ``item``, restricted to ``fields`` if given."""
        hidden = self.hidden(member)
        per_row = self.row_rules(member)
        if per_row:
            target = LazyTarget(item, network=network)
            hidden = hidden | {a for a, r in per_row if a in item and not self.allowed(r, target)}
        if fields is None:
            if not hidden:
                return item if isinstance(item, dict) else dict(item)
            return {k: v for k, v in item.items() if k not in hidden}
        return {k: item[k] for k in fields if k in item and k not in hidden}


    def view_all(
        self,
        member: str,
        items: list[dict[str, Any]],
        fields: list[str] | None,
        network: Callable[[str], Mapping[str, Any] | None] | None = None,
    ) -> list[dict[str, Any]]:
        """:meth:`view` of each item; the common cases (nothing per row) without a call per item."""
        if self.row_rules(member):
            return [self.view(member, i, fields, network) for i in items]
        hidden = self.hidden(member)
        if fields is None:
            if not hidden:
                return items
            return [{k: v for k, v in i.items() if k not in hidden} for i in items]
        keep = [k for k in fields if k not in hidden]
        return [{k: i[k] for k in keep if k in i} for i in items]


def _fixed_ips_name(value: Any, sub: str) -> bool:
    """Whether any fixed_ips entry names ``sub`` (``ip_address`` / ``subnet_id``)."""
    return isinstance(value, list) and any(isinstance(f, dict) and sub in f for f in value)


# -- loading ------------------------------------------------------------------------


def _config_dirs(cfg: Config) -> list[Path]:
    """Directories of the configuration files, the last-read first (as oslo.config searches)."""
    files = [s for s in (cfg.source or "").split(", ") if s and s != "<text>"]
    dirs: list[Path] = []
    for f in reversed(files):
        d = Path(f).resolve().parent
        if d not in dirs:
            dirs.append(d)
    return dirs


def _find_policy_file(cfg: Config, name: str) -> Path | None:
    path = Path(os.path.expanduser(name))
    if path.is_absolute():
        return path if path.is_file() else None
    for d in [*_config_dirs(cfg), Path.cwd()]:
        if (d / path).is_file():
            return d / path
    return None


def read_policy_file(path: Path) -> dict[str, Any]:
    """A ``policy.yaml`` or ``policy.json`` (JSON is YAML) as ``{rule: check string}``."""
    import yaml

    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise PolicyError(f"cannot read policy file {path}: {exc}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise PolicyError(f"policy file {path}: expected a mapping of rule names to check strings")
    return data


def load_policy(cfg: Config, extra_defaults: Mapping[str, str] | None = None) -> Policy:
    """The policy for ``cfg``: defaults (the core's and ``extra_defaults``, the service
    plugins') plus ``[oslo_policy] policy_file`` if there is one.

    The default name (``policy.yaml``) may be absent; any other name must exist.
    A relative name is looked up next to the configuration files (then in the
    working directory), as Neutron does.
    """
    name = str(cfg.get("oslo_policy", "policy_file") or "")
    if not name:
        return Policy(extra_defaults=extra_defaults)
    path = _find_policy_file(cfg, name)
    if path is None:
        if name == DEFAULT_POLICY_FILE:
            return Policy(extra_defaults=extra_defaults)
        raise PolicyError(f"[oslo_policy] policy_file = {name}: no such file")
    policy = Policy(read_policy_file(path), source=str(path), extra_defaults=extra_defaults)
    LOG.info("policy: %d rule(s) from %s override the defaults", len(policy.overridden), path)
    return policy
