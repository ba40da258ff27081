"""The built-in VIF plugins, one module per vif_type family.

=============  ==========================================  ==============================
vif_type       namespace VM (``instance.netns`` set)        hypervisor VM (no netns)
=============  ==========================================  ==============================
``bridge``     veth, host end in the Linux bridge           bridge ensured; the hypervisor
                                                            adds its own tap
``ovs``        veth, host end an OVS port with external_ids the hypervisor adds its tap
                                                            (libvirt ``virtualport``)
``ovs`` +      veth into ``qbr``; ``qvb``/``qvo`` veth       same, without the veth: the
hybrid plug    links ``qbr`` to the OVS bridge              hypervisor's tap joins ``qbr``
``tap``        veth, host end on no bridge                  persistent tap device
``vhostuser``  refused (no kernel device)                   nothing to do; config only
=============  ==========================================  ==============================
"""

from netplex.vif.plugins.bridge import BridgePlugin
from netplex.vif.plugins.ovs import OvsPlugin
from netplex.vif.plugins.tap import TapPlugin
from netplex.vif.plugins.vhostuser import VhostUserPlugin

__all__ = ["BUILTIN_PLUGINS", "BridgePlugin", "OvsPlugin", "TapPlugin", "VhostUserPlugin"]

#: Plugin classes shipped with Netplex, in the order they are registered.
BUILTIN_PLUGINS = (BridgePlugin, OvsPlugin, TapPlugin, VhostUserPlugin)
