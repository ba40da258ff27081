"""Neutron's policy rule language, parsed once into predicates.

A check string is what an operator writes in ``policy.yaml``::

    "create_port:mac_address": "rule:context_is_advsvc or rule:admin_or_network_owner"

Forms understood (the ones Neutron's defaults and operators' files use):

* ``""`` and ``@``: always allowed; ``!``: never.
* ``rule:NAME``: the result of another rule.
* ``role:NAME``: the caller has that role (case-insensitive).
* ``field:RESOURCE:ATTR=VALUE``: the target's attribute equals VALUE
  (``True``/``False`` compare as booleans); ``=~REGEX`` matches a regular
  expression from the start of the value. ``field:networks:ATTR`` on a target
  that is not a network reads the attribute of the target's network.
* ``KEY:%(ATTR)s``: the caller's credential KEY (``project_id``,
  ``tenant_id``, ``user_id``, ``is_admin``, ...) equals the target's ATTR;
  ``KEY:LITERAL`` compares with a literal (quotes optional).
* ``not X``, ``X and Y``, ``X or Y`` and parentheses; ``not`` binds tightest,
  then ``and``, then ``or``.

:func:`compile_rule` turns a string into a :class:`Check` tree. Each node
knows whether it reads the target (:attr:`Check.reads_target`), so a rule that
depends only on the caller can be evaluated once per request and cached.
A string that does not parse raises :class:`PolicySyntaxError` naming the rule.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

__all__ = [
    "Check",
    "Credentials",
    "PolicySyntaxError",
    "RuleLookup",
    "Target",
    "compile_rule",
]


class PolicySyntaxError(ValueError):
    """A check string does not parse; the message names the rule and the problem."""

    def __init__(self, rule: str, check_str: str, problem: str) -> None:
        super().__init__(f"policy rule {rule!r}: cannot parse {check_str!r}: {problem}")
        self.rule = rule


class Target(Protocol):
    """What a check reads of the resource acted on (a dict, or a lazy view of one)."""

    def get(self, key: str, default: Any = None) -> Any: ...


@dataclass(frozen=True)
class Credentials:
    """Who is calling, in the shape rules read it."""

    values: Mapping[str, Any]
    roles: frozenset[str]


#: Resolves ``rule:NAME`` at evaluation time (so overrides of a referenced rule apply).
RuleLookup = Callable[[str], "Check | None"]


class Check(ABC):
    """One compiled node of a rule."""

    #: True when this node itself reads the target (``rule:`` references are
    #: followed by the policy table, which knows every rule).
    reads_target: bool = False

    @abstractmethod
    def __call__(self, creds: Credentials, target: Target, rules: RuleLookup) -> bool: ...

    def refs(self) -> list[str]:
        """Names of the rules this node refers to (for cycle and reference checks)."""
        return []


class _Always(Check):
    def __init__(self, result: bool) -> None:
        self.result = result

    def __call__(self, creds: Credentials, target: Target, rules: RuleLookup) -> bool:
        return self.result

    def __repr__(self) -> str:
        return "@" if self.result else "!"


class _Role(Check):
    def __init__(self, role: str) -> None:
        self.role = role.lower()

    def __call__(self, creds: Credentials, target: Target, rules: RuleLookup) -> bool:
        return self.role in creds.roles

    def __repr__(self) -> str:
        return f"role:{self.role}"


class _Rule(Check):
    def __init__(self, name: str) -> None:
        self.name = name

    def __call__(self, creds: Credentials, target: Target, rules: RuleLookup) -> bool:
        check = rules(self.name)
        return check is not None and check(creds, target, rules)

    def refs(self) -> list[str]:
        return [self.name]

    def __repr__(self) -> str:
        return f"rule:{self.name}"


def _literal(text: str) -> str:
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        return text[1:-1]
    return text


class _Generic(Check):
    """``KEY:%(attr)s`` (credential vs target) or ``KEY:literal``."""

    _SUBST = re.compile(r"^%\(([^)]+)\)s$")

    def __init__(self, key: str, match: str) -> None:
        self.key = key
        m = self._SUBST.match(match)
        self.attr = m.group(1) if m else None
        self.literal = None if m else _literal(match)
        self.reads_target = self.attr is not None

    def __call__(self, creds: Credentials, target: Target, rules: RuleLookup) -> bool:
        have = creds.values.get(self.key)
        if have is None:
            return False
        if self.attr is None:
            return str(have) == self.literal
        want = target.get(self.attr)
        return want is not None and str(want) == str(have)

    def __repr__(self) -> str:
        return f"{self.key}:%({self.attr})s" if self.attr else f"{self.key}:{self.literal}"


class _Field(Check):
    """``field:resource:attr=value`` / ``field:resource:attr=~regex``."""

    reads_target = True

    def __init__(self, resource: str, attr: str, value: str) -> None:
        self.resource = resource
        self.attr = attr
        self.regex = re.compile(value[1:]) if value.startswith("~") else None
        literal = _literal(value)
        self.boolean: bool | None = {"true": True, "false": False}.get(literal.lower())
        self.value = literal

    def _target_value(self, target: Target) -> Any:
        value = target.get(self.attr)
        if value is None and self.resource == "networks":
            # A port or subnet asking about "its network" (e.g. rule:shared).
            value = target.get(f"network:{self.attr}")
        return value

    def __call__(self, creds: Credentials, target: Target, rules: RuleLookup) -> bool:
        value = self._target_value(target)
        if value is None:
            return False
        if self.regex is not None:
            return self.regex.match(str(value)) is not None
        if isinstance(value, bool) and self.boolean is not None:
            return value is self.boolean
        return str(value) == self.value

    def __repr__(self) -> str:
        return f"field:{self.resource}:{self.attr}={self.value}"


class _Not(Check):
    def __init__(self, inner: Check) -> None:
        self.inner = inner
        self.reads_target = inner.reads_target

    def __call__(self, creds: Credentials, target: Target, rules: RuleLookup) -> bool:
        return not self.inner(creds, target, rules)

    def refs(self) -> list[str]:
        return self.inner.refs()

    def __repr__(self) -> str:
        return f"not {self.inner!r}"


class _All(Check):
    def __init__(self, parts: list[Check]) -> None:
        self.parts = parts
        self.reads_target = any(p.reads_target for p in parts)

    def __call__(self, creds: Credentials, target: Target, rules: RuleLookup) -> bool:
        return all(p(creds, target, rules) for p in self.parts)

    def refs(self) -> list[str]:
        return [r for p in self.parts for r in p.refs()]

    def __repr__(self) -> str:
        return "(" + " and ".join(map(repr, self.parts)) + ")"


class _Any(Check):
    def __init__(self, parts: list[Check]) -> None:
        self.parts = parts
        self.reads_target = any(p.reads_target for p in parts)

    def __call__(self, creds: Credentials, target: Target, rules: RuleLookup) -> bool:
        return any(p(creds, target, rules) for p in self.parts)

    def refs(self) -> list[str]:
        return [r for p in self.parts for r in p.refs()]

    def __repr__(self) -> str:
        return "(" + " or ".join(map(repr, self.parts)) + ")"


_KEYWORDS = ("and", "or", "not")
_UNSUPPORTED_KINDS = ("http", "https")


def _tokens(check_str: str) -> list[str]:
    """Split on whitespace, peeling parentheses off the words they touch."""
    out: list[str] = []
    for word in check_str.split():
        lead: list[str] = []
        while word.startswith("("):
            lead.append("(")
            word = word[1:]
        trail: list[str] = []
        while word.endswith(")"):
            trail.append(")")
            word = word[:-1]
        out.extend(lead)
        if word:
            out.append(word)
        out.extend(trail)
    return out


def _atom(rule: str, check_str: str, token: str) -> Check:
    if token == "@":
        return _Always(True)
    if token == "!":
        return _Always(False)
    kind, sep, match = token.partition(":")
    if not sep or not kind or not match:
        raise PolicySyntaxError(rule, check_str, f"{token!r} is not a check (expected KIND:VALUE, '@' or '!')")
    if kind == "rule":
        return _Rule(match)
    if kind == "role":
        return _Role(_literal(match))
    if kind == "field":
        res_attr, eq, value = match.partition("=")
        resource, colon, attr = res_attr.partition(":")
        if not eq or not colon or not resource or not attr or not value:
            raise PolicySyntaxError(rule, check_str, f"{token!r}: expected field:RESOURCE:ATTR=VALUE")
        return _Field(resource, attr, value)
    if kind in _UNSUPPORTED_KINDS:
        raise PolicySyntaxError(rule, check_str, f"{kind}: checks (remote policy servers) are not supported")
    return _Generic(kind, match)


class _Parser:
    """Recursive descent over the token list: or > and > not > atom."""

    def __init__(self, rule: str, check_str: str) -> None:
        self.rule = rule
        self.check_str = check_str
        self.toks = _tokens(check_str)
        self.pos = 0

    def fail(self, problem: str) -> PolicySyntaxError:
        return PolicySyntaxError(self.rule, self.check_str, problem)

    def peek(self) -> str | None:
        return self.toks[self.pos] if self.pos < len(self.toks) else None

    def take(self) -> str:
        tok = self.peek()
        if tok is None:
            raise self.fail("unexpected end of rule")
        self.pos += 1
        return tok

    def parse(self) -> Check:
        if not self.toks:
            return _Always(True)
        node = self.or_expr()
        if self.peek() is not None:
            raise self.fail(f"unexpected {self.peek()!r} after a complete expression")
        return node

    def or_expr(self) -> Check:
        parts = [self.and_expr()]
        while self.peek() == "or":
            self.take()
            parts.append(self.and_expr())
        return parts[0] if len(parts) == 1 else _Any(parts)

    def and_expr(self) -> Check:
        parts = [self.not_expr()]
        while self.peek() == "and":
            self.take()
            parts.append(self.not_expr())
        return parts[0] if len(parts) == 1 else _All(parts)

    def not_expr(self) -> Check:
        if self.peek() == "not":
            self.take()
            return _Not(self.not_expr())
        return self.atom()

    def atom(self) -> Check:
        tok = self.take()
        if tok == "(":
            node = self.or_expr()
            if self.peek() != ")":
                raise self.fail("missing ')'")
            self.take()
            return node
        if tok == ")":
            raise self.fail("unbalanced ')'")
        if tok in _KEYWORDS:
            raise self.fail(f"{tok!r} where a check was expected")
        return _atom(self.rule, self.check_str, tok)


def compile_rule(rule: str, check_str: Any) -> Check:
    """Parse ``check_str`` (the value of ``rule`` in a policy file) into a :class:`Check`."""
    if not isinstance(check_str, str):
        raise PolicySyntaxError(rule, repr(check_str), "a check string must be a string")
    return _Parser(rule, check_str).parse()
