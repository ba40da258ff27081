"""The VIF and instance objects plugins work on, and the device names derived from a port.

A :class:`VIF` is an immutable snapshot of what the server told us about one
port's binding (see :func:`netplex.vif.binding.vif_from_port` for how it is
built). Plugins read nothing else: that is what lets one compute-side library
serve every mechanism driver.

Device names follow the conventions operators already know from Neutron/Nova
hosts: a prefix plus the first 11 characters of the port id, which keeps every
name within the kernel's 15-character limit and makes ``ip link`` output
greppable by port id.
"""

from __future__ import annotations

import copy
import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, ClassVar

__all__ = [
    "BINDING_FAILED",
    "BRIDGE",
    "OVS",
    "TAP",
    "UNBOUND",
    "VHOSTUSER",
    "FixedIP",
    "InstanceInfo",
    "VIF",
    "device_name",
    "freeze_details",
    "linuxbridge_name",
]

# binding:vif_type values. Plugins may add more; these are the ones the
# compute side knows by name.
OVS = "ovs"
BRIDGE = "bridge"
TAP = "tap"
VHOSTUSER = "vhostuser"
UNBOUND = "unbound"
BINDING_FAILED = "binding_failed"

#: Characters of the port id (or network id) used in device names.
ID_CHARS = 11


def device_name(prefix: str, resource_id: str) -> str:
    """``prefix`` + the first 11 characters of ``resource_id`` (``tap`` + port id, ...)."""
    return prefix + resource_id[:ID_CHARS]


def linuxbridge_name(network_id: str) -> str:
    """The bridge the Linux bridge mechanism uses for a network: ``brq`` + network id[:11]."""
    return device_name("brq", network_id)


def freeze_details(details: Mapping[str, Any] | None) -> Mapping[str, Any]:
    """A read-only deep copy of ``binding:vif_details``."""
    return MappingProxyType(copy.deepcopy(dict(details or {})))


@dataclass(frozen=True)
class FixedIP:
    """One fixed IP of the port, completed with its subnet's prefix length and gateway."""

    subnet_id: str
    ip_address: str
    #: From the subnet's CIDR; None when the subnet could not be read.
    prefixlen: int | None = None
    #: The subnet's ``gateway_ip`` (None when the subnet has none or is unknown).
    gateway_ip: str | None = None

    @property
    def version(self) -> int:
        return ipaddress.ip_address(self.ip_address).version


@dataclass(frozen=True)
class VIF:
    """What the compute side needs to plug one port, taken from the port's binding.

    Build it with :func:`netplex.vif.binding.vif_from_port`; plugins and
    :func:`netplex.vif.libvirt.interface_xml` only read it.
    """

    #: Wire-format version of this object, bumped when fields change meaning.
    VERSION: ClassVar[str] = "1.0"

    #: The Neutron port id.
    id: str
    #: ``mac_address`` of the port; the VM's interface gets it.
    mac_address: str
    #: ``network_id`` of the port.
    network_id: str
    #: ``binding:vif_type`` (or the configured default when the server gave none).
    vif_type: str
    #: ``binding:vif_details`` (read-only).
    details: Mapping[str, Any] = field(default_factory=lambda: freeze_details({}), hash=False)
    #: ``binding:host_id`` the binding was made for.
    host_id: str = ""
    #: ``binding:vnic_type``.
    vnic_type: str = "normal"
    #: The port's fixed IPs, with prefix lengths and gateways when the subnets were known.
    fixed_ips: tuple[FixedIP, ...] = ()
    #: The network's MTU; None when unknown (devices keep the kernel default).
    mtu: int | None = None
    #: True when ``vif_type``/``details`` came from the local ``[vif]`` default,
    #: not from the server.
    from_default: bool = False

    @property
    def devname(self) -> str:
        """The host-side device: ``tap`` + port id[:11] (also libvirt's target dev)."""
        return device_name("tap", self.id)

    @property
    def vm_devname(self) -> str:
        """The VM end of the veth pair while it still lives in the host namespace.

        The attach flow moves it into the VM namespace and renames it (``eth0``).
        """
        return device_name("vm", self.id)

    def detail(self, key: str, default: Any = None) -> Any:
        """``binding:vif_details[key]``, or ``default``."""
        return self.details.get(key, default)

    def flag(self, key: str) -> bool:
        """A boolean vif_details entry; tolerates ``"true"``/``"false"`` strings."""
        value = self.details.get(key, False)
        if isinstance(value, str):
            return value.strip().lower() in ("1", "true", "yes", "on")
        return bool(value)


@dataclass(frozen=True)
class InstanceInfo:
    """The VM a VIF is plugged for.

    ``netns`` set means a *namespace VM* (the lab's VMs, containers): the
    library creates a veth pair and hands its VM end to the caller. ``netns``
    None means a *hypervisor VM*: the hypervisor creates or opens its own
    device (see :func:`netplex.vif.libvirt.interface_xml`), and plugging only
    prepares what the hypervisor expects to find.
    """

    #: Instance UUID; becomes ``vm-uuid`` in OVS external_ids.
    uuid: str
    #: Human-readable name (for logs).
    name: str = ""
    #: The VM's network namespace, for namespace VMs.
    netns: str | None = None
