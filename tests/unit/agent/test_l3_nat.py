"""The router NAT plan: what the one nft transaction contains."""

from __future__ import annotations

from netplex.agent.l3_nat import FloatingIPRule, RouterNat, render


def _nat(**kw: object) -> RouterNat:
    base: dict[str, object] = {
        "gateway_ip": "203.0.113.10", "gateway_device": "qg-1",
        "internal_cidrs": ["10.1.0.0/24", "10.2.0.5/24"],
    }
    base.update(kw)
    return RouterNat(**base)  # type: ignore[arg-type]


def test_snat_for_internal_subnets_to_gateway() -> None:
    script = render(_nat())
    assert 'oifname "qg-1" ip saddr { 10.1.0.0/24, 10.2.0.0/24 } snat to 203.0.113.10' in script
    # East-west between the router's subnets is accepted before any SNAT.
    assert script.index("ip daddr { 10.1.0.0/24, 10.2.0.0/24 } accept") < script.index("snat to 203.0.113.10")


def test_enable_snat_false_has_no_gateway_snat() -> None:
    assert "snat to 203.0.113.10" not in render(_nat(enable_snat=False))


def test_no_gateway_no_snat() -> None:
    assert "snat to" not in render(_nat(gateway_ip=None, gateway_device=None))


def test_floating_ip_is_one_to_one_and_before_router_snat() -> None:
    script = render(_nat(floating_ips=[FloatingIPRule("203.0.113.20", "10.1.0.7")]))
    assert "ip daddr 203.0.113.20 dnat to 10.1.0.7" in script
    assert script.index("ip saddr 10.1.0.7 snat to 203.0.113.20") < script.index("snat to 203.0.113.10")


def test_one_transaction_replacing_the_table() -> None:
    script = render(_nat())
    assert script.startswith("add table ip netplex-l3\ndelete table ip netplex-l3\n")


def test_render_is_deterministic() -> None:
    one, two = FloatingIPRule("203.0.113.21", "10.1.0.8"), FloatingIPRule("203.0.113.20", "10.1.0.7")
    assert render(_nat(floating_ips=[one, two])) == render(_nat(floating_ips=[two, one]))
