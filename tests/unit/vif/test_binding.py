"""Port dict -> VIF: fields, fallback default, unbound/binding_failed errors, host id."""

from __future__ import annotations

import logging
import socket

import pytest

from netplex import config
from netplex.vif import (
    VIF,
    BindingFailed,
    BindingReason,
    FixedIP,
    PortNotBound,
    VifDefaults,
    binding_reasons,
    host_id,
    is_bound,
    vif_from_port,
)
from tests.unit.vif.factories import MAC, NET_ID, PORT_ID, SUBNET4, SUBNET6, network, port, subnets

DEFAULTS = VifDefaults("bridge", {"bridge_name": "br-lab"})


def test_vif_fields_from_port_network_and_subnets() -> None:
    vif = vif_from_port(port("ovs", {"bridge_name": "br-int"}, ipv6=True),
                        network=network(1450), subnets=subnets())
    assert vif.id == PORT_ID
    assert vif.mac_address == MAC
    assert vif.network_id == NET_ID
    assert vif.vif_type == "ovs"
    assert vif.details["bridge_name"] == "br-int"
    assert vif.host_id == "compute-1"
    assert vif.mtu == 1450
    assert vif.fixed_ips == (
        FixedIP(SUBNET4, "10.0.0.5", 24, "10.0.0.1"),
        FixedIP(SUBNET6, "fd00:1::5", 64, "fd00:1::1"),
    )
    assert not vif.from_default


def test_subnets_may_be_given_as_a_list() -> None:
    vif = vif_from_port(port("ovs"), subnets=list(subnets().values()))
    assert vif.fixed_ips[0].prefixlen == 24


def test_unknown_network_and_subnets_leave_gaps() -> None:
    vif = vif_from_port(port("tap"))
    assert vif.mtu is None
    assert vif.fixed_ips == (FixedIP(SUBNET4, "10.0.0.5", None, None),)


def test_device_names_fit_ifnamsiz() -> None:
    vif = vif_from_port(port("ovs"))
    assert vif.devname == "tap" + PORT_ID[:11] == "tap5f0c3a1e-9b"
    assert vif.vm_devname == "vm5f0c3a1e-9b"
    assert len(vif.devname) <= 15 and len(vif.vm_devname) <= 15


def test_vif_is_frozen_and_details_read_only() -> None:
    p = port("ovs", {"bridge_name": "br-int"})
    vif = vif_from_port(p)
    with pytest.raises(AttributeError):
        vif.vif_type = "tap"  # type: ignore[misc]
    with pytest.raises(TypeError):
        vif.details["bridge_name"] = "x"  # type: ignore[index]
    p["binding:vif_details"]["bridge_name"] = "changed"
    assert vif.details["bridge_name"] == "br-int"  # a copy, not a view of the dict
    assert hash(vif) == hash(vif_from_port(port("ovs", {"bridge_name": "other"})))
    assert VIF.VERSION == "1.0"


def test_string_flags_in_details() -> None:
    assert vif_from_port(port("ovs", {"ovs_hybrid_plug": "True"})).flag("ovs_hybrid_plug")
    assert not vif_from_port(port("ovs", {"ovs_hybrid_plug": "false"})).flag("ovs_hybrid_plug")
    assert not vif_from_port(port("ovs")).flag("ovs_hybrid_plug")


# --- unbound / binding_failed -------------------------------------------------------


def test_unbound_without_host_is_not_bound_even_with_defaults() -> None:
    with pytest.raises(PortNotBound) as info:
        vif_from_port(port("unbound", host=""), defaults=DEFAULTS)
    assert PORT_ID in str(info.value)
    assert "binding:host_id is not set" in str(info.value)
    assert info.value.port_id == PORT_ID


def test_unbound_after_binding_without_default_names_port_type_and_hint() -> None:
    with pytest.raises(PortNotBound) as info:
        vif_from_port(port("unbound", host="compute-1"))
    msg = str(info.value)
    assert PORT_ID in msg and "'unbound'" in msg and "compute-1" in msg
    assert "default_vif_type" in msg


