"""nftables of a network namespace: read a table (``nft -j list table``), apply a script (``nft -f -``).

A script given to :func:`apply_script` is one netlink transaction: it is
applied completely or not at all (a failing line leaves every table as it
was), which is what lets a caller replace chains and update sets without a
moment where a half-built filter is live.

:func:`read_table` returns the table as plain frozen data: its chains (hook
spec and rules; a rule as its handle, its comment and its expression in
nft's JSON form) and its sets and maps with their elements as text
(``10.0.0.5``, ``10.1.0.0/16``, ``fe80::1``, ``aa:bb:cc:dd:ee:ff``; a
concatenation ``tap1 . 10.0.0.5``; a map element ``KEY : jump CHAIN``). Addresses are written in Python's
:mod:`ipaddress` form, so a caller compares them with its own text.
Nothing here imports the rest of Netplex.
"""

from __future__ import annotations

import ipaddress
import json
import re
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "NftChain",
    "NftError",
    "NftRule",
    "NftSet",
    "NftTable",
    "apply_script",
    "element_text",
    "parse_table",
    "read_table",
]

_TIMEOUT = 120
_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_.-]{0,250}")
_MISSING = ("No such file or directory", "does not exist")


class NftError(Exception):
    """``nft`` failed (its stderr in the message)."""


@dataclass(frozen=True, slots=True)
class NftRule:
    handle: int
    comment: str = ""
    #: The expressions as compact JSON (for logs and tests; compare by comment).
    expr: str = ""


@dataclass(frozen=True, slots=True)
class NftChain:
    name: str
    #: Base chains: type, hook, priority, policy; None for regular chains.
    hook: str | None = None
    type: str = "filter"
    priority: int = 0
    policy: str = "accept"
    rules: tuple[NftRule, ...] = ()


@dataclass(frozen=True, slots=True)
class NftSet:
    name: str
    #: ``ipv4_addr``, ``ipv6_addr``, ``ether_addr``, ``ifname``.
    type: str
    flags: tuple[str, ...] = ()
    #: Maps only: what keys map to (``verdict``).
    map: str | None = None
    elements: frozenset[str] = frozenset()


@dataclass(frozen=True)
class NftTable:
    family: str
    name: str
    chains: Mapping[str, NftChain] = field(default_factory=dict)
    sets: Mapping[str, NftSet] = field(default_factory=dict)


def _argv(netns: str | None, args: list[str]) -> list[str]:
    return (["ip", "netns", "exec", netns] if netns else []) + ["nft", *args]


def _check_name(name: str) -> str:
    if _NAME.fullmatch(name) is None:
        raise ValueError(f"not an nftables name: {name!r}")
    return name


def apply_script(netns: str | None, script: str) -> None:
    """Run ``script`` with ``nft -f -`` as one transaction; :class:`NftError` if it was refused."""
    try:
        proc = subprocess.run(_argv(netns, ["-f", "-"]), input=script, capture_output=True,
                              text=True, timeout=_TIMEOUT, check=False)
    except (OSError, subprocess.SubprocessError) as exc:
        raise NftError(f"nft: {exc}") from exc
    if proc.returncode != 0:
        raise NftError((proc.stderr or proc.stdout).strip() or f"nft exited {proc.returncode}")


def read_table(netns: str | None, family: str, name: str) -> NftTable | None:
    """The table ``family name`` as it is now, or None when there is none."""
    args = ["-j", "list", "table", _check_name(family), _check_name(name)]
    try:
        proc = subprocess.run(_argv(netns, args), capture_output=True, text=True,
                              timeout=_TIMEOUT, check=False)
    except (OSError, subprocess.SubprocessError) as exc:
        raise NftError(f"nft: {exc}") from exc
    if proc.returncode != 0:
        if any(m in proc.stderr for m in _MISSING):
            return None
        raise NftError(proc.stderr.strip() or f"nft exited {proc.returncode}")
    try:
        doc = json.loads(proc.stdout)
    except ValueError as exc:
        raise NftError(f"nft -j: not JSON: {exc}") from exc
    return parse_table(doc, family, name)


