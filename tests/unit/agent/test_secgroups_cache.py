"""HostCache and security groups: snapshot, feed changes, resync when a group is not known."""

from __future__ import annotations

from typing import Any

from netplex.agent.api import parse_host_state
from netplex.agent.cache import Effect, HostCache

from .test_secgroups import G_ADMIN, G_WEB, SSH_FROM_ADMIN, group, port

NET = {"id": "n1", "provider:network_type": "local", "mtu": 1500}


def bound(p: dict[str, Any], host: str = "h1") -> dict[str, Any]:
    return dict(p, network_id="n1", **{"binding:host_id": host, "binding:vif_type": "bridge",
                                      "device_owner": "compute:nova", "admin_state_up": True})


def member(ips: tuple[str, ...] = ("10.0.0.7",), groups: tuple[str, ...] = (G_ADMIN,)) -> dict[str, Any]:
    return dict(port("bbbb", groups=groups, ips=ips), network_id="n-other")


def loaded() -> HostCache:
    cache = HostCache("h1")
    cache.load(parse_host_state({
        "revision": 10, "networks": [NET], "ports": [bound(port())], "agents": [],
        "security_groups": [group(G_WEB, SSH_FROM_ADMIN), group(G_ADMIN)],
        "remote_group_ports": [member()]}))
    return cache


def change(rev: int, resource: str, rid: str, body: Any, action: str = "update") -> dict[str, Any]:
    return {"revision": rev, "resource": resource, "id": rid, "action": action, "body": body}


def test_host_state_without_security_keys_still_parses() -> None:
    state = parse_host_state({"revision": 1, "networks": [], "ports": [], "agents": []})
    assert state.security_groups == () and state.remote_group_ports == ()
    assert not state.has_security


def test_a_server_without_security_groups_gets_no_filter() -> None:
    cache = HostCache("h1")
    cache.load(parse_host_state({"revision": 10, "networks": [NET], "ports": [bound(port())],
                                 "agents": []}))
    assert cache.desired().security is None  # ports say port_security_enabled, but no groups came
    moved = bound(port(groups=("77777777",)))
    assert cache.apply(change(11, "port", moved["id"], moved)) is Effect.APPLIED
    assert cache.apply(change(12, "security_group", G_WEB, group(G_WEB))) is Effect.IGNORED


def test_snapshot_gives_the_filter() -> None:
    sec = loaded().desired().security
    assert sec is not None
    assert [p.port_id for p in sec.ports] == [port()["id"]]
    assert [(g.group_id, g.ips4) for g in sec.remote_groups] == [(G_ADMIN, ("10.0.0.7/32",))]


def test_membership_changes_from_the_feed() -> None:
    cache = loaded()
    assert cache.apply(change(11, "port", "bbbb", member(("10.0.0.8",)))) is Effect.APPLIED
    sec = cache.desired().security
    assert sec is not None and sec.remote_groups[0].ips4 == ("10.0.0.8/32",)
    # Leaves the group: its address leaves the set.
    assert cache.apply(change(12, "port", "bbbb", member(groups=()))) is Effect.APPLIED
    sec = cache.desired().security
    assert sec is not None and sec.remote_groups[0].ips4 == ()
    # A port of another network joining the group is picked up too.
    assert cache.apply(change(13, "port", "cccc", dict(member(), id="cccc"), "create")) is Effect.APPLIED
    assert cache.apply(change(14, "port", "cccc", None, "delete")) is Effect.APPLIED
    assert "cccc" not in cache.remote_group_ports
    # Not a member of anything we filter on: ignored.
    assert cache.apply(change(15, "port", "dddd", dict(member(groups=(G_WEB,)), id="dddd"))) is Effect.IGNORED


def test_rule_changes_arrive_as_the_group() -> None:
    cache = loaded()
    before = cache.desired()
    assert cache.apply(change(11, "security_group_rule", "r9", {"id": "r9"})) is Effect.IGNORED
    assert cache.desired() is before
    extra = {"id": "r3", "direction": "ingress", "ethertype": "IPv4", "protocol": "icmp"}
    assert cache.apply(change(12, "security_group", G_WEB, group(G_WEB, SSH_FROM_ADMIN, extra))) is Effect.APPLIED
    sec = cache.desired().security
    assert sec is not None and [len(g.rules) for g in sec.groups if g.group_id == G_WEB] == [2]


def test_unknown_remote_group_or_port_group_needs_a_resync() -> None:
    cache = loaded()
    new = {"id": "r4", "direction": "ingress", "ethertype": "IPv4", "remote_group_id": "99999999"}
    assert cache.apply(change(11, "security_group", G_WEB, group(G_WEB, new))) is Effect.RESYNC
    cache = loaded()
    moved = bound(port(groups=(G_WEB, "77777777")))
    assert cache.apply(change(11, "port", moved["id"], moved)) is Effect.RESYNC
    # Groups nobody here uses are not our business.
    assert cache.apply(change(12, "security_group", "55555555", group("55555555"))) is Effect.IGNORED


def test_port_security_switch_changes_the_desired_state() -> None:
    cache = loaded()
    before = cache.desired()
    off = bound(port(security=False, groups=()))
    assert cache.apply(change(11, "port", off["id"], off)) is Effect.APPLIED
    after = cache.desired()
    assert after is not before and after.security is not None and after.security.ports == ()