def test_binding_failed_lists_every_driver_reason() -> None:
    diags = ["openvswitch: no live agent of type Open vSwitch agent on host compute-1",
             "linuxbridge: agent on compute-1 has no mapping for physnet1",
             "linuxbridge (level 1): tried segment vlan/7"]
    with pytest.raises(BindingFailed) as info:
        vif_from_port(port("binding_failed", diagnostics=diags))
    err = info.value
    assert err.port_id == PORT_ID and err.host == "compute-1"
    assert err.vif_type == "binding_failed"
    assert [r.driver for r in err.reasons] == ["openvswitch", "linuxbridge",
                                               "linuxbridge (level 1)"]
    msg = str(err)
    assert "binding_failed" in msg and PORT_ID in msg
    for line in diags:
        assert line in msg


def test_binding_failed_never_falls_back() -> None:
    with pytest.raises(BindingFailed):
        vif_from_port(port("binding_failed"), defaults=DEFAULTS)


def test_binding_failed_without_diagnostics_says_so() -> None:
    with pytest.raises(BindingFailed) as info:
        vif_from_port(port("binding_failed"))
    assert info.value.reasons == ()
    assert "no reasons" in str(info.value)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("one reason", (BindingReason(None, "one reason"),)),
        ([{"driver": "ovs", "reason": "no agent"}], (BindingReason("ovs", "no agent"),)),
        ([{"mechanism_driver": "lb", "message": "no map"}], (BindingReason("lb", "no map"),)),
        ({"ovs": "no agent", "lb": "no map"},
         (BindingReason("ovs", "no agent"), BindingReason("lb", "no map"))),
        ([{"driver": "x", "segment": "vlan/1"}], (BindingReason("x", "segment=vlan/1"),)),
        (None, ()),
    ],
)
def test_binding_reason_shapes(raw: object, expected: tuple[BindingReason, ...]) -> None:
    assert binding_reasons({"binding:diagnostics": raw}) == expected


def test_is_bound() -> None:
    assert is_bound(port("ovs"))
    assert not is_bound(port("unbound"))
    assert not is_bound(port("binding_failed"))
    assert not is_bound(port(None))


# --- fallback ---------------------------------------------------------------------


def test_fallback_when_server_has_no_binding_extension(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="netplex.vif"):
        vif = vif_from_port(port(None), defaults=DEFAULTS)
    assert vif.vif_type == "bridge"
    assert vif.details == {"bridge_name": "br-lab"}
    assert vif.from_default
    assert "no binding data" in caplog.text and "'bridge'" in caplog.text


def test_fallback_when_unbound_after_binding(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="netplex.vif"):
        vif = vif_from_port(port("unbound", host="compute-1"), defaults=DEFAULTS)
    assert vif.vif_type == "bridge" and vif.from_default
    assert "did not bind" in caplog.text


def test_no_binding_extension_and_no_default_is_an_error() -> None:
    with pytest.raises(PortNotBound) as info:
        vif_from_port(port(None))
    assert "no binding data" in str(info.value)


def test_a_real_binding_wins_over_the_default() -> None:
    vif = vif_from_port(port("ovs"), defaults=DEFAULTS)
    assert vif.vif_type == "ovs" and not vif.from_default


def test_defaults_from_config() -> None:
    assert VifDefaults.from_config(config.load()) is None  # opt-in: off by default
    cfg = config.load(text="[vif]\ndefault_vif_type = bridge\ndefault_bridge_name = br-lab\n")
    d = VifDefaults.from_config(cfg)
    assert d is not None
    assert d.vif_type == "bridge" and d.details == {"bridge_name": "br-lab"}
    cfg = config.load(text="[vif]\ndefault_vif_type = tap\n")
    d = VifDefaults.from_config(cfg)
    assert d is not None and d.vif_type == "tap" and d.details == {}


# --- host identity -----------------------------------------------------------------------


def test_host_id_is_the_configured_host_or_the_hostname() -> None:
    assert host_id(config.load(text="[DEFAULT]\nhost = compute-7\n")) == "compute-7"
    assert host_id(config.load()) == socket.gethostname()
