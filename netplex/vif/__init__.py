"""Netplex's compute-side VIF library: plug a VM's interface from the port binding alone.

The compute node carries no per-mechanism code. It sets ``binding:host_id``,
reads ``binding:vif_type`` + ``binding:vif_details`` from the port, and the
plugin for that vif_type does the rest::

    from netplex.vif import InstanceInfo, LinuxExecutor, plug, vif_from_port

    vif = vif_from_port(port, network=network, subnets=subnets)
    plug(vif, InstanceInfo(uuid=vm_uuid, netns="vm1"), executor=LinuxExecutor("host1"))

Layout (and the one invariant): this package imports nothing from the
server side of Netplex; it talks to the server only through
:mod:`netplex.client`. Only :mod:`netplex.vif.executor` touches the kernel or
OVSDB.

* :mod:`~netplex.vif.model` - VIF, InstanceInfo, device names
* :mod:`~netplex.vif.binding` - port dict -> VIF, fallback default, binding reasons, host id
* :mod:`~netplex.vif.plugin` - the plugin contract; :mod:`~netplex.vif.plugins` - built-ins
* :mod:`~netplex.vif.registry` - vif_type -> plugin (entry points ``netplex.vif_plugins``)
* :mod:`~netplex.vif.ops` - operations as data and the Executor protocol
* :mod:`~netplex.vif.executor` - the real executor; :mod:`~netplex.vif.testing` - a fake one
* :mod:`~netplex.vif.libvirt` - ``<interface>`` XML for hypervisor VMs
* :mod:`~netplex.vif.attach` - the attach/detach flow for namespace VMs
* :mod:`~netplex.vif.errors` - the error tree
"""

from __future__ import annotations

from netplex.vif.attach import (
    AttachResult,
    DetachResult,
    PortClient,
    Progress,
    ProgressCallback,
    attach,
    detach,
    plan_vm_config,
)
from netplex.vif.binding import VifDefaults, binding_reasons, host_id, is_bound, vif_from_port
from netplex.vif.errors import (
    AttachError,
    AttachTimeout,
    BindingFailed,
    BindingReason,
    ExecutionError,
    InstanceNotSupported,
    InvalidVifDetails,
    NamespaceNotFound,
    PluginError,
    PortNotBound,
    UnsupportedVifType,
    VifError,
)
from netplex.vif.executor import LinuxExecutor
from netplex.vif.libvirt import interface_element, interface_xml
from netplex.vif.model import VIF, FixedIP, InstanceInfo
from netplex.vif.ops import Executor, Op
from netplex.vif.plugin import PluginInfo, VifPlugin
from netplex.vif.registry import PluginRegistry

__all__ = [
    "VIF",
    "AttachError",
    "AttachResult",
    "AttachTimeout",
    "BindingFailed",
    "BindingReason",
    "DetachResult",
    "ExecutionError",
    "Executor",
    "FixedIP",
    "InstanceInfo",
    "InstanceNotSupported",
    "InvalidVifDetails",
    "LinuxExecutor",
    "NamespaceNotFound",
    "Op",
    "PluginError",
    "PluginInfo",
    "PluginRegistry",
    "PortClient",
    "PortNotBound",
    "Progress",
    "ProgressCallback",
    "UnsupportedVifType",
    "VifDefaults",
    "VifError",
    "VifPlugin",
    "attach",
    "binding_reasons",
    "detach",
    "host_id",
    "interface_element",
    "interface_xml",
    "is_bound",
    "plan_vm_config",
    "plug",
    "unplug",
    "vif_from_port",
]


def plug(
    vif: VIF,
    instance: InstanceInfo,
    *,
    executor: Executor | None = None,
    registry: PluginRegistry | None = None,
) -> list[Op]:
    """Plug ``vif`` for ``instance``; idempotent. Returns the operations applied.

    ``executor`` defaults to a :class:`LinuxExecutor` in the current namespace
    with the default OVSDB socket; ``registry`` to :meth:`PluginRegistry.default`.
    """
    registry = registry or PluginRegistry.default()
    plan = registry.plan_plug(vif, instance)
    (executor or LinuxExecutor()).apply(plan)
    return plan


def unplug(
    vif: VIF,
    instance: InstanceInfo,
    *,
    executor: Executor | None = None,
    registry: PluginRegistry | None = None,
) -> list[Op]:
    """Remove what :func:`plug` created; whatever is already gone is skipped."""
    registry = registry or PluginRegistry.default()
    plan = registry.plan_unplug(vif, instance)
    (executor or LinuxExecutor()).apply(plan)
    return plan
