"""Libvirt <interface> XML per vif_type, checked by parsing."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import Any

import pytest

from netplex.vif import InvalidVifDetails, UnsupportedVifType, interface_xml, vif_from_port
from tests.unit.vif.factories import MAC, NET_ID, PORT_ID, network, port

TAP = "tap" + PORT_ID[:11]


def parse(vif_type: str, details: dict[str, Any] | None = None, mtu: int | None = 1450,
          **kw: Any) -> ET.Element:
    vif = vif_from_port(port(vif_type, details), network=network(mtu))
    root = ET.fromstring(interface_xml(vif, **kw))
    assert root.tag == "interface"
    return root


def one(root: ET.Element, path: str) -> ET.Element:
    found = root.findall(path)
    assert len(found) == 1, f"expected one <{path}>, got {len(found)}"
    return found[0]


def check_common(root: ET.Element, mtu: int | None = 1450, target: bool = True) -> None:
    assert one(root, "mac").get("address") == MAC
    assert one(root, "model").get("type") == "virtio"
    if mtu:
        assert one(root, "mtu").get("size") == str(mtu)
    else:
        assert root.find("mtu") is None
    if target:
        assert one(root, "target").get("dev") == TAP


def test_bridge() -> None:
    root = parse("bridge")
    assert root.get("type") == "bridge"
    assert one(root, "source").attrib == {"bridge": "brq" + NET_ID[:11]}
    assert root.find("virtualport") is None
    check_common(root)


def test_bridge_named_in_details() -> None:
    assert one(parse("bridge", {"bridge_name": "br-phys"}), "source").get("bridge") == "br-phys"


def test_ovs_virtualport() -> None:
    root = parse("ovs", {"bridge_name": "br-int"})
    assert root.get("type") == "bridge"
    assert one(root, "source").get("bridge") == "br-int"
    vp = one(root, "virtualport")
    assert vp.get("type") == "openvswitch"
    assert one(vp, "parameters").get("interfaceid") == PORT_ID
    check_common(root)


def test_ovs_hybrid_uses_the_qbr_bridge_without_virtualport() -> None:
    root = parse("ovs", {"bridge_name": "br-int", "ovs_hybrid_plug": True})
    assert root.get("type") == "bridge"
    assert one(root, "source").get("bridge") == "qbr" + PORT_ID[:11]
    assert root.find("virtualport") is None
    check_common(root)


def test_tap_is_an_unmanaged_ethernet() -> None:
    root = parse("tap")
    assert root.get("type") == "ethernet"
    assert root.find("source") is None
    assert one(root, "target").get("managed") == "no"
    check_common(root)


def test_vhostuser_socket() -> None:
    root = parse("vhostuser", {"vhostuser_socket": "/run/vhu/vhu5f0c.sock",
                               "vhostuser_mode": "client"})
    assert root.get("type") == "vhostuser"
    assert one(root, "source").attrib == {"type": "unix", "path": "/run/vhu/vhu5f0c.sock",
                                          "mode": "client"}
    check_common(root, target=False)
    assert root.find("target") is None


def test_vhostuser_mode_defaults_to_server() -> None:
    root = parse("vhostuser", {"vhostuser_socket": "/run/x.sock"})
    assert one(root, "source").get("mode") == "server"


def test_vhostuser_without_socket_is_refused() -> None:
    with pytest.raises(InvalidVifDetails):
        parse("vhostuser", {})


def test_mtu_omitted_when_unknown_and_model_selectable() -> None:
    root = parse("bridge", mtu=None, model="e1000")
    assert root.find("mtu") is None
    assert one(root, "model").get("type") == "e1000"


def test_unknown_type() -> None:
    with pytest.raises(UnsupportedVifType, match="supported vif types: bridge, ovs, tap, vhostuser"):
        parse("hostdev_physical")
