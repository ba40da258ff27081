"""Security groups as nftables: render :class:`SecurityDesired` as tables, plan the difference. Pure.

Two host modes:

``bridge`` (Linux bridge hosts; VM traffic is bridged)
    This kernel (like many) has no conntrack in the ``bridge`` family
    (``CONFIG_NF_CONNTRACK_BRIDGE``), so the stateful part runs where bridged
    IP traffic meets conntrack anyway: ``br_netfilter`` hands bridged IPv4/IPv6
    packets to the ``inet`` hooks (``net.bridge.bridge-nf-call-ip{,6}tables = 1``
    in the host's namespace; Neutron's iptables firewall works the same way).
    There the in/out device is the bridge, so ports are told apart by MAC:

    * ``table bridge netplex``: anti-spoofing, stateless, on ``prerouting``
      before br_netfilter: ``iifname @ports jump spoof``, one chain for all
      ports: ``iifname . ether saddr`` in ``@macs``; ARP sender MAC/IP; DHCP
      client traffic allowed before the IP check, DHCP server replies and
      router advertisements from the VM dropped; ``iifname . ip saddr`` in
      ``@ips4`` / ``@ips6`` (concatenated interval sets: a port's addresses
      are elements, changing them never rewrites a rule); other ethertypes
      dropped;
    * ``table inet netplex``: two base chains on ``forward``: ``fwd-out``
      (priority 0) ``ether saddr vmap @egress`` → chain ``o-<tap>`` (what the
      sender may send), then ``fwd-in`` (priority 10) ``ether daddr vmap
      @ingress`` → chain ``i-<tap>`` (what the receiver admits). An accept in
      the first ends only that base chain, so both ports' filters apply to
      VM-to-VM traffic on one host. The source MAC is trustworthy there
      because the bridge table already checked it per tap.

``routed`` (routed hosts; traffic is routed through the taps)
    ``table inet netplex`` only: ``fwd-out``: ``iifname vmap @egress``,
    ``fwd-in``: ``oifname vmap @ingress``; ``input``: ``iifname vmap @egress``
    (the VM talking to its host, the gateway, is egress too). ``o-<tap>``
    opens with ``jump spoof`` (source MAC and IP, the same shared sets as
    above); ARP never reaches inet hooks (the host answers it by proxy).

Per port chain (both modes): ND (ICMPv6 133-136, MLD) and DHCP client/server
exchanges pass first; a stateful port then has ``ct state invalid drop`` and
``ct state established,related accept``; then ``jump ge-<group>`` (egress) /
``jump gi-<group>`` (ingress) for each of its groups that has rules that way;
``drop``. The rules live
once per group in those chains (a rule that matches accepts), so a rule
change rewrites one chain whatever the number of ports. A port whose groups
are all stateless has no conntrack rules: its rules must allow both
directions (as in Neutron). Remote groups are named sets ``rg4-<id>`` /
``rg6-<id>`` in the inet table, so a membership change is set elements only.

Broadcast and multicast IP frames to a bridged port are not dispatched by the
ingress map (their destination MAC is not the port's) and pass; IPv6 NA
target addresses are not checked (nft 1.0.6 has no ``icmpv6 taddr``).

Every rule carries a comment: a hash of its text. :func:`plan_script` compares
those with the observed chains, so a chain is rewritten (flush + add, inside
the transaction) only when its rules changed; sets and maps change by
element. The result is one ``nft -f`` script, one transaction.
"""

from __future__ import annotations

import hashlib
import ipaddress
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from netplex.agent.secgroups import PORT_PROTOCOLS, GroupRules, PortFilter, Rule, SecurityDesired
from netplex.linux.nftables import NftChain, NftRule, NftSet, NftTable

__all__ = [
    "BRIDGE_TABLE",
    "INET_TABLE",
    "MODES",
    "WantChain",
    "WantTable",
    "as_observed",
    "plan_script",
    "render",
    "rule_hash",
]

#: (family, name) of the tables the agent owns; nothing else is ever touched.
BRIDGE_TABLE = ("bridge", "netplex")
INET_TABLE = ("inet", "netplex")
MODES = ("bridge", "routed")

