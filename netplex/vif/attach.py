"""The compute-side flow for namespace VMs: bind a port here, plug it, configure it, wait.

:func:`attach` is what a compute service does when a VM gets a port, in the
order the port-binding design requires (host first, then read the binding):

1. ``PUT binding:host_id`` (plus ``device_id``/``device_owner`` when the port
   has none, so ``openstack port list --device-owner compute:netplex`` finds it);
2. wait until the server has bound the port (``binding:vif_type`` no longer
   ``unbound``); ``binding_failed`` stops here with every driver's reason;
3. read the network (MTU) and the subnets (prefix lengths, gateways);
4. plug with the plugin for the vif_type (:mod:`netplex.vif.plugins`);
5. move the VM end into the VM's namespace as ``ifname`` and give it the
   port's MAC, MTU, fixed IPs and a default route via the subnet gateway;
6. wait until the agent reports the port ``ACTIVE``.

Every step is idempotent, so running ``attach`` again after a failure (or on
an attached port) converges instead of failing; nothing is rolled back on
error, and :func:`detach` removes whatever exists. :func:`detach` unplugs and
clears ``binding:host_id`` so the server unbinds the port.

Both functions only need an object with ``get_port``, ``update_port``,
``get_network`` and ``get_subnet`` (:class:`PortClient`):
:class:`netplex.client.NeutronClient` in real use, a fake in tests. Waiting
uses the injected ``clock``/``sleep``, so tests run instantly.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from netplex.client import Forbidden, NotFound
from netplex.vif.binding import (
    DIAGNOSTICS,
    HOST_ID,
    VIF_TYPE,
    VifDefaults,
    binding_reasons,
    vif_from_port,
)
from netplex.vif.errors import (
    AttachError,
    AttachTimeout,
    BindingFailed,
    ExecutionError,
    InstanceNotSupported,
    PortNotBound,
    UnsupportedVifType,
)
from netplex.vif.executor import LinuxExecutor
from netplex.vif.model import BINDING_FAILED, UNBOUND, VIF, InstanceInfo, freeze_details
from netplex.vif.ops import (
    AddAddress,
    Executor,
    MoveLink,
    Op,
    OvsAddPort,
    OvsDelPort,
    SetDefaultRoute,
    SetLink,
)
from netplex.vif.registry import PluginRegistry

__all__ = [
    "DEVICE_OWNER",
    "AttachResult",
    "DetachResult",
    "PortClient",
    "Progress",
    "ProgressCallback",
    "attach",
    "detach",
    "instance_uuid_for",
    "plan_vm_config",
]

LOG = logging.getLogger(__name__)

#: ``device_owner`` set on ports attached here (when they had none).
DEVICE_OWNER = "compute:netplex"
_UUID_NAMESPACE = uuid.UUID("5d1f0f4e-7c55-4f0b-9a55-6e6574706c78")
#: How long attach waits for a binding before using the configured default.
DEFAULT_BINDING_GRACE = 5.0


class PortClient(Protocol):
    """The part of the REST client the flows use (NeutronClient satisfies it)."""

    def get_port(self, port_id: str) -> dict[str, Any]: ...

    def update_port(self, port_id: str, attrs: Mapping[str, Any]) -> dict[str, Any]: ...

    def get_network(self, network_id: str) -> dict[str, Any]: ...

    def get_subnet(self, subnet_id: str) -> dict[str, Any]: ...


@dataclass(frozen=True)
class Progress:
    """One progress report. ``done`` is False while a step runs, True when it finished."""

    #: ``bind``, ``binding``, ``plug``, ``configure``, ``active`` (attach);
    #: ``unplug``, ``unbind``, ``down`` (detach).
    step: str
    message: str
    done: bool = False


ProgressCallback = Callable[[Progress], None]


@dataclass(frozen=True)
class AttachResult:
    """What :func:`attach` did."""

    vif: VIF
    instance: InstanceInfo
    #: The VM's interface name inside its namespace.
    ifname: str
    #: The port as last read (status ACTIVE unless ``wait_active=False``).
    port: dict[str, Any]
    #: The operations applied on the host and in the VM namespace.
    host_plan: tuple[Op, ...] = ()
    vm_plan: tuple[Op, ...] = ()


@dataclass(frozen=True)
class DetachResult:
    """What :func:`detach` did."""

    port_id: str
    #: The VIF that was unplugged; None when the port had no usable binding and
    #: every known device name of the port was removed instead.
    vif: VIF | None
    unplugged: tuple[Op, ...] = ()
    #: True when binding:host_id was cleared.
    unbound: bool = False
    #: False when the port no longer exists on the server.
    port_exists: bool = True
    #: The port's status when detach returned (None if the port is gone).
    status: str | None = None
    warnings: tuple[str, ...] = field(default=())


def instance_uuid_for(host: str, netns: str) -> str:
    """A stable instance UUID for a namespace VM (same host + namespace, same UUID)."""
    return str(uuid.uuid5(_UUID_NAMESPACE, f"{host}/{netns}"))


def plan_vm_config(vif: VIF, ifname: str) -> list[Op]:
    """Configure the VM's interface inside its namespace (applied there).

    Loopback up; ``ifname`` gets the port's MAC and MTU and comes up; each
    fixed IP is added with its subnet's prefix length; the default route of
    each address family goes via the first subnet gateway of that family.
    """
    ops: list[Op] = [
        SetLink("lo", up=True),
        SetLink(ifname, up=True, mtu=vif.mtu, address=vif.mac_address),
    ]
    gateways: dict[int, str] = {}
    for fip in vif.fixed_ips:
        if fip.prefixlen is None:
            raise AttachError(
                f"port {vif.id}: prefix length of {fip.ip_address} unknown "
                f"(subnet {fip.subnet_id} could not be read)",
                port_id=vif.id,
            )
        ops.append(AddAddress(ifname, fip.ip_address, fip.prefixlen))
        if fip.gateway_ip and fip.version not in gateways:
            gateways[fip.version] = fip.gateway_ip
    ops += [SetDefaultRoute(gw, ifname) for _, gw in sorted(gateways.items())]
    return ops


class _Waiter:
    """Deadline bookkeeping with an injectable clock."""

    def __init__(
        self, timeout: float, clock: Callable[[], float], sleep: Callable[[float], None],
        interval: float,
    ) -> None:
        self.clock, self.sleep, self.interval = clock, sleep, interval
        self.deadline = clock() + timeout

    def left(self, deadline: float | None = None) -> float:
        return (self.deadline if deadline is None else deadline) - self.clock()

    def pause(self, deadline: float | None = None) -> None:
        self.sleep(max(0.0, min(self.interval, self.left(deadline))))


def _noop(_: Progress) -> None:
    pass


def attach(
    client: PortClient,
    port_id: str,
    host: str,
    netns: str,
    ifname: str = "eth0",
    host_netns: str | None = None,
    ovs_db: str | None = None,
    timeout: float = 30.0,
    progress: ProgressCallback | None = None,
    *,
    defaults: VifDefaults | None = None,
    binding_timeout: float | None = None,
    wait_active: bool = True,
    instance_uuid: str | None = None,
    executor: Executor | None = None,
    registry: PluginRegistry | None = None,
    poll_interval: float = 0.5,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> AttachResult:
    """Bind ``port_id`` to ``host``, plug it into namespace VM ``netns`` and wait for ACTIVE.

    :param host: the ``binding:host_id`` to set (:func:`netplex.vif.binding.host_id`).
    :param netns: the VM's namespace (must exist).
    :param ifname: the interface name inside the VM.
    :param host_netns: the namespace the host side lives in (lab hosts); None
        is the current one. Ignored when ``executor`` is given.
    :param ovs_db: OVSDB socket for ovs ports (overrides vif_details). Ignored
        when ``executor`` is given.
    :param timeout: seconds for the whole flow (binding + ACTIVE).
    :param progress: called with a :class:`Progress` at each step and while waiting.
    :param defaults: the ``[vif]`` fallback for ports the server leaves without binding.
    :param binding_timeout: how long to wait for a binding; default ``timeout``,
        or 5 s when ``defaults`` is set (the fallback then takes over).
    :param wait_active: wait for the agent to report the port ACTIVE.
    :raises BindingFailed: the server could not bind; the error lists every reason.
    :raises PortNotBound: still unbound when the binding wait ran out, no default.
    :raises AttachTimeout: the port did not become ACTIVE in time (plugged, though).
    :raises UnsupportedVifType, InvalidVifDetails, InstanceNotSupported: the
        binding cannot be plugged into a namespace VM here.
    :raises ExecutionError: a dataplane operation failed (e.g. NamespaceNotFound).
    :raises netplex.client.ClientError: the server refused or could not be reached.
    """
    report = progress or _noop
    registry = registry or PluginRegistry.default()
    executor = executor or LinuxExecutor(host_netns, ovs_db=ovs_db)
    wait = _Waiter(timeout, clock, sleep, poll_interval)
    grace = binding_timeout
    if grace is None:
        grace = min(timeout, DEFAULT_BINDING_GRACE) if defaults else timeout
    bind_deadline = clock() + grace

    # 0. both namespaces must exist before the port is bound for them
    executor.link("lo")
    executor.link("lo", netns=netns)

    # 1. bind
    report(Progress("bind", f"setting binding:host_id={host} on port {port_id}"))
    port = client.get_port(port_id)
    uuid_ = instance_uuid or port.get("device_id") or instance_uuid_for(host, netns)
    update: dict[str, Any] = {}
    if port.get(HOST_ID) != host or port.get(VIF_TYPE) in (UNBOUND, BINDING_FAILED):
        # Setting the host again on a failed binding makes the server retry it.
        update[HOST_ID] = host
    if not port.get("device_id"):
        update["device_id"] = uuid_
    if not port.get("device_owner"):
        update["device_owner"] = DEVICE_OWNER
    if update:
        port = client.update_port(port_id, update)
    report(Progress("bind", f"binding:host_id={host}", done=True))

    # 2. wait for the binding
    while True:
        seen_host = port.get(HOST_ID)
        if HOST_ID in port and seen_host != host:
            raise AttachError(
                f"port {port_id}: the server did not keep binding:host_id={host!r} "
                "(binding attributes need an admin caller)"
                if not seen_host
                else f"port {port_id} was re-bound to host {seen_host!r} while attaching "
                f"to {host!r}; someone else is using it",
                port_id=port_id,
            )
        vif_type = port.get(VIF_TYPE)
        if vif_type == BINDING_FAILED:
            raise BindingFailed(port_id, host, binding_reasons(port))
        if VIF_TYPE not in port or (vif_type and vif_type != UNBOUND):
            break
        if wait.left(bind_deadline) <= 0:
            if defaults is not None:
                break  # vif_from_port applies (and logs) the default
            raise PortNotBound(
                port_id, vif_type, host,
                f"no binding after {grace:g}s; check the server log and that a mechanism "
                "driver can serve this host",
            )
        report(Progress("binding", f"waiting for the server to bind the port "
                                   f"({max(0.0, wait.left(bind_deadline)):.0f}s left)"))
        wait.pause(bind_deadline)
        port = client.get_port(port_id)

    # 3. network and subnets
    network = _optional(client.get_network, str(port["network_id"]))
    subnets: dict[str, dict[str, Any]] = {}
    for fip in port.get("fixed_ips") or ():
        sid = str(fip.get("subnet_id") or "")
        if sid and sid not in subnets:
            try:
                subnets[sid] = client.get_subnet(sid)
            except (NotFound, Forbidden) as exc:
                raise AttachError(
                    f"port {port_id}: cannot read subnet {sid} of {fip.get('ip_address')}: {exc}",
                    port_id=port_id,
                ) from exc
    vif = vif_from_port(port, network=network, subnets=subnets, defaults=defaults)
    source = "configured default" if vif.from_default else "server"
    report(Progress("binding", f"vif_type={vif.vif_type} ({source}) "
                               f"details={dict(vif.details)}", done=True))

    # 4. plug
    instance = InstanceInfo(uuid=str(uuid_), name=netns, netns=netns)
    plugin = registry.get(vif.vif_type, port_id=port_id)
    host_plan = plugin.plan_plug(vif, instance)
    vm_dev = plugin.vm_device(vif, instance)
    if vm_dev is None:
        raise InstanceNotSupported(
            f"port {port_id}: plugin {plugin.name!r} leaves no device for namespace {netns!r}",
            port_id=port_id,
        )
    report(Progress("plug", f"plugging {vif.devname} ({vif.vif_type})"))
    executor.apply(host_plan)
    report(Progress("plug", f"plugged {vif.devname}", done=True))

    # 5. configure the VM side
    report(Progress("configure", f"moving {vm_dev} into {netns} as {ifname}"))
    move: list[Op] = [MoveLink(vm_dev, netns, ifname)]
    executor.apply(move)
    vm_plan = plan_vm_config(vif, ifname)
    executor.apply(vm_plan, netns=netns)
    addrs = ", ".join(f"{f.ip_address}/{f.prefixlen}" for f in vif.fixed_ips) or "no address"
    report(Progress("configure", f"{netns}:{ifname} {vif.mac_address} {addrs}", done=True))

    # 6. wait for ACTIVE
    port = client.get_port(port_id)
    if wait_active:
        while port.get("status") != "ACTIVE":
            status = port.get("status")
            if status == "ERROR":
                raise AttachError(
                    f"port {port_id} went to status ERROR after plugging; see the agent's log "
                    f"on host {host}",
                    port_id=port_id,
                )
            if wait.left() <= 0:
                raise AttachTimeout(
                    f"port {port_id} is plugged but still {status} after {timeout:g}s: "
                    f"the agent on host {host} has not reported it ACTIVE",
                    port_id=port_id, step="active", status=status,
                )
            report(Progress("active", f"waiting for ACTIVE (status {status}, "
                                      f"{max(0.0, wait.left()):.0f}s left)"))
            wait.pause()
            port = client.get_port(port_id)
        report(Progress("active", "port is ACTIVE", done=True))
    return AttachResult(vif, instance, ifname, port, tuple(host_plan), tuple([*move, *vm_plan]))


def detach(
    client: PortClient,
    port_id: str,
    host: str | None = None,
    host_netns: str | None = None,
    ovs_db: str | None = None,
    timeout: float = 30.0,
    progress: ProgressCallback | None = None,
    *,
    netns: str | None = None,
    defaults: VifDefaults | None = None,
    wait_down: bool = True,
    executor: Executor | None = None,
    registry: PluginRegistry | None = None,
    poll_interval: float = 0.5,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> DetachResult:
    """Unplug ``port_id`` from this host and clear its ``binding:host_id``.

    Deleting the host end of the veth removes the VM's interface too, so the
    VM namespace needs no work (``netns`` is only used in messages). The
    binding is cleared only when the port is bound to ``host`` (or ``host`` is
    None): a port that has moved to another host is unplugged here but left
    bound there. A port with no usable binding, or already deleted on the
    server, is cleaned up by removing every device name the built-in plugins
    could have created for it. ``device_id``/``device_owner`` are cleared when
    :func:`attach` set them (``device_owner`` is ``compute:netplex``).

    With ``wait_down`` it waits (up to ``timeout``) for the status to leave
    ACTIVE; a port still ACTIVE then is reported in ``warnings``, not raised:
    the local work is done.
    """
    report = progress or _noop
    registry = registry or PluginRegistry.default()
    executor = executor or LinuxExecutor(host_netns, ovs_db=ovs_db)
    wait = _Waiter(timeout, clock, sleep, poll_interval)
    warnings: list[str] = []
    instance = InstanceInfo(uuid="", name=netns or port_id, netns=netns or "(namespace VM)")

    try:
        port: dict[str, Any] | None = client.get_port(port_id)
    except NotFound:
        port = None
        warnings.append(f"port {port_id} no longer exists on the server")

    vif: VIF | None = None
    if port is not None:
        try:
            vif = vif_from_port(port, defaults=defaults)
            registry.get(vif.vif_type, port_id=port_id)
        except (PortNotBound, BindingFailed, UnsupportedVifType) as exc:
            LOG.info("port %s: %s; removing every device it could have", port_id, exc)
            vif = None

    report(Progress("unplug", f"unplugging port {port_id}"))
    if vif is not None:
        plan = registry.plan_unplug(vif, instance)
        executor.apply(plan)
    else:
        plan = _scrub_plan(port_id, port, registry, instance)
        for op in plan:
            try:
                executor.apply([op])
            except ExecutionError as exc:
                if not isinstance(op, OvsAddPort | OvsDelPort):
                    raise
                # No OVS on this host (a Linux bridge host): nothing to remove there.
                LOG.info("ignored while cleaning up: %s", exc)
    report(Progress("unplug", f"removed {_devices(plan) or 'nothing'}", done=True))

    if port is None:
        return DetachResult(port_id, None, tuple(plan), False, False, None, tuple(warnings))

    bound_host = port.get(HOST_ID)
    unbound = False
    if bound_host and host is not None and bound_host != host:
        warnings.append(
            f"port {port_id} is bound to host {bound_host!r}, not {host!r}; binding left alone"
        )
    elif bound_host:
        report(Progress("unbind", f"clearing binding:host_id ({bound_host})"))
        update: dict[str, Any] = {HOST_ID: ""}
        if port.get("device_owner") == DEVICE_OWNER:
            update["device_owner"] = ""
            update["device_id"] = ""
        port = client.update_port(port_id, update)
        unbound = True
        report(Progress("unbind", "binding:host_id cleared", done=True))

    status = port.get("status")
    if wait_down and unbound:
        while status == "ACTIVE" and wait.left() > 0:
            report(Progress("down", f"waiting for the port to go DOWN ({wait.left():.0f}s left)"))
            wait.pause()
            port = client.get_port(port_id)
            status = port.get("status")
        if status == "ACTIVE":
            warnings.append(f"port {port_id} is still ACTIVE after {timeout:g}s")
        else:
            report(Progress("down", f"port is {status}", done=True))
    return DetachResult(port_id, vif, tuple(plan), unbound, True, status, tuple(warnings))


def _optional(get: Callable[[str], dict[str, Any]], id_: str) -> dict[str, Any] | None:
    """A resource that only refines the result (the network's MTU); None if unreadable."""
    try:
        return get(id_)
    except (NotFound, Forbidden) as exc:
        LOG.warning("cannot read %s (%s); continuing without it", id_, exc)
        return None


def _scrub_plan(
    port_id: str, port: Mapping[str, Any] | None, registry: PluginRegistry,
    instance: InstanceInfo,
) -> list[Op]:
    """Every unplug operation any built-in shape of this port could need, deduplicated."""
    details = dict((port or {}).get("binding:vif_details") or {})
    details.pop(DIAGNOSTICS, None)
    ops: list[Op] = []
    for vif_type in registry.vif_types:
        for hybrid in (False, True):
            vif = VIF(
                id=port_id,
                mac_address=str((port or {}).get("mac_address") or ""),
                network_id=str((port or {}).get("network_id") or ""),
                vif_type=vif_type,
                details=freeze_details({**details, "ovs_hybrid_plug": hybrid}),
            )
            try:
                plan = registry.plan_unplug(vif, instance)
            except Exception as exc:  # a third-party plugin may reject a synthetic VIF
                LOG.debug("no cleanup plan from %s: %s", vif_type, exc)
                continue
            ops += [op for op in plan if op not in ops]
    return ops


def _devices(plan: list[Op]) -> str:
    names: list[str] = []
    for op in plan:
        name = getattr(op, "name", None) or getattr(op, "port", None)
        if name and name not in names:
            names.append(str(name))
    return ", ".join(names)
