"""``bridge``: the VM's device is a port of a Linux bridge.

The bridge is ``vif_details["bridge_name"]`` when the binding names one (a
mechanism that maps a physical network onto an existing bridge), else
``brq`` + network id[:11], the name the Linux bridge mechanism announces.

Bridge ownership: the Linux bridge agent owns the bridge (its uplink, VLAN or
VXLAN member, FDB entries). Plugging nevertheless *ensures* the bridge exists,
creating a bare one if needed, and unplugging never deletes it. Reason: the
agent and the compute side react to the same binding independently, so the
VM's device may be ready before the agent has processed the port; waiting for
the agent would couple the two on timing, and failing would turn a race into
an error. A bare bridge only forwards between local ports until the agent
adopts it (its "ensure bridge" must accept an existing one) and adds the
uplink. A hypervisor also needs the bridge to exist before it starts the VM.
Construct ``BridgePlugin(create_bridge=False)`` where the agent must stay the
only creator; the plan then assumes the bridge exists.
"""

from __future__ import annotations

from typing import ClassVar

from netplex.vif.model import BRIDGE, VIF, InstanceInfo, linuxbridge_name
from netplex.vif.ops import DeleteLink, EnsureBridge, Op
from netplex.vif.plugin import VifPlugin
from netplex.vif.plugins._common import vm_veth

__all__ = ["BridgePlugin", "bridge_name"]


def bridge_name(vif: VIF) -> str:
    """The Linux bridge a ``bridge`` VIF joins."""
    return str(vif.detail("bridge_name") or linuxbridge_name(vif.network_id))


class BridgePlugin(VifPlugin):
    """Plugs ``bridge`` VIFs (see the module docstring for bridge ownership)."""

    name: ClassVar[str] = "bridge"
    vif_types: ClassVar[tuple[str, ...]] = (BRIDGE,)

    def __init__(self, create_bridge: bool = True) -> None:
        self.create_bridge = create_bridge

    def plan_plug(self, vif: VIF, instance: InstanceInfo) -> list[Op]:
        bridge = bridge_name(vif)
        ops: list[Op] = [EnsureBridge(bridge)] if self.create_bridge else []
        if instance.netns:
            ops += vm_veth(vif, master=bridge)
        return ops

    def plan_unplug(self, vif: VIF, instance: InstanceInfo) -> list[Op]:
        # A hypervisor removes its own tap; the bridge is shared and the agent's.
        return [DeleteLink(vif.devname)] if instance.netns else []
