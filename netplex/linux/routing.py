"""Host routes, devices and their addresses for routed (L3) hosts: observe, and batch changes.

Everything here runs iproute2: one ``ip -j`` per read, and one ``ip -force
-batch -`` process for any number of changes (10,000 routes take a fraction
of a second that way; a netlink round trip per route through pyroute2 costs
1-2 ms each). :func:`run_ip_batch` reports, per input line, whether it failed,
so a caller can record which operation to retry.

Routes are owned by *protocol number*: the caller installs its routes with
``proto N`` and reads back only those (:func:`read_routes`), so routes of the
kernel, of DHCP clients or of a routing daemon are never seen, let alone
removed. Nothing in this module imports the rest of Netplex.
"""

from __future__ import annotations

import ipaddress
import json
import re
import subprocess
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = [
    "MAIN_TABLE",
    "DeviceState",
    "Route",
    "Rule",
    "address_line",
    "iproute2_json",
    "read_devices",
    "read_routes",
    "read_rules",
    "route_line",
    "rule_line",
    "run_ip_batch",
    "tuntap_line",
]

_TIMEOUT = 60
_BATCH_FAILED = re.compile(r"Command failed -:(\d+)")
_NAME = re.compile(r"[A-Za-z0-9_.@-]{1,15}")


#: The kernel's main routing table (``ip route`` without ``table``).
MAIN_TABLE = 254


@dataclass(frozen=True, slots=True, order=True)
class Route:
    """A route of ``table`` (default: main): ``dst`` (``a.b.c.d/32``, ``x::y/128``) through ``dev``
    (directly connected) or ``via`` a next hop (``dev`` then left to the kernel: None)."""

    dst: str
    dev: str | None = None
    via: str | None = None
    table: int = MAIN_TABLE

    @property
    def version(self) -> int:
        return ipaddress.ip_network(self.dst).version


@dataclass(frozen=True, slots=True)
class DeviceState:
    """One device as a routed host needs it: kind, state, MAC, alias, its addresses."""

    name: str
    kind: str | None = None
    up: bool = False
    address: str = ""
    alias: str = ""
    #: Its global addresses, as plain IPs (no prefix length).
    addresses: frozenset[str] = frozenset()


def iproute2_json(netns: str | None, args: Sequence[str]) -> Any:
    cmd = ["ip", *(["-n", netns] if netns else []), "-j", *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=_TIMEOUT, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)!r} failed: {proc.stderr.strip()}")
    return json.loads(proc.stdout) if proc.stdout.strip() else []


def _prefix(dst: str) -> str:
    return str(ipaddress.ip_network(dst, strict=False))


_NAMED_TABLES = {"main": MAIN_TABLE, "local": 255, "default": 253}


def _table(value: Any) -> int:
    if value is None:
        return MAIN_TABLE
    text = str(value)
    return _NAMED_TABLES[text] if text in _NAMED_TABLES else int(text)


def read_routes(netns: str | None, proto: int) -> frozenset[Route]:
    """IPv4 and IPv6 routes of protocol ``proto`` (nobody else's), of every table."""
    out: set[Route] = set()
    for family in ("-4", "-6"):
        for r in iproute2_json(netns, [family, "route", "show", "table", "all", "proto", str(proto)]):
            dst = r.get("dst")
            if not dst or dst == "default":
                continue
            via = r.get("gateway")
            if via is None and isinstance(r.get("via"), Mapping):
                via = r["via"].get("host")
            out.add(Route(_prefix(dst), None if via else r.get("dev"), via, _table(r.get("table"))))
    return frozenset(out)


@dataclass(frozen=True, slots=True, order=True)
class Rule:
    """A policy-routing rule ``prio P iif DEV [from SRC] lookup TABLE`` (``table`` None:
    ``prohibit``; ``src`` None: from all, else an address or ``net/len``)."""

    family: int
    priority: int
    iif: str
    table: int | None = None
    src: str | None = None


def read_rules(netns: str | None, prefix: str, priorities: Iterable[int]) -> frozenset[Rule]:
    """IPv4 and IPv6 rules on input devices named ``prefix*`` with one of ``priorities``."""
    wanted = set(priorities)
    out: set[Rule] = set()
    for family, flag in ((4, "-4"), (6, "-6")):
        for r in iproute2_json(netns, [flag, "rule", "show"]):
            iif = str(r.get("iif") or "")
            prio = int(r.get("priority", -1))
            if not iif.startswith(prefix) or prio not in wanted:
                continue
            table = None if r.get("action") == "prohibit" else _table(r.get("table"))
            src = r.get("src")
            if src in (None, "all"):
                src = None
            elif r.get("srclen") is not None:
                src = f"{src}/{r['srclen']}"  # not a host address: never one of ours
            else:
                src = str(ipaddress.ip_address(src))
            out.add(Rule(family, prio, iif, table, src))
    return frozenset(out)