_IDENT = re.compile(r"[A-Za-z0-9_-]{1,64}")
_MAC = re.compile(r"[0-9a-f]{2}(:[0-9a-f]{2}){5}")
#: Before br_netfilter's bridge hooks (priority 0) and before conntrack.
_BRIDGE_PRIORITY = -200
#: The receiver's chain runs after the sender's (priority 0) on the forward hook.
_INGRESS_PRIORITY = 10

_ND_OUT = "icmpv6 type { nd-router-solicit, nd-neighbor-solicit, nd-neighbor-advert, " \
          "mld-listener-report, mld2-listener-report }"
_ND_IN = "icmpv6 type { nd-router-advert, nd-neighbor-solicit, nd-neighbor-advert, nd-redirect, " \
         "mld-listener-query }"


@dataclass(frozen=True, slots=True)
class WantChain:
    name: str
    rules: tuple[str, ...] = ()
    hook: str | None = None
    priority: int = 0

    @property
    def hashes(self) -> tuple[str, ...]:
        return tuple(rule_hash(r) for r in self.rules)


@dataclass(frozen=True)
class WantTable:
    family: str
    name: str
    chains: Mapping[str, WantChain] = field(default_factory=dict)
    sets: Mapping[str, NftSet] = field(default_factory=dict)

    @property
    def key(self) -> tuple[str, str]:
        return (self.family, self.name)


def rule_hash(text: str) -> str:
    return hashlib.sha1(text.encode(), usedforsecurity=False).hexdigest()[:16]


def _host(cidr: str) -> str:
    """An element as nft lists it: a host prefix is the bare address."""
    net = ipaddress.ip_network(cidr, strict=False)
    return str(net.network_address) if net.prefixlen == net.max_prefixlen else str(net)


def _set(name: str, stype: str, elements: Iterable[str], interval: bool = False,
         verdicts: bool = False) -> NftSet:
    return NftSet(name=name, type=stype, flags=("interval",) if interval else (),
                  map="verdict" if verdicts else None, elements=frozenset(elements))


def _ok(port: PortFilter) -> bool:
    return _IDENT.fullmatch(port.device) is not None and all(_MAC.fullmatch(m) for m in port.macs)


# --- rules ------------------------------------------------------------------------------------


def rule_text(rule: Rule, verdict: str) -> str | None:
    """The nft rule of one security group rule (inet family), or None if it can never match."""
    fam, ip = ("ipv4", "ip") if rule.ethertype == "IPv4" else ("ipv6", "ip6")
    parts = [f"meta nfproto {fam}"]
    proto = rule.protocol
    if proto is not None:
        parts.append(f"meta l4proto {proto}")
    if proto in PORT_PROTOCOLS and rule.port_min is not None:
        high = rule.port_max if rule.port_max is not None else rule.port_min
        parts.append(f"th dport {rule.port_min}" if high == rule.port_min
                     else f"th dport {rule.port_min}-{high}")
    if proto in (1, 58) and rule.port_min is not None:
        if (proto == 1) != (rule.ethertype == "IPv4"):
            return None
        kw = "icmp" if proto == 1 else "icmpv6"
        parts.append(f"{kw} type {rule.port_min}")
        if rule.port_max is not None:
            parts.append(f"{kw} code {rule.port_max}")
    addr = "saddr" if rule.direction == "ingress" else "daddr"
    if rule.remote_prefix and ipaddress.ip_network(rule.remote_prefix).prefixlen > 0:
        parts.append(f"{ip} {addr} {rule.remote_prefix}")
    if rule.remote_group:
        if _IDENT.fullmatch(rule.remote_group) is None:
            return None
        parts.append(f"{ip} {addr} @rg{fam[-1]}-{rule.remote_group}")
    parts.append(verdict)
    return " ".join(parts)


