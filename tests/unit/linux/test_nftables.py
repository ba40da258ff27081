"""Parsing ``nft -j list table`` output into frozen data (no root needed)."""

from __future__ import annotations

import json

import pytest

from netplex.linux.nftables import element_text, parse_table, read_table

# Real output of nft 1.0.6 (``nft -j list ruleset``), two tables.
DOC = json.loads("""{"nftables": [{"metainfo": {"version": "1.0.6", "json_schema_version": 1}},
{"table": {"family": "inet", "name": "t", "handle": 1}},
{"set": {"family": "inet", "name": "a4", "table": "t", "type": "ipv4_addr", "handle": 3, "flags": ["interval"],
  "elem": ["10.0.0.1", {"prefix": {"addr": "10.1.0.0", "len": 16}}, {"range": ["10.2.0.1", "10.2.0.9"]}]}},
{"set": {"family": "inet", "name": "a6", "table": "t", "type": "ipv6_addr", "handle": 4, "flags": ["interval"],
  "elem": ["fd00::1", {"prefix": {"addr": "fd01::", "len": 64}}]}},
{"set": {"family": "inet", "name": "m", "table": "t", "type": "ether_addr", "handle": 5,
  "elem": ["fa:16:3e:00:00:01"]}},
{"map": {"family": "inet", "name": "outp", "table": "t", "type": "ifname", "handle": 6, "map": "verdict",
  "elem": [["tapx", {"jump": {"target": "c1"}}]]}},
{"chain": {"family": "inet", "table": "t", "name": "c1", "handle": 1}},
{"chain": {"family": "inet", "table": "t", "name": "forward", "handle": 2, "type": "filter", "hook": "forward",
  "prio": -10, "policy": "accept"}},
{"rule": {"family": "inet", "table": "t", "chain": "c1", "handle": 7, "comment": "abc",
  "expr": [{"match": {"op": "==", "left": {"payload": {"protocol": "ip", "field": "saddr"}}, "right": "@a4"}},
           {"return": null}]}},
{"rule": {"family": "inet", "table": "t", "chain": "c1", "handle": 8, "expr": [{"drop": null}]}},
{"rule": {"family": "inet", "table": "t", "chain": "forward", "handle": 9,
  "expr": [{"vmap": {"key": {"meta": {"key": "iifname"}}, "data": "@outp"}}]}},
{"table": {"family": "inet", "name": "other", "handle": 2}},
{"chain": {"family": "inet", "table": "other", "name": "x", "handle": 1}}]}""")


def test_parse_table() -> None:
    t = parse_table(DOC, "inet", "t")
    assert t is not None
    assert set(t.chains) == {"c1", "forward"}
    c1 = t.chains["c1"]
    assert c1.hook is None and [r.handle for r in c1.rules] == [7, 8]
    assert [r.comment for r in c1.rules] == ["abc", ""]
    assert '"drop"' in c1.rules[1].expr
    fwd = t.chains["forward"]
    assert (fwd.hook, fwd.priority, fwd.policy, fwd.type) == ("forward", -10, "accept", "filter")
    assert t.sets["a4"].elements == {"10.0.0.1", "10.1.0.0/16", "10.2.0.1-10.2.0.9"}
    assert t.sets["a4"].flags == ("interval",) and t.sets["a4"].map is None
    assert t.sets["a6"].elements == {"fd00::1", "fd01::/64"}
    assert t.sets["m"].elements == {"fa:16:3e:00:00:01"}
    assert t.sets["outp"].map == "verdict" and t.sets["outp"].elements == {"tapx : jump c1"}


def test_other_tables_and_absence() -> None:
    other = parse_table(DOC, "inet", "other")
    assert other is not None and set(other.chains) == {"x"} and not other.sets
    assert parse_table(DOC, "bridge", "t") is None
    assert parse_table({"nftables": []}, "inet", "t") is None


def test_element_text_normalises_addresses() -> None:
    assert element_text({"prefix": {"addr": "10.0.0.5", "len": 32}}) == "10.0.0.5"
    assert element_text("FD00:0:0::1") == "fd00::1"
    assert element_text("FA:16:3E:00:00:01") == "fa:16:3e:00:00:01"
    assert element_text({"elem": {"val": "10.0.0.1", "comment": "x"}}) == "10.0.0.1"
    # Concatenations, as nft 1.0.6 lists a ``type ifname . ipv4_addr; flags interval`` set.
    assert element_text({"concat": ["tapa", {"prefix": {"addr": "10.0.1.0", "len": 24}}]}) == "tapa . 10.0.1.0/24"
    assert element_text({"concat": ["tapb", "FA:16:3E:00:00:01"]}) == "tapb . fa:16:3e:00:00:01"


def test_names_are_checked_before_any_command() -> None:
    with pytest.raises(ValueError):
        read_table(None, "inet", "t; flush ruleset")
