"""The VIF plugin contract. Read this first if you write a plugin.

A plugin turns a :class:`~netplex.vif.model.VIF` (the port's binding) and an
:class:`~netplex.vif.model.InstanceInfo` into *plans*: lists of operations
from :mod:`netplex.vif.ops`. It never performs I/O itself; an executor applies
the plan. That keeps plugins unprivileged, pure and testable by reading their
plans, and lets one executor implementation serve every plugin.

Plugins are found by name through the entry-point group ``netplex.vif_plugins``
(see :mod:`netplex.vif.registry`). A plugin class must be constructible with no
arguments.

Rules every plugin follows:

* :meth:`VifPlugin.plan_plug` and :meth:`VifPlugin.plan_unplug` are pure
  functions of their arguments: same input, same plan. They may raise
  :class:`~netplex.vif.errors.InvalidVifDetails` or
  :class:`~netplex.vif.errors.InstanceNotSupported`, nothing else.
* Applying the plug plan twice gives the same host as applying it once;
  applying the unplug plan on a host where nothing (or only part) of the VIF
  exists succeeds. The operations in :mod:`netplex.vif.ops` are idempotent, so
  a plan made only of them is too.
* The unplug plan removes exactly what the plug plan created that belongs to
  this port alone (never a bridge other ports may share, unless it is
  per-port like the hybrid-plug ``qbr``).
* For a namespace VM (``instance.netns`` set), the plug plan leaves one device
  for the VM in the host namespace, named by :meth:`VifPlugin.vm_device`; the
  caller moves it into the VM's namespace.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass
from typing import ClassVar

from netplex.vif.model import VIF, InstanceInfo
from netplex.vif.ops import Op

__all__ = ["PluginInfo", "VifPlugin"]


@dataclass(frozen=True)
class PluginInfo:
    """What a plugin can plug: advertised so a host can say what it supports."""

    name: str
    vif_types: tuple[str, ...]
    version: str


class VifPlugin(abc.ABC):
    """Base class of VIF plugins: one plugin per vif_type family."""

    #: Entry-point name of the plugin.
    name: ClassVar[str]
    #: ``binding:vif_type`` values this plugin plugs.
    vif_types: ClassVar[tuple[str, ...]]
    #: Version of the plans this plugin produces; bump on behaviour changes.
    VERSION: ClassVar[str] = "1.0"

    @abc.abstractmethod
    def plan_plug(self, vif: VIF, instance: InstanceInfo) -> list[Op]:
        """The operations that plug ``vif`` for ``instance`` (see the module rules)."""

    @abc.abstractmethod
    def plan_unplug(self, vif: VIF, instance: InstanceInfo) -> list[Op]:
        """The operations that remove what :meth:`plan_plug` created for this port."""

    def vm_device(self, vif: VIF, instance: InstanceInfo) -> str | None:
        """The device the plug plan leaves in the host namespace for a namespace VM.

        None when the plugin creates no such device (hypervisor VMs, or types
        without a kernel device). The default is the veth end
        :attr:`VIF.vm_devname <netplex.vif.model.VIF.vm_devname>`.
        """
        return vif.vm_devname if instance.netns else None

    def describe(self) -> PluginInfo:
        """Name, vif types and version of this plugin."""
        return PluginInfo(self.name, tuple(self.vif_types), self.VERSION)