def _spoof_rules(bridge: bool) -> tuple[str, ...]:
    """Anti-spoofing of what a VM sends, one chain for all ports: each port's own MACs and
    addresses are elements ``tap . value`` of the shared sets ``macs``, ``ips4``, ``ips6``."""
    if bridge:
        v4, v6 = "ether type ip", "ether type ip6"
        return (
            "iifname . ether saddr != @macs drop",
            "ether type arp iifname . arp saddr ether != @macs drop",
            "ether type arp iifname . arp saddr ip != @ips4 arp saddr ip != 0.0.0.0 drop",
            "ether type arp return",
            f"{v4} udp sport 68 udp dport 67 return",
            f"{v4} udp sport 67 drop",
            f"{v4} iifname . ip saddr != @ips4 drop",
            f"{v4} return",
            f"{v6} udp sport 547 drop",
            f"{v6} icmpv6 type nd-router-advert drop",
            f"{v6} ip6 saddr :: {_ND_OUT} return",
            f"{v6} iifname . ip6 saddr != @ips6 drop",
            f"{v6} return",
            "drop",
        )
    return (
        "iifname . ether saddr != @macs drop",
        "meta nfproto ipv4 udp sport 68 udp dport 67 return",
        "meta nfproto ipv4 udp sport 67 drop",
        "meta nfproto ipv4 iifname . ip saddr != @ips4 drop",
        "meta nfproto ipv6 udp sport 547 drop",
        "icmpv6 type nd-router-advert drop",
        f"meta nfproto ipv6 ip6 saddr :: {_ND_OUT} return",
        "meta nfproto ipv6 iifname . ip6 saddr != @ips6 drop",
    )


def _port_chains(port: PortFilter, mode: str, groups: Mapping[str, tuple[WantChain, WantChain]],
                 ) -> tuple[WantChain, WantChain]:
    out = [] if mode == "bridge" else ["jump spoof"]
    out += [f"{_ND_OUT} accept", "meta nfproto ipv4 udp sport 68 udp dport 67 accept",
            "meta nfproto ipv6 udp sport 546 udp dport 547 accept"]
    inn = [f"{_ND_IN} accept", "meta nfproto ipv4 udp sport 67 udp dport 68 accept",
           "meta nfproto ipv6 udp sport 547 udp dport 546 accept"]
    if port.stateful:
        out += ["ct state invalid drop", "ct state established,related accept"]
        inn += ["ct state invalid drop", "ct state established,related accept"]
    for gid in port.groups:
        ge, gi = groups.get(gid, (None, None))
        # Only to a group chain with rules: a group that allows nothing one way (or that the
        # server did not send) adds nothing, and a port joining / leaving it keeps its chains.
        if ge is not None and ge.rules:
            out.append(f"jump {ge.name}")
        if gi is not None and gi.rules:
            inn.append(f"jump {gi.name}")
    # Counted: what a port's groups refused shows in ``nft list chain inet netplex i-<tap>``
    # (a lab or an operator tells "blocked by a security group" from "not connected").
    out.append("counter drop")
    inn.append("counter drop")
    dev = port.device
    return (WantChain(f"o-{dev}", tuple(dict.fromkeys(out))),
            WantChain(f"i-{dev}", tuple(dict.fromkeys(inn))))


def _group_chains(group: GroupRules) -> tuple[WantChain, WantChain]:
    """A group's rules, shared by all its ports: a rule change rewrites these two only."""
    out: list[str] = []
    inn: list[str] = []
    for rule in group.rules:
        text = rule_text(rule, "accept")
        if text is not None:
            (out if rule.direction == "egress" else inn).append(text)
    return (WantChain(f"ge-{group.group_id}", tuple(dict.fromkeys(out))),
            WantChain(f"gi-{group.group_id}", tuple(dict.fromkeys(inn))))


def _address_sets(ports: Iterable[PortFilter]) -> dict[str, NftSet]:
    """The shared anti-spoofing sets: ``tap . mac``, ``tap . address`` (v4, v6)."""
    macs: list[str] = []
    ips4: list[str] = []
    ips6: list[str] = []
    for p in ports:
        macs += [f"{p.device} . {m}" for m in p.macs]
        ips4 += [f"{p.device} . {_host(c)}" for c in p.ips4]
        ips6 += [f"{p.device} . {_host(c)}" for c in p.ips6]
    return {"macs": _set("macs", "ifname . ether_addr", macs),
            "ips4": _set("ips4", "ifname . ipv4_addr", ips4, interval=True),
            "ips6": _set("ips6", "ifname . ipv6_addr", ips6, interval=True)}


