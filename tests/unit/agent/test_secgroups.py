"""Security groups: the model built from server dicts, nft rendering and the planned difference."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from netplex.agent.secgroups import Rule, compile_rule, link_local, protocol_number, security_from_api
from netplex.agent.secgroups_nft import (
    BRIDGE_TABLE,
    INET_TABLE,
    as_observed,
    plan_script,
    render,
    rule_hash,
    rule_text,
)

TAP = "tapaaaaaaaa-00"
PID = "aaaaaaaa-0000-0000-0000-000000000001"
G_WEB, G_ADMIN = "11111111-0000-0000-0000-000000000000", "22222222-0000-0000-0000-000000000000"


def group(gid: str, *rules: dict[str, Any], stateful: bool = True) -> dict[str, Any]:
    return {"id": gid, "stateful": stateful, "security_group_rules": list(rules)}


def port(pid: str = PID, groups: tuple[str, ...] = (G_WEB,), ips: tuple[str, ...] = ("10.0.0.5",),
         pairs: tuple[dict[str, str], ...] = (), security: bool | None = True,
         mac: str = "FA:16:3E:00:00:01") -> dict[str, Any]:
    out: dict[str, Any] = {"id": pid, "mac_address": mac, "security_groups": list(groups),
                           "fixed_ips": [{"subnet_id": "s", "ip_address": ip} for ip in ips],
                           "allowed_address_pairs": list(pairs)}
    if security is not None:
        out["port_security_enabled"] = security
    return out


SSH_FROM_ADMIN = {"id": "r1", "direction": "ingress", "ethertype": "IPv4", "protocol": "tcp",
                  "port_range_min": 22, "port_range_max": 22, "remote_group_id": G_ADMIN}
EGRESS_ANY = {"id": "r2", "direction": "egress", "ethertype": "IPv4", "protocol": None}


def test_protocols_by_name_and_number() -> None:
    assert protocol_number("tcp", "IPv4") == 6
    assert protocol_number("6", "IPv4") == 6
    assert protocol_number(None, "IPv4") is None
    assert protocol_number("icmp", "IPv6") == 58
    assert protocol_number("ipv6-icmp", "IPv6") == 58
    with pytest.raises(ValueError):
        protocol_number("nope", "IPv4")


def test_rule_text_matches_what_the_rule_says() -> None:
    r = compile_rule(SSH_FROM_ADMIN)
    assert rule_text(r, "accept") == f"meta nfproto ipv4 meta l4proto 6 th dport 22 ip saddr @rg4-{G_ADMIN} accept"
    r = compile_rule({"direction": "ingress", "ethertype": "IPv4", "protocol": "udp",
                      "port_range_min": 1000, "port_range_max": 2000, "remote_ip_prefix": "10.1.2.3/8"})
    assert rule_text(r, "accept") == "meta nfproto ipv4 meta l4proto 17 th dport 1000-2000 ip saddr 10.0.0.0/8 accept"
    r = compile_rule({"direction": "egress", "ethertype": "IPv6", "protocol": "icmp",
                      "port_range_min": 128, "port_range_max": 0, "remote_ip_prefix": "fd00::/64"})
    assert rule_text(r, "return") == ("meta nfproto ipv6 meta l4proto 58 icmpv6 type 128 icmpv6 code 0 "
                                      "ip6 daddr fd00::/64 return")
    assert rule_text(Rule("ingress", "IPv4", remote_prefix="0.0.0.0/0"), "accept") == "meta nfproto ipv4 accept"
    with pytest.raises(ValueError):
        compile_rule({"direction": "ingress", "ethertype": "IPv4", "remote_ip_prefix": "fd00::/64"})


def test_port_model_addresses_pairs_and_link_local() -> None:
    sec = security_from_api([port(pairs=({"ip_address": "10.0.1.0/24", "mac_address": "fa:16:3e:00:00:09"},
                                         {"ip_address": "10.0.0.5"}))],
                            [group(G_WEB, SSH_FROM_ADMIN)], [])
    (pf,) = sec.ports
    assert pf.device == "tapaaaaaaaa-00" and pf.macs == ("fa:16:3e:00:00:01", "fa:16:3e:00:00:09")
    assert pf.ips4 == ("10.0.0.5/32", "10.0.1.0/24")
    assert f"{link_local('fa:16:3e:00:00:01')}/128" in pf.ips6
    assert link_local("fa:16:3e:00:00:01") == "fe80::f816:3eff:fe00:1"
    assert pf.stateful


def test_port_security_off_or_unknown_means_no_filter() -> None:
    assert security_from_api([port(security=False)], [group(G_WEB)], []).ports == ()
    assert security_from_api([port(security=None)], [group(G_WEB)], []).ports == ()
    assert render(security_from_api([port(security=False)], [], []), "bridge") == {}
    dhcp = dict(port(), device_owner="network:dhcp")
    assert security_from_api([dhcp], [group(G_WEB)], []).ports == ()


def test_stateless_only_when_every_group_is() -> None:
    groups = [group(G_WEB, stateful=False), group(G_ADMIN, stateful=False)]
    assert not security_from_api([port(groups=(G_WEB, G_ADMIN))], groups, []).ports[0].stateful
    groups[1]["stateful"] = True
    assert security_from_api([port(groups=(G_WEB, G_ADMIN))], groups, []).ports[0].stateful


def test_remote_group_members_include_pairs_and_local_ports() -> None:
    member = port("bbbb", groups=(G_ADMIN,), ips=("10.0.0.7", "fd00::7"),
                  pairs=({"ip_address": "10.9.0.0/16"},))
    local2 = port("cccc", groups=(G_ADMIN,), ips=("10.0.0.8",))
    sec = security_from_api([port(), local2], [group(G_WEB, SSH_FROM_ADMIN), group(G_ADMIN)], [member])
    (rg,) = sec.remote_groups
    assert rg.group_id == G_ADMIN
    assert rg.ips4 == ("10.0.0.7/32", "10.0.0.8/32", "10.9.0.0/16") and rg.ips6 == ("fd00::7/128",)


def _sec(members: tuple[str, ...] = ("10.0.0.7",), rules: tuple[dict[str, Any], ...] = (SSH_FROM_ADMIN,),
         ports: tuple[dict[str, Any], ...] | None = None) -> Any:
    member = port("bbbb", groups=(G_ADMIN,), ips=members)
    return security_from_api(list(ports) if ports is not None else [port()],
                             [group(G_WEB, *rules), group(G_ADMIN)], [member])


def test_render_bridge_mode_tables() -> None:
    want = render(_sec(), "bridge")
    inet, br = want[INET_TABLE], want[BRIDGE_TABLE]
    assert set(inet.chains) == {f"o-{TAP}", f"i-{TAP}", f"gi-{G_WEB}", "fwd-out", "fwd-in"}
    assert inet.chains["fwd-out"].rules == ("ether saddr vmap @egress",)
    assert inet.chains["fwd-in"].rules == ("ether daddr vmap @ingress",)
    assert inet.chains["fwd-in"].priority > inet.chains["fwd-out"].priority
    assert inet.sets["egress"].elements == {f"fa:16:3e:00:00:01 : jump o-{TAP}"}
    assert inet.sets[f"rg4-{G_ADMIN}"].elements == {"10.0.0.7"}
    ingress = inet.chains[f"i-{TAP}"].rules
    assert "ct state established,related accept" in ingress and ingress[-2:] == (f"jump gi-{G_WEB}", "counter drop")
    assert inet.chains[f"gi-{G_WEB}"].rules == (
        f"meta nfproto ipv4 meta l4proto 6 th dport 22 ip saddr @rg4-{G_ADMIN} accept",)
    assert f"jump ge-{G_WEB}" not in inet.chains[f"o-{TAP}"].rules  # no egress rule: no chain
    assert br.chains["prerouting"].hook == "prerouting"
    assert br.sets["ips4"].elements == {f"{TAP} . 10.0.0.5"}
    assert br.sets["macs"].elements == {f"{TAP} . fa:16:3e:00:00:01"}
    assert f"{TAP} . fe80::f816:3eff:fe00:1" in br.sets["ips6"].elements
    assert br.sets["ports"].elements == {TAP}
    assert br.chains["prerouting"].rules == ("iifname @ports jump spoof",)
    spoof = br.chains["spoof"].rules
    # DHCP client allowed before the source IP check, DHCP server replies from the VM dropped.
    assert spoof.index("ether type ip udp sport 68 udp dport 67 return") < spoof.index(
        "ether type ip iifname . ip saddr != @ips4 drop")
    assert "ether type ip udp sport 67 drop" in spoof


def test_render_routed_mode_tables() -> None:
    want = render(_sec(), "routed")
    assert set(want) == {INET_TABLE}
    inet = want[INET_TABLE]
    assert inet.chains["input"].rules == ("iifname vmap @egress",)
    assert inet.chains["fwd-in"].rules == ("oifname vmap @ingress",)
    assert inet.sets["ingress"].type == "ifname"
    out = inet.chains[f"o-{TAP}"].rules
    assert out[0] == "jump spoof"
    assert "meta nfproto ipv4 iifname . ip saddr != @ips4 drop" in inet.chains["spoof"].rules
    assert inet.sets["ips4"].elements == {f"{TAP} . 10.0.0.5"}


def test_stateless_port_has_no_conntrack_rules() -> None:
    sec = security_from_api([port()], [group(G_WEB, EGRESS_ANY, stateful=False)], [])
    chains = render(sec, "bridge")[INET_TABLE].chains
    assert not any("ct state" in r for c in chains.values() for r in c.rules)


def test_converged_plans_nothing() -> None:
    for mode in ("bridge", "routed"):
        want = render(_sec(), mode)
        assert plan_script(want, {k: as_observed(t) for k, t in want.items()}) == []


def test_absent_tables_are_created_and_unwanted_ones_deleted() -> None:
    want = render(_sec(), "bridge")
    lines = plan_script(want, {})
    assert lines[0] == "add table bridge netplex" and "add table inet netplex" in lines
    assert plan_script({}, {k: as_observed(t) for k, t in want.items()}) == [
        "delete table bridge netplex", "delete table inet netplex"]


def test_membership_change_is_set_elements_only() -> None:
    seen = {k: as_observed(t) for k, t in render(_sec(("10.0.0.7",)), "bridge").items()}
    lines = plan_script(render(_sec(("10.0.0.9", "10.0.0.11")), "bridge"), seen)
    assert lines == [f"delete element inet netplex rg4-{G_ADMIN} {{ 10.0.0.7 }}",
                     f"add element inet netplex rg4-{G_ADMIN} {{ 10.0.0.11, 10.0.0.9 }}"]


def test_rule_change_rewrites_only_the_group_chain_whatever_the_ports() -> None:
    many = tuple(port(f"{i:04x}aaaa-0000", ips=(f"10.0.1.{i}",), mac=f"fa:16:3e:00:01:{i:02x}")
                 for i in range(1, 50))
    seen = {k: as_observed(t) for k, t in render(_sec(ports=many), "bridge").items()}
    extra = dict(SSH_FROM_ADMIN, port_range_min=23, port_range_max=23)
    lines = plan_script(render(_sec(rules=(SSH_FROM_ADMIN, extra), ports=many), "bridge"), seen)
    text = f"meta nfproto ipv4 meta l4proto 6 th dport 23 ip saddr @rg4-{G_ADMIN} accept"
    assert lines[0] == f"flush chain inet netplex gi-{G_WEB}"
    assert lines[-1] == f'add rule inet netplex gi-{G_WEB} {text} comment "{rule_hash(text)}"'
    assert len(lines) == 3


def test_port_leaving_removes_its_objects_in_order() -> None:
    other = port("dddd", ips=("10.0.0.6",), mac="fa:16:3e:00:00:02")
    seen = {k: as_observed(t) for k, t in render(_sec(ports=(port(), other)), "bridge").items()}
    lines = plan_script(render(_sec(ports=(other,)), "bridge"), seen)
    text = "\n".join(lines)
    # References (map elements, rules) go before the chains and sets they point at.
    assert text.index("delete element inet netplex egress") < text.index(f"delete chain inet netplex o-{TAP}")
    assert f'delete element bridge netplex ips4 {{ "{TAP}" . 10.0.0.5 }}' in lines
    assert f'delete element bridge netplex ports {{ "{TAP}" }}' in lines
    assert "add " not in text and "flush chain bridge" not in text


def test_incompatible_table_is_rebuilt_in_the_same_script() -> None:
    want = render(_sec(), "routed")
    seen = as_observed(want[INET_TABLE])
    chains = dict(seen.chains)
    chains["fwd-out"] = dataclasses.replace(chains["fwd-out"], priority=5)
    seen = dataclasses.replace(seen, chains=chains)
    lines = plan_script(want, {INET_TABLE: seen})
    assert lines[0] == "delete table inet netplex" and lines[1] == "add table inet netplex"


def test_bad_names_never_reach_a_script() -> None:
    sec = security_from_api([port()], [group(G_WEB, dict(SSH_FROM_ADMIN, remote_group_id="x; flush ruleset"))], [])
    text = "\n".join(plan_script(render(sec, "bridge"), {}))
    assert "flush ruleset" not in text


def test_group_not_sent_by_the_server_admits_nothing() -> None:
    sec = security_from_api([port(groups=(G_WEB, "99999999"))], [group(G_WEB, EGRESS_ANY)], [])
    chains = render(sec, "routed")[INET_TABLE].chains
    assert "gi-99999999" not in chains and chains[f"i-{TAP}"].rules[-1] == "counter drop"
    # A group chain exists before the port's rules jump to it, in the same script.
    text = "\n".join(plan_script(render(sec, "routed"), {}))
    assert text.index(f"add chain inet netplex ge-{G_WEB}") < text.index(f"jump ge-{G_WEB}")


def test_an_address_pair_change_is_set_elements_only() -> None:
    seen = {k: as_observed(t) for k, t in render(_sec(), "bridge").items()}
    paired = port(pairs=({"ip_address": "10.0.5.0/24"},))
    lines = plan_script(render(_sec(ports=(paired,)), "bridge"), seen)
    assert lines == [f'add element bridge netplex ips4 {{ "{TAP}" . 10.0.5.0/24 }}']


def test_a_mac_claimed_by_two_ports_gets_one_verdict() -> None:
    shared = {"ip_address": "10.0.0.100", "mac_address": "fa:16:3e:00:00:99"}
    other = port("dddd", ips=("10.0.0.6",), mac="fa:16:3e:00:00:02", pairs=(shared,))
    sec = _sec(ports=(port(pairs=(shared,)), other))
    elements = render(sec, "bridge")[INET_TABLE].sets["egress"].elements
    assert len([e for e in elements if e.startswith("fa:16:3e:00:00:99 ")]) == 1