def parse_table(doc: Mapping[str, Any], family: str, name: str) -> NftTable | None:
    """The table ``family name`` out of an ``nft -j list ...`` document (None if absent)."""
    found = False
    chains: dict[str, dict[str, Any]] = {}
    rules: dict[str, list[NftRule]] = {}
    sets: dict[str, NftSet] = {}
    for obj in doc.get("nftables") or ():
        if not isinstance(obj, Mapping):
            continue
        for kind, body in obj.items():
            if not isinstance(body, Mapping) or body.get("family") != family:
                continue
            if body.get("table", body.get("name") if kind == "table" else None) != name:
                continue
            if kind == "table":
                found = True
            elif kind == "chain":
                chains[str(body["name"])] = dict(body)
            elif kind == "rule":
                rules.setdefault(str(body["chain"]), []).append(NftRule(
                    handle=int(body.get("handle") or 0), comment=str(body.get("comment") or ""),
                    expr=json.dumps(body.get("expr") or [], separators=(",", ":"), sort_keys=True)))
            elif kind in ("set", "map"):
                sets[str(body["name"])] = _parse_set(body, kind == "map")
    if not found:
        return None
    out: dict[str, NftChain] = {}
    for cname, body in chains.items():
        out[cname] = NftChain(
            name=cname, hook=str(body["hook"]) if body.get("hook") else None,
            type=str(body.get("type") or "filter"), priority=int(body.get("prio") or 0),
            policy=str(body.get("policy") or "accept"), rules=tuple(rules.get(cname, ())))
    return NftTable(family=family, name=name, chains=out, sets=sets)


def _parse_set(body: Mapping[str, Any], is_map: bool) -> NftSet:
    stype = body.get("type")
    type_text = " . ".join(stype) if isinstance(stype, list) else str(stype)
    flags = body.get("flags") or ()
    if isinstance(flags, str):
        flags = (flags,)
    elems: set[str] = set()
    for elem in body.get("elem") or ():
        if is_map and isinstance(elem, list) and len(elem) == 2:
            elems.add(f"{element_text(elem[0])} : {_verdict_text(elem[1])}")
        else:
            elems.add(element_text(elem))
    return NftSet(name=str(body["name"]), type=type_text, flags=tuple(str(f) for f in flags),
                  map=str(body["map"]) if is_map and body.get("map") else None,
                  elements=frozenset(elems))


def element_text(value: Any) -> str:
    """One set element of nft's JSON as text (see the module docstring)."""
    if isinstance(value, Mapping):
        if "concat" in value:
            return " . ".join(element_text(v) for v in value["concat"])
        if "elem" in value:  # an element with a comment / timeout
            inner = value["elem"]
            return element_text(inner.get("val") if isinstance(inner, Mapping) else inner)
        if "prefix" in value:
            prefix = value["prefix"]
            return _address(f"{prefix['addr']}/{prefix['len']}")
        if "range" in value:
            low, high = value["range"]
            return f"{_address(str(low))}-{_address(str(high))}"
    return _address(str(value))


def _address(text: str) -> str:
    """Addresses as :mod:`ipaddress` writes them (a host prefix as the bare address)."""
    try:
        net = ipaddress.ip_network(text, strict=False)
    except ValueError:
        return text.lower() if re.fullmatch(r"[0-9A-Fa-f:]{17}", text) else text
    if net.prefixlen == net.max_prefixlen:
        return str(net.network_address)
    return str(net)


def _verdict_text(verdict: Any) -> str:
    if isinstance(verdict, Mapping):
        for kind in ("jump", "goto"):
            if kind in verdict:
                return f"{kind} {verdict[kind].get('target')}"
        return " ".join(str(k) for k in verdict)
    return str(verdict)
