"""``vhostuser``: a userspace datapath (OVS-DPDK, VPP) talks to the VM over a Unix socket.

There is no kernel device, so plugging prepares nothing: the socket path and
mode from the binding go into the hypervisor's configuration
(:func:`netplex.vif.libvirt.interface_xml`). Plugging validates the binding
so that a bad one fails here, not when the hypervisor starts the VM.

``vif_details``:

* ``vhostuser_socket``: path of the socket (required);
* ``vhostuser_mode``: ``client`` or ``server``, the *hypervisor's* role on the
  socket (default ``server``, the usual setting with OVS-DPDK's
  ``dpdkvhostuserclient`` ports).

A namespace VM cannot use vhost-user; plugging one is refused.
"""

from __future__ import annotations

from typing import ClassVar

from netplex.vif.errors import InstanceNotSupported, InvalidVifDetails
from netplex.vif.model import VHOSTUSER, VIF, InstanceInfo
from netplex.vif.ops import Op
from netplex.vif.plugin import VifPlugin

__all__ = ["MODES", "VhostUserPlugin", "vhostuser_config"]

MODES = ("client", "server")
DEFAULT_MODE = "server"


def vhostuser_config(vif: VIF) -> tuple[str, str]:
    """``(socket path, mode)`` from the binding; raises InvalidVifDetails when unusable."""
    path = vif.detail("vhostuser_socket")
    if not path or not isinstance(path, str):
        raise InvalidVifDetails(
            f"port {vif.id}: vif_type vhostuser needs binding:vif_details"
            f"['vhostuser_socket'] (got {dict(vif.details)})",
            port_id=vif.id,
        )
    mode = str(vif.detail("vhostuser_mode") or DEFAULT_MODE)
    if mode not in MODES:
        raise InvalidVifDetails(
            f"port {vif.id}: vhostuser_mode must be one of {', '.join(MODES)}, got {mode!r}",
            port_id=vif.id,
        )
    return path, mode


class VhostUserPlugin(VifPlugin):
    """Validates ``vhostuser`` VIFs; nothing to plug in the kernel."""

    name: ClassVar[str] = "vhostuser"
    vif_types: ClassVar[tuple[str, ...]] = (VHOSTUSER,)

    def plan_plug(self, vif: VIF, instance: InstanceInfo) -> list[Op]:
        vhostuser_config(vif)
        if instance.netns:
            raise InstanceNotSupported(
                f"port {vif.id}: vif_type vhostuser has no kernel device and cannot be "
                f"plugged into namespace {instance.netns!r}; it needs a hypervisor VM "
                "with a vhost-user capable datapath",
                port_id=vif.id,
            )
        return []

    def plan_unplug(self, vif: VIF, instance: InstanceInfo) -> list[Op]:
        return []

    def vm_device(self, vif: VIF, instance: InstanceInfo) -> str | None:
        return None
