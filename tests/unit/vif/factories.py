"""Port/network/subnet dicts as the REST API returns them, and a scripted fake server."""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from typing import Any

from netplex.client import NotFound

PORT_ID = "5f0c3a1e-9b7d-4c11-8e0f-1234567890ab"
NET_ID = "a1b2c3d4-e5f6-4789-9abc-def012345678"
SUBNET4 = "11111111-2222-4333-8444-555555555555"
SUBNET6 = "66666666-7777-4888-9999-aaaaaaaaaaaa"
MAC = "fa:16:3e:12:34:56"
VM_UUID = "0f0e0d0c-0b0a-4909-8807-060504030201"


def network(mtu: int | None = 1450) -> dict[str, Any]:
    net: dict[str, Any] = {"id": NET_ID, "name": "net1", "status": "ACTIVE"}
    if mtu is not None:
        net["mtu"] = mtu
    return net


def subnets() -> dict[str, dict[str, Any]]:
    return {
        SUBNET4: {"id": SUBNET4, "cidr": "10.0.0.0/24", "gateway_ip": "10.0.0.1",
                  "ip_version": 4},
        SUBNET6: {"id": SUBNET6, "cidr": "fd00:1::/64", "gateway_ip": "fd00:1::1",
                  "ip_version": 6},
    }


def port(
    vif_type: str | None = "ovs",
    details: Mapping[str, Any] | None = None,
    *,
    host: str | None = "compute-1",
    status: str = "DOWN",
    diagnostics: Any = None,
    ipv6: bool = False,
    **extra: Any,
) -> dict[str, Any]:
    """A port dict. ``vif_type=None`` leaves out every binding attribute (no extension)."""
    fixed = [{"subnet_id": SUBNET4, "ip_address": "10.0.0.5"}]
    if ipv6:
        fixed.append({"subnet_id": SUBNET6, "ip_address": "fd00:1::5"})
    p: dict[str, Any] = {
        "id": PORT_ID,
        "network_id": NET_ID,
        "mac_address": MAC,
        "fixed_ips": fixed,
        "status": status,
        "device_id": "",
        "device_owner": "",
        "admin_state_up": True,
    }
    if vif_type is not None:
        p.update({
            "binding:vif_type": vif_type,
            "binding:vif_details": dict(details or {}),
            "binding:host_id": host or "",
            "binding:vnic_type": "normal",
            "binding:profile": {},
        })
        if diagnostics is not None:
            p["binding:diagnostics"] = diagnostics
    p.update(extra)
    return p


Binder = Callable[[dict[str, Any], str], dict[str, Any]]


def binds_as(vif_type: str, details: Mapping[str, Any] | None = None) -> Binder:
    """A binder that binds synchronously (as Netplex and Neutron do) to ``vif_type``."""

    def bind(p: dict[str, Any], host: str) -> dict[str, Any]:
        if not host:
            return {"binding:vif_type": "unbound", "binding:vif_details": {}}
        return {"binding:vif_type": vif_type, "binding:vif_details": dict(details or {})}

    return bind


class FakeNeutron:
    """Just enough of the server for the attach/detach flows.

    * ``update_port`` applies the attributes; setting ``binding:host_id`` runs
      ``binder`` (the mechanism manager), whose patch is applied unless
      ``bind_after`` says the binding shows up only after that many GETs.
    * ``agent`` is consulted on every GET: it returns the status the agent
      would report (tests make it look at the fake host).
    * ``calls`` records ``(method, arg)`` in order, for sequencing checks.
    """

    def __init__(
        self,
        port_: dict[str, Any],
        *,
        binder: Binder | None = None,
        bind_after: int = 0,
        agent: Callable[[dict[str, Any]], str] | None = None,
        network_: dict[str, Any] | None = None,
        subnets_: dict[str, dict[str, Any]] | None = None,
    ) -> None:
        self.port: dict[str, Any] | None = port_
        self.binder = binder
        self.bind_after = bind_after
        self.agent = agent
        self.network = network_ if network_ is not None else network()
        self.subnets = subnets_ if subnets_ is not None else subnets()
        self.calls: list[tuple[str, Any]] = []
        self._pending: dict[str, Any] | None = None
        self._gets_left = 0

    def _current(self, port_id: str) -> dict[str, Any]:
        if self.port is None or port_id != self.port["id"]:
            raise NotFound(404, "PortNotFound", f"Port {port_id} could not be found.")
        return self.port

    def get_port(self, port_id: str) -> dict[str, Any]:
        self.calls.append(("get_port", port_id))
        p = self._current(port_id)
        if self._pending is not None:
            if self._gets_left <= 0:
                p.update(self._pending)
                self._pending = None
            self._gets_left -= 1
        if self.agent is not None:
            p["status"] = self.agent(p)
        return copy.deepcopy(p)

    def update_port(self, port_id: str, attrs: Mapping[str, Any]) -> dict[str, Any]:
        self.calls.append(("update_port", dict(attrs)))
        p = self._current(port_id)
        p.update(copy.deepcopy(dict(attrs)))
        if "binding:host_id" in attrs:
            if not attrs["binding:host_id"]:
                p.update({"binding:vif_type": "unbound", "binding:vif_details": {},
                          "status": "DOWN"})
            elif self.binder is not None:
                patch = self.binder(p, attrs["binding:host_id"])
                if self.bind_after:
                    p["binding:vif_type"] = "unbound"
                    self._pending, self._gets_left = patch, self.bind_after
                else:
                    p.update(patch)
        if self.agent is not None:
            p["status"] = self.agent(p)
        return copy.deepcopy(p)

    def get_network(self, network_id: str) -> dict[str, Any]:
        self.calls.append(("get_network", network_id))
        if network_id != self.network["id"]:
            raise NotFound(404, "NetworkNotFound", "no such network")
        return copy.deepcopy(self.network)

    def get_subnet(self, subnet_id: str) -> dict[str, Any]:
        self.calls.append(("get_subnet", subnet_id))
        if subnet_id not in self.subnets:
            raise NotFound(404, "SubnetNotFound", "no such subnet")
        return copy.deepcopy(self.subnets[subnet_id])

    def methods(self) -> list[str]:
        return [m for m, _ in self.calls]


class FakeClock:
    """``clock``/``sleep`` pair: sleeping advances time instantly."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.slept: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds
