"""In-memory hosts that execute plan operations, for pure unit tests of the backends.

They answer behavioural questions ("which devices share a bridge / a tag?")
instead of recording calls (STYLE "What to absorb" 7), and ``observe()``
returns the same frozen types as the real backends, so "apply, observe, plan
again" must give an empty plan: the convergence property.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterable

from netplex.agent.linuxbridge import LinuxBridgeConfig, plan_linuxbridge
from netplex.agent.model import (
    FLOOD_MAC,
    FdbEntry,
    HostDesired,
    LinkState,
    LinuxObserved,
    NetworkSpec,
    OvsBridgeState,
    OvsObserved,
    OvsPortState,
    VxlanInfo,
)
from netplex.agent.ops import (
    AddFdb,
    AddFlows,
    AddOvsPort,
    AddPatchPorts,
    AddVxlan,
    AttachPort,
    DeleteBridge,
    DeleteLink,
    DelFdb,
    DelFlows,
    DelOvsPort,
    DetachPort,
    EnsureBridge,
    EnsureOvsBridge,
    EnsureTag,
    Op,
    Plan,
    SetLinkDown,
    SetLinkUp,
    SetMtu,
)
from netplex.agent.ovs_plan import DEAD_VLAN, OvsConfig, plan_openvswitch

# --- shared by the planner tests: four networks, one per kind a host may serve ---

NA = "aaaaaaaa-0000-0000-0000-000000000000"
NB = "bbbbbbbb-0000-0000-0000-000000000000"
NF = "ffffffff-0000-0000-0000-000000000000"
NV = "99999999-0000-0000-0000-000000000000"
VXA = NetworkSpec(NA, "vxlan", segmentation_id=1001, mtu=1450)
VXB = NetworkSpec(NB, "vxlan", segmentation_id=1002, mtu=1450)
FLAT = NetworkSpec(NF, "flat", physical_network="physnet1")
VLAN = NetworkSpec(NV, "vlan", physical_network="physnet1", segmentation_id=100)


def wait_for(cond: Callable[[], bool], timeout: float = 5.0) -> None:
    """Until ``cond()`` holds (threads of the agent under test get there in their own time)."""
    end = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > end:
            raise AssertionError("condition not met in time")
        time.sleep(0.01)


class FakeKernel:
    """Links (with master/up/mtu/vxlan) and VXLAN FDBs of one namespace."""

    def __init__(self) -> None:
        self.links: dict[str, LinkState] = {}
        self.fdb: dict[str, set[FdbEntry]] = {}
        self._next = 10

    def add_link(self, name: str, kind: str | None = "veth", up: bool = True,
                 mtu: int = 1500, vxlan: VxlanInfo | None = None) -> None:
        self._next += 1
        self.links[name] = LinkState(name=name, index=self._next, kind=kind, up=up, mtu=mtu,
                                     vxlan=vxlan)
        if kind == "vxlan":
            self.fdb[name] = set()

    def _set(self, name: str, **changes: object) -> None:
        self.links[name] = dataclasses.replace(self.links[name], **changes)  # type: ignore[arg-type]

    def delete(self, name: str) -> None:
        self.links.pop(name, None)
        self.fdb.pop(name, None)
        for other in list(self.links.values()):
            if other.master == name:
                self._set(other.name, master=None)

    def apply(self, op: Op) -> bool:
        match op:
            case EnsureBridge(name):
                if name not in self.links:
                    self.add_link(name, kind="bridge")
                self._set(name, up=True)
            case DeleteBridge(name) | DeleteLink(name):
                self.delete(name)
            case AddVxlan(dev, vni, local_ip, port, mtu):
                assert dev not in self.links, f"{dev} exists"
                self.add_link(dev, kind="vxlan", up=False, mtu=mtu,
                              vxlan=VxlanInfo(vni, local_ip, port, False))
            case SetLinkUp(name):
                self._set(name, up=True)
            case SetLinkDown(name):
                self._set(name, up=False)
            case SetMtu(name, mtu):
                self._set(name, mtu=mtu)
            case AttachPort(dev, bridge):
                assert self.links[bridge].kind == "bridge"
                self._set(dev, master=bridge)
            case DetachPort(dev):
                self._set(dev, master=None)
            case AddFdb(dev, mac, dst):
                entries = self.fdb[dev]
                if mac != FLOOD_MAC:  # unicast: replace
                    entries -= {e for e in entries if e.mac == mac}
                entries.add(FdbEntry(mac, dst))
            case DelFdb(dev, mac, dst):
                self.fdb[dev].discard(FdbEntry(mac, dst))
            case _:
                return False
        return True

    def observe(self) -> LinuxObserved:
        return LinuxObserved(links=dict(self.links),
                             fdb={k: frozenset(v) for k, v in self.fdb.items()})

    # behavioural questions
    def bridge_of(self, dev: str) -> str | None:
        return self.links[dev].master if dev in self.links else None


class FakeLinuxBridgeHost:
    def __init__(self, cfg: LinuxBridgeConfig) -> None:
        self.cfg = cfg
        self.kernel = FakeKernel()

    def plan(self, desired: HostDesired) -> Plan:
        return plan_linuxbridge(desired, self.kernel.observe(), self.cfg)

    def apply(self, ops: Iterable[Op]) -> None:
        for op in ops:
            assert self.kernel.apply(op), op

    def converge(self, desired: HostDesired) -> Plan:
        plan = self.plan(desired)
        self.apply(plan.ops)
        return plan

    def connected(self, a: str, b: str) -> bool:
        """Do devices a and b share a bridge with both ends up?"""
        la, lb = self.kernel.links.get(a), self.kernel.links.get(b)
        return bool(la and lb and la.up and lb.up and la.master and la.master == lb.master)


class FakeOvsHost:
    """OVSDB bridges/ports, per-bridge flow cookies, plus a FakeKernel for VXLAN devices."""

    def __init__(self, cfg: OvsConfig) -> None:
        self.cfg = cfg
        self.kernel = FakeKernel()
        self.bridges: dict[str, OvsBridgeState] = {}
        self.ports: dict[str, OvsPortState] = {}
        self.flows: dict[str, dict[int, str]] = {}
        self._ofport = 0

    def add_bridge(self, name: str, **kw: str) -> None:
        self.bridges[name] = OvsBridgeState(name, **kw)
        self.flows.setdefault(name, {})

    def plug(self, bridge: str, name: str, iface_id: str | None = None,
             tag: int | None = None) -> None:
        """What the compute side does for an OVS VIF."""
        self._ofport += 1
        self.ports[name] = OvsPortState(name=name, bridge=bridge, iface_id=iface_id,
                                        ofport=self._ofport, tag=tag)

    def unplug(self, name: str) -> None:
        self.ports.pop(name, None)

    def apply(self, ops: Iterable[Op]) -> None:
        for op in ops:
            if self.kernel.apply(op):
                continue
            match op:
                case EnsureOvsBridge(name, dp, fail_mode):
                    self.add_bridge(name, datapath_type=dp, fail_mode=fail_mode)
                case AddPatchPorts(intbr, int_p, physbr, phy_p):
                    for br, p, peer in ((intbr, int_p, phy_p), (physbr, phy_p, int_p)):
                        self._ofport += 1
                        self.ports[p] = OvsPortState(name=p, bridge=br, type="patch", peer=peer,
                                                     ofport=self._ofport)
                case AddOvsPort(bridge, name, tag, net_id):
                    assert name in self.kernel.links, f"{name} has no kernel device"
                    self._ofport += 1
                    self.ports[name] = OvsPortState(name=name, bridge=bridge, tag=tag,
                                                    net_id=net_id, ofport=self._ofport)
                case DelOvsPort(_, name):
                    self.ports.pop(name, None)
                case EnsureTag(name, tag, net_id):
                    self.ports[name] = dataclasses.replace(self.ports[name], tag=tag,
                                                           net_id=net_id,
                                                           protected=tag == DEAD_VLAN)
                case AddFlows(bridge, flows):
                    for f in flows:
                        assert f.bridge == bridge
                        self.flows[bridge][f.cookie] = f.spec()
                case DelFlows(bridge, cookies):
                    for c in cookies:
                        self.flows[bridge].pop(c, None)
                case _:
                    raise AssertionError(f"unknown op {op}")

    def observe(self) -> OvsObserved:
        return OvsObserved(
            bridges=dict(self.bridges), ports=dict(self.ports),
            flows={b: frozenset(f) for b, f in self.flows.items()},
            linux=self.kernel.observe())

    def plan(self, desired: HostDesired) -> Plan:
        return plan_openvswitch(desired, self.observe(), self.cfg)

    def converge(self, desired: HostDesired) -> Plan:
        plan = self.plan(desired)
        self.apply(plan.ops)
        return plan

    def flow_specs(self, bridge: str) -> set[str]:
        """Flows without their cookies, for readable assertions."""
        return {s.split(",", 1)[1] for s in self.flows.get(bridge, {}).values()}

    def same_vlan(self, a: str, b: str) -> bool:
        pa, pb = self.ports.get(a), self.ports.get(b)
        # Protected ports never forward to each other (OVS's Port "protected").
        return bool(pa and pb and pa.tag and pa.tag == pb.tag and pa.tag != DEAD_VLAN
                    and not (pa.protected and pb.protected))
