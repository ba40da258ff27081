"""What tenants make in the lab: networks through the API, and VMs (a port + a namespace plugged by
the VIF library, exactly as a compute host would)."""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from typing import Any

from netplex.client import ClientError
from netplex.lab.state import PHYSNET, ROUTED_NET, NetRec, Progress, VmRec
from netplex.lab.workspace import Workspace
from netplex.linux import netns

__all__ = ["add_vm", "create_network", "remove_vm", "routed_ip6", "vm_plan"]


def create_network(ws: Workspace, name: str, cidr: str, provider: dict[str, Any] | None = None,
                   cidr6: str = "") -> NetRec:
    with ws.client() as c:
        net = c.create_network({"name": name, **(provider or {})})
        sub = c.create_subnet({"network_id": net["id"], "cidr": cidr, "ip_version": 4,
                               "name": f"{name}-subnet"})
        sub6 = c.create_subnet({"network_id": net["id"], "cidr": cidr6, "ip_version": 6,
                                "name": f"{name}-subnet6"}) if cidr6 else {"id": ""}
    rec = NetRec(name=name, id=net["id"], subnet_id=sub["id"], cidr=cidr,
                 network_type=str(net.get("provider:network_type") or ""),
                 segmentation_id=net.get("provider:segmentation_id"),
                 subnet6_id=str(sub6["id"]), cidr6=cidr6)
    ws.state.networks[name] = rec
    ws.save()
    return rec


def add_vm(ws: Workspace, name: str, host: str, network: str, ip: str,
           progress: Progress | None = None, timeout: float = 60.0,
           wait_active: bool = True, ip6: str = "", port_security: bool = True,
           security_groups: Sequence[str] | None = None, demo_group: str = "") -> VmRec:
    """A port with ``ip`` (and ``ip6``) on ``network``, plugged into a new VM namespace on ``host``.

    ``port_security=False``: no security groups, no port security (tests of the data
    plane's own behaviour, independent of the filter). ``security_groups``: the port's
    group ids (default: the project's ``default``); ``demo_group`` marks a VM of the
    security-group demo (:mod:`netplex.lab.secdemo`), kept out of the ping matrix."""
    from netplex.vif.attach import Progress as AttachProgress
    from netplex.vif.attach import attach

    st = ws.state
    net, h = st.networks[network], st.hosts[host]
    vm = st.vms.get(name) or VmRec(name=name, ns=ws.ns_name(name), host=host,
                                   network=network, ip=ip, ip6=ip6, security_group=demo_group)
    with ws.client() as c:
        if not vm.port_id:
            fixed = [{"subnet_id": net.subnet_id, "ip_address": ip}]
            if ip6 and net.subnet6_id:
                fixed.append({"subnet_id": net.subnet6_id, "ip_address": ip6})
            attrs: dict[str, Any] = {"network_id": net.id, "name": name, "fixed_ips": fixed}
            if not port_security:
                attrs.update(port_security_enabled=False, security_groups=[])
            elif security_groups is not None:
                attrs["security_groups"] = list(security_groups)
            port = c.create_port(attrs)
            vm.port_id, vm.mac = port["id"], port["mac_address"]
            with ws.mutex:
                st.vms[name] = vm
                ws.save()
        ws.new_ns(name)

        def report(p: AttachProgress) -> None:
            if progress is not None:
                progress(p.message)

        attach(c, vm.port_id, host, vm.ns, host_netns=h.ns, ovs_db=h.ovs_db,
               timeout=timeout, progress=report, poll_interval=0.1, wait_active=wait_active)
    return vm


def remove_vm(ws: Workspace, name: str) -> None:
    """Detach and delete the VM's port, delete its namespace."""
    from netplex.vif.attach import detach

    vm = ws.state.vms[name]
    h = ws.state.hosts[vm.host]
    with ws.client() as c:
        with contextlib.suppress(ClientError):
            detach(c, vm.port_id, vm.host, host_netns=h.ns, ovs_db=h.ovs_db, netns=vm.ns, wait_down=False)
        with contextlib.suppress(ClientError):
            c.delete_port(vm.port_id)
    netns.delete(vm.ns)
    del ws.state.vms[name]
    ws.save()


def vm_plan(ws: Workspace, flat: bool = False) -> list[tuple[str, str, str, str]]:
    """(vm, host, network, ip): one VM per host on each network.

    net-a uses .11, .12, ...; net-b *reuses* those addresses shifted by one
    host (the same IP on the other network lives on another host), and its
    last VM gets an address nobody else has: cross-network pings then show
    both "no answer" and "answered by my own network's VM, not the target".
    """
    hosts = [h for h, rec in ws.state.hosts.items() if rec.kind != "routed"]
    n = len(hosts)
    plan = [(f"vm-a{i + 1}", h, "net-a", f"10.0.0.{11 + i}") for i, h in enumerate(hosts)]
    for i, h in enumerate(hosts):
        ip = f"10.0.0.{11 + (i + 1) % n}" if i < n - 1 else f"10.0.0.{21 + i}"
        plan.append((f"vm-b{i + 1}", h, "net-b", ip))
    if flat:
        plan += [(f"vm-f{i + 1}", h, "net-flat", f"172.16.0.{11 + i}") for i, h in enumerate(hosts)]
    # Routed hosts serve only the routed network (VXLAN is not routed), one VM each.
    plan += [(f"vm-r{i + 1}", h, ROUTED_NET[0], f"10.50.0.{11 + i}") for i, h in enumerate(ws.routed_hosts())]
    return plan


def routed_ip6(vm: str, network: str, ip: str) -> str:
    """The IPv6 address of a routed-network VM (same host part as its IPv4 one)."""
    if network != ROUTED_NET[0]:
        return ""
    return f"{ROUTED_NET[2].split('/')[0]}{ip.rsplit('.', 1)[1]}"


#: The flat provider network's attributes (``up(flat=True)``).
FLAT_PROVIDER = {"provider:network_type": "flat", "provider:physical_network": PHYSNET}
