"""Plan fragments shared by the built-in plugins."""

from __future__ import annotations

from netplex.vif.model import VIF
from netplex.vif.ops import EnsureVeth, Op, SetLink


def vm_veth(vif: VIF, *, master: str | None = None) -> list[Op]:
    """The veth pair of a namespace VM: host end ``vif.devname``, VM end ``vif.vm_devname``.

    The VM end gets the port's MAC at creation, so whatever the VM does first
    it already speaks with the address the server knows. The host end is
    brought up (and enslaved to ``master`` when given); the VM end stays down
    until the caller has moved and configured it.
    """
    return [
        EnsureVeth(vif.devname, vif.vm_devname, mtu=vif.mtu, peer_address=vif.mac_address),
        SetLink(vif.devname, up=True, mtu=vif.mtu, master=master),
    ]
