"""``tap``: a host-side device on no bridge; whoever bound the port routes to it.

Used by routed (L3-only) mechanisms: the agent adds a host route to the
VM's address via this device and answers ARP for the gateway. For a
namespace VM the device is the host end of a veth pair (a tap device cannot
carry traffic into a namespace without a process holding it open); for a
hypervisor VM it is a persistent tap the hypervisor opens (libvirt
``<interface type='ethernet'>`` with ``managed='no'``).
"""

from __future__ import annotations

from typing import ClassVar

from netplex.vif.model import TAP, VIF, InstanceInfo
from netplex.vif.ops import DeleteLink, EnsureTap, Op, SetLink
from netplex.vif.plugin import VifPlugin
from netplex.vif.plugins._common import vm_veth

__all__ = ["TapPlugin"]


class TapPlugin(VifPlugin):
    """Plugs ``tap`` VIFs."""

    name: ClassVar[str] = "tap"
    vif_types: ClassVar[tuple[str, ...]] = (TAP,)

    def plan_plug(self, vif: VIF, instance: InstanceInfo) -> list[Op]:
        if instance.netns:
            return vm_veth(vif)
        return [EnsureTap(vif.devname, mtu=vif.mtu), SetLink(vif.devname, up=True, mtu=vif.mtu)]

    def plan_unplug(self, vif: VIF, instance: InstanceInfo) -> list[Op]:
        # We created the device in both cases, so we delete it in both.
        return [DeleteLink(vif.devname)]