def render(security: SecurityDesired, mode: str) -> dict[tuple[str, str], WantTable]:
    """The tables ``security`` needs in ``mode`` (``bridge`` | ``routed``); {} for no filtered port."""
    if mode not in MODES:
        raise ValueError(f"unknown filter mode {mode!r}")
    ports = [p for p in security.ports if _ok(p)]
    if not ports:
        return {}
    chains: dict[str, WantChain] = {}
    sets: dict[str, NftSet] = {}
    egress: dict[str, str] = {}
    ingress: dict[str, str] = {}
    used = {g for p in ports for g in p.groups}
    groups = {r.group_id: _group_chains(r) for r in security.groups
              if r.group_id in used and _IDENT.fullmatch(r.group_id) is not None}
    for ge, gi in groups.values():
        chains.update((c.name, c) for c in (ge, gi) if c.rules)
    for port in ports:
        o, i = _port_chains(port, mode, groups)
        chains[o.name], chains[i.name] = o, i
        # One verdict per key: a MAC two ports claim (an address pair's) goes to the first.
        for key in port.macs if mode == "bridge" else (port.device,):
            egress.setdefault(key, f"{key} : jump {o.name}")
            ingress.setdefault(key, f"{key} : jump {i.name}")
    if mode == "routed":
        sets.update(_address_sets(ports))
        chains["spoof"] = WantChain("spoof", _spoof_rules(bridge=False))
    for group in security.remote_groups:
        if _IDENT.fullmatch(group.group_id) is None:
            continue
        for fam, ips in (("4", group.ips4), ("6", group.ips6)):
            name = f"rg{fam}-{group.group_id}"
            sets[name] = _set(name, f"ipv{fam}_addr", (_host(c) for c in ips), interval=True)
    key = "ether_addr" if mode == "bridge" else "ifname"
    sets["egress"] = _set("egress", key, egress.values(), verdicts=True)
    sets["ingress"] = _set("ingress", key, ingress.values(), verdicts=True)
    # Two base chains on forward: what the sender may send (an accept there ends only that
    # chain), then what the receiver admits.
    src, dst = ("ether saddr", "ether daddr") if mode == "bridge" else ("iifname", "oifname")
    chains["fwd-out"] = WantChain("fwd-out", (f"{src} vmap @egress",), hook="forward")
    chains["fwd-in"] = WantChain("fwd-in", (f"{dst} vmap @ingress",), hook="forward",
                                 priority=_INGRESS_PRIORITY)
    if mode == "routed":
        chains["input"] = WantChain("input", ("iifname vmap @egress",), hook="input")
    out = {INET_TABLE: WantTable(*INET_TABLE, chains=chains, sets=sets)}
    if mode == "bridge":
        bsets = _address_sets(ports)
        bsets["ports"] = _set("ports", "ifname", (p.device for p in ports))
        bchains = {"spoof": WantChain("spoof", _spoof_rules(bridge=True)),
                   "prerouting": WantChain("prerouting", ("iifname @ports jump spoof",),
                                           hook="prerouting", priority=_BRIDGE_PRIORITY)}
        out[BRIDGE_TABLE] = WantTable(*BRIDGE_TABLE, chains=bchains, sets=bsets)
    return out


def as_observed(want: WantTable) -> NftTable:
    """What reading ``want`` back after applying it gives (for a pass's baseline)."""
    chains = {c.name: NftChain(name=c.name, hook=c.hook, priority=c.priority,
                               rules=tuple(NftRule(0, h) for h in c.hashes))
              for c in want.chains.values()}
    return NftTable(want.family, want.name, chains=chains, sets=dict(want.sets))


# --- the difference -------------------------------------------------------------------------


def _elements(s: NftSet, elements: Iterable[str]) -> str:
    """Elements as script text: interface names quoted (``"tap1" . 10.0.0.5``, ``"tap1" : jump x``)."""
    types = s.type.split(" . ")
    out = []
    for e in sorted(elements):
        key, sep, verdict = e.partition(" : ") if s.map is not None else (e, "", "")
        parts = key.split(" . ")
        parts = [f'"{v}"' if t == "ifname" else v for t, v in zip(types, parts, strict=False)]
        out.append(" . ".join(parts) + (f" : {verdict}" if sep else ""))
    return ", ".join(out)


def _set_decl(t: str, s: NftSet) -> str:
    kind = "map" if s.map is not None else "set"
    stype = f"{s.type} : {s.map}" if s.map is not None else s.type
    flags = f" flags {', '.join(s.flags)};" if s.flags else ""
    return f"add {kind} {t} {s.name} {{ type {stype};{flags} }}"


