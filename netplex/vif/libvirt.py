"""Libvirt ``<interface>`` elements for a VIF: what a hypervisor would put in the domain XML.

For hypervisor VMs the hypervisor creates (or opens) the VM's device itself;
this describes it from the binding alone:

============================  ==============================================================
vif_type                      element
============================  ==============================================================
``bridge``                    ``type='bridge'``, ``<source bridge>`` = the Linux bridge
``ovs``                       ``type='bridge'``, ``<source bridge>`` = the OVS bridge, and
                              ``<virtualport type='openvswitch'>`` with ``interfaceid`` = port id
``ovs`` + ``ovs_hybrid_plug`` ``type='bridge'``, ``<source bridge>`` = ``qbr<id>`` (no virtualport:
                              the plug plan links ``qbr`` to OVS)
``tap``                       ``type='ethernet'``, ``<target dev managed='no'>``: the plug plan
                              made the tap
``vhostuser``                 ``type='vhostuser'``, ``<source type='unix' path mode>``
============================  ==============================================================

Every element carries ``<mac address>``, ``<model type>`` and, when the
network's MTU is known, ``<mtu size>``. Every type except ``vhostuser`` names
its device ``<target dev='tap' + port id[:11]>`` (vhost-user has no kernel
device to name).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

from netplex.vif.errors import UnsupportedVifType
from netplex.vif.model import BRIDGE, OVS, TAP, VHOSTUSER, VIF
from netplex.vif.plugins.bridge import bridge_name
from netplex.vif.plugins.ovs import hybrid_names, integration_bridge
from netplex.vif.plugins.vhostuser import vhostuser_config

__all__ = ["XML_VIF_TYPES", "interface_element", "interface_xml"]

#: vif types :func:`interface_xml` can describe.
XML_VIF_TYPES = (BRIDGE, OVS, TAP, VHOSTUSER)


def interface_element(vif: VIF, *, model: str = "virtio") -> ET.Element:
    """The ``<interface>`` element for ``vif`` (see the module table).

    :raises UnsupportedVifType: for a vif_type with no libvirt mapping here.
    :raises InvalidVifDetails: vhostuser without a socket path or a valid mode.
    """
    if vif.vif_type == BRIDGE:
        iface = ET.Element("interface", type="bridge")
        _mac(iface, vif)
        ET.SubElement(iface, "source", bridge=bridge_name(vif))
        _target(iface, vif)
    elif vif.vif_type == OVS:
        iface = ET.Element("interface", type="bridge")
        _mac(iface, vif)
        if vif.flag("ovs_hybrid_plug"):
            ET.SubElement(iface, "source", bridge=hybrid_names(vif)[0])
        else:
            ET.SubElement(iface, "source", bridge=integration_bridge(vif))
            port = ET.SubElement(iface, "virtualport", type="openvswitch")
            ET.SubElement(port, "parameters", interfaceid=vif.id)
        _target(iface, vif)
    elif vif.vif_type == TAP:
        iface = ET.Element("interface", type="ethernet")
        _mac(iface, vif)
        _target(iface, vif, managed="no")
    elif vif.vif_type == VHOSTUSER:
        path, mode = vhostuser_config(vif)
        iface = ET.Element("interface", type="vhostuser")
        _mac(iface, vif)
        ET.SubElement(iface, "source", type="unix", path=path, mode=mode)
    else:
        raise UnsupportedVifType(vif.vif_type, XML_VIF_TYPES, vif.id)
    ET.SubElement(iface, "model", type=model)
    if vif.mtu:
        ET.SubElement(iface, "mtu", size=str(vif.mtu))
    return iface


def interface_xml(vif: VIF, *, model: str = "virtio") -> str:
    """:func:`interface_element` serialised (indented, no XML declaration)."""
    element = interface_element(vif, model=model)
    ET.indent(element)
    return ET.tostring(element, encoding="unicode")


def _mac(iface: ET.Element, vif: VIF) -> None:
    ET.SubElement(iface, "mac", address=vif.mac_address)


def _target(iface: ET.Element, vif: VIF, managed: str | None = None) -> None:
    target = ET.SubElement(iface, "target", dev=vif.devname)
    if managed is not None:
        target.set("managed", managed)
