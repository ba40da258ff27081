"""``ovs``: the VM's device is a port of an Open vSwitch bridge.

The bridge is ``vif_details["bridge_name"]``, else ``br-int``. The OVS agent
owns that bridge and recognises the port by the Interface ``external_ids``
set here: ``iface-id`` (the Neutron port id), ``attached-mac``,
``iface-status=active`` and ``vm-uuid``. The bridge is never created here: an
integration bridge made by someone else (wrong datapath type, no flows) would
be worse than a clear error.

With ``vif_details["ovs_hybrid_plug"]`` true, the VM's device joins a per-port
Linux bridge ``qbr<id>`` instead, linked to OVS by the veth pair
``qvb<id>`` (in ``qbr``) / ``qvo<id>`` (the OVS port carrying the
external_ids). Mechanisms ask for this when they filter on a Linux bridge.

New ports are created with ``tag=4095`` and ``protected=true``, what the OVS
agent makes of ports it has not wired (dead): until the agent has seen the
port and given it its network's local VLAN, the port cannot reach (or be
flooded by) other networks' traffic, nor other new ports (protected ports
never forward to each other). Both are only set when the port is created, so
re-plugging never undoes the agent's tag. Controllers that do not use agent-style local VLANs on the bridge (an
SDN controller owning ``br-int``) need ``OvsPlugin(isolate_new_ports=False)``.

``vif_details["ovsdb_connection"]`` (``unix:/path``) names the OVSDB to use
when the host runs OVS somewhere other than the default socket; an executor
given its own socket uses that one instead.
"""

from __future__ import annotations

from typing import ClassVar

from netplex.vif.model import OVS, VIF, InstanceInfo, device_name
from netplex.vif.ops import (
    DeleteLink,
    EnsureBridge,
    EnsureVeth,
    Op,
    OvsAddPort,
    OvsDelPort,
    SetLink,
)
from netplex.vif.plugin import VifPlugin
from netplex.vif.plugins._common import vm_veth

__all__ = [
    "DEAD_VLAN",
    "DEFAULT_BRIDGE",
    "OvsPlugin",
    "external_ids",
    "hybrid_names",
    "integration_bridge",
]

DEFAULT_BRIDGE = "br-int"
#: The VLAN tag the OVS agent uses for ports it has not (or not yet) wired.
DEAD_VLAN = 4095


def integration_bridge(vif: VIF) -> str:
    """The OVS bridge an ``ovs`` VIF joins."""
    return str(vif.detail("bridge_name") or DEFAULT_BRIDGE)


def hybrid_names(vif: VIF) -> tuple[str, str, str]:
    """``(qbr, qvb, qvo)`` device names for hybrid plugging."""
    return device_name("qbr", vif.id), device_name("qvb", vif.id), device_name("qvo", vif.id)


def external_ids(vif: VIF, instance: InstanceInfo) -> tuple[tuple[str, str], ...]:
    """The Interface external_ids that tell the OVS agent which port this is."""
    return (
        ("iface-id", vif.id),
        ("iface-status", "active"),
        ("attached-mac", vif.mac_address),
        ("vm-uuid", instance.uuid),
    )


class OvsPlugin(VifPlugin):
    """Plugs ``ovs`` VIFs, directly or through a hybrid ``qbr`` bridge."""

    name: ClassVar[str] = "ovs"
    vif_types: ClassVar[tuple[str, ...]] = (OVS,)

    def __init__(self, isolate_new_ports: bool = True) -> None:
        self.isolate_new_ports = isolate_new_ports

    def plan_plug(self, vif: VIF, instance: InstanceInfo) -> list[Op]:
        bridge = integration_bridge(vif)
        ids = external_ids(vif, instance)
        db = vif.detail("ovsdb_connection") or None
        tag = DEAD_VLAN if self.isolate_new_ports else None
        if vif.flag("ovs_hybrid_plug"):
            qbr, qvb, qvo = hybrid_names(vif)
            ops: list[Op] = [
                EnsureBridge(qbr),
                EnsureVeth(qvb, qvo, mtu=vif.mtu),
                SetLink(qvb, up=True, mtu=vif.mtu, master=qbr),
                SetLink(qvo, up=True, mtu=vif.mtu),
                OvsAddPort(bridge, qvo, ids, tag, db, initial_protected=self.isolate_new_ports),
            ]
            if instance.netns:
                ops += vm_veth(vif, master=qbr)
            return ops
        if not instance.netns:
            # libvirt's <virtualport type='openvswitch'> adds the tap itself.
            return []
        return [*vm_veth(vif), OvsAddPort(bridge, vif.devname, ids, tag, db,
                                          initial_protected=self.isolate_new_ports)]

    def plan_unplug(self, vif: VIF, instance: InstanceInfo) -> list[Op]:
        db = vif.detail("ovsdb_connection") or None
        if vif.flag("ovs_hybrid_plug"):
            qbr, qvb, qvo = hybrid_names(vif)
            ops: list[Op] = [OvsDelPort(qvo, db), DeleteLink(qvb)]
            if instance.netns:
                ops.append(DeleteLink(vif.devname))
            ops.append(DeleteLink(qbr))
            return ops
        if not instance.netns:
            return []
        return [OvsDelPort(vif.devname, db), DeleteLink(vif.devname)]