def rule_line(verb: str, rule: Rule) -> str:
    """``rule add|del`` for ``rule`` (run it in a batch of ``rule.family``)."""
    if verb not in ("add", "del"):
        raise ValueError(verb)
    action = "prohibit" if rule.table is None else f"lookup {int(rule.table)}"
    source = "" if rule.src is None else f" from {ipaddress.ip_network(rule.src, strict=False)}"
    return f"rule {verb} prio {int(rule.priority)} iif {_dev(rule.iif)}{source} {action}"


def read_devices(netns: str | None, prefix: str) -> dict[str, DeviceState]:
    """Devices whose name starts with ``prefix``, with their global addresses (one ``ip`` run)."""
    out: dict[str, DeviceState] = {}
    for d in iproute2_json(netns, ["-d", "addr", "show"]):
        name = str(d.get("ifname", ""))
        if not name.startswith(prefix):
            continue
        addrs = frozenset(str(a["local"]) for a in d.get("addr_info") or ()
                          if a.get("local") and a.get("scope") == "global")
        out[name] = DeviceState(
            name=name, kind=(d.get("linkinfo") or {}).get("info_kind"),
            up="UP" in (d.get("flags") or ()), address=str(d.get("address", "")).lower(),
            alias=str(d.get("ifalias") or ""), addresses=addrs)
    return out


# --- changes ------------------------------------------------------------------------


def _dev(name: str) -> str:
    if _NAME.fullmatch(name) is None:
        raise ValueError(f"not a usable device name: {name!r}")
    return name


def _ip(value: str) -> str:
    return str(ipaddress.ip_address(value))


def route_line(verb: str, route: Route, proto: int) -> str:
    """``route replace|del`` for ``route`` with protocol ``proto`` (ValueError on bad data)."""
    if verb not in ("replace", "del"):
        raise ValueError(verb)
    parts = ["route", verb, _prefix(route.dst)]
    if route.via:
        parts += ["via", _ip(route.via)]
    if route.dev:
        parts += ["dev", _dev(route.dev)]
        if not route.via:
            parts += ["scope", "link"]
    if route.table != MAIN_TABLE:
        parts += ["table", str(int(route.table))]
    parts += ["proto", str(int(proto))]
    return " ".join(parts)


def address_line(verb: str, dev: str, ip: str) -> str:
    """A host address (/32, /128, no DAD) on ``dev``: ``addr replace|del``."""
    if verb not in ("replace", "del"):
        raise ValueError(verb)
    addr = ipaddress.ip_address(ip)
    line = f"addr {verb} {addr}/{addr.max_prefixlen} dev {_dev(dev)}"
    return line + (" nodad" if addr.version == 6 and verb == "replace" else "")


def tuntap_line(dev: str, alias: str) -> list[str]:
    """Lines that create persistent tap ``dev``, mark it with ``alias`` and set it up."""
    return [f"tuntap add dev {_dev(dev)} mode tap", f"link set dev {dev} alias {_dev(alias)} up"]


#: Error texts meaning the line's goal already holds (a delete of what is gone, an add of what is there).
ALREADY = ("No such process", "No such file or directory", "Cannot assign requested address",
           "Cannot find device", "File exists", "does not exist")


def run_ip_batch(netns: str | None, lines: Sequence[str],
                 done_if: Iterable[str] = ALREADY, family: int | None = None) -> list[str | None]:
    """Run ``lines`` in one ``ip -force -batch -``; per line: None (done, or already so) or the error.

    ``family`` 6 runs ``ip -6`` (needed for ``rule`` lines; routes and neighbours take the
    family from their addresses)."""
    if not lines:
        return []
    tolerated = tuple(done_if)
    cmd = ["ip", *(["-n", netns] if netns else []), *(["-6"] if family == 6 else []),
           "-force", "-batch", "-"]
    try:
        proc = subprocess.run(cmd, input="".join(f"{line}\n" for line in lines),
                              capture_output=True, text=True, timeout=_TIMEOUT, check=False)
    except (OSError, subprocess.SubprocessError) as exc:
        return [f"ip -batch: {exc}"] * len(lines)
    failed: dict[int, str] = {}
    text: list[str] = []
    for out in proc.stderr.splitlines():
        m = _BATCH_FAILED.fullmatch(out.strip())
        if m is None:
            text.append(out)
            continue
        failed[int(m[1])] = "\n".join(text).strip() or "failed"
        text = []
    result: list[str | None] = []
    for n in range(1, len(lines) + 1):
        err = failed.get(n)
        result.append(None if err is None or any(t in err for t in tolerated) else err)
    if proc.returncode != 0 and not failed:
        return [proc.stderr.strip() or f"ip exited with {proc.returncode}"] * len(lines)
    return result