def _chain_decl(t: str, c: WantChain) -> str:
    if c.hook is None:
        return f"add chain {t} {c.name}"
    return (f"add chain {t} {c.name} {{ type filter hook {c.hook} priority {c.priority}; "
            f"policy accept; }}")


def _rules(t: str, c: WantChain) -> list[str]:
    return [f'add rule {t} {c.name} {r} comment "{rule_hash(r)}"' for r in c.rules]


def _compatible(want: WantTable, seen: NftTable) -> bool:
    """Whether ``seen`` can be changed into ``want`` object by object (else: rebuild it)."""
    for name, s in want.sets.items():
        o = seen.sets.get(name)
        if o is not None and (o.type, tuple(sorted(o.flags)), o.map) != (
                s.type, tuple(sorted(s.flags)), s.map):
            return False
    for name, c in want.chains.items():
        oc = seen.chains.get(name)
        if oc is not None and (oc.hook, oc.priority if oc.hook else 0, oc.policy, oc.type) != (
                c.hook, c.priority if c.hook else 0, "accept", "filter"):
            return False
    return all(c.hook is None or c.name in want.chains for c in seen.chains.values())


def _create(want: WantTable) -> list[str]:
    t = f"{want.family} {want.name}"
    lines = [f"add table {t}"]
    lines += [_set_decl(t, s) for s in want.sets.values()]
    regular = [c for c in want.chains.values() if c.hook is None]
    base = [c for c in want.chains.values() if c.hook is not None]
    lines += [_chain_decl(t, c) for c in regular + base]
    for c in regular + base:
        lines += _rules(t, c)
    lines += [f"add element {t} {s.name} {{ {_elements(s, s.elements)} }}"
              for s in want.sets.values() if s.elements]
    return lines


def _update(want: WantTable, seen: NftTable) -> list[str]:
    t = f"{want.family} {want.name}"
    new_sets = [s for n, s in want.sets.items() if n not in seen.sets]
    new_chains = [c for n, c in want.chains.items() if n not in seen.chains]
    changed = [c for n, c in want.chains.items() if n in seen.chains
               and tuple(r.comment for r in seen.chains[n].rules) != c.hashes]
    gone_chains = [n for n in seen.chains if n not in want.chains]
    gone_sets = [n for n in seen.sets if n not in want.sets]
    lines = [_set_decl(t, s) for s in new_sets]
    lines += [_chain_decl(t, c) for c in sorted(new_chains, key=lambda c: c.hook is not None)]
    adds: list[str] = []
    for name, s in want.sets.items():
        old = seen.sets[name].elements if name in seen.sets else frozenset()
        if old - s.elements:
            lines.append(f"delete element {t} {name} {{ {_elements(s, old - s.elements)} }}")
        if s.elements - old:
            adds.append(f"add element {t} {name} {{ {_elements(s, s.elements - old)} }}")
    lines += [f"flush chain {t} {c.name}" for c in changed]
    lines += [f"flush chain {t} {n}" for n in gone_chains]
    lines += [f"delete chain {t} {n}" for n in gone_chains]
    lines += [f"delete {'map' if seen.sets[n].map else 'set'} {t} {n}" for n in gone_sets]
    for c in sorted([*new_chains, *changed], key=lambda c: c.hook is not None):
        lines += _rules(t, c)
    return lines + adds


def plan_script(want: Mapping[tuple[str, str], WantTable],
                seen: Mapping[tuple[str, str], NftTable | None]) -> list[str]:
    """The lines of one ``nft -f`` script turning ``seen`` into ``want``; [] when equal.

    Only the agent's tables (keys of either mapping) are touched; a table that is
    not wanted is deleted, one whose objects changed kind is rebuilt inside the
    same transaction.
    """
    lines: list[str] = []
    for key in sorted(set(want) | set(seen)):
        w, s = want.get(key), seen.get(key)
        if w is None:
            if s is not None:
                lines.append(f"delete table {key[0]} {key[1]}")
        elif s is None:
            lines += _create(w)
        elif not _compatible(w, s):
            lines += [f"delete table {key[0]} {key[1]}", *_create(w)]
        else:
            lines += _update(w, s)
    return lines
